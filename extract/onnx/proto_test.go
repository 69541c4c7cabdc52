package onnx

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// pythonModel was written by onnx 1.12's onnx.helper (Python, protobuf's
// C++ serializer), so it is an encoding made independently of this
// package:
//
//	w  = make_tensor("w", FLOAT, [2,1,1,1], [0.5, -2.0])          # float_data
//	b  = make_tensor("b", FLOAT, [2], <0.25, 1.5 bytes>, raw=True)  # raw_data
//	shape = make_tensor("shape", INT64, [2], [0, -1])              # int64_data
//	d  = make_tensor("d", DOUBLE, [1], [3.125])                    # double_data
//	i8 = make_tensor("i8", INT8, [3], [-1, 0, 7])                  # int32_data
//	conv    = Conv(x, w, b) -> y, pads=[1,0,1,0], strides=[2,1]
//	reshape = Reshape(y, shape) -> z
//	custom  = Custom(z) -> u, domain "my.domain", alpha=0.75, mode="fast",
//	          names=["a","bc"], scales=[1.5,-0.5], t=tensor c = 4.0 (scalar)
//	inputs x: FLOAT ["N",1,4,3]; outputs u: FLOAT, no shape;
//	value_info y: FLOAT ["N",2,?,3]
//	model: ir_version 6, producer "py", opsets (unset domain, 11) as torch
//	and MXNet write it, ("my.domain", 2)
const pythonModel = "0806120270793a9e030a3d0a01780a01770a01621201791a04636f6e762204436f6e762a110a04706164734001400040014000a001072a100a077374726964657340024001a001070a1f0a01790a05736861706512017a1a07726573686170652207526573686170650a82010a017a1201751a06637573746f6d2206437573746f6d2a0f0a05616c706861150000403fa001012a0f0a046d6f6465220466617374a001032a110a056e616d65734a01614a026263a001082a150a067363616c65733d0000c03f3d000000bfa001062a130a01742a0b1001220400008040420163a001043a096d792e646f6d61696e1201672a170802080108010801100122080000003f000000c04201772a11080210014201624a080000803e0000c03f2a18080210073a0b00ffffffffffffffffff01420573686170652a110801100b420164520800000000000009402a16080310032a0cffffffffffffffffff010007420269385a1c0a017812170a15080112110a0312014e0a0208010a0208040a02080362090a017512040a0208016a1a0a017912150a130801120f0a0312014e0a0208020a000a0208034202100b420d0a096d792e646f6d61696e1002"

func pythonModelWant() *Model {
	w := NewFloat32("w", []int{2, 1, 1, 1}, []float32{0.5, -2})
	b := NewFloat32("b", []int{2}, []float32{0.25, 1.5})
	b.StoreRaw = true
	c := NewFloat32("c", []int{}, []float32{4})
	return &Model{
		IRVersion:    6,
		ProducerName: "py",
		OpsetImports: []OpsetID{{Version: 11}, {Domain: "my.domain", Version: 2}},
		Graph: &Graph{
			Name: "g",
			Nodes: []*Node{
				{Name: "conv", OpType: "Conv", Inputs: []string{"x", "w", "b"}, Outputs: []string{"y"},
					Attrs: []*Attribute{IntsAttr("pads", 1, 0, 1, 0), IntsAttr("strides", 2, 1)}},
				{Name: "reshape", OpType: "Reshape", Inputs: []string{"y", "shape"}, Outputs: []string{"z"}},
				{Name: "custom", OpType: "Custom", Domain: "my.domain", Inputs: []string{"z"}, Outputs: []string{"u"},
					Attrs: []*Attribute{
						FloatAttr("alpha", 0.75),
						StringAttr("mode", "fast"),
						{Name: "names", Type: AttrStrings, Strings: []string{"a", "bc"}},
						FloatsAttr("scales", 1.5, -0.5),
						TensorAttr("t", c),
					}},
			},
			Initializers: []*Tensor{
				w, b,
				NewInt64("shape", []int{2}, []int64{0, -1}),
				NewFloat64("d", []int{1}, []float64{3.125}),
				{Name: "i8", Dims: []int{3}, DataType: Int8, Int32: []int32{-1, 0, 7}},
			},
			Inputs:    []*ValueInfo{{Name: "x", ElemType: Float, HasShape: true, Dims: []Dim{{Param: "N"}, {Value: 1}, {Value: 4}, {Value: 3}}}},
			Outputs:   []*ValueInfo{{Name: "u", ElemType: Float}},
			ValueInfo: []*ValueInfo{{Name: "y", ElemType: Float, HasShape: true, Dims: []Dim{{Param: "N"}, {Value: 2}, {}, {Value: 3}}}},
		},
	}
}

func TestUnmarshal(t *testing.T) {
	data, err := hex.DecodeString(pythonModel)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("PythonEncoding", func(t *testing.T) {
		got, err := Unmarshal(data)
		if err != nil {
			t.Fatal(err)
		}
		if want := pythonModelWant(); !reflect.DeepEqual(got, want) {
			t.Errorf("decoded model differs:\n got %s\nwant %s", dump(got), dump(want))
		}
	})
	t.Run("ReencodesIdentically", func(t *testing.T) {
		m, err := Unmarshal(data)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Errorf("re-encoding differs from onnx.helper's bytes:\n got %x\nwant %x", got, data)
		}
	})
	t.Run("Truncated", func(t *testing.T) {
		// Every prefix that cuts the graph must fail, never panic. (The
		// graph field ends at byte 423; longer prefixes are valid models
		// that only lack opset imports.)
		for n := 1; n < 423; n++ {
			if _, err := Unmarshal(data[:n]); err == nil {
				t.Fatalf("prefix of %d bytes decoded without error", n)
			}
		}
	})
	t.Run("NotONNX", func(t *testing.T) {
		_, err := Unmarshal([]byte("\x08\x07")) // a valid ir_version, no graph
		if err == nil || !strings.Contains(err.Error(), "no graph") {
			t.Errorf("got %v, want an error saying there is no graph", err)
		}
	})
	t.Run("LengthPastEnd", func(t *testing.T) {
		_, err := Unmarshal([]byte{0x3a, 0xff, 0xff, 0x03, 0x0a}) // graph of 65535 bytes, 1 present
		if !errors.Is(err, errTruncated) {
			t.Errorf("got %v, want errTruncated", err)
		}
	})
}

// pb is a minimal protobuf writer for hand-made test inputs, written
// separately from the package's encoder.
type pb []byte

func (p pb) key(field, wire int) pb { return binary.AppendUvarint(p, uint64(field<<3|wire)) }
func (p pb) varint(field int, v int64) pb {
	return binary.AppendUvarint(p.key(field, 0), uint64(v))
}
func (p pb) bytes(field int, b []byte) pb {
	return append(binary.AppendUvarint(p.key(field, 2), uint64(len(b))), b...)
}
func (p pb) str(field int, s string) pb { return p.bytes(field, []byte(s)) }
func (p pb) fixed32(field int, f float32) pb {
	return binary.LittleEndian.AppendUint32(p.key(field, 5), math.Float32bits(f))
}
func (p pb) fixed64(field int, v uint64) pb {
	return binary.LittleEndian.AppendUint64(p.key(field, 1), v)
}

// unknown appends fields of numbers onnx.proto does not use, of every
// wire type, which the decoder must skip.
func (p pb) unknown() pb {
	return p.varint(999, 12345).fixed64(998, 7).fixed32(997, 1).bytes(996, []byte("skip me"))
}

func TestUnmarshal_WireVariants(t *testing.T) {
	// Forms real files use that the python fixture does not: packed dims
	// and ints, unpacked float_data, attributes without a type field (old
	// exporters), non-canonical field order, and unknown fields everywhere.
	var packedDims pb
	packedDims = binary.AppendUvarint(packedDims, 2)
	packedDims = binary.AppendUvarint(packedDims, 3)
	tensor := pb{}.unknown().str(8, "w").bytes(1, packedDims).varint(2, int64(Float)).
		fixed32(4, 1.5).fixed32(4, -2).fixed32(4, 0.25).fixed32(4, 8).fixed32(4, 0).fixed32(4, 3)
	var ints pb
	for _, v := range []int64{-1, 300} {
		ints = binary.AppendUvarint(ints, uint64(v))
	}
	attrUntypedInt := pb{}.str(1, "axis").varint(3, -2).unknown()
	attrPackedInts := pb{}.str(1, "perm").bytes(8, ints).varint(20, int64(AttrInts))
	attrUntypedFloat := pb{}.fixed32(2, 0.5).str(1, "eps")
	node := pb{}.unknown().str(4, "Foo").str(1, "a").str(2, "b").str(3, "n").
		bytes(5, attrUntypedInt).bytes(5, attrPackedInts).bytes(5, attrUntypedFloat).str(6, "doc string")
	dim := pb{}.varint(1, 5).unknown()
	shape := pb{}.bytes(1, dim).bytes(1, pb{}.str(2, "B"))
	ttype := pb{}.bytes(1, pb{}.varint(1, int64(Float)).bytes(2, shape).unknown())
	vi := pb{}.str(1, "a").bytes(2, ttype).str(3, "doc")
	seqType := pb{}.bytes(4, pb{}.bytes(1, ttype)) // a sequence type: not represented
	viSeq := pb{}.str(1, "s").bytes(2, seqType)
	graph := pb{}.bytes(5, tensor).bytes(1, node).unknown().bytes(11, vi).bytes(12, pb{}.str(1, "b")).
		bytes(13, viSeq).str(2, "G")
	model := pb{}.bytes(7, graph).varint(1, 4).unknown().bytes(8, pb{}.varint(2, 9)).
		bytes(14, pb{}.str(1, "k").str(2, "v")) // metadata_props: skipped

	got, err := Unmarshal(model)
	if err != nil {
		t.Fatal(err)
	}
	want := &Model{
		IRVersion:    4,
		OpsetImports: []OpsetID{{Version: 9}},
		Graph: &Graph{
			Name: "G",
			Nodes: []*Node{{Name: "n", OpType: "Foo", Inputs: []string{"a"}, Outputs: []string{"b"}, Attrs: []*Attribute{
				IntAttr("axis", -2),
				{Name: "perm", Type: AttrInts, Ints: []int64{-1, 300}},
				FloatAttr("eps", 0.5),
			}}},
			Initializers: []*Tensor{NewFloat32("w", []int{2, 3}, []float32{1.5, -2, 0.25, 8, 0, 3})},
			Inputs:       []*ValueInfo{{Name: "a", ElemType: Float, HasShape: true, Dims: []Dim{{Value: 5}, {Param: "B"}}}},
			Outputs:      []*ValueInfo{{Name: "b"}},
			ValueInfo:    []*ValueInfo{{Name: "s"}},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded model differs:\n got %s\nwant %s", dump(got), dump(want))
	}
}

func TestUnmarshal_Errors(t *testing.T) {
	graphWith := func(init pb) pb { return pb{}.bytes(7, pb{}.bytes(5, init)) }
	for _, tc := range []struct {
		name, want string
		data       pb
	}{
		{"CountMismatch", `tensor "w": 3 values for dims [2]`,
			graphWith(pb{}.varint(1, 2).varint(2, int64(Float)).str(8, "w").fixed32(4, 1).fixed32(4, 2).fixed32(4, 3))},
		{"RawNotMultiple", `tensor "w": raw_data of 5 bytes for FLOAT`,
			graphWith(pb{}.varint(1, 1).varint(2, int64(Float)).str(8, "w").bytes(9, []byte{1, 2, 3, 4, 5}))},
		{"NegativeDim", `tensor "w": dimension -3 out of range`,
			graphWith(pb{}.varint(1, -3).varint(2, int64(Float)).str(8, "w"))},
		{"WrongWireType", "string field with wire type 0",
			pb{}.bytes(7, pb{}.varint(2, 5))},
		{"GroupWireType", "wire type 3",
			pb{}.bytes(7, pb{}.key(40, 3))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Unmarshal(tc.data)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func FuzzUnmarshal(f *testing.F) {
	data, _ := hex.DecodeString(pythonModel)
	f.Add(data)
	m, err := OpsModel()
	if err != nil {
		f.Fatal(err)
	}
	ops, _ := Marshal(m)
	f.Add(ops)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Unmarshal(data)
		if err != nil {
			return
		}
		// Whatever decodes must re-encode and decode to the same model.
		b, err := Marshal(m)
		if err != nil {
			return // e.g. a tensor whose payload type is not represented
		}
		m2, err := Unmarshal(b)
		if err != nil {
			t.Fatalf("re-encoded model does not decode: %v", err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip changed the model:\n%s\n%s", dump(m), dump(m2))
		}
	})
}

func TestMarshal_RoundTrip(t *testing.T) {
	models := map[string]func() (*Model, error){"python": func() (*Model, error) { return pythonModelWant(), nil }}
	for _, s := range SmallModels() {
		models[s.File] = s.Build
	}
	extra := &Model{IRVersion: 7, OpsetImports: []OpsetID{{Domain: "ai.onnx", Version: 13}}, Graph: &Graph{
		Nodes: []*Node{{OpType: "Identity", Inputs: []string{"x"}, Outputs: []string{"y"}}},
		Initializers: []*Tensor{
			{Name: "ext", Dims: []int{1 << 20}, DataType: Float, External: true},
			{Name: "u8", Dims: []int{3}, DataType: Uint8, RawData: []byte{1, 2, 250}, StoreRaw: true},
			{Name: "i64raw", Dims: []int{2}, DataType: Int64, Int64: []int64{-5, 1 << 40}, StoreRaw: true},
			{Name: "f64raw", Dims: []int{1}, DataType: Double, Float64: []float64{math.Pi}, StoreRaw: true},
			{Name: "empty", Dims: []int{0, 3}, DataType: Float, Float32: []float32{}},
			{Name: "scalar", Dims: []int{}, DataType: Float, Float32: []float32{-0.5}},
		},
		Inputs:  []*ValueInfo{{Name: "x", ElemType: Float, HasShape: true, Dims: []Dim{}}},
		Outputs: []*ValueInfo{{Name: "y", ElemType: Float}},
	}}
	models["extra"] = func() (*Model, error) { return extra, nil }
	for name, build := range models {
		t.Run(name, func(t *testing.T) {
			m, err := build()
			if err != nil {
				t.Fatal(err)
			}
			data, err := Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Unmarshal(data)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, m) {
				t.Errorf("round trip differs:\n got %s\nwant %s", dump(got), dump(m))
			}
			// WriteFile streams; it must write exactly Marshal's bytes.
			path := filepath.Join(t.TempDir(), "m.onnx")
			if err := WriteFile(path, m); err != nil {
				t.Fatal(err)
			}
			file, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(file, data) {
				t.Errorf("WriteFile wrote %d bytes that differ from Marshal's %d", len(file), len(data))
			}
		})
	}
}

func TestWriteFile(t *testing.T) {
	t.Run("Atomic", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "m.onnx")
		if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
		bad := &Model{Graph: &Graph{Initializers: []*Tensor{{Name: "w", Dims: []int{2}, DataType: Float, Float32: []float32{1}}}}}
		err := WriteFile(path, bad)
		if err == nil || !strings.Contains(err.Error(), `tensor "w": 1 values for dims [2]`) || !strings.Contains(err.Error(), path) {
			t.Errorf("got %v, want an error naming the file and the tensor", err)
		}
		if b, _ := os.ReadFile(path); string(b) != "old" {
			t.Errorf("failed write replaced the file: %q", b)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 1 {
			t.Errorf("temporary file left behind: %v", entries)
		}
	})
	t.Run("MissingDir", func(t *testing.T) {
		m, _ := OpsModel()
		path := filepath.Join(t.TempDir(), "no", "such", "m.onnx")
		if err := WriteFile(path, m); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("got %v, want an error naming %s", err, path)
		}
	})
}

func TestReadModel_Errors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.onnx")
	if _, err := ReadModel(path); err == nil || !strings.Contains(err.Error(), "read "+path) {
		t.Errorf("got %v, want an error naming %s", err, path)
	}
	if err := os.WriteFile(path, []byte("\x0a\x05hello world"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadGraph(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("got %v, want an error naming %s", err, path)
	}
}
