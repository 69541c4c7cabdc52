package testutil

import (
	"bytes"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"
)

func TestRelErrAndCosine(t *testing.T) {
	if got := RelErr([]float32{1, 2.5, -4}, []float64{1, 2, -4}); math.Abs(got-0.125) > 1e-12 {
		t.Errorf("RelErr = %v, want 0.5/4", got)
	}
	if got := RelErr([]float64{0.25, 0}, []float64{0, 0}); got != 0.25 {
		t.Errorf("RelErr against zeros = %v, want the absolute error 0.25", got)
	}
	if got := CosineDistance([]float64{1, 0}, []float64{0, 3}); math.Abs(got-1) > 1e-12 {
		t.Errorf("orthogonal: %v", got)
	}
	if got := Cosine([]float32{1, 1}, []float32{2, 2}); math.Abs(got-1) > 1e-6 {
		t.Errorf("parallel: %v", got)
	}
}

// The chunk helpers round-trip: the chunks of Go's PNG encode back to a
// file Go decodes to the same picture, and a damaged CRC is refused.
func TestPNGChunks(t *testing.T) {
	c := PNGChunks(t, 9, 7)
	if c[0].Name != "IHDR" || c[len(c)-1].Name != "IEND" || len(IDAT(c)) == 0 {
		t.Fatalf("chunks %v", c)
	}
	img, err := png.Decode(bytes.NewReader(EncodeChunks(WithIDAT(CloneChunks(c), IDAT(c)))))
	if err != nil {
		t.Fatal(err)
	}
	if r, g, _, _ := img.At(3, 2).RGBA(); r>>8 != 21 || g>>8 != 10 {
		t.Errorf("pixel (3,2) = %d,%d", r>>8, g>>8)
	}
	bad := CloneChunks(c)
	bad[0].BadCRC = true
	if _, err := png.Decode(bytes.NewReader(EncodeChunks(bad))); err == nil {
		t.Error("a bad IHDR CRC decodes")
	}
}

func TestCopyFileKeepsMode(t *testing.T) {
	dir := t.TempDir()
	from, to := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	if err := os.WriteFile(from, []byte("x"), 0o750); err != nil {
		t.Fatal(err)
	}
	CopyFile(t, from, to)
	fi, err := os.Stat(to)
	if err != nil || fi.Mode().Perm() != 0o750 {
		t.Errorf("copy: %v, mode %v", err, fi.Mode())
	}
	if b, _ := os.ReadFile(to); string(b) != "x" {
		t.Errorf("copy holds %q", b)
	}
}
