package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// corruptFixture writes a database with 300 images and 64-d vectors
// (dozens of b-tree pages), closes it (the main file then holds everything)
// and returns its path, its page size and the root page of features.
func corruptFixture(t *testing.T) (path string, pageSize, featuresRoot int64) {
	t.Helper()
	ctx := context.Background()
	path = filepath.Join(t.TempDir(), "features.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	fs := testSet(t, db, "fc2", 64)
	var items []Item
	for i := range 300 {
		items = append(items, item(fmt.Sprint("img", i), []string{fmt.Sprintf("/data/cat/%d.jpg", i)}, fs))
	}
	if err := db.WriteBatch(ctx, 0, Batch{Items: items}); err != nil {
		t.Fatal(err)
	}
	pageSize = queryInt(t, db, `PRAGMA page_size`)
	featuresRoot = queryInt(t, db, `SELECT rootpage FROM sqlite_schema WHERE name = 'features'`)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + "-wal"); err == nil {
		if fi, _ := os.Stat(path + "-wal"); fi.Size() > 0 {
			t.Fatal("the WAL is not empty after Close")
		}
	}
	return path, pageSize, featuresRoot
}

// writeAt overwrites bytes of the file.
func writeAt(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// TestDB_CheckCorruption damages the file the ways issue 11 did: Check
// reports SQLite's findings (naming the page) as integrity problems instead
// of failing with one generic "malformed" error, and a writing Open refuses
// the file with ErrCorrupt.
func TestDB_CheckCorruption(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string, pageSize, root int64)
		parts  []string // in some integrity problem
	}{
		{"PageHeader", func(t *testing.T, path string, pageSize, root int64) {
			// The features table's root page is an interior page: its
			// header's type byte and cell count become garbage.
			writeAt(t, path, (root-1)*pageSize, []byte{0x42, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
		}, []string{"page"}},
		{"CellsOffThePage", func(t *testing.T, path string, pageSize, root int64) {
			// The cell pointers of the root page point past its end.
			b := make([]byte, 16)
			for i := 0; i < len(b); i += 2 {
				binary.BigEndian.PutUint16(b[i:], 0xfff0)
			}
			writeAt(t, path, (root-1)*pageSize+12, b)
		}, []string{"page"}},
		{"TruncatedToHalf", func(t *testing.T, path string, pageSize, root int64) {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, fi.Size()/2/pageSize*pageSize); err != nil {
				t.Fatal(err)
			}
		}, []string{"truncated", "its header says", "pages", "are missing"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, pageSize, root := corruptFixture(t)
			tc.damage(t, path, pageSize, root)
			before := snapshotDir(t, filepath.Dir(path))

			// Writers refuse it, naming the damage, and write nothing.
			w, err := Open(path, Options{})
			if err == nil {
				w.Close()
				t.Fatal("a writing Open of the damaged file succeeded")
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("writing Open: got %v, want ErrCorrupt", err)
			}
			wantErr(t, err, path, "corrupt", "page", "nothing was written")
			if d := before.diff(snapshotDir(t, filepath.Dir(path))); d != "" {
				t.Errorf("the refused writer changed the directory: %s", d)
			}

			ro, err := Open(path, Options{ReadOnly: true})
			if err != nil {
				// Half the file is gone, the schema with it: nothing
				// can be read, and the error says why.
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("read-only Open: got %v, want ErrCorrupt", err)
				}
				wantErr(t, err, append(tc.parts, path)...)
				return
			}
			defer ro.Close()
			rep, err := ro.Check(ctx)
			if err != nil {
				t.Fatalf("Check failed instead of reporting: %v", err)
			}
			if rep.Healthy() || rep.Counts[ProblemIntegrity] == 0 {
				t.Fatalf("Check = %+v, want integrity problems", rep)
			}
			var msgs []string
			for _, p := range rep.Problems {
				if p.Kind == ProblemIntegrity {
					msgs = append(msgs, p.Message)
				}
			}
			all := strings.Join(msgs, "\n")
			for _, part := range tc.parts {
				if !strings.Contains(all, part) {
					t.Errorf("integrity problems do not mention %q:\n%s", part, all)
				}
			}

		})
	}
}
