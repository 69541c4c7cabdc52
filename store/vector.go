package store

import (
	"encoding/binary"
	"fmt"
	"math"
)

// EncodeVector returns v as the features.vector BLOB: len(v) little-endian
// IEEE-754 float32 values, the layout sqlite-vec reads as a float32 vector
// (vec_length, vec_distance_cosine, vec0 tables) without conversion.
func EncodeVector(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// DecodeVector is the inverse of EncodeVector. The length must be a
// multiple of 4.
func DecodeVector(b []byte) ([]float32, error) {
	if len(b)%4 != 0 {
		return nil, fmt.Errorf("decode vector: %d bytes is not a whole number of float32", len(b))
	}
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v, nil
}

// nonFinite returns the index of the first NaN or ±Inf in an encoded
// vector, or -1. It looks at the exponent bits, without decoding.
func nonFinite(b []byte) int {
	for i := 0; i+4 <= len(b); i += 4 {
		if binary.LittleEndian.Uint32(b[i:])&0x7f800000 == 0x7f800000 {
			return i / 4
		}
	}
	return -1
}
