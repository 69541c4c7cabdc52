package extract

/*
#cgo CXXFLAGS: -std=c++14 -O2 -fopenmp
#cgo LDFLAGS: -ldnnl -fopenmp
#include <stdlib.h>
#include "dnnl.h"
*/
import "C"

import (
	"pipeline/errclass"

	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"unsafe"

	"pipeline/extract/onnx"
)

// ErrUnsupportedOp is returned (wrapped) when --engine onednn meets an ONNX
// operator, or an attribute value, the oneDNN engine does not implement.
var ErrUnsupportedOp = errclass.New(errclass.Usage, "not supported by the oneDNN engine")

// ErrNoBF16 is returned (wrapped) for --precision bf16 on a CPU without
// avx512_bf16 or AMX.
var ErrNoBF16 = errclass.New(errclass.Usage, "bf16 not available on this CPU")

// oneDNN's dnnl_cpu_isa_t values (dnnl_types.h, oneDNN 2.6).
const (
	isaAVX512CoreBF16 = 0xe7
	isaAVX512CoreAMX  = 0x3e7
)

var isaNames = map[int]string{0x1: "sse41", 0x3: "avx", 0x7: "avx2", 0xf: "avx512_mic", 0x1f: "avx512_mic_4ops",
	0x27: "avx512_core", 0x67: "avx512_core_vnni", 0xe7: "avx512_core_bf16", 0x3e7: "avx512_core_amx", 0x407: "avx2_vnni"}

// OneDNNISA is the instruction set oneDNN dispatches to on this CPU (it
// honours ONEDNN_MAX_CPU_ISA).
func OneDNNISA() string {
	v := int(C.dnx_isa())
	if s, ok := isaNames[v]; ok {
		return s
	}
	return fmt.Sprintf("isa 0x%x", v)
}

// OneDNNVersion is the linked oneDNN's version and threading runtime.
func OneDNNVersion() string { return gostr(C.dnx_version()) }

// bf16Support says whether oneDNN runs bf16 natively here, and if not, why.
// Tests replace it to check the refusal on a CPU that has bf16.
var bf16Support = func() (bool, string) {
	isa := int(C.dnx_isa())
	if isa&isaAVX512CoreBF16 == isaAVX512CoreBF16 || isa&isaAVX512CoreAMX == isaAVX512CoreAMX {
		return true, ""
	}
	return false, fmt.Sprintf("oneDNN's best instruction set on this CPU is %s; bf16 needs avx512_bf16 (avx512_core_bf16) or AMX (avx512_core_amx)", OneDNNISA())
}

// BF16Available reports whether --precision bf16 can run on this CPU, and
// what the CPU lacks when it cannot.
func BF16Available() (bool, string) { return bf16Support() }

// dnnlOp is one primitive of the oneDNN net, with the ONNX nodes it
// computes (a convolution with its folded BatchNormalization, fused Add and
// ReLU).
type dnnlOp struct {
	kind  string     // conv, bn, relu, pool, add, ip, flatten, softmax, concat
	nodes []int      // indices of the ONNX nodes it covers, the last one emits
	in    []string   // input tensors (canonical)
	out   string     // its output tensor
	node  *onnx.Node // the main node (Conv, Gemm, ...)
	bn    *onnx.Node // folded BatchNormalization
	sum   string     // fused residual input ("" = none)
	relu  bool
}

// dnnlPlan is what the engine will run: ops in execution order and the
// tensors to return.
type dnnlPlan struct {
	input    string
	ops      []*dnnlOp
	want     []string // canonical tensors of the requested outputs
	canon    map[string]string
	lastRead map[string]int
}

func unsupported(n *onnx.Node, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	return fmt.Errorf("ONNX node %q: %s: %w", n.Name, what, ErrUnsupportedOp)
}

func intsAttr(n *onnx.Node, name string, def []int) []int {
	a := n.Attr(name)
	if a == nil {
		return def
	}
	out := make([]int, len(a.Ints))
	for i, v := range a.Ints {
		out[i] = int(v)
	}
	return out
}

func intAttr(n *onnx.Node, name string, def int64) int64 {
	if a := n.Attr(name); a != nil {
		return a.I
	}
	return def
}

func floatAttr(n *onnx.Node, name string, def float32) float32 {
	if a := n.Attr(name); a != nil {
		return a.F
	}
	return def
}

// planDNNL decides how the nodes that the wanted tensors depend on map to
// oneDNN primitives. It needs only the graph (weights may be absent), so
// `--engine auto` can decide before loading them. An operator or attribute
// the engine does not implement is an error wrapping ErrUnsupportedOp that
// names it.
func planDNNL(m *onnx.Model, input string, want []string) (*dnnlPlan, error) {
	pl := newPlanner(m.Graph, input)
	need, err := pl.needed(want)
	if err != nil {
		return nil, err
	}
	// First pass: check every needed node and fold pass-through ones.
	var nodes []int
	for i, n := range pl.g.Nodes {
		if !need[i] {
			continue
		}
		alias, err := pl.check(n)
		if err != nil {
			return nil, err
		}
		if !alias {
			nodes = append(nodes, i)
		}
	}
	p := pl.p
	for _, t := range want {
		c := pl.canon(t)
		if c == input {
			return nil, fmt.Errorf("tensor %q is the network input: %w", t, ErrUnsupportedOp)
		}
		p.want = append(p.want, c)
		pl.wanted[c] = true
	}
	pl.consumers(nodes)
	pl.group(nodes)
	pl.skipFlattens()
	pl.order()
	return p, nil
}

// planner holds what planDNNL learns about the graph while it plans.
type planner struct {
	g      *onnx.Graph
	p      *dnnlPlan
	inits  map[string]*onnx.Tensor
	rank   map[string]int     // rank of each computed tensor
	wanted map[string]bool    // canonical requested tensors
	cons   map[string][]int   // readers of each canonical tensor, among the needed nodes
	done   map[int]bool       // nodes already in an op
	byNode map[*onnx.Node]int // node index
}

func newPlanner(g *onnx.Graph, input string) *planner {
	pl := &planner{g: g, inits: map[string]*onnx.Tensor{}, rank: map[string]int{input: 4}, wanted: map[string]bool{},
		cons: map[string][]int{}, done: map[int]bool{}, byNode: map[*onnx.Node]int{},
		p: &dnnlPlan{input: input, canon: map[string]string{}, lastRead: map[string]int{}}}
	for _, t := range g.Initializers {
		pl.inits[t.Name] = t
	}
	for i, n := range g.Nodes {
		pl.byNode[n] = i
	}
	return pl
}

// canon follows pass-through aliases to the tensor that holds the values.
func (pl *planner) canon(t string) string {
	for {
		c, ok := pl.p.canon[t]
		if !ok {
			return t
		}
		t = c
	}
}

// needed marks the nodes the wanted tensors depend on.
func (pl *planner) needed(want []string) ([]bool, error) {
	g := pl.g
	prod := map[string]int{} // tensor -> producing node index
	for i, n := range g.Nodes {
		for _, o := range n.Outputs {
			prod[o] = i
		}
	}
	need := make([]bool, len(g.Nodes))
	stack := slices.Clone(want)
	for len(stack) > 0 {
		t := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if t == pl.p.input || pl.inits[t] != nil {
			continue
		}
		i, ok := prod[t]
		if !ok {
			return nil, fmt.Errorf("tensor %q: not produced by any node", t)
		}
		if need[i] {
			continue
		}
		need[i] = true
		stack = append(stack, g.Nodes[i].Inputs...)
	}
	return need, nil
}

func (pl *planner) isConst(n *onnx.Node, k int) bool {
	return k < len(n.Inputs) && pl.inits[n.Inputs[k]] != nil
}

// inRank is the rank of a node's k-th input (0 when not computed).
func (pl *planner) inRank(n *onnx.Node, k int) int { return pl.rank[pl.canon(n.Inputs[k])] }

// check checks that the engine implements node n, records the rank of its
// output, and reports whether n is a pass-through (an alias of its input).
func (pl *planner) check(n *onnx.Node) (alias bool, err error) {
	if n.Domain != "" && n.Domain != "ai.onnx" {
		return false, unsupported(n, "operator %s of domain %s", n.OpType, n.Domain)
	}
	if len(n.Inputs) == 0 {
		return false, unsupported(n, "operator %s without inputs", n.OpType)
	}
	if !pl.isConst(n, 0) && pl.inRank(n, 0) == 0 && n.OpType != "Concat" {
		return false, unsupported(n, "operator %s reads %q, which is not computed by the engine", n.OpType, n.Inputs[0])
	}
	out := n.Outputs[0]
	r := pl.inRank(n, 0)
	switch n.OpType {
	case "Dropout", "Identity":
		pl.p.canon[out] = pl.canon(n.Inputs[0])
		return true, nil
	case "Flatten", "Reshape":
		return pl.checkFlatten(n)
	case "Conv":
		err = pl.checkConv(n)
	case "BatchNormalization":
		err = pl.checkBN(n)
	case "Relu":
	case "MaxPool", "AveragePool", "GlobalAveragePool":
		err = checkPool(n, r)
	case "Add":
		if len(n.Inputs) != 2 || pl.isConst(n, 0) || pl.isConst(n, 1) || pl.inRank(n, 1) != r {
			err = unsupported(n, "Add with a constant or broadcast operand")
		}
	case "Gemm", "MatMul":
		err = pl.checkIP(n)
		r = 2
	case "Softmax":
		if axis := intAttr(n, "axis", 1); r != 2 || (axis != 1 && axis != -1) {
			err = unsupported(n, "Softmax over axis %d of a rank-%d tensor", axis, r)
		}
	case "Concat":
		err = pl.checkConcat(n)
	default:
		err = unsupported(n, "operator %s", n.OpType)
	}
	pl.rank[out] = r
	return false, err
}

// checkFlatten checks a Flatten (axis 1) or Reshape [0, -1]; of a 2-D
// tensor it is an alias.
func (pl *planner) checkFlatten(n *onnx.Node) (bool, error) {
	r := pl.inRank(n, 0)
	if n.OpType == "Flatten" {
		axis := intAttr(n, "axis", 1)
		if axis < 0 {
			axis += int64(r)
		}
		if axis != 1 {
			return false, unsupported(n, "Flatten with axis %d", intAttr(n, "axis", 1))
		}
	} else {
		var shape []int64
		if a := n.Attr("shape"); a != nil {
			shape = a.Ints
		} else if pl.isConst(n, 1) {
			shape = pl.inits[n.Inputs[1]].Int64
		}
		if len(shape) != 2 || !(shape[0] == 0 && shape[1] == -1) {
			return false, unsupported(n, "Reshape to %v (only [0, -1], a flatten, is implemented)", shape)
		}
	}
	if r == 2 {
		pl.p.canon[n.Outputs[0]] = pl.canon(n.Inputs[0])
		return true, nil
	}
	pl.rank[n.Outputs[0]] = 2
	return false, nil
}

func (pl *planner) checkConv(n *onnx.Node) error {
	if !pl.isConst(n, 1) || (len(n.Inputs) > 2 && n.Inputs[2] != "" && !pl.isConst(n, 2)) {
		return unsupported(n, "Conv with computed weights")
	}
	if w := pl.inits[n.Inputs[1]]; len(w.Dims) != 4 || pl.inRank(n, 0) != 4 {
		return unsupported(n, "Conv of weights %v (only 2-D convolution)", w.Dims)
	}
	if ap := n.Attr("auto_pad"); ap != nil && ap.S != "" && ap.S != "NOTSET" && ap.S != "VALID" {
		return unsupported(n, "Conv with auto_pad %s", ap.S)
	}
	return nil
}

func (pl *planner) checkBN(n *onnx.Node) error {
	for k := 1; k <= 4; k++ {
		if !pl.isConst(n, k) {
			return unsupported(n, "BatchNormalization with computed statistics")
		}
	}
	if intAttr(n, "training_mode", 0) != 0 || intAttr(n, "spatial", 1) != 1 || len(n.Outputs) > 1 && n.Outputs[1] != "" {
		return unsupported(n, "BatchNormalization in training mode")
	}
	if r := pl.inRank(n, 0); r != 4 {
		return unsupported(n, "BatchNormalization of a rank-%d tensor", r)
	}
	return nil
}

// checkPool checks a pooling node whose input has rank r.
func checkPool(n *onnx.Node, r int) error {
	if n.OpType == "GlobalAveragePool" {
		if r != 4 {
			return unsupported(n, "GlobalAveragePool of a rank-%d tensor", r)
		}
		return nil
	}
	if intAttr(n, "ceil_mode", 0) != 0 {
		return unsupported(n, "%s with ceil_mode", n.OpType)
	}
	if ap := n.Attr("auto_pad"); ap != nil && ap.S != "" && ap.S != "NOTSET" && ap.S != "VALID" {
		return unsupported(n, "%s with auto_pad %s", n.OpType, ap.S)
	}
	if d := intsAttr(n, "dilations", nil); d != nil && (d[0] != 1 || d[1] != 1) {
		return unsupported(n, "%s with dilations %v", n.OpType, d)
	}
	if len(intsAttr(n, "kernel_shape", nil)) != 2 || r != 4 {
		return unsupported(n, "%s that is not 2-D", n.OpType)
	}
	if len(n.Outputs) > 1 && n.Outputs[1] != "" {
		return unsupported(n, "MaxPool with indices")
	}
	return nil
}

// checkIP checks a Gemm or MatMul that can be an inner product.
func (pl *planner) checkIP(n *onnx.Node) error {
	r := pl.inRank(n, 0)
	if n.OpType == "MatMul" {
		if !pl.isConst(n, 1) || len(pl.inits[n.Inputs[1]].Dims) != 2 || r != 2 {
			return unsupported(n, "MatMul that is not a fully connected layer")
		}
		return nil
	}
	if !pl.isConst(n, 1) || (len(n.Inputs) > 2 && n.Inputs[2] != "" && !pl.isConst(n, 2)) {
		return unsupported(n, "Gemm with a computed B or C")
	}
	if intAttr(n, "transA", 0) != 0 || r != 2 {
		return unsupported(n, "Gemm with transA or a rank-%d A", r)
	}
	if len(n.Inputs) > 2 && n.Inputs[2] != "" {
		if c := pl.inits[n.Inputs[2]]; c.NumElements() != c.Dims[len(c.Dims)-1] {
			return unsupported(n, "Gemm with C of dims %v (only a bias vector)", c.Dims)
		}
	}
	return nil
}

func (pl *planner) checkConcat(n *onnx.Node) error {
	r := pl.inRank(n, 0)
	for k := range n.Inputs {
		if pl.isConst(n, k) || pl.inRank(n, k) != r || r == 0 {
			return unsupported(n, "Concat of constants or tensors of different rank")
		}
	}
	axis := intAttr(n, "axis", 0)
	if axis < 0 {
		axis += int64(r)
	}
	if axis != 1 {
		return unsupported(n, "Concat over axis %d", intAttr(n, "axis", 0))
	}
	return nil
}

// consumers records the readers of each canonical tensor among the nodes.
func (pl *planner) consumers(nodes []int) {
	for _, i := range nodes {
		for _, in := range pl.g.Nodes[i].Inputs {
			if pl.inits[in] == nil && in != "" {
				c := pl.canon(in)
				pl.cons[c] = append(pl.cons[c], i)
			}
		}
	}
}

// only returns the single reader of t when it is an op of type op not yet
// grouped, and t is not requested (a requested tensor is never fused away).
func (pl *planner) only(t, op string) *onnx.Node {
	if pl.wanted[t] || len(pl.cons[t]) != 1 {
		return nil
	}
	if n := pl.g.Nodes[pl.cons[t][0]]; n.OpType == op && !pl.done[pl.cons[t][0]] {
		return n
	}
	return nil
}

// take adds node x to op: x's output becomes op's.
func (pl *planner) take(op *dnnlOp, x *onnx.Node) {
	op.nodes = append(op.nodes, pl.byNode[x])
	pl.done[pl.byNode[x]] = true
	op.out = x.Outputs[0]
}

// takeRelu fuses the ReLU that alone reads op's output.
func (pl *planner) takeRelu(op *dnnlOp) {
	if r := pl.only(op.out, "Relu"); r != nil {
		op.relu = true
		pl.take(op, r)
	}
}

// opKinds maps ONNX operators to the engine's primitive kinds.
var opKinds = map[string]string{"Conv": "conv", "BatchNormalization": "bn", "Add": "add", "Gemm": "ip", "MatMul": "ip",
	"Relu": "relu", "MaxPool": "pool", "AveragePool": "pool", "GlobalAveragePool": "pool", "Flatten": "flatten",
	"Reshape": "flatten", "Softmax": "softmax", "Concat": "concat"}

// group groups the checked nodes into primitives: a convolution takes its
// BatchNormalization, residual Add and ReLU; BN, Add and inner products
// their ReLU.
func (pl *planner) group(nodes []int) {
	for _, i := range nodes {
		if pl.done[i] {
			continue
		}
		n := pl.g.Nodes[i]
		op := &dnnlOp{node: n, nodes: []int{i}, out: n.Outputs[0], kind: opKinds[n.OpType]}
		for k, in := range n.Inputs {
			if in != "" && pl.inits[in] == nil && (k == 0 || n.OpType == "Add" || n.OpType == "Concat") {
				op.in = append(op.in, pl.canon(in))
			}
		}
		switch op.kind {
		case "conv":
			pl.fuseIntoConv(op)
		case "bn", "add", "ip":
			pl.takeRelu(op)
		}
		pl.done[i] = true
		pl.p.ops = append(pl.p.ops, op)
	}
}

// fuseIntoConv folds the BatchNormalization after a convolution, then the
// residual Add (a sum post-op), then the ReLU.
func (pl *planner) fuseIntoConv(op *dnnlOp) {
	if bn := pl.only(op.out, "BatchNormalization"); bn != nil {
		op.bn = bn
		pl.take(op, bn)
	}
	if add := pl.only(op.out, "Add"); add != nil {
		other := pl.canon(add.Inputs[0])
		if other == op.out {
			other = pl.canon(add.Inputs[1])
		}
		if other != op.out {
			op.sum = other
			op.in = append(op.in, other)
			pl.take(op, add)
		}
	}
	pl.takeRelu(op)
}

// skipFlattens drops a flatten whose only readers are inner products: they
// read the 4-D tensor (their weights viewed as O x C x H x W, the same
// order).
func (pl *planner) skipFlattens() {
	var keep []*dnnlOp
	for _, op := range pl.p.ops {
		if op.kind == "flatten" && !pl.wanted[op.out] && len(pl.cons[op.out]) > 0 {
			allIP := true
			for _, c := range pl.cons[op.out] {
				t := pl.g.Nodes[c].OpType
				allIP = allIP && (t == "Gemm" || t == "MatMul")
			}
			if allIP {
				pl.p.canon[op.out] = op.in[0]
				continue
			}
		}
		keep = append(keep, op)
	}
	pl.p.ops = keep
}

// order canonicalises the ops' inputs and the requested tensors, sorts the
// ops to run at the position of their last node (a fused Add may need a
// shortcut computed after the convolution's own node), and records each
// tensor's last reader.
func (pl *planner) order() {
	p := pl.p
	for _, op := range p.ops {
		for k := range op.in {
			op.in[k] = pl.canon(op.in[k])
		}
	}
	for k := range p.want {
		p.want[k] = pl.canon(p.want[k])
	}
	slices.SortStableFunc(p.ops, func(a, b *dnnlOp) int { return slices.Max(a.nodes) - slices.Max(b.nodes) })
	for i, op := range p.ops {
		for _, in := range op.in {
			p.lastRead[in] = i
		}
	}
}

// dnnlNet is a built oneDNN network.
type dnnlNet struct {
	p     C.DnxNet
	batch int
	inLen int
	sizes []int // per image, per output
	prims []string
}

func (d *dnnlNet) Close() {
	if d != nil && d.p != nil {
		C.dnx_close(d.p)
		d.p = nil
	}
}

// dnnlWeights gives the builder the initializers' payloads as float32:
// from a mapped file (views of the mapping, released as soon as their op is
// built) or from tensors decoded in Go memory (tests, small models).
type dnnlWeights struct {
	inits map[string]*onnx.Tensor
	mp    *onnx.Mapped // nil: the payloads are in the tensors
}

func newDNNLWeights(g *onnx.Graph, mp *onnx.Mapped) *dnnlWeights {
	w := &dnnlWeights{inits: map[string]*onnx.Tensor{}, mp: mp}
	for _, t := range g.Initializers {
		w.inits[t.Name] = t
	}
	return w
}

func (w *dnnlWeights) tensor(name string) (*onnx.Tensor, error) {
	t := w.inits[name]
	if t == nil {
		return nil, fmt.Errorf("initializer %q missing", name)
	}
	return t, nil
}

// get returns an initializer's values; the slice must not be modified.
func (w *dnnlWeights) get(name string) ([]float32, error) {
	t, err := w.tensor(name)
	if err != nil {
		return nil, err
	}
	if w.mp != nil {
		return w.mp.Float32(t)
	}
	return t.Float32s()
}

// getInto is get for one large tensor at a time: a payload that is not
// 4-byte aligned in the mapped file (most are: protobuf framing puts them
// anywhere) is copied into *buf, grown as needed and reused for the next
// op, instead of into fresh memory per tensor (which the kernel would zero
// first). The result is valid until the next call with the same buf.
func (w *dnnlWeights) getInto(name string, buf *[]float32) ([]float32, error) {
	t, err := w.tensor(name)
	if err != nil {
		return nil, err
	}
	if w.mp == nil {
		return t.Float32s()
	}
	b, ok := w.mp.UnalignedFloat32(t)
	if !ok {
		return w.mp.Float32(t)
	}
	n := len(b) / 4
	if cap(*buf) < n {
		*buf = make([]float32, n)
	}
	v := (*buf)[:n]
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), len(b)), b)
	return v, nil
}

// release drops an initializer once oneDNN holds its own copy: its pages
// leave the resident set (mapped file), or its Go payload is dropped.
func (w *dnnlWeights) release(name string) int {
	t := w.inits[name]
	if t == nil || t.NumElements() <= 1024 {
		return 0
	}
	if w.mp != nil {
		w.mp.Release(t)
		return 0
	}
	if t.Float32 == nil && t.Float64 == nil {
		return 0
	}
	t.Float32, t.Float64 = nil, nil
	return 4 * t.NumElements()
}

func fptr(v []float32) *C.float {
	if len(v) == 0 {
		return nil
	}
	return (*C.float)(unsafe.Pointer(&v[0]))
}

// dnnlBuilder adds a plan's ops to a oneDNN net, one at a time, so that
// each op's weights are read, reordered by oneDNN into its own layout, and
// released before the next op's are read.
type dnnlBuilder struct {
	np   C.DnxNet
	g    *onnx.Graph
	p    *dnnlPlan
	w    *dnnlWeights
	ids  map[string]C.int
	cerr *C.char
	// buf holds one convolution's weights (an aligned copy, BatchNorm
	// folded in) until oneDNN has reordered them (dnx_conv copies before it
	// returns), and is reused by the next: ResNet-50's 94 MB of weights are
	// not copied into fresh memory, zeroed and collected one op at a time.
	buf []float32
}

// buildDNNL builds the plan on oneDNN for graph g, reading the weights
// from w. Weights no op reads are never touched, and each op's weights are
// released once oneDNN has reordered them, so that the weights are held
// about once while the net is built.
func buildDNNL(g *onnx.Graph, w *dnnlWeights, p *dnnlPlan, c, h, wd, batch, threads int, bf16 bool) (_ *dnnlNet, err error) {
	var cerrp *C.char
	np := C.dnx_new(cbool(bf16), C.int(batch), C.int(threads), &cerrp)
	if np == nil {
		return nil, dnnlErr(cerrp)
	}
	d := &dnnlNet{p: np, batch: batch, inLen: c * h * wd}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	if C.dnx_input(np, C.int(c), C.int(h), C.int(wd), &cerrp) != 0 {
		return nil, dnnlErr(cerrp)
	}
	b := &dnnlBuilder{np: np, g: g, p: p, w: w, ids: map[string]C.int{p.input: 0}}
	w.dropUnused(g, p)
	freed := 0
	for i, op := range p.ops {
		if err := b.add(i, op); err != nil {
			return nil, err
		}
		for _, k := range op.nodes {
			for _, in := range g.Nodes[k].Inputs {
				freed += w.release(in)
			}
		}
		// Give the Go copies back to the OS every 64 MB.
		if freed > 64<<20 {
			debug.FreeOSMemory()
			freed = 0
		}
	}
	if err := b.outputs(d); err != nil {
		return nil, err
	}
	debug.FreeOSMemory()
	return d, nil
}

// dropUnused drops the Go payloads of weights no op reads (layers after the
// requested ones).
func (w *dnnlWeights) dropUnused(g *onnx.Graph, p *dnnlPlan) {
	used := map[string]bool{}
	for _, op := range p.ops {
		for _, k := range op.nodes {
			for _, in := range g.Nodes[k].Inputs {
				used[in] = true
			}
		}
	}
	for _, t := range g.Initializers {
		if !used[t.Name] {
			t.Float32, t.Float64 = nil, nil
		}
	}
}

// add adds op number i of the plan to the net.
func (b *dnnlBuilder) add(i int, op *dnnlOp) error {
	n := op.node
	for _, in := range op.in {
		if _, ok := b.ids[in]; !ok {
			return fmt.Errorf("ONNX node %q reads %q before it is computed", n.Name, in)
		}
	}
	src := b.ids[op.in[0]]
	var (
		id  C.int
		err error
	)
	switch op.kind {
	case "conv":
		id, err = b.conv(i, op)
	case "bn":
		id, err = b.bn(op)
	case "relu":
		id = C.dnx_relu(b.np, src, &b.cerr)
	case "pool":
		id = b.pool(op)
	case "add":
		id = C.dnx_add(b.np, src, b.ids[op.in[1]], cbool(op.relu), &b.cerr)
	case "ip":
		id, err = b.ip(op)
	case "flatten":
		id = C.dnx_flatten(b.np, src, &b.cerr)
	case "softmax":
		id = C.dnx_softmax(b.np, src, &b.cerr)
	case "concat":
		srcs := make([]C.int, len(op.in))
		for k, in := range op.in {
			srcs[k] = b.ids[in]
		}
		id = C.dnx_concat(b.np, &srcs[0], C.int(len(srcs)), &b.cerr)
	}
	if err != nil {
		return err
	}
	if id < 0 {
		return fmt.Errorf("ONNX node %q (%s): %w", n.Name, n.OpType, dnnlErr(b.cerr))
	}
	b.ids[op.out] = id
	return nil
}

// conv adds a convolution with its folded BatchNormalization, fused sum and
// ReLU.
func (b *dnnlBuilder) conv(i int, op *dnnlOp) (C.int, error) {
	n := op.node
	wt, err := b.w.tensor(n.Inputs[1])
	if err != nil {
		return -1, err
	}
	wv, err := b.w.getInto(n.Inputs[1], &b.buf)
	if err != nil {
		return -1, err
	}
	oc := wt.Dims[0]
	var bias []float32
	if len(n.Inputs) > 2 && n.Inputs[2] != "" {
		if bias, err = b.w.get(n.Inputs[2]); err != nil {
			return -1, err
		}
	}
	if op.bn != nil {
		// In place when wv is already the copy in b.buf.
		if cap(b.buf) < len(wv) {
			b.buf = make([]float32, len(wv))
		}
		if wv, bias, err = foldBN(op.bn, b.w, wv, bias, b.buf[:len(wv)], oc); err != nil {
			return -1, err
		}
	}
	pads := intsAttr(n, "pads", []int{0, 0, 0, 0})
	if ap := n.Attr("auto_pad"); ap != nil && ap.S == "VALID" {
		pads = []int{0, 0, 0, 0}
	}
	st := intsAttr(n, "strides", []int{1, 1})
	dil := intsAttr(n, "dilations", []int{1, 1})
	if len(pads) != 4 || len(st) != 2 || len(dil) != 2 {
		return -1, unsupported(n, "Conv with pads %v strides %v dilations %v", pads, st, dil)
	}
	cp, cs, cd := cints(pads), cints(st), cints(dil)
	sum, inplace := C.int(-1), C.int(0)
	if op.sum != "" {
		sum = b.ids[op.sum]
		if b.p.lastRead[op.sum] == i && !slices.Contains(b.p.want, op.sum) && op.sum != b.p.input {
			inplace = 1
		}
	}
	id := C.dnx_conv(b.np, b.ids[op.in[0]], C.int(oc), C.int(wt.Dims[2]), C.int(wt.Dims[3]), &cs[0], &cp[0], &cd[0],
		C.int(intAttr(n, "group", 1)), fptr(wv), fptr(bias), sum, inplace, cbool(op.relu), &b.cerr)
	runtime.KeepAlive(wv)
	runtime.KeepAlive(bias)
	return id, nil
}

// bn adds a BatchNormalization that follows no convolution.
func (b *dnnlBuilder) bn(op *dnnlOp) (C.int, error) {
	n := op.node
	var v [4][]float32
	for k := range v {
		var err error
		if v[k], err = b.w.get(n.Inputs[k+1]); err != nil {
			return -1, err
		}
	}
	// scale, B, mean, var → mean, var, scale, shift
	id := C.dnx_bn(b.np, b.ids[op.in[0]], fptr(v[2]), fptr(v[3]), fptr(v[0]), fptr(v[1]),
		C.float(floatAttr(n, "epsilon", 1e-5)), cbool(op.relu), &b.cerr)
	runtime.KeepAlive(v)
	return id, nil
}

// pool adds a MaxPool, AveragePool or GlobalAveragePool.
func (b *dnnlBuilder) pool(op *dnnlOp) C.int {
	n := op.node
	src := b.ids[op.in[0]]
	kind, kh, kw := C.DNX_POOL_MAX, 0, 0
	pads, st := []int{0, 0, 0, 0}, []int{1, 1}
	var dims [8]C.int
	C.dnx_tensor_dims(b.np, src, &dims[0])
	switch n.OpType {
	case "GlobalAveragePool":
		kind, kh, kw = C.DNX_POOL_AVG_EXCL, int(dims[1]), int(dims[2])
	default:
		k := intsAttr(n, "kernel_shape", nil)
		kh, kw = k[0], k[1]
		pads = intsAttr(n, "pads", pads)
		if ap := n.Attr("auto_pad"); ap != nil && ap.S == "VALID" {
			pads = []int{0, 0, 0, 0}
		}
		st = intsAttr(n, "strides", st)
		if n.OpType == "AveragePool" {
			kind = C.DNX_POOL_AVG_EXCL
			if intAttr(n, "count_include_pad", 0) != 0 {
				kind = C.DNX_POOL_AVG_INCL
			}
		}
	}
	cp, cs := cints(pads), cints(st)
	return C.dnx_pool(b.np, src, C.int(kind), C.int(kh), C.int(kw), &cs[0], &cp[0], &b.cerr)
}

// ip adds an inner product (Gemm or MatMul) with its fused ReLU.
func (b *dnnlBuilder) ip(op *dnnlOp) (C.int, error) {
	src := b.ids[op.in[0]]
	k := int(C.dnx_tensor_size(b.np, src))
	if raw, oc, ok := b.unalignedIP(op.node, k); ok {
		// Weights usable as they are but misaligned in the mapped file: C
		// reorders them in slabs, without an aligned copy of the whole.
		bias, err := ipBias(op.node, b.w, oc)
		if err != nil {
			return -1, err
		}
		id := C.dnx_ip(b.np, src, C.int(oc), (*C.float)(unsafe.Pointer(&raw[0])), 1, fptr(bias), cbool(op.relu), &b.cerr)
		runtime.KeepAlive(bias)
		return id, nil
	}
	wv, bias, oc, err := ipWeights(op.node, b.w, k)
	if err != nil {
		return -1, err
	}
	id := C.dnx_ip(b.np, src, C.int(oc), fptr(wv), 0, fptr(bias), cbool(op.relu), &b.cerr)
	runtime.KeepAlive(wv)
	runtime.KeepAlive(bias)
	return id, nil
}

// unalignedIP returns the mapped bytes of a Gemm's B when they can be the
// inner product's weights as stored (transB, alpha 1, [O, k]) and are
// misaligned in the file.
func (b *dnnlBuilder) unalignedIP(n *onnx.Node, k int) ([]byte, int, bool) {
	if b.w.mp == nil || n.OpType != "Gemm" || intAttr(n, "transB", 0) == 0 || floatAttr(n, "alpha", 1) != 1 {
		return nil, 0, false
	}
	bt, err := b.w.tensor(n.Inputs[1])
	if err != nil || len(bt.Dims) != 2 || bt.Dims[1] != k {
		return nil, 0, false
	}
	raw, ok := b.w.mp.UnalignedFloat32(bt)
	return raw, bt.Dims[0], ok
}

// outputs declares the requested tensors and records their sizes and the
// primitives oneDNN chose.
func (b *dnnlBuilder) outputs(d *dnnlNet) error {
	for _, t := range b.p.want {
		id, ok := b.ids[t]
		if !ok {
			return fmt.Errorf("tensor %q not computed by the oneDNN plan", t)
		}
		if C.dnx_output(b.np, id, &b.cerr) != 0 {
			return dnnlErr(b.cerr)
		}
		d.sizes = append(d.sizes, int(C.dnx_tensor_size(b.np, id)))
	}
	for _, line := range strings.Split(strings.TrimSpace(gostr(C.dnx_describe(b.np))), "\n") {
		d.prims = append(d.prims, line)
	}
	return nil
}

func cints(v []int) []C.int {
	out := make([]C.int, len(v))
	for i, x := range v {
		out[i] = C.int(x)
	}
	return out
}

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

func dnnlErr(p *C.char) error {
	if p == nil {
		return errors.New("oneDNN failed without a message")
	}
	defer C.dnx_free(unsafe.Pointer(p))
	return errors.New(C.GoString(p))
}

// foldBN folds an inference BatchNormalization into the convolution before
// it, in float64: w' = w·s, b' = (b − mean)·s + shift with s = scale/√(var+ε).
// The folded weights are written to nw (len(w) values; nw may be w).
func foldBN(bn *onnx.Node, ws *dnnlWeights, w, bias, nw []float32, oc int) ([]float32, []float32, error) {
	var v [4][]float32
	for k := range v {
		x, err := ws.get(bn.Inputs[k+1])
		if err != nil {
			return nil, nil, err
		}
		if len(x) != oc {
			return nil, nil, fmt.Errorf("BatchNormalization %q: %d values for %d channels", bn.Name, len(x), oc)
		}
		v[k] = x
	}
	eps := float64(floatAttr(bn, "epsilon", 1e-5))
	per := len(w) / oc
	nb := make([]float32, oc)
	for o := 0; o < oc; o++ {
		s := float64(v[0][o]) / math.Sqrt(float64(v[3][o])+eps)
		for k := 0; k < per; k++ {
			nw[o*per+k] = float32(float64(w[o*per+k]) * s)
		}
		b := 0.0
		if bias != nil {
			b = float64(bias[o])
		}
		nb[o] = float32((b-float64(v[2][o]))*s + float64(v[1][o]))
	}
	return nw, nb, nil
}

// ipWeights turns a Gemm or MatMul's constant operands into an inner
// product's [O, K] weights (alpha folded in) and bias (beta folded in).
func ipWeights(n *onnx.Node, ws *dnnlWeights, k int) ([]float32, []float32, int, error) {
	bt, err := ws.tensor(n.Inputs[1])
	if err != nil {
		return nil, nil, 0, err
	}
	b, err := ws.get(n.Inputs[1])
	if err != nil {
		return nil, nil, 0, err
	}
	trans := n.OpType == "Gemm" && intAttr(n, "transB", 0) != 0
	var o int
	if trans {
		o = bt.Dims[0]
		if bt.Dims[1] != k {
			return nil, nil, 0, fmt.Errorf("ONNX node %q: B %v for an input of %d values", n.Name, bt.Dims, k)
		}
	} else {
		o = bt.Dims[1]
		if bt.Dims[0] != k {
			return nil, nil, 0, fmt.Errorf("ONNX node %q: B %v for an input of %d values", n.Name, bt.Dims, k)
		}
	}
	alpha := float32(1)
	if n.OpType == "Gemm" {
		alpha = floatAttr(n, "alpha", 1)
	}
	w := b
	if !trans || alpha != 1 {
		w = make([]float32, o*k)
		for i := 0; i < o; i++ {
			for j := 0; j < k; j++ {
				if trans {
					w[i*k+j] = b[i*k+j] * alpha
				} else {
					w[i*k+j] = b[j*o+i] * alpha
				}
			}
		}
	}
	bias, err := ipBias(n, ws, o)
	return w, bias, o, err
}

// ipBias is a Gemm's C times beta (nil for MatMul or no C).
func ipBias(n *onnx.Node, ws *dnnlWeights, o int) ([]float32, error) {
	if n.OpType != "Gemm" || len(n.Inputs) <= 2 || n.Inputs[2] == "" {
		return nil, nil
	}
	c, err := ws.get(n.Inputs[2])
	if err != nil {
		return nil, err
	}
	if len(c) != o {
		return nil, fmt.Errorf("ONNX node %q: C of %d values for %d outputs", n.Name, len(c), o)
	}
	beta := floatAttr(n, "beta", 1)
	bias := make([]float32, o)
	for i := range bias {
		bias[i] = c[i] * beta
	}
	return bias, nil
}

// forward runs k images and writes the outputs (k blocks each) into dst.
func (d *dnnlNet) forward(in []float32, k int, dst []float32) error {
	if len(in) != k*d.inLen {
		return fmt.Errorf("forward: %d floats for %d images", len(in), k)
	}
	total := 0
	for _, s := range d.sizes {
		total += s * k
	}
	if len(dst) < total {
		return fmt.Errorf("forward: %d destination values, want %d", len(dst), total)
	}
	var cerrp *C.char
	rc := C.dnx_forward(d.p, (*C.float)(unsafe.Pointer(&in[0])), C.int(k), (*C.float)(unsafe.Pointer(&dst[0])), &cerrp)
	runtime.KeepAlive(in)
	runtime.KeepAlive(dst)
	if rc != 0 {
		return dnnlErr(cerrp)
	}
	return nil
}

// oneDNNVerbose reports whether the user asked oneDNN to trace primitives.
func oneDNNVerbose() bool {
	return os.Getenv("ONEDNN_VERBOSE") != "" || os.Getenv("DNNL_VERBOSE") != ""
}

// threads is the OpenMP team size the net runs with.
func (d *dnnlNet) threads() int { return int(C.dnx_net_threads(d.p)) }
