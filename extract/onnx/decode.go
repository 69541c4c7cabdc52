package onnx

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"

	"pipeline/errclass"
)

// ReadModel reads a whole .onnx file, weights included.
func ReadModel(path string) (*Model, error) {
	m, err := readFile(path, true, false)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return m, nil
}

// ReadGraph reads the structure of an .onnx file: nodes (with their
// attributes), graph inputs and outputs with their dims, value_info, and
// the name, type and dims of every initializer, but not the initializers'
// payloads. The file is streamed and payload bytes are skipped by seeking,
// so a 550 MB model is scanned in milliseconds and a few hundred KB of
// memory. Initializers come back with HasData() false.
func ReadGraph(path string) (*Model, error) {
	m, err := readFile(path, false, false)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return m, nil
}

// Unmarshal decodes a model from the protobuf wire format.
func Unmarshal(data []byte) (*Model, error) {
	r := bytes.NewReader(data)
	d := newDecoder(r, r, true)
	return d.model(int64(len(data)))
}

// ReadInputs is ReadGraph without the nodes: the model's metadata, the
// graph's inputs, outputs and value infos, and its initializers (payloads
// skipped), which is what resolving a model needs (its input's name and
// size). The nodes are skipped by seeking, so its memory and time do not
// grow with the size of the graph: resolution runs before the load's
// memory check, and must stay cheap for any graph.
func ReadInputs(path string) (*Model, error) {
	m, err := readFile(path, false, true)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return m, nil
}

func readFile(path string, payload, skipNodes bool) (*Model, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	d := newDecoder(f, f, payload)
	d.skipNodes = skipNodes
	return d.model(st.Size())
}

// errTruncated is returned for a length or value that runs past the end of
// its enclosing message.
var errTruncated = errclass.New(errclass.Fatal, "truncated or corrupt protobuf")

type decoder struct {
	src     io.Reader
	seeker  io.Seeker
	r       *bufio.Reader
	pos     int64
	payload bool   // decode initializer payloads
	spans   *spans // where initializers and their payloads lie (Map), or nil
	// skipNodes skips the graph's nodes (ReadInputs).
	skipNodes bool
}

func newDecoder(src io.Reader, seeker io.Seeker, payload bool) *decoder {
	return &decoder{src: src, seeker: seeker, r: bufio.NewReaderSize(src, 64<<10), payload: payload}
}

func (d *decoder) byte() (byte, error) {
	c, err := d.r.ReadByte()
	if err != nil {
		if err == io.EOF {
			err = errTruncated
		}
		return 0, err
	}
	d.pos++
	return c, nil
}

func (d *decoder) varint(end int64) (uint64, error) {
	var v uint64
	for shift := uint(0); shift < 64; shift += 7 {
		if d.pos >= end {
			return 0, errTruncated
		}
		c, err := d.byte()
		if err != nil {
			return 0, err
		}
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v, nil
		}
	}
	return 0, fmt.Errorf("varint too long: %w", errTruncated)
}

// length reads the length of a length-delimited field and returns the
// position where the field ends.
func (d *decoder) length(end int64) (int64, error) {
	n, err := d.varint(end)
	if err != nil {
		return 0, err
	}
	if n > uint64(end-d.pos) {
		return 0, fmt.Errorf("field of %d bytes with %d left: %w", n, end-d.pos, errTruncated)
	}
	return d.pos + int64(n), nil
}

func (d *decoder) bytes(n int64) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(d.r, b); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			err = errTruncated
		}
		return nil, err
	}
	d.pos += n
	return b, nil
}

func (d *decoder) skip(n int64) error {
	if b := int64(d.r.Buffered()); n > b && d.seeker != nil && n-b > 1<<20 {
		if _, err := d.r.Discard(int(b)); err != nil {
			return err
		}
		if _, err := d.seeker.Seek(n-b, io.SeekCurrent); err != nil {
			return err
		}
		d.r.Reset(d.src)
		d.pos += n
		return nil
	}
	for n > 0 {
		k := n
		if k > 1<<30 {
			k = 1 << 30
		}
		got, err := d.r.Discard(int(k))
		d.pos += int64(got)
		if err != nil {
			if err == io.EOF {
				err = errTruncated
			}
			return err
		}
		n -= k
	}
	return nil
}

// tag reads a field key; ok is false at the end of the message.
func (d *decoder) tag(end int64) (field int, wire int, ok bool, err error) {
	if d.pos >= end {
		return 0, 0, false, nil
	}
	k, err := d.varint(end)
	if err != nil {
		return 0, 0, false, err
	}
	field, wire = int(k>>3), int(k&7)
	if field <= 0 || k>>3 > math.MaxInt32 {
		return 0, 0, false, fmt.Errorf("field number %d: %w", k>>3, errTruncated)
	}
	return field, wire, true, nil
}

// skipField skips a field of an unknown or unwanted number.
func (d *decoder) skipField(wire int, end int64) error {
	switch wire {
	case wireVarint:
		_, err := d.varint(end)
		return err
	case wireFixed64:
		return d.skipN(8, end)
	case wireFixed32:
		return d.skipN(4, end)
	case wireBytes:
		fend, err := d.length(end)
		if err != nil {
			return err
		}
		return d.skip(fend - d.pos)
	}
	return fmt.Errorf("wire type %d: %w", wire, ErrUnsupported)
}

func (d *decoder) skipN(n, end int64) error {
	if n > end-d.pos {
		return errTruncated
	}
	return d.skip(n)
}

func (d *decoder) string(wire int, end int64) (string, error) {
	if wire != wireBytes {
		return "", fmt.Errorf("string field with wire type %d: %w", wire, errTruncated)
	}
	fend, err := d.length(end)
	if err != nil {
		return "", err
	}
	b, err := d.bytes(fend - d.pos)
	return string(b), err
}

func (d *decoder) int(wire int, end int64) (int64, error) {
	if wire != wireVarint {
		return 0, fmt.Errorf("integer field with wire type %d: %w", wire, errTruncated)
	}
	v, err := d.varint(end)
	return int64(v), err
}

// ints reads a repeated varint field, packed or not, appending to dst.
func (d *decoder) ints(dst []int64, wire int, end int64) ([]int64, error) {
	switch wire {
	case wireVarint:
		v, err := d.varint(end)
		return append(dst, int64(v)), err
	case wireBytes:
		fend, err := d.length(end)
		if err != nil {
			return dst, err
		}
		for d.pos < fend {
			v, err := d.varint(fend)
			if err != nil {
				return dst, err
			}
			dst = append(dst, int64(v))
		}
		return dst, nil
	}
	return dst, fmt.Errorf("repeated integer field with wire type %d: %w", wire, errTruncated)
}

// fixed reads a repeated fixed-width field (4 or 8 bytes), packed or not,
// and returns its little-endian bytes.
func (d *decoder) fixed(width int, wire int, end int64) ([]byte, error) {
	switch {
	case width == 4 && wire == wireFixed32, width == 8 && wire == wireFixed64:
		if int64(width) > end-d.pos {
			return nil, errTruncated
		}
		return d.bytes(int64(width))
	case wire == wireBytes:
		fend, err := d.length(end)
		if err != nil {
			return nil, err
		}
		if (fend-d.pos)%int64(width) != 0 {
			return nil, fmt.Errorf("packed field of %d bytes is not a multiple of %d: %w", fend-d.pos, width, errTruncated)
		}
		return d.bytes(fend - d.pos)
	}
	return nil, fmt.Errorf("fixed%d field with wire type %d: %w", width*8, wire, errTruncated)
}

// sub reads the length of an embedded message and returns its end.
func (d *decoder) sub(wire int, end int64) (int64, error) {
	if wire != wireBytes {
		return 0, fmt.Errorf("message field with wire type %d: %w", wire, errTruncated)
	}
	return d.length(end)
}

func (d *decoder) model(end int64) (*Model, error) {
	m := &Model{}
	for {
		field, wire, ok, err := d.tag(end)
		if err != nil {
			return nil, fmt.Errorf("decode model: %w", err)
		}
		if !ok {
			break
		}
		switch field {
		case modelIRVersion:
			m.IRVersion, err = d.int(wire, end)
		case modelProducerName:
			m.ProducerName, err = d.string(wire, end)
		case modelProducerVersion:
			m.ProducerVersion, err = d.string(wire, end)
		case modelGraph:
			var gend int64
			if gend, err = d.sub(wire, end); err == nil {
				m.Graph, err = d.graph(gend)
			}
		case modelOpsetImport:
			var oend int64
			if oend, err = d.sub(wire, end); err == nil {
				var o OpsetID
				o, err = d.opset(oend)
				m.OpsetImports = append(m.OpsetImports, o)
			}
		default:
			err = d.skipField(wire, end)
		}
		if err != nil {
			return nil, fmt.Errorf("decode model: %w", err)
		}
	}
	if m.Graph == nil {
		return nil, fmt.Errorf("decode model: no graph (is this an ONNX file?)")
	}
	return m, nil
}

func (d *decoder) opset(end int64) (OpsetID, error) {
	var o OpsetID
	for {
		field, wire, ok, err := d.tag(end)
		if err != nil || !ok {
			return o, err
		}
		switch field {
		case opsetDomain:
			o.Domain, err = d.string(wire, end)
		case opsetVersion:
			o.Version, err = d.int(wire, end)
		default:
			err = d.skipField(wire, end)
		}
		if err != nil {
			return o, err
		}
	}
}

func (d *decoder) graph(end int64) (*Graph, error) {
	g := &Graph{}
	for {
		field, wire, ok, err := d.tag(end)
		if err != nil {
			return nil, fmt.Errorf("graph: %w", err)
		}
		if !ok {
			return g, nil
		}
		var fend int64
		switch {
		case field == graphNode && d.skipNodes:
			err = d.skipField(wire, end)
		case field == graphNode:
			if fend, err = d.sub(wire, end); err == nil {
				var n *Node
				n, err = d.node(fend)
				if err != nil {
					err = fmt.Errorf("node %d: %w", len(g.Nodes), err)
				}
				g.Nodes = append(g.Nodes, n)
			}
		case field == graphName:
			g.Name, err = d.string(wire, end)
		case field == graphInitializer:
			if fend, err = d.sub(wire, end); err == nil {
				start := d.pos
				var t *Tensor
				t, err = d.tensor(fend, d.payload)
				if err != nil {
					err = fmt.Errorf("initializer %d: %w", len(g.Initializers), err)
				} else if d.spans != nil {
					d.spans.message[t] = fileSpan{start: start, end: fend}
				}
				g.Initializers = append(g.Initializers, t)
			}
		case field == graphInput, field == graphOutput, field == graphValueInfo:
			if fend, err = d.sub(wire, end); err == nil {
				var v *ValueInfo
				if v, err = d.valueInfo(fend); err == nil {
					switch field {
					case graphInput:
						g.Inputs = append(g.Inputs, v)
					case graphOutput:
						g.Outputs = append(g.Outputs, v)
					default:
						g.ValueInfo = append(g.ValueInfo, v)
					}
				}
			}
		default:
			err = d.skipField(wire, end)
		}
		if err != nil {
			return nil, fmt.Errorf("graph: %w", err)
		}
	}
}

func (d *decoder) node(end int64) (*Node, error) {
	n := &Node{}
	for {
		field, wire, ok, err := d.tag(end)
		if err != nil || !ok {
			return n, err
		}
		var s string
		switch field {
		case nodeInput:
			s, err = d.string(wire, end)
			n.Inputs = append(n.Inputs, s)
		case nodeOutput:
			s, err = d.string(wire, end)
			n.Outputs = append(n.Outputs, s)
		case nodeName:
			n.Name, err = d.string(wire, end)
		case nodeOpType:
			n.OpType, err = d.string(wire, end)
		case nodeDomain:
			n.Domain, err = d.string(wire, end)
		case nodeAttribute:
			var aend int64
			if aend, err = d.sub(wire, end); err == nil {
				var a *Attribute
				if a, err = d.attribute(aend); err == nil && a != nil {
					n.Attrs = append(n.Attrs, a)
				}
			}
		default:
			err = d.skipField(wire, end)
		}
		if err != nil {
			return n, err
		}
	}
}

// attribute decodes an AttributeProto. Graph-valued and other unsupported
// attributes are returned with their Type and no value.
func (d *decoder) attribute(end int64) (*Attribute, error) {
	a := &Attribute{}
	var seen AttrType // type implied by the fields present, for files that omit "type"
	for {
		field, wire, ok, err := d.tag(end)
		if err != nil {
			return nil, fmt.Errorf("attribute %q: %w", a.Name, err)
		}
		if !ok {
			break
		}
		var b []byte
		switch field {
		case attrName:
			a.Name, err = d.string(wire, end)
		case attrTypeNum:
			var v int64
			v, err = d.int(wire, end)
			a.Type = AttrType(v)
		case attrF:
			if b, err = d.fixed(4, wire, end); err == nil && len(b) == 4 {
				a.F, seen = math.Float32frombits(binary.LittleEndian.Uint32(b)), AttrFloat
			}
		case attrI:
			a.I, err = d.int(wire, end)
			seen = AttrInt
		case attrS:
			a.S, err = d.string(wire, end)
			seen = AttrString
		case attrT:
			var tend int64
			if tend, err = d.sub(wire, end); err == nil {
				a.T, err = d.tensor(tend, true)
				seen = AttrTensor
			}
		case attrFloats:
			if b, err = d.fixed(4, wire, end); err == nil {
				for i := 0; i+4 <= len(b); i += 4 {
					a.Floats = append(a.Floats, math.Float32frombits(binary.LittleEndian.Uint32(b[i:])))
				}
				seen = AttrFloats
			}
		case attrInts:
			a.Ints, err = d.ints(a.Ints, wire, end)
			seen = AttrInts
		case attrStrings:
			var s string
			s, err = d.string(wire, end)
			a.Strings = append(a.Strings, s)
			seen = AttrStrings
		default:
			if field == 6 { // g: a subgraph (If, Loop), not represented
				seen = AttrGraph
			}
			err = d.skipField(wire, end)
		}
		if err != nil {
			return nil, fmt.Errorf("attribute %q: %w", a.Name, err)
		}
	}
	if a.Type == AttrUndefined {
		a.Type = seen
	}
	return a, nil
}

func (d *decoder) valueInfo(end int64) (*ValueInfo, error) {
	v := &ValueInfo{}
	for {
		field, wire, ok, err := d.tag(end)
		if err != nil {
			return nil, fmt.Errorf("value info %q: %w", v.Name, err)
		}
		if !ok {
			return v, nil
		}
		switch field {
		case valueInfoName:
			v.Name, err = d.string(wire, end)
		case valueInfoType:
			var tend int64
			if tend, err = d.sub(wire, end); err == nil {
				err = d.typeProto(v, tend)
			}
		default:
			err = d.skipField(wire, end)
		}
		if err != nil {
			return nil, fmt.Errorf("value info %q: %w", v.Name, err)
		}
	}
}

// typeProto reads TypeProto; only tensor types are represented.
func (d *decoder) typeProto(v *ValueInfo, end int64) error {
	for {
		field, wire, ok, err := d.tag(end)
		if err != nil || !ok {
			return err
		}
		if field != typeTensorType {
			if err := d.skipField(wire, end); err != nil {
				return err
			}
			continue
		}
		tend, err := d.sub(wire, end)
		if err != nil {
			return err
		}
		for {
			f, w, ok, err := d.tag(tend)
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			switch f {
			case tensorElemType:
				var e int64
				e, err = d.int(w, tend)
				v.ElemType = DataType(e)
			case tensorShape:
				var send int64
				if send, err = d.sub(w, tend); err == nil {
					v.HasShape = true
					v.Dims, err = d.shape(send)
				}
			default:
				err = d.skipField(w, tend)
			}
			if err != nil {
				return err
			}
		}
	}
}

func (d *decoder) shape(end int64) ([]Dim, error) {
	dims := []Dim{}
	for {
		field, wire, ok, err := d.tag(end)
		if err != nil || !ok {
			return dims, err
		}
		if field != shapeDim {
			if err := d.skipField(wire, end); err != nil {
				return dims, err
			}
			continue
		}
		dend, err := d.sub(wire, end)
		if err != nil {
			return dims, err
		}
		var dim Dim
		for {
			f, w, ok, err := d.tag(dend)
			if err != nil {
				return dims, err
			}
			if !ok {
				break
			}
			switch f {
			case dimValue:
				dim.Value, err = d.int(w, dend)
			case dimParam:
				dim.Param, err = d.string(w, dend)
			default:
				err = d.skipField(w, dend)
			}
			if err != nil {
				return dims, err
			}
		}
		dims = append(dims, dim)
	}
}

// tensorFields collects a TensorProto's payload fields while it is decoded.
type tensorFields struct {
	dims                  []int64
	floats, doubles, raws []byte
	hasRaw, keep          bool
}

// tensor decodes a TensorProto. Without payload, the data fields are
// skipped (by seeking when the source allows it).
func (d *decoder) tensor(end int64, payload bool) (*Tensor, error) {
	t := &Tensor{}
	var f tensorFields
	for {
		field, wire, ok, err := d.tag(end)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
		}
		if !ok {
			break
		}
		switch field {
		case tensorDims:
			f.dims, err = d.ints(f.dims, wire, end)
		case tensorDataType:
			var v int64
			v, err = d.int(wire, end)
			t.DataType = DataType(v)
		case tensorName:
			t.Name, err = d.string(wire, end)
		case tensorDataLocation:
			var v int64
			v, err = d.int(wire, end)
			t.External = v == 1
		case tensorFloatData, tensorDoubleData, tensorInt32Data, tensorInt64Data, tensorRawData:
			if !payload && !d.keepSmall(t, wire, end) {
				err = d.skipPayload(t, field, wire, end)
				break
			}
			f.keep = true
			err = d.payloadField(t, &f, field, wire, end)
		default:
			err = d.skipField(wire, end)
		}
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
		}
	}
	if err := setDims(t, f.dims); err != nil {
		return nil, err
	}
	if !payload && !f.keep || t.External {
		return t, nil
	}
	if err := f.assemble(t); err != nil {
		return nil, err
	}
	return t, checkCount(t)
}

// payloadField reads one data field of a TensorProto into f (float and
// double bytes, raw_data) or t (integers).
func (d *decoder) payloadField(t *Tensor, f *tensorFields, field, wire int, end int64) error {
	var (
		b   []byte
		err error
	)
	switch field {
	case tensorFloatData:
		b, err = d.fixed(4, wire, end)
		f.floats = appendOrTake(f.floats, b)
	case tensorDoubleData:
		b, err = d.fixed(8, wire, end)
		f.doubles = appendOrTake(f.doubles, b)
	case tensorInt64Data:
		if t.Int64 == nil {
			t.Int64 = []int64{}
		}
		t.Int64, err = d.ints(t.Int64, wire, end)
	case tensorInt32Data:
		var v []int64
		v, err = d.ints(nil, wire, end)
		for _, x := range v {
			t.Int32 = append(t.Int32, int32(x))
		}
		if t.Int32 == nil {
			t.Int32 = []int32{}
		}
	case tensorRawData:
		var fend int64
		if fend, err = d.sub(wire, end); err == nil {
			f.raws, err = d.bytes(fend - d.pos)
			f.hasRaw = true
		}
	}
	return err
}

// appendOrTake appends b to dst, or takes b itself when dst is empty (a
// packed field, the usual case, is then never copied).
func appendOrTake(dst, b []byte) []byte {
	if dst == nil && len(b) > 0 {
		return b
	}
	return append(dst, b...)
}

// skipPayload skips a data field of a tensor read without payloads and, when
// the decoder records spans (Map), notes where a packed or raw payload lies
// in the file.
func (d *decoder) skipPayload(t *Tensor, field, wire int, end int64) error {
	if d.spans == nil || wire != wireBytes {
		if d.spans != nil {
			d.spans.mixed[t] = true
		}
		return d.skipField(wire, end)
	}
	fend, err := d.length(end)
	if err != nil {
		return err
	}
	if _, seen := d.spans.payload[t]; seen {
		d.spans.mixed[t] = true
	}
	d.spans.payload[t] = fileSpan{field: field, start: d.pos, end: fend}
	return d.skip(fend - d.pos)
}

// setDims checks and sets a tensor's dims.
func setDims(t *Tensor, dims []int64) error {
	t.Dims = make([]int, len(dims))
	for i, v := range dims {
		if v < 0 || v > 1<<40 {
			return fmt.Errorf("tensor %q: dimension %d out of range", t.Name, v)
		}
		t.Dims[i] = int(v)
	}
	if _, err := numElements(t.Dims); err != nil {
		return fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	return nil
}

// assemble turns the collected payload bytes into the tensor's typed values.
func (f *tensorFields) assemble(t *Tensor) error {
	n := t.NumElements()
	t.StoreRaw = f.hasRaw
	if f.hasRaw {
		switch t.DataType {
		case Float:
			f.floats = f.raws
		case Double:
			f.doubles = f.raws
		case Int64:
			if len(f.raws)%8 != 0 {
				return fmt.Errorf("tensor %q: raw_data of %d bytes for INT64: %w", t.Name, len(f.raws), errTruncated)
			}
			t.Int64 = make([]int64, len(f.raws)/8)
			for i := range t.Int64 {
				t.Int64[i] = int64(binary.LittleEndian.Uint64(f.raws[8*i:]))
			}
		default:
			t.RawData = f.raws
		}
	}
	switch t.DataType {
	case Float:
		if f.floats != nil || n == 0 {
			if len(f.floats)%4 != 0 {
				return fmt.Errorf("tensor %q: raw_data of %d bytes for FLOAT: %w", t.Name, len(f.floats), errTruncated)
			}
			t.Float32 = decodeFloat32s(f.floats)
		}
	case Double:
		if f.doubles != nil || n == 0 {
			if len(f.doubles)%8 != 0 {
				return fmt.Errorf("tensor %q: raw_data of %d bytes for DOUBLE: %w", t.Name, len(f.doubles), errTruncated)
			}
			t.Float64 = make([]float64, len(f.doubles)/8)
			for i := range t.Float64 {
				t.Float64[i] = math.Float64frombits(binary.LittleEndian.Uint64(f.doubles[8*i:]))
			}
		}
	case Int64:
		if t.Int64 == nil && n == 0 {
			t.Int64 = []int64{}
		}
	}
	return nil
}

// decodeFloat32s converts little-endian bytes to float32s.
func decodeFloat32s(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

// checkCount checks the number of decoded values against the dims.
func checkCount(t *Tensor) error {
	count := -1
	switch {
	case t.Float32 != nil:
		count = len(t.Float32)
	case t.Float64 != nil:
		count = len(t.Float64)
	case t.Int64 != nil:
		count = len(t.Int64)
	case t.Int32 != nil:
		count = len(t.Int32)
	}
	if n := t.NumElements(); count >= 0 && count != n {
		return fmt.Errorf("tensor %q: %d values for dims %v", t.Name, count, t.Dims)
	}
	return nil
}

// keepSmall reports whether ReadGraph keeps a payload field anyway: the
// small integer tensors that hold shapes (Reshape's second input), so that
// Shapes works on a model read with ReadGraph. It peeks at the field
// length without consuming it.
func (d *decoder) keepSmall(t *Tensor, wire int, end int64) bool {
	if t.DataType != Int64 && t.DataType != Int32 {
		return false
	}
	if wire != wireBytes {
		return true // one unpacked element
	}
	b, err := d.r.Peek(min(binary.MaxVarintLen64, int(end-d.pos)))
	if err != nil && len(b) == 0 {
		return false
	}
	n, k := binary.Uvarint(b)
	return k > 0 && n <= 1024
}
