package onnx

import (
	"bytes"
	"encoding/hex"
	"testing"
)

// FuzzDecode: the streaming decoder ReadGraph uses (payloads skipped by
// seeking) never panics on any bytes, and accepts every model the full
// decoder accepts, with the same graph (nodes, inputs, outputs, and the
// name, type and dims of every initializer).
func FuzzDecode(f *testing.F) {
	data, _ := hex.DecodeString(pythonModel)
	f.Add(data)
	for _, s := range SmallModels() {
		m, err := s.Build()
		if err != nil {
			f.Fatal(err)
		}
		b, err := Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2]) // truncated
	}
	f.Add([]byte{})
	f.Add([]byte{0x3a, 0xff, 0xff, 0xff, 0xff, 0x0f}) // a graph longer than the file
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		g, gerr := newDecoder(r, r, false).model(int64(len(data)))
		full, err := Unmarshal(data)
		if err != nil {
			return
		}
		if gerr != nil {
			t.Fatalf("Unmarshal accepts the model, the graph decoder says: %v", gerr)
		}
		if (full.Graph == nil) != (g.Graph == nil) {
			t.Fatalf("graph presence differs")
		}
		if full.Graph == nil {
			return
		}
		fg, gg := full.Graph, g.Graph
		if len(fg.Nodes) != len(gg.Nodes) || len(fg.Inputs) != len(gg.Inputs) || len(fg.Outputs) != len(gg.Outputs) || len(fg.Initializers) != len(gg.Initializers) {
			t.Fatalf("graph differs: %d/%d nodes, %d/%d inputs, %d/%d outputs, %d/%d initializers",
				len(fg.Nodes), len(gg.Nodes), len(fg.Inputs), len(gg.Inputs), len(fg.Outputs), len(gg.Outputs), len(fg.Initializers), len(gg.Initializers))
		}
		for i, n := range fg.Nodes {
			if n.OpType != gg.Nodes[i].OpType || n.Name != gg.Nodes[i].Name {
				t.Fatalf("node %d: %s %q vs %s %q", i, n.OpType, n.Name, gg.Nodes[i].OpType, gg.Nodes[i].Name)
			}
		}
		for i, in := range fg.Initializers {
			gi := gg.Initializers[i]
			if in.Name != gi.Name || in.DataType != gi.DataType || len(in.Dims) != len(gi.Dims) {
				t.Fatalf("initializer %d: %s vs %s", i, in.Name, gi.Name)
			}
		}
	})
}
