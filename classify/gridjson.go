package classify

import (
	"encoding/json"
	"math"
)

// MarshalJSON writes a grid point with Log2Gamma null when gamma is not
// searched (it is NaN then, which encoding/json refuses: `fit --grid
// --json` of a linear classifier failed after storing the classifier).
func (p GridPoint) MarshalJSON() ([]byte, error) {
	type plain GridPoint // the same fields, without this method
	var lg *float64
	if !math.IsNaN(p.Log2Gamma) {
		lg = &p.Log2Gamma
	}
	return json.Marshal(struct {
		plain
		Log2Gamma *float64
	}{plain(p), lg})
}
