package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

func TestQueryFault(t *testing.T) {
	ctx := context.Background()
	db := newDB(t)
	if err := db.WriteBatch(ctx, 0, Batch{Items: []Item{item("a", []string{"/data/cat/a.jpg"})}}); err != nil {
		t.Fatal(err)
	}
	t.Run("TheQuerys", func(t *testing.T) {
		for _, tc := range []struct {
			q      string
			params map[string]any
			write  bool
		}{
			{"SELEC 1", nil, false},
			{"SELECT nope FROM images", nil, false},
			{"SELECT * FROM nope", nil, false},
			{"SELECT no_such_function(1)", nil, false},
			{"SELECT json_extract('{', '$')", nil, false},
			{"SELECT :x", nil, false},
			{"SELECT * FROM images WHERE id = ?", nil, false},
			{"DELETE FROM images", nil, false},
			{"INSERT INTO images (sha256) VALUES ('x')", nil, true},           // NOT NULL
			{"INSERT INTO splits VALUES (1, 'validation', 'now')", nil, true}, // CHECK
			{"SELECT vec_distance_cosine(vec_f32('[1,2]'), vec_f32('[1,2,3]'))", nil, false},
		} {
			_, _, err := db.Query(ctx, tc.q, tc.params, tc.write)
			if err == nil || !QueryFault(err) {
				t.Errorf("%s: QueryFault(%v) = false, want true", tc.q, err)
			}
		}
	})
	t.Run("TheEnvironments", func(t *testing.T) {
		if QueryFault(nil) || QueryFault(errors.New("disk full")) || QueryFault(fmt.Errorf("open: %w", ErrNotDatabase)) {
			t.Error("QueryFault is true for an error that no query caused")
		}
		// A database whose images page is garbage: SQLITE_CORRUPT is not
		// the query's fault.
		path := db.Path()
		root := queryInt(t, db, `SELECT rootpage FROM sqlite_master WHERE name = 'images'`)
		size := queryInt(t, db, `PRAGMA page_size`)
		mustExec(t, db.rw, `PRAGMA wal_checkpoint(TRUNCATE)`) // everything into the main file
		db.Close()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for i := (root - 1) * size; i < root*size; i++ {
			b[i] = 0x5a
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		os.Remove(path + "-wal")
		os.Remove(path + "-shm")
		bad, err := Open(path, Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer bad.Close()
		_, _, err = bad.Query(ctx, "SELECT path, width FROM images", nil, false)
		if err == nil || QueryFault(err) || !strings.Contains(err.Error(), "malformed") {
			t.Errorf("corrupt database: QueryFault(%v) = true, want an error that is not the query's fault", err)
		}
	})
}
