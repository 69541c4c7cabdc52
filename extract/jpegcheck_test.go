package extract

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"strings"
	"testing"

	"pipeline/internal/testutil"
)

// TestDecode_JPEGWarning: a JPEG whose header claims more pixels than its
// data holds is a decode failure with libjpeg's warning as the message
// (issue 11.6); imdecode alone returns a mostly grey image.
func TestDecode_JPEGWarning(t *testing.T) {
	b := testutil.LyingJPEG(t, 9000, 9000)
	m, _, err := decodeMat(b, DecodeOptions{MaxPixels: 100_000_000})
	if err == nil {
		m.Close()
		t.Fatal("decoded a JPEG whose data covers 300x280 of the 9000x9000 it claims")
	}
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "Corrupt JPEG data: premature end of data segment") {
		t.Errorf("error %v, want ErrCorrupt with libjpeg's warning", err)
	}
	// The same file with its true size decodes.
	m, info, err := decodeMat(testutil.LyingJPEG(t, 300, 280), DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	if info.Width != 300 || info.Height != 280 {
		t.Errorf("size %dx%d", info.Width, info.Height)
	}
}

func BenchmarkJPEGScan(b *testing.B) {
	img := image.NewRGBA(image.Rect(0, 0, 500, 375))
	for y := 0; y < 375; y++ {
		for x := 0; x < 500; x++ {
			img.Set(x, y, color.RGBA{uint8(x * y), uint8(y), uint8(x ^ y), 255})
		}
	}
	var buf bytes.Buffer
	jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90})
	benchScanDecode(b, buf.Bytes(), jpegScan)
}

// benchScanDecode times a corrupt-image check (scan) against the whole
// decode it precedes, on the same file.
func benchScanDecode(b *testing.B, data []byte, scan func([]byte) error) {
	b.Run("scan", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if err := scan(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			m, _, err := decodeMat(data, DecodeOptions{})
			if err != nil {
				b.Fatal(err)
			}
			m.Close()
		}
	})
}
