package classify

import (
	"bytes"
	"encoding/gob"
	"fmt"
)

// Classifier is one algorithm working on transformed vectors. Model wraps
// a Classifier with its transform, class names and parameters; most callers
// only need Fit and Model.
type Classifier interface {
	// Kind is the classifier name (one of Classifiers).
	Kind() string
	// Fit trains on transformed vectors X with labels y in [0, nClasses).
	// Classes without samples are never predicted and get probability 0.
	Fit(X [][]float64, y []int, nClasses int, p Params) error
	// Predict returns the class index and, if HasProbabilities, one
	// probability per class (else nil).
	Predict(x []float64) (int, []float64)
	// HasProbabilities says whether Predict returns probabilities.
	HasProbabilities() bool
	MarshalBinary() ([]byte, error)
	UnmarshalBinary([]byte) error
}

// NewClassifier returns an untrained classifier of the given kind.
func NewClassifier(kind string) (Classifier, error) {
	switch kind {
	case SVM:
		return &SVMClassifier{}, nil
	case Linear, LogReg:
		return &LinearClassifier{Loss: kind}, nil
	case Softmax:
		return &SoftmaxClassifier{}, nil
	case MLP:
		return &MLPClassifier{}, nil
	case KNN:
		return &KNNClassifier{}, nil
	case Forest:
		return &ForestClassifier{}, nil
	}
	return nil, fmt.Errorf("classifier %q: %w", kind, ErrUnknownClassifier)
}

// gobBytes and ungob are the encoding of classifier states: gob keeps
// float64 bit-exact and tolerates added or removed fields, which is how
// old model blobs stay readable.
func gobBytes(v any) ([]byte, error) {
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(v); err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return b.Bytes(), nil
}

func ungob(b []byte, v any) error {
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(v); err != nil {
		return fmt.Errorf("decode: %v: %w", err, ErrBadModel)
	}
	return nil
}
