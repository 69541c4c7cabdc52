package pipeline

import (
	"context"
	"errors"
	"time"

	"pipeline/errclass"
	"pipeline/store"
)

// runScope is a recorded run in progress, as its body sees it.
type runScope struct {
	ID int64
	// Counts are written as the run's final counters: only what the body
	// committed (store.WriteBatch adds each batch's counts in its own
	// transaction; a body that commits nothing leaves them as it likes).
	Counts store.Counts
}

// withRun is the run ritual of every writing command: take the writer lock
// (waiting up to wait), mark the runs that dead processes left running as
// abandoned, record a new run, call fn, and finish the run with the status
// and the exit code the process will return for fn's error (errclass's
// table, the one the CLI exits with). The run is finished even after a
// Ctrl-C. Errors before the run starts (lock busy, database unwritable)
// record nothing.
func withRun(ctx context.Context, db *store.DB, command string, args []string, wait time.Duration, fn func(r *runScope) error) error {
	release, err := db.Lock(ctx, wait, store.Holder{Command: command})
	if err != nil {
		return err
	}
	defer release()
	bg := context.WithoutCancel(ctx) // the run's rows are written even after Ctrl-C
	if _, err := db.AbandonStaleRuns(bg); err != nil {
		return err
	}
	id, err := db.StartRun(bg, command, args)
	if err != nil {
		return err
	}
	r := &runScope{ID: id}
	err = fn(r)
	msg := ""
	if err != nil && errclass.Of(err) != errclass.Partial {
		msg = err.Error()
	}
	ferr := db.FinishRun(bg, id, runStatus(err), errclass.ExitCode(err), r.Counts, msg)
	// A `sql --write` text may delete its own run row: the user's choice,
	// not a failure.
	if ferr != nil && err == nil && !errors.Is(ferr, store.ErrUnknownRun) {
		err = ferr
	}
	return err
}

// runStatus is the runs.status of a run that ended with err.
func runStatus(err error) string {
	if err == nil {
		return store.RunOK
	}
	switch errclass.Of(err) {
	case errclass.Partial:
		return store.RunPartial
	case errclass.Interrupted:
		return store.RunInterrupted
	}
	return store.RunFailed
}

// writeFault, when set (tests), fails the engine's next commits: what a
// full disk does to a batch's transaction.
var writeFaultHook func() error

func writeFault() error {
	if writeFaultHook != nil {
		return writeFaultHook()
	}
	return nil
}
