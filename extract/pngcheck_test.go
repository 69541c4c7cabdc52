package extract

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	"strings"
	"testing"

	"pipeline/internal/testutil"
)

// TestDecode_PNGWarnings: a PNG that libpng only warns about (OpenCV's
// imdecode prints "libpng warning: ..." and returns the image) or fails on
// is a decode failure with libpng's message (issue 11.6); a harmless
// warning about a metadata chunk is not, and the file decodes to the same
// pixels as without that chunk.
func TestDecode_PNGWarnings(t *testing.T) {
	good := testutil.PNGChunks(t, 37, 23)
	cases := []struct {
		name, want string
		corrupt    func(c []testutil.Chunk) []testutil.Chunk
	}{
		{"AncillaryCRC", "tEXt: CRC error", func(c []testutil.Chunk) []testutil.Chunk {
			return testutil.WithChunk(c, 1, testutil.Chunk{Name: "tEXt", Data: []byte("Comment\x00hello"), BadCRC: true})
		}},
		{"IDATDataCheck", "incorrect data check", func(c []testutil.Chunk) []testutil.Chunk {
			z := testutil.IDAT(c)
			z[len(z)-1] ^= 0xff // zlib's Adler-32 of the pixel rows
			return testutil.WithIDAT(c, z)
		}},
		{"ExtraCompressedData", "xtra compressed data", func(c []testutil.Chunk) []testutil.Chunk {
			return testutil.WithIDAT(c, append(testutil.IDAT(c), 0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01))
		}},
		{"TruncatedIDAT", "image data", func(c []testutil.Chunk) []testutil.Chunk {
			z := testutil.IDAT(c)
			return testutil.WithIDAT(c, z[:len(z)/2])
		}},
		{"IDATCRC", "IDAT: CRC error", func(c []testutil.Chunk) []testutil.Chunk {
			for i := range c {
				if c[i].Name == "IDAT" {
					c[i].BadCRC = true
				}
			}
			return c
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := testutil.EncodeChunks(tc.corrupt(testutil.CloneChunks(good)))
			m, _, err := decodeMat(b, DecodeOptions{})
			if err == nil {
				m.Close()
				t.Fatal("decoded a damaged PNG")
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "libpng: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want ErrCorrupt with libpng's %q", err, tc.want)
			}
		})
	}
	t.Run("BenignMetadata", func(t *testing.T) {
		// A gAMA chunk of the wrong length: libpng warns "gAMA: invalid".
		bad := testutil.EncodeChunks(testutil.WithChunk(testutil.CloneChunks(good), 1, testutil.Chunk{Name: "gAMA", Data: []byte{0, 1, 2}}))
		clean, err := pngScan(bad)
		if err != nil {
			t.Fatalf("pngScan: %v", err)
		}
		if !bytes.Equal(clean, testutil.EncodeChunks(good)) {
			t.Error("the gAMA chunk libpng warned about is still there")
		}
		m, _, err := decodeMat(bad, DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		ref, _, err := decodeMat(testutil.EncodeChunks(good), DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer ref.Close()
		if !bytes.Equal(m.ToBytes(), ref.ToBytes()) {
			t.Error("pixels differ from the file without the chunk")
		}
	})
}

func BenchmarkPNGScan(b *testing.B) {
	data := testutil.EncodeChunks(testutil.PNGChunks(b, 500, 375))
	benchScanDecode(b, data, func(d []byte) error { _, err := pngScan(d); return err })
}

// adam7 encodes img as an interlaced (Adam7) 8-bit RGB PNG, which Go's
// encoder cannot write: seven passes of sub-images, each row with filter 0.
func adam7(t *testing.T, img *image.NRGBA) []byte {
	t.Helper()
	w, h := img.Rect.Dx(), img.Rect.Dy()
	passes := [7][4]int{{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4}, {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}}
	var raw []byte
	for _, p := range passes {
		x0, y0, dx, dy := p[0], p[1], p[2], p[3]
		if x0 >= w || y0 >= h {
			continue
		}
		for y := y0; y < h; y += dy {
			raw = append(raw, 0)
			for x := x0; x < w; x += dx {
				c := img.NRGBAAt(x, y)
				raw = append(raw, c.R, c.G, c.B)
			}
		}
	}
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(raw)
	zw.Close()
	ihdr := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, uint32(w)), uint32(h))
	ihdr = append(ihdr, 8, 2, 0, 0, 1) // 8-bit RGB, interlace method 1
	return testutil.EncodeChunks([]testutil.Chunk{{Name: "IHDR", Data: ihdr}, {Name: "IDAT", Data: z.Bytes()}, {Name: "IEND"}})
}

// TestDecode_PNGInterlaced: pngScan reads every pass of an interlaced
// PNG without a warning, and the file decodes to the same pixels as the
// same picture not interlaced.
func TestDecode_PNGInterlaced(t *testing.T) {
	img := image.NewNRGBA(image.Rect(0, 0, 13, 11))
	for y := 0; y < 11; y++ {
		for x := 0; x < 13; x++ {
			img.SetNRGBA(x, y, color.NRGBA{uint8(19 * x), uint8(23 * y), uint8(x*y + 7), 255})
		}
	}
	m, _, err := decodeMat(adam7(t, img), DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ref, _, err := decodeMat(testutil.EncodePNG(t, img), DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	if !bytes.Equal(m.ToBytes(), ref.ToBytes()) {
		t.Error("the interlaced PNG decodes to other pixels")
	}
	// Damage in the last pass is found too.
	b := adam7(t, img)
	b[len(b)-13] ^= 0xff // the last byte of the IDAT chunk's CRC (IEND is the last 12 bytes)
	if m2, _, err := decodeMat(b, DecodeOptions{}); err == nil {
		m2.Close()
		t.Error("decoded an interlaced PNG with a bad IDAT CRC")
	} else if !strings.Contains(err.Error(), "libpng: ") {
		t.Errorf("error %v, want libpng's", err)
	}
}
