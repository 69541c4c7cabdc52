package classify

import (
	"fmt"
	"math"
)

// Dataset is a labelled set of feature vectors, e.g. CNN codes of one layer.
// Y[i] indexes Classes; every row of X has the same length.
type Dataset struct {
	X       [][]float32
	Y       []int
	Classes []string
}

// Dim returns the feature dimension (0 for an empty dataset).
func (d *Dataset) Dim() int {
	if len(d.X) == 0 {
		return 0
	}
	return len(d.X[0])
}

// Counts returns the number of samples per class, indexed like Classes.
func (d *Dataset) Counts() []int {
	c := make([]int, len(d.Classes))
	for _, y := range d.Y {
		if y >= 0 && y < len(c) {
			c[y]++
		}
	}
	return c
}

// Validate checks shapes, labels and values. Training additionally needs
// at least two classes with samples (see validateTrain).
func (d *Dataset) Validate() error {
	if len(d.X) != len(d.Y) {
		return fmt.Errorf("%d vectors but %d labels: %w", len(d.X), len(d.Y), ErrBadData)
	}
	if len(d.X) == 0 {
		return fmt.Errorf("no samples: %w", ErrBadData)
	}
	dim := len(d.X[0])
	if dim == 0 {
		return fmt.Errorf("vectors have length 0: %w", ErrBadData)
	}
	for i, x := range d.X {
		if len(x) != dim {
			return fmt.Errorf("vector %d has length %d, vector 0 has %d: %w", i, len(x), dim, ErrDimMismatch)
		}
		for j, v := range x {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("vector %d feature %d is %v: %w", i, j, v, ErrBadData)
			}
		}
		if y := d.Y[i]; y < 0 || y >= len(d.Classes) {
			return fmt.Errorf("label %d of vector %d is outside [0,%d): %w", y, i, len(d.Classes), ErrBadData)
		}
	}
	return nil
}

// validateTrain is Validate plus the conditions training needs.
func (d *Dataset) validateTrain() error {
	if err := d.Validate(); err != nil {
		return err
	}
	present := 0
	for _, c := range d.Counts() {
		if c > 0 {
			present++
		}
	}
	if present < 2 {
		return fmt.Errorf("training data has %d class(es) with samples (classes: %v): %w", present, d.Classes, ErrTooFewClasses)
	}
	return nil
}

// subset returns the rows idx of d (sharing the row slices).
func (d *Dataset) subset(idx []int) *Dataset {
	s := &Dataset{X: make([][]float32, len(idx)), Y: make([]int, len(idx)), Classes: d.Classes}
	for k, i := range idx {
		s.X[k] = d.X[i]
		s.Y[k] = d.Y[i]
	}
	return s
}
