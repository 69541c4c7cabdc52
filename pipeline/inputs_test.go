package pipeline

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func touch(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestWalkImages(t *testing.T) {
	root := t.TempDir()
	for _, f := range []string{
		"cats/b.jpg", "cats/a.JPG", "cats/sub/deep.png", "dogs/é t é.jpeg", "top.png",
		"cats/.hidden.jpg", ".git/x.png", "dogs/notes.txt", "dogs/anim.gif",
	} {
		touch(t, filepath.Join(root, f))
	}
	// A directory symlink loop and a symlink to another labeled folder.
	if err := os.Symlink("..", filepath.Join(root, "cats", "loop")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(root, "dogs"), filepath.Join(root, "hounds")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("missing.jpg", filepath.Join(root, "cats", "dangling.jpg")); err != nil {
		t.Fatal(err)
	}
	var got []string
	st, err := WalkImages(root, func(in Input) error {
		lab := "-"
		if in.Labeled {
			lab = in.Label
		}
		got = append(got, lab+" "+in.RelPath)
		if !filepath.IsAbs(in.Path) {
			t.Errorf("path %s not absolute", in.Path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"cats cats/a.JPG", "cats cats/b.jpg", "cats cats/dangling.jpg", "cats cats/sub/deep.png",
		"dogs dogs/anim.gif", "dogs dogs/é t é.jpeg",
		"- top.png",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("walk order/labels:\ngot  %q\nwant %q", got, want)
	}
	// cats/loop points at root (already visited), hounds at dogs (visited).
	if st.Loops != 2 {
		t.Errorf("loops = %d, want 2", st.Loops)
	}
	if st.Skipped != 3 { // .hidden.jpg, .git, notes.txt
		t.Errorf("skipped = %d, want 3", st.Skipped)
	}

	t.Run("ErrNotDir", func(t *testing.T) {
		_, err := WalkImages(filepath.Join(root, "top.png"), func(Input) error { return nil })
		if !errors.Is(err, ErrNotDir) || !strings.Contains(err.Error(), "top.png: not a directory") {
			t.Errorf("error %v", err)
		}
	})
}

func TestReadList(t *testing.T) {
	collect := func(t *testing.T, name, content string) ([]Input, error) {
		var got []Input
		err := ReadList(strings.NewReader(content), name, "/base", func(in Input) error {
			got = append(got, in)
			return nil
		})
		return got, err
	}
	t.Run("Plain", func(t *testing.T) {
		got, err := collect(t, "-", "a.jpg\n\n# comment\n/abs/b c.png\r\n")
		if err != nil {
			t.Fatal(err)
		}
		want := []Input{{Path: "/base/a.jpg", RelPath: "a.jpg", KeepLabel: true}, {Path: "/abs/b c.png", RelPath: "/abs/b c.png", KeepLabel: true}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %+v, want %+v", got, want)
		}
	})
	t.Run("CSV", func(t *testing.T) {
		got, err := collect(t, "files.txt", "path,label\nx/1.jpg,cat\n\"y,2.jpg\",dog\nz.jpg,\n")
		if err != nil {
			t.Fatal(err)
		}
		want := []Input{
			{Path: "/base/x/1.jpg", RelPath: "x/1.jpg", Label: "cat", Labeled: true},
			{Path: "/base/y,2.jpg", RelPath: "y,2.jpg", Label: "dog", Labeled: true},
			{Path: "/base/z.jpg", RelPath: "z.jpg"},
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %+v, want %+v", got, want)
		}
	})
	t.Run("TooManyFields", func(t *testing.T) {
		// One failure for the line, and the rest of the list is read.
		got, err := collect(t, "l.csv", "a.jpg,cat\nb.jpg,dog,extra\nc.jpg,cat\n")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 || got[1].Invalid != "list l.csv line 2: 3 fields, want path,label" || got[1].Path != "l.csv:2" || got[2].Path != "/base/c.jpg" {
			t.Errorf("got %+v", got)
		}
	})
}
