package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"pipeline/classify"
	"pipeline/errclass"
	"pipeline/store"
)

func TestReadList_BOMAndMalformed(t *testing.T) {
	for _, c := range []struct {
		name, list, text string
		paths            []string // "!" marks an invalid line's input
	}{
		{"PlainBOM", "l.txt", "\ufeffa.jpg\nb.jpg\n", []string{"/base/a.jpg", "/base/b.jpg"}},
		{"CSVBOMHeader", "l.txt", "\ufeffpath,label\na.jpg,x\n", []string{"/base/a.jpg"}},
		{"CSVEmptyPath", "l.csv", "a.jpg,x\n,y\nc.jpg,z\n", []string{"/base/a.jpg", "!l.csv:2", "/base/c.jpg"}},
		{"CSVBrokenQuote", "l.csv", "a.jpg,x\nb\"q.jpg,y\nc.jpg,z\n", []string{"/base/a.jpg", "!l.csv:2", "/base/c.jpg"}},
		{"PlainBlankPath", "l.txt", "a.jpg\n   \nb.jpg\n", []string{"/base/a.jpg", "/base/b.jpg"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			err := ReadList(strings.NewReader(c.text), c.list, "/base", func(in Input) error {
				if in.Invalid != "" {
					got = append(got, "!"+in.Path)
				} else {
					got = append(got, in.Path)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(c.paths) {
				t.Errorf("got %q, want %q", got, c.paths)
			}
		})
	}
}

// FuzzListReader: any list text is read to its end without a panic; every
// input is either a clean absolute path or an invalid line naming its line.
func FuzzListReader(f *testing.F) {
	for _, s := range []string{"a.jpg\n", "\ufeffpath,label\na.jpg,x\n", "a,b,c\n\"x\n", "#c\n\n/abs.jpg\r\n", "path,label\n\"a\"\"b\",c\n", ",\n", "\ufeff"} {
		f.Add(s, "l.csv")
		f.Add(s, "l.txt")
	}
	f.Fuzz(func(t *testing.T, text, name string) {
		lines := strings.Count(text, "\n") + 1
		n := 0
		err := ReadList(strings.NewReader(text), name, "/base", func(in Input) error {
			n++
			if in.Invalid != "" {
				if !strings.HasPrefix(in.Invalid, "list "+name+" line ") {
					t.Errorf("invalid line message %q", in.Invalid)
				}
				return nil
			}
			if !filepath.IsAbs(in.Path) || filepath.Clean(in.Path) != in.Path {
				t.Errorf("path %q is not absolute and clean", in.Path)
			}
			return nil
		})
		if err != nil && !strings.Contains(err.Error(), "token too long") {
			t.Errorf("ReadList: %v", err)
		}
		if n > lines {
			t.Errorf("%d inputs from %d lines", n, lines)
		}
	})
}

// TestExtract_CountsAfterFailedCommit: when a batch's commit fails (a full
// disk), the run's counters describe only what was committed (issue 11.3).
func TestExtract_CountsAfterFailedCommit(t *testing.T) {
	dir := t.TempDir()
	imgs := filepath.Join(dir, "images")
	for i := 0; i < 24; i++ {
		writePicture(t, filepath.Join(imgs, "c", fmt.Sprintf("img%02d.png", i)), uint64(i), 40, 40)
	}
	db := filepath.Join(dir, "f.db")
	calls := 0
	writeFaultHook = func() error {
		calls++
		if calls > 1 {
			return errors.New("database or disk is full")
		}
		return nil
	}
	defer func() { writeFaultHook = nil }()
	sum, err := Extract(context.Background(), ExtractOptions{DB: db, Model: tinyModel(t, tinyVGG, "caffe"), Layers: []string{"fc2"}, Batch: 8, Nets: 1, Images: imgs})
	if err == nil || !strings.Contains(err.Error(), "disk is full") {
		t.Fatalf("err %v, want the commit's error", err)
	}
	r := query(t, db, `SELECT seen, extracted, present, duplicates, failed, status, exit_code FROM runs`, nil)[0]
	addsUp(t, r)
	vectors := asInt(query(t, db, `SELECT count(*) FROM features`, nil)[0][0])
	paths := asInt(query(t, db, `SELECT count(*) FROM image_paths`, nil)[0][0])
	if asInt(r[1]) != vectors || asInt(r[0]) != paths || vectors != 8 {
		t.Errorf("runs row seen %v extracted %v; the database has %d paths and %d vectors (want 8: one batch committed)", r[0], r[1], paths, vectors)
	}
	if r[5] != "failed" || asInt(r[6]) != 1 || sum.Status != "failed" {
		t.Errorf("run status %v exit %v, summary %s; want failed, 1", r[5], r[6], sum.Status)
	}
}

// TestFit_NonFiniteStoresNothing: a fit whose numbers cannot be written as
// JSON fails before storing the classifier, and the run records the code
// the process exits with (issue 11.7).
func TestFit_NonFiniteStoresNothing(t *testing.T) {
	dir := t.TempDir()
	imgs := filepath.Join(dir, "images")
	for i := 0; i < 12; i++ {
		writePicture(t, filepath.Join(imgs, fmt.Sprintf("c%d", i%2), fmt.Sprintf("img%02d.png", i)), uint64(i), 40, 40)
	}
	db := filepath.Join(dir, "f.db")
	if _, err := Extract(context.Background(), ExtractOptions{DB: db, Model: tinyModel(t, tinyVGG, "caffe"), Layers: []string{"fc2"}, Images: imgs}); err != nil {
		t.Fatal(err)
	}
	// logreg ignores coef0, so the fit itself works; its parameters then
	// hold a NaN that encoding/json refuses.
	p := classify.DefaultParams("logreg")
	p.Coef0 = math.NaN()
	_, err := Fit(context.Background(), FitOptions{DB: db, Set: SetQuery{Layer: "fc2"}, Name: "n", Params: p, TestFrac: 0.2})
	if got := errclass.ExitCode(err); got != 5 {
		t.Errorf("exit code %d (%v), want 5", got, err)
	}
	if n := asInt(query(t, db, `SELECT count(*) FROM classifiers`, nil)[0][0]); n != 0 {
		t.Errorf("%d classifiers stored", n)
	}
	rows := query(t, db, `SELECT status, exit_code FROM runs WHERE command = 'fit'`, nil)
	if len(rows) != 1 || asInt(rows[0][1]) != 5 || rows[0][0] != store.RunFailed {
		t.Errorf("fit runs %v, want one failed with exit code 5", rows)
	}
}

// TestPathB64: only non-UTF-8 paths get their bytes.
func TestPathB64(t *testing.T) {
	if PathB64("/a/café.png") != "" {
		t.Error("a UTF-8 path got path_b64")
	}
	p := "/a/caf\xe9.png"
	if utf8.ValidString(p) || PathB64(p) != "L2EvY2Fm6S5wbmc=" {
		t.Errorf("PathB64(%q) = %q", p, PathB64(p))
	}
	_ = bytes.MinRead
}
