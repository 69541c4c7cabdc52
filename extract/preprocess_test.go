package extract

import (
	"strings"
	"testing"

	"gocv.io/x/gocv"
)

// bgrMat builds a w x h 8-bit BGR Mat whose pixel (x, y) is px(x, y).
func bgrMat(t *testing.T, w, h int, px func(x, y int) [3]byte) gocv.Mat {
	t.Helper()
	data := make([]byte, 0, w*h*3)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			p := px(x, y)
			data = append(data, p[0], p[1], p[2])
		}
	}
	m, err := gocv.NewMatFromBytes(h, w, gocv.MatTypeCV8UC3, data)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func blobOf(t *testing.T, p Preprocess, m gocv.Mat) []float32 {
	t.Helper()
	dst := make([]float32, 3*p.Width*p.Height)
	if err := p.blobFromMat(m, dst); err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestPreprocess_Presets(t *testing.T) {
	// A 2x2 image, every pixel B=10 G=20 R=30, at the input size: no resize.
	m := bgrMat(t, 2, 2, func(x, y int) [3]byte { return [3]byte{10, 20, 30} })
	defer m.Close()
	// Expected values computed by hand (python, float64 then float32):
	//   caffe: [B-103.939, G-116.779, R-123.68]
	//   torch: [(R/255-0.485)/0.229, (G/255-0.456)/0.224, (B/255-0.406)/0.225]
	//   tf:    [R/127.5-1, G/127.5-1, B/127.5-1]
	for _, c := range []struct {
		preset string
		want   [3]float32
	}{
		{"caffe", [3]float32{-93.939, -96.779, -93.68}},
		{"torch", [3]float32{-1.6041613, -1.6855742, -1.6301525}},
		{"tf", [3]float32{-0.7647059, -0.84313726, -0.92156863}},
	} {
		t.Run(c.preset, func(t *testing.T) {
			p := Presets[c.preset]
			p.Width, p.Height, p.Resize = 2, 2, Resize{}
			got := blobOf(t, p, m)
			for ch := 0; ch < 3; ch++ {
				for i := 0; i < 4; i++ {
					if g := got[ch*4+i]; g != c.want[ch] {
						t.Errorf("channel %d value %d = %v, want %v", ch, i, g, c.want[ch])
					}
				}
			}
		})
	}
}

func TestPreprocess_Resize(t *testing.T) {
	// Blue channel = 10*x + y*100 style ramps so each source pixel is unique.
	px := func(x, y int) [3]byte { return [3]byte{byte(4*x + 40*y), byte(100 + x), byte(200 - y)} }
	raw := Preprocess{Scale: 1, Std: [3]float64{1, 1, 1}, Interp: Bilinear}

	t.Run("Stretch_Bilinear", func(t *testing.T) {
		// 4x4 → 2x2 with INTER_LINEAR samples source (2x+0.5, 2y+0.5): the mean
		// of each 2x2 block. Blue of block (0,0): (0+4+40+44)/4 = 22.
		m := bgrMat(t, 4, 4, px)
		defer m.Close()
		p := raw
		p.Width, p.Height = 2, 2
		got := blobOf(t, p, m)
		want := []float32{22, 30, 102, 110} // blue channel, row-major
		for i, w := range want {
			if got[i] != w {
				t.Errorf("blue[%d] = %v, want %v (got %v)", i, got[i], w, got[:4])
			}
		}
	})

	t.Run("Stretch_Nearest", func(t *testing.T) {
		// INTER_NEAREST_EXACT picks source floor((x+0.5)*2) = 1, 3, like PIL
		// (Keras); plain INTER_NEAREST would pick 0, 2.
		m := bgrMat(t, 4, 4, px)
		defer m.Close()
		p := raw
		p.Width, p.Height, p.Interp = 2, 2, Nearest
		got := blobOf(t, p, m)
		want := []float32{4*1 + 40*1, 4*3 + 40*1, 4*1 + 40*3, 4*3 + 40*3}
		for i, w := range want {
			if got[i] != w {
				t.Errorf("blue[%d] = %v, want %v (got %v)", i, got[i], w, got[:4])
			}
		}
	})

	t.Run("ShorterSideThenCrop", func(t *testing.T) {
		// 8x4, shorter side 2: resize to int(2*8/4)=4 x 2 (exact halving:
		// 2x2 block means), then centre-crop 2x2 at x = round((4-2)/2) = 1.
		m := bgrMat(t, 8, 4, px)
		defer m.Close()
		p := raw
		p.Width, p.Height, p.Resize = 2, 2, Resize{Shorter: 2}
		got := blobOf(t, p, m)
		// Blue of resized block (bx, by) = mean of x in {2bx, 2bx+1}, y in {2by, 2by+1}
		// = 4*(2bx+0.5) + 40*(2by+0.5) = 8bx + 80by + 22; crop keeps bx = 1, 2.
		want := []float32{30, 38, 110, 118}
		for i, w := range want {
			if got[i] != w {
				t.Errorf("blue[%d] = %v, want %v (got %v)", i, got[i], w, got[:4])
			}
		}
	})

	t.Run("CropRounding", func(t *testing.T) {
		// torchvision: top = int(round((h - 224) / 2.0)), Python's round: half to even.
		p := Presets["torch"]
		for _, c := range []struct{ w, h, x, y int }{{256, 256, 16, 16}, {257, 256, 16, 16}, {259, 256, 18, 16}, {341, 256, 58, 16}} {
			r := p.cropRect(c.w, c.h)
			if r.Min.X != c.x || r.Min.Y != c.y || r.Dx() != 224 || r.Dy() != 224 {
				t.Errorf("crop of %dx%d = %v, want origin (%d,%d) size 224", c.w, c.h, r, c.x, c.y)
			}
		}
		// Resize(256) of a 500x375 image: shorter 375→256, longer int(256*500/375) = 341.
		if w, h := p.resizeTarget(500, 375); w != 341 || h != 256 {
			t.Errorf("resize target of 500x375 = %dx%d, want 341x256", w, h)
		}
		if w, h := p.resizeTarget(375, 500); w != 256 || h != 341 {
			t.Errorf("resize target of 375x500 = %dx%d, want 256x341", w, h)
		}
	})
}

func TestOverrides_Apply(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		p, err := Overrides{Preset: "caffe", Size: "299", Mean: "1,2,3", Std: "2", Scale: "1/255", SwapRB: "true", Resize: "shorter:320", Interp: "nearest"}.Apply(Presets["torch"])
		if err != nil {
			t.Fatal(err)
		}
		want := Preprocess{Preset: "caffe", Width: 299, Height: 299, Resize: Resize{320}, Interp: Nearest, SwapRB: true,
			Scale: 1.0 / 255, Mean: [3]float64{1, 2, 3}, Std: [3]float64{2, 2, 2}}
		if p != want {
			t.Errorf("got %+v\nwant %+v", p, want)
		}
	})
	t.Run("KeyIgnoresPresetName", func(t *testing.T) {
		a := Presets["caffe"]
		b := a
		b.Preset = "renamed"
		if a.Key() != b.Key() {
			t.Errorf("keys differ: %s vs %s", a.Key(), b.Key())
		}
		c := a
		c.Mean[0] += 1e-9
		if a.Key() == c.Key() {
			t.Error("keys equal for different means")
		}
	})
	for _, c := range []struct {
		o   Overrides
		msg string
	}{
		{Overrides{Preset: "keras2"}, `unknown preprocessing preset "keras2" (have caffe, keras, tf, torch)`},
		{Overrides{Std: "1,0,1"}, "std[1] must not be 0"},
		{Overrides{Mean: "1,2"}, "want one number or three"},
		{Overrides{Resize: "shorter:100"}, "smaller than the 224x224 crop"},
		{Overrides{Interp: "lanczos"}, `interpolation "lanczos"`},
		{Overrides{Scale: "1/0"}, "want a number or a fraction"},
		{Overrides{Size: "0x3"}, "want N or WxH"},
	} {
		t.Run("Err_"+c.msg[:8], func(t *testing.T) {
			_, err := c.o.Apply(Presets["torch"])
			if err == nil || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %v, want it to contain %q", err, c.msg)
			}
		})
	}
}

func TestRoundHalfEven(t *testing.T) {
	for _, c := range []struct{ in, want float64 }{{0.5, 0}, {1.5, 2}, {2.5, 2}, {1.4, 1}, {1.6, 2}, {-0.5, 0}, {-1.5, -2}} {
		if got := roundHalfEven(c.in); got != c.want {
			t.Errorf("roundHalfEven(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}
