package classify

import (
	"bytes"
	"fmt"
	"image/color"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// confusionGrid lays the matrix out with true class 0 at the top.
type confusionGrid struct{ cm [][]int }

func (g confusionGrid) Dims() (int, int)   { return len(g.cm), len(g.cm) }
func (g confusionGrid) Z(c, r int) float64 { return float64(g.cm[len(g.cm)-1-r][c]) }
func (g confusionGrid) X(c int) float64    { return float64(c) }
func (g confusionGrid) Y(r int) float64    { return float64(r) }

// whiteBlue runs from white (0) to dark blue (the largest count).
type whiteBlue struct{}

func (whiteBlue) Colors() []color.Color {
	c := make([]color.Color, 256)
	for i := range c {
		t := float64(i) / 255
		c[i] = color.RGBA{R: uint8(255 - t*(255-8)), G: uint8(255 - t*(255-48)), B: uint8(255 - t*(255-107)), A: 255}
	}
	return c
}

// PlotConfusion draws a confusion matrix (rows true, columns predicted) as
// a heat map with the count in each cell and class names on both axes, and
// returns it as PNG bytes (square, 4 inches at 96 dpi, larger for many
// classes).
func PlotConfusion(cm [][]int, classes []string, title string) ([]byte, error) {
	k := len(classes)
	if k == 0 || len(cm) != k {
		return nil, fmt.Errorf("plot confusion: %d classes, %d rows: %w", k, len(cm), ErrBadData)
	}
	peak := 0
	for i, row := range cm {
		if len(row) != k {
			return nil, fmt.Errorf("plot confusion: row %d has %d columns, want %d: %w", i, len(row), k, ErrBadData)
		}
		for _, v := range row {
			peak = max(peak, v)
		}
	}
	size := max(4*vg.Inch, vg.Length(k)*0.6*vg.Inch)
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "predicted"
	p.Y.Label.Text = "true"
	hm := plotter.NewHeatMap(confusionGrid{cm}, whiteBlue{})
	hm.Min, hm.Max = 0, float64(max(peak, 1))
	p.Add(hm)

	var xys plotter.XYs
	var texts []string
	for r := 0; r < k; r++ {
		for c := 0; c < k; c++ {
			xys = append(xys, plotter.XY{X: float64(c), Y: float64(k - 1 - r)})
			texts = append(texts, strconv.Itoa(cm[r][c]))
		}
	}
	labels, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: texts})
	if err != nil {
		return nil, fmt.Errorf("plot confusion: %w", err)
	}
	for i := range labels.TextStyle {
		v := cm[i/k][i%k]
		labels.TextStyle[i].XAlign = draw.XCenter
		labels.TextStyle[i].YAlign = draw.YCenter
		// Light text on the darker half of the scale.
		if float64(v) > 0.5*float64(max(peak, 1)) {
			labels.TextStyle[i].Color = color.White
		} else {
			labels.TextStyle[i].Color = color.Black
		}
	}
	p.Add(labels)

	p.NominalX(classes...)
	rev := make([]string, k)
	for i, c := range classes {
		rev[k-1-i] = c
	}
	p.NominalY(rev...)
	p.X.Min, p.X.Max = -0.5, float64(k)-0.5
	p.Y.Min, p.Y.Max = -0.5, float64(k)-0.5

	wt, err := p.WriterTo(size, size, "png")
	if err != nil {
		return nil, fmt.Errorf("plot confusion: %w", err)
	}
	var b bytes.Buffer
	if _, err := wt.WriteTo(&b); err != nil {
		return nil, fmt.Errorf("plot confusion: %w", err)
	}
	return b.Bytes(), nil
}
