// Package testutil holds what the tests of several packages share: numeric
// comparisons, picture writers, file copies and model fixture builders. It
// is imported only from _test.go files.
package testutil

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"testing"
)

// Chunk is one PNG chunk; BadCRC writes it with a wrong CRC.
type Chunk struct {
	Name   string
	Data   []byte
	BadCRC bool
}

// PNGChunks encodes a w x h RGB gradient with image/png and splits it into
// its chunks, for tests that damage PNG files the way disks and transfers
// do.
func PNGChunks(t testing.TB, w, h int) []Chunk {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.SetNRGBA(x, y, color.NRGBA{uint8(x * 7), uint8(y * 5), uint8(x ^ y), 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	var c []Chunk
	for i := 8; i+12 <= len(b); {
		n := int(binary.BigEndian.Uint32(b[i:]))
		c = append(c, Chunk{Name: string(b[i+4 : i+8]), Data: append([]byte(nil), b[i+8:i+8+n]...)})
		i += 12 + n
	}
	return c
}

// CloneChunks is a deep copy of c.
func CloneChunks(c []Chunk) []Chunk {
	out := make([]Chunk, len(c))
	for i, k := range c {
		out[i] = Chunk{Name: k.Name, Data: append([]byte(nil), k.Data...), BadCRC: k.BadCRC}
	}
	return out
}

// EncodeChunks writes the PNG signature and the chunks with their CRCs.
func EncodeChunks(c []Chunk) []byte {
	out := []byte("\x89PNG\r\n\x1a\n")
	for _, k := range c {
		out = binary.BigEndian.AppendUint32(out, uint32(len(k.Data)))
		start := len(out)
		out = append(out, k.Name...)
		out = append(out, k.Data...)
		crc := crc32.ChecksumIEEE(out[start:])
		if k.BadCRC {
			crc ^= 0x5a5a
		}
		out = binary.BigEndian.AppendUint32(out, crc)
	}
	return out
}

// WithChunk inserts k before the chunk at index i.
func WithChunk(c []Chunk, i int, k Chunk) []Chunk {
	out := append([]Chunk(nil), c[:i]...)
	out = append(out, k)
	return append(out, c[i:]...)
}

// IDAT is the zlib stream of the image data (the IDAT chunks joined).
func IDAT(c []Chunk) []byte {
	var z []byte
	for _, k := range c {
		if k.Name == "IDAT" {
			z = append(z, k.Data...)
		}
	}
	return z
}

// WithIDAT replaces the image data by one IDAT chunk holding z.
func WithIDAT(c []Chunk, z []byte) []Chunk {
	var out []Chunk
	done := false
	for _, k := range c {
		if k.Name != "IDAT" {
			out = append(out, k)
		} else if !done {
			out = append(out, Chunk{Name: "IDAT", Data: z})
			done = true
		}
	}
	return out
}
