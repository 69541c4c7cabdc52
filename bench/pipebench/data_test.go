package main

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"pipeline/internal/testutil"
	"pipeline/pipeline"
)

func testJPEG(t *testing.T, seed int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 37, 23))
	for y := 0; y < 23; y++ {
		for x := 0; x < 37; x++ {
			img.Set(x, y, color.RGBA{uint8(7*x + seed), uint8(11 * y), uint8(x * y), 255})
		}
	}
	return testutil.EncodeJPEG(t, img, 90)
}

func TestMarkedJPEG(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		orig := testJPEG(t, 0)
		a, err := markedJPEG(orig, "pipebench copy 0")
		if err != nil {
			t.Fatal(err)
		}
		b, err := markedJPEG(orig, "pipebench copy 1")
		if err != nil {
			t.Fatal(err)
		}
		if sha256.Sum256(a) == sha256.Sum256(b) || sha256.Sum256(a) == sha256.Sum256(orig) {
			t.Fatal("marked copies have the same SHA-256 as each other or the original")
		}
		want, err := jpeg.Decode(bytes.NewReader(orig))
		if err != nil {
			t.Fatal(err)
		}
		for _, data := range [][]byte{a, b} {
			got, err := jpeg.Decode(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("decode marked copy: %v", err)
			}
			g, w := got.(*image.YCbCr), want.(*image.YCbCr)
			if g.Rect != w.Rect || !bytes.Equal(g.Y, w.Y) || !bytes.Equal(g.Cb, w.Cb) || !bytes.Equal(g.Cr, w.Cr) {
				t.Error("marked copy decodes to other pixels than the original")
			}
		}
	})
	t.Run("ErrNotJPEG", func(t *testing.T) {
		_, err := markedJPEG([]byte("\x89PNG\r\n\x1a\n...."), "x")
		if err == nil || !strings.Contains(err.Error(), "not a JPEG") {
			t.Errorf("err = %v, want not a JPEG", err)
		}
	})
}

func TestMakeCopies(t *testing.T) {
	src := t.TempDir()
	var ins []pipeline.Input
	for i, label := range []string{"cats", "dogs"} {
		p := filepath.Join(src, label, "a.jpg")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, testJPEG(t, 50*i), 0o644); err != nil {
			t.Fatal(err)
		}
		ins = append(ins, pipeline.Input{Path: p, Label: label, Labeled: true})
	}
	dst := t.TempDir()
	got, err := makeCopies(dst, ins, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 6 {
		t.Fatalf("got %d copies, want 6", len(got))
	}
	seen := map[[32]byte]string{}
	for _, in := range got {
		data, err := os.ReadFile(in.Path)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		if prev, ok := seen[sum]; ok {
			t.Errorf("%s and %s have the same contents", prev, in.Path)
		}
		seen[sum] = in.Path
		if want := filepath.Base(filepath.Dir(in.Path)); in.Label != want {
			t.Errorf("%s: label %q, want %q", in.Path, in.Label, want)
		}
	}
	// A second call reuses the files.
	before, _ := os.Stat(got[0].Path)
	if _, err := makeCopies(dst, ins, 3); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(got[0].Path)
	if !after.ModTime().Equal(before.ModTime()) {
		t.Error("existing copy was rewritten")
	}
}

func TestSubset(t *testing.T) {
	var ins []pipeline.Input
	for i := 0; i < 808; i++ {
		label := []string{"Humans", "cats", "dogs", "horses"}[i/202]
		ins = append(ins, pipeline.Input{Path: string(rune('a' + i/202)), Label: label})
	}
	for _, c := range []struct{ n, want int }{{0, 808}, {808, 808}, {1000, 808}, {40, 40}, {4, 4}} {
		got := subset(ins, c.n)
		if len(got) != c.want {
			t.Errorf("subset(%d) has %d images, want %d", c.n, len(got), c.want)
		}
		if c.n >= 4 {
			labels := map[string]int{}
			for _, in := range got {
				labels[in.Label]++
			}
			if len(labels) != 4 {
				t.Errorf("subset(%d) covers classes %v, want all 4", c.n, labels)
			}
		}
	}
}

func TestFindData(t *testing.T) {
	dir := t.TempDir()
	t.Run("OK", func(t *testing.T) {
		got, err := findData("", []string{filepath.Join(dir, "missing"), dir})
		if err != nil || got != dir {
			t.Errorf("findData = %q, %v; want %q", got, err, dir)
		}
	})
	t.Run("ErrMissing", func(t *testing.T) {
		missing := filepath.Join(dir, "seed4")
		_, err := findData(missing, nil)
		if !errors.Is(err, errNoData) || !strings.Contains(err.Error(), missing) {
			t.Errorf("err = %v, want errNoData naming %s", err, missing)
		}
	})
}
