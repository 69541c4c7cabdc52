package onnx

import (
	"bytes"

	"fmt"
	"os"
	"syscall"
	"unsafe"
)

// Mapped is an .onnx file whose structure is decoded (as ReadGraph does)
// and whose bytes are mapped read-only into memory, so that each
// initializer's payload can be read when it is needed and released right
// after: a loader that converts the weights one layer at a time (the oneDNN
// engine) then holds the file's weights about once, never the whole decoded
// model beside its own copy. A float payload stored packed (float_data) or
// in raw_data, little-endian on a little-endian machine and 4-byte aligned
// in the file, is a view of the mapping: no copy at all.
//
// The mapping is MAP_PRIVATE and read-only; the file must not be truncated
// while it is mapped (the model cache replaces files by renaming, which
// keeps the mapped inode alive).
type Mapped struct {
	Model  *Model
	data   []byte
	spans  *spans
	copies map[*Tensor][]byte // aligned copies (copyOut), unmapped by Release
}

// Linux madvise advice values the syscall package does not name.
const (
	madvHugePage     = 14 // MADV_HUGEPAGE
	madvPopulateRead = 22 // MADV_POPULATE_READ (Linux 5.14): map the pages in one call
)

type fileSpan struct {
	field      int   // payload field number (tensorRawData, tensorFloatData)
	start, end int64 // byte range in the file
}

// spans records, per initializer, the byte range of its TensorProto
// message and of its single packed or raw payload field.
type spans struct {
	message map[*Tensor]fileSpan
	payload map[*Tensor]fileSpan
	mixed   map[*Tensor]bool // more than one payload field, or an unpacked one
}

// Map decodes the structure of an .onnx file and maps the file into
// memory. Close unmaps it; views returned by Float32 are invalid after.
func Map(path string) (*Mapped, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	sp := &spans{message: map[*Tensor]fileSpan{}, payload: map[*Tensor]fileSpan{}, mixed: map[*Tensor]bool{}}
	d := newDecoder(f, f, false)
	d.spans = sp
	m, err := d.model(st.Size())
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	mp := &Mapped{Model: m, spans: sp, copies: map[*Tensor][]byte{}}
	if st.Size() == 0 {
		return mp, nil
	}
	mp.data, err = syscall.Mmap(int(f.Fd()), 0, int(st.Size()), syscall.PROT_READ, syscall.MAP_PRIVATE)
	if err != nil {
		return nil, fmt.Errorf("map %s: %w", path, err)
	}
	return mp, nil
}

// Close unmaps the file.
func (mp *Mapped) Close() error {
	if mp == nil || mp.data == nil {
		return nil
	}
	for t := range mp.copies {
		mp.Release(t)
	}
	err := syscall.Munmap(mp.data)
	mp.data = nil
	return err
}

// littleEndian is true on machines whose float32 bytes are ONNX's order.
var littleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// Float32 returns an initializer's payload as float32 (Float and Double
// tensors, and the small integer tensors ReadGraph keeps). The slice is a
// view of the mapping when the payload allows it (see Mapped), otherwise a
// fresh copy; either way the caller must not modify it, and must not use it
// after Release or Close.
func (mp *Mapped) Float32(t *Tensor) ([]float32, error) {
	if t.Float32 != nil {
		return t.Float32, nil
	}
	if t.External {
		return nil, fmt.Errorf("tensor %q: external data is not supported", t.Name)
	}
	if mp.data == nil {
		return nil, fmt.Errorf("tensor %q: file is not mapped", t.Name)
	}
	if p, ok := mp.floatSpan(t); ok {
		b := mp.data[p.start:p.end]
		if uintptr(unsafe.Pointer(&b[0]))%4 == 0 {
			_ = syscall.Madvise(b, madvPopulateRead) // fewer page faults; advice only
			return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), len(b)/4), nil
		}
		return mp.copyOut(t, p), nil
	}
	full, err := mp.decode(t)
	if err != nil {
		return nil, err
	}
	return full.Float32s()
}

// UnalignedFloat32 returns the bytes of a Float tensor's payload in the
// mapping (little-endian float32s) when they are not 4-byte aligned, for a
// consumer that copies them with memcpy (C), so that no aligned copy of the
// whole tensor is made; ok is false otherwise (use Float32).
func (mp *Mapped) UnalignedFloat32(t *Tensor) (b []byte, ok bool) {
	p, ok := mp.floatSpan(t)
	if !ok || mp.data == nil {
		return nil, false
	}
	b = mp.data[p.start:p.end]
	if uintptr(unsafe.Pointer(&b[0]))%4 == 0 {
		return nil, false
	}
	return b, true
}

// floatSpan returns where a Float tensor's payload lies when it is one
// packed or raw field of little-endian float32s of the right length.
func (mp *Mapped) floatSpan(t *Tensor) (fileSpan, bool) {
	p, ok := mp.spans.payload[t]
	n := t.NumElements()
	if !ok || mp.spans.mixed[t] || t.DataType != Float || !littleEndian || n == 0 || p.end-p.start != 4*int64(n) {
		return p, false
	}
	return p, p.field == tensorRawData || p.field == tensorFloatData
}

// copyOut copies a payload that is not 4-byte aligned in the file into
// aligned memory of its own (anonymous, advised to use huge pages: few page
// faults), releasing the file's pages chunk by chunk, so that the file's
// pages and the copy are not both resident. Release unmaps the copy.
func (mp *Mapped) copyOut(t *Tensor, p fileSpan) []float32 {
	n := int(p.end - p.start)
	dst, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		dst = make([]byte, n+3)
		dst = dst[(4-int(uintptr(unsafe.Pointer(&dst[0]))%4))%4:][:n]
	} else {
		_ = syscall.Madvise(dst, madvHugePage)
		mp.copies[t] = dst
	}
	const chunk = 16 << 20
	for off := 0; off < n; off += chunk {
		end := min(off+chunk, n)
		src := mp.data[p.start+int64(off) : p.start+int64(end)]
		_ = syscall.Madvise(src, madvPopulateRead)
		copy(dst[off:end], src)
		mp.release(p.start+int64(off), p.start+int64(end))
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&dst[0])), n/4)
}

// decode decodes one initializer's TensorProto with its payload.
func (mp *Mapped) decode(t *Tensor) (*Tensor, error) {
	s, ok := mp.spans.message[t]
	if !ok {
		return nil, fmt.Errorf("tensor %q is not an initializer of the mapped file", t.Name)
	}
	r := bytes.NewReader(mp.data[s.start:s.end])
	full, err := newDecoder(r, r, true).tensor(s.end-s.start, true)
	if err != nil {
		return nil, err
	}
	return full, nil
}

// Release tells the kernel that the pages holding an initializer are no
// longer needed: they leave the process's resident set (the page cache
// keeps them) and are read again from the file if used later. Pages shared
// with a neighbouring tensor are kept.
func (mp *Mapped) Release(t *Tensor) {
	if c, ok := mp.copies[t]; ok {
		_ = syscall.Munmap(c)
		delete(mp.copies, t)
	}
	if s, ok := mp.spans.message[t]; ok {
		mp.release(s.start, s.end)
	}
}

// release drops the whole pages inside [start, end) from the resident set.
func (mp *Mapped) release(start, end int64) {
	if mp.data == nil {
		return
	}
	page := int64(os.Getpagesize())
	start = (start + page - 1) / page * page
	end = end / page * page
	if end > start {
		_ = syscall.Madvise(mp.data[start:end], syscall.MADV_DONTNEED)
	}
}
