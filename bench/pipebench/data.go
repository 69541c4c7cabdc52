package main

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"pipeline/pipeline"
)

// errNoData is returned when the dataset folder is missing or empty.
var errNoData = errors.New("dataset not found")

// findData returns the dataset folder: the one given, else the first of
// the defaults that exists.
func findData(given string, defaults []string) (string, error) {
	cands := defaults
	if given != "" {
		cands = []string{given}
	}
	for _, d := range cands {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			return filepath.Abs(d)
		}
	}
	return "", fmt.Errorf("%w: looked for %s; give the folder of labelled images with --data DIR (the project's seed4 set is ../shared/datasets/seed4: 808 JPEGs in 4 class folders)",
		errNoData, strings.Join(cands, ", "))
}

// listImages walks the dataset as `pipeline extract --images` does.
func listImages(dir string) ([]pipeline.Input, error) {
	var ins []pipeline.Input
	_, err := pipeline.WalkImages(dir, func(in pipeline.Input) error {
		ins = append(ins, in)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(ins) == 0 {
		return nil, fmt.Errorf("%w: no images in %s", errNoData, dir)
	}
	sort.Slice(ins, func(i, j int) bool { return ins[i].Path < ins[j].Path })
	return ins, nil
}

// subset picks n images spread evenly over the sorted list, so that a
// quick run sees every class and a mix of sizes; n <= 0 or >= len means all.
func subset(ins []pipeline.Input, n int) []pipeline.Input {
	if n <= 0 || n >= len(ins) {
		return ins
	}
	out := make([]pipeline.Input, n)
	for i := range out {
		out[i] = ins[i*len(ins)/n]
	}
	return out
}

// writeList writes a `pipeline extract --list` CSV (path,label).
func writeList(path string, ins []pipeline.Input) error {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write([]string{"path", "label"})
	for _, in := range ins {
		w.Write([]string{in.Path, in.Label})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// markedJPEG returns a copy of a JPEG with a comment segment (COM) right
// after the start-of-image marker. The pixels and the decoding work are
// the same, the file's SHA-256 (its identity in the database) is not.
func markedJPEG(data []byte, mark string) ([]byte, error) {
	if len(data) < 4 || data[0] != 0xFF || data[1] != 0xD8 {
		return nil, fmt.Errorf("not a JPEG file (no SOI marker)")
	}
	if len(mark) > 65533 {
		return nil, fmt.Errorf("comment of %d bytes is too long", len(mark))
	}
	n := len(mark) + 2
	out := make([]byte, 0, len(data)+4+len(mark))
	out = append(out, 0xFF, 0xD8, 0xFF, 0xFE, byte(n>>8), byte(n))
	out = append(out, mark...)
	return append(out, data[2:]...), nil
}

// makeCopies writes factor marked copies of every input under dir
// (copyK/<label>/<name>) and returns them as inputs. Complete copies from
// an earlier run are reused.
func makeCopies(dir string, ins []pipeline.Input, factor int) ([]pipeline.Input, error) {
	var out []pipeline.Input
	for k := 0; k < factor; k++ {
		for _, in := range ins {
			rel := filepath.Join(fmt.Sprintf("copy%d", k), in.Label, filepath.Base(in.Path))
			dst := filepath.Join(dir, rel)
			out = append(out, pipeline.Input{Path: dst, RelPath: rel, Label: in.Label, Labeled: in.Labeled})
			if _, err := os.Stat(dst); err == nil {
				continue
			}
			data, err := os.ReadFile(in.Path)
			if err != nil {
				return nil, err
			}
			marked, err := markedJPEG(data, fmt.Sprintf("pipebench copy %d", k))
			if err != nil {
				return nil, fmt.Errorf("copy %s: %w (the memory check copies JPEGs only)", in.Path, err)
			}
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return nil, err
			}
			tmp := dst + ".tmp"
			if err := os.WriteFile(tmp, marked, 0o644); err != nil {
				return nil, err
			}
			if err := os.Rename(tmp, dst); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}
