package extract

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"pipeline/extract/fetch"
	"pipeline/extract/keras"
	"pipeline/extract/onnx"
	"pipeline/internal/testutil"
)

// kerasCase is a Keras network written as a random-weight .h5 file in one
// layout and weight naming.
type kerasCase struct {
	name          string
	spec          keras.Spec
	layout, style string
}

func kerasCases() []kerasCase {
	vgg16, vgg19 := []int{2, 2, 3, 3, 3}, []int{2, 2, 4, 4, 4}
	return []kerasCase{
		{"vgg16-top", keras.VGGSpec(vgg16, 16, 64, true, 10), keras.LayoutWeights, keras.WeightsFlat},
		{"vgg16-notop", keras.VGGSpec(vgg16, 16, 64, false, 0), keras.LayoutWeights, keras.WeightsNested},
		{"vgg19-top", keras.VGGSpec(vgg19, 16, 64, true, 10), keras.LayoutModel, keras.WeightsNested},
		{"vgg19-notop", keras.VGGSpec(vgg19, 16, 64, false, 0), keras.LayoutWeights, keras.WeightsFlat},
		{"resnet50-keras-top", keras.ResNet50Spec(false, true, 16, 64, true, 10), keras.LayoutModel, keras.WeightsNested},
		{"resnet50-keras-notop", keras.ResNet50Spec(false, true, 16, 64, false, 0), keras.LayoutWeights, keras.WeightsNested},
		{"resnet50-legacy-top", keras.ResNet50Spec(true, true, 16, 64, true, 10), keras.LayoutWeights, keras.WeightsFlat},
		{"resnet50-legacy-notop", keras.ResNet50Spec(true, true, 16, 64, false, 0), keras.LayoutModel, keras.WeightsNested},
		{"resnet50-legacy-nopad", keras.ResNet50Spec(true, false, 16, 64, true, 10), keras.LayoutWeights, keras.WeightsFlat},
	}
}

// writeKerasCase writes the case's .h5 file and returns its path and the
// weights in memory (what the reference computes from).
func writeKerasCase(t testing.TB, dir string, kc kerasCase, seed uint64) (string, *keras.File) {
	t.Helper()
	f, err := kc.spec.RandomFile(seed, kc.style)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, kc.name+".h5")
	if err := keras.Write(path, f, keras.WriteOptions{Layout: kc.layout, ModelConfig: `{"class_name": "Model"}`}); err != nil {
		t.Fatal(err)
	}
	return path, f
}

// pilNearestInput is Keras's input for an RGBA test image, computed from
// the definitions: load_img's Pillow NEAREST resize to size x size (source
// pixel floor((x+0.5)·W/w)), then preprocess_input's caffe mode (BGR,
// minus the ImageNet BGR mean), channels_last.
func pilNearestInput(img *image.NRGBA, size int) keras.Tensor {
	W, H := img.Rect.Dx(), img.Rect.Dy()
	mean := [3]float64{103.939, 116.779, 123.68}
	t := keras.Tensor{Shape: []int{size, size, 3}, Data: make([]float64, size*size*3)}
	for y := 0; y < size; y++ {
		sy := int(math.Floor((float64(y) + 0.5) * float64(H) / float64(size)))
		for x := 0; x < size; x++ {
			sx := int(math.Floor((float64(x) + 0.5) * float64(W) / float64(size)))
			c := img.NRGBAAt(sx, sy)
			bgr := [3]float64{float64(c.B), float64(c.G), float64(c.R)}
			for ch := 0; ch < 3; ch++ {
				t.Data[(y*size+x)*3+ch] = bgr[ch] - mean[ch]
			}
		}
	}
	return t
}

func randomNRGBA(seed uint64, w, h int) *image.NRGBA {
	r := rand.New(rand.NewPCG(seed, 5))
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.SetNRGBA(x, y, color.NRGBA{uint8(r.IntN(256)), uint8(r.IntN(256)), uint8(r.IntN(256)), 255})
		}
	}
	return img
}

// kerasModel registers the file in a fresh catalog (what `models add`
// does) and returns the extract.Model the pipeline would run.
func kerasModel(t testing.TB, cacheDir, name, h5 string, o Overrides) (Model, ModelEntry, keras.Arch) {
	t.Helper()
	cat, err := NewCatalog(cacheDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	e, arch, err := cat.AddKeras(name, h5, o, "")
	if err != nil {
		t.Fatal(err)
	}
	p, err := cat.Locate(e)
	if err != nil {
		t.Fatal(err)
	}
	if p.Format != FormatONNX || p.SHA256 == "" {
		t.Fatalf("Locate = %+v, want the converted ONNX graph and its sha256", p)
	}
	return Model{Name: e.Name, Format: p.Format, Path: p.Model, SHA256: p.SHA256, Input: e.Input,
		Preprocess: e.Preprocess, HasPreprocess: true, InputDims: e.InputDims[:]}, e, arch
}

// checkKerasAliases runs every alias of the converted graph through the
// OpenCV engine on one PNG image, preprocessed the Keras way, and compares
// each with the float64 channels_last reference: ≤ 1e-5 relative. It
// returns the worst error per alias.
func checkKerasAliases(t *testing.T, model Model, spec *keras.Spec, mem *keras.File, img *image.NRGBA) (map[string]float64, map[string]keras.Tensor) {
	t.Helper()
	p := model.Preprocess
	net, g, err := OpenNet(model)
	if err != nil {
		t.Fatal(err)
	}
	net.Close()
	om, err := onnx.ReadGraph(model.Path)
	if err != nil {
		t.Fatal(err)
	}
	// Every node named after a Keras layer is an alias of that name.
	for _, n := range keras.KerasNames(om) {
		if l := g.Alias(n); l == nil || l.Name != "onnx_node!"+n {
			t.Errorf("Keras layer %s is not an alias of its node (aliases: %v)", n, g.AliasNames())
		}
	}
	// One alias per layer: the extractor delivers a layer once; every
	// alias is then checked against the output of its layer.
	var names []string
	index := map[string]int{} // layer → position in names
	for _, a := range g.AliasNames() {
		if l := g.Alias(a); l != nil {
			if _, ok := index[l.Name]; !ok {
				index[l.Name] = len(names)
				names = append(names, a)
			}
		}
	}
	ex, err := NewExtractor(ExtractorConfig{Model: model, Layers: names, Pool: "none", Batch: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	blob, _, err := p.FileBlob(testutil.EncodePNG(t, img), DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := ex.Forward(blob, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := keras.Forward(spec, mem, pilNearestInput(img, p.Width))
	if err != nil {
		t.Fatal(err)
	}
	// The structural aliases of the legacy naming name unnamed Keras
	// layers (activation_N): map them through the graph to the spec.
	byLayer := map[string]string{}
	for _, n := range keras.KerasNames(om) {
		byLayer["onnx_node!"+n] = n
	}
	errs := map[string]float64{}
	for _, a := range g.AliasNames() {
		i := index[g.Alias(a).Name]
		k := a
		if _, ok := ref[k]; !ok {
			k = byLayer[g.Alias(a).Name]
		}
		var want []float64
		switch r, ok := ref[k]; {
		case k == "flatten":
			// C,H,W in the graph, H,W,C in Keras: the pool before it.
			want = ref["block5_pool"].NCHW()
		case ok:
			want = r.NCHW()
		default:
			want = legacyUnnamed(t, spec, ref, g, om, a)
		}
		if want == nil {
			continue
		}
		if len(got[0][i]) != len(want) {
			t.Errorf("%s: %d values, reference has %d", a, len(got[0][i]), len(want))
			continue
		}
		e := testutil.RelErr(got[0][i], want)
		errs[a] = e
		if e > 1e-5 {
			t.Errorf("%s: max relative error %.3g > 1e-5", a, e)
		}
	}
	return errs, ref
}

// legacyUnnamed finds the reference of a structural alias on a legacy
// ResNet50 (conv1_relu, pool1_pool, convS_blockB_out name layers Keras
// numbers per session: activation_N, max_pooling2d_1): the spec's layer
// computed from the same Keras layer the alias's node reads.
func legacyUnnamed(t *testing.T, spec *keras.Spec, ref map[string]keras.Tensor, g *Graph, om *onnx.Model, alias string) []float64 {
	t.Helper()
	node := om.Graph.Node(strings.TrimPrefix(g.Alias(alias).Name, "onnx_node!"))
	if node == nil {
		t.Errorf("%s: no node", alias)
		return nil
	}
	// Auxiliary node names start with the Keras layer they follow:
	// "conv1/relu" → activation after bn_conv1; "res2a/relu" → after the
	// add of block res2a; "pool1/max_pool" → the max pool.
	var want string
	switch {
	case node.Name == "conv1/relu":
		want = "activation_1"
	case node.Name == "pool1/max_pool":
		want = "max_pooling2d_1"
	case strings.HasSuffix(node.Name, "/relu") && strings.HasPrefix(node.Name, "res"):
		// the block's output activation: the spec layer reading its add.
		blk := strings.TrimSuffix(node.Name, "/relu")
		last := "bn" + strings.TrimPrefix(blk, "res") + "_branch2c"
		addName := ""
		for _, l := range spec.Layers {
			if l.Kind == "Add" && len(l.Inputs) > 0 && l.Inputs[0] == last {
				addName = l.Name
			}
		}
		for _, l := range spec.Layers {
			if l.Kind == "Activation" && len(l.Inputs) == 1 && l.Inputs[0] == addName {
				want = l.Name
			}
		}
	}
	r, ok := ref[want]
	if !ok {
		t.Errorf("alias %s (node %s): no reference layer found", alias, node.Name)
		return nil
	}
	return r.NCHW()
}

// TestKeras_EndToEnd: each architecture (tiny widths), each layout, from
// `models add` (AddKeras) through the OpenCV engine with Keras's
// preprocessing, against the float64 channels_last reference, every alias.
func TestKeras_EndToEnd(t *testing.T) {
	img := randomNRGBA(11, 97, 75) // not square, not the input size: exercises the NEAREST stretch
	for _, kc := range kerasCases() {
		t.Run(kc.name, func(t *testing.T) {
			dir := t.TempDir()
			h5, mem := writeKerasCase(t, dir, kc, 3)
			model, e, arch := kerasModel(t, filepath.Join(dir, "cache"), "k", h5, Overrides{Size: "64"})
			if e.Preprocess.Width != 64 || e.Preprocess.Preset != "keras" || !e.Preprocess.IgnoreOrientation || e.Preprocess.Interp != Nearest {
				t.Errorf("preprocess %v, want keras at 64x64", e.Preprocess)
			}
			errs, _ := checkKerasAliases(t, model, &kc.spec, mem, img)
			worst, at := 0.0, ""
			for a, v := range errs {
				if v > worst {
					worst, at = v, a
				}
			}
			t.Logf("%s: %d aliases, worst max relative error %.2e (%s)", arch, len(errs), worst, at)
			want := []string{"predictions"}
			switch {
			case strings.HasPrefix(kc.name, "vgg") && arch.Top:
				want = []string{"block1_conv1", "block5_pool", "flatten", "fc1", "fc2", "predictions"}
			case strings.HasPrefix(kc.name, "vgg"):
				want = []string{"block1_conv1", "block5_pool"}
			case strings.Contains(kc.name, "legacy"):
				want = []string{"conv1", "bn_conv1", "conv1_relu", "pool1_pool", "res2a_branch2a", "bn5c_branch2c", "conv5_block3_out"}
				if arch.Top {
					want = append(want, "avg_pool", "fc1000")
				}
			default:
				want = []string{"conv1_conv", "conv1_bn", "conv1_relu", "pool1_pool", "conv2_block1_0_conv", "conv5_block3_out"}
				if arch.Top {
					want = append(want, "avg_pool", "predictions")
				}
			}
			for _, a := range want {
				if _, ok := errs[a]; !ok {
					t.Errorf("alias %s not checked (have %v)", a, slices.Sorted(func(yield func(string) bool) {
						for k := range errs {
							if !yield(k) {
								return
							}
						}
					}))
				}
			}
		})
	}
}

// TestKeras_PredictionsIsSoftmax: on a with-top file, predictions is the
// softmax, as in Keras: the values sum to 1.
func TestKeras_PredictionsIsSoftmax(t *testing.T) {
	dir := t.TempDir()
	kc := kerasCases()[0]
	h5, _ := writeKerasCase(t, dir, kc, 4)
	model, _, _ := kerasModel(t, filepath.Join(dir, "cache"), "k", h5, Overrides{})
	net, g, err := OpenNet(model)
	if err != nil {
		t.Fatal(err)
	}
	net.Close()
	if l := g.Alias("predictions"); l == nil || l.Type != "Softmax" {
		t.Fatalf("predictions = %+v, want the Softmax layer", l)
	}
	if _, ok := g.Notes["predictions"]; ok {
		t.Errorf("note on predictions %q: a Keras graph has its softmax", g.Notes["predictions"])
	}
}

// TestKeras_BadFiles: one clear error each, naming the file; ErrNotKerasModel
// for what is not a Keras model of a known architecture; nothing written to
// the cache or the registry.
func TestKeras_BadFiles(t *testing.T) {
	dir := t.TempDir()
	vgg := kerasCases()[0]
	good, _ := writeKerasCase(t, dir, vgg, 1)
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	mutated := func(name string, change func(f *keras.File)) string {
		f, err := vgg.spec.RandomFile(2, keras.WeightsNested)
		if err != nil {
			t.Fatal(err)
		}
		change(f)
		p := filepath.Join(dir, name)
		if err := keras.Write(p, f, keras.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		return p
	}
	other := &keras.File{Layers: []keras.Layer{
		{Name: "input_1"},
		{Name: "conv2d_1", Weights: []keras.Weight{{Name: "conv2d_1/kernel:0", Shape: []int{3, 3, 3, 8}, Data: make([]float32, 216)}, {Name: "conv2d_1/bias:0", Shape: []int{8}, Data: make([]float32, 8)}}},
		{Name: "dense_1", Weights: []keras.Weight{{Name: "dense_1/kernel:0", Shape: []int{8, 2}, Data: make([]float32, 16)}}},
	}}
	otherPath := filepath.Join(dir, "other.h5")
	if err := keras.Write(otherPath, other, keras.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, path, want string
		notKeras         bool
	}{
		{"NotHDF5", write("notes.h5", []byte("just some text\n")), "not an HDF5 file", true},
		{"OtherArchitecture", otherPath, "found layers conv2d_1, dense_1", true},
		{"MissingLayer", mutated("missing.h5", func(f *keras.File) {
			f.Layers = slices.DeleteFunc(f.Layers, func(l keras.Layer) bool { return l.Name == "block4_conv2" })
		}), "layer block4_conv2 is missing", true},
		{"WrongShape", mutated("shape.h5", func(f *keras.File) {
			l := f.Layer("fc2")
			l.Weights[1].Shape, l.Weights[1].Data = []int{7}, make([]float32, 7)
		}), "layer fc2: weight fc2/bias:0 has shape [7], want [256]", true},
		{"Truncated", write("trunc.h5", data[:len(data)*2/3]), "truncated", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cache := filepath.Join(dir, "cache-"+c.name)
			cat, err := NewCatalog(cache, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = cat.AddKeras("bad", c.path, Overrides{}, "")
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.Contains(msg, c.path) || !strings.Contains(msg, c.want) {
				t.Errorf("error %q: want the path and %q", msg, c.want)
			}
			if errors.Is(err, ErrNotKerasModel) != c.notKeras {
				t.Errorf("errors.Is(err, ErrNotKerasModel) = %v, want %v", !c.notKeras, c.notKeras)
			}
			if ents, _ := os.ReadDir(filepath.Join(cache, "keras")); len(ents) > 0 {
				t.Errorf("left %d files in the cache's keras folder", len(ents))
			}
			if _, err := os.Stat(cat.RegistryPath()); err == nil {
				t.Errorf("registry written")
			}
		})
	}
}

func TestPreprocess_KerasIgnoresEXIFOrientation(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 6, 4))
	for y := 0; y < 4; y++ {
		for x := 0; x < 6; x++ {
			c := color.RGBA{200, 10, 10, 255}
			if x >= 3 {
				c = color.RGBA{10, 10, 200, 255}
			}
			img.Set(x, y, c)
		}
	}
	data := withEXIFOrientation(testutil.EncodeJPEG(t, img, 100), 6)
	p := Presets["keras"]
	p.Width, p.Height = 6, 4
	blob, info, err := p.FileBlob(data, DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if info.Width != 6 || info.Height != 4 {
		t.Errorf("decoded %dx%d, want 6x4 as stored (Pillow does not rotate)", info.Width, info.Height)
	}
	// Channel 2 is R (BGR order): left half red, minus the R mean.
	if r := float64(blob[2*24+0]) + 123.68; math.Abs(r-200) > 40 {
		t.Errorf("left pixel R = %.0f, want about 200: the image was rotated", r)
	}
}

// TestBuiltinModels_Keras pins the Keras applications' files as
// keras.utils.get_file identifies them (keras/applications/vgg16.py,
// resnet.py; keras_applications/resnet50.py v0.2): URLs, sizes, MD5s.
func TestBuiltinModels_Keras(t *testing.T) {
	want := map[string]struct {
		url  string
		size int64
		md5  string
	}{
		"keras-vgg16":                 {"https://storage.googleapis.com/tensorflow/keras-applications/vgg16/vgg16_weights_tf_dim_ordering_tf_kernels.h5", 553467096, "64373286793e3c8b2b4e3219cbf3544b"},
		"keras-vgg16-notop":           {"https://storage.googleapis.com/tensorflow/keras-applications/vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5", 58889256, "6d6bbae143d832006294945121d1f1fc"},
		"keras-resnet50":              {"https://storage.googleapis.com/tensorflow/keras-applications/resnet/resnet50_weights_tf_dim_ordering_tf_kernels.h5", 102967424, "2cb95161c43110f7111970584f804107"},
		"keras-resnet50-notop":        {"https://storage.googleapis.com/tensorflow/keras-applications/resnet/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5", 94765736, "4d473c1dd8becc155b73f8504c6f6626"},
		"keras-resnet50-legacy":       {"https://github.com/fchollet/deep-learning-models/releases/download/v0.2/resnet50_weights_tf_dim_ordering_tf_kernels.h5", 102853048, "a7b3fe01876f51b976af0dea6bc144eb"},
		"keras-resnet50-legacy-notop": {"https://github.com/fchollet/deep-learning-models/releases/download/v0.2/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5", 94653016, "a268eb855778b3df3c7506639542a6af"},
	}
	files := map[string]bool{}
	n := 0
	for _, e := range BuiltinModels() {
		if e.Format != FormatKeras {
			continue
		}
		n++
		w, ok := want[e.Name]
		if !ok {
			t.Errorf("unexpected Keras built-in %s", e.Name)
			continue
		}
		if err := e.Validate(); err != nil {
			t.Errorf("%s: %v", e.Name, err)
		}
		if e.URLs[0] != w.url || e.Size != w.size || e.MD5 != w.md5 || e.SHA256 != "" {
			t.Errorf("%s = %s %d md5 %s sha256 %q; want %s %d %s", e.Name, e.URLs[0], e.Size, e.MD5, e.SHA256, w.url, w.size, w.md5)
		}
		if e.Preprocess.Preset != "keras" || e.Input != "input_1" {
			t.Errorf("%s: preprocess %s, input %s", e.Name, e.Preprocess.Preset, e.Input)
		}
		if legacy := strings.Contains(e.Name, "legacy"); (e.KerasPool1Pad == "true") != legacy {
			t.Errorf("%s: pool1 padding %q; want true for the legacy files only (Keras >= 2.2.3 pads)", e.Name, e.KerasPool1Pad)
		}
		if files[e.File] {
			t.Errorf("%s: cache file name %s used twice", e.Name, e.File)
		}
		files[e.File] = true
	}
	if n != len(want) {
		t.Errorf("%d Keras built-ins, want %d", n, len(want))
	}
}

// TestCatalog_PullKeras: a catalog entry known by MD5 only (as Keras's
// get_file knows its files) downloads, verifies by MD5, records the
// SHA-256 beside the file, converts to ONNX; a copy in ~/.keras/models
// (KERAS_HOME) is used without a download; offline, the error says where
// to put the file; a file whose MD5 differs is refused.
func TestCatalog_PullKeras(t *testing.T) {
	dir := t.TempDir()
	h5, _ := writeKerasCase(t, dir, kerasCases()[1], 5) // vgg16-notop
	data, err := os.ReadFile(h5)
	if err != nil {
		t.Fatal(err)
	}
	md := md5.Sum(data)
	sum := sha256.Sum256(data)
	var served atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		http.ServeContent(w, r, "k.h5", time.Time{}, bytes.NewReader(data))
	}))
	defer srv.Close()
	p := Presets["keras"]
	p.Width, p.Height = 64, 64
	entry := func(md5hex string, urls ...string) ModelEntry {
		return ModelEntry{Name: "kv", Format: FormatKeras, Input: "input_1", InputDims: [4]int{1, 3, 64, 64},
			ModelFile: ModelFile{File: "kv_weights.h5", Size: int64(len(data)), MD5: md5hex, URLs: urls}, Preprocess: p}
	}
	t.Setenv("KERAS_HOME", filepath.Join(dir, "kerashome"))

	t.Run("Offline", func(t *testing.T) {
		c, err := NewCatalog(filepath.Join(dir, "c1"), []ModelEntry{entry(hex.EncodeToString(md[:]), "http://127.0.0.1:1/kv_weights.h5")})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Pull(context.Background(), "kv", PullOptions{})
		for _, want := range []string{"offline? download http://127.0.0.1:1/kv_weights.h5", "md5 " + hex.EncodeToString(md[:]),
			filepath.Join(dir, "c1", "models", "kv_weights.h5"), filepath.Join(dir, "kerashome", "models")} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("error %v: want %q", err, want)
			}
		}
	})

	t.Run("DownloadMD5", func(t *testing.T) {
		c, err := NewCatalog(filepath.Join(dir, "c2"), []ModelEntry{entry(hex.EncodeToString(md[:]), srv.URL+"/kv_weights.h5")})
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.Pull(context.Background(), "kv", PullOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Format != FormatONNX || !strings.HasSuffix(got.Model, ".onnx") {
			t.Errorf("Pull = %+v, want the converted graph", got)
		}
		cached := filepath.Join(dir, "c2", "models", "kv_weights.h5")
		if rec := fetch.RecordedSHA256(cached); rec != hex.EncodeToString(sum[:]) {
			t.Errorf("recorded sha256 %q, want %x", rec, sum)
		}
		e, _ := c.Lookup("kv")
		loc, err := c.Locate(e)
		if err != nil || loc != got {
			t.Errorf("Locate = %+v, %v; want %+v", loc, err, got)
		}
	})

	t.Run("KerasHome", func(t *testing.T) {
		home := filepath.Join(dir, "kerashome", "models")
		if err := os.MkdirAll(home, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(home, "kv_weights.h5"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := NewCatalog(filepath.Join(dir, "c3"), []ModelEntry{entry(hex.EncodeToString(md[:]), srv.URL+"/kv_weights.h5")})
		if err != nil {
			t.Fatal(err)
		}
		e, _ := c.Lookup("kv")
		if _, err := c.Locate(e); !errors.Is(err, ErrNotCached) || !strings.Contains(err.Error(), "Keras's own download") {
			t.Errorf("Locate before pull: %v, want ErrNotCached naming Keras's download", err)
		}
		before := served.Load()
		if _, err := c.Pull(context.Background(), "kv", PullOptions{}); err != nil {
			t.Fatal(err)
		}
		if served.Load() != before {
			t.Errorf("downloaded although ~/.keras/models had the file")
		}
	})

	t.Run("WrongMD5", func(t *testing.T) {
		c, err := NewCatalog(filepath.Join(dir, "c4"), []ModelEntry{entry(strings.Repeat("0", 32), srv.URL+"/kv_weights.h5")})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Pull(context.Background(), "kv", PullOptions{})
		if err == nil || !strings.Contains(err.Error(), "md5 "+strings.Repeat("0", 32)) || !strings.Contains(err.Error(), "md5 "+hex.EncodeToString(md[:])) {
			t.Errorf("error %v: want the md5 mismatch", err)
		}
	})
}

// TestKeras_FullVGG16: the full-size VGG16 with top (random weights, the
// real file's flat weight names), generated once into the cache (never into
// git; ~553 MB), registered, run through OpenCV at 224x224 and compared
// with the float64 channels_last reference at every Keras layer name.
func TestKeras_FullVGG16(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the full-size VGG16 (553 MB file, ~1 min)")
	}
	spec := keras.VGGSpec([]int{2, 2, 3, 3, 3}, 1, 224, true, 1000)
	mem, err := spec.RandomFile(0, keras.WeightsFlat)
	if err != nil {
		t.Fatal(err)
	}
	// The name carries the generator's version: a change of RandomFile or
	// of the spec's gains must not compare against an older file.
	h5 := filepath.Join(testCache(t), "generated", "keras-vgg16-arch-g2.h5")
	if fetch.RecordedSHA256(h5) == "" {
		if err := os.MkdirAll(filepath.Dir(h5), 0o755); err != nil {
			t.Fatal(err)
		}
		tmp := h5 + ".tmp"
		if err := keras.Write(tmp, mem, keras.WriteOptions{KerasVersion: "1.2.2"}); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, h5); err != nil {
			t.Fatal(err)
		}
		if _, _, err := fetch.HashFileCached(h5); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	model, _, arch := kerasModel(t, t.TempDir(), "kvgg16", h5, Overrides{})
	t.Logf("%s: registered and converted in %.1fs", arch, time.Since(start).Seconds())
	if arch.Name != "VGG16" || arch.InputSize != 224 || arch.Classes != 1000 {
		t.Fatalf("arch %s", arch)
	}
	errs, ref := checkKerasAliases(t, model, &spec, mem, randomNRGBA(12, 300, 200))
	for _, a := range slices.Sorted(func(yield func(string) bool) {
		for k := range errs {
			if !yield(k) {
				return
			}
		}
	}) {
		t.Logf("%-14s max relative error %.2e", a, errs[a])
	}
	if m := slices.Max(ref["predictions"].Data); m > 0.99 || m < 1.1/1000 {
		t.Errorf("predictions: max probability %.4f: the random classifier is saturated or flat", m)
	}
	if len(errs) != 22 {
		t.Errorf("%d aliases checked, want 22 (13 convolutions, 5 pools, flatten, fc1, fc2, predictions)", len(errs))
	}
}
