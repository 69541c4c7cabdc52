package extract

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"os"
	"strings"
	"testing"

	"gocv.io/x/gocv"

	"pipeline/internal/testutil"
)

// withEXIFOrientation inserts an APP1 Exif segment with the given
// Orientation tag right after the SOI marker of a JPEG.
func withEXIFOrientation(jpg []byte, orientation uint16) []byte {
	var tiff bytes.Buffer
	tiff.WriteString("MM\x00\x2a")                        // big-endian TIFF header
	binary.Write(&tiff, binary.BigEndian, uint32(8))      // IFD0 offset
	binary.Write(&tiff, binary.BigEndian, uint16(1))      // one entry
	binary.Write(&tiff, binary.BigEndian, uint16(0x0112)) // Orientation
	binary.Write(&tiff, binary.BigEndian, uint16(3))      // SHORT
	binary.Write(&tiff, binary.BigEndian, uint32(1))      // count
	binary.Write(&tiff, binary.BigEndian, orientation)
	binary.Write(&tiff, binary.BigEndian, uint16(0))
	binary.Write(&tiff, binary.BigEndian, uint32(0)) // no next IFD
	payload := append([]byte("Exif\x00\x00"), tiff.Bytes()...)
	var out bytes.Buffer
	out.Write(jpg[:2])
	out.Write([]byte{0xff, 0xe1})
	binary.Write(&out, binary.BigEndian, uint16(len(payload)+2))
	out.Write(payload)
	out.Write(jpg[2:])
	return out.Bytes()
}

func matAt(t *testing.T, m gocv.Mat, x, y int) [3]int {
	t.Helper()
	v := m.GetVecbAt(y, x)
	return [3]int{int(v[0]), int(v[1]), int(v[2])}
}

func near(a, b [3]int, tol int) bool {
	for i := range a {
		if abs(a[i]-b[i]) > tol {
			return false
		}
	}
	return true
}

func TestDecode(t *testing.T) {
	// A 6x4 picture: left half red, right half blue.
	rgba := image.NewRGBA(image.Rect(0, 0, 6, 4))
	for y := 0; y < 4; y++ {
		for x := 0; x < 6; x++ {
			c := color.RGBA{200, 10, 10, 255}
			if x >= 3 {
				c = color.RGBA{10, 10, 200, 255}
			}
			rgba.Set(x, y, c)
		}
	}

	t.Run("OK_PNG", func(t *testing.T) {
		m, info, err := decodeMat(testutil.EncodePNG(t, rgba), DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if info.Format != "png" || info.Width != 6 || info.Height != 4 {
			t.Fatalf("info = %+v, want png 6x4", info)
		}
		if got, want := matAt(t, m, 0, 0), [3]int{10, 10, 200}; got != want { // BGR
			t.Errorf("pixel (0,0) = %v, want %v (BGR)", got, want)
		}
	})

	t.Run("OK_EXIFOrientation", func(t *testing.T) {
		// Orientation 6: the stored image must be rotated 90° clockwise to
		// display: 6x4 becomes 4x6 and the red left half goes to the top.
		data := withEXIFOrientation(testutil.EncodeJPEG(t, rgba, 100), 6)
		m, info, err := decodeMat(data, DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if info.Width != 4 || info.Height != 6 {
			t.Fatalf("decoded %dx%d, want 4x6 after EXIF rotation", info.Width, info.Height)
		}
		if got := matAt(t, m, 1, 0); !near(got, [3]int{10, 10, 200}, 40) {
			t.Errorf("top row = %v (BGR), want red: EXIF orientation not applied", got)
		}
		if got := matAt(t, m, 1, 5); !near(got, [3]int{200, 10, 10}, 40) {
			t.Errorf("bottom row = %v (BGR), want blue", got)
		}
	})

	t.Run("OK_Gray", func(t *testing.T) {
		g := image.NewGray(image.Rect(0, 0, 5, 5))
		for i := range g.Pix {
			g.Pix[i] = 77
		}
		m, _, err := decodeMat(testutil.EncodePNG(t, g), DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if m.Channels() != 3 || matAt(t, m, 2, 2) != [3]int{77, 77, 77} {
			t.Errorf("gray: %d channels, pixel %v; want 3 channels of 77", m.Channels(), matAt(t, m, 2, 2))
		}
	})

	t.Run("OK_RGBA_AlphaDropped", func(t *testing.T) {
		n := image.NewNRGBA(image.Rect(0, 0, 3, 3))
		for i := 0; i < len(n.Pix); i += 4 {
			copy(n.Pix[i:], []byte{30, 60, 90, 0}) // fully transparent
		}
		m, _, err := decodeMat(testutil.EncodePNG(t, n), DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if got := matAt(t, m, 1, 1); got != [3]int{90, 60, 30} {
			t.Errorf("RGBA pixel = %v, want the colour without alpha [90 60 30] (BGR)", got)
		}
	})

	t.Run("OK_16bit", func(t *testing.T) {
		n := image.NewNRGBA64(image.Rect(0, 0, 3, 3))
		for y := 0; y < 3; y++ {
			for x := 0; x < 3; x++ {
				n.SetNRGBA64(x, y, color.NRGBA64{R: 0xffff, G: 0x8000, B: 0x0100, A: 0xffff})
			}
		}
		m, _, err := decodeMat(testutil.EncodePNG(t, n), DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if m.Type() != gocv.MatTypeCV8UC3 {
			t.Fatalf("type %v, want 8UC3", m.Type())
		}
		// 16-bit to 8-bit keeps the high byte: 0xffff→255, 0x8000→128, 0x0100→1.
		if got := matAt(t, m, 0, 0); got != [3]int{1, 128, 255} {
			t.Errorf("16-bit pixel = %v, want [1 128 255] (BGR)", got)
		}
	})

	t.Run("OK_CMYK", func(t *testing.T) {
		data, err := os.ReadFile("../testdata/images/cmyk.jpg")
		if err != nil {
			t.Fatal(err)
		}
		m, _, err := decodeMat(data, DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		// Pillow's CMYK→RGB of the same file (testdata/images/README.md), as BGR.
		for _, c := range []struct {
			x, y int
			bgr  [3]int
		}{{0, 0, [3]int{235, 235, 235}}, {3, 0, [3]int{235, 235, 151}}, {6, 0, [3]int{235, 235, 69}}, {7, 5, [3]int{235, 51, 41}}} {
			if got := matAt(t, m, c.x, c.y); !near(got, c.bgr, 3) {
				t.Errorf("CMYK pixel (%d,%d) = %v, want %v ±3", c.x, c.y, got, c.bgr)
			}
		}
	})

	bad := []struct {
		name string
		data func(t *testing.T) []byte
		err  error
		msg  string
	}{
		{"ErrEmpty", func(t *testing.T) []byte { return nil }, ErrEmptyFile, "0 bytes"},
		{"ErrText", func(t *testing.T) []byte { return []byte("hello, this is not a picture\n") }, ErrNotImage, `"hello, this is n"...`},
		{"ErrGIF", func(t *testing.T) []byte {
			var b bytes.Buffer
			gif.Encode(&b, rgba, nil)
			return b.Bytes()
		}, ErrUnsupported, "GIF"},
		{"ErrTruncatedJPEG", func(t *testing.T) []byte {
			j := testutil.EncodeJPEG(t, rgba, 90)
			return j[:len(j)*2/3]
		}, ErrCorrupt, "truncated JPEG"},
		{"ErrTruncatedPNG", func(t *testing.T) []byte {
			p := testutil.EncodePNG(t, rgba)
			return p[:len(p)-20]
		}, ErrCorrupt, "truncated PNG"},
		{"ErrHugeHeader", func(t *testing.T) []byte { return pngHeaderOnly(100000, 100000) }, ErrTooLarge, "100000x100000 = 10.0G pixels, over the limit of 100.0M"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			m, _, err := decodeMat(c.data(t), DecodeOptions{MaxPixels: 100_000_000})
			if err == nil {
				m.Close()
				t.Fatal("no error")
			}
			if !errors.Is(err, c.err) || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %q, want %v containing %q", err, c.err, c.msg)
			}
		})
	}
}

// pngHeaderOnly is a PNG that claims w x h pixels in its IHDR and has no
// data: a decoder that trusted it would allocate w*h*3 bytes.
func pngHeaderOnly(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 2 // 8-bit RGB
	writeChunk(&b, "IHDR", ihdr)
	writeChunk(&b, "IDAT", []byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01})
	writeChunk(&b, "IEND", nil)
	return b.Bytes()
}

func writeChunk(b *bytes.Buffer, typ string, data []byte) {
	binary.Write(b, binary.BigEndian, uint32(len(data)))
	b.WriteString(typ)
	b.Write(data)
	binary.Write(b, binary.BigEndian, crc32.ChecksumIEEE(append([]byte(typ), data...)))
}

func TestReducedFlag(t *testing.T) {
	for _, c := range []struct {
		w, h int
		want gocv.IMReadFlag
	}{
		{4000, 3000, gocv.IMReadReducedColor8}, // 500x375 still ≥ 256
		{1600, 1200, gocv.IMReadReducedColor4}, // /8 = 200x150 < 256
		{1200, 1000, gocv.IMReadReducedColor2}, // /4 = 300x250 < 256
		{600, 500, gocv.IMReadColor},           // /2 = 300x250 < 256
		{500, 4000, gocv.IMReadColor},          // portrait: /2 = 250 wide
	} {
		if got := reducedFlag(c.w, c.h, 256, 256); got != c.want {
			t.Errorf("reducedFlag(%d, %d) = %v, want %v", c.w, c.h, got, c.want)
		}
	}
}
