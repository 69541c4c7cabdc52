package main

import (
	"errors"
	"flag"
	"fmt"

	"pipeline/classify"
	"pipeline/errclass"
	"pipeline/extract"
	"pipeline/pipeline"
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
	// usage: the command line is wrong (a bad flag, a missing argument, a
	// bad value); main prints the command's usage line with it.
	usage bool
}

func (e *cliError) Error() string         { return e.err.Error() }
func (e *cliError) Unwrap() error         { return e.err }
func (e *cliError) Class() errclass.Class { return e.class }

// usageError marks bad flags or arguments.
func usageError(format string, args ...any) error {
	return &cliError{class: errclass.Usage, err: fmt.Errorf(format, args...), usage: true}
}

// isUsageError: err is a usage error of the command line (usageError or a
// flag the command's flag set refused).
func isUsageError(err error) bool {
	var ce *cliError
	for errors.As(err, &ce) {
		if ce.usage {
			return true
		}
		err = ce.err
	}
	return false
}

// withHint attaches a hint to err, keeping its class.
func withHint(err error, hint string) error {
	if err == nil {
		return nil
	}
	return &cliError{class: errclass.Of(err), err: err, hint: hint, usage: isUsageError(err)}
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
	if errors.As(err, &le) && le.Waited == 0 {
		return "use --wait 10m to wait for it"
	}
	for _, h := range hints {
		if errors.Is(err, h.err) {
			return h.hint
		}
	}
	return ""
}

// hints say which flag helps with a condition any command can meet, keyed
// on the sentinel below it: store/, extract/ and pipeline/ say what is
// wrong and never name a flag; this table does. The first match wins.
var hints = []struct {
	err  error
	hint string
}{
	{store.ErrClassifierExists, "choose another --name or add --replace"},
	{store.ErrSplitFrac, "add --reset-split (with the other fit flags) to make a new automatic split with this --test-frac, or leave --test-frac out"},
	{extract.ErrNoPreprocess, "pass --preprocess caffe, torch or tf; or register the model once with `pipeline models add NAME --file FILE --preprocess ...`"},
	{extract.ErrNoNetworkDef, "give the network definition with --config PATH.prototxt"},
	{extract.ErrKerasFile, "register it once with `pipeline models add NAME --file FILE.h5`, then use --model NAME"},
	{extract.ErrNotCached, "--model PATH uses a local model file instead"},
	{extract.ErrUnknownLayer, "`pipeline layers --model MODEL` lists them all"},
	{pipeline.ErrNotDir, "use --list for a list of files"},
	{pipeline.ErrListIsDir, "give a folder of images as --images"},
	{pipeline.ErrNoSetQuery, "name the feature set with --layer (e.g. fc2), --model if several models have it, or --set ID"},
	{pipeline.ErrAmbiguous, "add --pool avg|max|none or --model NAME where they differ, or --set ID"},
	{pipeline.ErrNoAliases, "name the layers with --layers (`pipeline layers --model MODEL` lists them)"},
	{pipeline.ErrSplitFolders, "drop --split, or point --images at one of the split folders"},
	{classify.ErrTooFewSamples, "label more images of that class, or ask for fewer cross-validation folds with --cv N"},
	{classify.ErrDiverged, "try a smaller --learning-rate, or --scale standard"},
	{classify.ErrTooFewClasses, "label the images by sub-folder (--images DIR/<class>/...) or by CSV (--list FILE of path,label lines)"},
}
