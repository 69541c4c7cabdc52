package onnx

import (
	"path/filepath"
	"reflect"
	"testing"
)

// TestReadInputs_MatchesReadGraph: ReadInputs is ReadGraph without the
// nodes, on every model the repository ships.
func TestReadInputs_MatchesReadGraph(t *testing.T) {
	paths, err := filepath.Glob("../../testdata/models/*.onnx")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no models in testdata/models (%v)", err)
	}
	for _, p := range paths {
		full, err := ReadGraph(p)
		if err != nil {
			t.Fatal(err)
		}
		light, err := ReadInputs(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(full.Graph.Nodes) == 0 || len(light.Graph.Nodes) != 0 {
			t.Errorf("%s: %d nodes in full, %d in ReadInputs (want >0 and 0)", p, len(full.Graph.Nodes), len(light.Graph.Nodes))
		}
		full.Graph.Nodes = nil
		if !reflect.DeepEqual(full, light) {
			t.Errorf("%s: ReadInputs differs from ReadGraph beyond the nodes", p)
		}
	}
	if _, err := ReadInputs(filepath.Join(t.TempDir(), "nope.onnx")); err == nil {
		t.Error("ReadInputs of a missing file: no error")
	}
}
