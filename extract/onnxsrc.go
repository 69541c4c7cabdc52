package extract

import (
	"fmt"
	"sort"
	"strings"

	"pipeline/extract/keras"
	"pipeline/extract/onnx"
)

// addONNXSources records the ONNX node and tensor names of the model file on
// the graph, so that --layer accepts them: OpenCV 4.6 names a layer
// "onnx_node!<node name>", and some nodes (Dropout, Identity, a Flatten
// split in two, Constant) have no layer of their own or several. A tensor
// made by a node without a layer of its own, from one input, means the
// layer that made that input: those nodes pass values through.
func addONNXSources(g *Graph, path string) error {
	m, err := onnx.ReadGraph(path)
	if err != nil {
		return fmt.Errorf("read ONNX graph: %w", err)
	}
	byTensor := map[string]*Layer{}
	for _, n := range m.Graph.Nodes {
		l := g.byName["onnx_node!"+n.Name]
		if l == nil && n.Name == "" && len(n.Outputs) > 0 {
			l = g.byName["onnx_node!"+n.Outputs[0]]
		}
		if l == nil && valuePreserving(n.OpType) && len(n.Inputs) > 0 {
			l = byTensor[n.Inputs[0]]
		}
		if l == nil {
			continue
		}
		g.addSource(n.Name, l)
		for _, o := range n.Outputs {
			byTensor[o] = l
			g.addSource(o, l)
		}
	}
	if m.ProducerName == keras.Producer {
		kerasAliases(g, m)
	}
	g.Warnings = append(g.Warnings, onnxQuirks(m)...)
	return nil
}

// kerasAliases: a graph converted from a Keras file names each node that
// is a Keras layer after it (auxiliary nodes have a '/' in their names),
// so those names are aliases, as Keras's model.get_layer(name) would see
// them. The structural aliases found before point at the same layers where
// both exist (fc1 is the ReLU in both); the list is put in network order.
func kerasAliases(g *Graph, m *onnx.Model) {
	for _, n := range m.Graph.Nodes {
		if strings.Contains(n.Name, "/") {
			continue
		}
		if l := g.byName["onnx_node!"+n.Name]; l != nil {
			g.setAlias(n.Name, l)
		}
	}
	if g.aliases["flatten"] != nil {
		g.Notes["flatten"] = "values in C,H,W order (Keras flattens H,W,C; fc1's weights are permuted to match, so fc1 and after are Keras's exactly)"
	}
	pos := map[int]int{}
	for i, l := range g.Layers {
		pos[l.ID] = i
	}
	sort.SliceStable(g.order, func(i, j int) bool {
		return pos[g.aliases[g.order[i]].ID] < pos[g.aliases[g.order[j]].ID]
	})
}

// onnxQuirks lists what OpenCV 4.6 computes differently from ONNX in this
// model. Known: its importer ignores AveragePool's count_include_pad and
// counts the padding in the average exactly when the file's producer is
// "pytorch".
func onnxQuirks(m *onnx.Model) []string {
	var out []string
	padsArea := m.ProducerName == "pytorch"
	for _, n := range m.Graph.Nodes {
		if n.OpType != "AveragePool" {
			continue
		}
		padded := false
		if a := n.Attr("pads"); a != nil {
			for _, p := range a.Ints {
				padded = padded || p != 0
			}
		}
		if a := n.Attr("auto_pad"); a != nil && string(a.S) != "" && string(a.S) != "NOTSET" && string(a.S) != "VALID" {
			padded = true
		}
		if !padded {
			continue
		}
		cip := false
		if a := n.Attr("count_include_pad"); a != nil {
			cip = a.I != 0
		}
		if cip != padsArea {
			how := "leave the padding out of"
			if padsArea {
				how = "count the padding in"
			}
			out = append(out, fmt.Sprintf("AveragePool node %q has count_include_pad=%d, but OpenCV 4.6 ignores it and will %s the average (it decides from the producer name %q): this layer and every layer after it differ from ONNX semantics at the borders",
				n.Name, map[bool]int{false: 0, true: 1}[cip], how, m.ProducerName))
		}
	}
	return out
}

// valuePreserving ops give their input's values (maybe reshaped).
func valuePreserving(op string) bool {
	switch op {
	case "Dropout", "Identity", "Flatten", "Reshape", "Squeeze", "Unsqueeze":
		return true
	}
	return false
}
