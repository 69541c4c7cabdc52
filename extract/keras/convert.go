package keras

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"pipeline/extract/onnx"
)

// Producer is the producer name of the ONNX graphs Convert writes. The
// alias resolver (extract/onnxsrc.go) treats the node names of such a graph
// that contain no '/' as Keras layer names, i.e. as aliases.
const Producer = "pipeline-keras"

// Namings of the architectures Convert recognises.
const (
	NamingVGG    = "vgg"                // block1_conv1 ... fc1, fc2, predictions
	NamingLegacy = "keras_applications" // resnet50.py of keras_applications / Keras 2.0-2.3: conv1, bn_conv1, res2a_branch2a ... fc1000
	NamingKeras  = "keras"              // keras.applications.resnet (TF 2): conv1_conv, conv2_block1_1_conv ... predictions
)

// Arch is what Convert recognised in a file.
type Arch struct {
	Name      string // VGG16, VGG19 or ResNet50
	Naming    string // NamingVGG, NamingLegacy or NamingKeras
	Top       bool   // with the classifier (include_top=True)
	InputSize int    // height = width of the input
	Classes   int    // width of the classifier, 0 without top
	// BNEpsilon is Keras's epsilon of the BatchNormalization layers (0 for VGG).
	BNEpsilon float64
	// Pool1Pad: the legacy ResNet50 pads by 1 before its first max pool
	// (keras_applications' pool1_pad, Keras 2.2.3 and later); Keras 2.0
	// to 2.2.2 pooled without it. See Options.Pool1Pad.
	Pool1Pad bool
	// Output is the Keras name of the last layer (the graph's output).
	Output string
}

func (a Arch) String() string {
	top := "without top"
	if a.Top {
		top = fmt.Sprintf("with top (%d classes)", a.Classes)
	}
	s := fmt.Sprintf("%s (%s naming), %s, input %dx%d", a.Name, a.Naming, top, a.InputSize, a.InputSize)
	if a.BNEpsilon != 0 {
		s += fmt.Sprintf(", BatchNormalization epsilon %g", a.BNEpsilon)
	}
	if a.Naming == NamingLegacy && !a.Pool1Pad {
		s += ", no padding before the first max pool (Keras <= 2.2.2)"
	} else if a.Naming == NamingLegacy {
		s += ", pool1_pad before the first max pool (Keras >= 2.2.3)"
	}
	return s
}

// Options tune Convert.
type Options struct {
	// InputSize is the input height and width; 0 means 224, or what a
	// VGG file's fc1 implies (fc1 fixes the size of the flattened map).
	InputSize int
	// Pool1Pad decides, for the legacy ResNet50 naming, the 1-pixel zero
	// padding before the first max pool, which the weights cannot show:
	// "true" (keras_applications' pool1_pad, Keras 2.2.3 and later),
	// "false" (Keras 2.0 to 2.2.2), "" = the file's layer_names say: a
	// pool1_pad layer, or a list with the layers without weights and no
	// padding before the pool; a list without them gives "true".
	Pool1Pad string
}

// Keras's BatchNormalization epsilons: the layer default (keras_applications
// resnet50.py leaves it) and keras.applications.resnet's explicit one.
const (
	epsilonDefault = 1e-3
	epsilonResNet  = 1.001e-5
)

// Convert recognises the network of a Keras weights file from its layer
// names and weight shapes (never from the file name), and builds the
// equivalent ONNX graph (NCHW): kernels HWIO → OIHW, fc1's rows permuted
// from Keras's H,W,C flatten order to C,H,W, BatchNormalization kept as a
// node with Keras's epsilon, ZeroPadding2D folded into the padding of the
// layer after it, 'same' padding as TensorFlow computes it (asymmetric
// under a stride: the extra row and column at the end). Every Keras layer
// that has an ONNX node of its own gives the node its name, so the Keras
// names resolve as --layer; auxiliary nodes have a '/' in their names.
func Convert(f *File, o Options) (*onnx.Model, Arch, error) {
	c := &converter{f: f, used: map[string]bool{}}
	var a Arch
	var err error
	switch {
	case f.Layer("block1_conv1") != nil:
		a, err = c.vgg(o)
	case f.Layer("conv1_conv") != nil:
		a, err = c.resnetKeras(o)
	case f.Layer("res2a_branch2a") != nil || f.Layer("bn_conv1") != nil:
		a, err = c.resnetLegacy(o)
	default:
		return nil, Arch{}, fmt.Errorf("%w: found layers %s; want VGG16/VGG19 (block1_conv1 ... fc1, fc2, predictions) or ResNet50 (conv1_conv, conv2_block1_1_conv, ... or conv1, bn_conv1, res2a_branch2a, ...)",
			ErrNotKeras, c.someLayers())
	}
	if err != nil {
		return nil, Arch{}, err
	}
	if err := c.unused(a); err != nil {
		return nil, Arch{}, err
	}
	m, err := c.b.Model()
	if err != nil {
		return nil, Arch{}, err
	}
	m.ProducerName = Producer
	m.ProducerVersion = "keras " + f.KerasVersion
	return m, a, nil
}

type converter struct {
	f    *File
	b    *onnx.Builder
	used map[string]bool // layers whose weights went into the graph
	size int             // spatial size of the current tensor
}

func (c *converter) someLayers() string {
	var n []string
	for _, l := range c.f.Layers {
		if len(l.Weights) > 0 {
			n = append(n, l.Name)
		}
		if len(n) == 8 {
			n = append(n, "...")
			break
		}
	}
	if len(n) == 0 {
		return "(none with weights)"
	}
	return strings.Join(n, ", ")
}

// unused rejects weights of layers that are not part of the architecture:
// a fine-tuned model with another head is another network.
func (c *converter) unused(a Arch) error {
	var extra []string
	for _, l := range c.f.Layers {
		if len(l.Weights) > 0 && !c.used[l.Name] {
			extra = append(extra, l.Name)
		}
	}
	if len(extra) > 0 {
		return fmt.Errorf("%w: layers %s are not part of %s", ErrNotKeras, strings.Join(extra, ", "), a.Name)
	}
	return nil
}

// weights returns the weights of a layer, checking their count and shapes
// (-1 in want matches any size, and is then filled in with the file's).
func (c *converter) weights(name string, want ...[]int) ([]Weight, error) {
	l := c.f.Layer(name)
	if l == nil || len(l.Weights) == 0 {
		return nil, fmt.Errorf("%w: layer %s is missing", ErrNotKeras, name)
	}
	if len(l.Weights) != len(want) {
		return nil, fmt.Errorf("%w: layer %s has %d weights, want %d", ErrNotKeras, name, len(l.Weights), len(want))
	}
	for i, w := range l.Weights {
		ok := len(w.Shape) == len(want[i])
		for j := 0; ok && j < len(w.Shape); j++ {
			ok = want[i][j] < 0 || want[i][j] == w.Shape[j]
		}
		if !ok {
			return nil, fmt.Errorf("%w: layer %s: weight %s has shape %v, want %s", ErrNotKeras, name, w.Name, w.Shape, shapeWant(want[i]))
		}
	}
	c.used[name] = true
	return l.Weights, nil
}

func shapeWant(s []int) string {
	p := make([]string, len(s))
	for i, v := range s {
		p[i] = strconv.Itoa(v)
		if v < 0 {
			p[i] = "any"
		}
	}
	return "[" + strings.Join(p, " ") + "]"
}

// samePads is TensorFlow's 'same' padding along one axis: the output has
// ceil(in/stride) positions, and the padding the kernel needs is split
// with the odd one at the end.
func samePads(in, k, stride int) (begin, end int) {
	out := (in + stride - 1) / stride
	total := max((out-1)*stride+k-in, 0)
	return total / 2, total - total/2
}

// conv adds a Conv2D layer: kernel [k,k,cin,cout] (k < 0: any square
// kernel), bias when the file has one; pad is an explicit zero padding
// folded in (a ZeroPadding2D before it), same selects TF 'same' padding.
// The node is named node (the Keras layer name, or an auxiliary name).
func (c *converter) conv(layer, node, in string, k, cin, stride int, same bool, pad int) (string, int, error) {
	l := c.f.Layer(layer)
	if l == nil || len(l.Weights) == 0 {
		return "", 0, fmt.Errorf("%w: layer %s is missing", ErrNotKeras, layer)
	}
	shapes := [][]int{{k, k, cin, -1}}
	if len(l.Weights) == 2 {
		shapes = append(shapes, []int{l.Weights[0].ShapeAt(3)})
	}
	ws, err := c.weights(layer, shapes...)
	if err != nil {
		return "", 0, err
	}
	kh, kw, cout := ws[0].Shape[0], ws[0].Shape[1], ws[0].Shape[3]
	if kh != kw {
		return "", 0, fmt.Errorf("%w: layer %s: kernel %dx%d is not square", ErrNotKeras, layer, kh, kw)
	}
	// HWIO → OIHW.
	hwio := ws[0].Data
	oihw := make([]float32, len(hwio))
	for y := 0; y < kh; y++ {
		for x := 0; x < kw; x++ {
			for i := 0; i < cin; i++ {
				for o := 0; o < cout; o++ {
					oihw[((o*cin+i)*kh+y)*kw+x] = hwio[((y*kw+x)*cin+i)*cout+o]
				}
			}
		}
	}
	var bias *onnx.Tensor
	if len(ws) == 2 {
		bias = onnx.NewFloat32(layer+"/bias", []int{cout}, ws[1].Data)
	}
	size := c.size + 2*pad
	pads := []int{pad, pad, pad, pad}
	if same {
		b, e := samePads(size, kh, stride)
		pads = []int{pad + b, pad + b, pad + e, pad + e}
		size += b + e
	}
	if size < kh {
		return "", 0, fmt.Errorf("%w: layer %s: a %dx%d kernel on a %dx%d map (input too small)", ErrNotKeras, layer, kh, kh, size, size)
	}
	c.size = (size-kh)/stride + 1
	out := c.b.Conv(node, in, node, onnx.NewFloat32(layer+"/kernel", []int{cout, cin, kh, kw}, oihw), bias,
		onnx.ConvAttrs{Strides: []int{stride, stride}, Pads: pads})
	return out, cout, nil
}

// ShapeAt is Shape[i], or -1 when the weight has fewer dimensions (the
// shape check then reports it).
func (w Weight) ShapeAt(i int) int {
	if i < len(w.Shape) {
		return w.Shape[i]
	}
	return -1
}

// bn adds a BatchNormalization layer of c channels as a node of its own,
// so that its Keras name gives exactly Keras's values: gamma·(x−mean)/
// sqrt(var+ε)+beta with the moving statistics, in weight_names order
// (gamma, beta, moving_mean, moving_variance; Keras 1's "running_std" is
// the variance too).
func (c *converter) bn(layer, in string, ch int, eps float64) (string, error) {
	ws, err := c.weights(layer, []int{ch}, []int{ch}, []int{ch}, []int{ch})
	if err != nil {
		return "", err
	}
	t := func(i int, s string) *onnx.Tensor { return onnx.NewFloat32(layer+"/"+s, []int{ch}, ws[i].Data) }
	return c.b.BatchNorm(layer, in, layer, t(0, "gamma"), t(1, "beta"), t(2, "moving_mean"), t(3, "moving_variance"), float32(eps)), nil
}

// dense adds a Dense layer as Gemm; perm, when set, maps the row of the
// ONNX weight's input index to the Keras kernel's row.
func (c *converter) dense(layer, node, in string, nin int, perm []int) (string, int, error) {
	l := c.f.Layer(layer)
	if l == nil || len(l.Weights) == 0 {
		return "", 0, fmt.Errorf("%w: layer %s is missing", ErrNotKeras, layer)
	}
	ws, err := c.weights(layer, []int{nin, -1}, []int{l.Weights[0].ShapeAt(1)})
	if err != nil {
		return "", 0, err
	}
	nout := ws[0].Shape[1]
	// w[o][i] = k[perm[i]][o], in tiles: VGG16's fc1 is 25088x4096, and a
	// plain transpose misses the cache on every read or every write.
	k := ws[0].Data
	w := make([]float32, len(k))
	const tile = 64
	for i0 := 0; i0 < nin; i0 += tile {
		for o0 := 0; o0 < nout; o0 += tile {
			for i := i0; i < min(i0+tile, nin); i++ {
				src := i
				if perm != nil {
					src = perm[i]
				}
				row := k[src*nout : (src+1)*nout]
				for o := o0; o < min(o0+tile, nout); o++ {
					w[o*nin+i] = row[o]
				}
			}
		}
	}
	out := c.b.Gemm(node, in, node, onnx.NewFloat32(layer+"/kernel", []int{nout, nin}, w),
		onnx.NewFloat32(layer+"/bias", []int{nout}, ws[1].Data), onnx.GemmAttrs{TransB: true})
	return out, nout, nil
}

func (c *converter) start(name string, size int) string {
	c.b = onnx.NewBuilder(name)
	c.b.ProducerName = Producer
	c.size = size
	return c.b.Input("input_1", onnx.Dim{Param: "N"}, onnx.Dim{Value: 3}, onnx.Dim{Value: int64(size)}, onnx.Dim{Value: int64(size)})
}

func (c *converter) maxPool(node, in string, k, stride, pad int) string {
	c.size = (c.size+2*pad-k)/stride + 1
	return c.b.MaxPool(node, in, node, onnx.PoolAttrs{Kernel: []int{k, k}, Strides: []int{stride, stride}, Pads: []int{pad, pad, pad, pad}})
}

var vggConv = regexp.MustCompile(`^block([1-9])_conv([0-9]+)$`)

// vgg converts VGG16 or VGG19: 3x3 'same' convolutions with ReLU, a 2x2
// max pool per block, then (with top) flatten, fc1 and fc2 with ReLU and
// the softmax classifier predictions.
func (c *converter) vgg(o Options) (Arch, error) {
	counts, name, err := c.vggBlocks()
	if err != nil {
		return Arch{}, err
	}
	a := Arch{Naming: NamingVGG, Name: name}
	a.Top = c.f.Layer("fc1") != nil || c.f.Layer("fc2") != nil || c.f.Layer("predictions") != nil
	size, err := c.vggInputSize(counts, a.Top, o.InputSize)
	if err != nil {
		return Arch{}, err
	}
	a.InputSize = size
	x := c.start(strings.ToLower(a.Name), size)
	cin := 3
	for bi, n := range counts {
		for j := 1; j <= n; j++ {
			name := fmt.Sprintf("block%d_conv%d", bi+1, j)
			var err error
			if x, cin, err = c.conv(name, name+"/conv", x, 3, cin, 1, true, 0); err != nil {
				return Arch{}, err
			}
			x = c.b.Relu(name, x, name)
		}
		name := fmt.Sprintf("block%d_pool", bi+1)
		if c.size < 2 {
			return Arch{}, fmt.Errorf("%w: input %dx%d is too small for VGG's 5 pools", ErrNotKeras, size, size)
		}
		x = c.maxPool(name, x, 2, 2, 0)
	}
	a.Output = "block5_pool"
	if !a.Top {
		c.b.Output(x, onnx.Dim{Param: "N"}, onnx.Dim{Value: int64(cin)}, onnx.Dim{Value: int64(c.size)}, onnx.Dim{Value: int64(c.size)})
		return a, nil
	}
	if a.Classes, err = c.vggTop(x, cin); err != nil {
		return Arch{}, err
	}
	a.Output = "predictions"
	return a, nil
}

// vggBlocks counts the convolutions of each of the 5 blocks and names the
// network they make (VGG16 or VGG19); a missing layer of either is named.
func (c *converter) vggBlocks() ([]int, string, error) {
	counts := make([]int, 5)
	for _, l := range c.f.Layers {
		m := vggConv.FindStringSubmatch(l.Name)
		if m == nil || len(l.Weights) == 0 {
			continue
		}
		bi, _ := strconv.Atoi(m[1])
		j, _ := strconv.Atoi(m[2])
		if bi > 5 {
			return nil, "", fmt.Errorf("%w: layer %s: VGG has 5 blocks", ErrNotKeras, l.Name)
		}
		counts[bi-1] = max(counts[bi-1], j)
	}
	switch {
	case slices.Equal(counts, []int{2, 2, 3, 3, 3}):
		return counts, "VGG16", nil
	case slices.Equal(counts, []int{2, 2, 4, 4, 4}):
		return counts, "VGG19", nil
	}
	// A missing layer of VGG16 or VGG19 says so; other counts are
	// another network.
	for _, want := range [][]int{{2, 2, 3, 3, 3}, {2, 2, 4, 4, 4}} {
		for i := range want {
			if counts[i] < want[i] && slices.Equal(counts[:i], want[:i]) && slices.Equal(counts[i+1:], want[i+1:]) {
				return nil, "", fmt.Errorf("%w: layer block%d_conv%d is missing", ErrNotKeras, i+1, counts[i]+1)
			}
		}
	}
	return nil, "", fmt.Errorf("%w: convolutions per block %v: neither VGG16 (2,2,3,3,3) nor VGG19 (2,2,4,4,4)", ErrNotKeras, counts)
}

// vggInputSize is the input size: with top, the channels of the last
// block and fc1's rows fix it (rows = C·s·s for the s x s map after 5
// pools, and want, when set, must agree); without, want or 224.
func (c *converter) vggInputSize(counts []int, top bool, want int) (int, error) {
	size := want
	if top {
		last := c.f.Layer(fmt.Sprintf("block5_conv%d", counts[4]))
		fc1 := c.f.Layer("fc1")
		if fc1 == nil || len(fc1.Weights) == 0 {
			return 0, fmt.Errorf("%w: layer fc1 is missing", ErrNotKeras)
		}
		if last == nil || len(last.Weights) == 0 || len(last.Weights[0].Shape) != 4 || len(fc1.Weights[0].Shape) != 2 {
			return 0, fmt.Errorf("%w: block5 and fc1 kernels must be 4-D and 2-D", ErrNotKeras)
		}
		ch, rows := last.Weights[0].Shape[3], fc1.Weights[0].Shape[0]
		s := int(math.Round(math.Sqrt(float64(rows) / float64(ch))))
		if ch <= 0 || s*s*ch != rows {
			return 0, fmt.Errorf("%w: layer fc1: %d input rows are not %d channels times a square map", ErrNotKeras, rows, ch)
		}
		if size != 0 && size/32 != s {
			return 0, fmt.Errorf("%w: fc1 fixes the input to %dx%d, not %d", ErrNotKeras, s*32, s*32, size)
		}
		size = s * 32
	}
	if size == 0 {
		size = 224
	}
	return size, nil
}

// vggTop adds flatten, fc1 and fc2 with ReLU and the softmax predictions
// after block5_pool (x, cin channels) and returns the number of classes.
func (c *converter) vggTop(x string, cin int) (int, error) {
	x = c.b.Flatten("flatten", x, "flatten", 1)
	// Keras flattens H,W,C; ONNX flattens C,H,W: ONNX input index
	// ch·s·s + y·s + x reads Keras row (y·s + x)·C + ch.
	s := c.size
	perm := make([]int, cin*s*s)
	for ch := 0; ch < cin; ch++ {
		for y := 0; y < s; y++ {
			for xx := 0; xx < s; xx++ {
				perm[ch*s*s+y*s+xx] = (y*s+xx)*cin + ch
			}
		}
	}
	nin := cin * s * s
	var err error
	for i, name := range []string{"fc1", "fc2"} {
		var p []int
		if i == 0 {
			p = perm
		}
		if x, nin, err = c.dense(name, name+"/dense", x, nin, p); err != nil {
			return 0, err
		}
		x = c.b.Relu(name, x, name)
	}
	if x, nin, err = c.dense("predictions", "predictions/dense", x, nin, nil); err != nil {
		return 0, err
	}
	x = c.b.Softmax("predictions", x, "predictions", 1)
	c.b.Output(x, onnx.Dim{Param: "N"}, onnx.Dim{Value: int64(nin)})
	return nin, nil
}

// resnetStages are ResNet50's bottleneck blocks per stage (stages 2..5).
var resnetStages = []int{3, 4, 6, 3}

// countBlocks counts the blocks of each stage with name(stage, block)
// present, and reports a gap (a missing block) or a wrong count.
func (c *converter) countBlocks(name func(s, b int) string) error {
	for si, want := range resnetStages {
		n := 0
		for c.f.Layer(name(si+2, n+1)) != nil {
			n++
		}
		if n < want {
			return fmt.Errorf("%w: layer %s is missing", ErrNotKeras, name(si+2, n+1))
		}
		if c.f.Layer(name(si+2, n+2)) != nil || n > want {
			return fmt.Errorf("%w: stage %d has %d blocks: not ResNet50 (3,4,6,3 blocks)", ErrNotKeras, si+2, n)
		}
	}
	return nil
}

// resnetKeras converts keras.applications.resnet.ResNet50 (TF 2): conv1
// (7x7/2 after a 3-pixel ZeroPadding2D), conv1_bn, conv1_relu, pool1_pool
// (3x3/2 after a 1-pixel ZeroPadding2D), bottleneck blocks
// convS_blockB_{0,1,2,3}_{conv,bn}, _add, _out with the stride on the 1x1
// convolutions of a stage's first block, BatchNormalization epsilon
// 1.001e-5; with top avg_pool and the softmax predictions.
func (c *converter) resnetKeras(o Options) (Arch, error) {
	if err := c.countBlocks(kerasResNet.probe); err != nil {
		return Arch{}, err
	}
	a := Arch{Name: "ResNet50", Naming: NamingKeras, BNEpsilon: epsilonResNet, InputSize: o.InputSize}
	// pool1_pad's zeros follow a ReLU (values >= 0): max-pooling them is
	// max-pooling with the padding left out, which is what ONNX does.
	return c.resnet(a, kerasResNet, 1)
}

// resnetNaming is how one Keras version names ResNet50's layers.
type resnetNaming struct {
	conv1, bn1, relu1, pool1 string // the stem
	block                    func(stage, block int) resnetBlock
	cls                      string // the classifier layer
}

// probe is the name of a block's first layer, to count the blocks.
func (n resnetNaming) probe(s, b int) string { return n.block(s, b).conv[0] }

// resnetBlock names the layers and nodes of one bottleneck block.
type resnetBlock struct {
	short, shortBN string    // a stage's first block's projection shortcut
	conv, bn       [3]string // 1x1, 3x3, 1x1
	relu           [2]string // after bn[0] and bn[1]
	add, out       string
	shortcutFirst  bool // Add(shortcut, y), not Add(y, shortcut)
}

var kerasResNet = resnetNaming{
	conv1: "conv1_conv", bn1: "conv1_bn", relu1: "conv1_relu", pool1: "pool1_pool", cls: "predictions",
	block: func(s, b int) resnetBlock {
		p := fmt.Sprintf("conv%d_block%d", s, b)
		return resnetBlock{
			short: p + "_0_conv", shortBN: p + "_0_bn",
			conv: [3]string{p + "_1_conv", p + "_2_conv", p + "_3_conv"},
			bn:   [3]string{p + "_1_bn", p + "_2_bn", p + "_3_bn"},
			relu: [2]string{p + "_1_relu", p + "_2_relu"},
			add:  p + "_add", out: p + "_out", shortcutFirst: true,
		}
	},
}

// legacyResNet's activations and additions are unnamed in Keras: their
// nodes get auxiliary names (with a '/').
var legacyResNet = resnetNaming{
	conv1: "conv1", bn1: "bn_conv1", relu1: "conv1/relu", pool1: "pool1/max_pool", cls: "fc1000",
	block: func(s, b int) resnetBlock {
		blk := fmt.Sprintf("res%d%s", s, string(rune('a'+b-1)))
		res, bn := blk+"_branch", "bn"+blk[len("res"):]+"_branch"
		return resnetBlock{
			short: res + "1", shortBN: bn + "1",
			conv: [3]string{res + "2a", res + "2b", res + "2c"},
			bn:   [3]string{bn + "2a", bn + "2b", bn + "2c"},
			relu: [2]string{bn + "2a/relu", bn + "2b/relu"},
			add:  blk + "/add", out: blk + "/relu",
		}
	},
}

// resnet adds ResNet50 named n to a fresh graph: the stem (a 3x3/2 max
// pool with poolPad pixels of padding), the bottleneck blocks with the
// stride on the 1x1 convolutions of a stage's first block, and the head.
func (c *converter) resnet(a Arch, n resnetNaming, poolPad int) (Arch, error) {
	if a.InputSize == 0 {
		a.InputSize = 224
	}
	x := c.start("resnet50", a.InputSize)
	x, ch, err := c.conv(n.conv1, n.conv1, x, 7, 3, 2, false, 3)
	if err != nil {
		return Arch{}, err
	}
	if x, err = c.bn(n.bn1, x, ch, a.BNEpsilon); err != nil {
		return Arch{}, err
	}
	x = c.b.Relu(n.relu1, x, n.relu1)
	x = c.maxPool(n.pool1, x, 3, 2, poolPad)
	for si, nb := range resnetStages {
		s := si + 2
		for b := 1; b <= nb; b++ {
			stride := 1
			if b == 1 && s > 2 {
				stride = 2
			}
			if x, ch, err = c.bottleneck(n.block(s, b), x, ch, stride, b == 1, a.BNEpsilon); err != nil {
				return Arch{}, err
			}
		}
	}
	a.Output = "conv5_block3_out" // in legacy files an unnamed Activation: the structural alias
	return c.resnetHead(a, x, ch, n.cls)
}

// bottleneck adds one block on x (ch channels): 1x1 (with the stride),
// 3x3 and 1x1 convolutions with BatchNorm, ReLU after the first two, added
// to the shortcut (a strided 1x1 projection when project) and a ReLU.
func (c *converter) bottleneck(n resnetBlock, x string, ch, stride int, project bool, eps float64) (string, int, error) {
	in, cin, size := x, ch, c.size
	shortcut := x
	var err error
	if project {
		if shortcut, ch, err = c.conv(n.short, n.short, in, 1, cin, stride, false, 0); err != nil {
			return "", 0, err
		}
		if shortcut, err = c.bn(n.shortBN, shortcut, ch, eps); err != nil {
			return "", 0, err
		}
		c.size = size
	}
	y, mid, err := c.conv(n.conv[0], n.conv[0], in, 1, cin, stride, false, 0)
	if err != nil {
		return "", 0, err
	}
	if y, err = c.bn(n.bn[0], y, mid, eps); err != nil {
		return "", 0, err
	}
	y = c.b.Relu(n.relu[0], y, n.relu[0])
	if y, mid, err = c.conv(n.conv[1], n.conv[1], y, -1, mid, 1, true, 0); err != nil {
		return "", 0, err
	}
	if y, err = c.bn(n.bn[1], y, mid, eps); err != nil {
		return "", 0, err
	}
	y = c.b.Relu(n.relu[1], y, n.relu[1])
	var out int
	if y, out, err = c.conv(n.conv[2], n.conv[2], y, 1, mid, 1, false, 0); err != nil {
		return "", 0, err
	}
	if out != ch {
		return "", 0, fmt.Errorf("%w: layer %s has %d filters, the shortcut %d", ErrNotKeras, n.conv[2], out, ch)
	}
	if y, err = c.bn(n.bn[2], y, out, eps); err != nil {
		return "", 0, err
	}
	if n.shortcutFirst {
		y = c.b.Add(n.add, shortcut, y, n.add)
	} else {
		y = c.b.Add(n.add, y, shortcut, n.add)
	}
	return c.b.Relu(n.out, y, n.out), ch, nil
}

// resnetHead adds, when the file has the classifier layer cls, the global
// average pool avg_pool and the softmax classifier; otherwise the output
// is the last block's.
func (c *converter) resnetHead(a Arch, x string, ch int, cls string) (Arch, error) {
	if c.f.Layer(cls) == nil {
		c.b.Output(x, onnx.Dim{Param: "N"}, onnx.Dim{Value: int64(ch)}, onnx.Dim{Value: int64(c.size)}, onnx.Dim{Value: int64(c.size)})
		return a, nil
	}
	a.Top = true
	x = c.b.GlobalAveragePool("avg_pool", x, "avg_pool")
	x = c.b.Flatten("avg_pool/flatten", x, "avg_pool/flatten", 1)
	x, n, err := c.dense(cls, cls+"/dense", x, ch, nil)
	if err != nil {
		return Arch{}, err
	}
	x = c.b.Softmax(cls, x, cls, 1)
	c.b.Output(x, onnx.Dim{Param: "N"}, onnx.Dim{Value: int64(n)})
	a.Classes, a.Output = n, cls
	return a, nil
}

// resnetLegacy converts keras_applications' resnet50.py (Keras 2.0 to
// 2.3; the fchollet/deep-learning-models v0.2 weights): conv1 (7x7/2 after
// a 3-pixel zero padding), bn_conv1, ReLU, a 3x3/2 max pool (after a
// 1-pixel pool1_pad when the file lists that layer), conv and identity
// blocks res{S}{b}_branch2{a,b,c} with bn{S}{b}_branch2{a,b,c}, the
// shortcut res{S}a_branch1 / bn{S}a_branch1, the stride on the 1x1
// convolutions, BatchNormalization epsilon 1e-3 (Keras's default); with
// top avg_pool and the softmax fc1000. Its activations and additions are
// unnamed in Keras (activation_1, add_1, ... numbered per session): their
// nodes get auxiliary names, and the structural aliases conv1_relu,
// pool1_pool and convS_blockB_out name them.
func (c *converter) resnetLegacy(o Options) (Arch, error) {
	if err := c.countBlocks(legacyResNet.probe); err != nil {
		return Arch{}, err
	}
	pad, err := c.pool1Pad(o.Pool1Pad)
	if err != nil {
		return Arch{}, err
	}
	a := Arch{Name: "ResNet50", Naming: NamingLegacy, BNEpsilon: epsilonDefault, InputSize: o.InputSize, Pool1Pad: pad}
	poolPad := 0
	if a.Pool1Pad {
		poolPad = 1 // zeros after a ReLU: see resnetKeras
	}
	return c.resnet(a, legacyResNet, poolPad)
}

// pool1Pad applies Options.Pool1Pad to a legacy ResNet50 file.
func (c *converter) pool1Pad(opt string) (bool, error) {
	switch opt {
	case "true":
		return true, nil
	case "false":
		return false, nil
	case "":
	default:
		return false, fmt.Errorf("pool1 padding %q: want true, false or empty (from the file)", opt)
	}
	if c.f.Layer("pool1_pad") != nil {
		return true, nil
	}
	// A list that names the layers without weights and has none between
	// bn_conv1 and the first block but an activation and a pool was saved
	// from the network without the padding.
	i := slices.IndexFunc(c.f.Layers, func(l Layer) bool { return l.Name == "bn_conv1" })
	j := slices.IndexFunc(c.f.Layers, func(l Layer) bool { return l.Name == "res2a_branch2a" })
	for k := i + 1; i >= 0 && k < j; k++ {
		if len(c.f.Layers[k].Weights) == 0 {
			return false, nil
		}
	}
	return true, nil
}

// KerasNames lists the node names of a converted graph that are Keras
// layer names (no '/'), in graph order.
func KerasNames(m *onnx.Model) []string {
	var out []string
	for _, n := range m.Graph.Nodes {
		if !strings.Contains(n.Name, "/") {
			out = append(out, n.Name)
		}
	}
	return out
}
