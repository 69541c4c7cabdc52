package store

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// makeDirReadOnly makes dir read-only for this process: chmod 555 when it
// is not root; as root (whom permissions do not stop) a read-only bind
// mount of dir onto itself, which is what a read-only file system looks
// like (EROFS). It skips, saying why, when neither is possible.
func makeDirReadOnly(t *testing.T, dir string) {
	t.Helper()
	if os.Geteuid() != 0 {
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(dir, 0o755) })
		return
	}
	if out, err := exec.Command("mount", "--bind", dir, dir).CombinedOutput(); err != nil {
		t.Skipf("running as root, and a read-only bind mount is not possible here (needs CAP_SYS_ADMIN): mount --bind: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	if out, err := exec.Command("mount", "-o", "remount,ro,bind", dir).CombinedOutput(); err != nil {
		t.Skipf("remount read-only: %v: %s", err, out)
	}
	if f, err := os.Create(filepath.Join(dir, "probe")); err == nil {
		f.Close()
		t.Fatal("the directory is still writable")
	}
}

// TestOpen_ReadOnlyDirectory: readers of a database in a directory they
// cannot write (a read-only file system) work, create no -wal/-shm, and say
// that they read the file as immutable.
func TestOpen_ReadOnlyDirectory(t *testing.T) {
	ctx := context.Background()
	path, _, _ := corruptFixture(t) // 300 images, 64-d, closed: the main file holds everything
	dir := filepath.Dir(path)
	var mu sync.Mutex
	var notes []string
	Notify = func(msg string) { mu.Lock(); notes = append(notes, msg); mu.Unlock() }
	defer func() { Notify = nil }()
	makeDirReadOnly(t, dir)
	before := snapshotDir(t, dir)

	db, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only Open in a read-only directory: %v", err)
	}
	defer db.Close()
	if n := queryInt(t, db, `SELECT count(*) FROM features`); n != 300 {
		t.Errorf("%d vectors, want 300", n)
	}
	if _, rows, err := db.Query(ctx, `SELECT count(*) FROM images`, nil, false); err != nil || rows[0][0] != int64(300) {
		t.Errorf("Query: %v, %v", rows, err)
	}
	if rep, err := db.Check(ctx); err != nil || !rep.Healthy() {
		t.Errorf("Check: %+v, %v", rep, err)
	}
	if _, err := db.Runs(ctx, 0); err != nil {
		t.Errorf("Runs: %v", err)
	}
	sets, err := db.FeatureSets(ctx)
	if err != nil || len(sets) != 1 {
		t.Fatalf("FeatureSets: %v, %v", sets, err)
	}
	nn, err := db.Nearest(ctx, sets[0].ID, vecOf(1, sets[0].ID, 64), NearestOptions{K: 3, Method: SearchC})
	if err != nil || len(nn) != 3 {
		t.Errorf("Nearest: %v, %v", nn, err)
	}
	// A bad query still gets its position (errorOffset's own connection).
	if _, _, err := db.Query(ctx, "SELECT nope FROM images", nil, false); err == nil || !strings.Contains(err.Error(), "column") {
		t.Errorf("bad query: %v", err)
	}
	db.Close()
	if d := before.diff(snapshotDir(t, dir)); d != "" {
		t.Errorf("readers changed the read-only directory: %s", d)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(notes) != 1 || !strings.Contains(notes[0], "not writable") || !strings.Contains(notes[0], "immutable") || !strings.Contains(notes[0], path) {
		t.Errorf("notes = %q, want one saying the directory is not writable and the file is read as immutable", notes)
	}
}
