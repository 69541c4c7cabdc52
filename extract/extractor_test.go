package extract

import (
	"pipeline/internal/testenv"
	"pipeline/internal/testutil"

	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"

	"pipeline/extract/onnx"
)

// blobs makes n preprocessed random images for a model, NCHW one after another.
func blobs(t *testing.T, p Preprocess, n int) []float32 {
	t.Helper()
	inLen := 3 * p.Width * p.Height
	out := make([]float32, n*inLen)
	for i := 0; i < n; i++ {
		_, img := randomImage(t, uint64(100+i), p.Width, p.Height)
		err := p.blobFromMat(img, out[i*inLen:(i+1)*inLen])
		img.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// maxRel compares two sets of vectors: max over vectors of relErr.
func maxRel(a, b [][][]float32) (float64, bool) {
	worst, identical := 0.0, true
	for i := range a {
		for j := range a[i] {
			want := make([]float64, len(b[i][j]))
			for k, v := range b[i][j] {
				want[k] = float64(v)
				if a[i][j][k] != v {
					identical = false
				}
			}
			worst = math.Max(worst, testutil.RelErr(a[i][j], want))
		}
	}
	return worst, identical
}

func TestExtractor_BatchInvariance(t *testing.T) {
	for _, tm := range []struct {
		file, preset string
		layers       []string
	}{
		{"resnet-v1-torch-tiny.onnx", "torch", []string{"avg_pool", "conv3_block1_out", "predictions"}},
		{"vgg-zoo-tiny.onnx", "caffe", []string{"fc2", "block2_pool", "predictions"}}, // batch fixed to 1 in the file
	} {
		t.Run(tm.file, func(t *testing.T) {
			model, _ := loadTestModel(t, tm.file, tm.preset)
			in := blobs(t, model.Preprocess, 32)
			var ref [][][]float32
			for _, batch := range []int{1, 7, 32} {
				ex, err := NewExtractor(ExtractorConfig{Model: model, Layers: tm.layers, Pool: "avg", Batch: batch})
				if err != nil {
					t.Fatal(err)
				}
				if ex.BatchSize() != batch {
					t.Errorf("batch %d: extractor runs batches of %d (notes %q)", batch, ex.BatchSize(), ex.Notes)
				}
				got, err := ex.Forward(in, 32)
				ex.Close()
				if err != nil {
					t.Fatal(err)
				}
				if ref == nil {
					ref = got
					continue
				}
				e, same := maxRel(got, ref)
				t.Logf("batch %2d vs batch 1: max rel err %.2e, bit-identical %v", batch, e, same)
				if e > 1e-6 {
					t.Errorf("batch %d differs from batch 1: %.3g > 1e-6", batch, e)
				}
			}
		})
	}
}

func TestExtractor_Pooling(t *testing.T) {
	model, om := loadTestModel(t, "resnet-v1-zoo-tiny.onnx", "torch")
	p := model.Preprocess
	pix, img := randomImage(t, 5, p.Width, p.Height)
	defer img.Close()
	blob := make([]float32, 3*p.Width*p.Height)
	if err := p.blobFromMat(img, blob); err != nil {
		t.Fatal(err)
	}
	in := onnx.NewFloat64(model.Input, []int{1, 3, p.Height, p.Width}, referenceInput(p, pix, p.Width, p.Height))
	ref, err := onnx.Run(om, map[string]*onnx.Tensor{model.Input: in}, "resnetv17_stage2_activation1")
	if err != nil {
		t.Fatal(err)
	}
	r := ref["resnetv17_stage2_activation1"]
	c, hw := r.Dims[1], r.Dims[2]*r.Dims[3]
	for _, pool := range []string{"avg", "max", "none"} {
		t.Run(pool, func(t *testing.T) {
			ex, err := NewExtractor(ExtractorConfig{Model: model, Layers: []string{"conv3_block2_out"}, Pool: pool})
			if err != nil {
				t.Fatal(err)
			}
			defer ex.Close()
			out := ex.Outputs()[0]
			got, err := ex.Forward(blob, 1)
			if err != nil {
				t.Fatal(err)
			}
			// The reference pooled in float64 from the reference tensor;
			// "none" is C x H x W order, the ONNX/NCHW order.
			var want []float64
			switch pool {
			case "none":
				want = r.Float64
			default:
				for ch := 0; ch < c; ch++ {
					v := r.Float64[ch*hw : (ch+1)*hw]
					acc := v[0]
					if pool == "avg" {
						acc = 0
					}
					for _, x := range v {
						if pool == "avg" {
							acc += x / float64(hw)
						} else {
							acc = math.Max(acc, x)
						}
					}
					want = append(want, acc)
				}
			}
			if out.Dim != len(want) || len(got[0][0]) != len(want) {
				t.Fatalf("dim %d (%d values), want %d", out.Dim, len(got[0][0]), len(want))
			}
			if e := testutil.RelErr(got[0][0], want); e > 1e-5 {
				t.Errorf("pool %s: max rel err %.3g > 1e-5", pool, e)
			}
		})
	}
	t.Run("VectorOutputIgnoresPool", func(t *testing.T) {
		ex, err := NewExtractor(ExtractorConfig{Model: model, Layers: []string{"avg_pool", "predictions"}, Pool: "max"})
		if err != nil {
			t.Fatal(err)
		}
		defer ex.Close()
		for _, o := range ex.Outputs() {
			if o.Pool != "none" {
				t.Errorf("%s (shape %v): pool %q, want none: a 1x1 or flat output is already a vector", o.Layer.Name, o.Shape, o.Pool)
			}
		}
	})
}

func TestExtractor_OpenCLMatchesCPU(t *testing.T) {
	devs, err := OpenCLDevices()
	if err != nil || len(devs) == 0 {
		testenv.Missing(t, "no OpenCL device (install pocl-opencl-icd): %v", err)
	}
	model, _ := loadTestModel(t, "resnet-v1-torch-tiny.onnx", "torch")
	in := blobs(t, model.Preprocess, 4)
	run := func(backend string) [][][]float32 {
		ex, err := NewExtractor(ExtractorConfig{Model: model, Layers: []string{"conv3_block2_out", "avg_pool", "predictions"},
			Compute: Compute{Backend: backend}, Batch: 4})
		if err != nil {
			t.Fatal(err)
		}
		defer ex.Close()
		out, err := ex.Forward(in, 4)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	cpu, ocl := run("cpu"), run("opencl")
	e, same := maxRel(ocl, cpu)
	t.Logf("OpenCL (%s) vs CPU: max rel err %.2e (bit-identical %v)", devs[0].Name, e, same)
	if e > 1e-4 {
		t.Errorf("OpenCL differs from CPU: %.3g > 1e-4", e)
	}
	if same {
		t.Errorf("OpenCL output is bit-identical to CPU: OpenCV probably fell back to the CPU silently")
	}
}

func TestResolveCompute(t *testing.T) {
	for _, c := range []struct {
		c   Compute
		msg string
	}{
		{Compute{Backend: "cuda"}, "backend cuda with target fp32 is not available in this OpenCV build (4.6.0); available: cpu/fp32"},
		{Compute{Backend: "cpu", Target: "fp16"}, "target fp16 needs the opencl or cuda backend"},
		{Compute{Backend: "tpu"}, `backend "tpu": want cpu, opencl or cuda`},
		{Compute{Target: "int8"}, `target "int8": want fp32 or fp16`},
	} {
		_, _, err := resolveCompute(c.c)
		if err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%+v: error %v, want it to contain %q", c.c, err, c.msg)
		}
		if c.c.Backend == "cuda" && !errors.Is(err, ErrBackendUnavailable) {
			t.Errorf("cuda: error does not wrap ErrBackendUnavailable")
		}
	}
	if _, _, err := resolveCompute(Compute{}); err != nil {
		t.Errorf("default compute: %v", err)
	}
}

// TestGenerated_FullSizeAliases resolves the aliases on the full VGG-16 and
// ResNet-50 architectures (random weights) in both namings. They are
// generated into the cache, never into git; the first run writes ~1.4 GB.
func TestGenerated_FullSizeAliases(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: full-size models")
	}
	cache := testCache(t)
	for _, c := range []struct {
		name   string
		family string
		want   map[string]string // alias → "node name shape"
		count  int               // number of aliases
	}{
		{"vgg16-arch", "vgg", map[string]string{
			"block1_pool": "vgg0_pool0_fwd 64x112x112", "block4_pool": "vgg0_pool3_fwd 512x14x14", "block5_pool": "vgg0_pool4_fwd 512x7x7",
			"flatten": "flatten_60 25088", "fc1": "vgg0_dense0_relu_fwd 4096", "fc2": "vgg0_dense1_relu_fwd 4096", "predictions": "vgg0_dense2_fwd 1000"}, 9},
		{"vgg16-arch-torch", "vgg", map[string]string{
			"block5_pool": "/features/features.30/MaxPool 512x7x7", "fc1": "/classifier/classifier.1/Relu 4096",
			"fc2": "/classifier/classifier.4/Relu 4096", "predictions": "/classifier/classifier.6/Gemm 1000"}, 9},
		{"resnet50-arch", "resnet", map[string]string{
			"conv1_relu": "resnetv17_relu0_fwd 64x112x112", "pool1_pool": "resnetv17_pool0_fwd 64x56x56",
			"conv2_block3_out": "resnetv17_stage1_activation2 256x56x56", "conv3_block4_out": "resnetv17_stage2_activation3 512x28x28",
			"conv4_block6_out": "resnetv17_stage3_activation5 1024x14x14", "conv5_block3_out": "resnetv17_stage4_activation2 2048x7x7",
			"avg_pool": "resnetv17_pool1_fwd 2048x1x1", "predictions": "resnetv17_dense0_fwd 1000"}, 20},
		{"resnet50-arch-torch", "resnet", map[string]string{
			"conv2_block1_out": "/layer1/layer1.0/relu_2/Relu 256x56x56", "conv4_block6_out": "/layer3/layer3.5/relu_2/Relu 1024x14x14",
			"conv5_block3_out": "/layer4/layer4.2/relu_2/Relu 2048x7x7", "avg_pool": "/avgpool/GlobalAveragePool 2048x1x1",
			"predictions": "/fc/Gemm 1000"}, 20},
		{"resnet50-v2-arch", "resnet", map[string]string{
			"conv2_block3_out": "resnetv24_stage1__plus2 256x56x56", "conv5_block3_out": "resnetv24_stage4__plus2 2048x7x7",
			"post_relu": "resnetv24_relu1_fwd 2048x7x7", "avg_pool": "resnetv24_pool1_fwd 2048x1x1", "predictions": "resnetv24_dense0_fwd 1000"}, 21},
	} {
		t.Run(c.name, func(t *testing.T) {
			g, _ := LookupGenerated(c.name)
			path, sha, err := g.Ensure(cache)
			if err != nil {
				t.Fatal(err)
			}
			m := Model{Name: c.name, Format: "onnx", Path: path, SHA256: sha, Input: "data", Preprocess: Presets["torch"]}
			net, gr, err := OpenNet(m)
			if err != nil {
				t.Fatal(err)
			}
			defer net.Close()
			if gr.Family != c.family || len(gr.AliasNames()) != c.count {
				t.Errorf("family %q with %d aliases %v, want %q with %d", gr.Family, len(gr.AliasNames()), gr.AliasNames(), c.family, c.count)
			}
			for alias, want := range c.want {
				l := gr.Alias(alias)
				if l == nil {
					t.Errorf("alias %s missing", alias)
					continue
				}
				if got := strings.TrimPrefix(l.Name, "onnx_node!") + " " + l.ShapeString(); got != want {
					t.Errorf("alias %s = %s, want %s", alias, got, want)
				}
			}
			if testing.Verbose() {
				var b strings.Builder
				for _, a := range gr.AliasNames() {
					fmt.Fprintf(&b, "\n  %-17s %-40s %s", a, gr.Alias(a).Name, gr.Alias(a).ShapeString())
				}
				t.Logf("%s:%s", c.name, b.String())
			}
		})
	}
}

// testCache is $PIPELINE_CACHE, or the user's cache: generated models are
// kept between test runs there.
func testCache(t *testing.T) string {
	t.Helper()
	d, err := CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}
