package onnx

import "fmt"

// DefaultOpset is the operator set a Builder targets unless told otherwise.
const DefaultOpset = 11

// Builder assembles a graph node by node. Every node has an explicit name
// and explicit output tensor names, because the point of the generated
// models is to reproduce the naming of real exporters. Methods return the
// output tensor name so calls chain.
//
// The attributes written follow what torch.onnx and the MXNet exporter
// write for the same layer (for example Conv always carries dilations,
// group, kernel_shape, pads and strides).
type Builder struct {
	// Opset is the ai.onnx operator set version; it decides the form of
	// some attributes (BatchNormalization's spatial below 9, Dropout's
	// ratio below 12, MaxPool's ceil_mode from 10).
	Opset int64
	// IRVersion of the file; 0 picks 3 below opset 8 and 6 otherwise (the
	// versions the MXNet exporter and torch 1.13 write).
	IRVersion int64
	// InitializersAsInputs also lists every initializer as a graph input,
	// as IR version 3 required and the MXNet-exported zoo files do.
	InitializersAsInputs bool
	ProducerName         string
	ProducerVersion      string

	g     Graph
	names map[string]bool // tensor names produced so far
	err   error
}

// NewBuilder starts a graph with the given name, targeting DefaultOpset.
func NewBuilder(graphName string) *Builder {
	return &Builder{Opset: DefaultOpset, g: Graph{Name: graphName}, names: map[string]bool{}}
}

func (b *Builder) fail(err error) {
	if b.err == nil {
		b.err = err
	}
}

// Input declares a Float graph input.
func (b *Builder) Input(name string, dims ...Dim) string {
	b.define(name)
	b.g.Inputs = append(b.g.Inputs, &ValueInfo{Name: name, ElemType: Float, HasShape: true, Dims: dims})
	return name
}

// Output declares a Float graph output. The tensor must have been produced.
func (b *Builder) Output(name string, dims ...Dim) {
	if !b.names[name] {
		b.fail(fmt.Errorf("output %q is not produced by any node", name))
	}
	b.g.Outputs = append(b.g.Outputs, &ValueInfo{Name: name, ElemType: Float, HasShape: true, Dims: dims})
}

// Initializer adds a constant tensor and returns its name.
func (b *Builder) Initializer(t *Tensor) string {
	b.define(t.Name)
	b.g.Initializers = append(b.g.Initializers, t)
	return t.Name
}

func (b *Builder) define(name string) {
	if name == "" {
		b.fail(fmt.Errorf("empty tensor name"))
	}
	if b.names[name] {
		b.fail(fmt.Errorf("tensor %q defined twice", name))
	}
	b.names[name] = true
}

// Node adds a node of any type. Inputs must already exist ("" marks an
// omitted optional input).
func (b *Builder) Node(opType, name string, inputs, outputs []string, attrs ...*Attribute) *Node {
	for _, in := range inputs {
		if in != "" && !b.names[in] {
			b.fail(fmt.Errorf("node %q: input %q is not defined yet", name, in))
		}
	}
	for _, out := range outputs {
		b.define(out)
	}
	n := &Node{Name: name, OpType: opType, Inputs: inputs, Outputs: outputs, Attrs: attrs}
	b.g.Nodes = append(b.g.Nodes, n)
	return n
}

// ConvAttrs are Conv's attributes; the kernel size comes from the weight.
// Nil Strides means 1; nil Pads means 0. Pads are in ONNX order:
// [top, left, bottom, right].
type ConvAttrs struct {
	Strides []int
	Pads    []int
}

// Conv adds a 2-D convolution with weight w [M, C, kh, kw] and an optional
// bias [M] (nil for none); w and bias are added as initializers.
func (b *Builder) Conv(name, in, out string, w, bias *Tensor, a ConvAttrs) string {
	if len(w.Dims) != 4 {
		b.fail(fmt.Errorf("conv %q: weight dims %v, want 4", name, w.Dims))
		return out
	}
	inputs := []string{in, b.Initializer(w)}
	if bias != nil {
		inputs = append(inputs, b.Initializer(bias))
	}
	b.Node("Conv", name, inputs, []string{out},
		IntsAttr("dilations", 1, 1),
		IntAttr("group", 1),
		IntsAttr("kernel_shape", w.Dims[2], w.Dims[3]),
		IntsAttr("pads", orDefault(a.Pads, 0, 0, 0, 0)...),
		IntsAttr("strides", orDefault(a.Strides, 1, 1)...))
	return out
}

func orDefault(v []int, def ...int) []int {
	if v == nil {
		return def
	}
	return v
}

// BatchNorm adds BatchNormalization in inference form with the given
// scale (gamma), bias (beta), running mean and running variance, all [C].
func (b *Builder) BatchNorm(name, in, out string, scale, bias, mean, variance *Tensor, epsilon float32) string {
	attrs := []*Attribute{FloatAttr("epsilon", epsilon), FloatAttr("momentum", 0.9)}
	if b.Opset < 9 {
		attrs = append(attrs, IntAttr("spatial", 1))
	}
	b.Node("BatchNormalization", name,
		[]string{in, b.Initializer(scale), b.Initializer(bias), b.Initializer(mean), b.Initializer(variance)},
		[]string{out}, attrs...)
	return out
}

// Relu adds Relu.
func (b *Builder) Relu(name, in, out string) string {
	b.Node("Relu", name, []string{in}, []string{out})
	return out
}

// PoolAttrs are the attributes of MaxPool and AveragePool. Nil Strides
// means 1, nil Pads means 0 ([top, left, bottom, right]).
// CountIncludePad applies to AveragePool only and is written only when
// true (false is ONNX's default).
type PoolAttrs struct {
	Kernel          []int
	Strides         []int
	Pads            []int
	CountIncludePad bool
}

// MaxPool adds MaxPool (ceil_mode 0).
func (b *Builder) MaxPool(name, in, out string, a PoolAttrs) string {
	var attrs []*Attribute
	if b.Opset >= 10 {
		attrs = append(attrs, IntAttr("ceil_mode", 0))
	}
	attrs = append(attrs,
		IntsAttr("kernel_shape", a.Kernel...),
		IntsAttr("pads", orDefault(a.Pads, 0, 0, 0, 0)...),
		IntsAttr("strides", orDefault(a.Strides, 1, 1)...))
	b.Node("MaxPool", name, []string{in}, []string{out}, attrs...)
	return out
}

// AveragePool adds AveragePool (ceil_mode 0). Pads are written only when
// non-zero, as torch.onnx does.
func (b *Builder) AveragePool(name, in, out string, a PoolAttrs) string {
	var attrs []*Attribute
	if a.CountIncludePad {
		attrs = append(attrs, IntAttr("count_include_pad", 1))
	}
	attrs = append(attrs, IntsAttr("kernel_shape", a.Kernel...))
	for _, p := range a.Pads {
		if p != 0 {
			attrs = append(attrs, IntsAttr("pads", a.Pads...))
			break
		}
	}
	attrs = append(attrs, IntsAttr("strides", orDefault(a.Strides, 1, 1)...))
	b.Node("AveragePool", name, []string{in}, []string{out}, attrs...)
	return out
}

// GlobalAveragePool adds GlobalAveragePool.
func (b *Builder) GlobalAveragePool(name, in, out string) string {
	b.Node("GlobalAveragePool", name, []string{in}, []string{out})
	return out
}

// Add adds an element-wise Add of two tensors.
func (b *Builder) Add(name, x, y, out string) string {
	b.Node("Add", name, []string{x, y}, []string{out})
	return out
}

// Flatten adds Flatten; axis < 0 omits the attribute (ONNX default 1, as
// the MXNet exporter writes it).
func (b *Builder) Flatten(name, in, out string, axis int) string {
	var attrs []*Attribute
	if axis >= 0 {
		attrs = append(attrs, IntAttr("axis", int64(axis)))
	}
	b.Node("Flatten", name, []string{in}, []string{out}, attrs...)
	return out
}

// GemmAttrs are Gemm's attributes. Zero Alpha or Beta mean 1 (a zero
// factor is never what a generated model wants). TransA writes transA=0
// explicitly when false and WriteTransA is set (the MXNet exporter does).
type GemmAttrs struct {
	Alpha, Beta float32
	TransB      bool
	WriteTransA bool
}

// Gemm adds Gemm: out = alpha * in × W(ᵀ) + beta * bias, with w [N, K]
// when TransB (a fully connected layer's layout) and bias [N] (nil for
// none); w and bias are added as initializers.
func (b *Builder) Gemm(name, in, out string, w, bias *Tensor, a GemmAttrs) string {
	inputs := []string{in, b.Initializer(w)}
	if bias != nil {
		inputs = append(inputs, b.Initializer(bias))
	}
	alpha, beta := a.Alpha, a.Beta
	if alpha == 0 {
		alpha = 1
	}
	if beta == 0 {
		beta = 1
	}
	attrs := []*Attribute{FloatAttr("alpha", alpha), FloatAttr("beta", beta)}
	if a.WriteTransA {
		attrs = append(attrs, IntAttr("transA", 0))
	}
	if a.TransB {
		attrs = append(attrs, IntAttr("transB", 1))
	}
	b.Node("Gemm", name, inputs, []string{out}, attrs...)
	return out
}

// Dropout adds Dropout (an identity at inference). Below opset 12 the
// ratio is an attribute; from 12 on it would be an input and is omitted.
func (b *Builder) Dropout(name, in, out string, ratio float32) string {
	var attrs []*Attribute
	if b.Opset < 12 {
		attrs = append(attrs, FloatAttr("ratio", ratio))
	}
	b.Node("Dropout", name, []string{in}, []string{out}, attrs...)
	return out
}

// Softmax adds Softmax along axis (whose meaning depends on the opset:
// below 13 the input is coerced to 2-D at axis).
func (b *Builder) Softmax(name, in, out string, axis int) string {
	b.Node("Softmax", name, []string{in}, []string{out}, IntAttr("axis", int64(axis)))
	return out
}

// Reshape adds Reshape to a constant shape (an Int64 initializer; 0 copies
// the input's dimension, -1 is inferred).
func (b *Builder) Reshape(name, in, out string, shape *Tensor) string {
	b.Node("Reshape", name, []string{in, b.Initializer(shape)}, []string{out})
	return out
}

// Identity adds Identity.
func (b *Builder) Identity(name, in, out string) string {
	b.Node("Identity", name, []string{in}, []string{out})
	return out
}

// Model returns the finished model, or the first error met while
// building (an undefined input, a name used twice).
func (b *Builder) Model() (*Model, error) {
	if b.err != nil {
		return nil, fmt.Errorf("build graph %q: %w", b.g.Name, b.err)
	}
	if len(b.g.Outputs) == 0 {
		return nil, fmt.Errorf("build graph %q: no outputs", b.g.Name)
	}
	g := b.g
	if b.InitializersAsInputs {
		g.Inputs = append([]*ValueInfo(nil), b.g.Inputs...)
		for _, t := range g.Initializers {
			g.Inputs = append(g.Inputs, &ValueInfo{Name: t.Name, ElemType: t.DataType, HasShape: true, Dims: Dims(t.Dims...)})
		}
	}
	ir := b.IRVersion
	if ir == 0 {
		ir = 6
		if b.Opset < 8 {
			ir = 3
		}
	}
	return &Model{
		IRVersion:       ir,
		OpsetImports:    []OpsetID{{Version: b.Opset}},
		ProducerName:    b.ProducerName,
		ProducerVersion: b.ProducerVersion,
		Graph:           &g,
	}, nil
}
