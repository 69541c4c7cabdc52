package classify

import (
	"bytes"
	"testing"
)

// FuzzLoad: model bytes come from a database that users can edit; any
// input must give a model or an error, and a loaded model must predict
// without panicking.
func FuzzLoad(f *testing.F) {
	ds := synthCodes(30, 6, 3, 1)
	for _, kind := range Classifiers {
		p := DefaultParams(kind)
		p.Trees, p.K = 3, 3
		m, err := Fit(ds, p)
		if err != nil {
			f.Fatal(err)
		}
		b, _ := m.MarshalBinary()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Load(b)
		if err != nil {
			return
		}
		if _, err := m.Predict(make([]float32, m.Dim)); err != nil {
			t.Logf("predict: %v", err)
		}
	})
}

// FuzzReadLibsvm: parity data files are user-supplied.
func FuzzReadLibsvm(f *testing.F) {
	f.Add([]byte("1 1:0.5 3:2\n-1 2:1e-3 # comment\n"))
	f.Add([]byte("0 4096:1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		X, y, err := ReadLibsvm(bytes.NewReader(b), 64)
		if err != nil {
			return
		}
		if len(X) != len(y) {
			t.Fatalf("%d rows, %d labels", len(X), len(y))
		}
		for _, x := range X {
			if len(x) != 64 {
				t.Fatalf("row length %d, want 64", len(x))
			}
		}
	})
}
