package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"pipeline/extract"
	"pipeline/extract/onnx"
	"pipeline/internal/testutil"
	"pipeline/store"
)

// childEnv, when set, makes the test binary run one Extract with the JSON
// options it holds and exit: the crash and lock tests kill such children.
const childEnv = "PIPELINE_TEST_EXTRACT_CHILD"

func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		os.Exit(runChild(spec))
	}
	os.Exit(m.Run())
}

type childSpec struct {
	DB, Images, Model, Preset string
	Layers                    []string
	Batch, Nets               int
	Wait                      string
	Shard                     string   // extract: "I/N"
	List                      string   // extract: --list instead of Images
	Into                      string   // merge Sources into Into instead of extracting
	Sources                   []string // merge
	Chunk                     int      // merge: store.MergeChunk
	PauseMS                   int      // merge: pause after each committed chunk (the crash test's kills land mid-merge)
	Engine                    string   // --engine ("" = auto)
}

func runChild(spec string) int {
	var s childSpec
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if s.Into != "" {
		if s.Chunk > 0 {
			store.MergeChunk = s.Chunk
		}
		o := MergeOptions{Into: s.Into, Sources: s.Sources, Args: []string{"child", "merge"}, AllowLabelConflicts: true}
		if s.PauseMS > 0 {
			o.Progress = func(string, store.MergeStats) { time.Sleep(time.Duration(s.PauseMS) * time.Millisecond) }
		}
		_, err := Merge(context.Background(), o)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	}
	m, err := extract.ResolveModel(extract.ModelSpec{Model: s.Model, Overrides: extract.Overrides{Preset: s.Preset}, NeedPreprocess: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	o := ExtractOptions{DB: s.DB, Model: m, Layers: s.Layers, Batch: s.Batch, Nets: s.Nets, Images: s.Images, List: s.List, Args: []string{"child"},
		Compute: extract.Compute{Engine: s.Engine}}
	if s.Shard != "" {
		if o.Shard, err = ParseShard(s.Shard); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
	}
	if s.Wait != "" {
		fmt.Sscan(s.Wait, &o.Wait)
	}
	_, err = Extract(context.Background(), o)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

const tinyVGG = "../testdata/models/vgg-zoo-tiny.onnx"

// tinyModel resolves a committed test model with a preset.
func tinyModel(t *testing.T, file, preset string) extract.Model {
	t.Helper()
	m, err := extract.ResolveModel(extract.ModelSpec{Model: file, Overrides: extract.Overrides{Preset: preset}, NeedPreprocess: true, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// picture is a deterministic test image: smooth gradients plus noise, so
// that resizing and JPEG coding matter, of size w x h.
func picture(seed uint64, w, h int) *image.NRGBA {
	r := rand.New(rand.NewPCG(seed, 7))
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	a, b, c := r.Float64()*6, r.Float64()*6, r.Float64()*6
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			fx, fy := float64(x)/float64(w), float64(y)/float64(h)
			img.Set(x, y, color.NRGBA{
				R: uint8(127 + 100*math.Sin(a*fx+fy) + 20*r.Float64()),
				G: uint8(127 + 100*math.Cos(b*fy-fx) + 20*r.Float64()),
				B: uint8(127 + 100*math.Sin(c*(fx+fy)) + 20*r.Float64()),
				A: 255,
			})
		}
	}
	return img
}

// writePicture writes a picture as PNG or JPEG (by extension) and returns
// its bytes.
func writePicture(t *testing.T, path string, seed uint64, w, h int) []byte {
	t.Helper()
	return testutil.WritePicture(t, path, picture(seed, w, h))
}

// query runs SQL on a database, read-only, and returns the rows.
func query(t *testing.T, dbPath, q string, params map[string]any) [][]any {
	t.Helper()
	db, err := store.Open(dbPath, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, rows, err := db.Query(context.Background(), q, params, false)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return rows
}

func asInt(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case float64:
		return int64(x)
	}
	panic(fmt.Sprintf("not an integer: %T %v", v, v))
}

// reference computes a tensor of an ONNX model in float64 for an image
// file, preprocessed as the model says.
func reference(t *testing.T, om *onnx.Model, m extract.Model, file, tensor string) []float64 {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	blob, _, err := m.Preprocess.FileBlob(data, extract.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	in := make([]float64, len(blob))
	for i, v := range blob {
		in[i] = float64(v)
	}
	p := m.Preprocess
	out, err := onnx.Run(om, map[string]*onnx.Tensor{m.Input: onnx.NewFloat64(m.Input, []int{1, 3, p.Height, p.Width}, in)}, tensor)
	if err != nil {
		t.Fatal(err)
	}
	return out[tensor].Float64
}

func decodeVector(t *testing.T, b []byte) []float32 {
	t.Helper()
	v, err := store.DecodeVector(b)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
