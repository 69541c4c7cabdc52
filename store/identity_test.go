package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestDB_LockIdentity: one writer per database file whatever the path it
// is named by: a symlink to the file, or to its directory, finds the same
// lock, and a hard link (a second name SQLite would give a second WAL) is
// refused for writing.
func TestDB_LockIdentity(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "features.db")
	first, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	release, err := first.Lock(ctx, 0, Holder{Command: "pipeline extract"})
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	run, err := first.StartRun(ctx, "extract", nil)
	if err != nil {
		t.Fatal(err)
	}

	links := t.TempDir()
	fileLink := filepath.Join(links, "link.db")
	if err := os.Symlink(path, fileLink); err != nil {
		t.Fatal(err)
	}
	dirLink := filepath.Join(links, "dir")
	if err := os.Symlink(dir, dirLink); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{fileLink, filepath.Join(dirLink, "features.db")} {
		t.Run("Symlink", func(t *testing.T) {
			second, err := Open(p, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer second.Close()
			_, err = second.Lock(ctx, 0, Holder{Command: "pipeline fit"})
			if !errors.Is(err, ErrLocked) {
				t.Fatalf("second writer through %s: got %v, want ErrLocked", p, err)
			}
			wantErr(t, err, "is being written by run")
			// The live run was not marked abandoned by anyone.
			if r, err := first.Run(ctx, run); err != nil || r.Status != RunRunning {
				t.Errorf("first writer's run = %+v, %v; want running", r, err)
			}
		})
	}

	t.Run("HardLink", func(t *testing.T) {
		hard := filepath.Join(dir, "hard.db")
		if err := os.Link(path, hard); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(hard)
		for _, p := range []string{hard, path} {
			db, err := Open(p, Options{})
			if err == nil {
				db.Close()
				t.Fatalf("Open(%s) for writing succeeded with 2 links", p)
			}
			if !errors.Is(err, ErrHardLinked) {
				t.Errorf("got %v, want ErrHardLinked", err)
			}
			wantErr(t, err, p, "2 hard links", "per file name", "find "+dir+" -samefile")
		}
		// Readers are fine.
		ro, err := Open(hard, Options{ReadOnly: true})
		if err != nil {
			t.Fatalf("read-only open of a hard-linked database: %v", err)
		}
		ro.Close()
	})

	t.Run("HardLinkAfterOpen", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "other.db")
		db, err := Open(p, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := os.Link(p, p+".2"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Lock(ctx, 0, Holder{}); !errors.Is(err, ErrHardLinked) {
			t.Fatalf("Lock after a link appeared: got %v, want ErrHardLinked", err)
		}
	})
}

// TestDB_CloseCheckpoints: after a writer closes, the main file holds every
// row (a cp of the idle database is complete), even while another
// connection, which keeps SQLite from checkpointing on close by itself, is
// open.
func TestDB_CloseCheckpoints(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "features.db")
	reader := func() *DB { // opened before the writer and kept open
		w, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		w.Close()
		r, err := Open(path, Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}()
	defer reader.Close()
	if _, _, err := reader.Query(ctx, `SELECT count(*) FROM images`, nil, false); err != nil {
		t.Fatal(err)
	}

	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	release, err := db.Lock(ctx, 0, Holder{})
	if err != nil {
		t.Fatal(err)
	}
	fs := testSet(t, db, "fc2", 4)
	var items []Item
	for i := range 50 {
		items = append(items, item(fmt.Sprint("img", i), []string{fmt.Sprintf("/data/cat/%d.jpg", i)}, fs))
	}
	if err := db.WriteBatch(ctx, 0, Batch{Items: items}); err != nil {
		t.Fatal(err)
	}
	_ = release // Close releases it
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// cp features.db, without the -wal.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(cp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Open(cp, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if n := queryInt(t, c, `SELECT count(*) FROM features`); n != 50 {
		t.Errorf("the copy of the main file has %d vectors, want 50", n)
	}
	if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() != 0 {
		t.Errorf("features.db-wal is %d bytes after the writer closed, want empty or absent", fi.Size())
	}
}
