package main

import (
	"flag"
	"fmt"
	"io"
	"sort"

	"pipeline/extract"
	"pipeline/extract/onnx"
)

// Cost is the arithmetic of one image through a network up to a layer.
type Cost struct {
	Model  string           `json:"model"`
	Layer  string           `json:"layer"`  // as requested (alias)
	OpenCV string           `json:"opencv"` // the OpenCV layer it resolves to
	MACs   int64            `json:"macs"`   // multiply-accumulates per image
	GFLOP  float64          `json:"gflop"`  // 2 * MACs / 1e9
	ByOp   map[string]int64 `json:"macs_by_op"`
	Nodes  int              `json:"nodes"` // ONNX nodes computed to reach the layer
}

// layerCost counts the multiply-accumulates of one h x w image through
// the model up to the layer: Conv, Gemm and MatMul, the work a GEMM-based
// engine spends its time on (pooling, ReLU, BatchNorm and additions are
// memory-bound extras of well under 1%). The count comes from the ONNX
// file's shapes (onnx.Shapes), independently of OpenCV.
func layerCost(m extract.Model, layer string) (Cost, error) {
	net, g, err := extract.OpenNet(m)
	if err != nil {
		return Cost{}, err
	}
	net.Close()
	r, err := g.Resolve(layer)
	if err != nil {
		return Cost{}, fmt.Errorf("model %s: %w", m.Name, err)
	}
	om, err := onnx.ReadGraph(m.Path)
	if err != nil {
		return Cost{}, fmt.Errorf("read %s: %w", m.Path, err)
	}
	p := m.Preprocess
	c, err := countMACs(om, r.Layer.Source, p.Height, p.Width)
	if err != nil {
		return Cost{}, fmt.Errorf("model %s layer %s: %w", m.Name, layer, err)
	}
	c.Model, c.Layer, c.OpenCV = m.Name, layer, r.Layer.Name
	return c, nil
}

// countMACs counts the MACs of the nodes the targets (node or tensor
// names) depend on, for a batch of one h x w image.
func countMACs(m *onnx.Model, targets []string, h, w int) (Cost, error) {
	g := m.Graph
	in := map[string][]int{}
	for _, v := range g.DataInputs() {
		in[v.Name] = []int{1, 3, h, w}
	}
	shapes, err := onnx.Shapes(m, in)
	if err != nil {
		return Cost{}, err
	}
	want := map[string]bool{}
	for _, t := range targets {
		want[t] = true
	}
	producer := map[string]int{}
	var stack []int
	for i, n := range g.Nodes {
		hit := want[n.Name]
		for _, o := range n.Outputs {
			producer[o] = i
			hit = hit || want[o]
		}
		if hit {
			stack = append(stack, i)
		}
	}
	if len(stack) == 0 {
		return Cost{}, fmt.Errorf("no ONNX node produces %v", targets)
	}
	needed := map[int]bool{}
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if needed[i] {
			continue
		}
		needed[i] = true
		for _, t := range g.Nodes[i].Inputs {
			if j, ok := producer[t]; ok && !needed[j] {
				stack = append(stack, j)
			}
		}
	}
	c := Cost{ByOp: map[string]int64{}, Nodes: len(needed)}
	for i := range needed {
		n := g.Nodes[i]
		var k int64
		switch n.OpType {
		case "Conv":
			// out N x Cout x H x W, weight Cout x Cin/group x kh x kw
			k = prod(shapes[n.Outputs[0]]) * prod(shapes[n.Inputs[1]][1:])
		case "Gemm":
			a := shapes[n.Inputs[0]]
			kdim := a[len(a)-1]
			if at := n.Attr("transA"); at != nil && at.I != 0 {
				kdim = a[0]
			}
			k = prod(shapes[n.Outputs[0]]) * int64(kdim)
		case "MatMul":
			a := shapes[n.Inputs[0]]
			k = prod(shapes[n.Outputs[0]]) * int64(a[len(a)-1])
		default:
			continue
		}
		if k <= 0 {
			return Cost{}, fmt.Errorf("node %s (%s): no shape", n.Name, n.OpType)
		}
		c.ByOp[n.OpType] += k
		c.MACs += k
	}
	c.GFLOP = 2 * float64(c.MACs) / 1e9
	return c, nil
}

func prod(s []int) int64 {
	if len(s) == 0 {
		return 0
	}
	p := int64(1)
	for _, d := range s {
		p *= int64(d)
	}
	return p
}

// cmdFlops prints the cost of each requested model and layer as JSON.
func cmdFlops(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("flops", flag.ContinueOnError)
	fs.SetOutput(stderr)
	model := fs.String("model", "", "generated architecture or catalog model (e.g. vgg16-arch)")
	layer := fs.String("layer", "", "layer alias or name (e.g. fc2)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *model == "" || *layer == "" {
		return fmt.Errorf("flops: give --model and --layer")
	}
	m, err := resolveModel(*model)
	if err != nil {
		return err
	}
	c, err := layerCost(m, *layer)
	if err != nil {
		return err
	}
	return writeJSON(stdout, c)
}

// resolveModel resolves a model name as `pipeline extract --model` does,
// generating a generated architecture into the cache if needed.
func resolveModel(name string) (extract.Model, error) {
	return extract.ResolveModel(extract.ModelSpec{Model: name, NeedPreprocess: true})
}

func sortedKeys[V any](m map[string]V) []string {
	k := make([]string, 0, len(m))
	for s := range m {
		k = append(k, s)
	}
	sort.Strings(k)
	return k
}
