package onnx

import (
	"fmt"

	"pipeline/errclass"
)

// ErrUnsupported is wrapped by every error about a feature this package
// does not implement: an operator, an attribute value (group ≠ 1, ceil_mode,
// dilations), a data type. Callers test it with errors.Is.
var ErrUnsupported = errclass.New(errclass.Fatal, "unsupported")

// DataType is TensorProto.DataType.
type DataType int32

// Data types of onnx.proto. Only Float, Double and Int64 payloads are decoded
// into typed slices; Int32-family types keep their int32_data, the others
// keep their raw_data bytes.
const (
	Undefined DataType = 0
	Float     DataType = 1
	Uint8     DataType = 2
	Int8      DataType = 3
	Uint16    DataType = 4
	Int16     DataType = 5
	Int32     DataType = 6
	Int64     DataType = 7
	String    DataType = 8
	Bool      DataType = 9
	Float16   DataType = 10
	Double    DataType = 11
	Uint32    DataType = 12
	Uint64    DataType = 13
	Bfloat16  DataType = 16
)

var dataTypeNames = map[DataType]string{
	Undefined: "UNDEFINED", Float: "FLOAT", Uint8: "UINT8", Int8: "INT8", Uint16: "UINT16",
	Int16: "INT16", Int32: "INT32", Int64: "INT64", String: "STRING", Bool: "BOOL",
	Float16: "FLOAT16", Double: "DOUBLE", Uint32: "UINT32", Uint64: "UINT64", Bfloat16: "BFLOAT16",
}

func (t DataType) String() string {
	if s, ok := dataTypeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("DataType(%d)", int32(t))
}

// Model is ModelProto, reduced to the fields this project uses. Fields of
// the file that are not represented here are skipped when reading and are
// not written back.
type Model struct {
	IRVersion       int64
	OpsetImports    []OpsetID
	ProducerName    string
	ProducerVersion string
	Graph           *Graph
}

// OpsetID is OperatorSetIdProto. The default operator set has Domain ""
// (or "ai.onnx").
type OpsetID struct {
	Domain  string
	Version int64
}

// Opset is the version of the default (ai.onnx) operator set the model
// imports, or 0 if it imports none.
func (m *Model) Opset() int64 {
	for _, o := range m.OpsetImports {
		if o.Domain == "" || o.Domain == "ai.onnx" {
			return o.Version
		}
	}
	return 0
}

// Graph is GraphProto.
type Graph struct {
	Name         string
	Nodes        []*Node
	Initializers []*Tensor
	Inputs       []*ValueInfo
	Outputs      []*ValueInfo
	ValueInfo    []*ValueInfo
}

// Initializer returns the initializer with the given name, or nil.
func (g *Graph) Initializer(name string) *Tensor {
	for _, t := range g.Initializers {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// DataInputs returns the graph inputs that are not initializers. Files of
// IR version 3 (the MXNet-exported model zoo files among them) list every
// weight as a graph input too; this is the list a user feeds.
func (g *Graph) DataInputs() []*ValueInfo {
	init := make(map[string]bool, len(g.Initializers))
	for _, t := range g.Initializers {
		init[t.Name] = true
	}
	var out []*ValueInfo
	for _, v := range g.Inputs {
		if !init[v.Name] {
			out = append(out, v)
		}
	}
	return out
}

// Node returns the node with the given name, or nil.
func (g *Graph) Node(name string) *Node {
	for _, n := range g.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// Producer returns the node that has the named tensor among its outputs,
// or nil when the tensor is a graph input, an initializer or unknown.
func (g *Graph) Producer(tensor string) *Node {
	for _, n := range g.Nodes {
		for _, o := range n.Outputs {
			if o == tensor {
				return n
			}
		}
	}
	return nil
}

// Node is NodeProto.
type Node struct {
	Name    string
	OpType  string
	Domain  string
	Inputs  []string
	Outputs []string
	Attrs   []*Attribute
}

// Attr returns the attribute with the given name, or nil.
func (n *Node) Attr(name string) *Attribute {
	for _, a := range n.Attrs {
		if a.Name == name {
			return a
		}
	}
	return nil
}

// AttrType is AttributeProto.AttributeType.
type AttrType int32

// Attribute types of onnx.proto (graphs and sparse tensors are not
// represented and are skipped when reading).
const (
	AttrUndefined AttrType = 0
	AttrFloat     AttrType = 1
	AttrInt       AttrType = 2
	AttrString    AttrType = 3
	AttrTensor    AttrType = 4
	AttrGraph     AttrType = 5
	AttrFloats    AttrType = 6
	AttrInts      AttrType = 7
	AttrStrings   AttrType = 8
)

var attrTypeNames = map[AttrType]string{
	AttrUndefined: "UNDEFINED", AttrFloat: "FLOAT", AttrInt: "INT", AttrString: "STRING",
	AttrTensor: "TENSOR", AttrGraph: "GRAPH", AttrFloats: "FLOATS", AttrInts: "INTS", AttrStrings: "STRINGS",
}

func (t AttrType) String() string {
	if s, ok := attrTypeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("AttrType(%d)", int32(t))
}

// Attribute is AttributeProto. Only the field that Type names is
// meaningful.
type Attribute struct {
	Name    string
	Type    AttrType
	F       float32
	I       int64
	S       string
	T       *Tensor
	Floats  []float32
	Ints    []int64
	Strings []string
}

// FloatAttr, IntAttr, StringAttr, TensorAttr, FloatsAttr and IntsAttr make
// attributes of the corresponding type.
func FloatAttr(name string, v float32) *Attribute {
	return &Attribute{Name: name, Type: AttrFloat, F: v}
}

// IntAttr makes an INT attribute.
func IntAttr(name string, v int64) *Attribute { return &Attribute{Name: name, Type: AttrInt, I: v} }

// StringAttr makes a STRING attribute.
func StringAttr(name, v string) *Attribute {
	return &Attribute{Name: name, Type: AttrString, S: v}
}

// TensorAttr makes a TENSOR attribute.
func TensorAttr(name string, t *Tensor) *Attribute {
	return &Attribute{Name: name, Type: AttrTensor, T: t}
}

// FloatsAttr makes a FLOATS attribute.
func FloatsAttr(name string, v ...float32) *Attribute {
	return &Attribute{Name: name, Type: AttrFloats, Floats: v}
}

// IntsAttr makes an INTS attribute from ints, the type shapes are held in.
func IntsAttr(name string, v ...int) *Attribute {
	a := &Attribute{Name: name, Type: AttrInts, Ints: make([]int64, len(v))}
	for i, x := range v {
		a.Ints[i] = int64(x)
	}
	return a
}

// ValueInfo is ValueInfoProto for a tensor type: a name, an element type
// and a shape. HasShape is false when the file gives no shape at all (not
// even the rank); a dimension with neither a value nor a parameter is
// unknown.
type ValueInfo struct {
	Name     string
	ElemType DataType
	HasShape bool
	Dims     []Dim
}

// Dim is TensorShapeProto.Dimension: a fixed size (Value) or a symbolic one
// (Param, e.g. "N" for a dynamic batch). Both unset means unknown.
type Dim struct {
	Value int64
	Param string
}

func (d Dim) String() string {
	switch {
	case d.Param != "":
		return d.Param
	case d.Value != 0:
		return fmt.Sprint(d.Value)
	}
	return "?"
}

// Fixed returns the dims as ints when every one has a fixed value.
func (v *ValueInfo) Fixed() ([]int, bool) {
	if !v.HasShape {
		return nil, false
	}
	out := make([]int, len(v.Dims))
	for i, d := range v.Dims {
		if d.Param != "" || d.Value <= 0 {
			return nil, false
		}
		out[i] = int(d.Value)
	}
	return out, true
}

// Dims makes fixed dimensions.
func Dims(v ...int) []Dim {
	out := make([]Dim, len(v))
	for i, x := range v {
		out[i] = Dim{Value: int64(x)}
	}
	return out
}

// Tensor is TensorProto, and also the value type of the reference forward
// pass (Run returns Double tensors).
//
// The payload is in the slice that matches DataType: Float32 for Float,
// Float64 for Double, Int64 for Int64, Int32 for the types onnx.proto stores
// in int32_data (Int32, Int16, Int8, Uint16, Uint8, Bool, Float16) when the
// file used that field; RawData holds raw_data for any type that is not
// decoded. A tensor read with ReadGraph has no payload at all (HasData is
// false).
type Tensor struct {
	Name     string
	Dims     []int
	DataType DataType
	Float32  []float32
	Float64  []float64
	Int64    []int64
	Int32    []int32
	RawData  []byte

	// StoreRaw selects how Float, Double and Int64 payloads are written:
	// in raw_data (torch.onnx does this) or in the typed repeated field
	// (float_data, ...; the MXNet exporter does this). The decoder sets it
	// from what the file used, so a model re-encodes the same way.
	StoreRaw bool
	// External is set when the file says the payload lives in an external
	// file (data_location EXTERNAL); this package does not load it.
	External bool
}

// NumElements is the product of the dims (1 for a scalar).
func (t *Tensor) NumElements() int {
	n, _ := numElements(t.Dims)
	return n
}

// HasData reports whether the payload was decoded (it is absent after
// ReadGraph and for external data).
func (t *Tensor) HasData() bool {
	return t.Float32 != nil || t.Float64 != nil || t.Int64 != nil || t.Int32 != nil || t.RawData != nil ||
		t.NumElements() == 0 && !t.External
}

// Float64s returns the payload converted to float64 (Float, Double, Int64
// and int32_data tensors), or an error for other types.
func (t *Tensor) Float64s() ([]float64, error) {
	switch {
	case t.DataType == Double && t.Float64 != nil:
		return t.Float64, nil
	case t.DataType == Float && t.Float32 != nil:
		out := make([]float64, len(t.Float32))
		for i, v := range t.Float32 {
			out[i] = float64(v)
		}
		return out, nil
	case t.DataType == Int64 && t.Int64 != nil:
		out := make([]float64, len(t.Int64))
		for i, v := range t.Int64 {
			out[i] = float64(v)
		}
		return out, nil
	case t.Int32 != nil:
		out := make([]float64, len(t.Int32))
		for i, v := range t.Int32 {
			out[i] = float64(v)
		}
		return out, nil
	case !t.HasData():
		return nil, fmt.Errorf("tensor %q has no data (read with ReadGraph, or external data)", t.Name)
	case t.NumElements() == 0:
		return []float64{}, nil
	}
	return nil, fmt.Errorf("tensor %q of type %v: %w data type", t.Name, t.DataType, ErrUnsupported)
}

// Float32s returns the payload as float32: Float32 itself when set, else
// Float64s converted.
func (t *Tensor) Float32s() ([]float32, error) {
	if t.Float32 != nil {
		return t.Float32, nil
	}
	v, err := t.Float64s()
	if err != nil {
		return nil, err
	}
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out, nil
}

// NewFloat32 makes a Float tensor. It panics when len(data) does not match
// dims, which is a programming error.
func NewFloat32(name string, dims []int, data []float32) *Tensor {
	mustLen(name, dims, len(data))
	return &Tensor{Name: name, Dims: dims, DataType: Float, Float32: data}
}

// NewFloat64 makes a Double tensor, the type Run takes and returns. It
// panics when len(data) does not match dims.
func NewFloat64(name string, dims []int, data []float64) *Tensor {
	mustLen(name, dims, len(data))
	return &Tensor{Name: name, Dims: dims, DataType: Double, Float64: data}
}

// NewInt64 makes an Int64 tensor (Reshape's shape input). It panics when
// len(data) does not match dims.
func NewInt64(name string, dims []int, data []int64) *Tensor {
	mustLen(name, dims, len(data))
	return &Tensor{Name: name, Dims: dims, DataType: Int64, Int64: data}
}

func mustLen(name string, dims []int, n int) {
	want, err := numElements(dims)
	if err != nil || want != n {
		panic(fmt.Sprintf("onnx: tensor %q: %d values for dims %v", name, n, dims))
	}
}

// numElements multiplies dims, refusing negative dims and overflow.
func numElements(dims []int) (int, error) {
	n := 1
	for _, d := range dims {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension in %v", dims)
		}
		if d != 0 && n > (1<<50)/d {
			return 0, fmt.Errorf("dimensions %v too large", dims)
		}
		n *= d
	}
	return n, nil
}
