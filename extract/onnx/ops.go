package onnx

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
)

// An opDef implements one operator. infer validates the node (attributes,
// input count and shapes) and returns the output shapes; eval computes the
// outputs given inputs that passed infer. Absent optional inputs are nil
// in both.
type opDef struct {
	attrs []string // the attributes the implementation understands
	infer func(c *opCtx, in [][]int) ([][]int, error)
	eval  func(c *opCtx, in []*value, out [][]int) ([]*value, error)
}

var ops map[string]*opDef

func init() {
	ops = map[string]*opDef{
		"Add":                {nil, inferAdd, evalAdd},
		"AveragePool":        {[]string{"auto_pad", "ceil_mode", "count_include_pad", "kernel_shape", "pads", "strides"}, inferPool, evalPool},
		"BatchNormalization": {[]string{"epsilon", "momentum", "spatial", "is_test", "consumed_inputs", "training_mode"}, inferBatchNorm, evalBatchNorm},
		"Constant":           {[]string{"value", "value_float", "value_floats", "value_int", "value_ints"}, inferConstant, evalConstant},
		"Conv":               {[]string{"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"}, inferConv, evalConv},
		"Dropout":            {[]string{"ratio", "is_test", "seed"}, inferDropout, evalDropout},
		"Flatten":            {[]string{"axis"}, inferFlatten, evalReshaped},
		"Gemm":               {[]string{"alpha", "beta", "transA", "transB", "broadcast"}, inferGemm, evalGemm},
		"GlobalAveragePool":  {nil, inferGlobalPool, evalGlobalPool},
		"Identity":           {nil, inferIdentity, evalIdentity},
		"MaxPool":            {[]string{"auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "storage_order", "strides"}, inferPool, evalPool},
		"Relu":               {nil, inferUnary, evalRelu},
		"Reshape":            {[]string{"shape", "allowzero"}, inferReshape, evalReshaped},
		"Softmax":            {[]string{"axis"}, inferUnary, evalSoftmax},
	}
}

type opCtx struct {
	node  *Node
	opset int64
	// konst returns the value of a tensor known before evaluation
	// (everything during Run; initializers and Constant outputs in Shapes).
	konst func(name string) (*value, bool)
}

func (c *opCtx) def() (*opDef, error) {
	n := c.node
	if n.Domain != "" && n.Domain != "ai.onnx" {
		return nil, c.wrap(fmt.Errorf("operator %s of domain %q: %w", n.OpType, n.Domain, ErrUnsupported))
	}
	d := ops[n.OpType]
	if d == nil {
		return nil, c.wrap(fmt.Errorf("operator: %w (implemented: %v)", ErrUnsupported, Ops()))
	}
	for _, a := range n.Attrs {
		if !slices.Contains(d.attrs, a.Name) {
			return nil, c.wrap(fmt.Errorf("attribute %q: %w", a.Name, ErrUnsupported))
		}
	}
	return d, nil
}

func (c *opCtx) wrap(err error) error {
	return fmt.Errorf("node %q (%s): %w", c.node.Name, c.node.OpType, err)
}

func (c *opCtx) errorf(format string, args ...any) error {
	return c.wrap(fmt.Errorf(format, args...))
}

func (c *opCtx) attr(name string, want AttrType) (*Attribute, error) {
	a := c.node.Attr(name)
	if a != nil && a.Type != want {
		return nil, fmt.Errorf("attribute %q is %v, want %v", name, a.Type, want)
	}
	return a, nil
}

func (c *opCtx) int(name string, def int64) (int64, error) {
	a, err := c.attr(name, AttrInt)
	if a == nil || err != nil {
		return def, err
	}
	return a.I, nil
}

func (c *opCtx) float(name string, def float32) (float32, error) {
	a, err := c.attr(name, AttrFloat)
	if a == nil || err != nil {
		return def, err
	}
	return a.F, nil
}

// ints returns an INTS attribute of length n (any length when n < 0), or
// def when absent.
func (c *opCtx) ints(name string, n int, def []int) ([]int, error) {
	a, err := c.attr(name, AttrInts)
	if a == nil || err != nil {
		return def, err
	}
	if n >= 0 && len(a.Ints) != n {
		return nil, fmt.Errorf("attribute %s has %d values, want %d", name, len(a.Ints), n)
	}
	out := make([]int, len(a.Ints))
	for i, v := range a.Ints {
		if v > math.MaxInt32 || v < math.MinInt32 {
			return nil, fmt.Errorf("attribute %s value %d out of range", name, v)
		}
		out[i] = int(v)
	}
	return out, nil
}

func (c *opCtx) str(name, def string) (string, error) {
	a, err := c.attr(name, AttrString)
	if a == nil || err != nil {
		return def, err
	}
	return a.S, nil
}

// inputs checks the number of inputs present: the first min are required,
// at most max may be given.
func inputs(in [][]int, min, max int) error {
	if len(in) > max {
		return fmt.Errorf("%d inputs, want at most %d", len(in), max)
	}
	for i := 0; i < min; i++ {
		if i >= len(in) || in[i] == nil {
			return fmt.Errorf("%d inputs, want at least %d", len(in), min)
		}
	}
	return nil
}

func present(in [][]int, i int) bool { return i < len(in) && in[i] != nil }

// onlyFirstOutput rejects optional outputs the implementation does not
// produce (BatchNormalization's training statistics, MaxPool's indices).
func (c *opCtx) onlyFirstOutput() error {
	for _, o := range c.node.Outputs[1:] {
		if o != "" {
			return fmt.Errorf("optional output %q: %w", o, ErrUnsupported)
		}
	}
	return nil
}

func inferUnary(c *opCtx, in [][]int) ([][]int, error) {
	if err := inputs(in, 1, 1); err != nil {
		return nil, err
	}
	if c.node.OpType == "Softmax" {
		if _, _, _, err := softmaxAxis(c, in[0]); err != nil {
			return nil, err
		}
	}
	return [][]int{slices.Clone(in[0])}, nil
}

func inferIdentity(c *opCtx, in [][]int) ([][]int, error) { return inferUnary(c, in) }

func evalIdentity(c *opCtx, in []*value, out [][]int) ([]*value, error) {
	return []*value{{dims: out[0], data: in[0].data}}, nil
}

func evalRelu(c *opCtx, in []*value, out [][]int) ([]*value, error) {
	x := in[0].data
	y := make([]float64, len(x))
	for i, v := range x {
		if v < 0 {
			v = 0
		}
		y[i] = v
	}
	return []*value{{dims: out[0], data: y}}, nil
}

// broadcast returns the numpy-style broadcast of two shapes.
func broadcast(a, b []int) ([]int, error) {
	n := max(len(a), len(b))
	out := make([]int, n)
	for i := 0; i < n; i++ {
		da, db := 1, 1
		if j := len(a) - n + i; j >= 0 {
			da = a[j]
		}
		if j := len(b) - n + i; j >= 0 {
			db = b[j]
		}
		switch {
		case da == db, db == 1:
			out[i] = da
		case da == 1:
			out[i] = db
		default:
			return nil, fmt.Errorf("shapes %v and %v do not broadcast", a, b)
		}
	}
	return out, nil
}

// broadcastStrides gives, for each dimension of out, the stride of a
// tensor of shape in broadcast to out (0 along broadcast dimensions).
func broadcastStrides(in, out []int) []int {
	st := make([]int, len(out))
	s := 1
	for i := len(out) - 1; i >= 0; i-- {
		j := len(in) - len(out) + i
		if j >= 0 && in[j] != 1 {
			st[i] = s
		}
		if j >= 0 {
			s *= in[j]
		}
	}
	return st
}

// eachBroadcast calls f(i, ia, ib) for every element i of out with the
// matching indices into a and b.
func eachBroadcast(a, b, out []int, f func(i, ia, ib int)) {
	n, _ := numElements(out)
	if slices.Equal(a, out) && slices.Equal(b, out) {
		for i := 0; i < n; i++ {
			f(i, i, i)
		}
		return
	}
	sa, sb := broadcastStrides(a, out), broadcastStrides(b, out)
	idx := make([]int, len(out))
	ia, ib := 0, 0
	for i := 0; i < n; i++ {
		f(i, ia, ib)
		for d := len(out) - 1; d >= 0; d-- {
			idx[d]++
			ia += sa[d]
			ib += sb[d]
			if idx[d] < out[d] {
				break
			}
			ia -= sa[d] * out[d]
			ib -= sb[d] * out[d]
			idx[d] = 0
		}
	}
}

func inferAdd(c *opCtx, in [][]int) ([][]int, error) {
	if err := inputs(in, 2, 2); err != nil {
		return nil, err
	}
	out, err := broadcast(in[0], in[1])
	if err != nil {
		return nil, err
	}
	return [][]int{out}, nil
}

func evalAdd(c *opCtx, in []*value, out [][]int) ([]*value, error) {
	n, _ := numElements(out[0])
	y := make([]float64, n)
	a, b := in[0].data, in[1].data
	eachBroadcast(in[0].dims, in[1].dims, out[0], func(i, ia, ib int) { y[i] = a[ia] + b[ib] })
	return []*value{{dims: out[0], data: y}}, nil
}

// window is the geometry shared by Conv and the pools, 2-D only.
type window struct {
	kh, kw, sh, sw         int
	top, left, bott, right int
}

func (w window) outSize(h, wd int) (int, int, error) {
	oh := (h+w.top+w.bott-w.kh)/w.sh + 1
	ow := (wd+w.left+w.right-w.kw)/w.sw + 1
	if h+w.top+w.bott < w.kh || wd+w.left+w.right < w.kw {
		return 0, 0, fmt.Errorf("kernel %dx%d larger than padded input %dx%d", w.kh, w.kw, h+w.top+w.bott, wd+w.left+w.right)
	}
	return oh, ow, nil
}

// windowAttrs reads kernel (given), strides, pads, dilations and auto_pad.
func windowAttrs(c *opCtx, kernel []int) (window, error) {
	var w window
	autoPad, err := c.str("auto_pad", "NOTSET")
	if err != nil {
		return w, err
	}
	if autoPad != "NOTSET" && autoPad != "VALID" && autoPad != "" {
		return w, fmt.Errorf("auto_pad %s: %w", autoPad, ErrUnsupported)
	}
	dil, err := c.ints("dilations", 2, []int{1, 1})
	if err != nil {
		return w, err
	}
	if dil[0] != 1 || dil[1] != 1 {
		return w, fmt.Errorf("dilations %v: %w", dil, ErrUnsupported)
	}
	st, err := c.ints("strides", 2, []int{1, 1})
	if err != nil {
		return w, err
	}
	pads, err := c.ints("pads", 4, []int{0, 0, 0, 0})
	if err != nil {
		return w, err
	}
	if autoPad == "VALID" {
		pads = []int{0, 0, 0, 0}
	}
	if st[0] < 1 || st[1] < 1 {
		return w, fmt.Errorf("strides %v must be positive", st)
	}
	for _, p := range pads {
		if p < 0 {
			return w, fmt.Errorf("pads %v: negative padding: %w", pads, ErrUnsupported)
		}
	}
	if kernel[0] < 1 || kernel[1] < 1 {
		return w, fmt.Errorf("kernel %v must be positive", kernel)
	}
	// ONNX pads are [x1_begin, x2_begin, x1_end, x2_end].
	return window{kh: kernel[0], kw: kernel[1], sh: st[0], sw: st[1],
		top: pads[0], left: pads[1], bott: pads[2], right: pads[3]}, nil
}

func inferConv(c *opCtx, in [][]int) ([][]int, error) {
	if err := inputs(in, 2, 3); err != nil {
		return nil, err
	}
	x, w := in[0], in[1]
	if len(x) != 4 || len(w) != 4 {
		return nil, fmt.Errorf("input %v and weight %v: only 2-D convolution (4-D tensors): %w", x, w, ErrUnsupported)
	}
	group, err := c.int("group", 1)
	if err != nil {
		return nil, err
	}
	if group != 1 {
		return nil, fmt.Errorf("group %d: %w", group, ErrUnsupported)
	}
	if w[1] != x[1] {
		return nil, fmt.Errorf("weight %v has %d input channels, input %v has %d", w, w[1], x, x[1])
	}
	kernel, err := c.ints("kernel_shape", 2, w[2:])
	if err != nil {
		return nil, err
	}
	if !slices.Equal(kernel, w[2:]) {
		return nil, fmt.Errorf("kernel_shape %v does not match weight %v", kernel, w)
	}
	win, err := windowAttrs(c, kernel)
	if err != nil {
		return nil, err
	}
	if present(in, 2) && !slices.Equal(in[2], []int{w[0]}) {
		return nil, fmt.Errorf("bias %v, want [%d]", in[2], w[0])
	}
	oh, ow, err := win.outSize(x[2], x[3])
	if err != nil {
		return nil, err
	}
	return [][]int{{x[0], w[0], oh, ow}}, nil
}

// parallel runs f(0..n-1) on GOMAXPROCS goroutines. Each call writes its
// own part of the output, so the result does not depend on scheduling.
func parallel(n int, f func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 {
		for i := 0; i < n; i++ {
			f(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				f(i)
			}
		}()
	}
	wg.Wait()
}

// span returns the range [lo, hi) of output positions o whose input
// position o*s - pad + k lies in [0, n).
func span(n, pad, k, s, outN int) (int, int) {
	lo := 0
	if d := pad - k; d > 0 {
		lo = (d + s - 1) / s
	}
	hi := 0
	if d := n - 1 + pad - k; d >= 0 {
		hi = d/s + 1
	}
	return lo, min(hi, outN)
}

func evalConv(c *opCtx, in []*value, out [][]int) ([]*value, error) {
	kernel := in[1].dims[2:]
	win, _ := windowAttrs(c, kernel)
	x, w := in[0], in[1]
	N, C, H, W := x.dims[0], x.dims[1], x.dims[2], x.dims[3]
	M, OH, OW := out[0][1], out[0][2], out[0][3]
	kh, kw := win.kh, win.kw
	y := make([]float64, N*M*OH*OW)
	var bias []float64
	if len(in) > 2 && in[2] != nil {
		bias = in[2].data
	}
	parallel(N*M, func(job int) {
		n, m := job/M, job%M
		o := y[job*OH*OW : (job+1)*OH*OW]
		if bias != nil {
			for i := range o {
				o[i] = bias[m]
			}
		}
		for ci := 0; ci < C; ci++ {
			plane := x.data[(n*C+ci)*H*W : (n*C+ci+1)*H*W]
			for ky := 0; ky < kh; ky++ {
				oy0, oy1 := span(H, win.top, ky, win.sh, OH)
				for kx := 0; kx < kw; kx++ {
					wv := w.data[((m*C+ci)*kh+ky)*kw+kx]
					ox0, ox1 := span(W, win.left, kx, win.sw, OW)
					for oy := oy0; oy < oy1; oy++ {
						row := plane[(oy*win.sh-win.top+ky)*W:]
						orow := o[oy*OW:]
						ix := ox0*win.sw - win.left + kx
						for ox := ox0; ox < ox1; ox++ {
							orow[ox] += wv * row[ix]
							ix += win.sw
						}
					}
				}
			}
		}
	})
	return []*value{{dims: out[0], data: y}}, nil
}

func inferPool(c *opCtx, in [][]int) ([][]int, error) {
	if err := inputs(in, 1, 1); err != nil {
		return nil, err
	}
	if err := c.onlyFirstOutput(); err != nil {
		return nil, err
	}
	x := in[0]
	if len(x) != 4 {
		return nil, fmt.Errorf("input %v: only 2-D pooling (4-D tensors): %w", x, ErrUnsupported)
	}
	kernel, err := c.ints("kernel_shape", 2, nil)
	if err != nil {
		return nil, err
	}
	if kernel == nil {
		return nil, fmt.Errorf("no kernel_shape")
	}
	ceil, err := c.int("ceil_mode", 0)
	if err != nil {
		return nil, err
	}
	if ceil != 0 {
		return nil, fmt.Errorf("ceil_mode %d: %w", ceil, ErrUnsupported)
	}
	if _, err := c.int("count_include_pad", 0); err != nil {
		return nil, err
	}
	if _, err := c.int("storage_order", 0); err != nil {
		return nil, err
	}
	win, err := windowAttrs(c, kernel)
	if err != nil {
		return nil, err
	}
	// A window lying entirely in the padding has no defined value.
	if win.top >= win.kh || win.bott >= win.kh || win.left >= win.kw || win.right >= win.kw {
		return nil, fmt.Errorf("pads [%d %d %d %d] not smaller than kernel %v: %w", win.top, win.left, win.bott, win.right, kernel, ErrUnsupported)
	}
	oh, ow, err := win.outSize(x[2], x[3])
	if err != nil {
		return nil, err
	}
	return [][]int{{x[0], x[1], oh, ow}}, nil
}

func evalPool(c *opCtx, in []*value, out [][]int) ([]*value, error) {
	kernel, _ := c.ints("kernel_shape", 2, nil)
	win, _ := windowAttrs(c, kernel)
	includePad, _ := c.int("count_include_pad", 0)
	isMax := c.node.OpType == "MaxPool"
	x := in[0]
	N, C, H, W := x.dims[0], x.dims[1], x.dims[2], x.dims[3]
	OH, OW := out[0][2], out[0][3]
	y := make([]float64, N*C*OH*OW)
	parallel(N*C, func(job int) {
		plane := x.data[job*H*W : (job+1)*H*W]
		o := y[job*OH*OW : (job+1)*OH*OW]
		for oy := 0; oy < OH; oy++ {
			y0 := oy*win.sh - win.top
			y1 := y0 + win.kh
			for ox := 0; ox < OW; ox++ {
				x0 := ox*win.sw - win.left
				x1 := x0 + win.kw
				acc, count := 0.0, 0
				if isMax {
					acc = math.Inf(-1)
				}
				for iy := max(y0, 0); iy < min(y1, H); iy++ {
					for ix := max(x0, 0); ix < min(x1, W); ix++ {
						v := plane[iy*W+ix]
						if isMax {
							if v > acc || math.IsNaN(v) {
								acc = v
							}
						} else {
							acc += v
						}
						count++
					}
				}
				if !isMax {
					if includePad != 0 {
						// With ceil_mode 0 every window lies inside the
						// padded input, so the padded count is the kernel.
						count = win.kh * win.kw
					}
					acc /= float64(count)
				}
				o[oy*OW+ox] = acc
			}
		}
	})
	return []*value{{dims: out[0], data: y}}, nil
}

func inferGlobalPool(c *opCtx, in [][]int) ([][]int, error) {
	if err := inputs(in, 1, 1); err != nil {
		return nil, err
	}
	x := in[0]
	if len(x) < 3 {
		return nil, fmt.Errorf("input %v: want N x C x spatial", x)
	}
	out := []int{x[0], x[1]}
	for range x[2:] {
		out = append(out, 1)
	}
	return [][]int{out}, nil
}

func evalGlobalPool(c *opCtx, in []*value, out [][]int) ([]*value, error) {
	x := in[0]
	nc := x.dims[0] * x.dims[1]
	size := 1
	for _, d := range x.dims[2:] {
		size *= d
	}
	y := make([]float64, nc)
	for i := range y {
		s := 0.0
		for _, v := range x.data[i*size : (i+1)*size] {
			s += v
		}
		y[i] = s / float64(size)
	}
	return []*value{{dims: out[0], data: y}}, nil
}

func inferBatchNorm(c *opCtx, in [][]int) ([][]int, error) {
	if err := inputs(in, 5, 5); err != nil {
		return nil, err
	}
	if err := c.onlyFirstOutput(); err != nil {
		return nil, err
	}
	x := in[0]
	if len(x) < 2 {
		return nil, fmt.Errorf("input %v: want N x C x ...", x)
	}
	if spatial, err := c.int("spatial", 1); err != nil || spatial != 1 {
		if err == nil {
			err = fmt.Errorf("spatial %d: %w", spatial, ErrUnsupported)
		}
		return nil, err
	}
	if tm, err := c.int("training_mode", 0); err != nil || tm != 0 {
		if err == nil {
			err = fmt.Errorf("training_mode %d: %w", tm, ErrUnsupported)
		}
		return nil, err
	}
	if _, err := c.float("epsilon", 1e-5); err != nil {
		return nil, err
	}
	for i, name := range []string{"scale", "B", "mean", "var"} {
		if !slices.Equal(in[i+1], []int{x[1]}) {
			return nil, fmt.Errorf("%s %v, want [%d]", name, in[i+1], x[1])
		}
	}
	return [][]int{slices.Clone(x)}, nil
}

func evalBatchNorm(c *opCtx, in []*value, out [][]int) ([]*value, error) {
	eps32, _ := c.float("epsilon", 1e-5)
	eps := float64(eps32)
	x := in[0]
	C := x.dims[1]
	size := 1
	for _, d := range x.dims[2:] {
		size *= d
	}
	scale, bias, mean, vr := in[1].data, in[2].data, in[3].data, in[4].data
	y := make([]float64, len(x.data))
	for i := 0; i < len(x.data); i += size {
		ch := (i / size) % C
		for j := i; j < i+size; j++ {
			y[j] = (x.data[j]-mean[ch])/math.Sqrt(vr[ch]+eps)*scale[ch] + bias[ch]
		}
	}
	return []*value{{dims: out[0], data: y}}, nil
}

func inferFlatten(c *opCtx, in [][]int) ([][]int, error) {
	if err := inputs(in, 1, 1); err != nil {
		return nil, err
	}
	x := in[0]
	axis, err := c.int("axis", 1)
	if err != nil {
		return nil, err
	}
	if axis < 0 && c.opset < 11 {
		return nil, fmt.Errorf("negative axis %d needs opset 11", axis)
	}
	if axis < 0 {
		axis += int64(len(x))
	}
	if axis < 0 || axis > int64(len(x)) {
		return nil, fmt.Errorf("axis %d out of range for %v", axis, x)
	}
	a, _ := numElements(x[:axis])
	b, _ := numElements(x[axis:])
	return [][]int{{a, b}}, nil
}

// evalReshaped serves Flatten and Reshape: the data is unchanged.
func evalReshaped(c *opCtx, in []*value, out [][]int) ([]*value, error) {
	return []*value{{dims: out[0], data: in[0].data}}, nil
}

func inferReshape(c *opCtx, in [][]int) ([][]int, error) {
	var shape []int64
	if c.opset < 5 {
		if err := inputs(in, 1, 1); err != nil {
			return nil, err
		}
		a, err := c.attr("shape", AttrInts)
		if err != nil {
			return nil, err
		}
		if a == nil {
			return nil, fmt.Errorf("no shape attribute")
		}
		shape = a.Ints
	} else {
		if err := inputs(in, 2, 2); err != nil {
			return nil, err
		}
		v, ok := c.konst(c.node.Inputs[1])
		if !ok {
			return nil, fmt.Errorf("shape %q is not a constant: %w", c.node.Inputs[1], ErrUnsupported)
		}
		if len(v.dims) != 1 {
			return nil, fmt.Errorf("shape tensor has dims %v, want 1-D", v.dims)
		}
		for _, f := range v.data {
			shape = append(shape, int64(f))
		}
	}
	allowZero, err := c.int("allowzero", 0)
	if err != nil {
		return nil, err
	}
	x := in[0]
	total, _ := numElements(x)
	out := make([]int, len(shape))
	infer, known := -1, 1
	for i, s := range shape {
		switch {
		case s == -1:
			if infer >= 0 {
				return nil, fmt.Errorf("shape %v has more than one -1", shape)
			}
			infer = i
			continue
		case s == 0 && allowZero == 0:
			if i >= len(x) {
				return nil, fmt.Errorf("shape %v copies dimension %d of %v", shape, i, x)
			}
			out[i] = x[i]
		case s < 0 || s > math.MaxInt32:
			return nil, fmt.Errorf("shape %v has invalid value %d", shape, s)
		default:
			out[i] = int(s)
		}
		known *= out[i]
	}
	if infer >= 0 {
		if known == 0 || total%known != 0 {
			return nil, fmt.Errorf("cannot reshape %v to %v", x, shape)
		}
		out[infer] = total / known
		known *= out[infer]
	}
	if known != total {
		return nil, fmt.Errorf("cannot reshape %v (%d values) to %v", x, total, shape)
	}
	return [][]int{out}, nil
}

func inferGemm(c *opCtx, in [][]int) ([][]int, error) {
	if err := inputs(in, 2, 3); err != nil {
		return nil, err
	}
	a, b := in[0], in[1]
	if len(a) != 2 || len(b) != 2 {
		return nil, fmt.Errorf("inputs %v and %v, want 2-D", a, b)
	}
	ta, err := c.int("transA", 0)
	if err != nil {
		return nil, err
	}
	tb, err := c.int("transB", 0)
	if err != nil {
		return nil, err
	}
	for _, name := range []string{"alpha", "beta"} {
		if _, err := c.float(name, 1); err != nil {
			return nil, err
		}
	}
	M, K := a[0], a[1]
	if ta != 0 {
		M, K = K, M
	}
	K2, N := b[0], b[1]
	if tb != 0 {
		K2, N = N, K2
	}
	if K != K2 {
		return nil, fmt.Errorf("A %v (transA=%d) and B %v (transB=%d) do not multiply", a, ta, b, tb)
	}
	out := []int{M, N}
	if present(in, 2) {
		bc, err := broadcast(out, in[2])
		if err != nil || !slices.Equal(bc, out) {
			return nil, fmt.Errorf("C %v does not broadcast to %v", in[2], out)
		}
	}
	return [][]int{out}, nil
}

func evalGemm(c *opCtx, in []*value, out [][]int) ([]*value, error) {
	ta, _ := c.int("transA", 0)
	tb, _ := c.int("transB", 0)
	alpha32, _ := c.float("alpha", 1)
	beta32, _ := c.float("beta", 1)
	alpha, beta := float64(alpha32), float64(beta32)
	a, b := in[0], in[1]
	M, N := out[0][0], out[0][1]
	K := a.dims[1]
	if ta != 0 {
		K = a.dims[0]
	}
	// Element (i,k) of op(A) is at i*ai + k*ak; (k,j) of op(B) at k*bk + j*bj.
	ai, ak := K, 1
	if ta != 0 {
		ai, ak = 1, M
	}
	bk, bj := N, 1
	if tb != 0 {
		bk, bj = 1, K
	}
	y := make([]float64, M*N)
	parallel(N, func(j int) {
		for i := 0; i < M; i++ {
			s := 0.0
			pa, pb := i*ai, j*bj
			for k := 0; k < K; k++ {
				s += a.data[pa] * b.data[pb]
				pa += ak
				pb += bk
			}
			y[i*N+j] = alpha * s
		}
	})
	if len(in) > 2 && in[2] != nil {
		cv := in[2]
		eachBroadcast(out[0], cv.dims, out[0], func(i, _, ic int) { y[i] += beta * cv.data[ic] })
	}
	return []*value{{dims: out[0], data: y}}, nil
}

func inferDropout(c *opCtx, in [][]int) ([][]int, error) {
	if err := inputs(in, 1, 3); err != nil {
		return nil, err
	}
	if present(in, 2) {
		v, ok := c.konst(c.node.Inputs[2])
		if !ok {
			return nil, fmt.Errorf("training_mode %q is not a constant: %w", c.node.Inputs[2], ErrUnsupported)
		}
		if len(v.data) != 1 || v.data[0] != 0 {
			return nil, fmt.Errorf("training_mode true: %w", ErrUnsupported)
		}
	}
	// is_test (opsets 1-6) set to 0 explicitly asks for training behaviour.
	if isTest, err := c.int("is_test", 1); err != nil || isTest == 0 {
		if err == nil {
			err = fmt.Errorf("is_test 0: %w", ErrUnsupported)
		}
		return nil, err
	}
	out := [][]int{slices.Clone(in[0])}
	if len(c.node.Outputs) > 1 && c.node.Outputs[1] != "" {
		out = append(out, slices.Clone(in[0]))
	}
	return out, nil
}

// evalDropout is the identity; the optional mask output is all ones (no
// element dropped at inference).
func evalDropout(c *opCtx, in []*value, out [][]int) ([]*value, error) {
	res := []*value{{dims: out[0], data: in[0].data}}
	if len(out) > 1 {
		mask := make([]float64, len(in[0].data))
		for i := range mask {
			mask[i] = 1
		}
		res = append(res, &value{dims: out[1], data: mask})
	}
	return res, nil
}

// softmaxAxis returns the softmax geometry: outer × n × inner, normalising
// over n. Below opset 13 the input is coerced to 2-D at axis (default 1)
// and normalised over the whole second dimension; from 13 on along the
// single axis (default -1).
func softmaxAxis(c *opCtx, x []int) (outer, n, inner int, err error) {
	def := int64(1)
	if c.opset >= 13 {
		def = -1
	}
	axis, err := c.int("axis", def)
	if err != nil {
		return 0, 0, 0, err
	}
	r := int64(len(x))
	if axis < -r || axis >= r {
		return 0, 0, 0, fmt.Errorf("axis %d out of range for %v", axis, x)
	}
	if axis < 0 {
		axis += r
	}
	outer, _ = numElements(x[:axis])
	if c.opset < 13 {
		n, _ = numElements(x[axis:])
		return outer, n, 1, nil
	}
	inner, _ = numElements(x[axis+1:])
	return outer, x[axis], inner, nil
}

func evalSoftmax(c *opCtx, in []*value, out [][]int) ([]*value, error) {
	outer, n, inner, err := softmaxAxis(c, in[0].dims)
	if err != nil {
		return nil, err
	}
	x := in[0].data
	y := make([]float64, len(x))
	for o := 0; o < outer; o++ {
		for i := 0; i < inner; i++ {
			base := o*n*inner + i
			m := math.Inf(-1)
			for k := 0; k < n; k++ {
				m = math.Max(m, x[base+k*inner])
			}
			s := 0.0
			for k := 0; k < n; k++ {
				e := math.Exp(x[base+k*inner] - m)
				y[base+k*inner] = e
				s += e
			}
			for k := 0; k < n; k++ {
				y[base+k*inner] /= s
			}
		}
	}
	return []*value{{dims: out[0], data: y}}, nil
}

// constantTensor returns the value a Constant node holds.
func constantTensor(c *opCtx) (*value, error) {
	if len(c.node.Attrs) != 1 {
		return nil, fmt.Errorf("%d attributes, want exactly one value", len(c.node.Attrs))
	}
	a := c.node.Attrs[0]
	switch {
	case a.Name == "value" && a.Type == AttrTensor && a.T != nil:
		return tensorValue(a.T)
	case a.Name == "value_float" && a.Type == AttrFloat:
		return &value{dims: []int{}, data: []float64{float64(a.F)}}, nil
	case a.Name == "value_int" && a.Type == AttrInt:
		return &value{dims: []int{}, data: []float64{float64(a.I)}}, nil
	case a.Name == "value_floats" && a.Type == AttrFloats:
		v := &value{dims: []int{len(a.Floats)}}
		for _, f := range a.Floats {
			v.data = append(v.data, float64(f))
		}
		return v, nil
	case a.Name == "value_ints" && a.Type == AttrInts:
		v := &value{dims: []int{len(a.Ints)}}
		for _, i := range a.Ints {
			v.data = append(v.data, float64(i))
		}
		return v, nil
	}
	return nil, fmt.Errorf("attribute %q of type %v: %w", a.Name, a.Type, ErrUnsupported)
}

func inferConstant(c *opCtx, in [][]int) ([][]int, error) {
	if err := inputs(in, 0, 0); err != nil {
		return nil, err
	}
	v, err := constantTensor(c)
	if err != nil {
		return nil, err
	}
	return [][]int{v.dims}, nil
}

func evalConstant(c *opCtx, in []*value, out [][]int) ([]*value, error) {
	v, err := constantTensor(c)
	if err != nil {
		return nil, err
	}
	return []*value{v}, nil
}
