package keras

import (
	"encoding/json"
	"math"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// h5pyScript reads a Keras weights file with h5py (the library Keras itself
// writes them with) and prints its structure as JSON, or writes a small
// file the way Keras 2 and tf.keras do (fixed-length bytes attributes,
// a variable-length str attribute, an empty weight_names list, nested
// weight names, a float64 dataset).
const h5pyScript = `
import sys, json, h5py, numpy as np
mode, path = sys.argv[1], sys.argv[2]
dec = lambda v: v.decode() if isinstance(v, bytes) else str(v)
if mode == "read":
    f = h5py.File(path, "r")
    g = f["model_weights"] if "model_weights" in f else f
    out = {"layout": "model" if g is not f else "weights", "layer_names": [dec(n) for n in g.attrs["layer_names"]],
           "backend": dec(g.attrs["backend"]), "keras_version": dec(g.attrs["keras_version"]), "layers": {}}
    for n in out["layer_names"]:
        wn = [dec(w) for w in g[n].attrs["weight_names"]]
        out["layers"][n] = [[w, list(g[n][w].shape), float(np.asarray(g[n][w], dtype=np.float64).sum())] for w in wn]
    print(json.dumps(out))
else:
    f = h5py.File(path, "w")
    f.attrs["layer_names"] = np.array([b"conv", b"act", b"dense"])
    f.attrs["backend"] = "tensorflow"
    f.attrs["keras_version"] = b"2.2.4"
    g = f.create_group("conv")
    g.attrs["weight_names"] = np.array([b"conv/kernel:0", b"conv/bias:0"])
    g.create_dataset("conv/kernel:0", data=np.arange(24, dtype=np.float32).reshape(2, 2, 2, 3))
    g.create_dataset("conv/bias:0", data=np.array([1, 2, 3], dtype=np.float32))
    g = f.create_group("act")
    g.attrs["weight_names"] = []
    g = f.create_group("dense")
    g.attrs["weight_names"] = np.array(["dense/kernel:0"], dtype=h5py.string_dtype())
    g.create_dataset("dense/kernel:0", data=np.full((3, 2), 0.5, dtype=np.float64))
    f.close()
`

func h5py(t *testing.T, args ...string) []byte {
	t.Helper()
	// Debian's python3-h5py is for /usr/bin/python3, which a pyenv or
	// virtualenv python3 earlier in PATH would not see.
	py := ""
	for _, c := range []string{"/usr/bin/python3", "python3"} {
		if p, err := exec.LookPath(c); err == nil && exec.Command(p, "-c", "import h5py").Run() == nil {
			py = p
			break
		}
	}
	if py == "" {
		t.Skip("h5py not installed: apt-get install python3-h5py (scripts/deps.sh --test)")
	}
	out, err := exec.Command(py, append([]string{"-c", h5pyScript}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("h5py %v: %v\n%s", args, err, out)
	}
	return out
}

// TestWrite_H5pyReads: what Write writes, h5py reads with Keras's
// structure: layer_names, backend, keras_version, weight_names, shapes,
// values (sums), in both layouts and both weight namings.
func TestWrite_H5pyReads(t *testing.T) {
	tc := tinyCases()[4] // resnet50-keras-top: BN, convolutions, dense, layers without weights
	for _, lay := range []struct{ layout, style string }{{LayoutWeights, WeightsFlat}, {LayoutModel, WeightsNested}} {
		t.Run(lay.layout+"-"+lay.style, func(t *testing.T) {
			path, mem := writeCase(t, tc, lay.layout, lay.style)
			var got struct {
				L          string   `json:"layout"`
				B          string   `json:"backend"`
				K          string   `json:"keras_version"`
				LayerNames []string `json:"layer_names"`
				Layers     map[string][][3]any
			}
			if err := json.Unmarshal(h5py(t, "read", path), &got); err != nil {
				t.Fatal(err)
			}
			if got.L != lay.layout || got.B != "tensorflow" || got.K != "2.2.4" {
				t.Errorf("h5py sees layout %s, backend %s, keras_version %s", got.L, got.B, got.K)
			}
			var names []string
			for _, l := range mem.Layers {
				names = append(names, l.Name)
			}
			if !slices.Equal(got.LayerNames, names) {
				t.Fatalf("layer_names: h5py reads %d names, want %d", len(got.LayerNames), len(names))
			}
			for _, l := range mem.Layers {
				ws := got.Layers[l.Name]
				if len(ws) != len(l.Weights) {
					t.Errorf("%s: h5py reads %d weights, want %d", l.Name, len(ws), len(l.Weights))
					continue
				}
				for i, w := range l.Weights {
					var sum float64
					for _, v := range w.Data {
						sum += float64(v)
					}
					shape, _ := json.Marshal(w.Shape)
					gshape, _ := json.Marshal(ws[i][1])
					if ws[i][0] != w.Name || string(shape) != string(gshape) || math.Abs(ws[i][2].(float64)-sum) > 1e-6*(1+math.Abs(sum)) {
						t.Errorf("%s weight %d: h5py reads %v, want %s %s sum %g", l.Name, i, ws[i], w.Name, shape, sum)
					}
				}
			}
		})
	}
}

// TestRead_H5pyWritten: Read reads what h5py writes the way Keras does,
// including variable-length strings, an empty weight_names and float64.
func TestRead_H5pyWritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h5py.h5")
	h5py(t, "write", path)
	f, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.Backend != "tensorflow" || f.KerasVersion != "2.2.4" || len(f.Layers) != 3 {
		t.Fatalf("read %+v", f)
	}
	conv, act, dense := f.Layers[0], f.Layers[1], f.Layers[2]
	if conv.Name != "conv" || len(conv.Weights) != 2 || !slices.Equal(conv.Weights[0].Shape, []int{2, 2, 2, 3}) || conv.Weights[0].Data[23] != 23 || conv.Weights[1].Data[2] != 3 {
		t.Errorf("conv = %+v", conv)
	}
	if act.Name != "act" || len(act.Weights) != 0 {
		t.Errorf("act = %+v", act)
	}
	if dense.Name != "dense" || len(dense.Weights) != 1 || dense.Weights[0].Name != "dense/kernel:0" || dense.Weights[0].Data[5] != 0.5 {
		t.Errorf("dense = %+v", dense)
	}
}
