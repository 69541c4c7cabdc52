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

// Conditions of the request that the CLI gives a hint for (which flag to
// use): this package says what is wrong, the CLI which flag helps.
var (
	// ErrNotDir: the images folder given is a file (a list of files is
	// given as a list). Found once the run has started: fatal, as before.
	ErrNotDir = errclass.New(errclass.Fatal, "not a directory")
	// ErrListIsDir: the list of files given is a folder.
	ErrListIsDir = errclass.New(errclass.Usage, "is a folder, not a list of files")
	// ErrNoSetQuery: no feature set named (neither a layer nor a set id).
	ErrNoSetQuery = errclass.New(errclass.Usage, "no feature set named")
	// ErrSetModel: the model a feature set's vectors come from cannot be
	// found by its name, or the file found is another model.
	ErrSetModel = errclass.New(errclass.Usage, "the feature set's model file is needed")
	// ErrNoAliases: a model without layer aliases, where aliases would
	// have chosen the layers.
	ErrNoAliases = errclass.New(errclass.Usage, "model has no layer aliases")
	// ErrSplitFolders: a split for the run's images, whose folders give
	// each image's split already.
	ErrSplitFolders = errclass.New(errclass.Usage, "split given for images in split folders")
)

// ErrUsage marks a request that cannot work as given (conflicting or
// missing flags, a model without a preprocessing convention, ...).
var ErrUsage = errclass.New(errclass.Usage, "usage")

// usageErr is an ErrUsage whose message is only the details; kind is one
// of the conditions above, or nil.
type usageErr struct {
	msg  string
	kind error
}

func (e *usageErr) Error() string { return e.msg }
func (e *usageErr) Is(target error) bool {
	return target == ErrUsage || (e.kind != nil && target == e.kind)
}
func (e *usageErr) Class() errclass.Class { return errclass.Usage }

// usagef makes an error that errors.Is ErrUsage, without a "usage:" prefix.
func usagef(format string, args ...any) error {
	return &usageErr{msg: fmt.Sprintf(format, args...)}
}

// usageKindf is usagef of one kind: errors.Is both ErrUsage and kind.
func usageKindf(kind error, format string, args ...any) error {
	return &usageErr{msg: fmt.Sprintf(format, args...), kind: kind}
}
