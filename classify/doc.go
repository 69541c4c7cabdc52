// Package classify trains and applies classical classifiers on CNN codes:
// kernel SVMs (libsvm-go), linear SVMs and logistic regression (liblinear
// through golearn), k-nearest neighbours and random forests, with feature
// transforms fitted on training data only, stratified cross-validation,
// libsvm-style grid search, sklearn-compatible metrics and a confusion
// matrix plot.
//
// It works on plain Go data: a Dataset of [][]float32 vectors, int labels
// and class names in; predictions, metrics, model bytes and PNG bytes out.
// The database and the command line are wired elsewhere.
//
//	m, err := classify.Fit(ds, params)     // transform + classifier
//	pred, err := m.Predict(x)              // label, class name, probabilities
//	blob, err := m.MarshalBinary()         // versioned; classify.Load(blob)
//	cv, err := classify.CrossValidate(ds, params, 5)
//	grid, err := classify.GridSearch(ds, params, classify.GridSpec{})
//
// DESIGN.md explains the choices, the quirks of libsvm-go and golearn and
// how they are handled, and the measured parity with C libsvm/liblinear.
package classify
