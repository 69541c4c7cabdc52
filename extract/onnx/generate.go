package onnx

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Style is the naming convention of a real exporter that a generated model
// reproduces.
type Style int

const (
	// Zoo is the ONNX model zoo's MXNet exports (vgg16-7.onnx,
	// resnet50-v1-7.onnx, resnet50-v2-7.onnx): node name = output tensor
	// name (vgg0_conv0_fwd, resnetv17_stage1__plus0, flatten_473), opset 7,
	// IR version 3 with every weight also a graph input, fixed input dims
	// 1x3xSxS, weights in float_data.
	Zoo Style = iota + 1
	// Torchvision is torch.onnx.export (torch 1.13) of torchvision's
	// vgg16 / resnet50 in eval mode without BatchNormalization folding:
	// node names /features/features.0/Conv, tensor names
	// /features/features.0/Conv_output_0, opset 11, IR version 6, input
	// with a dynamic batch dimension "N", weights in raw_data.
	Torchvision
)

func (s Style) String() string {
	switch s {
	case Zoo:
		return "zoo"
	case Torchvision:
		return "torchvision"
	}
	return fmt.Sprintf("Style(%d)", int(s))
}

// Options shape a generated network. The zero value gives the full-size
// network in Zoo style with seed 0.
type Options struct {
	Style Style // default Zoo
	// InputSize is the input's height and width (default 224). VGG needs a
	// multiple of 2^len(Blocks); ResNet a multiple of 4 (sizes that halve
	// evenly through every stage, such as 32 or 224, mirror the real
	// networks best).
	InputSize int
	// WidthDiv divides every channel count and the hidden fully connected
	// width (minimum 1 channel), for topologically identical tiny models.
	WidthDiv int
	// Hidden is VGG's hidden fully connected width (default 4096/WidthDiv).
	Hidden int
	// Classes is the output width (default 1000).
	Classes int
	// Blocks overrides the depth: for VGG the convolutions per block
	// (default 2,2,3,3,3, at most 5 blocks), for ResNet the bottleneck
	// blocks per stage (default 3,4,6,3, at most 4 stages).
	Blocks []int
	// Softmax appends a Softmax over the classes, as Caffe deploy graphs
	// and Keras models have (named "prob" in Zoo style, "/Softmax" in
	// Torchvision style).
	Softmax bool
	// Seed selects the weights; the same options give the same bytes.
	Seed uint64
	// Opset overrides the style's operator set (Zoo 7, Torchvision 11).
	Opset int64

	// skeleton leaves the weights without data: the structure of a
	// full-size model for tests, at no cost.
	skeleton bool
}

func (o Options) withDefaults(blocks []int) (Options, error) {
	if o.Style == 0 {
		o.Style = Zoo
	}
	if o.Style != Zoo && o.Style != Torchvision {
		return o, fmt.Errorf("unknown style %v", o.Style)
	}
	if o.InputSize == 0 {
		o.InputSize = 224
	}
	if o.WidthDiv == 0 {
		o.WidthDiv = 1
	}
	if o.Hidden == 0 {
		o.Hidden = max(1, 4096/o.WidthDiv)
	}
	if o.Classes == 0 {
		o.Classes = 1000
	}
	if o.Blocks == nil {
		o.Blocks = blocks
	}
	if o.Opset == 0 {
		o.Opset = 7
		if o.Style == Torchvision {
			o.Opset = 11
		}
	}
	if o.InputSize < 1 || o.WidthDiv < 1 || o.Hidden < 1 || o.Classes < 1 {
		return o, fmt.Errorf("options %+v: sizes must be positive", o)
	}
	for _, n := range o.Blocks {
		if n < 1 {
			return o, fmt.Errorf("blocks %v: every entry must be at least 1", o.Blocks)
		}
	}
	return o, nil
}

func (o Options) width(c int) int { return max(1, c/o.WidthDiv) }

// weights draws deterministic random parameters from one PCG stream,
// consumed in graph order.
type weights struct {
	r        *rand.Rand
	style    Style
	skeleton bool
}

func newWeights(o Options) *weights {
	return &weights{r: rand.New(rand.NewPCG(o.Seed, 0x6f6e6e78 /* "onnx" */)), style: o.Style, skeleton: o.skeleton}
}

// normal returns n values of N(0, std²), as float32.
func (w *weights) normal(n int, std float64) []float32 {
	if w.skeleton {
		return nil
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(w.r.NormFloat64() * std)
	}
	return out
}

func (w *weights) uniform(n int, lo, hi float64) []float32 {
	if w.skeleton {
		return nil
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(lo + (hi-lo)*w.r.Float64())
	}
	return out
}

// tensor makes a Float initializer stored the way the style's exporter
// stores it.
func (w *weights) tensor(name string, dims []int, data []float32) *Tensor {
	if w.skeleton {
		return &Tensor{Name: name, Dims: dims, DataType: Float}
	}
	t := NewFloat32(name, dims, data)
	t.StoreRaw = w.style == Torchvision
	return t
}

// convWeight is He-normal with the given gain: std = gain·sqrt(2/fan_in),
// which keeps ReLU activations O(1) through deep stacks.
func (w *weights) convWeight(name string, out, in, k int, gain float64) *Tensor {
	return w.tensor(name, []int{out, in, k, k}, w.normal(out*in*k*k, gain*math.Sqrt(2/float64(in*k*k))))
}

// gainFor is the He gain for a layer: 1 after a ReLU, √½ (LeCun) on a
// linear input such as the image, where nothing halves the second moment.
func gainFor(linearInput bool) float64 {
	if linearInput {
		return math.Sqrt(0.5)
	}
	return 1
}

// bias is uniform ±0.1 and never all zero: exporters turn duplicate
// all-zero biases into Identity nodes that OpenCV 4.6 rejects.
func (w *weights) bias(name string, n int) *Tensor {
	return w.tensor(name, []int{n}, w.uniform(n, -0.1, 0.1))
}

func (w *weights) fc(name string, out, in int, gain float64) *Tensor {
	return w.tensor(name, []int{out, in}, w.normal(out*in, gain*math.Sqrt(2/float64(in))))
}

// bn returns gamma, beta, running mean and running variance.
func (w *weights) bn(names [4]string, c int) [4]*Tensor {
	return [4]*Tensor{
		w.tensor(names[0], []int{c}, w.uniform(c, 0.5, 1.5)),
		w.tensor(names[1], []int{c}, w.uniform(c, -0.1, 0.1)),
		w.tensor(names[2], []int{c}, w.uniform(c, -0.1, 0.1)),
		w.tensor(names[3], []int{c}, w.uniform(c, 0.5, 1.5)),
	}
}

// Epsilons the exporters write: MXNet's 1e-5 and torch's float32(1e-5)
// are the same float32.
const bnEpsilon = 1e-5

func newStyledBuilder(o Options, graphName string) *Builder {
	b := NewBuilder(graphName)
	b.Opset = o.Opset
	if o.Style == Zoo {
		b.InitializersAsInputs = true
		b.IRVersion = 3
	} else {
		b.IRVersion = 6
		b.ProducerName, b.ProducerVersion = "pytorch", "1.13.0"
	}
	return b
}

func (o Options) inputDims() []Dim {
	if o.Style == Torchvision {
		return []Dim{{Param: "N"}, {Value: 3}, {Value: int64(o.InputSize)}, {Value: int64(o.InputSize)}}
	}
	return Dims(1, 3, o.InputSize, o.InputSize)
}

func (o Options) outputDims(n int) []Dim {
	if o.Style == Torchvision {
		return []Dim{{Param: "N"}, {Value: int64(n)}}
	}
	return Dims(1, n)
}

// mxnetIndex counts the nodes of an MXNet symbol graph (operators and
// their parameter variables, "data" being node 0), because the exporter
// names the Flatten it inserts before a Dense layer, and the shape
// initializer of a Reshape, after the operator's index: flatten_60 in
// vgg16-7.onnx, flatten_473 in resnet50-v1-7.onnx, reshape_attr_tensor164
// in resnet18-v2-7.onnx.
type mxnetIndex int

// op accounts for an operator with params parameter variables and returns
// the operator's index.
func (m *mxnetIndex) op(params int) int {
	*m += mxnetIndex(params)
	i := int(*m)
	*m++
	return i
}

// torchName is torch.onnx's naming: node "/scope/Op", output
// "/scope/Op_output_0".
func torchName(scope, op string) (node, out string) {
	node = scope + "/" + op
	return node, node + "_output_0"
}

// VGG builds VGG-16 (Simonyan & Zisserman, configuration D): 3x3
// convolutions with padding 1 and ReLU, 2x2 max pooling after each block,
// two hidden fully connected layers with ReLU (and Dropout in Zoo style;
// torch.onnx drops it in eval mode) and the output layer (no softmax
// unless asked).
func VGG(o Options) (*Model, error) {
	o, err := o.withDefaults([]int{2, 2, 3, 3, 3})
	if err != nil {
		return nil, fmt.Errorf("vgg: %w", err)
	}
	if len(o.Blocks) > 5 {
		return nil, fmt.Errorf("vgg: %d blocks, at most 5", len(o.Blocks))
	}
	if o.InputSize%(1<<len(o.Blocks)) != 0 {
		return nil, fmt.Errorf("vgg: input size %d is not a multiple of %d", o.InputSize, 1<<len(o.Blocks))
	}
	gname := "mxnet_converted_model"
	if o.Style == Torchvision {
		gname = "torch_jit"
	}
	g := &vggGen{o: o, w: newWeights(o), b: newStyledBuilder(o, gname)}
	x := g.b.Input("data", o.inputDims()...)
	g.mx.op(0) // data
	x, cin, size := g.features(x)
	x = g.classifier(x, cin*size*size)
	x = finish(g.b, o, x)
	g.b.Output(x, o.outputDims(o.Classes)...)
	return g.b.Model()
}

// vggGen is the state of one VGG being built.
type vggGen struct {
	o  Options
	w  *weights
	b  *Builder
	mx mxnetIndex
}

// features adds the convolution blocks on x and returns their output,
// channels and map size.
func (g *vggGen) features(x string) (string, int, int) {
	o, b, w := g.o, g.b, g.w
	chans := []int{64, 128, 256, 512, 512}
	cin, size := 3, o.InputSize
	conv, layer := 0, 0
	for bi, n := range o.Blocks {
		c := o.width(chans[bi])
		for j := 0; j < n; j++ {
			if o.Style == Zoo {
				name := fmt.Sprintf("vgg0_conv%d", conv)
				x = b.Conv(name+"_fwd", x, name+"_fwd", w.convWeight(name+"_weight", c, cin, 3, gainFor(conv == 0)), w.bias(name+"_bias", c),
					ConvAttrs{Pads: []int{1, 1, 1, 1}})
				g.mx.op(2)
				relu := fmt.Sprintf("vgg0_relu%d_fwd", conv)
				x = b.Relu(relu, x, relu)
				g.mx.op(0)
			} else {
				scope := fmt.Sprintf("/features/features.%d", layer)
				node, out := torchName(scope, "Conv")
				p := fmt.Sprintf("features.%d.", layer)
				x = b.Conv(node, x, out, w.convWeight(p+"weight", c, cin, 3, gainFor(conv == 0)), w.bias(p+"bias", c),
					ConvAttrs{Pads: []int{1, 1, 1, 1}})
				node, out = torchName(fmt.Sprintf("/features/features.%d", layer+1), "Relu")
				x = b.Relu(node, x, out)
				layer += 2
			}
			conv++
			cin = c
		}
		pool := PoolAttrs{Kernel: []int{2, 2}, Strides: []int{2, 2}}
		if o.Style == Zoo {
			name := fmt.Sprintf("vgg0_pool%d_fwd", bi)
			x = b.MaxPool(name, x, name, pool)
			g.mx.op(0)
		} else {
			node, out := torchName(fmt.Sprintf("/features/features.%d", layer), "MaxPool")
			x = b.MaxPool(node, x, out, pool)
			layer++
		}
		size /= 2
	}
	if o.Style == Torchvision {
		// AdaptiveAvgPool2d((7, 7)) exports as an AveragePool of kernel 1
		// when the feature map already is 7x7; the tiny variants keep that
		// form by sizing the pool to their feature map.
		node, out := torchName("/avgpool", "AveragePool")
		x = b.AveragePool(node, x, out, PoolAttrs{Kernel: []int{1, 1}, Strides: []int{1, 1}})
		node, out = torchName("", "Flatten")
		x = b.Flatten(node, x, out, 1)
	}
	return x, cin, size
}

// classifier adds the two hidden fully connected layers and the output
// layer on x (in values per image).
func (g *vggGen) classifier(x string, in int) string {
	o, b, w := g.o, g.b, g.w
	widths := []int{o.Hidden, o.Hidden, o.Classes}
	torchIdx := []int{0, 3, 6}
	for d, n := range widths {
		last := d == len(widths)-1
		gain := 1.0
		if last {
			gain = math.Sqrt(0.5) // logits: no ReLU follows
		}
		if o.Style == Zoo {
			fcIdx := g.mx.op(2)
			flat := fmt.Sprintf("flatten_%d", fcIdx)
			x = b.Flatten(flat, x, flat, -1)
			name := fmt.Sprintf("vgg0_dense%d", d)
			x = b.Gemm(name+"_fwd", x, name+"_fwd", w.fc(name+"_weight", n, in, gain), w.bias(name+"_bias", n),
				GemmAttrs{TransB: true, WriteTransA: true})
			if !last {
				relu := name + "_relu_fwd"
				x = b.Relu(relu, x, relu)
				g.mx.op(0)
				drop := fmt.Sprintf("vgg0_dropout%d_fwd", d)
				x = b.Dropout(drop, x, drop, 0.5)
				g.mx.op(0)
			}
		} else {
			scope := fmt.Sprintf("/classifier/classifier.%d", torchIdx[d])
			node, out := torchName(scope, "Gemm")
			if last && !o.Softmax {
				out = "output"
			}
			p := fmt.Sprintf("classifier.%d.", torchIdx[d])
			x = b.Gemm(node, x, out, w.fc(p+"weight", n, in, gain), w.bias(p+"bias", n), GemmAttrs{TransB: true})
			if !last {
				node, out = torchName(fmt.Sprintf("/classifier/classifier.%d", torchIdx[d]+1), "Relu")
				x = b.Relu(node, x, out)
			}
		}
		in = n
	}
	return x
}

// finish appends the optional Softmax.
func finish(b *Builder, o Options, x string) string {
	if !o.Softmax {
		return x
	}
	if o.Style == Zoo {
		return b.Softmax("prob", x, "prob", 1)
	}
	node, _ := torchName("", "Softmax")
	return b.Softmax(node, x, "output", 1)
}

// resnet holds what the ResNet generators share.
type resnet struct {
	o      Options
	w      *weights
	b      *Builder
	blocks int // total residual blocks, for the residual branch gain
}

// branchGain scales the last convolution of every residual branch so that
// the variance added per block shrinks with depth and the activations stay
// O(1) through all of ResNet-50's 16 blocks.
func (r *resnet) branchGain() float64 { return 1 / math.Sqrt(float64(r.blocks)) }

func newResNet(o Options, graphName string) (*resnet, error) {
	if len(o.Blocks) > 4 {
		return nil, fmt.Errorf("%d stages, at most 4", len(o.Blocks))
	}
	if o.InputSize%4 != 0 {
		return nil, fmt.Errorf("input size %d is not a multiple of 4", o.InputSize)
	}
	r := &resnet{o: o, w: newWeights(o), b: newStyledBuilder(o, graphName)}
	for _, n := range o.Blocks {
		r.blocks += n
	}
	return r, nil
}

// zooBN adds an MXNet BatchNorm named prefix+"batchnormK_fwd" with
// parameters _gamma, _beta, _running_mean, _running_var.
func (r *resnet) zooBN(prefix string, k int, in string, c int, mx *mxnetIndex) string {
	p := fmt.Sprintf("%sbatchnorm%d", prefix, k)
	t := r.w.bn([4]string{p + "_gamma", p + "_beta", p + "_running_mean", p + "_running_var"}, c)
	mx.op(4)
	return r.b.BatchNorm(p+"_fwd", in, p+"_fwd", t[0], t[1], t[2], t[3], bnEpsilon)
}

// zooConv adds an MXNet Conv2D named prefix+"convK_fwd".
func (r *resnet) zooConv(prefix string, k int, in string, cout, cin, kernel, stride, pad int, bias bool, gain float64, mx *mxnetIndex) string {
	p := fmt.Sprintf("%sconv%d", prefix, k)
	wt := r.w.convWeight(p+"_weight", cout, cin, kernel, gain)
	var bt *Tensor
	params := 1
	if bias {
		bt = r.w.bias(p+"_bias", cout)
		params = 2
	}
	mx.op(params)
	return r.b.Conv(p+"_fwd", in, p+"_fwd", wt, bt, ConvAttrs{Strides: []int{stride, stride}, Pads: []int{pad, pad, pad, pad}})
}

// torchConvBN adds torchvision's conv (no bias) + BatchNorm2d pair:
// nodes scope/convName/Conv and scope/bnName/BatchNormalization, with
// parameters param+convName+".weight" and param+bnName+".weight" (.bias,
// .running_mean, .running_var).
func (r *resnet) torchConvBN(scope, param, convName, bnName, in string, cout, cin, kernel, stride, pad int, gain float64) string {
	node, out := torchName(scope+"/"+convName, "Conv")
	x := r.b.Conv(node, in, out, r.w.convWeight(param+convName+".weight", cout, cin, kernel, gain), nil,
		ConvAttrs{Strides: []int{stride, stride}, Pads: []int{pad, pad, pad, pad}})
	p := param + bnName + "."
	t := r.w.bn([4]string{p + "weight", p + "bias", p + "running_mean", p + "running_var"}, cout)
	node, out = torchName(scope+"/"+bnName, "BatchNormalization")
	return r.b.BatchNorm(node, x, out, t[0], t[1], t[2], t[3], bnEpsilon)
}

func (r *resnet) torchRelu(scope, name, in string) string {
	node, out := torchName(scope+"/"+name, "Relu")
	return r.b.Relu(node, in, out)
}

// head adds global average pooling, the flatten and the classifier.
// Zoo v1 names the flatten after the dense operator (flatten_473), zoo v2
// has GluonCV's Flatten block exported as a Reshape.
func (r *resnet) head(prefix string, in string, c int, mx *mxnetIndex, v2 bool) (*Model, error) {
	o, b, w := r.o, r.b, r.w
	var x string
	if o.Style == Zoo {
		pool := prefix + "pool1_fwd"
		x = b.GlobalAveragePool(pool, in, pool)
		mx.op(0)
		if v2 {
			name := prefix + "flatten0_reshape0"
			shape := NewInt64(fmt.Sprintf("reshape_attr_tensor%d", mx.op(0)), []int{2}, []int64{0, -1})
			x = b.Reshape(name, x, name, shape)
		}
		fcIdx := mx.op(2)
		if !v2 {
			flat := fmt.Sprintf("flatten_%d", fcIdx)
			x = b.Flatten(flat, x, flat, -1)
		}
		name := prefix + "dense0"
		x = b.Gemm(name+"_fwd", x, name+"_fwd", w.fc(name+"_weight", o.Classes, c, math.Sqrt(0.5)), w.bias(name+"_bias", o.Classes),
			GemmAttrs{TransB: true, WriteTransA: true})
	} else {
		node, out := torchName("/avgpool", "GlobalAveragePool")
		x = b.GlobalAveragePool(node, in, out)
		node, out = torchName("", "Flatten")
		x = b.Flatten(node, x, out, 1)
		node, out = torchName("/fc", "Gemm")
		if !o.Softmax {
			out = "output"
		}
		x = b.Gemm(node, x, out, w.fc("fc.weight", o.Classes, c, math.Sqrt(0.5)), w.bias("fc.bias", o.Classes), GemmAttrs{TransB: true})
	}
	x = finish(b, o, x)
	b.Output(x, o.outputDims(o.Classes)...)
	return b.Model()
}

// zooStem adds GluonCV's stem: conv0 (7x7/2, 3 to stem channels),
// batchnorm<bn>, relu0 and pool0 (3x3/2).
func (r *resnet) zooStem(pre string, bn int, x string, stem int, mx *mxnetIndex) string {
	x = r.zooConv(pre, 0, x, stem, 3, 7, 2, 3, false, gainFor(true), mx)
	x = r.zooBN(pre, bn, x, stem, mx)
	x = r.b.Relu(pre+"relu0_fwd", x, pre+"relu0_fwd")
	mx.op(0)
	x = r.b.MaxPool(pre+"pool0_fwd", x, pre+"pool0_fwd", PoolAttrs{Kernel: []int{3, 3}, Strides: []int{2, 2}, Pads: []int{1, 1, 1, 1}})
	mx.op(0)
	return x
}

// ResNetV1 builds ResNet-50 v1 with bottleneck blocks. Zoo style is
// GluonCV's resnet50_v1 (stride on the first 1x1 convolution of a
// downsampling block; those 1x1 convolutions carry a bias), Torchvision
// style is torchvision's resnet50, which is v1.5 (stride on the 3x3
// convolution; no convolution biases).
func ResNetV1(o Options) (*Model, error) {
	o, err := o.withDefaults([]int{3, 4, 6, 3})
	if err != nil {
		return nil, fmt.Errorf("resnet v1: %w", err)
	}
	gname := "mxnet_converted_model"
	if o.Style == Torchvision {
		gname = "torch_jit"
	}
	r, err := newResNet(o, gname)
	if err != nil {
		return nil, fmt.Errorf("resnet v1: %w", err)
	}
	b, w := r.b, r.w
	x := b.Input("data", o.inputDims()...)
	stem := o.width(64)
	var mx mxnetIndex
	mx.op(0) // data
	const pre = "resnetv17_"
	if o.Style == Zoo {
		x = r.zooStem(pre, 0, x, stem, &mx)
	} else {
		node, out := torchName("/conv1", "Conv")
		x = b.Conv(node, x, out, w.convWeight("conv1.weight", stem, 3, 7, gainFor(true)), nil, ConvAttrs{Strides: []int{2, 2}, Pads: []int{3, 3, 3, 3}})
		t := w.bn([4]string{"bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var"}, stem)
		node, out = torchName("/bn1", "BatchNormalization")
		x = b.BatchNorm(node, x, out, t[0], t[1], t[2], t[3], bnEpsilon)
		node, out = torchName("/relu", "Relu")
		x = b.Relu(node, x, out)
		node, out = torchName("/maxpool", "MaxPool")
		x = b.MaxPool(node, x, out, PoolAttrs{Kernel: []int{3, 3}, Strides: []int{2, 2}, Pads: []int{1, 1, 1, 1}})
	}
	cin := stem
	for si, nblocks := range o.Blocks {
		mid := o.width(64 << si)
		cout := o.width(256 << si)
		zs := zooV1Stage{prefix: fmt.Sprintf("%sstage%d_", pre, si+1)}
		for bi := 0; bi < nblocks; bi++ {
			stride := 1
			if bi == 0 && si > 0 {
				stride = 2
			}
			blk := bottleneckV1{cin: cin, mid: mid, cout: cout, stride: stride, down: bi == 0}
			if o.Style == Zoo {
				x = r.zooV1Block(&zs, blk, x, &mx)
			} else {
				x = r.torchV1Block(si, bi, blk, x)
			}
			cin = cout
		}
	}
	return r.head(pre, x, cin, &mx, false)
}

// bottleneckV1 is one ResNet v1 block's shape: channels in, of the 3x3
// and out, the stride of the stage's first block, and whether the
// shortcut is a 1x1 projection.
type bottleneckV1 struct {
	cin, mid, cout, stride int
	down                   bool
}

// zooV1Stage numbers GluonCV's layers within one stage.
type zooV1Stage struct {
	prefix               string
	conv, bn, relu, plus int
}

// zooV1Block adds one GluonCV resnet50_v1 block (stride on the first 1x1
// convolution, which carries a bias, as does the last).
func (r *resnet) zooV1Block(s *zooV1Stage, k bottleneckV1, x string, mx *mxnetIndex) string {
	b, zp := r.b, s.prefix
	identity := x
	y := r.zooConv(zp, s.conv, x, k.mid, k.cin, 1, k.stride, 0, true, 1, mx)
	y = r.zooBN(zp, s.bn, y, k.mid, mx)
	y = b.Relu(fmt.Sprintf("%srelu%d_fwd", zp, s.relu), y, fmt.Sprintf("%srelu%d_fwd", zp, s.relu))
	mx.op(0)
	y = r.zooConv(zp, s.conv+1, y, k.mid, k.mid, 3, 1, 1, false, 1, mx)
	y = r.zooBN(zp, s.bn+1, y, k.mid, mx)
	y = b.Relu(fmt.Sprintf("%srelu%d_fwd", zp, s.relu+1), y, fmt.Sprintf("%srelu%d_fwd", zp, s.relu+1))
	mx.op(0)
	y = r.zooConv(zp, s.conv+2, y, k.cout, k.mid, 1, 1, 0, true, r.branchGain(), mx)
	y = r.zooBN(zp, s.bn+2, y, k.cout, mx)
	s.conv, s.bn, s.relu = s.conv+3, s.bn+3, s.relu+2
	if k.down {
		identity = r.zooConv(zp, s.conv, x, k.cout, k.cin, 1, k.stride, 0, false, 1, mx)
		identity = r.zooBN(zp, s.bn, identity, k.cout, mx)
		s.conv, s.bn = s.conv+1, s.bn+1
	}
	name := fmt.Sprintf("%s_plus%d", zp, s.plus)
	y = b.Add(name, y, identity, name)
	mx.op(0)
	act := fmt.Sprintf("%sactivation%d", zp, s.plus)
	x = b.Relu(act, y, act)
	mx.op(0)
	s.plus++
	return x
}

// torchV1Block adds block bi of stage si as torchvision's resnet50 (v1.5:
// stride on the 3x3 convolution, no convolution biases) exports it.
func (r *resnet) torchV1Block(si, bi int, k bottleneckV1, x string) string {
	scope := fmt.Sprintf("/layer%d/layer%d.%d", si+1, si+1, bi)
	param := fmt.Sprintf("layer%d.%d.", si+1, bi)
	identity := x
	y := r.torchConvBN(scope, param, "conv1", "bn1", x, k.mid, k.cin, 1, 1, 0, 1)
	y = r.torchRelu(scope, "relu", y)
	y = r.torchConvBN(scope, param, "conv2", "bn2", y, k.mid, k.mid, 3, k.stride, 1, 1)
	y = r.torchRelu(scope, "relu_1", y)
	y = r.torchConvBN(scope, param, "conv3", "bn3", y, k.cout, k.mid, 1, 1, 0, r.branchGain())
	if k.down {
		identity = r.torchConvBN(scope+"/downsample", param, "downsample.0", "downsample.1", x, k.cout, k.cin, 1, k.stride, 0, 1)
	}
	node, out := torchName(scope, "Add")
	y = r.b.Add(node, y, identity, out)
	return r.torchRelu(scope, "relu_2", y)
}

// ResNetV2 builds ResNet-50 v2 (pre-activation, He et al. 2016) as GluonCV
// exports it (resnet50-v2-7.onnx, prefix resnetv24_): a BatchNormalization
// without scale and shift on the raw input, conv0, batchnorm1, relu0,
// pool0; blocks of BN-ReLU-conv with the stride on the 3x3 convolution,
// the downsampling 1x1 convolution reading the pre-activated input, and
// the Add as block output with no ReLU after it; then batchnorm2, relu1,
// pool1, the flatten as a Reshape to [0, -1], and dense0. Only Zoo style
// exists: torchvision has no v2.
func ResNetV2(o Options) (*Model, error) {
	o, err := o.withDefaults([]int{3, 4, 6, 3})
	if err != nil {
		return nil, fmt.Errorf("resnet v2: %w", err)
	}
	if o.Style != Zoo {
		return nil, fmt.Errorf("resnet v2: style %v: torchvision has no ResNet v2: %w", o.Style, ErrUnsupported)
	}
	r, err := newResNet(o, "mxnet_converted_model")
	if err != nil {
		return nil, fmt.Errorf("resnet v2: %w", err)
	}
	b, w := r.b, r.w
	const pre = "resnetv24_"
	var mx mxnetIndex
	mx.op(0) // data
	x := b.Input("data", o.inputDims()...)
	// GluonCV's BatchNorm(scale=False, center=False): gamma 1, beta 0.
	p := pre + "batchnorm0"
	one, zero := make([]float32, 3), make([]float32, 3)
	for i := range one {
		one[i] = 1
	}
	x = b.BatchNorm(p+"_fwd", x, p+"_fwd", w.tensor(p+"_gamma", []int{3}, one), w.tensor(p+"_beta", []int{3}, zero),
		w.tensor(p+"_running_mean", []int{3}, w.uniform(3, -0.1, 0.1)), w.tensor(p+"_running_var", []int{3}, w.uniform(3, 0.5, 1.5)), bnEpsilon)
	mx.op(4)
	stem := o.width(64)
	x = r.zooStem(pre, 1, x, stem, &mx)
	cin := stem
	for si, nblocks := range o.Blocks {
		mid := o.width(64 << si)
		cout := o.width(256 << si)
		var conv, bn, act, plus int
		zp := fmt.Sprintf("%sstage%d_", pre, si+1)
		relu := func(in string) string {
			name := fmt.Sprintf("%sactivation%d", zp, act)
			act++
			mx.op(0)
			return b.Relu(name, in, name)
		}
		for bi := 0; bi < nblocks; bi++ {
			stride := 1
			if bi == 0 && si > 0 {
				stride = 2
			}
			down := cin != cout // Gluon: downsample = channels != in_channels
			// Gluon names blocks at construction (bn1, conv1, bn2, conv2,
			// bn3, conv3, downsample) but the graph runs the downsample
			// right after the first activation; MXNet lists it after the
			// main branch, as the second input of the add.
			dsConv := conv + 3
			y := r.zooBN(zp, bn, x, cin, &mx)
			preact := relu(y)
			y = r.zooConv(zp, conv, preact, mid, cin, 1, 1, 0, false, 1, &mx)
			y = r.zooBN(zp, bn+1, y, mid, &mx)
			y = relu(y)
			y = r.zooConv(zp, conv+1, y, mid, mid, 3, stride, 1, false, 1, &mx)
			y = r.zooBN(zp, bn+2, y, mid, &mx)
			y = relu(y)
			y = r.zooConv(zp, conv+2, y, cout, mid, 1, 1, 0, false, r.branchGain(), &mx)
			identity := x
			conv, bn = conv+3, bn+3
			if down {
				identity = r.zooConv(zp, dsConv, preact, cout, cin, 1, stride, 0, false, 1, &mx)
				conv++
			}
			name := fmt.Sprintf("%s_plus%d", zp, plus)
			x = b.Add(name, y, identity, name)
			mx.op(0)
			plus++
			cin = cout
		}
	}
	x = r.zooBN(pre, 2, x, cin, &mx)
	x = b.Relu(pre+"relu1_fwd", x, pre+"relu1_fwd")
	mx.op(0)
	return r.head(pre, x, cin, &mx, true)
}
