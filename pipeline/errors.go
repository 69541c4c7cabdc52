// Package pipeline wires extraction, storage and classification together:
// it is what the CLI's commands call. It owns no C library itself.
package pipeline

import (
	"fmt"

	"pipeline/errclass"
)

var (
	// ErrInterrupted: the run stopped on a signal after committing the
	// batches it had finished; rerunning the same command completes it.
	ErrInterrupted = errclass.New(errclass.Interrupted, "interrupted")
	// ErrPartial: the run completed but some input files failed.
	ErrPartial = errclass.New(errclass.Partial, "some files failed")
)

// ErrUsage marks a request that cannot work as given (conflicting or
// missing flags, a model without a preprocessing convention, ...).
var ErrUsage = errclass.New(errclass.Usage, "usage")

// usageErr is an ErrUsage whose message is only the details.
type usageErr struct{ msg string }

func (e *usageErr) Error() string         { return e.msg }
func (e *usageErr) Is(target error) bool  { return target == ErrUsage }
func (e *usageErr) Class() errclass.Class { return errclass.Usage }

// usagef makes an error that errors.Is ErrUsage, without a "usage:" prefix.
func usagef(format string, args ...any) error {
	return &usageErr{fmt.Sprintf(format, args...)}
}
