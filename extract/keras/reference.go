package keras

import (
	"fmt"
	"math"
)

// Tensor is a float64 activation in Keras's channels_last layout: Shape
// is H, W, C for a feature map (batch of one, no batch dimension) or
// [units] after Flatten, Dense or global pooling.
type Tensor struct {
	Shape []int
	Data  []float64
}

// Forward runs a Spec on one input image (H, W, 3, channels_last, already
// preprocessed) in float64 with Keras's semantics, straight from the
// weights in Keras's own layout (HWIO kernels, [in, out] dense kernels,
// H,W,C flatten, TensorFlow's 'same' padding, Keras's BatchNormalization
// formula), and returns every layer's output by name. It shares nothing
// with Convert: it is the independent reference the tests compare the
// converted ONNX graph against.
func Forward(s *Spec, f *File, input Tensor) (map[string]Tensor, error) {
	out := map[string]Tensor{}
	prev := ""
	for _, l := range s.Layers {
		ins := l.Inputs
		if len(ins) == 0 && prev != "" {
			ins = []string{prev}
		}
		var x Tensor
		if len(ins) > 0 {
			var ok bool
			if x, ok = out[ins[0]]; !ok {
				return nil, fmt.Errorf("layer %s: input %s not computed", l.Name, ins[0])
			}
		}
		var w []Weight
		if kl := f.Layer(l.Name); kl != nil {
			w = kl.Weights
		}
		var y Tensor
		var err error
		switch l.Kind {
		case "Input":
			y = input
		case "ZeroPadding2D":
			y = refPad(x, l.Pad, l.Pad, l.Pad, l.Pad)
		case "Conv2D":
			y, err = refConv(x, w, l)
			if err == nil && l.Activation != "" {
				y = refActivation(y, l.Activation)
			}
		case "BatchNormalization":
			y = refBN(x, w, l.Epsilon)
		case "Activation":
			y = refActivation(x, l.Activation)
		case "MaxPooling2D":
			y = refMaxPool(x, l.Kernel, l.Strides)
		case "Flatten":
			y = Tensor{Shape: []int{len(x.Data)}, Data: x.Data} // H, W, C order
		case "GlobalAveragePooling2D":
			y = refGlobalAvg(x)
		case "Dense":
			y, err = refDense(x, w, l)
			if err == nil && l.Activation != "" {
				y = refActivation(y, l.Activation)
			}
		case "Add":
			z, ok := out[ins[1]]
			if !ok || len(z.Data) != len(x.Data) {
				return nil, fmt.Errorf("layer %s: bad second input", l.Name)
			}
			y = Tensor{Shape: x.Shape, Data: make([]float64, len(x.Data))}
			for i := range y.Data {
				y.Data[i] = x.Data[i] + z.Data[i]
			}
		default:
			return nil, fmt.Errorf("layer %s: unknown kind %s", l.Name, l.Kind)
		}
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", l.Name, err)
		}
		out[l.Name] = y
		prev = l.Name
	}
	return out, nil
}

func refPad(x Tensor, top, left, bottom, right int) Tensor {
	h, w, c := x.Shape[0], x.Shape[1], x.Shape[2]
	H, W := h+top+bottom, w+left+right
	y := Tensor{Shape: []int{H, W, c}, Data: make([]float64, H*W*c)}
	for i := 0; i < h; i++ {
		for j := 0; j < w; j++ {
			copy(y.Data[((i+top)*W+j+left)*c:((i+top)*W+j+left+1)*c], x.Data[(i*w+j)*c:(i*w+j+1)*c])
		}
	}
	return y
}

// tfSame is TensorFlow's 'same' padding of one axis: ceil(in/stride)
// outputs, the padding split with the odd pixel at the end.
func tfSame(in, k, stride int) (int, int) {
	out := (in + stride - 1) / stride
	total := (out-1)*stride + k - in
	if total < 0 {
		total = 0
	}
	return total / 2, total - total/2
}

func refConv(x Tensor, w []Weight, l SpecLayer) (Tensor, error) {
	if len(w) < 1 || len(w[0].Shape) != 4 {
		return Tensor{}, fmt.Errorf("no 4-D kernel")
	}
	kh, kw, ci, co := w[0].Shape[0], w[0].Shape[1], w[0].Shape[2], w[0].Shape[3]
	if x.Shape[2] != ci {
		return Tensor{}, fmt.Errorf("input has %d channels, kernel %d", x.Shape[2], ci)
	}
	if l.Padding == "same" {
		t, b := tfSame(x.Shape[0], kh, l.Strides)
		le, r := tfSame(x.Shape[1], kw, l.Strides)
		x = refPad(x, t, le, b, r)
	}
	h, wd := x.Shape[0], x.Shape[1]
	oh, ow := (h-kh)/l.Strides+1, (wd-kw)/l.Strides+1
	y := Tensor{Shape: []int{oh, ow, co}, Data: make([]float64, oh*ow*co)}
	k := w[0].Data
	for i := 0; i < oh; i++ {
		for j := 0; j < ow; j++ {
			acc := y.Data[(i*ow+j)*co : (i*ow+j+1)*co]
			for dy := 0; dy < kh; dy++ {
				for dx := 0; dx < kw; dx++ {
					px := x.Data[((i*l.Strides+dy)*wd+j*l.Strides+dx)*ci:]
					kk := k[(dy*kw+dx)*ci*co:]
					for c := 0; c < ci; c++ {
						v := px[c]
						row := kk[c*co : (c+1)*co]
						for o := range acc {
							acc[o] += v * float64(row[o])
						}
					}
				}
			}
			if len(w) > 1 {
				for o := range acc {
					acc[o] += float64(w[1].Data[o])
				}
			}
		}
	}
	return y, nil
}

// refBN is Keras's inference BatchNormalization on the last axis:
// gamma·(x − moving_mean)/sqrt(moving_variance + ε) + beta.
func refBN(x Tensor, w []Weight, eps float64) Tensor {
	c := x.Shape[len(x.Shape)-1]
	y := Tensor{Shape: x.Shape, Data: make([]float64, len(x.Data))}
	for i, v := range x.Data {
		k := i % c
		g, b, m, vr := float64(w[0].Data[k]), float64(w[1].Data[k]), float64(w[2].Data[k]), float64(w[3].Data[k])
		y.Data[i] = g*(v-m)/math.Sqrt(vr+eps) + b
	}
	return y
}

func refActivation(x Tensor, act string) Tensor {
	y := Tensor{Shape: x.Shape, Data: make([]float64, len(x.Data))}
	switch act {
	case "relu":
		for i, v := range x.Data {
			y.Data[i] = math.Max(v, 0)
		}
	case "softmax":
		m := math.Inf(-1)
		for _, v := range x.Data {
			m = math.Max(m, v)
		}
		var s float64
		for i, v := range x.Data {
			y.Data[i] = math.Exp(v - m)
			s += y.Data[i]
		}
		for i := range y.Data {
			y.Data[i] /= s
		}
	default:
		copy(y.Data, x.Data)
	}
	return y
}

func refMaxPool(x Tensor, k, stride int) Tensor {
	h, w, c := x.Shape[0], x.Shape[1], x.Shape[2]
	oh, ow := (h-k)/stride+1, (w-k)/stride+1
	y := Tensor{Shape: []int{oh, ow, c}, Data: make([]float64, oh*ow*c)}
	for i := 0; i < oh; i++ {
		for j := 0; j < ow; j++ {
			for ch := 0; ch < c; ch++ {
				m := math.Inf(-1)
				for dy := 0; dy < k; dy++ {
					for dx := 0; dx < k; dx++ {
						m = math.Max(m, x.Data[((i*stride+dy)*w+j*stride+dx)*c+ch])
					}
				}
				y.Data[(i*ow+j)*c+ch] = m
			}
		}
	}
	return y
}

func refGlobalAvg(x Tensor) Tensor {
	h, w, c := x.Shape[0], x.Shape[1], x.Shape[2]
	y := Tensor{Shape: []int{c}, Data: make([]float64, c)}
	for i := 0; i < h*w; i++ {
		for ch := 0; ch < c; ch++ {
			y.Data[ch] += x.Data[i*c+ch]
		}
	}
	for ch := range y.Data {
		y.Data[ch] /= float64(h * w)
	}
	return y
}

func refDense(x Tensor, w []Weight, l SpecLayer) (Tensor, error) {
	if len(w) < 1 || len(w[0].Shape) != 2 || w[0].Shape[0] != len(x.Data) {
		return Tensor{}, fmt.Errorf("kernel does not fit %d inputs", len(x.Data))
	}
	n := w[0].Shape[1]
	y := Tensor{Shape: []int{n}, Data: make([]float64, n)}
	for i, v := range x.Data {
		row := w[0].Data[i*n : (i+1)*n]
		for o := range y.Data {
			y.Data[o] += v * float64(row[o])
		}
	}
	if len(w) > 1 {
		for o := range y.Data {
			y.Data[o] += float64(w[1].Data[o])
		}
	}
	return y, nil
}

// NCHW returns a feature map's values in C, H, W order (the order the
// extractor stores); other tensors unchanged.
func (t Tensor) NCHW() []float64 {
	if len(t.Shape) != 3 {
		return t.Data
	}
	h, w, c := t.Shape[0], t.Shape[1], t.Shape[2]
	out := make([]float64, len(t.Data))
	for i := 0; i < h*w; i++ {
		for ch := 0; ch < c; ch++ {
			out[ch*h*w+i] = t.Data[i*c+ch]
		}
	}
	return out
}
