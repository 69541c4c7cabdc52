package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"pipeline/errclass"
)

// ErrLocked: another process holds the writer lock. The error is a
// *LockedError that names the holder.
var ErrLocked = errclass.New(errclass.Locked, "database is being written by another process")

// ErrNotLocked: an operation that only the writer-lock holder may do.
var ErrNotLocked = errclass.New(errclass.Fatal, "writer lock not held")

// Holder describes the process holding the writer lock. It is stored as JSON
// in <db>.lock so that a process that finds the lock busy can say who has it.
type Holder struct {
	PID     int       `json:"pid"`
	Host    string    `json:"host"`
	Command string    `json:"command"`          // e.g. "pipeline extract"
	RunID   int64     `json:"run_id,omitempty"` // runs.id once known
	Since   time.Time `json:"since"`
}

// LockedError is returned by Lock when another process holds the lock.
type LockedError struct {
	Path   string        // the database file
	Holder *Holder       // nil when the lock file could not be read
	Waited time.Duration // how long Lock waited before giving up (0: did not wait)
}

func (e *LockedError) Error() string {
	var b strings.Builder
	b.WriteString(filepath.Base(e.Path))
	b.WriteString(" is being written by ")
	if h := e.Holder; h != nil {
		var who []string
		if h.Command != "" {
			who = append(who, h.Command)
		}
		pid := fmt.Sprintf("pid %d", h.PID)
		if host, _ := os.Hostname(); h.Host != "" && h.Host != host {
			pid += " on " + h.Host
		}
		who = append(who, pid)
		if !h.Since.IsZero() {
			who = append(who, "since "+sinceString(h.Since))
		}
		if h.RunID != 0 {
			fmt.Fprintf(&b, "run %d (%s)", h.RunID, strings.Join(who, ", "))
		} else {
			fmt.Fprintf(&b, "another process (%s)", strings.Join(who, ", "))
		}
	} else {
		b.WriteString("another process")
	}
	if e.Waited > 0 {
		round := time.Second
		if e.Waited < time.Minute {
			round = 100 * time.Millisecond
		}
		fmt.Fprintf(&b, "; still busy after waiting %s", e.Waited.Round(round))
	}
	return b.String()
}

// Is makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// Unwrap gives the error ErrLocked's class.
func (e *LockedError) Unwrap() error { return ErrLocked }

// sinceString shows a time of today as 15:04:05 (local), older ones with the date.
func sinceString(t time.Time) string {
	t = t.Local()
	y, m, d := time.Now().Date()
	ty, tm, td := t.Date()
	if y == ty && m == tm && d == td {
		return t.Format("15:04:05")
	}
	return t.Format("2006-01-02 15:04:05")
}

// writerLock is a held flock on <db>.lock.
type writerLock struct {
	db     *DB
	f      *os.File
	mu     sync.Mutex
	holder Holder
	once   sync.Once
	err    error
}

// LockPath returns the path of the writer-lock file, <db>.lock.
func (db *DB) LockPath() string { return db.path + ".lock" }

// lockPoll is how often Lock retries a busy lock while waiting.
const lockPoll = 100 * time.Millisecond

// Lock takes the database's writer lock: flock(2) on <db>.lock, so at most
// one process writes runs, vectors and classifiers at a time while readers
// never wait. The kernel drops the lock when the holding process exits, even
// by SIGKILL, so a dead holder never blocks anyone.
//
// holder describes this process; PID, Host and Since are filled in when zero.
// When the lock is busy and wait is 0, Lock returns a *LockedError naming the
// holder; with wait > 0 it retries until it gets the lock, ctx is done, or
// wait has passed. release gives the lock back (Close also does).
func (db *DB) Lock(ctx context.Context, wait time.Duration, holder Holder) (release func() error, err error) {
	if _, err := db.writer("lock"); err != nil {
		return nil, err
	}
	db.mu.Lock()
	held := db.lock != nil
	db.mu.Unlock()
	if held {
		return nil, fmt.Errorf("lock %s: already held by this process", db.LockPath())
	}
	// A name added since Open would let a writer in through it.
	if err := checkLinks(db.path); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(db.LockPath(), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", db.path, err)
	}
	start := time.Now()
	for {
		err := flock(f, syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", db.LockPath(), err)
		}
		waited := time.Since(start)
		if wait <= 0 || waited >= wait {
			f.Close()
			le := &LockedError{Path: db.path, Holder: readHolder(db.LockPath())}
			if wait > 0 {
				le.Waited = waited
			}
			return nil, le
		}
		t := time.NewTimer(min(lockPoll, wait-waited))
		select {
		case <-ctx.Done():
			t.Stop()
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", db.path, ctx.Err())
		case <-t.C:
		}
	}
	if holder.PID == 0 {
		holder.PID = os.Getpid()
	}
	if holder.Host == "" {
		holder.Host, _ = os.Hostname()
	}
	if holder.Since.IsZero() {
		holder.Since = time.Now()
	}
	l := &writerLock{db: db, f: f, holder: holder}
	if err := l.write(); err != nil {
		_ = flock(f, syscall.LOCK_UN)
		f.Close()
		return nil, err
	}
	db.mu.Lock()
	db.lock = l
	db.mu.Unlock()
	return l.release, nil
}

// UpdateLockHolder rewrites the holder information of the lock this DB
// holds, e.g. to add the run id; StartRun does this by itself.
func (db *DB) UpdateLockHolder(update func(*Holder)) error {
	db.mu.Lock()
	l := db.lock
	db.mu.Unlock()
	if l == nil {
		return fmt.Errorf("update lock holder: %w", ErrNotLocked)
	}
	l.mu.Lock()
	update(&l.holder)
	l.mu.Unlock()
	return l.write()
}

// LockHolder reports who holds the writer lock, without taking it: nil when
// the lock is free.
func (db *DB) LockHolder() (*Holder, error) {
	f, err := os.OpenFile(db.LockPath(), os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read lock %s: %w", db.LockPath(), err)
	}
	defer f.Close()
	// A shared lock succeeds exactly when nobody holds the exclusive one.
	if err := flock(f, syscall.LOCK_SH|syscall.LOCK_NB); err == nil {
		_ = flock(f, syscall.LOCK_UN)
		return nil, nil
	}
	h := readHolder(db.LockPath())
	if h == nil {
		h = &Holder{}
	}
	return h, nil
}

// holds reports whether db holds the writer lock.
func (db *DB) holds() bool {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.lock != nil
}

func (l *writerLock) write() error {
	l.mu.Lock()
	b, err := json.Marshal(l.holder)
	l.mu.Unlock()
	if err != nil {
		return err
	}
	b = append(b, '\n')
	// Truncate then write: a reader between the two sees an empty file and
	// retries (readHolder).
	if err := l.f.Truncate(0); err != nil {
		return fmt.Errorf("lock %s: %w", l.f.Name(), err)
	}
	if _, err := l.f.WriteAt(b, 0); err != nil {
		return fmt.Errorf("lock %s: %w", l.f.Name(), err)
	}
	return nil
}

// release empties the lock file and unlocks it. The file itself stays:
// deleting it would let a waiter lock the old inode while a newcomer locks
// a new file of the same name.
func (l *writerLock) release() error {
	l.once.Do(func() {
		l.db.mu.Lock()
		if l.db.lock == l {
			l.db.lock = nil
		}
		l.db.mu.Unlock()
		err1 := l.f.Truncate(0)
		err2 := flock(l.f, syscall.LOCK_UN)
		err3 := l.f.Close()
		if err := errors.Join(err1, err2, err3); err != nil {
			l.err = fmt.Errorf("unlock %s: %w", l.f.Name(), err)
		}
	})
	return l.err
}

// readHolder reads the holder JSON, retrying briefly when it catches the
// holder between truncating and writing.
func readHolder(path string) *Holder {
	for range 5 {
		b, err := os.ReadFile(path)
		if err == nil && len(b) > 0 {
			var h Holder
			if json.Unmarshal(b, &h) == nil {
				return &h
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

func flock(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if err != syscall.EINTR {
			return err
		}
	}
}
