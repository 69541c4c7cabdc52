package classify

import "pipeline/errclass"

// Sentinel errors, each with its class (errclass: the exit code); every
// returned error wraps one of them with the details (which class, which
// parameter, which dimensions).
var (
	// ErrTooFewClasses: training data has fewer than two distinct classes.
	ErrTooFewClasses = errclass.New(errclass.Data, "need at least 2 classes")
	// ErrTooFewSamples: a class has fewer samples than cross-validation
	// folds, or than the mlp's early stopping needs to hold some out.
	ErrTooFewSamples = errclass.New(errclass.Data, "too few samples")
	// ErrDiverged: training went to NaN or infinity (an mlp's loss).
	ErrDiverged = errclass.New(errclass.Data, "training diverged")
	// ErrDimMismatch: a vector's length differs from what the model expects.
	ErrDimMismatch = errclass.New(errclass.Data, "dimension mismatch")
	// ErrUnknownClassifier: the classifier name is not one of Classifiers.
	ErrUnknownClassifier = errclass.New(errclass.NotFound, "unknown classifier")
	// ErrUnknownKernel: the SVM kernel name is not one of Kernels.
	ErrUnknownKernel = errclass.New(errclass.NotFound, "unknown kernel")
	// ErrBadParam: a parameter value is out of range or malformed.
	ErrBadParam = errclass.New(errclass.Usage, "bad parameter")
	// ErrBadData: the dataset is malformed (ragged rows, NaN, labels out of range).
	ErrBadData = errclass.New(errclass.Data, "bad data")
	// ErrBadModel: serialized model bytes cannot be decoded.
	ErrBadModel = errclass.New(errclass.Integrity, "bad model")
)
