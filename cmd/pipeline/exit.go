package main

import (
	"errors"
	"flag"
	"fmt"

	"pipeline/errclass"
	"pipeline/store"
)

// Exit codes, documented in README.md: errclass's table, which runs.exit_code
// uses too. Scripts and cron jobs rely on them.
const (
	ExitOK          = errclass.ExitOK          // everything worked
	ExitError       = errclass.ExitFatal       // a fatal error: model unreadable, database not writable, disk full, ...
	ExitUsage       = errclass.ExitUsage       // bad flags or arguments, unknown model, layer, preset or classifier
	ExitPartial     = errclass.ExitPartial     // the run finished but some input files failed (see the failures table)
	ExitLocked      = errclass.ExitLocked      // another process is writing the database (see --wait)
	ExitData        = errclass.ExitData        // the data cannot support the request (fewer than 2 classes, dimension mismatch, ...)
	ExitUnhealthy   = errclass.ExitIntegrity   // pipeline check found problems in the database
	ExitInterrupted = errclass.ExitInterrupted // stopped by Ctrl-C or SIGTERM; committed work is kept, rerun to finish
)

// cliError is a command-line error (litestream's usageError): the message,
// and a hint that may name flags, printed once by main. Only this layer
// names CLI flags in hints.
type cliError struct {
	class errclass.Class
	err   error
	hint  string
}

func (e *cliError) Error() string         { return e.err.Error() }
func (e *cliError) Unwrap() error         { return e.err }
func (e *cliError) Class() errclass.Class { return e.class }

// usageError marks bad flags or arguments.
func usageError(format string, args ...any) error {
	return &cliError{class: errclass.Usage, err: fmt.Errorf(format, args...)}
}

// withHint attaches a hint to err, keeping its class.
func withHint(err error, hint string) error {
	if err == nil {
		return nil
	}
	return &cliError{class: errclass.Of(err), err: err, hint: hint}
}

// ExitCode maps an error from Run to the process exit code: errclass's
// table, except that --help is a success.
func ExitCode(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	return errclass.ExitCode(err)
}

// orUsage gives an unclassified error (a missing file named on the command
// line, say) the usage class; classified errors keep theirs.
func orUsage(err error) error {
	if err != nil && !errclass.Classified(err) {
		return errclass.Wrap(errclass.Usage, err)
	}
	return err
}

// hintOf is what to tell the user to do about err, if anything: a hint a
// command attached, else one for a condition any command can meet.
func hintOf(err error) string {
	var ce *cliError
	if errors.As(err, &ce) && ce.hint != "" {
		return ce.hint
	}
	var le *store.LockedError
	switch {
	case errors.As(err, &le) && le.Waited == 0:
		return "use --wait 10m to wait for it"
	case errors.Is(err, store.ErrClassifierExists):
		return "choose another --name or add --replace"
	}
	return ""
}
