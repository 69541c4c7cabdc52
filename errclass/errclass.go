// Package errclass gives errors a class (usage, not found, data, locked,
// ...) and maps classes to the process's exit codes in one table.
//
// A class sits at the root of an error chain: every sentinel error of the
// repository is made with New, so that anything wrapping it with %w keeps
// its class. Of finds the class of the outermost classed error in a chain,
// so a caller that knows better may reclassify with Wrap. ExitCode is the
// one function the CLI's exit status and runs.exit_code both come from.
//
// The package imports nothing of the repository: store/, extract/,
// classify/, pipeline/ and cmd/ all import it (wtf's ErrorCode(err), one
// level down so that adapters can use it without cycles).
package errclass

import (
	"context"
	"errors"
	"fmt"
)

// Class is what kind of failure an error is. Classes, not error values,
// decide exit codes.
type Class int

const (
	// Fatal (the zero value, and the class of unclassified errors): the
	// environment failed the run: a model file missing or unreadable, a
	// database not writable or not a pipeline database, a full disk, an
	// I/O error, a bug.
	Fatal Class = iota
	// Usage: the command line cannot work as given (bad flags or values,
	// conflicting options, a malformed query).
	Usage
	// NotFound: a name on the command line names nothing: model, layer,
	// classifier, feature set, image, run, or a database that is not there.
	NotFound
	// Conflict: the name is taken (a classifier or model registered under it).
	Conflict
	// Partial: the run finished but some input files failed.
	Partial
	// Locked: another process is writing the database.
	Locked
	// Data: the data cannot support the request (too few classes or
	// samples, dimension mismatch, NaN vectors, an undecodable input).
	Data
	// Integrity: the database holds something it should not (corrupt
	// pages, a stored model that does not decode, conflicting vectors).
	Integrity
	// Interrupted: stopped by SIGINT/SIGTERM; committed work is kept.
	Interrupted
)

// Exit codes, documented in README.md and docs/OPERATIONS.md. Scripts and
// cron jobs rely on them.
const (
	ExitOK          = 0
	ExitFatal       = 1
	ExitUsage       = 2
	ExitPartial     = 3
	ExitLocked      = 4
	ExitData        = 5
	ExitIntegrity   = 6
	ExitInterrupted = 130
)

// exitCodes is THE table from class to exit code.
var exitCodes = map[Class]int{
	Fatal:       ExitFatal,
	Usage:       ExitUsage,
	NotFound:    ExitUsage,
	Conflict:    ExitUsage,
	Partial:     ExitPartial,
	Locked:      ExitLocked,
	Data:        ExitData,
	Integrity:   ExitIntegrity,
	Interrupted: ExitInterrupted,
}

var names = map[Class]string{
	Fatal: "fatal", Usage: "usage", NotFound: "not-found", Conflict: "conflict", Partial: "partial",
	Locked: "locked", Data: "data", Integrity: "integrity", Interrupted: "interrupted",
}

func (c Class) String() string {
	if n, ok := names[c]; ok {
		return n
	}
	return fmt.Sprintf("class(%d)", int(c))
}

// ExitCode is the exit code of a class.
func (c Class) ExitCode() int {
	if code, ok := exitCodes[c]; ok {
		return code
	}
	return ExitFatal
}

// Classes lists every class, in exit-code order (for docs and tests).
func Classes() []Class {
	return []Class{Fatal, Usage, NotFound, Conflict, Partial, Locked, Data, Integrity, Interrupted}
}

// Classed is implemented by errors that carry a class.
type Classed interface {
	error
	Class() Class
}

// sentinel is an error value with a class: what New makes.
type sentinel struct {
	class Class
	msg   string
}

func (e *sentinel) Error() string { return e.msg }
func (e *sentinel) Class() Class  { return e.class }

// New makes a sentinel error of a class. Compare with errors.Is as usual.
func New(c Class, msg string) error { return &sentinel{c, msg} }

// wrapped reclassifies an error without changing its message.
type wrapped struct {
	class Class
	err   error
}

func (e *wrapped) Error() string { return e.err.Error() }
func (e *wrapped) Unwrap() error { return e.err }
func (e *wrapped) Class() Class  { return e.class }

// Wrap gives err the class c (nil stays nil); errors.Is and errors.As
// still see what err wraps.
func Wrap(c Class, err error) error {
	if err == nil {
		return nil
	}
	return &wrapped{c, err}
}

// Errorf is fmt.Errorf with a class.
func Errorf(c Class, format string, args ...any) error {
	return &wrapped{c, fmt.Errorf(format, args...)}
}

// Of returns the class of err: that of the outermost classed error in its
// chain. A cancelled context is Interrupted; anything else unclassified is
// Fatal. Of(nil) is Fatal too: callers test err != nil first.
func Of(err error) Class {
	var c Classed
	if errors.As(err, &c) {
		return c.Class()
	}
	if errors.Is(err, context.Canceled) {
		return Interrupted
	}
	return Fatal
}

// Classified reports whether err has a class of its own (or is a cancelled
// context), as opposed to falling to Fatal for want of one.
func Classified(err error) bool {
	var c Classed
	return errors.As(err, &c) || errors.Is(err, context.Canceled)
}

// ExitCode maps an error to the process exit code: 0 for nil, else the
// code of its class. The CLI's exit status and runs.exit_code both come
// from here.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	return Of(err).ExitCode()
}
