package extract

import (
	"errors"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"pipeline/extract/onnx"
	"pipeline/internal/testutil"
)

// forwardOne runs one random image through an extractor on the given engine.
func forwardOne(t *testing.T, model Model, layers []string, eng string, seed uint64) ([][]float32, []float64, *Extractor) {
	t.Helper()
	p := model.Preprocess
	ex, err := NewExtractor(ExtractorConfig{Model: model, Layers: layers, Pool: "none", Compute: Compute{Engine: eng}})
	if err != nil {
		t.Fatal(err)
	}
	if ex.Engine() != eng {
		ex.Close()
		t.Fatalf("engine %s, want %s (notes %q)", ex.Engine(), eng, ex.Notes)
	}
	pix, img := randomImage(t, seed, p.Width, p.Height)
	defer img.Close()
	blob := make([]float32, ex.InputLen())
	if err := p.blobFromMat(img, blob); err != nil {
		t.Fatal(err)
	}
	got, err := ex.Forward(blob, 1)
	if err != nil {
		t.Fatal(err)
	}
	return got[0], referenceInput(p, pix, p.Width, p.Height), ex
}

// TestOneDNN_OpsModel: every layer of the ops model against the float64
// reference, including what follows the AveragePool with
// count_include_pad=1, which oneDNN computes as ONNX says (OpenCV 4.6 does
// not, see TestOpsModel_MatchesReference).
func TestOneDNN_OpsModel(t *testing.T) {
	model, om := loadTestModel(t, "ops.onnx", "torch")
	net, g, err := OpenNet(model)
	if err != nil {
		t.Fatal(err)
	}
	net.Close()
	var layers, tensors []string
	for _, n := range om.Graph.Nodes {
		if l := g.Layer("onnx_node!" + n.Name); l != nil && len(l.Shape) > 0 {
			layers = append(layers, l.Name)
			tensors = append(tensors, n.Outputs[0])
		}
	}
	got, x, ex := forwardOne(t, model, layers, EngineOneDNN, 2)
	defer ex.Close()
	p := model.Preprocess
	in := onnx.NewFloat64(model.Input, []int{1, 3, p.Height, p.Width}, x)
	ref, err := onnx.Run(om, map[string]*onnx.Tensor{model.Input: in}, tensors...)
	if err != nil {
		t.Fatal(err)
	}
	if !containsAll(tensors, "avgpool_incl_out", "prob", "gap") {
		t.Fatalf("ops model layers %v lack avgpool_incl_out, prob or gap", tensors)
	}
	for i, name := range layers {
		e := testutil.RelErr(got[i], ref[tensors[i]].Float64)
		t.Logf("%-32s max rel err %.2e", name, e)
		if e > 1e-5 {
			t.Errorf("%s: max relative error %.3g > 1e-5", name, e)
		}
	}
}

func containsAll(list []string, want ...string) bool {
	for _, w := range want {
		found := false
		for _, s := range list {
			found = found || s == w
		}
		if !found {
			return false
		}
	}
	return true
}

// TestOneDNN_UnfusedOutputs: a BatchNormalization or convolution requested
// by name is computed on its own (not folded or fused away), whichever
// engine runs it.
func TestOneDNN_UnfusedOutputs(t *testing.T) {
	model, om := loadTestModel(t, "resnet-v1-torch-tiny.onnx", "torch")
	layers := []string{"/bn1/BatchNormalization", "/layer1/layer1.0/conv3/Conv", "/layer1/layer1.0/Add", "conv2_block1_out"}
	tensors := []string{"/bn1/BatchNormalization_output_0", "/layer1/layer1.0/conv3/Conv_output_0", "/layer1/layer1.0/Add_output_0", "/layer1/layer1.0/relu_2/Relu_output_0"}
	for _, eng := range []string{EngineOneDNN} {
		got, x, ex := forwardOne(t, model, layers, eng, 9)
		ex.Close()
		p := model.Preprocess
		in := onnx.NewFloat64(model.Input, []int{1, 3, p.Height, p.Width}, x)
		ref, err := onnx.Run(om, map[string]*onnx.Tensor{model.Input: in}, tensors...)
		if err != nil {
			t.Fatal(err)
		}
		for i, l := range layers {
			if e := testutil.RelErr(got[i], ref[tensors[i]].Float64); e > 1e-5 {
				t.Errorf("%s %s: max rel err %.3g > 1e-5", eng, l, e)
			}
		}
	}
}

// TestOneDNN_BatchInvariance: batches of 1, 3 (with a partial last batch of
// 2) and 8 give the same vectors, and the same as OpenCV's.
func TestOneDNN_BatchInvariance(t *testing.T) {
	for _, tm := range []struct {
		file, preset string
		layers       []string
	}{
		{"resnet-v1-torch-tiny.onnx", "torch", []string{"avg_pool", "conv3_block1_out", "predictions"}},
		{"resnet-v2-zoo-tiny.onnx", "caffe", []string{"post_relu", "conv2_block1_out", "predictions"}},
		{"vgg-torch-tiny.onnx", "torch", []string{"fc2", "block2_pool", "flatten", "predictions"}},
	} {
		t.Run(tm.file, func(t *testing.T) {
			model, _ := loadTestModel(t, tm.file, tm.preset)
			in := blobs(t, model.Preprocess, 8)
			run := func(eng string, batch int) [][][]float32 {
				ex, err := NewExtractor(ExtractorConfig{Model: model, Layers: tm.layers, Pool: "avg", Batch: batch, Compute: Compute{Engine: eng}})
				if err != nil {
					t.Fatal(err)
				}
				defer ex.Close()
				if ex.Engine() != eng || ex.BatchSize() != batch {
					t.Fatalf("engine %s batch %d, want %s %d", ex.Engine(), ex.BatchSize(), eng, batch)
				}
				got, err := ex.Forward(in, 8)
				if err != nil {
					t.Fatal(err)
				}
				return got
			}
			ref := run(EngineOpenCV, 1)
			for _, batch := range []int{1, 3, 8} {
				got := run(EngineOneDNN, batch)
				e, _ := maxRel(got, ref)
				t.Logf("oneDNN batch %d vs OpenCV batch 1: max rel err %.2e", batch, e)
				if e > 1e-5 {
					t.Errorf("oneDNN batch %d differs from OpenCV: %.3g > 1e-5", batch, e)
				}
			}
		})
	}
}

// extrasModel has what the alias models lack and the float64 reference
// does not implement: a grouped and a dilated convolution, Concat, a
// BatchNormalization after a Concat (a primitive of its own), MatMul and
// Softmax. It is compared with OpenCV.
func extrasModel(t *testing.T, dir string) string {
	t.Helper()
	r := rand.New(rand.NewPCG(11, 12))
	rnd := func(name string, dims ...int) *onnx.Tensor {
		n := 1
		for _, d := range dims {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64() * 0.3)
		}
		return onnx.NewFloat32(name, dims, v)
	}
	pos := func(name string, n int) *onnx.Tensor {
		v := make([]float32, n)
		for i := range v {
			v[i] = 0.5 + r.Float32()
		}
		return onnx.NewFloat32(name, []int{n}, v)
	}
	b := onnx.NewBuilder("extras")
	x := b.Input("data", onnx.Dim{Param: "N"}, onnx.Dim{Value: 3}, onnx.Dim{Value: 16}, onnx.Dim{Value: 16})
	a := b.Conv("conv_a", x, "conv_a_out", rnd("wa", 8, 3, 3, 3), rnd("ba", 8), onnx.ConvAttrs{Pads: []int{1, 1, 1, 1}})
	g := b.Node("Conv", "conv_g", []string{a, b.Initializer(rnd("wg", 8, 2, 3, 3))}, []string{"conv_g_out"},
		onnx.IntAttr("group", 4), onnx.IntsAttr("kernel_shape", 3, 3), onnx.IntsAttr("pads", 2, 2, 2, 2), onnx.IntsAttr("dilations", 2, 2))
	c := b.Node("Concat", "concat", []string{a, g.Outputs[0]}, []string{"concat_out"}, onnx.IntAttr("axis", 1))
	bn := b.BatchNorm("bn", c.Outputs[0], "bn_out", pos("s", 16), rnd("sh", 16), rnd("m", 16), pos("v", 16), 1e-5)
	relu := b.Relu("relu", bn, "relu_out")
	mp := b.MaxPool("pool", relu, "pool_out", onnx.PoolAttrs{Kernel: []int{2, 2}, Strides: []int{2, 2}})
	f := b.Flatten("flatten", mp, "flatten_out", 1)
	mm := b.Node("MatMul", "matmul", []string{f, b.Initializer(rnd("wm", 16*8*8, 10))}, []string{"matmul_out"})
	sm := b.Softmax("softmax", mm.Outputs[0], "prob", 1)
	b.Output(sm, onnx.Dim{Param: "N"}, onnx.Dim{Value: 10})
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "extras.onnx")
	if err := onnx.WriteFile(path, m); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestOneDNN_MatchesOpenCV_Extras(t *testing.T) {
	path := extrasModel(t, t.TempDir())
	p := Presets["torch"]
	p.Width, p.Height, p.Resize = 16, 16, Resize{}
	model := Model{Name: "extras", Format: "onnx", Path: path, Input: "data", Preprocess: p, HasPreprocess: true}
	layers := []string{"conv_g", "concat", "bn", "relu", "pool", "flatten", "matmul", "softmax"}
	cv, _, ex1 := forwardOne(t, model, layers, EngineOpenCV, 3)
	ex1.Close()
	dn, _, ex2 := forwardOne(t, model, layers, EngineOneDNN, 3)
	ex2.Close()
	for i, l := range layers {
		want := make([]float64, len(cv[i]))
		for k, v := range cv[i] {
			want[k] = float64(v)
		}
		e := testutil.RelErr(dn[i], want)
		t.Logf("%-8s %5d values  max rel err vs OpenCV %.2e", l, len(want), e)
		if len(dn[i]) != len(want) || e > 1e-5 {
			t.Errorf("%s: %d values, max rel err %.3g vs OpenCV", l, len(dn[i]), e)
		}
	}
}

// unsupportedModel is a convolution followed by an operator the oneDNN
// engine does not implement (OpenCV does).
func unsupportedModel(t *testing.T, dir string) Model {
	t.Helper()
	path := testutil.SigmoidModel(t, dir, 8)
	p := Presets["torch"]
	p.Width, p.Height, p.Resize = 8, 8, Resize{}
	return Model{Name: "sigmoid.onnx", Format: "onnx", Path: path, Input: "data", Preprocess: p, HasPreprocess: true}
}

func TestNewExtractor_Engine(t *testing.T) {
	model := unsupportedModel(t, t.TempDir())
	t.Run("ErrUnsupportedOp", func(t *testing.T) {
		_, err := NewExtractor(ExtractorConfig{Model: model, Layers: []string{"gap"}, Compute: Compute{Engine: "onednn"}})
		if !errors.Is(err, ErrUnsupportedOp) || !strings.Contains(err.Error(), `ONNX node "sig": operator Sigmoid`) {
			t.Fatalf("err = %v, want ErrUnsupportedOp naming Sigmoid", err)
		}
	})
	t.Run("AutoFallsBack", func(t *testing.T) {
		ex, err := NewExtractor(ExtractorConfig{Model: model, Layers: []string{"gap"}})
		if err != nil {
			t.Fatal(err)
		}
		defer ex.Close()
		if ex.Engine() != EngineOpenCV || len(ex.Notes) != 1 || !strings.Contains(ex.Notes[0], "engine opencv: ONNX node \"sig\": operator Sigmoid: not supported by the oneDNN engine") {
			t.Errorf("engine %s, notes %q: want opencv with one note naming Sigmoid", ex.Engine(), ex.Notes)
		}
	})
	t.Run("AutoBeforeTheOp", func(t *testing.T) {
		// Up to the requested layer the graph is supported: oneDNN runs it.
		ex, err := NewExtractor(ExtractorConfig{Model: model, Layers: []string{"conv"}})
		if err != nil {
			t.Fatal(err)
		}
		defer ex.Close()
		if ex.Engine() != EngineOneDNN || len(ex.Notes) != 0 {
			t.Errorf("engine %s, notes %q: want onednn without notes", ex.Engine(), ex.Notes)
		}
	})
	t.Run("CaffeStaysOnOpenCV", func(t *testing.T) {
		_, err := wantEngine(ExtractorConfig{Model: Model{Name: "m", Format: "caffe"}, Compute: Compute{Engine: "onednn"}})
		if !errors.Is(err, ErrEngine) || !strings.Contains(err.Error(), "ONNX models only") {
			t.Errorf("err = %v, want ErrEngine", err)
		}
		eng, err := wantEngine(ExtractorConfig{Model: Model{Name: "m", Format: "tensorflow"}})
		if err != nil || eng != EngineOpenCV {
			t.Errorf("auto on TensorFlow: %s, %v; want opencv", eng, err)
		}
		eng, err = wantEngine(ExtractorConfig{Model: Model{Name: "m", Format: "onnx"}, Compute: Compute{Backend: "opencl"}})
		if err != nil || eng != EngineOpenCV {
			t.Errorf("auto with OpenCL: %s, %v; want opencv", eng, err)
		}
	})
	t.Run("ErrEngine", func(t *testing.T) {
		for _, c := range []Compute{{Engine: "tvm"}, {Arith: "fp8"}, {Engine: "opencv", Arith: "bf16"}, {Backend: "opencl", Arith: "bf16"}} {
			if _, err := wantEngine(ExtractorConfig{Model: Model{Format: "onnx"}, Compute: c}); !errors.Is(err, ErrEngine) {
				t.Errorf("%+v: err = %v, want ErrEngine", c, err)
			}
		}
	})
}

// TestOneDNN_BF16Refused: on a CPU without avx512_bf16 or AMX, bf16 is a
// clear error naming what the CPU lacks (simulated here, on any CPU).
func TestOneDNN_BF16Refused(t *testing.T) {
	saved := bf16Support
	defer func() { bf16Support = saved }()
	bf16Support = func() (bool, string) {
		return false, "oneDNN's best instruction set on this CPU is avx512_core; bf16 needs avx512_bf16 (avx512_core_bf16) or AMX (avx512_core_amx)"
	}
	model, _ := loadTestModel(t, "resnet-v1-torch-tiny.onnx", "torch")
	_, err := NewExtractor(ExtractorConfig{Model: model, Layers: []string{"avg_pool"}, Compute: Compute{Arith: "bf16"}})
	if !errors.Is(err, ErrNoBF16) || !strings.Contains(err.Error(), "precision bf16: oneDNN's best instruction set on this CPU is avx512_core; bf16 needs avx512_bf16") {
		t.Fatalf("err = %v, want ErrNoBF16 naming what the CPU lacks", err)
	}
}

// TestOneDNN_BF16: bf16 codes are close to fp32 ones (cosine >= 0.999) on
// every alias model; skipped, with the reason, on CPUs without bf16.
func TestOneDNN_BF16(t *testing.T) {
	if ok, why := BF16Available(); !ok {
		t.Skip("no bf16 on this CPU: " + why)
	}
	for _, tm := range testModels {
		t.Run(strings.TrimSuffix(tm.file, ".onnx"), func(t *testing.T) {
			model, _ := loadTestModel(t, tm.file, tm.preset)
			net, g, err := OpenNet(model)
			if err != nil {
				t.Fatal(err)
			}
			net.Close()
			checkBF16(t, model, g.AliasNames(), 4)
		})
	}
}

// TestOneDNN_BF16_FullSizeVGG: the full-size VGG-16's fully connected
// weights are misaligned in the generated file and reordered in slabs of
// output channels (reorder_weights_slabs): bf16 codes of fc1 and fc2 agree
// with fp32 ones.
func TestOneDNN_BF16_FullSizeVGG(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: full-size models")
	}
	if ok, why := BF16Available(); !ok {
		t.Skip("no bf16 on this CPU: " + why)
	}
	gen, _ := LookupGenerated("vgg16-arch")
	path, sha, err := gen.Ensure(testCache(t))
	if err != nil {
		t.Fatal(err)
	}
	p := Presets["torch"]
	p.Resize = Resize{}
	model := Model{Name: "vgg16-arch", Format: "onnx", Path: path, SHA256: sha, Input: "data", Preprocess: p, HasPreprocess: true}
	checkBF16(t, model, []string{"fc1", "fc2"}, 2)
}

// checkBF16 runs batch random blobs through the model in fp32 and bf16 and
// checks the cosine of every image's codes of every layer (>= 0.999).
func checkBF16(t *testing.T, model Model, names []string, batch int) {
	t.Helper()
	in := blobs(t, model.Preprocess, batch)
	run := func(arith string) [][][]float32 {
		ex, err := NewExtractor(ExtractorConfig{Model: model, Layers: names, Pool: "avg", Batch: batch, Compute: Compute{Arith: arith}})
		if err != nil {
			t.Fatal(err)
		}
		defer ex.Close()
		if ex.Engine() != EngineOneDNN {
			t.Fatalf("engine %s", ex.Engine())
		}
		got, err := ex.Forward(in, batch)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	f32, b16 := run("fp32"), run("bf16")
	for j, a := range names {
		worst := 1.0
		for i := range f32 {
			worst = math.Min(worst, testutil.Cosine(f32[i][j], b16[i][j]))
		}
		t.Logf("%-17s min cosine bf16 vs fp32 %.6f", a, worst)
		if worst < 0.999 {
			t.Errorf("%s: cosine %.6f < 0.999", a, worst)
		}
	}
}

// TestOneDNN_Primitives: fp32 convolutions run on oneDNN's JIT kernels
// (brgconv or jit, never the reference C++ loops), and the plan keeps
// activations blocked: no reorder between two convolutions of ResNet.
func TestOneDNN_Primitives(t *testing.T) {
	model, _ := loadTestModel(t, "resnet-v1-zoo-tiny.onnx", "tf")
	ex, err := NewExtractor(ExtractorConfig{Model: model, Layers: []string{"avg_pool"}, Batch: 2, Compute: Compute{Engine: "onednn"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	prims := ex.Primitives()
	reorders := 0
	for _, p := range prims {
		kind, impl, _ := strings.Cut(p, "\t")
		if kind == "reorder" {
			reorders++
			continue
		}
		if strings.HasPrefix(impl, "ref") || strings.Contains(impl, "gemm:ref") {
			t.Errorf("primitive on the reference implementation: %s", impl)
		}
	}
	t.Logf("oneDNN %s on %s: %d primitives, %d reorders: %q", OneDNNVersion(), OneDNNISA(), len(prims), reorders, prims)
	if reorders > 1 { // the input's, into the first convolution's layout
		t.Errorf("%d reorders, want at most 1 (the input)", reorders)
	}
}

// TestOneDNN_FullSize: every alias of the full-size generated VGG-16 and
// ResNet-50 (v1, v1.5, v2) on oneDNN, against the float64 reference.
func TestOneDNN_FullSize(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: full-size models")
	}
	cache := testCache(t)
	for _, name := range []string{"resnet50-arch", "resnet50-arch-torch", "resnet50-v2-arch", "vgg16-arch"} {
		t.Run(name, func(t *testing.T) {
			gen, _ := LookupGenerated(name)
			path, sha, err := gen.Ensure(cache)
			if err != nil {
				t.Fatal(err)
			}
			p := Presets["torch"]
			p.Resize = Resize{}
			model := Model{Name: name, Format: "onnx", Path: path, SHA256: sha, Input: "data", Preprocess: p, HasPreprocess: true}
			net, g, err := OpenNet(model)
			if err != nil {
				t.Fatal(err)
			}
			net.Close()
			names := g.AliasNames()
			got, x, ex := forwardOne(t, model, names, EngineOneDNN, 4)
			ex.Close()
			om, err := onnx.ReadModel(path)
			if err != nil {
				t.Fatal(err)
			}
			var tensors []string
			for _, a := range names {
				tn, err := layerTensor(om, g.Alias(a))
				if err != nil {
					t.Fatal(err)
				}
				tensors = append(tensors, tn)
			}
			in := onnx.NewFloat64("data", []int{1, 3, p.Height, p.Width}, x)
			ref, err := onnx.Run(om, map[string]*onnx.Tensor{"data": in}, tensors...)
			if err != nil {
				t.Fatal(err)
			}
			for i, a := range names {
				e := testutil.RelErr(got[i], ref[tensors[i]].Float64)
				t.Logf("%-17s %8d values  max rel err %.2e", a, len(got[i]), e)
				if e > 1e-5 {
					t.Errorf("%s: max relative error %.3g > 1e-5", a, e)
				}
			}
		})
	}
}

// TestGraphCache: OpenCV's description of a model is cached by its hash,
// and the oneDNN engine built from the cached graph gives the same codes
// without OpenCV importing the model again.
func TestGraphCache(t *testing.T) {
	t.Setenv("PIPELINE_CACHE", t.TempDir())
	model, _ := loadTestModel(t, "resnet-v1-torch-tiny.onnx", "torch")
	model.SHA256 = "0123456789abcdef"
	if cachedGraph(model) != nil {
		t.Fatal("cache not empty at the start")
	}
	layers := []string{"avg_pool", "conv3_block1_out"}
	first, _, ex := forwardOne(t, model, layers, EngineOneDNN, 7)
	ex.Close()
	g := cachedGraph(model)
	if g == nil || g.Alias("avg_pool") == nil || len(g.Alias("avg_pool").Source) == 0 {
		t.Fatalf("no usable cached graph after the first extractor: %v", g)
	}
	second, _, ex := forwardOne(t, model, layers, EngineOneDNN, 7)
	if ex.net != nil {
		t.Error("the second extractor imported the model into OpenCV")
	}
	ex.Close()
	for i := range layers {
		if !slices.Equal(first[i], second[i]) {
			t.Errorf("%s differs with the cached graph", layers[i])
		}
	}
}
