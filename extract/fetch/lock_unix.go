//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package fetch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// lockPoll is how often a waiting Lock tries again. Polling rather than a
// blocking flock keeps the wait cancellable through ctx.
const lockPoll = 100 * time.Millisecond

// Lock takes an exclusive advisory lock (flock(2)) on the file at path,
// creating it if needed, and returns the function that releases it. When
// another process (or another open of the file in this one) holds it,
// onWait is called once, with " (pid N)" naming the holder when known, and
// Lock waits until the lock is free or ctx ends.
//
// The lock file is never deleted: removing it would let a third process lock
// a new file while a second still waits on the old one.
func Lock(ctx context.Context, path string, onWait func(holder string)) (unlock func() error, err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	fd := int(f.Fd())
	waited := false
	for {
		err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if !waited {
			waited = true
			if onWait != nil {
				holder := ""
				if b, err := os.ReadFile(path); err == nil {
					if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
						holder = fmt.Sprintf(" (pid %d)", pid)
					}
				}
				onWait(holder)
			}
		}
		t := time.NewTimer(lockPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			f.Close()
			return nil, fmt.Errorf("waiting for lock %s: %w", path, context.Cause(ctx))
		case <-t.C:
		}
	}
	// Record the holder for the message of the next waiter.
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() error {
		uerr := syscall.Flock(fd, syscall.LOCK_UN)
		if err := f.Close(); uerr == nil {
			uerr = err
		}
		return uerr
	}, nil
}
