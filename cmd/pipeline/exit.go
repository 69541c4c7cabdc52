package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"pipeline/extract"
	"pipeline/pipeline"
)

// Exit codes, documented in README.md. Scripts and cron jobs rely on them.
const (
	ExitOK          = 0   // everything worked
	ExitError       = 1   // a fatal error: model unreadable, database not writable, disk full, ...
	ExitUsage       = 2   // bad flags or arguments, unknown model, layer, preset or classifier
	ExitPartial     = 3   // the run finished but some input files failed (see the failures table)
	ExitLocked      = 4   // another process is writing the database (see --wait)
	ExitData        = 5   // the data cannot support the request (fewer than 2 classes, dimension mismatch, ...)
	ExitUnhealthy   = 6   // pipeline check found problems in the database
	ExitInterrupted = 130 // stopped by Ctrl-C or SIGTERM; committed work is kept, rerun to finish
)

// exitError carries an exit code chosen by a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code, err}
}

// usageError marks bad flags or arguments.
func usageError(format string, args ...any) error {
	return &exitError{ExitUsage, fmt.Errorf(format, args...)}
}

// ExitCode maps an error from Run to the process exit code.
func ExitCode(err error) int {
	var ee *exitError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ee):
		return ee.code
	case errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.Is(err, context.Canceled), errors.Is(err, pipeline.ErrInterrupted):
		return ExitInterrupted
	case errors.Is(err, pipeline.ErrUsage):
		return ExitUsage
	case errors.Is(err, pipeline.ErrPartial):
		return ExitPartial
	case errors.Is(err, extract.ErrUnknownLayer), errors.Is(err, extract.ErrBackendUnavailable):
		return ExitUsage
	}
	return ExitError
}
