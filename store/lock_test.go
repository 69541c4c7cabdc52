package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDB_Lock(t *testing.T) {
	ctx := context.Background()

	t.Run("ErrLockedNamesHolder", func(t *testing.T) {
		db := newDB(t)
		holder := startChild(t, "hold-lock", "STORE_TEST_DB="+db.Path(), "STORE_TEST_HOLD=1m")
		run := holder.expect(t, "locked")
		_, err := db.Lock(ctx, 0, Holder{Command: "pipeline fit"})
		if !errors.Is(err, ErrLocked) {
			t.Fatalf("got %v, want ErrLocked", err)
		}
		var le *LockedError
		if !errors.As(err, &le) || le.Holder == nil {
			t.Fatalf("got %#v, want a *LockedError with the holder", err)
		}
		if got, want := le.Holder.PID, holder.cmd.Process.Pid; got != want {
			t.Errorf("holder pid = %d, want %d", got, want)
		}
		wantErr(t, err, "features.db is being written by run "+run, "(pipeline extract, pid "+fmt.Sprint(holder.cmd.Process.Pid),
			"since ")
		h, err := db.LockHolder()
		if err != nil || h == nil || fmt.Sprint(h.RunID) != run {
			t.Errorf("LockHolder = %+v, %v; want run %s", h, err, run)
		}
		holder.kill(t)
	})

	t.Run("WaitUntilReleased", func(t *testing.T) {
		db := newDB(t)
		holder := startChild(t, "hold-lock", "STORE_TEST_DB="+db.Path(), "STORE_TEST_HOLD=400ms")
		run := atoi(t, holder.expect(t, "locked"))
		release, err := db.Lock(ctx, 20*time.Second, Holder{Command: "pipeline fit"})
		if err != nil {
			t.Fatalf("Lock with wait: %v", err)
		}
		// The holder finishes its run before it releases the lock: had
		// Lock not waited for the release, the run would still be running.
		if r, err := db.Run(ctx, run); err != nil || r.Status != RunOK {
			t.Errorf("holder's run when the lock was acquired: %+v, %v; want finished", r, err)
		}
		if err := holder.wait(t); err != nil {
			t.Errorf("holder: %v; stderr: %s", err, holder.errb.String())
		}
		// The holder finished its run properly: nothing to abandon.
		if n, err := db.AbandonStaleRuns(ctx); err != nil || n != 0 {
			t.Errorf("AbandonStaleRuns = %d, %v; want 0", n, err)
		}
		if err := release(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("WaitExpires", func(t *testing.T) {
		db := newDB(t)
		holder := startChild(t, "hold-lock", "STORE_TEST_DB="+db.Path(), "STORE_TEST_HOLD=1m")
		holder.expect(t, "locked")
		start := time.Now()
		_, err := db.Lock(ctx, 300*time.Millisecond, Holder{})
		if !errors.Is(err, ErrLocked) {
			t.Fatalf("got %v, want ErrLocked", err)
		}
		if waited := time.Since(start); waited < 300*time.Millisecond || waited > 5*time.Second {
			t.Errorf("gave up after %v, want about 300ms", waited)
		}
		wantErr(t, err, "still busy after waiting")
		holder.kill(t)
	})

	t.Run("ContextCancelled", func(t *testing.T) {
		db := newDB(t)
		holder := startChild(t, "hold-lock", "STORE_TEST_DB="+db.Path(), "STORE_TEST_HOLD=1m")
		holder.expect(t, "locked")
		cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		_, err := db.Lock(cctx, time.Hour, Holder{})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want context.DeadlineExceeded", err)
		}
		holder.kill(t)
	})

	t.Run("KilledHolderDoesNotBlock", func(t *testing.T) {
		db := newDB(t)
		holder := startChild(t, "hold-lock", "STORE_TEST_DB="+db.Path(), "STORE_TEST_HOLD=1h")
		run := atoi(t, holder.expect(t, "locked"))
		holder.kill(t)
		start := time.Now()
		release, err := db.Lock(ctx, 0, Holder{Command: "pipeline extract"})
		if err != nil {
			t.Fatalf("Lock after the holder was killed: %v", err)
		}
		defer release()
		if d := time.Since(start); d > time.Second {
			t.Errorf("Lock took %v", d)
		}
		// The killed holder's run is still 'running' until a lock holder
		// abandons it.
		n, err := db.AbandonStaleRuns(ctx)
		if err != nil || n != 1 {
			t.Fatalf("AbandonStaleRuns = %d, %v; want 1", n, err)
		}
		r, err := db.Run(ctx, run)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != RunAbandoned || r.EndedAt.IsZero() {
			t.Errorf("killed run: status %s, ended %v; want abandoned with an end time", r.Status, r.EndedAt)
		}
	})

	t.Run("HolderFileUpdated", func(t *testing.T) {
		db := newDB(t)
		release, err := db.Lock(ctx, 0, Holder{Command: "pipeline extract"})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(db.LockPath())
		if !strings.Contains(string(b), `"command":"pipeline extract"`) || strings.Contains(string(b), "run_id") {
			t.Errorf("lock file before the run: %s", b)
		}
		id, err := db.StartRun(ctx, "extract", nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ = os.ReadFile(db.LockPath())
		if !strings.Contains(string(b), fmt.Sprintf(`"run_id":%d`, id)) {
			t.Errorf("lock file after StartRun(%d): %s", id, b)
		}
		// A second DB in the same process competes like another process.
		other, err := Open(db.Path(), Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		_, err = other.Lock(ctx, 0, Holder{})
		wantErr(t, err, fmt.Sprintf("run %d (pipeline extract, pid %d", id, os.Getpid()))
		if err := release(); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(db.LockPath()); len(b) != 0 {
			t.Errorf("lock file after release: %q, want empty", b)
		}
		release2, err := other.Lock(ctx, 0, Holder{})
		if err != nil {
			t.Fatalf("Lock after release: %v", err)
		}
		release2()
	})

	t.Run("ErrNotLocked", func(t *testing.T) {
		db := newDB(t)
		_, err := db.StartRun(ctx, "extract", nil)
		if !errors.Is(err, ErrNotLocked) {
			t.Errorf("StartRun without the lock: got %v, want ErrNotLocked", err)
		}
		_, err = db.AbandonStaleRuns(ctx)
		if !errors.Is(err, ErrNotLocked) {
			t.Errorf("AbandonStaleRuns without the lock: got %v, want ErrNotLocked", err)
		}
	})

	t.Run("LockFileBesideDatabase", func(t *testing.T) {
		db := newDB(t)
		if got, want := db.LockPath(), filepath.Join(filepath.Dir(db.Path()), "features.db.lock"); got != want {
			t.Errorf("LockPath = %s, want %s", got, want)
		}
	})
}
