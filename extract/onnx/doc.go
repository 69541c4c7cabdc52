// Package onnx is a small, pure-Go ONNX toolkit for testing the extractor:
// it reads and writes .onnx files, generates networks with known weights
// and real-world naming, and computes a float64 reference forward pass that
// OpenCV's output is compared against.
//
// # Files
//
// ReadModel decodes a whole file; ReadGraph decodes only its structure
// (nodes, inputs and outputs with dims, initializer names and dims),
// skipping weight payloads by seeking, so a 550 MB VGG-16 is scanned in a
// few milliseconds and a few hundred KB. Map decodes the structure the same
// way and maps the file read-only, so that a loader reads each initializer's
// payload when it needs it (a view of the mapping where the payload is
// aligned float32) and releases its pages after (the oneDNN engine's load).
// Marshal, Unmarshal and WriteFile
// (atomic, streaming) cover the rest. The codec is a hand-written protobuf
// wire-format reader and writer for the ModelProto subset in model.go
// (field numbers of onnx 1.12's onnx.proto). It reads packed and unpacked
// repeated fields, raw_data and typed data, attributes without a type
// field, and skips unknown fields, as real exporter output needs. It
// writes fields in field-number order and packs only what onnx.proto
// declares packed, so a file it writes is byte-identical to what
// onnx.save() writes for the same ModelProto (checked with python's onnx
// for every committed model).
//
// # Building and generating
//
// Builder assembles graphs with explicit node and tensor names. VGG,
// ResNetV1 and ResNetV2 generate VGG-16 and ResNet-50 (or topologically
// identical small versions: Options.InputSize, WidthDiv, Blocks) with
// deterministic random weights from Options.Seed: He-normal convolutions
// and dense layers (LeCun on the image-facing layer, 1/√blocks on the last
// convolution of each residual branch) so activations stay O(1) through
// the full depth, biases uniform ±0.1 and never zero, BatchNormalization
// with gamma and running variance in [0.5, 1.5], beta and running mean in
// ±0.1.
//
// Two naming styles are reproduced, because layer aliases must resolve on
// both:
//
//   - Zoo: the ONNX model zoo's MXNet exports (vgg16-7.onnx,
//     resnet50-v1-7.onnx, resnet50-v2-7.onnx). Each node's name equals its
//     output tensor's: vgg0_conv0_fwd, vgg0_relu0_fwd, vgg0_pool0_fwd,
//     flatten_60, vgg0_dense0_fwd, vgg0_dense0_relu_fwd, vgg0_dropout0_fwd;
//     resnetv17_conv0_fwd, resnetv17_stage1_conv3_fwd (the downsample),
//     resnetv17_stage1__plus0, resnetv17_stage1_activation0,
//     resnetv17_pool1_fwd, flatten_473, resnetv17_dense0_fwd; for v2
//     resnetv24_batchnorm0_fwd on the raw input, resnetv24_relu1_fwd,
//     resnetv24_flatten0_reshape0 (a Reshape to [0, -1]). Weights are
//     <layer>_weight, _bias, _gamma, _beta, _running_mean, _running_var.
//     The number in flatten_N and reshape_attr_tensorN is the index of the
//     operator in MXNet's symbol graph, which counts every parameter as a
//     node (see mxnetIndex). Opset 7, IR version 3, every initializer also
//     a graph input (Graph.DataInputs filters them), input "data" fixed at
//     1x3xSxS, weights in float_data.
//   - Torchvision: torch.onnx.export (torch 1.13) of torchvision's vgg16 and
//     resnet50 in eval mode with BatchNormalization kept. Nodes are named
//     /<module path>/<Op> and their outputs /<module path>/<Op>_output_0:
//     /features/features.0/Conv, /avgpool/AveragePool, /Flatten,
//     /classifier/classifier.0/Gemm; /conv1/Conv, /bn1/BatchNormalization,
//     /layer1/layer1.0/conv1/Conv, /layer1/layer1.0/relu_1/Relu,
//     /layer1/layer1.0/downsample/downsample.0/Conv, /layer1/layer1.0/Add,
//     /layer1/layer1.0/relu_2/Relu, /avgpool/GlobalAveragePool, /fc/Gemm.
//     Weights keep the PyTorch parameter names (features.0.weight,
//     layer1.0.bn1.running_mean). The graph output is named "output". Opset
//     11, IR version 6, input "data" with a dynamic batch "N", weights in
//     raw_data. Dropout is absent, as torch drops it in eval mode.
//
// The Torchvision style is checked node by node (names, inputs, outputs,
// attributes) and initializer by initializer against listings of real
// exports in testdata/; the Zoo names against public listings of the zoo
// files (see generate_test.go for what is confirmed).
//
// SmallModels lists the models committed in testdata/models at the
// repository root; regenerate them with
//
//	go generate ./extract/onnx
//
// # Reference forward pass
//
// Run evaluates a model in float64 with exact ONNX semantics for Conv,
// BatchNormalization, Relu, MaxPool, AveragePool, GlobalAveragePool, Add,
// Flatten, Gemm, Dropout, Softmax, Reshape, Identity and Constant (Ops
// lists them), and Shapes infers every tensor's shape with the same code.
// Anything not implemented — an operator, group ≠ 1, dilations,
// ceil_mode 1, auto_pad SAME, an unknown attribute — is an error wrapping
// ErrUnsupported that names the node, never a silent approximation. Run
// agrees with PyTorch in float64 to about 1e-15 on the committed models
// and 5e-12 on full torchvision ResNet-50 and VGG-16 exports
// (testdata/crosscheck.py). It takes about 3 s for ResNet-50 and 7 s for
// VGG-16 at 224x224 on two cores; small models take a millisecond.
//
// To add an operator: write infer (validate attributes with the opCtx
// helpers, check input shapes, return output shapes) and eval (compute
// from the inputs, never modifying them: values are shared), register
// them in the ops table in ops.go with the list of attributes the
// implementation understands (others are rejected), add a Builder method
// if generated models need it, test it against values computed by hand in
// run_test.go, and extend the interpreter in testdata/crosscheck.py.
package onnx

//go:generate go test -run TestSmallModels -update .
