package onnx

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
)

// Protobuf wire types.
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireFixed32 = 5
)

// Field numbers of onnx.proto (onnx 1.12).
const (
	modelIRVersion       = 1
	modelProducerName    = 2
	modelProducerVersion = 3
	modelGraph           = 7
	modelOpsetImport     = 8

	opsetDomain  = 1
	opsetVersion = 2

	graphNode        = 1
	graphName        = 2
	graphInitializer = 5
	graphInput       = 11
	graphOutput      = 12
	graphValueInfo   = 13

	nodeInput     = 1
	nodeOutput    = 2
	nodeName      = 3
	nodeOpType    = 4
	nodeAttribute = 5
	nodeDomain    = 7

	attrName    = 1
	attrF       = 2
	attrI       = 3
	attrS       = 4
	attrT       = 5
	attrFloats  = 7
	attrInts    = 8
	attrStrings = 9
	attrTypeNum = 20

	tensorDims         = 1
	tensorDataType     = 2
	tensorFloatData    = 4
	tensorInt32Data    = 5
	tensorInt64Data    = 7
	tensorName         = 8
	tensorRawData      = 9
	tensorDoubleData   = 10
	tensorDataLocation = 14

	valueInfoName = 1
	valueInfoType = 2

	typeTensorType = 1
	tensorElemType = 1
	tensorShape    = 2
	shapeDim       = 1
	dimValue       = 1
	dimParam       = 2
)

// The encoder writes fields in field-number order and repeated scalars the
// way protoc's proto2 code does (packed only where onnx.proto says
// [packed = true]), so a file it writes is byte-identical to what
// onnx.save() of the same ModelProto writes.

func appendVarint(b []byte, v uint64) []byte {
	return binary.AppendUvarint(b, v)
}

func appendTag(b []byte, field, wire int) []byte {
	return appendVarint(b, uint64(field)<<3|uint64(wire))
}

func appendInt(b []byte, field int, v int64) []byte {
	return appendVarint(appendTag(b, field, wireVarint), uint64(v))
}

func appendString(b []byte, field int, s string) []byte {
	b = appendTag(b, field, wireBytes)
	b = appendVarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b []byte, field int, p []byte) []byte {
	b = appendTag(b, field, wireBytes)
	b = appendVarint(b, uint64(len(p)))
	return append(b, p...)
}

func appendFloat(b []byte, field int, v float32) []byte {
	b = appendTag(b, field, wireFixed32)
	return binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
}

func varintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func tagLen(field int) int { return varintLen(uint64(field) << 3) }

// lenFieldSize is the size of a length-delimited field with n payload bytes.
func lenFieldSize(field, n int) int { return tagLen(field) + varintLen(uint64(n)) + n }

// Marshal encodes the model in the protobuf wire format.
func Marshal(m *Model) ([]byte, error) {
	var w sliceWriter
	if err := encodeModel(&w, m); err != nil {
		return nil, err
	}
	return w.b, nil
}

type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// WriteFile writes the model to path atomically: it writes a temporary file
// in the same directory and renames it, so a reader never sees half a
// model. Payloads are streamed; memory use does not grow with the file.
func WriteFile(path string, m *Model) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	if err = encodeModel(bw, m); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = bw.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Chmod(0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func encodeModel(w io.Writer, m *Model) error {
	if m.Graph == nil {
		return fmt.Errorf("model has no graph")
	}
	var head []byte
	if m.IRVersion != 0 {
		head = appendInt(head, modelIRVersion, m.IRVersion)
	}
	if m.ProducerName != "" {
		head = appendString(head, modelProducerName, m.ProducerName)
	}
	if m.ProducerVersion != "" {
		head = appendString(head, modelProducerVersion, m.ProducerVersion)
	}
	g, err := newGraphEncoding(m.Graph)
	if err != nil {
		return err
	}
	head = appendTag(head, modelGraph, wireBytes)
	head = appendVarint(head, uint64(g.size))
	if _, err := w.Write(head); err != nil {
		return err
	}
	if err := g.write(w); err != nil {
		return err
	}
	var tail []byte
	for _, o := range m.OpsetImports {
		var ob []byte
		if o.Domain != "" {
			ob = appendString(ob, opsetDomain, o.Domain)
		}
		ob = appendInt(ob, opsetVersion, o.Version)
		tail = appendBytes(tail, modelOpsetImport, ob)
	}
	_, err = w.Write(tail)
	return err
}

// graphEncoding holds a graph's small parts already encoded, and its
// initializers still to be streamed, with the total size known up front
// (protobuf needs the length before the content).
type graphEncoding struct {
	g     *Graph
	nodes []byte // node and name fields
	tail  []byte // input, output and value_info fields
	size  int
}

func newGraphEncoding(g *Graph) (*graphEncoding, error) {
	e := &graphEncoding{g: g}
	for _, n := range g.Nodes {
		nb, err := encodeNode(n)
		if err != nil {
			return nil, err
		}
		e.nodes = appendBytes(e.nodes, graphNode, nb)
	}
	if g.Name != "" {
		e.nodes = appendString(e.nodes, graphName, g.Name)
	}
	e.size = len(e.nodes)
	for _, t := range g.Initializers {
		n, err := tensorSize(t)
		if err != nil {
			return nil, err
		}
		e.size += lenFieldSize(graphInitializer, n)
	}
	for _, list := range []struct {
		field int
		vs    []*ValueInfo
	}{{graphInput, g.Inputs}, {graphOutput, g.Outputs}, {graphValueInfo, g.ValueInfo}} {
		for _, v := range list.vs {
			e.tail = appendBytes(e.tail, list.field, encodeValueInfo(v))
		}
	}
	e.size += len(e.tail)
	return e, nil
}

func (e *graphEncoding) write(w io.Writer) error {
	if _, err := w.Write(e.nodes); err != nil {
		return err
	}
	for _, t := range e.g.Initializers {
		n, _ := tensorSize(t)
		var h []byte
		h = appendTag(h, graphInitializer, wireBytes)
		h = appendVarint(h, uint64(n))
		if _, err := w.Write(h); err != nil {
			return err
		}
		if err := writeTensor(w, t); err != nil {
			return err
		}
	}
	_, err := w.Write(e.tail)
	return err
}

func encodeNode(n *Node) ([]byte, error) {
	var b []byte
	for _, s := range n.Inputs {
		b = appendString(b, nodeInput, s)
	}
	for _, s := range n.Outputs {
		b = appendString(b, nodeOutput, s)
	}
	if n.Name != "" {
		b = appendString(b, nodeName, n.Name)
	}
	b = appendString(b, nodeOpType, n.OpType)
	for _, a := range n.Attrs {
		ab, err := encodeAttr(a)
		if err != nil {
			return nil, fmt.Errorf("node %q: %w", n.Name, err)
		}
		b = appendBytes(b, nodeAttribute, ab)
	}
	if n.Domain != "" {
		b = appendString(b, nodeDomain, n.Domain)
	}
	return b, nil
}

func encodeAttr(a *Attribute) ([]byte, error) {
	var b []byte
	b = appendString(b, attrName, a.Name)
	switch a.Type {
	case AttrFloat:
		b = appendFloat(b, attrF, a.F)
	case AttrInt:
		b = appendInt(b, attrI, a.I)
	case AttrString:
		b = appendString(b, attrS, a.S)
	case AttrTensor:
		if a.T == nil {
			return nil, fmt.Errorf("attribute %q: tensor is nil", a.Name)
		}
		var w sliceWriter
		if err := writeTensor(&w, a.T); err != nil {
			return nil, fmt.Errorf("attribute %q: %w", a.Name, err)
		}
		b = appendBytes(b, attrT, w.b)
	case AttrFloats:
		for _, v := range a.Floats {
			b = appendFloat(b, attrFloats, v)
		}
	case AttrInts:
		for _, v := range a.Ints {
			b = appendInt(b, attrInts, v)
		}
	case AttrStrings:
		for _, s := range a.Strings {
			b = appendString(b, attrStrings, s)
		}
	default:
		return nil, fmt.Errorf("attribute %q of type %v: %w", a.Name, a.Type, ErrUnsupported)
	}
	return appendInt(b, attrTypeNum, int64(a.Type)), nil
}

func encodeValueInfo(v *ValueInfo) []byte {
	var b []byte
	b = appendString(b, valueInfoName, v.Name)
	var tt []byte
	if v.ElemType != Undefined {
		tt = appendInt(tt, tensorElemType, int64(v.ElemType))
	}
	if v.HasShape {
		var shape []byte
		for _, d := range v.Dims {
			var db []byte
			switch {
			case d.Param != "":
				db = appendString(db, dimParam, d.Param)
			case d.Value != 0:
				db = appendInt(db, dimValue, d.Value)
			}
			shape = appendBytes(shape, shapeDim, db)
		}
		tt = appendBytes(tt, tensorShape, shape)
	}
	var typ []byte
	typ = appendBytes(typ, typeTensorType, tt)
	return appendBytes(b, valueInfoType, typ)
}

// tensorParts splits a tensor's encoding around its payload, which can be
// hundreds of megabytes and is streamed: head (dims, data_type), the typed
// payload field (4, 5 or 7), mid (name), raw_data (9) or double_data (10),
// tail (data_location).
type tensorParts struct {
	head, mid, tail []byte
	typedField      int // 0 when the payload goes to raw_data or is absent
	payloadLen      int // bytes of the payload (packed or raw)
	hasRaw          bool
	rawTyped        bool // raw_data holds the typed payload (StoreRaw)
}

func splitTensor(t *Tensor) (*tensorParts, error) {
	p := &tensorParts{}
	for _, d := range t.Dims {
		p.head = appendInt(p.head, tensorDims, int64(d))
	}
	p.head = appendInt(p.head, tensorDataType, int64(t.DataType))
	n, err := numElements(t.Dims)
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	count := -1
	switch {
	case t.DataType == Float && t.Float32 != nil:
		count, p.typedField, p.payloadLen = len(t.Float32), tensorFloatData, 4*len(t.Float32)
	case t.DataType == Double && t.Float64 != nil:
		count, p.typedField, p.payloadLen = len(t.Float64), tensorDoubleData, 8*len(t.Float64)
	case t.DataType == Int64 && t.Int64 != nil:
		count, p.typedField = len(t.Int64), tensorInt64Data
		if t.StoreRaw {
			p.payloadLen = 8 * len(t.Int64)
		} else {
			for _, v := range t.Int64 {
				p.payloadLen += varintLen(uint64(v))
			}
		}
	case t.Int32 != nil:
		// int32_data is a varint field; raw storage would need the element
		// width, so these payloads are always written typed.
		count, p.typedField = len(t.Int32), tensorInt32Data
		for _, v := range t.Int32 {
			p.payloadLen += varintLen(uint64(int64(v)))
		}
	case t.RawData != nil:
		p.hasRaw, p.payloadLen = true, len(t.RawData)
	case n > 0 && !t.External:
		return nil, fmt.Errorf("tensor %q (%v, dims %v) has no data", t.Name, t.DataType, t.Dims)
	}
	if count >= 0 && count != n {
		return nil, fmt.Errorf("tensor %q: %d values for dims %v", t.Name, count, t.Dims)
	}
	if t.StoreRaw && p.typedField != 0 && p.typedField != tensorInt32Data {
		p.hasRaw, p.rawTyped, p.typedField = true, true, 0
	}
	if t.Name != "" {
		p.mid = appendString(p.mid, tensorName, t.Name)
	}
	if t.External {
		p.tail = appendInt(p.tail, tensorDataLocation, 1)
	}
	return p, nil
}

func (p *tensorParts) size() int {
	n := len(p.head) + len(p.mid) + len(p.tail)
	if p.typedField != 0 && p.payloadLen > 0 {
		n += lenFieldSize(p.typedField, p.payloadLen)
	}
	if p.hasRaw {
		n += lenFieldSize(tensorRawData, p.payloadLen)
	}
	return n
}

func tensorSize(t *Tensor) (int, error) {
	p, err := splitTensor(t)
	if err != nil {
		return 0, err
	}
	return p.size(), nil
}

func writeTensor(w io.Writer, t *Tensor) error {
	p, err := splitTensor(t)
	if err != nil {
		return err
	}
	if _, err := w.Write(p.head); err != nil {
		return err
	}
	typed := func() error {
		var h []byte
		h = appendTag(h, p.typedField, wireBytes)
		h = appendVarint(h, uint64(p.payloadLen))
		if _, err := w.Write(h); err != nil {
			return err
		}
		return writePayload(w, t, p.typedField == tensorInt64Data || p.typedField == tensorInt32Data)
	}
	// double_data (10) is the one typed field numbered after name (8).
	if p.typedField != 0 && p.typedField != tensorDoubleData && p.payloadLen > 0 {
		if err := typed(); err != nil {
			return err
		}
	}
	if _, err := w.Write(p.mid); err != nil {
		return err
	}
	if p.typedField == tensorDoubleData && p.payloadLen > 0 {
		if err := typed(); err != nil {
			return err
		}
	}
	if p.hasRaw {
		var h []byte
		h = appendTag(h, tensorRawData, wireBytes)
		h = appendVarint(h, uint64(p.payloadLen))
		if _, err := w.Write(h); err != nil {
			return err
		}
		if !p.rawTyped {
			if _, err := w.Write(t.RawData); err != nil {
				return err
			}
		} else if err := writePayload(w, t, false); err != nil {
			return err
		}
	}
	_, err = w.Write(p.tail)
	return err
}

// writePayload writes the typed payload in chunks: little-endian fixed
// width, or varints for the packed int64_data / int32_data fields.
func writePayload(w io.Writer, t *Tensor, varints bool) error {
	const chunk = 1 << 16
	buf := make([]byte, 0, chunk+16)
	flush := func(force bool) error {
		if len(buf) >= chunk || force && len(buf) > 0 {
			_, err := w.Write(buf)
			buf = buf[:0]
			return err
		}
		return nil
	}
	switch {
	case t.DataType == Float && t.Float32 != nil:
		for _, v := range t.Float32 {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
			if err := flush(false); err != nil {
				return err
			}
		}
	case t.DataType == Double && t.Float64 != nil:
		for _, v := range t.Float64 {
			buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(v))
			if err := flush(false); err != nil {
				return err
			}
		}
	case t.DataType == Int64 && t.Int64 != nil:
		for _, v := range t.Int64 {
			if varints {
				buf = appendVarint(buf, uint64(v))
			} else {
				buf = binary.LittleEndian.AppendUint64(buf, uint64(v))
			}
			if err := flush(false); err != nil {
				return err
			}
		}
	case t.Int32 != nil:
		for _, v := range t.Int32 {
			buf = appendVarint(buf, uint64(int64(v)))
			if err := flush(false); err != nil {
				return err
			}
		}
	}
	return flush(true)
}
