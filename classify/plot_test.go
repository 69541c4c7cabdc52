package classify

import (
	"bytes"
	"errors"
	"image/png"
	"testing"
)

func TestPlotConfusion(t *testing.T) {
	cm := [][]int{{50, 0, 2}, {3, 40, 0}, {0, 9, 31}}
	b, err := PlotConfusion(cm, []string{"cat", "dog", "fox"}, "test")
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if w, h := img.Bounds().Dx(), img.Bounds().Dy(); w != h || w < 300 {
		t.Errorf("image %dx%d, want a square of at least 300 px", w, h)
	}
	// The plot area spans the middle of the image: the top-left cell
	// (cat/cat, the largest count) must be darker than the top-right one
	// (cat/fox, 2). Sample each cell's corner region, away from the text.
	lum := func(fx, fy float64) float64 {
		r, g, bl, _ := img.At(int(fx*float64(img.Bounds().Dx())), int(fy*float64(img.Bounds().Dy()))).RGBA()
		return float64(r+g+bl) / 3
	}
	if dark, light := lum(0.27, 0.16), lum(0.88, 0.16); dark >= light {
		t.Errorf("cell (cat,cat)=50 luminance %v not darker than (cat,fox)=2 %v", dark, light)
	}
	t.Run("ErrBadData", func(t *testing.T) {
		if _, err := PlotConfusion([][]int{{1, 2}}, []string{"a", "b"}, ""); !errors.Is(err, ErrBadData) {
			t.Errorf("err = %v, want ErrBadData", err)
		}
	})
}
