package extract

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"pipeline/errclass"
)

// ErrUnknownLayer is returned (wrapped) when a --layer name matches nothing.
var ErrUnknownLayer = errclass.New(errclass.NotFound, "unknown layer")

// Layer is one layer of a network as OpenCV imported it.
type Layer struct {
	ID        int
	Name      string   // OpenCV's name; ONNX layers are "onnx_node!<node name>"
	Type      string   // OpenCV type: Convolution, ReLU, Pooling, InnerProduct, Eltwise, ...
	Pool      string   // for Pooling: "max" or "ave", with ",global" for global pooling
	Inputs    []int    // ids of the layers it reads (0 is the network input)
	Consumers []int    // ids of the layers that read it
	Shape     []int    // output shape for one image, batch dimension removed (C,H,W or D)
	Aliases   []string // Keras-style names that resolve to this layer
	Source    []string // names in the model file that resolve here (ONNX node and tensor names)
	Note      string   // what a user of the source framework could get wrong about this layer
}

// Dim is the vector length the layer gives with the given pooling.
func (l *Layer) Dim(pool string) int {
	if len(l.Shape) == 0 {
		return 0
	}
	if pool == "avg" || pool == "max" {
		return l.Shape[0]
	}
	d := 1
	for _, s := range l.Shape {
		d *= s
	}
	return d
}

// Spatial reports whether the output has a spatial extent larger than 1x1,
// i.e. whether pooling changes anything.
func (l *Layer) Spatial() bool {
	return len(l.Shape) >= 3 && prod(l.Shape[1:]) > 1
}

// ShapeString is the shape as "512x7x7".
func (l *Layer) ShapeString() string { return shapeString(l.Shape) }

func shapeString(s []int) string {
	parts := make([]string, len(s))
	for i, v := range s {
		parts[i] = strconv.Itoa(v)
	}
	return strings.Join(parts, "x")
}

func prod(s []int) int {
	p := 1
	for _, v := range s {
		p *= v
	}
	return p
}

// Graph is a network's layer graph with the aliases resolved on it.
type Graph struct {
	Layers []*Layer // in OpenCV order, which is topological
	Family string   // "vgg", "resnet" or "" when neither pattern is found
	// Notes explain aliases whose meaning differs from Keras' (e.g. no softmax in the graph).
	Notes map[string]string
	// Warnings are what OpenCV computes differently from the model file's
	// framework (see onnxQuirks).
	Warnings []string

	byID     map[int]*Layer
	byName   map[string]*Layer
	bySource map[string]*Layer
	aliases  map[string]*Layer
	order    []string // alias names in a stable, meaningful order
}

// newGraph builds a Graph from OpenCV's layer list for a batch-1 input.
func newGraph(raw []rawLayer) *Graph {
	g := &Graph{
		Notes:    map[string]string{},
		byID:     map[int]*Layer{},
		byName:   map[string]*Layer{},
		bySource: map[string]*Layer{},
		aliases:  map[string]*Layer{},
	}
	for _, r := range raw {
		l := &Layer{ID: r.ID, Name: r.Name, Type: r.Type, Pool: r.Info, Inputs: r.Inputs}
		if len(r.Shapes) > 0 && len(r.Shapes[0]) > 1 {
			l.Shape = append([]int(nil), r.Shapes[0][1:]...)
		}
		g.Layers = append(g.Layers, l)
		g.byID[l.ID] = l
		g.byName[l.Name] = l
	}
	for _, l := range g.Layers {
		for _, in := range l.Inputs {
			if p := g.byID[in]; p != nil {
				p.Consumers = append(p.Consumers, l.ID)
			}
		}
	}
	g.resolveAliases()
	return g
}

// Layer returns the layer with OpenCV name name.
func (g *Graph) Layer(name string) *Layer { return g.byName[name] }

// AliasNames lists the aliases this graph has, in network order.
func (g *Graph) AliasNames() []string { return append([]string(nil), g.order...) }

// Alias returns the layer an alias points at.
func (g *Graph) Alias(name string) *Layer { return g.aliases[name] }

func (g *Graph) setAlias(name string, l *Layer) {
	if l == nil {
		return
	}
	if _, dup := g.aliases[name]; dup {
		return
	}
	g.aliases[name] = l
	g.order = append(g.order, name)
	l.Aliases = append(l.Aliases, name)
}

// addSource records that name, from the model file, means layer l.
func (g *Graph) addSource(name string, l *Layer) {
	if name == "" || l == nil {
		return
	}
	if _, ok := g.bySource[name]; ok {
		return
	}
	g.bySource[name] = l
	l.Source = append(l.Source, name)
}

// passThrough layers do not change values: aliases look through them.
func passThrough(t string) bool {
	switch t {
	case "Identity", "Dropout", "Flatten", "Reshape", "Split":
		return true
	}
	return false
}

// consumersThrough returns the consumers of l, looking through pass-through layers.
func (g *Graph) consumersThrough(l *Layer) []*Layer {
	var out []*Layer
	seen := map[int]bool{}
	var walk func(*Layer)
	walk = func(x *Layer) {
		for _, id := range x.Consumers {
			c := g.byID[id]
			if c == nil || seen[id] {
				continue
			}
			seen[id] = true
			if passThrough(c.Type) {
				walk(c)
				continue
			}
			out = append(out, c)
		}
	}
	walk(l)
	return out
}

// onlyConsumer returns the single consumer of l of type typ (through
// pass-through layers), or nil.
func (g *Graph) onlyConsumer(l *Layer, typ string) *Layer {
	cs := g.consumersThrough(l)
	if len(cs) == 1 && cs[0].Type == typ {
		return cs[0]
	}
	return nil
}

// firstConsumer returns a consumer of l of type typ (through pass-through
// layers), or nil.
func (g *Graph) firstConsumer(l *Layer, typ string) *Layer {
	for _, c := range g.consumersThrough(l) {
		if c.Type == typ {
			return c
		}
	}
	return nil
}

func isMaxPool(l *Layer) bool { return l.Type == "Pooling" && strings.HasPrefix(l.Pool, "max") }
func isAvePool(l *Layer) bool { return l.Type == "Pooling" && strings.HasPrefix(l.Pool, "ave") }

// isResidualAdd reports an element-wise layer that joins two branches.
func (g *Graph) isResidualAdd(l *Layer) bool {
	return (l.Type == "Eltwise" || l.Type == "NaryEltwise") && len(l.Inputs) >= 2
}

// resolveAliases finds the Keras-style names from the structure of the graph,
// never from a table of layer names, so that they resolve the same way on the
// ONNX model zoo files (MXNet names), torchvision exports and Caffe graphs.
func (g *Graph) resolveAliases() {
	var fcs, maxpools, adds []*Layer
	for _, l := range g.Layers {
		switch {
		case l.Type == "InnerProduct":
			fcs = append(fcs, l)
		case isMaxPool(l):
			maxpools = append(maxpools, l)
		case g.isResidualAdd(l):
			adds = append(adds, l)
		}
	}
	if len(adds) > 0 {
		g.Family = "resnet"
		g.resnetAliases(adds, maxpools)
	} else if len(maxpools) > 0 && len(fcs) > 0 {
		g.Family = "vgg"
		g.vggAliases(maxpools, fcs)
	}
	g.predictionsAlias(fcs)
}

// vggAliases: block<i>_pool is the i-th max pooling; flatten is the input of
// the first fully connected layer, flattened; fc<j> is the output of the
// j-th fully connected layer after its ReLU (as Keras' Dense(activation='relu')),
// for every fully connected layer but the last (the classifier).
func (g *Graph) vggAliases(maxpools, fcs []*Layer) {
	for i, p := range maxpools {
		g.setAlias(fmt.Sprintf("block%d_pool", i+1), p)
	}
	if len(fcs) > 0 {
		first := fcs[0]
		// The layer feeding the first FC, if it is a flatten, is Keras' "flatten".
		for _, in := range first.Inputs {
			if p := g.byID[in]; p != nil && p.Type == "Flatten" {
				g.setAlias("flatten", p)
			}
		}
	}
	for j, fc := range fcs[:len(fcs)-1] {
		name := fmt.Sprintf("fc%d", j+1)
		if r := g.onlyConsumer(fc, "ReLU"); r != nil {
			g.setAlias(name, r)
		} else {
			g.setAlias(name, fc)
			g.Notes[name] = "no ReLU after this fully connected layer: the values are pre-activation"
		}
	}
}

// resnetAliases: every residual join starts a block; a block belongs to a new
// stage when its output shape differs from the previous block's. Stages are
// numbered from 2 as in Keras (conv1 is the stem). conv<S>_block<B>_out is the
// ReLU right after the join (ResNet v1) or the join itself when the next layer
// is not a ReLU (ResNet v2, pre-activation). conv1_relu is the stem's ReLU,
// pool1_pool the stem's max pooling, post_relu (v2) the ReLU after the last
// block, avg_pool the global average pooling.
func (g *Graph) resnetAliases(adds, maxpools []*Layer) {
	first := adds[0]
	for _, l := range g.Layers {
		if l.ID >= first.ID {
			break
		}
		if l.Type == "ReLU" {
			if _, ok := g.aliases["conv1_relu"]; !ok {
				g.setAlias("conv1_relu", l)
			}
		}
	}
	for _, p := range maxpools {
		if p.ID < first.ID {
			g.setAlias("pool1_pool", p)
			break
		}
	}
	stage, block := 1, 0
	var prev []int
	var last *Layer
	for _, a := range adds {
		if !equalInts(a.Shape, prev) {
			stage++
			block = 0
		}
		block++
		prev = a.Shape
		out := a
		if r := g.onlyConsumer(a, "ReLU"); r != nil {
			out = r
		}
		g.setAlias(fmt.Sprintf("conv%d_block%d_out", stage, block), out)
		last = out
	}
	// v2: the last block's join is followed by BN + ReLU ("post_bn", "post_relu").
	if last != nil && last.Type != "ReLU" {
		for _, l := range g.Layers {
			if l.ID > last.ID && l.Type == "ReLU" {
				g.setAlias("post_relu", l)
				break
			}
		}
	}
	for i := len(g.Layers) - 1; i >= 0; i-- {
		l := g.Layers[i]
		if isAvePool(l) && len(l.Shape) >= 3 && prod(l.Shape[1:]) == 1 {
			g.setAlias("avg_pool", l)
			break
		}
	}
}

// predictionsAlias: the last fully connected layer, through its softmax when
// the graph has one (Keras' "predictions" is the softmax output).
func (g *Graph) predictionsAlias(fcs []*Layer) {
	if len(fcs) == 0 {
		return
	}
	last := fcs[len(fcs)-1]
	if s := g.firstConsumer(last, "Softmax"); s != nil {
		g.setAlias("predictions", s)
		return
	}
	g.setAlias("predictions", last)
	g.Notes["predictions"] = "the graph has no softmax: these are the logits of the last fully connected layer"
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Resolved is a --layer request resolved to an OpenCV layer.
type Resolved struct {
	Request string // as the user wrote it
	Layer   *Layer
	Alias   string // the alias, when the request was one or the layer has one
	Via     string // "alias", "opencv", "source" (ONNX node or tensor name)
}

// Resolve finds the layer a --layer name means: an alias, an OpenCV layer
// name, an ONNX node name (with or without OpenCV's "onnx_node!" prefix), an
// ONNX tensor name, or a Caffe layer name.
func (g *Graph) Resolve(name string) (Resolved, error) {
	r := Resolved{Request: name}
	switch {
	case g.aliases[name] != nil:
		r.Layer, r.Alias, r.Via = g.aliases[name], name, "alias"
		return r, nil
	case g.byName[name] != nil:
		r.Layer, r.Via = g.byName[name], "opencv"
	case g.byName["onnx_node!"+name] != nil:
		r.Layer, r.Via = g.byName["onnx_node!"+name], "source"
	case g.bySource[name] != nil:
		r.Layer, r.Via = g.bySource[name], "source"
	default:
		return r, g.unknown(name)
	}
	if len(r.Layer.Aliases) > 0 {
		r.Alias = r.Layer.Aliases[0]
	}
	return r, nil
}

func (g *Graph) unknown(name string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%q", name)
	if len(g.order) > 0 {
		fmt.Fprintf(&b, "; aliases: %s", strings.Join(g.order, ", "))
	} else {
		b.WriteString("; this graph has no aliases (neither a VGG nor a ResNet pattern)")
	}
	if c := g.closest(name, 5); len(c) > 0 {
		fmt.Fprintf(&b, "; closest names: %s", strings.Join(c, ", "))
	}
	return fmt.Errorf("%w %s", ErrUnknownLayer, b.String())
}

// closest returns up to n layer or source names nearest to name by edit
// distance, a substring match counting as near.
func (g *Graph) closest(name string, n int) []string {
	type cand struct {
		s string
		d int
	}
	lname := strings.ToLower(name)
	seen := map[string]bool{}
	var cs []cand
	add := func(s string) {
		if seen[s] {
			return
		}
		seen[s] = true
		ls := strings.ToLower(strings.TrimPrefix(s, "onnx_node!"))
		d := levenshtein(lname, ls)
		if strings.Contains(ls, lname) || strings.Contains(lname, ls) {
			d = min(d, abs(len(ls)-len(lname))/2)
		}
		cs = append(cs, cand{s, d})
	}
	for _, a := range g.order {
		add(a)
	}
	for _, l := range g.Layers {
		add(l.Name)
	}
	for s := range g.bySource {
		add(s)
	}
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].d != cs[j].d {
			return cs[i].d < cs[j].d
		}
		return cs[i].s < cs[j].s
	})
	var out []string
	for i := 0; i < len(cs) && i < n; i++ {
		out = append(out, cs[i].s)
	}
	return out
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
