package keras

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"pipeline/extract/onnx"
	"pipeline/internal/testutil"
)

// tinyCase is a small variant of an architecture: every width divided,
// a small input, 10 classes.
type tinyCase struct {
	name string
	spec Spec
	arch Arch // what Convert must recognise (InputSize, Classes, Name, Naming, Top)
}

func tinyCases() []tinyCase {
	vgg16, vgg19 := []int{2, 2, 3, 3, 3}, []int{2, 2, 4, 4, 4}
	return []tinyCase{
		{"vgg16-top", VGGSpec(vgg16, 16, 64, true, 10), Arch{Name: "VGG16", Naming: NamingVGG, Top: true, InputSize: 64, Classes: 10}},
		{"vgg16-notop", VGGSpec(vgg16, 16, 64, false, 0), Arch{Name: "VGG16", Naming: NamingVGG, InputSize: 64}},
		{"vgg19-top", VGGSpec(vgg19, 16, 64, true, 10), Arch{Name: "VGG19", Naming: NamingVGG, Top: true, InputSize: 64, Classes: 10}},
		{"vgg19-notop", VGGSpec(vgg19, 16, 64, false, 0), Arch{Name: "VGG19", Naming: NamingVGG, InputSize: 64}},
		{"resnet50-keras-top", ResNet50Spec(false, true, 16, 64, true, 10), Arch{Name: "ResNet50", Naming: NamingKeras, Top: true, InputSize: 64, Classes: 10}},
		{"resnet50-keras-notop", ResNet50Spec(false, true, 16, 64, false, 0), Arch{Name: "ResNet50", Naming: NamingKeras, InputSize: 64}},
		{"resnet50-legacy-top", ResNet50Spec(true, true, 16, 64, true, 10), Arch{Name: "ResNet50", Naming: NamingLegacy, Top: true, InputSize: 64, Classes: 10, Pool1Pad: true}},
		{"resnet50-legacy-notop", ResNet50Spec(true, true, 16, 64, false, 0), Arch{Name: "ResNet50", Naming: NamingLegacy, InputSize: 64, Pool1Pad: true}},
		// Keras 2.0's resnet50.py had no padding before the first max pool
		// (the fchollet v0.2 file was saved from it): 56 -> 27 -> ... on 224.
		{"resnet50-legacy-nopad", ResNet50Spec(true, false, 16, 64, true, 10), Arch{Name: "ResNet50", Naming: NamingLegacy, Top: true, InputSize: 64, Classes: 10}},
	}
}

// writeCase writes the case's random weights in a layout and naming style.
func writeCase(t *testing.T, tc tinyCase, layout, style string) (string, *File) {
	t.Helper()
	f, err := tc.spec.RandomFile(7, style)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), tc.name+".h5")
	if err := Write(path, f, WriteOptions{Layout: layout, ModelConfig: `{"class_name": "Model", "config": {"name": "` + tc.spec.Name + `"}}`}); err != nil {
		t.Fatal(err)
	}
	return path, f
}

func TestWriteRead_RoundTrip(t *testing.T) {
	tc := tinyCases()[0]
	for _, layout := range []string{LayoutWeights, LayoutModel} {
		for _, style := range []string{WeightsFlat, WeightsNested} {
			t.Run(layout+"-"+style, func(t *testing.T) {
				path, want := writeCase(t, tc, layout, style)
				got, err := Read(path)
				if err != nil {
					t.Fatal(err)
				}
				if got.Layout != layout || got.Backend != "tensorflow" || got.KerasVersion != "2.2.4" {
					t.Errorf("layout %q backend %q version %q", got.Layout, got.Backend, got.KerasVersion)
				}
				if len(got.Layers) != len(want.Layers) {
					t.Fatalf("%d layers, want %d", len(got.Layers), len(want.Layers))
				}
				for i, l := range want.Layers {
					g := got.Layers[i]
					if g.Name != l.Name || len(g.Weights) != len(l.Weights) {
						t.Fatalf("layer %d: %s with %d weights, want %s with %d", i, g.Name, len(g.Weights), l.Name, len(l.Weights))
					}
					for j, w := range l.Weights {
						gw := g.Weights[j]
						if gw.Name != w.Name || !slices.Equal(gw.Shape, w.Shape) || !slices.Equal(gw.Data, w.Data) {
							t.Errorf("layer %s weight %d: %s %v, want %s %v (or data differs)", l.Name, j, gw.Name, gw.Shape, w.Name, w.Shape)
						}
					}
				}
			})
		}
	}
}

// randomInput is a preprocessed-looking input: BGR minus the ImageNet
// mean, H, W, C.
func randomInput(size int, seed uint64) Tensor {
	r := rand.New(rand.NewPCG(seed, 1))
	t := Tensor{Shape: []int{size, size, 3}, Data: make([]float64, size*size*3)}
	mean := []float64{103.939, 116.779, 123.68}
	for i := range t.Data {
		t.Data[i] = float64(r.IntN(256)) - mean[i%3]
	}
	return t
}

// TestConvert_MatchesKerasReference: each tiny architecture, in each
// layout and weight naming, read back from its file, converted, and run by
// the float64 ONNX interpreter, gives for every Keras layer name that has a
// node what the channels_last float64 reference computes from the
// weights in memory.
func TestConvert_MatchesKerasReference(t *testing.T) {
	for _, tc := range tinyCases() {
		for _, lay := range []struct{ layout, style string }{{LayoutWeights, WeightsFlat}, {LayoutWeights, WeightsNested}, {LayoutModel, WeightsNested}} {
			t.Run(tc.name+"/"+lay.layout+"-"+lay.style, func(t *testing.T) {
				path, mem := writeCase(t, tc, lay.layout, lay.style)
				f, err := Read(path)
				if err != nil {
					t.Fatal(err)
				}
				m, arch, err := Convert(f, Options{InputSize: tc.spec.InputSize})
				if err != nil {
					t.Fatal(err)
				}
				want := tc.arch
				want.BNEpsilon = arch.BNEpsilon
				want.Output = arch.Output
				if arch != want {
					t.Errorf("arch %+v, want %+v", arch, want)
				}
				if (arch.Naming == NamingKeras && arch.BNEpsilon != 1.001e-5) || (arch.Naming == NamingLegacy && arch.BNEpsilon != 1e-3) {
					t.Errorf("epsilon %g for %s", arch.BNEpsilon, arch.Naming)
				}
				in := randomInput(tc.spec.InputSize, 3)
				ref, err := Forward(&tc.spec, mem, in)
				if err != nil {
					t.Fatal(err)
				}
				names := KerasNames(m)
				for _, n := range names {
					if _, ok := ref[n]; !ok {
						t.Errorf("node %s is not a Keras layer of the spec", n)
					}
				}
				x := onnx.NewFloat64("input_1", []int{1, 3, tc.spec.InputSize, tc.spec.InputSize}, in.NCHW())
				got, err := onnx.Run(m, map[string]*onnx.Tensor{"input_1": x}, names...)
				if err != nil {
					t.Fatal(err)
				}
				worst := 0.0
				for _, n := range names {
					want := ref[n].NCHW()
					if n == "flatten" {
						// Keras flattens H,W,C; the graph C,H,W (fc1's rows
						// are permuted to match): the same values, in the
						// order of the map before it.
						want = ref["block5_pool"].NCHW()
					}
					e := testutil.RelErr(got[n].Float64, want)
					worst = math.Max(worst, e)
					if e > 1e-9 {
						t.Errorf("%s: max relative error %.3g", n, e)
					}
				}
				if arch.Top {
					// The classifier's softmax must not be saturated, or
					// comparing it would test nothing.
					top := ref[arch.Output].Data
					if m := slices.Max(top); m > 0.99 || m < 1.1/float64(len(top)) {
						t.Errorf("%s: max probability %.4f: the random classifier is saturated or flat", arch.Output, m)
					}
				}
				t.Logf("%d Keras layers, worst relative error %.2e", len(names), worst)
			})
		}
	}
}

func TestRead_Errors(t *testing.T) {
	dir := t.TempDir()
	tc := tinyCases()[0]
	good, _ := writeCase(t, tc, LayoutWeights, WeightsNested)
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	notH5 := filepath.Join(dir, "not.h5")
	os.WriteFile(notH5, []byte("this is a text file, not HDF5\n"), 0o644)
	trunc := filepath.Join(dir, "trunc.h5")
	os.WriteFile(trunc, data[:len(data)/2], 0o644)
	// HDF5 without Keras's attributes.
	plain := filepath.Join(dir, "plain.h5")
	h, err := createHDF5(plain)
	if err != nil {
		t.Fatal(err)
	}
	g, _ := h.createGroup("data")
	g.writeDataset("x", []int{2}, []float32{1, 2})
	g.Close()
	h.Close()
	for _, c := range []struct {
		path, want string
		notKeras   bool
	}{
		{notH5, "not an HDF5 file", true},
		{trunc, "truncated", false},
		{plain, "without the attribute layer_names", true},
	} {
		_, err := Read(c.path)
		if err == nil {
			t.Errorf("%s: no error", c.path)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, c.path) || !strings.Contains(msg, c.want) {
			t.Errorf("%s: error %q, want the path and %q", filepath.Base(c.path), msg, c.want)
		}
		if errors.Is(err, ErrNotKeras) != c.notKeras {
			t.Errorf("%s: errors.Is(ErrNotKeras) = %v", filepath.Base(c.path), !c.notKeras)
		}
	}
}

func TestConvert_Errors(t *testing.T) {
	vgg := VGGSpec([]int{2, 2, 3, 3, 3}, 16, 64, true, 10)
	mutate := func(name string, change func(f *File)) (string, *File) {
		f, err := vgg.RandomFile(1, WeightsNested)
		if err != nil {
			t.Fatal(err)
		}
		change(f)
		return name, f
	}
	drop := func(layer string) func(f *File) {
		return func(f *File) {
			f.Layers = slices.DeleteFunc(f.Layers, func(l Layer) bool { return l.Name == layer })
		}
	}
	other := &File{Layers: []Layer{{Name: "conv2d_1", Weights: []Weight{{Name: "conv2d_1/kernel:0", Shape: []int{3, 3, 3, 8}, Data: make([]float32, 216)}}},
		{Name: "dense_1", Weights: []Weight{{Name: "dense_1/kernel:0", Shape: []int{8, 2}, Data: make([]float32, 16)}}}}}
	cases := []struct {
		name string
		f    *File
		want string
	}{
		{"other-architecture", other, "found layers conv2d_1, dense_1"},
	}
	for _, m := range []struct {
		name, want string
		change     func(*File)
	}{
		{"missing-conv", "layer block3_conv3 is missing", drop("block3_conv3")},
		{"missing-fc2", "layer fc2 is missing", drop("fc2")},
		{"wrong-shape", "layer block2_conv1: weight block2_conv1/kernel:0 has shape [3 3 5 8], want [3 3 4 any]", func(f *File) {
			l := f.Layer("block2_conv1")
			l.Weights[0].Shape = []int{3, 3, 5, 8}
			l.Weights[0].Data = make([]float32, 3*3*5*8)
		}},
		{"extra-layer", "layers dense_9 are not part of VGG16", func(f *File) {
			f.Layers = append(f.Layers, Layer{Name: "dense_9", Weights: []Weight{{Name: "dense_9/kernel:0", Shape: []int{10, 2}, Data: make([]float32, 20)}}})
		}},
		{"vgg13", "neither VGG16", drop("block5_conv3")},
	} {
		if m.name == "vgg13" {
			cases = append(cases, struct {
				name string
				f    *File
				want string
			}{m.name, func() *File {
				_, f := mutate(m.name, func(f *File) { drop("block3_conv3")(f); drop("block4_conv3")(f); drop("block5_conv3")(f) })
				return f
			}(), m.want})
			continue
		}
		_, f := mutate(m.name, m.change)
		cases = append(cases, struct {
			name string
			f    *File
			want string
		}{m.name, f, m.want})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), c.name+".h5")
			if err := Write(path, c.f, WriteOptions{}); err != nil {
				t.Fatal(err)
			}
			f, err := Read(path)
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = Convert(f, Options{})
			if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, ErrNotKeras) {
				t.Errorf("error %v, want ErrNotKeras with %q", err, c.want)
			}
		})
	}
}

func TestSamePads(t *testing.T) {
	for _, c := range []struct{ in, k, s, b, e int }{
		{224, 3, 1, 1, 1}, {224, 3, 2, 0, 1}, {225, 3, 2, 1, 1}, {7, 1, 2, 0, 0}, {56, 7, 2, 2, 3}, {5, 4, 1, 1, 2},
	} {
		b, e := samePads(c.in, c.k, c.s)
		if b != c.b || e != c.e {
			t.Errorf("samePads(%d, %d, %d) = %d, %d, want %d, %d", c.in, c.k, c.s, b, e, c.b, c.e)
		}
	}
}

// TestConvert_Pool1Pad: the legacy ResNet50's padding before the first max
// pool, which the weights cannot show: from the file's layer list (a
// pool1_pad layer; a complete list without it; a list of the weight layers
// only, which says nothing and gives Keras >= 2.2.3's padding), or forced;
// each checked numerically against the reference of the network it claims.
func TestConvert_Pool1Pad(t *testing.T) {
	padded, unpadded := ResNet50Spec(true, true, 16, 64, true, 10), ResNet50Spec(true, false, 16, 64, true, 10)
	mem, err := unpadded.RandomFile(9, WeightsFlat) // the same weights as padded's: paddings have none
	if err != nil {
		t.Fatal(err)
	}
	weightsOnly := &File{KerasVersion: mem.KerasVersion}
	for _, l := range mem.Layers {
		if len(l.Weights) > 0 {
			weightsOnly.Layers = append(weightsOnly.Layers, l)
		}
	}
	in := randomInput(64, 4)
	for _, c := range []struct {
		name string
		f    *File
		opt  string
		want bool
	}{
		{"complete-list-without-pad", mem, "", false},
		{"weights-only-list", weightsOnly, "", true},
		{"forced-true", mem, "true", true},
		{"forced-false", weightsOnly, "false", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, arch, err := Convert(c.f, Options{InputSize: 64, Pool1Pad: c.opt})
			if err != nil {
				t.Fatal(err)
			}
			if arch.Pool1Pad != c.want {
				t.Fatalf("Pool1Pad = %v, want %v", arch.Pool1Pad, c.want)
			}
			spec := unpadded
			if c.want {
				spec = padded
			}
			ref, err := Forward(&spec, mem, in)
			if err != nil {
				t.Fatal(err)
			}
			x := onnx.NewFloat64("input_1", []int{1, 3, 64, 64}, in.NCHW())
			got, err := onnx.Run(m, map[string]*onnx.Tensor{"input_1": x}, "fc1000", "res2a_branch2a")
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range []string{"fc1000", "res2a_branch2a"} {
				if e := testutil.RelErr(got[n].Float64, ref[n].NCHW()); e > 1e-9 {
					t.Errorf("%s: max relative error %.3g", n, e)
				}
			}
		})
	}
	if _, _, err := Convert(mem, Options{Pool1Pad: "maybe"}); err == nil {
		t.Error("Pool1Pad maybe: no error")
	}
}
