package onnx

import (
	"math"
	"os"
	"path/filepath"
	"testing"
	"unsafe"
)

// TestMap_MatchesReadModel checks every float initializer read through Map
// (views of the mapping, or decoded copies) against ReadModel's decoding of
// the same file, before and after Release, for raw_data (torchvision),
// packed float_data (zoo), double and unpacked payloads.
func TestMap_MatchesReadModel(t *testing.T) {
	dir := t.TempDir()
	var files []string
	for _, s := range SmallModels() {
		m, err := s.Build()
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, s.File)
		if err := WriteFile(path, m); err != nil {
			t.Fatal(err)
		}
		files = append(files, path)
	}
	odd := &Model{IRVersion: 7, OpsetImports: []OpsetID{{Domain: "ai.onnx", Version: 13}}, Graph: &Graph{
		Nodes: []*Node{{OpType: "Identity", Inputs: []string{"x"}, Outputs: []string{"y"}}},
		Initializers: []*Tensor{
			{Name: "f64raw", Dims: []int{3}, DataType: Double, Float64: []float64{math.Pi, -1, 1e-3}, StoreRaw: true},
			{Name: "f64", Dims: []int{2}, DataType: Double, Float64: []float64{2.5, -7}},
			{Name: "odd", Dims: []int{5}, DataType: Float, Float32: []float32{1, 2, 3, 4, 5}, StoreRaw: true},
			{Name: "i64", Dims: []int{2}, DataType: Int64, Int64: []int64{0, -1}},
			{Name: "packed", Dims: []int{2, 3}, DataType: Float, Float32: []float32{.5, -.25, 3, 4, 5, 6}},
		},
		Inputs:  []*ValueInfo{{Name: "x", ElemType: Float, HasShape: true, Dims: []Dim{}}},
		Outputs: []*ValueInfo{{Name: "y", ElemType: Float}},
	}}
	path := filepath.Join(dir, "odd.onnx")
	if err := WriteFile(path, odd); err != nil {
		t.Fatal(err)
	}
	files = append(files, path)
	views, copies := 0, 0
	for _, path := range files {
		want, err := ReadModel(path)
		if err != nil {
			t.Fatal(err)
		}
		mp, err := Map(path)
		if err != nil {
			t.Fatal(err)
		}
		for i, mt := range mp.Model.Graph.Initializers {
			wt := want.Graph.Initializers[i]
			if mt.Name != wt.Name || mt.HasData() && wt.DataType != Int64 && wt.DataType != Int32 {
				t.Fatalf("%s: initializer %d: %q (payload %v), want %q without payload", path, i, mt.Name, mt.HasData(), wt.Name)
			}
			wv, err := wt.Float64s()
			if err != nil {
				t.Fatal(err)
			}
			for pass := range 2 {
				got, err := mp.Float32(mt)
				if err != nil {
					t.Fatalf("%s: %s: %v", path, mt.Name, err)
				}
				if len(got) != len(wv) {
					t.Fatalf("%s: %s: %d values, want %d", path, mt.Name, len(got), len(wv))
				}
				for k := range wv {
					if float64(got[k]) != float64(float32(wv[k])) {
						t.Fatalf("%s: %s[%d] = %g, want %g (pass %d)", path, mt.Name, k, got[k], wv[k], pass)
					}
				}
				if pass == 0 && len(got) > 0 && inMapping(mp, got) {
					views++
				}
				if pass == 0 && mp.copies[mt] != nil {
					copies++
				}
				mp.Release(mt)
			}
		}
		if err := mp.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if views == 0 || copies == 0 {
		t.Errorf("%d initializers read as views of the mapping, %d as aligned copies: want both paths covered", views, copies)
	}
}

func inMapping(mp *Mapped, v []float32) bool {
	p := uintptr(unsafe.Pointer(&v[0]))
	lo := uintptr(unsafe.Pointer(&mp.data[0]))
	return p >= lo && p < lo+uintptr(len(mp.data))
}

func TestMap_Errors(t *testing.T) {
	if _, err := Map(filepath.Join(t.TempDir(), "missing.onnx")); err == nil || !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("missing file: %v", err)
	}
	path := filepath.Join(t.TempDir(), "junk.onnx")
	if err := os.WriteFile(path, []byte{0x0a, 0x05, 1}, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Map(path); err == nil {
		t.Errorf("truncated file mapped without error")
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}
