package extract

import (
	"image"
	"image/color"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"pipeline/internal/testutil"
)

// pillowLoadImg is Keras's image.load_img(path, target_size=(h, w)) with
// its defaults (Pillow open, convert('RGB') when not RGB, resize NEAREST
// when the size differs), printing the RGB bytes.
const pillowLoadImg = `
import sys
from PIL import Image
path, w, h = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
img = Image.open(path)
if img.mode != "RGB":
    img = img.convert("RGB")
if img.size != (w, h):
    img = img.resize((w, h), Image.NEAREST)
sys.stdout.buffer.write(img.tobytes())
`

// TestPreprocess_KerasMatchesPillow: the keras preset gives, pixel for
// pixel, what Keras's load_img + preprocess_input give through Pillow:
// JPEG (libjpeg on both sides), PNG, grayscale, an EXIF-rotated JPEG
// (Pillow does not rotate), an image smaller than the input (upscaled).
func TestPreprocess_KerasMatchesPillow(t *testing.T) {
	py := "/usr/bin/python3"
	if exec.Command(py, "-c", "import PIL").Run() != nil {
		t.Skip("Pillow not installed for /usr/bin/python3: apt-get install python3-pil (scripts/deps.sh --test)")
	}
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(21, 1))
	photo := image.NewRGBA(image.Rect(0, 0, 301, 199))
	for y := 0; y < 199; y++ {
		for x := 0; x < 301; x++ {
			// smooth gradients plus noise: JPEG-like content
			photo.Set(x, y, color.RGBA{uint8(x*255/300 + r.IntN(20)), uint8(y*255/198 + r.IntN(20) - 10), uint8((x+y)/2 + r.IntN(30)), 255})
		}
	}
	gray := image.NewGray(image.Rect(0, 0, 97, 500))
	for i := range gray.Pix {
		gray.Pix[i] = uint8(r.IntN(256))
	}
	small := image.NewRGBA(image.Rect(0, 0, 50, 40))
	for i := range small.Pix {
		small.Pix[i] = uint8(r.IntN(256))
		if i%4 == 3 {
			small.Pix[i] = 255
		}
	}
	files := map[string][]byte{
		"photo.jpg":   testutil.EncodeJPEG(t, photo, 90),
		"photo.png":   testutil.EncodePNG(t, photo),
		"gray.png":    testutil.EncodePNG(t, gray),
		"rotated.jpg": withEXIFOrientation(testutil.EncodeJPEG(t, photo, 85), 6),
		"small.png":   testutil.EncodePNG(t, small),
	}
	// Real photos, when the shared seed4 dataset is there: camera JPEGs
	// of all sizes (some with EXIF orientation, some progressive).
	for _, class := range []string{"Humans", "cats", "dogs", "horses"} {
		paths, _ := filepath.Glob(filepath.Join("..", "..", "shared", "datasets", "seed4", class, "*"))
		for _, f := range paths[:min(3, len(paths))] {
			if b, err := os.ReadFile(f); err == nil {
				files["seed4-"+class+"-"+filepath.Base(f)] = b
			}
		}
	}
	p := Presets["keras"]
	for name, data := range files {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name)
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			want, err := exec.Command(py, "-c", pillowLoadImg, path, "224", "224").Output()
			if err != nil {
				t.Fatal(err)
			}
			blob, _, err := p.FileBlob(data, DecodeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			n := p.Width * p.Height
			if len(want) != 3*n {
				t.Fatalf("Pillow gave %d bytes, want %d", len(want), 3*n)
			}
			diff, worst := 0, 0.0
			for i := 0; i < n; i++ {
				for c := 0; c < 3; c++ { // blob channel c is BGR; Pillow bytes are RGB
					ref := float64(want[3*i+2-c]) - p.Mean[c]
					d := float64(blob[c*n+i]) - ref
					if d < 0 {
						d = -d
					}
					if d > 1e-4 {
						diff++
						worst = max(worst, d)
					}
				}
			}
			t.Logf("%s: %d of %d values differ from Pillow's (worst by %.0f)", name, diff, 3*n, worst)
			if diff != 0 {
				t.Errorf("%s: %d values differ from Keras's load_img + preprocess_input (worst %.0f)", name, diff, worst)
			}
		})
	}
}
