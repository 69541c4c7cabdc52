package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"pipeline/extract/keras"
)

// TestCLI_KerasModel: the Keras path of the README, on a tiny random-weight
// VGG16 file: models add, layers shows the Keras names, extract --layer fc2.
func TestCLI_KerasModel(t *testing.T) {
	dir := t.TempDir()
	spec := keras.VGGSpec([]int{2, 2, 3, 3, 3}, 16, 64, true, 10)
	f, err := spec.RandomFile(1, keras.WeightsFlat)
	if err != nil {
		t.Fatal(err)
	}
	h5 := filepath.Join(dir, "vgg16_weights_tf_dim_ordering_tf_kernels.h5")
	if err := keras.Write(h5, f, keras.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	imgs := filepath.Join(dir, "images")
	images(t, imgs, []string{"a", "b"}, 4)
	env := []string{"PIPELINE_CACHE=" + filepath.Join(dir, "cache"), "PIPELINE_DB=" + filepath.Join(dir, "f.db")}

	run(t, env, "models", "add", "kvgg", "--file", h5).want(t, 0, "kvgg: registered", "VGG16 (vgg naming), with top (10 classes), input 64x64", "keras (64x64, stretch, nearest, BGR")
	run(t, env, "layers", "--model", "kvgg", "--aliases").want(t, 0, "block1_conv1", "block5_pool", "flatten", "fc1", "fc2", "predictions")
	r := run(t, env, "extract", "--model", "kvgg", "--layer", "fc2", "--images", imgs, "--json")
	r.want(t, 0)
	var sum struct {
		Status string
		Counts struct{ Extracted int }
	}
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil || sum.Status != "ok" || sum.Counts.Extracted != 8 {
		t.Fatalf("extract --json: %v %+v\n%s", err, sum, r.stdout)
	}
	run(t, env, "models", "add", "kvgg", "--file", h5).want(t, 2, "model name taken")
	run(t, env, "models", "add", "other", "--file", h5, "--pool1-pad", "maybe").want(t, 2, `--pool1-pad "maybe": want true or false`)
	run(t, env, "extract", "--model", h5, "--layer", "fc2", "--images", imgs).want(t, 2, "pipeline models add NAME --file "+h5)

	// Bad files: exit 2 naming the file, nothing registered or converted.
	notes := filepath.Join(dir, "notes.h5")
	if err := os.WriteFile(notes, []byte("not hdf5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, env, "models", "add", "bad", "--file", notes).want(t, 2, notes, "not an HDF5 file")
	f.Layers = f.Layers[:5] // up to block2_conv1: not a whole VGG16
	cut := filepath.Join(dir, "cut.h5")
	if err := keras.Write(cut, f, keras.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	run(t, env, "models", "add", "bad", "--file", cut).want(t, 2, cut, "not a Keras model of a known architecture")
	r = run(t, env, "models", "list", "--json")
	r.want(t, 0)
	if strings.Contains(r.stdout, `"bad"`) || !strings.Contains(r.stdout, `"kvgg"`) || !strings.Contains(r.stdout, `"keras-vgg16"`) {
		t.Errorf("models list: want kvgg and keras-vgg16, not bad:\n%s", r.stdout)
	}
	ents, _ := filepath.Glob(filepath.Join(dir, "cache", "keras", "*.onnx"))
	if len(ents) != 1 {
		t.Errorf("%d converted graphs in the cache, want 1 (kvgg's)", len(ents))
	}
}
