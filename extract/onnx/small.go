package onnx

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
)

// SmallModel is one of the small models committed in testdata/models.
type SmallModel struct {
	File   string // file name in testdata/models
	Input  string // the input to feed
	Dims   []int  // input dims to feed (batch 1)
	Output string // the final output tensor
	Build  func() (*Model, error)
	About  string   // one line for humans
	opts   *Options // nil for the ops model
	build  func(Options) (*Model, error)
}

// SmallModels lists the committed test models. Each is a few KB to a few
// tens of KB, topologically identical to its full-size namesake where it
// has one.
func SmallModels() []SmallModel {
	tiny := func(style Style, blocks []int, seed uint64) *Options {
		return &Options{Style: style, InputSize: 32, WidthDiv: 16, Hidden: 32, Classes: 10, Blocks: blocks, Seed: seed}
	}
	list := []SmallModel{
		{File: "vgg-zoo-tiny.onnx", Output: "vgg0_dense2_fwd", opts: tiny(Zoo, []int{2, 2, 3}, 1), build: VGG,
			About: "VGG-16 naming of vgg16-7.onnx, 3 blocks (2,2,3 convs), 4-8-16 channels, FC 32-32-10, 32x32 input"},
		{File: "vgg-torch-tiny.onnx", Output: "output", opts: tiny(Torchvision, []int{2, 2, 3}, 2), build: VGG,
			About: "torchvision vgg16 export naming, same topology as vgg-zoo-tiny"},
		{File: "resnet-v1-zoo-tiny.onnx", Output: "resnetv17_dense0_fwd", opts: tiny(Zoo, []int{1, 2, 1}, 3), build: ResNetV1,
			About: "ResNet-50 v1 naming of resnet50-v1-7.onnx, stages of 1,2,1 bottlenecks, 4-channel stem, 32x32 input"},
		{File: "resnet-v1-torch-tiny.onnx", Output: "output", opts: tiny(Torchvision, []int{1, 2, 1}, 4), build: ResNetV1,
			About: "torchvision resnet50 (v1.5) export naming, BatchNormalization kept, same topology as resnet-v1-zoo-tiny"},
		{File: "resnet-v2-zoo-tiny.onnx", Output: "resnetv24_dense0_fwd", opts: tiny(Zoo, []int{1, 2, 1}, 5), build: ResNetV2,
			About: "ResNet-50 v2 naming of resnet50-v2-7.onnx (input BatchNormalization, pre-activation blocks, Reshape flatten)"},
		{File: "ops.onnx", Output: "prob", Build: OpsModel,
			About: "every operator of the reference: Conv, BatchNormalization, AveragePool with pads and count_include_pad 0 and 1, MaxPool, Add, Identity, Reshape [0,-1], Gemm alpha/beta != 1, Dropout, Flatten, Softmax, GlobalAveragePool (second output \"gap\")"},
	}
	for i := range list {
		s := &list[i]
		s.Input = "data"
		if s.opts != nil {
			o, f := *s.opts, s.build
			s.Build = func() (*Model, error) { return f(o) }
			s.Dims = []int{1, 3, o.InputSize, o.InputSize}
		} else {
			s.Dims = []int{1, 3, 12, 12}
		}
	}
	return list
}

// WriteSmallModels (re)generates the committed test models into dir.
func WriteSmallModels(dir string) error {
	for _, s := range SmallModels() {
		m, err := s.Build()
		if err != nil {
			return fmt.Errorf("generate %s: %w", s.File, err)
		}
		if err := WriteFile(filepath.Join(dir, s.File), m); err != nil {
			return err
		}
	}
	return nil
}

// OpsModel is a small opset-11 graph with every operator Run implements,
// with attribute values away from the defaults, and shapes that OpenCV 4.6
// imports (no broadcasting between two computed tensors):
//
//	data [N,3,12,12] → conv (3x3 pad 1) → bn → relu
//	  → avgpool_pad (3x3 s2 pad 1, count_include_pad 0) [N,4,6,6]
//	  → maxpool (2x2 s2) [N,4,3,3] ┐
//	  → avgpool_incl (3x3 s1 pad 1, count_include_pad 1) ┴ add → identity
//	  → reshape [0,-1] [N,36] → fc1 (Gemm α 0.5 β 2) → relu_fc1 → dropout
//	  → flatten → fc2 (Gemm α 1.5 β 0.25) [N,5] → softmax → prob
//	relu → gap (GlobalAveragePool) [N,4,1,1], a second output
func OpsModel() (*Model, error) {
	r := rand.New(rand.NewPCG(7, 0x6f6e6e78))
	w := &weights{r: r, style: Torchvision}
	b := NewBuilder("ops")
	x := b.Input("data", Dim{Param: "N"}, Dim{Value: 3}, Dim{Value: 12}, Dim{Value: 12})
	x = b.Conv("conv", x, "conv_out", w.convWeight("conv.weight", 4, 3, 3, 1), w.bias("conv.bias", 4),
		ConvAttrs{Pads: []int{1, 1, 1, 1}})
	t := w.bn([4]string{"bn.scale", "bn.bias", "bn.mean", "bn.var"}, 4)
	x = b.BatchNorm("bn", x, "bn_out", t[0], t[1], t[2], t[3], 1e-3)
	relu := b.Relu("relu", x, "relu_out")
	x = b.AveragePool("avgpool_pad", relu, "avgpool_pad_out", PoolAttrs{Kernel: []int{3, 3}, Strides: []int{2, 2}, Pads: []int{1, 1, 1, 1}})
	mp := b.MaxPool("maxpool", x, "maxpool_out", PoolAttrs{Kernel: []int{2, 2}, Strides: []int{2, 2}})
	ap := b.AveragePool("avgpool_incl", mp, "avgpool_incl_out", PoolAttrs{Kernel: []int{3, 3}, Pads: []int{1, 1, 1, 1}, CountIncludePad: true})
	x = b.Add("add", mp, ap, "add_out")
	x = b.Identity("identity", x, "identity_out")
	shape := NewInt64("reshape.shape", []int{2}, []int64{0, -1})
	shape.StoreRaw = true
	x = b.Reshape("reshape", x, "reshape_out", shape)
	x = b.Gemm("fc1", x, "fc1_out", w.fc("fc1.weight", 16, 36, 1), w.bias("fc1.bias", 16), GemmAttrs{Alpha: 0.5, Beta: 2, TransB: true})
	x = b.Relu("relu_fc1", x, "relu_fc1_out")
	x = b.Dropout("dropout", x, "dropout_out", 0.3)
	x = b.Flatten("flatten", x, "flatten_out", 1)
	x = b.Gemm("fc2", x, "fc2_out", w.fc("fc2.weight", 5, 16, 1), w.bias("fc2.bias", 5), GemmAttrs{Alpha: 1.5, Beta: 0.25, TransB: true})
	x = b.Softmax("softmax", x, "prob", 1)
	b.Output(x, Dim{Param: "N"}, Dim{Value: 5})
	gap := b.GlobalAveragePool("gap", relu, "gap")
	b.Output(gap, Dim{Param: "N"}, Dim{Value: 4}, Dim{Value: 1}, Dim{Value: 1})
	return b.Model()
}
