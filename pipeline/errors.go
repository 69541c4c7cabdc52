// Package pipeline wires extraction, storage and classification together:
// it is what the CLI's commands call. It owns no C library itself.
package pipeline

import "errors"

var (
	// ErrInterrupted: the run stopped on a signal after committing the
	// batches it had finished; rerunning the same command completes it.
	ErrInterrupted = errors.New("interrupted")
	// ErrPartial: the run completed but some input files failed.
	ErrPartial = errors.New("some files failed")
)

// ErrUsage marks a request that cannot work as given (conflicting or
// missing flags, a model without a preprocessing convention, ...).
var ErrUsage = errors.New("usage")
