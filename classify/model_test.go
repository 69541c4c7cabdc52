package classify

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateGolden = flag.Bool("update-golden", false, "write the testdata/model_v1_*.bin blobs that do not exist yet (new kinds)")

// roundTripConfigs covers every classifier with every transform.
func roundTripConfigs() map[string]Params {
	tr := TransformSpec{L2: true, Scale: ScaleStandard, PCA: 16}
	svm := DefaultParams(SVM)
	svm.Transform, svm.Probability, svm.Balanced = tr, true, true
	lin := DefaultParams(Linear)
	lin.Transform = TransformSpec{Scale: ScaleMinMax}
	lr := DefaultParams(LogReg)
	lr.Transform = tr
	knn := DefaultParams(KNN)
	knn.Transform, knn.Metric = tr, "cosine"
	forest := DefaultParams(Forest)
	forest.Transform, forest.Trees = tr, 20
	return map[string]Params{"svm": svm, "linear": lin, "logreg": lr, "knn": knn, "forest": forest}
}

func TestModel_MarshalBinary(t *testing.T) {
	ds := synthCodes(240, 64, 3, 21)
	train := &Dataset{X: ds.X[:180], Y: ds.Y[:180], Classes: ds.Classes}
	test := ds.X[180:]
	for name, p := range roundTripConfigs() {
		t.Run(name, func(t *testing.T) {
			m, err := Fit(train, p)
			if err != nil {
				t.Fatal(err)
			}
			blob, err := m.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			back, err := Load(blob)
			if err != nil {
				t.Fatal(err)
			}
			if back.Clf.Kind() != p.Classifier || back.Dim != 64 || strings.Join(back.Classes, ",") != strings.Join(ds.Classes, ",") {
				t.Errorf("envelope: kind %s dim %d classes %v", back.Clf.Kind(), back.Dim, back.Classes)
			}
			for i, x := range test {
				want, _ := m.Predict(x)
				got, err := back.Predict(x)
				if err != nil {
					t.Fatal(err)
				}
				if got.Label != want.Label || got.Class != want.Class {
					t.Errorf("vector %d: label %d after round trip, %d before", i, got.Label, want.Label)
				}
				if (got.Probs == nil) != (want.Probs == nil) {
					t.Fatalf("vector %d: probabilities %v after, %v before", i, got.Probs, want.Probs)
				}
				for c := range want.Probs {
					if math.Float64bits(got.Probs[c]) != math.Float64bits(want.Probs[c]) {
						t.Errorf("vector %d class %d: probability %.17g after, %.17g before", i, c, got.Probs[c], want.Probs[c])
					}
				}
			}
			again, _ := back.MarshalBinary()
			if !bytes.Equal(blob, again) {
				t.Error("re-marshalled model differs from the original bytes")
			}
			if wantProbs := p.Classifier != Linear; m.Clf.HasProbabilities() != wantProbs {
				t.Errorf("HasProbabilities = %v, want %v", m.Clf.HasProbabilities(), wantProbs)
			}
		})
	}
}

func TestModel_UnmarshalBinary(t *testing.T) {
	ds := synthCodes(60, 8, 2, 1)
	m, err := Fit(ds, DefaultParams(LogReg))
	if err != nil {
		t.Fatal(err)
	}
	blob, _ := m.MarshalBinary()
	bad := map[string][]byte{
		"magic":     append([]byte("NOTACLF"), blob[7:]...),
		"version":   append(append([]byte(modelMagic), 99), blob[8:]...),
		"truncated": blob[:len(blob)/2],
		"empty":     nil,
	}
	for name, b := range bad {
		t.Run("ErrBadModel/"+name, func(t *testing.T) {
			if _, err := Load(b); !errors.Is(err, ErrBadModel) {
				t.Errorf("err = %v, want ErrBadModel", err)
			}
		})
	}
	t.Run("ErrBadModel/Shape", func(t *testing.T) {
		// A classifier for 8 features inside an envelope for 6: refused at
		// load, not left to index out of range at predict.
		other, _ := FitTransform(TransformSpec{}, synthCodes(10, 6, 2, 1).X)
		bad := *m
		bad.Transform, bad.Dim = other, 6
		b, err := bad.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Load(b); !errors.Is(err, ErrBadModel) || !strings.Contains(err.Error(), "expects 8 features") {
			t.Errorf("err = %v, want ErrBadModel naming 8 features", err)
		}
	})
	t.Run("ErrBadModel/VersionNamed", func(t *testing.T) {
		_, err := Load(bad["version"])
		if err == nil || !strings.Contains(err.Error(), "version 99") {
			t.Errorf("err = %v, want it to name version 99", err)
		}
	})
}

// goldenCase is a model blob saved by an earlier build with the
// predictions it made then; old blobs must keep loading and predicting
// the same.
type goldenCase struct {
	Inputs [][]float32
	Labels []int
	Probs  [][]float64
}

func TestModel_Golden(t *testing.T) {
	for _, kind := range []string{SVM, LogReg, Softmax, MLP} {
		t.Run(kind, func(t *testing.T) {
			blobPath := filepath.Join("testdata", "model_v1_"+kind+".bin")
			casePath := filepath.Join("testdata", "model_v1_"+kind+".json")
			// -update writes the blobs of kinds that have none yet; an
			// existing blob is never rewritten (that would defeat the test).
			if _, err := os.Stat(blobPath); *updateGolden && errors.Is(err, os.ErrNotExist) {
				ds := synthCodes(40, 6, 3, 77)
				p := DefaultParams(kind)
				p.Hidden = []int{8}
				p.Transform = TransformSpec{Scale: ScaleStandard, PCA: 4}
				p.Probability = true
				m, err := Fit(ds, p)
				if err != nil {
					t.Fatal(err)
				}
				blob, _ := m.MarshalBinary()
				gc := goldenCase{Inputs: synthCodes(9, 6, 3, 78).X}
				for _, x := range gc.Inputs {
					pr, _ := m.Predict(x)
					gc.Labels = append(gc.Labels, pr.Label)
					gc.Probs = append(gc.Probs, pr.Probs)
				}
				js, _ := json.MarshalIndent(gc, "", " ")
				if err := os.WriteFile(blobPath, blob, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(casePath, js, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			blob, err := os.ReadFile(blobPath)
			if err != nil {
				t.Fatal(err)
			}
			js, err := os.ReadFile(casePath)
			if err != nil {
				t.Fatal(err)
			}
			var gc goldenCase
			if err := json.Unmarshal(js, &gc); err != nil {
				t.Fatal(err)
			}
			m, err := Load(blob)
			if err != nil {
				t.Fatalf("load %s: %v", blobPath, err)
			}
			for i, x := range gc.Inputs {
				pr, err := m.Predict(x)
				if err != nil {
					t.Fatal(err)
				}
				want := gc.Labels[i]
				if svm, ok := m.Clf.(*SVMClassifier); ok && gc.Probs[i] != nil {
					// The blobs were saved when an SVM's label was the
					// vote; it is now the most probable class, and the
					// vote is DecisionLabel.
					z, err := m.Transform.Apply(x)
					if err != nil {
						t.Fatal(err)
					}
					if v := svm.DecisionLabel(z); v != gc.Labels[i] {
						t.Errorf("input %d: vote %d, saved model predicted %d", i, v, gc.Labels[i])
					}
					want = argmax(gc.Probs[i])
				}
				if pr.Label != want {
					t.Errorf("input %d: label %d, want %d (saved %d)", i, pr.Label, want, gc.Labels[i])
				}
				// Not bit-exact: a platform that fuses multiply-adds may
				// round the last bit differently.
				for c := range gc.Probs[i] {
					if math.Abs(pr.Probs[c]-gc.Probs[i][c]) > 1e-12 {
						t.Errorf("input %d class %d: probability %.17g, saved %.17g", i, c, pr.Probs[c], gc.Probs[i][c])
					}
				}
			}
		})
	}
}
