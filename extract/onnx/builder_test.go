package onnx

import (
	"strings"
	"testing"
)

func TestBuilder_Model(t *testing.T) {
	t.Run("UndefinedInput", func(t *testing.T) {
		b := NewBuilder("g")
		b.Relu("r", "nowhere", "y")
		b.Output("y")
		_, err := b.Model()
		wantErr(t, err, nil, `build graph "g": node "r": input "nowhere" is not defined yet`)
	})
	t.Run("DuplicateName", func(t *testing.T) {
		b := NewBuilder("g")
		x := b.Input("x", Dims(1)...)
		b.Relu("r1", x, "y")
		b.Relu("r2", x, "y")
		b.Output("y")
		_, err := b.Model()
		wantErr(t, err, nil, `tensor "y" defined twice`)
	})
	t.Run("NoOutputs", func(t *testing.T) {
		b := NewBuilder("g")
		b.Input("x", Dims(1)...)
		_, err := b.Model()
		wantErr(t, err, nil, "no outputs")
	})
	t.Run("OutputNotProduced", func(t *testing.T) {
		b := NewBuilder("g")
		b.Input("x", Dims(1)...)
		b.Output("z")
		_, err := b.Model()
		wantErr(t, err, nil, `output "z" is not produced by any node`)
	})
	t.Run("OpsetShapesAttributes", func(t *testing.T) {
		// Opset 7 files carry BatchNormalization's spatial and Dropout's
		// ratio; opset 12 has neither, and MaxPool gains ceil_mode from 10.
		for _, tc := range []struct {
			opset int64
			want  string
		}{{7, "epsilon momentum spatial | ratio | kernel_shape pads strides"}, {12, "epsilon momentum |  | ceil_mode kernel_shape pads strides"}} {
			b := NewBuilder("g")
			b.Opset = tc.opset
			x := b.Input("x", Dims(1, 1, 2, 2)...)
			one := func(n string) *Tensor { return NewFloat32(n, []int{1}, []float32{1}) }
			x = b.BatchNorm("bn", x, "bn", one("s"), one("b"), one("m"), one("v"), 1e-5)
			x = b.Dropout("drop", x, "drop", 0.5)
			x = b.MaxPool("pool", x, "pool", PoolAttrs{Kernel: []int{2, 2}})
			b.Output(x)
			m, err := b.Model()
			if err != nil {
				t.Fatal(err)
			}
			var parts []string
			for _, n := range m.Graph.Nodes {
				var names []string
				for _, a := range n.Attrs {
					names = append(names, a.Name)
				}
				parts = append(parts, strings.Join(names, " "))
			}
			if got := strings.Join(parts, " | "); got != tc.want {
				t.Errorf("opset %d: attributes %q, want %q", tc.opset, got, tc.want)
			}
			if wantIR := map[int64]int64{7: 3, 12: 6}[tc.opset]; m.IRVersion != wantIR {
				t.Errorf("opset %d: IR version %d, want %d", tc.opset, m.IRVersion, wantIR)
			}
		}
	})
}
