package testutil

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"path/filepath"
	"strings"
	"testing"
)

// EncodePNG encodes img with Go's PNG encoder.
func EncodePNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// EncodeJPEG encodes img with Go's JPEG encoder at quality q.
func EncodeJPEG(t testing.TB, img image.Image, q int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: q}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// WritePicture writes img to path as PNG or, for any other extension, as
// JPEG of quality 90 (making the directory), and returns the file's bytes.
func WritePicture(t testing.TB, path string, img image.Image) []byte {
	t.Helper()
	var b []byte
	if strings.EqualFold(filepath.Ext(path), ".png") {
		b = EncodePNG(t, img)
	} else {
		b = EncodeJPEG(t, img, 90)
	}
	WriteFile(t, path, b)
	return b
}

// LyingJPEG is a 300x280 JPEG whose SOF0 header claims w x h: libjpeg
// warns "Corrupt JPEG data: premature end of data segment" when w x h is
// larger, and decodes grey rows where the data runs out.
func LyingJPEG(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 300, 280))
	for y := 0; y < 280; y++ {
		for x := 0; x < 300; x++ {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), uint8(x ^ y), 255})
		}
	}
	data := EncodeJPEG(t, img, 90)
	i := bytes.Index(data, []byte{0xff, 0xc0})
	if i < 0 {
		t.Fatal("no SOF0 in Go's JPEG")
	}
	// FFC0, length (2), precision (1), height (2), width (2).
	data[i+5], data[i+6] = byte(h>>8), byte(h)
	data[i+7], data[i+8] = byte(w>>8), byte(w)
	return data
}
