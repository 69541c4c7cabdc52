package extract

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"strings"
	"testing"
)

// lyingJPEG is a 300x280 JPEG whose SOF0 claims w x h.
func lyingJPEG(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 300, 280))
	for y := 0; y < 280; y++ {
		for x := 0; x < 300; x++ {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), uint8(x ^ y), 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	data := b.Bytes()
	i := bytes.Index(data, []byte{0xff, 0xc0})
	if i < 0 {
		t.Fatal("no SOF0")
	}
	// FFC0, length (2), precision (1), height (2), width (2).
	data[i+5], data[i+6] = byte(h>>8), byte(h)
	data[i+7], data[i+8] = byte(w>>8), byte(w)
	return data
}

// TestDecode_JPEGWarning: a JPEG whose header claims more pixels than its
// data holds is a decode failure with libjpeg's warning as the message
// (issue 11.6); imdecode alone returns a mostly grey image.
func TestDecode_JPEGWarning(t *testing.T) {
	b := lyingJPEG(t, 9000, 9000)
	m, _, err := decodeMat(b, DecodeOptions{MaxPixels: 100_000_000})
	if err == nil {
		m.Close()
		t.Fatal("decoded a JPEG whose data covers 300x280 of the 9000x9000 it claims")
	}
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "Corrupt JPEG data: premature end of data segment") {
		t.Errorf("error %v, want ErrCorrupt with libjpeg's warning", err)
	}
	// The same file with its true size decodes.
	m, info, err := decodeMat(lyingJPEG(t, 300, 280), DecodeOptions{})
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
	data := buf.Bytes()
	b.Run("scan", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if err := jpegScan(data); err != nil {
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
