package classify

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"slices"
)

// Model is a trained classifier with everything needed to apply it to raw
// feature vectors: the fitted transform, the class names, the parameters
// it was trained with. Its bytes (MarshalBinary) are what the database
// stores.
type Model struct {
	Params    Params
	Classes   []string
	Dim       int // input feature dimension
	Transform *Transform
	Clf       Classifier
}

// Prediction is the result for one vector.
type Prediction struct {
	Label int       // index into the model's Classes
	Class string    // Classes[Label]
	Probs []float64 // per class, or nil when the classifier has none
}

// Fit fits p.Transform and then the classifier p.Classifier on ds.
func Fit(ds *Dataset, p Params) (*Model, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if err := ds.validateTrain(); err != nil {
		return nil, err
	}
	t, err := FitTransform(p.Transform, ds.X)
	if err != nil {
		return nil, err
	}
	Z, err := t.ApplyAll(ds.X)
	if err != nil {
		return nil, err
	}
	clf, err := NewClassifier(p.Classifier)
	if err != nil {
		return nil, err
	}
	if err := clf.Fit(Z, ds.Y, len(ds.Classes), p); err != nil {
		return nil, fmt.Errorf("fit %s: %w", p.Classifier, err)
	}
	return &Model{Params: p, Classes: append([]string(nil), ds.Classes...), Dim: ds.Dim(), Transform: t, Clf: clf}, nil
}

// Predict classifies one raw feature vector.
func (m *Model) Predict(x []float32) (Prediction, error) {
	if len(x) != m.Dim {
		return Prediction{}, fmt.Errorf("predict: got %d features, model expects %d: %w", len(x), m.Dim, ErrDimMismatch)
	}
	z, err := m.Transform.Apply(x)
	if err != nil {
		return Prediction{}, fmt.Errorf("predict: %w", err)
	}
	label, probs := m.Clf.Predict(z)
	return Prediction{Label: label, Class: m.Classes[label], Probs: probs}, nil
}

// PredictAll classifies every vector of X, in parallel.
func (m *Model) PredictAll(X [][]float32) ([]Prediction, error) {
	out := make([]Prediction, len(X))
	err := parallelFor(len(X), 0, func(i int) error {
		p, err := m.Predict(X[i])
		if err != nil {
			return fmt.Errorf("vector %d: %w", i, err)
		}
		out[i] = p
		return nil
	})
	return out, err
}

// Evaluate predicts ds and scores the predictions. ds.Classes must equal
// the model's classes (same names, same order).
func (m *Model) Evaluate(ds *Dataset) (*Metrics, []Prediction, error) {
	if err := ds.Validate(); err != nil {
		return nil, nil, err
	}
	if !slices.Equal(ds.Classes, m.Classes) {
		return nil, nil, fmt.Errorf("evaluate: data classes %v differ from model classes %v: %w", ds.Classes, m.Classes, ErrBadData)
	}
	preds, err := m.PredictAll(ds.X)
	if err != nil {
		return nil, nil, err
	}
	yp := make([]int, len(preds))
	for i, p := range preds {
		yp[i] = p.Label
	}
	met, err := Score(ds.Y, yp, m.Classes)
	return met, preds, err
}

// Model blob layout: magic, one version byte, then a gob-encoded envelope.
// Version 1 is the first; a reader accepts every version up to its own.
const (
	modelMagic   = "PIPECLF"
	modelVersion = 1
)

type envelopeV1 struct {
	Kind      string
	Params    Params
	Classes   []string
	Dim       int
	Transform *Transform
	Model     []byte // the classifier's MarshalBinary
}

// MarshalBinary encodes the model (versioned; see UnmarshalBinary).
func (m *Model) MarshalBinary() ([]byte, error) {
	inner, err := m.Clf.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("marshal %s: %w", m.Clf.Kind(), err)
	}
	var b bytes.Buffer
	b.WriteString(modelMagic)
	b.WriteByte(modelVersion)
	env := envelopeV1{Kind: m.Clf.Kind(), Params: m.Params, Classes: m.Classes, Dim: m.Dim, Transform: m.Transform, Model: inner}
	if err := gob.NewEncoder(&b).Encode(env); err != nil {
		return nil, fmt.Errorf("marshal model: %w", err)
	}
	return b.Bytes(), nil
}

// UnmarshalBinary decodes bytes written by MarshalBinary of this or an
// older version.
func (m *Model) UnmarshalBinary(data []byte) error {
	if len(data) < len(modelMagic)+1 || string(data[:len(modelMagic)]) != modelMagic {
		return fmt.Errorf("model bytes do not start with %q: %w", modelMagic, ErrBadModel)
	}
	v := data[len(modelMagic)]
	if v < 1 || v > modelVersion {
		return fmt.Errorf("model format version %d, this build reads 1..%d (hint: upgrade pipeline): %w", v, modelVersion, ErrBadModel)
	}
	var env envelopeV1
	if err := gob.NewDecoder(bytes.NewReader(data[len(modelMagic)+1:])).Decode(&env); err != nil {
		return fmt.Errorf("decode model: %v: %w", err, ErrBadModel)
	}
	clf, err := NewClassifier(env.Kind)
	if err != nil {
		return fmt.Errorf("decode model: %w", err)
	}
	if err := clf.UnmarshalBinary(env.Model); err != nil {
		return fmt.Errorf("decode %s model: %w", env.Kind, err)
	}
	if env.Transform == nil || env.Transform.InDim != env.Dim || len(env.Classes) < 2 {
		return fmt.Errorf("decode model: inconsistent envelope (dim %d, classes %d): %w", env.Dim, len(env.Classes), ErrBadModel)
	}
	// A classifier that disagrees with its envelope would index out of
	// range at predict time; refuse it now.
	if s, ok := clf.(shaped); ok {
		if d, k := s.shape(); d != env.Transform.OutDim() || k != len(env.Classes) {
			return fmt.Errorf("decode model: %s expects %d features and %d classes, envelope has %d and %d: %w",
				env.Kind, d, k, env.Transform.OutDim(), len(env.Classes), ErrBadModel)
		}
	}
	*m = Model{Params: env.Params, Classes: env.Classes, Dim: env.Dim, Transform: env.Transform, Clf: clf}
	return nil
}

// shaped classifiers report the vector length and class count they were
// trained for.
type shaped interface{ shape() (dim, classes int) }

// Load decodes a model blob.
func Load(data []byte) (*Model, error) {
	m := &Model{}
	if err := m.UnmarshalBinary(data); err != nil {
		return nil, err
	}
	return m, nil
}

// sameRowLen says whether every row has the first row's length (true for
// no rows): a check of a decoded model's state.
func sameRowLen(rows [][]float64) bool {
	for _, r := range rows {
		if len(r) != len(rows[0]) {
			return false
		}
	}
	return true
}

// labelsBelow says whether every label is a class index in [0, n).
func labelsBelow(labels []int, n int) bool {
	for _, l := range labels {
		if l < 0 || l >= n {
			return false
		}
	}
	return true
}
