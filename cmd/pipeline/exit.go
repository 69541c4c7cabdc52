package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"pipeline/classify"
	"pipeline/extract"
	"pipeline/pipeline"
	"pipeline/store"
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
	case errors.Is(err, store.ErrLocked):
		return ExitLocked
	case errors.Is(err, classify.ErrTooFewClasses), errors.Is(err, classify.ErrTooFewSamples),
		errors.Is(err, classify.ErrDimMismatch), errors.Is(err, pipeline.ErrNoFeatures), errors.Is(err, store.ErrSplitFrac),
		errors.Is(err, pipeline.ErrNoVector), errors.Is(err, store.ErrZeroVector):
		return ExitData
	case errors.Is(err, extract.ErrUnknownLayer), errors.Is(err, extract.ErrBackendUnavailable),
		errors.Is(err, extract.ErrUnsupportedOp), errors.Is(err, extract.ErrEngine), errors.Is(err, extract.ErrNoBF16),
		errors.Is(err, extract.ErrUnknownModel), errors.Is(err, classify.ErrUnknownClassifier),
		errors.Is(err, classify.ErrUnknownKernel), errors.Is(err, classify.ErrBadParam),
		errors.Is(err, store.ErrUnknownClassifier), errors.Is(err, store.ErrClassifierExists),
		errors.Is(err, pipeline.ErrAmbiguous), errors.Is(err, store.ErrUnknownFeatureSet),
		errors.Is(err, pipeline.ErrUnknownImage):
		return ExitUsage
	}
	return ExitError
}
