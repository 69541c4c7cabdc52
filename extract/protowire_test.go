package extract

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"
)

// pbuf is a minimal protobuf wire-format writer, enough to write the Caffe
// NetParameter and TensorFlow GraphDef fixtures the tests load through
// OpenCV. Fields are written in the order the methods are called.
type pbuf struct{ b []byte }

// Wire types (protobuf encoding spec).
const (
	wireVarint = 0
	wireLen    = 2
	wireFixed  = 5 // 32-bit
)

func (p *pbuf) varint(v uint64) { p.b = binary.AppendUvarint(p.b, v) }

func (p *pbuf) tag(field, wire int) { p.varint(uint64(field)<<3 | uint64(wire)) }

// int writes a varint field (int32, int64, enum, bool). Negative values
// take ten bytes, as protobuf encodes int32 and int64 alike.
func (p *pbuf) int(field int, v int64) {
	p.tag(field, wireVarint)
	p.varint(uint64(v))
}

func (p *pbuf) bool(field int, v bool) {
	x := int64(0)
	if v {
		x = 1
	}
	p.int(field, x)
}

// float writes a float (fixed32) field.
func (p *pbuf) float(field int, v float32) {
	p.tag(field, wireFixed)
	p.b = binary.LittleEndian.AppendUint32(p.b, math.Float32bits(v))
}

func (p *pbuf) bytes(field int, v []byte) {
	p.tag(field, wireLen)
	p.varint(uint64(len(v)))
	p.b = append(p.b, v...)
}

func (p *pbuf) string(field int, s string) { p.bytes(field, []byte(s)) }

// msg writes an embedded message built by fill.
func (p *pbuf) msg(field int, fill func(*pbuf)) {
	var sub pbuf
	fill(&sub)
	p.bytes(field, sub.b)
}

// floats writes a packed repeated float field.
func (p *pbuf) floats(field int, v []float32) {
	var sub pbuf
	for _, x := range v {
		sub.b = binary.LittleEndian.AppendUint32(sub.b, math.Float32bits(x))
	}
	p.bytes(field, sub.b)
}

// ints writes a packed repeated varint field.
func (p *pbuf) ints(field int, v []int64) {
	var sub pbuf
	for _, x := range v {
		sub.varint(uint64(x))
	}
	p.bytes(field, sub.b)
}

// TestPbuf checks the writer against the examples of the protobuf encoding
// documentation (protobuf.dev/programming-guides/encoding).
func TestPbuf(t *testing.T) {
	for _, c := range []struct {
		name  string
		write func(*pbuf)
		want  []byte
	}{
		{"Varint150", func(p *pbuf) { p.int(1, 150) }, []byte{0x08, 0x96, 0x01}},
		{"String", func(p *pbuf) { p.string(2, "testing") }, []byte{0x12, 0x07, 't', 'e', 's', 't', 'i', 'n', 'g'}},
		{"Embedded", func(p *pbuf) { p.msg(3, func(q *pbuf) { q.int(1, 150) }) }, []byte{0x1a, 0x03, 0x08, 0x96, 0x01}},
		{"PackedInts", func(p *pbuf) { p.ints(4, []int64{3, 270, 86942}) }, []byte{0x22, 0x06, 0x03, 0x8e, 0x02, 0x9e, 0xa7, 0x05}},
		{"NegativeInt", func(p *pbuf) { p.int(1, -2) }, []byte{0x08, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
		{"Float", func(p *pbuf) { p.float(5, 1) }, []byte{0x2d, 0x00, 0x00, 0x80, 0x3f}},
		{"PackedFloats", func(p *pbuf) { p.floats(5, []float32{1, -2}) }, []byte{0x2a, 0x08, 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0}},
		{"Bool", func(p *pbuf) { p.bool(5, true) }, []byte{0x28, 0x01}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var p pbuf
			c.write(&p)
			if !bytes.Equal(p.b, c.want) {
				t.Errorf("got % x, want % x", p.b, c.want)
			}
		})
	}
}
