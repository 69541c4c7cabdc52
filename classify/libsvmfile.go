package classify

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ReadLibsvm reads libsvm's sparse text format ("label i:v ...", 1-based
// indices). dim 0 means the largest index seen; a larger index than dim is
// an error. Rows come back dense.
func ReadLibsvm(r io.Reader, dim int) (X [][]float64, y []float64, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<28)
	type entry struct {
		j int
		v float64
	}
	var rows [][]entry
	maxIdx := 0
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		fields := strings.Fields(text)
		if len(fields) == 0 {
			continue
		}
		label, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, nil, fmt.Errorf("line %d: label %q: %w", line, fields[0], ErrBadData)
		}
		var row []entry
		for _, f := range fields[1:] {
			is, vs, ok := strings.Cut(f, ":")
			j, err1 := strconv.Atoi(is)
			v, err2 := strconv.ParseFloat(vs, 64)
			if !ok || err1 != nil || err2 != nil || j < 1 {
				return nil, nil, fmt.Errorf("line %d: feature %q: %w", line, f, ErrBadData)
			}
			if dim > 0 && j > dim {
				return nil, nil, fmt.Errorf("line %d: index %d exceeds dimension %d: %w", line, j, dim, ErrDimMismatch)
			}
			maxIdx = max(maxIdx, j)
			row = append(row, entry{j, v})
		}
		rows = append(rows, row)
		y = append(y, label)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("read libsvm data: %w", err)
	}
	if dim == 0 {
		dim = maxIdx
	}
	X = make([][]float64, len(rows))
	for i, row := range rows {
		X[i] = make([]float64, dim)
		for _, e := range row {
			X[i][e.j-1] = e.v
		}
	}
	return X, y, nil
}
