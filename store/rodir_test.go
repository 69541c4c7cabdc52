package store

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// makeDirReadOnly makes dir read-only for the reader: chmod 555 when this
// process is not root; as root (whom permissions do not stop) a read-only
// bind mount of dir onto itself, which is what a read-only file system
// looks like (EROFS). Where mounting is not allowed (no CAP_SYS_ADMIN, or
// STORE_TEST_NO_MOUNT is set) it chmods 555 and returns true: the reads
// must then run in a child process as nobody.
func makeDirReadOnly(t *testing.T, dir string) (asNobody bool) {
	t.Helper()
	chmod := func() {
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(dir, 0o755) })
	}
	if os.Geteuid() != 0 {
		chmod()
		return false
	}
	if os.Getenv("STORE_TEST_NO_MOUNT") == "" {
		if out, err := exec.Command("mount", "--bind", dir, dir).CombinedOutput(); err == nil {
			t.Cleanup(func() { exec.Command("umount", dir).Run() })
			if out, err := exec.Command("mount", "-o", "remount,ro,bind", dir).CombinedOutput(); err != nil {
				t.Fatalf("remount read-only: %v: %s", err, out)
			}
			if f, err := os.Create(filepath.Join(dir, "probe")); err == nil {
				f.Close()
				t.Fatal("the directory is still writable")
			}
			return false
		} else {
			t.Logf("no read-only bind mount (%v: %s): reading as nobody in a chmod 555 directory", err, strings.TrimSpace(string(out)))
		}
	}
	// Nobody must reach the directory and read the database.
	for d := filepath.Dir(dir); d != filepath.Dir(d); d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o005 != 0o005 {
			os.Chmod(d, fi.Mode().Perm()|0o005)
		}
	}
	chmod()
	return true
}

// readOnlyDirReads runs what readers do on the database at path and
// returns the first failure.
func readOnlyDirReads(path string) error {
	ctx := context.Background()
	db, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("read-only Open in a read-only directory: %w", err)
	}
	defer db.Close()
	var n int64
	if err := db.reader().QueryRow(`SELECT count(*) FROM features`).Scan(&n); err != nil || n != 300 {
		return fmt.Errorf("%d vectors, %v; want 300", n, err)
	}
	if _, rows, err := db.Query(ctx, `SELECT count(*) FROM images`, nil, false); err != nil || rows[0][0] != int64(300) {
		return fmt.Errorf("Query: %v, %v", rows, err)
	}
	if rep, err := db.Check(ctx); err != nil || !rep.Healthy() {
		return fmt.Errorf("Check: %+v, %v", rep, err)
	}
	if _, err := db.Runs(ctx, 0); err != nil {
		return fmt.Errorf("Runs: %v", err)
	}
	sets, err := db.FeatureSets(ctx)
	if err != nil || len(sets) != 1 {
		return fmt.Errorf("FeatureSets: %v, %v", sets, err)
	}
	nn, err := db.Nearest(ctx, sets[0].ID, vecOf(1, sets[0].ID, 64), NearestOptions{K: 3, Method: SearchC})
	if err != nil || len(nn) != 3 {
		return fmt.Errorf("Nearest: %v, %v", nn, err)
	}
	// A bad query still gets its position (errorOffset's own connection).
	if _, _, err := db.Query(ctx, "SELECT nope FROM images", nil, false); err == nil || !strings.Contains(err.Error(), "column 8") {
		return fmt.Errorf("bad query: %v", err)
	}
	return nil
}

// childReadOnlyDir is readOnlyDirReads in a child process; it prints the
// notes, one per line.
func childReadOnlyDir() error {
	Notify = func(msg string) { fmt.Println("note:", msg) }
	return readOnlyDirReads(os.Getenv("STORE_TEST_DB"))
}

// TestOpen_ReadOnlyDirectory: readers of a database in a directory they
// cannot write (a read-only file system) work, create no -wal/-shm, and say
// that they read the file as immutable.
func TestOpen_ReadOnlyDirectory(t *testing.T) {
	path, _, _ := corruptFixture(t) // 300 images, 64-d, closed: the main file holds everything
	dir := filepath.Dir(path)
	var mu sync.Mutex
	var notes []string
	Notify = func(msg string) { mu.Lock(); notes = append(notes, msg); mu.Unlock() }
	defer func() { Notify = nil }()
	asNobody := makeDirReadOnly(t, dir)
	before := snapshotDir(t, dir)

	if !asNobody {
		if err := readOnlyDirReads(path); err != nil {
			t.Error(err)
		}
	} else {
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		bindir := t.TempDir()
		os.Chmod(bindir, 0o755)
		b, err := os.ReadFile(exe)
		if err != nil {
			t.Fatal(err)
		}
		bin := filepath.Join(bindir, "store.test")
		if err := os.WriteFile(bin, b, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(), "STORE_TEST_CHILD=read-ro-dir", "STORE_TEST_DB="+path, "HOME="+bindir)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child as nobody: %v: %s", err, out)
		}
		for _, l := range strings.Split(string(out), "\n") {
			if m, ok := strings.CutPrefix(l, "note: "); ok {
				notes = append(notes, m)
			}
		}
	}
	if d := before.diff(snapshotDir(t, dir)); d != "" {
		t.Errorf("readers changed the read-only directory: %s", d)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(notes) != 1 || !strings.Contains(notes[0], "not writable") || !strings.Contains(notes[0], "immutable") || !strings.Contains(notes[0], path) {
		t.Errorf("notes = %q, want one saying the directory is not writable and the file is read as immutable", notes)
	}
}
