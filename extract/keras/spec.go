package keras

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Spec is a Keras model definition, layer by layer, as keras.applications
// writes it: the test fixtures' source of truth. Random weights are drawn
// for it (RandomFile), and the tests compute its float64 forward pass
// from it, with Keras's semantics, independently of Convert.
type Spec struct {
	Name      string
	InputSize int
	Layers    []SpecLayer
}

// SpecLayer is one Keras layer. Inputs empty means the previous layer.
type SpecLayer struct {
	Name   string
	Kind   string // Input, ZeroPadding2D, Conv2D, BatchNormalization, Activation, MaxPooling2D, Flatten, Dense, Add, GlobalAveragePooling2D
	Inputs []string
	// Conv2D: Filters, Kernel (square), Strides, Padding ("same" or
	// "valid"), UseBias, Activation ("relu" or ""). Dense: Units, UseBias,
	// Activation ("relu", "softmax" or ""). MaxPooling2D: Kernel, Strides
	// (valid). ZeroPadding2D: Pad. BatchNormalization: Epsilon.
	// Activation: Activation.
	Filters, Kernel, Strides, Pad, Units int
	Padding, Activation                  string
	UseBias                              bool
	Epsilon                              float64
	// Gain scales the random kernel (0 means 1): ResNet's last convolution
	// of a residual branch gets 1/sqrt(blocks), so that the activations
	// stay O(1) through 16 residual sums.
	Gain float64
}

// classifierGain scales the random classifier so that its logits are O(1)
// on inputs in Keras's 0..255-minus-mean range.
const classifierGain = 0.003

// Naming styles of weight names.
const (
	// WeightsFlat is Keras 1 / early Keras 2 with TensorFlow variable
	// names: block1_conv1_W_1:0, block1_conv1_b_1:0, bn_conv1_running_std:0.
	WeightsFlat = "flat"
	// WeightsNested is Keras 2.1+ / tf.keras: block1_conv1/kernel:0,
	// bn_conv1/moving_variance:0.
	WeightsNested = "nested"
)

// weightNames returns the weight names of a layer in Keras order.
func weightNames(l SpecLayer, style string) []string {
	var roles []string
	switch l.Kind {
	case "Conv2D", "Dense":
		roles = []string{"kernel"}
		if l.UseBias {
			roles = append(roles, "bias")
		}
	case "BatchNormalization":
		roles = []string{"gamma", "beta", "moving_mean", "moving_variance"}
	}
	flat := map[string]string{"kernel": "W", "bias": "b", "moving_mean": "running_mean", "moving_variance": "running_std"}
	var out []string
	for _, r := range roles {
		if style == WeightsFlat {
			n := r
			if f, ok := flat[r]; ok {
				n = f
			}
			out = append(out, fmt.Sprintf("%s_%s_1:0", l.Name, n))
		} else {
			out = append(out, l.Name+"/"+r+":0")
		}
	}
	return out
}

// Shapes computes the weight shapes of every layer (by name) and the
// output shape (H, W, C, or units) of every layer.
func (s *Spec) Shapes() (weights map[string][][]int, outputs map[string][]int, err error) {
	weights, outputs = map[string][][]int{}, map[string][]int{}
	prev := ""
	for _, l := range s.Layers {
		ins := l.Inputs
		if len(ins) == 0 && prev != "" {
			ins = []string{prev}
		}
		var in []int
		if len(ins) > 0 {
			in = outputs[ins[0]]
		}
		var out []int
		switch l.Kind {
		case "Input":
			out = []int{s.InputSize, s.InputSize, 3}
		case "ZeroPadding2D":
			out = []int{in[0] + 2*l.Pad, in[1] + 2*l.Pad, in[2]}
		case "Conv2D":
			weights[l.Name] = [][]int{{l.Kernel, l.Kernel, in[2], l.Filters}}
			if l.UseBias {
				weights[l.Name] = append(weights[l.Name], []int{l.Filters})
			}
			out = []int{convOut(in[0], l.Kernel, l.Strides, l.Padding), convOut(in[1], l.Kernel, l.Strides, l.Padding), l.Filters}
		case "BatchNormalization":
			c := in[len(in)-1]
			weights[l.Name] = [][]int{{c}, {c}, {c}, {c}}
			out = in
		case "Activation", "Add":
			out = in
		case "MaxPooling2D":
			out = []int{convOut(in[0], l.Kernel, l.Strides, "valid"), convOut(in[1], l.Kernel, l.Strides, "valid"), in[2]}
		case "Flatten":
			out = []int{in[0] * in[1] * in[2]}
		case "GlobalAveragePooling2D":
			out = []int{in[2]}
		case "Dense":
			weights[l.Name] = [][]int{{in[0], l.Units}}
			if l.UseBias {
				weights[l.Name] = append(weights[l.Name], []int{l.Units})
			}
			out = []int{l.Units}
		default:
			return nil, nil, fmt.Errorf("spec %s: layer %s: unknown kind %s", s.Name, l.Name, l.Kind)
		}
		for _, d := range out {
			if d <= 0 {
				return nil, nil, fmt.Errorf("spec %s: layer %s: output %v", s.Name, l.Name, out)
			}
		}
		outputs[l.Name] = out
		prev = l.Name
	}
	return weights, outputs, nil
}

func convOut(in, k, stride int, padding string) int {
	if padding == "same" {
		return (in + stride - 1) / stride
	}
	return (in-k)/stride + 1
}

// RandomFile draws weights for the spec (He-normal kernels scaled so that
// activations stay O(1) through ResNet's residual sums, BatchNormalization
// statistics around 0 and 1) and returns the File, weight names in style.
func (s *Spec) RandomFile(seed uint64, style string) (*File, error) {
	shapes, _, err := s.Shapes()
	if err != nil {
		return nil, err
	}
	r := rand.New(rand.NewPCG(seed, 0x6b657261 /* "kera" */))
	f := &File{Backend: "tensorflow", KerasVersion: "2.2.4"}
	for _, l := range s.Layers {
		kl := Layer{Name: l.Name}
		names := weightNames(l, style)
		for i, shape := range shapes[l.Name] {
			n := 1
			for _, d := range shape {
				n *= d
			}
			data := make([]float32, n)
			switch {
			case l.Kind == "BatchNormalization" && (i == 0 || i == 3): // gamma, variance
				for j := range data {
					data[j] = float32(0.5 + r.Float64())
				}
			case l.Kind == "BatchNormalization" || len(shape) == 1: // beta, mean, biases
				for j := range data {
					data[j] = float32(0.2*r.Float64() - 0.1)
				}
			default: // kernels: fan-in is every dimension but the last
				fanIn := n / shape[len(shape)-1]
				std := math.Sqrt(2 / float64(fanIn))
				if l.Activation == "softmax" || l.Activation == "" && l.Kind == "Dense" {
					std *= math.Sqrt(0.5)
				}
				if l.Gain != 0 {
					std *= l.Gain
				}
				for j := range data {
					data[j] = float32(r.NormFloat64() * std)
				}
			}
			kl.Weights = append(kl.Weights, Weight{Name: names[i], Shape: shape, Data: data})
		}
		f.Layers = append(f.Layers, kl)
	}
	return f, nil
}

// VGGSpec is keras.applications' VGG16 (blocks 2,2,3,3,3) or VGG19
// (2,2,4,4,4) with every width divided by div (1: the real network) and,
// with top, a hidden width 4096/div and classes outputs.
func VGGSpec(blocks []int, div, size int, top bool, classes int) Spec {
	name := "vgg16"
	if blocks[2] == 4 {
		name = "vgg19"
	}
	s := Spec{Name: name, InputSize: size, Layers: []SpecLayer{{Name: "input_1", Kind: "Input"}}}
	chans := []int{64, 128, 256, 512, 512}
	for b, n := range blocks {
		for j := 1; j <= n; j++ {
			s.Layers = append(s.Layers, SpecLayer{Name: fmt.Sprintf("block%d_conv%d", b+1, j), Kind: "Conv2D",
				Filters: max(1, chans[b]/div), Kernel: 3, Strides: 1, Padding: "same", UseBias: true, Activation: "relu"})
		}
		s.Layers = append(s.Layers, SpecLayer{Name: fmt.Sprintf("block%d_pool", b+1), Kind: "MaxPooling2D", Kernel: 2, Strides: 2})
	}
	if top {
		s.Layers = append(s.Layers,
			SpecLayer{Name: "flatten", Kind: "Flatten"},
			SpecLayer{Name: "fc1", Kind: "Dense", Units: max(1, 4096/div), UseBias: true, Activation: "relu"},
			SpecLayer{Name: "fc2", Kind: "Dense", Units: max(1, 4096/div), UseBias: true, Activation: "relu"},
			// Small logits: a saturated softmax would compare nothing.
			SpecLayer{Name: "predictions", Kind: "Dense", Units: classes, UseBias: true, Activation: "softmax", Gain: classifierGain})
	}
	return s
}

// ResNet50Spec is ResNet50 with every width divided by div. legacy
// selects keras_applications' resnet50.py naming (conv1, bn_conv1,
// res2a_branch2a, ..., fc1000; BatchNormalization epsilon 1e-3; pool1Pad
// adds its pool1_pad layer), otherwise keras.applications.resnet's
// (conv1_conv, ..., predictions; epsilon 1.001e-5).
func ResNet50Spec(legacy, pool1Pad bool, div, size int, top bool, classes int) Spec {
	w := func(c int) int { return max(1, c/div) }
	s := Spec{Name: "resnet50", InputSize: size, Layers: []SpecLayer{{Name: "input_1", Kind: "Input"}}}
	add := func(l SpecLayer) string { s.Layers = append(s.Layers, l); return l.Name }
	act := 0
	relu := func(name string, in string) string {
		if name == "" {
			act++
			name = fmt.Sprintf("activation_%d", act)
		}
		return add(SpecLayer{Name: name, Kind: "Activation", Activation: "relu", Inputs: []string{in}})
	}
	conv := func(name, in string, f, k, stride int, padding string) string {
		return add(SpecLayer{Name: name, Kind: "Conv2D", Inputs: []string{in}, Filters: f, Kernel: k, Strides: stride, Padding: padding, UseBias: true})
	}
	last := func(name string) { s.Layers[len(s.Layers)-1].Gain = 0.25 } // 1/sqrt(16 blocks)
	eps := 1.001e-5
	if legacy {
		eps = 1e-3
	}
	bn := func(name, in string) string {
		return add(SpecLayer{Name: name, Kind: "BatchNormalization", Inputs: []string{in}, Epsilon: eps})
	}
	x := "input_1"
	if legacy {
		x = add(SpecLayer{Name: "conv1_pad", Kind: "ZeroPadding2D", Pad: 3, Inputs: []string{x}})
		x = conv("conv1", x, w(64), 7, 2, "valid")
		x = bn("bn_conv1", x)
		x = relu("", x)
		if pool1Pad {
			x = add(SpecLayer{Name: "pool1_pad", Kind: "ZeroPadding2D", Pad: 1, Inputs: []string{x}})
		}
		x = add(SpecLayer{Name: "max_pooling2d_1", Kind: "MaxPooling2D", Kernel: 3, Strides: 2, Inputs: []string{x}})
	} else {
		x = add(SpecLayer{Name: "conv1_pad", Kind: "ZeroPadding2D", Pad: 3, Inputs: []string{x}})
		x = conv("conv1_conv", x, w(64), 7, 2, "valid")
		x = bn("conv1_bn", x)
		x = relu("conv1_relu", x)
		x = add(SpecLayer{Name: "pool1_pad", Kind: "ZeroPadding2D", Pad: 1, Inputs: []string{x}})
		x = add(SpecLayer{Name: "pool1_pool", Kind: "MaxPooling2D", Kernel: 3, Strides: 2, Inputs: []string{x}})
	}
	adds := 0
	for si, n := range []int{3, 4, 6, 3} {
		st := si + 2
		mid, out := w(64<<si), w(256<<si)
		for b := 1; b <= n; b++ {
			stride := 1
			if b == 1 && st > 2 {
				stride = 2
			}
			in := x
			if legacy {
				l := string(rune('a' + b - 1))
				res, bnn := fmt.Sprintf("res%d%s_branch", st, l), fmt.Sprintf("bn%d%s_branch", st, l)
				y := conv(res+"2a", in, mid, 1, stride, "valid")
				y = relu("", bn(bnn+"2a", y))
				y = conv(res+"2b", y, mid, 3, 1, "same")
				y = relu("", bn(bnn+"2b", y))
				y = conv(res+"2c", y, out, 1, 1, "valid")
				last(y)
				y = bn(bnn+"2c", y)
				short := in
				if b == 1 {
					short = bn(bnn+"1", conv(res+"1", in, out, 1, stride, "valid"))
				}
				adds++
				y = add(SpecLayer{Name: fmt.Sprintf("add_%d", adds), Kind: "Add", Inputs: []string{y, short}})
				x = relu("", y)
			} else {
				p := fmt.Sprintf("conv%d_block%d", st, b)
				short := in
				if b == 1 {
					short = bn(p+"_0_bn", conv(p+"_0_conv", in, out, 1, stride, "valid"))
				}
				y := relu(p+"_1_relu", bn(p+"_1_bn", conv(p+"_1_conv", in, mid, 1, stride, "valid")))
				y = relu(p+"_2_relu", bn(p+"_2_bn", conv(p+"_2_conv", y, mid, 3, 1, "same")))
				y = conv(p+"_3_conv", y, out, 1, 1, "valid")
				last(y)
				y = bn(p+"_3_bn", y)
				y = add(SpecLayer{Name: p + "_add", Kind: "Add", Inputs: []string{short, y}})
				x = relu(p+"_out", y)
			}
		}
	}
	if top {
		x = add(SpecLayer{Name: "avg_pool", Kind: "GlobalAveragePooling2D", Inputs: []string{x}})
		name := "predictions"
		if legacy {
			name = "fc1000"
		}
		add(SpecLayer{Name: name, Kind: "Dense", Inputs: []string{x}, Units: classes, UseBias: true, Activation: "softmax", Gain: classifierGain})
	}
	return s
}
