package onnx

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"pipeline/errclass"
)

// ErrUnknownTensor is returned when a requested tensor is not produced by
// the graph (nor is it a graph input or an initializer).
var ErrUnknownTensor = errclass.New(errclass.Fatal, "unknown tensor")

// value is a tensor during evaluation: dims and float64 data, row-major.
// Values are never modified after they are produced, so Identity and
// Dropout share their input's data.
type value struct {
	dims []int
	data []float64
}

// Run evaluates the model in float64 with ONNX semantics and returns the
// requested tensors by name (Double tensors); with no names it returns
// every tensor a node produces. Only the nodes the requested tensors
// depend on are evaluated, and intermediate tensors are released as soon
// as nothing needs them. Returned tensors may share their data with each
// other (Flatten, Reshape, Identity and Dropout do not copy) or with a
// Double input or initializer: treat them as read-only.
//
// inputs maps graph input names to Float or Double tensors; every graph
// input that is not an initializer must be given. An input that is also an
// initializer (IR version 3 files) may be given to override it. Declared
// input shapes are not enforced (OpenCV does not enforce them either), but
// every operator checks its input shapes.
//
// An operator or attribute value that is not implemented is an error
// wrapping ErrUnsupported that names the node; Run never guesses.
func Run(m *Model, inputs map[string]*Tensor, want ...string) (map[string]*Tensor, error) {
	if m == nil || m.Graph == nil {
		return nil, fmt.Errorf("run: model has no graph")
	}
	g := m.Graph
	r := &runner{g: g, opset: m.Opset(), inits: make(map[string]*Tensor, len(g.Initializers)), vals: map[string]*value{}}
	if r.opset == 0 {
		return nil, fmt.Errorf("run: model imports no ai.onnx operator set")
	}
	for _, t := range g.Initializers {
		r.inits[t.Name] = t
	}
	if err := r.setInputs(inputs); err != nil {
		return nil, err
	}
	needed, err := neededNodes(g, want)
	if err != nil {
		return nil, fmt.Errorf("run: %w", err)
	}
	wanted := make(map[string]bool)
	for _, w := range want {
		wanted[w] = true
	}
	// uses counts the needed nodes still to run that read each tensor.
	uses := make(map[string]int)
	for i, n := range g.Nodes {
		if needed[i] {
			for _, in := range n.Inputs {
				uses[in]++
			}
		}
	}
	out := make(map[string]*Tensor)
	for i, n := range g.Nodes {
		if !needed[i] {
			continue
		}
		res, err := r.node(n)
		if err != nil {
			return nil, err
		}
		for j, name := range n.Outputs {
			if name == "" || j >= len(res) {
				continue
			}
			r.vals[name] = res[j]
			if len(want) == 0 {
				out[name] = NewFloat64(name, res[j].dims, res[j].data)
			}
		}
		for _, in := range n.Inputs {
			if uses[in]--; uses[in] == 0 && !wanted[in] {
				delete(r.vals, in)
			}
		}
	}
	for _, w := range want {
		v, err := r.lookup(w)
		if err != nil {
			return nil, fmt.Errorf("run: tensor %q: %w", w, err)
		}
		out[w] = NewFloat64(w, v.dims, v.data)
	}
	return out, nil
}

// runner holds the values of one Run.
type runner struct {
	g     *Graph
	opset int64
	inits map[string]*Tensor
	vals  map[string]*value // computed tensors, inputs, converted initializers
}

// lookup returns a tensor's value. Initializers are converted to float64
// when a needed node first reads them: a run that stops at VGG-16's pool5
// never copies the 400 MB of fully connected weights.
func (r *runner) lookup(name string) (*value, error) {
	if v, ok := r.vals[name]; ok {
		return v, nil
	}
	t, ok := r.inits[name]
	if !ok {
		return nil, fmt.Errorf("input %q is not produced by an earlier node, an initializer or a graph input", name)
	}
	if !t.HasData() {
		return nil, fmt.Errorf("initializer %q has no data (model read with ReadGraph?)", name)
	}
	v, err := tensorValue(t)
	if err != nil {
		return nil, fmt.Errorf("initializer: %w", err)
	}
	r.vals[name] = v
	return v, nil
}

// setInputs checks the given inputs against the graph's and converts them.
func (r *runner) setInputs(inputs map[string]*Tensor) error {
	declared := make(map[string]bool)
	for _, in := range r.g.Inputs {
		declared[in.Name] = true
	}
	for name, t := range inputs {
		if !declared[name] {
			return fmt.Errorf("run: %q is not a graph input (inputs: %s): %w", name, strings.Join(inputNames(r.g), ", "), ErrUnknownTensor)
		}
		v, err := tensorValue(t)
		if err != nil {
			return fmt.Errorf("run: input %q: %w", name, err)
		}
		r.vals[name] = v
	}
	for _, in := range r.g.Inputs {
		if _, ok := r.vals[in.Name]; !ok && r.inits[in.Name] == nil {
			return fmt.Errorf("run: graph input %q not given", in.Name)
		}
	}
	return nil
}

// node computes one node's outputs.
func (r *runner) node(n *Node) ([]*value, error) {
	c := &opCtx{node: n, opset: r.opset, konst: func(name string) (*value, bool) {
		v, err := r.lookup(name)
		return v, err == nil
	}}
	ins := make([]*value, len(n.Inputs))
	shapes := make([][]int, len(n.Inputs))
	for j, name := range n.Inputs {
		if name == "" {
			continue
		}
		v, err := r.lookup(name)
		if err != nil {
			return nil, c.wrap(err)
		}
		ins[j], shapes[j] = v, v.dims
	}
	def, err := c.def()
	if err != nil {
		return nil, err
	}
	outDims, err := def.infer(c, shapes)
	if err != nil {
		return nil, c.wrap(err)
	}
	res, err := def.eval(c, ins, outDims)
	if err != nil {
		return nil, c.wrap(err)
	}
	return res, nil
}

func inputNames(g *Graph) []string {
	var s []string
	for _, v := range g.DataInputs() {
		s = append(s, v.Name)
	}
	return s
}

func tensorValue(t *Tensor) (*value, error) {
	data, err := t.Float64s()
	if err != nil {
		return nil, err
	}
	if n, err := numElements(t.Dims); err != nil || n != len(data) {
		return nil, fmt.Errorf("tensor %q: %d values for dims %v", t.Name, len(data), t.Dims)
	}
	dims := slices.Clone(t.Dims)
	if dims == nil {
		dims = []int{} // a scalar; nil marks an absent input
	}
	return &value{dims: dims, data: data}, nil
}

// neededNodes marks the nodes the wanted tensors depend on (all nodes when
// want is empty).
func neededNodes(g *Graph, want []string) ([]bool, error) {
	needed := make([]bool, len(g.Nodes))
	if len(want) == 0 {
		for i := range needed {
			needed[i] = true
		}
		return needed, nil
	}
	producer := make(map[string]int)
	for i, n := range g.Nodes {
		for _, o := range n.Outputs {
			if o != "" {
				producer[o] = i
			}
		}
	}
	known := make(map[string]bool)
	for _, v := range g.Inputs {
		known[v.Name] = true
	}
	for _, t := range g.Initializers {
		known[t.Name] = true
	}
	var stack []string
	for _, w := range want {
		if _, ok := producer[w]; !ok && !known[w] {
			return nil, fmt.Errorf("tensor %q (%s): %w", w, suggest(g, w), ErrUnknownTensor)
		}
		stack = append(stack, w)
	}
	for len(stack) > 0 {
		name := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		i, ok := producer[name]
		if !ok || needed[i] {
			continue
		}
		needed[i] = true
		for _, in := range g.Nodes[i].Inputs {
			if in != "" {
				stack = append(stack, in)
			}
		}
	}
	return needed, nil
}

// suggest names a node whose name is the unknown tensor name, the usual
// mix-up in torch exports where node "/fc/Gemm" outputs "/fc/Gemm_output_0".
func suggest(g *Graph, name string) string {
	if n := g.Node(name); n != nil && len(n.Outputs) > 0 {
		return fmt.Sprintf("that is a node name; its output is %q", n.Outputs[0])
	}
	return "no node produces it"
}

// Shapes computes the shape of every tensor of the model: initializers,
// graph inputs and node outputs. inputDims gives the dims of graph inputs;
// an input not listed there must have fixed dims in the file. Shapes
// depend only on shapes, except Reshape's, which reads its constant shape
// tensor (an initializer or a Constant node).
func Shapes(m *Model, inputDims map[string][]int) (map[string][]int, error) {
	if m == nil || m.Graph == nil {
		return nil, fmt.Errorf("shapes: model has no graph")
	}
	g := m.Graph
	opset := m.Opset()
	if opset == 0 {
		return nil, fmt.Errorf("shapes: model imports no ai.onnx operator set")
	}
	shapes := make(map[string][]int)
	consts := make(map[string]*value)
	for _, t := range g.Initializers {
		shapes[t.Name] = slices.Clone(t.Dims)
		if t.HasData() && (t.DataType == Int64 || t.NumElements() <= 64) {
			if v, err := tensorValue(t); err == nil {
				consts[t.Name] = v
			}
		}
	}
	for _, in := range g.Inputs {
		if d, ok := inputDims[in.Name]; ok {
			shapes[in.Name] = slices.Clone(d)
			continue
		}
		if _, ok := shapes[in.Name]; ok {
			continue // an initializer listed as input
		}
		d, ok := in.Fixed()
		if !ok {
			return nil, fmt.Errorf("shapes: graph input %q has dims %v; give them in inputDims", in.Name, in.Dims)
		}
		shapes[in.Name] = d
	}
	for name := range inputDims {
		if _, ok := shapes[name]; !ok {
			return nil, fmt.Errorf("shapes: %q is not a graph input: %w", name, ErrUnknownTensor)
		}
	}
	for _, n := range g.Nodes {
		c := &opCtx{node: n, opset: opset, konst: func(name string) (*value, bool) {
			v, ok := consts[name]
			return v, ok
		}}
		in := make([][]int, len(n.Inputs))
		for j, name := range n.Inputs {
			if name == "" {
				continue
			}
			s, ok := shapes[name]
			if !ok {
				return nil, c.errorf("input %q is not produced by an earlier node, an initializer or a graph input", name)
			}
			in[j] = s
		}
		def, err := c.def()
		if err != nil {
			return nil, err
		}
		out, err := def.infer(c, in)
		if err != nil {
			return nil, c.wrap(err)
		}
		for j, name := range n.Outputs {
			if name != "" && j < len(out) {
				shapes[name] = out[j]
			}
		}
		if n.OpType == "Constant" {
			res, err := def.eval(c, nil, out)
			if err != nil {
				return nil, c.wrap(err)
			}
			consts[n.Outputs[0]] = res[0]
		}
	}
	return shapes, nil
}

// Ops lists the operator types Run and Shapes implement.
func Ops() []string {
	var s []string
	for k := range ops {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}
