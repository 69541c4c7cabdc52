package classify

import (
	"bytes"
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// SweepSeries is one classifier's cross-validated accuracy along the
// layers of a sweep: Mean[i] ± Std[i] at layer i (NaN = not measured).
type SweepSeries struct {
	Name string
	Mean []float64
	Std  []float64
}

// sweepColors are distinguishable on white and in grey print.
var sweepColors = []color.RGBA{
	{31, 119, 180, 255}, {214, 39, 40, 255}, {44, 160, 44, 255}, {148, 103, 189, 255},
	{255, 127, 14, 255}, {140, 86, 75, 255}, {23, 190, 207, 255}, {127, 127, 127, 255},
}

// SweepPlotSize is the size of PlotSweep's PNG for n layers: 6 x 4 inches,
// wider by 0.8 inch per layer beyond 7 (96 dpi: 576 x 384 pixels and up).
func SweepPlotSize(n int) (w, h vg.Length) {
	return max(6*vg.Inch, vg.Length(n)*0.8*vg.Inch+0.4*vg.Inch), 4 * vg.Inch
}

// PlotSweep draws accuracy by depth: layers (shallow to deep) on the x
// axis, one line per classifier with ±std error bars, and returns PNG bytes
// (size SweepPlotSize).
func PlotSweep(layers []string, series []SweepSeries, title string) ([]byte, error) {
	if len(layers) == 0 || len(series) == 0 {
		return nil, fmt.Errorf("plot sweep: %d layers, %d classifiers: %w", len(layers), len(series), ErrBadData)
	}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "layer (shallow to deep)"
	p.Y.Label.Text = "CV accuracy (mean ± std over folds)"
	// Accuracy curves mostly run high: the legend goes bottom right, with
	// room kept for it below the lowest point.
	p.Legend.Top, p.Legend.Left = false, false
	lo, hi := 1.0, 0.0
	for k, s := range series {
		if len(s.Mean) != len(layers) || len(s.Std) != len(layers) {
			return nil, fmt.Errorf("plot sweep: %s has %d means and %d stds for %d layers: %w", s.Name, len(s.Mean), len(s.Std), len(layers), ErrBadData)
		}
		var pts plotter.XYs
		var errs plotter.YErrors
		for i, m := range s.Mean {
			if math.IsNaN(m) || math.IsInf(m, 0) {
				continue
			}
			sd := s.Std[i]
			if math.IsNaN(sd) || math.IsInf(sd, 0) {
				sd = 0
			}
			// Layers of one series are offset a little so that error bars
			// of classifiers with equal scores do not hide each other.
			x := float64(i) + 0.06*(float64(k)-float64(len(series)-1)/2)
			pts = append(pts, plotter.XY{X: x, Y: m})
			errs = append(errs, struct{ Low, High float64 }{sd, sd})
			lo, hi = min(lo, m-sd), max(hi, m+sd)
		}
		if len(pts) == 0 {
			continue
		}
		c := sweepColors[k%len(sweepColors)]
		line, points, err := plotter.NewLinePoints(pts)
		if err != nil {
			return nil, fmt.Errorf("plot sweep: %w", err)
		}
		line.Color, points.Color = c, c
		line.Width = vg.Points(1.5)
		points.Shape = draw.CircleGlyph{}
		points.Radius = vg.Points(3)
		bars, err := plotter.NewYErrorBars(struct {
			plotter.XYer
			plotter.YErrorer
		}{pts, errs})
		if err != nil {
			return nil, fmt.Errorf("plot sweep: %w", err)
		}
		bars.Color = c
		p.Add(line, points, bars)
		p.Legend.Add(s.Name, line, points)
	}
	p.Add(plotter.NewGrid())
	p.NominalX(layers...)
	p.X.Tick.Label.Rotation = math.Pi / 8
	p.X.Tick.Label.XAlign = draw.XRight
	p.X.Min, p.X.Max = -0.5, float64(len(layers))-0.5
	if hi < lo {
		lo, hi = 0, 1
	}
	p.Y.Min, p.Y.Max = math.Max(0, lo-0.05-0.04*float64(len(series))), math.Min(1, hi+0.05)
	if p.Y.Max-p.Y.Min < 0.1 {
		p.Y.Min, p.Y.Max = math.Max(0, p.Y.Min-0.05), math.Min(1, p.Y.Max+0.05)
	}
	w, h := SweepPlotSize(len(layers))
	wt, err := p.WriterTo(w, h, "png")
	if err != nil {
		return nil, fmt.Errorf("plot sweep: %w", err)
	}
	var b bytes.Buffer
	if _, err := wt.WriteTo(&b); err != nil {
		return nil, fmt.Errorf("plot sweep: %w", err)
	}
	return b.Bytes(), nil
}
