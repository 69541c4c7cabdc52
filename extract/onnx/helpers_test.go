package onnx

import (
	"encoding/json"
	"fmt"
	"math"
	"testing"
)

// dump renders a model for failure messages.
func dump(m any) string {
	b, err := json.MarshalIndent(m, "", " ")
	if err != nil {
		return fmt.Sprintf("%+v", m)
	}
	return string(b)
}

// closeTo fails unless got matches want element by element within tol,
// relative to the larger of 1 and |want|.
func closeTo(t *testing.T, name string, got *Tensor, wantDims []int, want []float64, tol float64) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: no tensor", name)
	}
	if fmt.Sprint(got.Dims) != fmt.Sprint(wantDims) {
		t.Fatalf("%s: dims %v, want %v", name, got.Dims, wantDims)
	}
	if len(got.Float64) != len(want) {
		t.Fatalf("%s: %d values, want %d", name, len(got.Float64), len(want))
	}
	for i := range want {
		if d := math.Abs(got.Float64[i] - want[i]); !(d <= tol*math.Max(1, math.Abs(want[i]))) {
			t.Errorf("%s[%d] = %.17g, want %.17g", name, i, got.Float64[i], want[i])
		}
	}
}
