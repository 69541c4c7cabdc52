package classify

import "errors"

// Sentinel errors. The CLI maps them to exit codes with errors.Is; every
// returned error wraps one of them with the details (which class, which
// parameter, which dimensions).
var (
	// ErrTooFewClasses: training data has fewer than two distinct classes.
	ErrTooFewClasses = errors.New("need at least 2 classes")
	// ErrTooFewSamples: a class has fewer samples than cross-validation folds.
	ErrTooFewSamples = errors.New("too few samples")
	// ErrDimMismatch: a vector's length differs from what the model expects.
	ErrDimMismatch = errors.New("dimension mismatch")
	// ErrUnknownClassifier: the classifier name is not one of Classifiers.
	ErrUnknownClassifier = errors.New("unknown classifier")
	// ErrUnknownKernel: the SVM kernel name is not one of Kernels.
	ErrUnknownKernel = errors.New("unknown kernel")
	// ErrBadParam: a parameter value is out of range or malformed.
	ErrBadParam = errors.New("bad parameter")
	// ErrBadData: the dataset is malformed (ragged rows, NaN, labels out of range).
	ErrBadData = errors.New("bad data")
	// ErrBadModel: serialized model bytes cannot be decoded.
	ErrBadModel = errors.New("bad model")
)
