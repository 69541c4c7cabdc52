#!/usr/bin/env python3
"""Writes the node and initializer listings of real torch.onnx exports of
torchvision's vgg16 and resnet50, which generate_test.go compares the
Torchvision-style generators against.

Run by hand (needs torch, torchvision, onnx; not run by go test):

    /usr/bin/python3 extract/onnx/testdata/torchvision_golden.py extract/onnx/testdata

Every parameter and BatchNorm buffer is randomized first: with torchvision's
default init (zero biases, unit BN weights) torch.onnx deduplicates equal
tensors into Identity nodes, which is an artifact of the init, not of the
architecture. BatchNormalization is kept (TrainingMode.PRESERVE on a model in
eval mode), as in the generators. Listing format, one line per node:

    node <name> <op_type> <inputs,comma,separated> <outputs> <attr=value;...>

with float attributes as the hex of their float32 bits, then

    init <name> <dims,comma,separated>

The graph output is renamed "output" (torch names it by a number).
"""
import os
import struct
import sys
import tempfile

import onnx
import torch
import torchvision


def attr_str(a):
    v = onnx.helper.get_attribute_value(a)
    if a.type == onnx.AttributeProto.FLOAT:
        return "%s=f:%08x" % (a.name, struct.unpack("<I", struct.pack("<f", v))[0])
    if a.type == onnx.AttributeProto.INT:
        return "%s=%d" % (a.name, v)
    if a.type == onnx.AttributeProto.INTS:
        return "%s=%s" % (a.name, ",".join(str(x) for x in v))
    raise SystemExit("unexpected attribute %s" % a)


def listing(model_fn, path):
    torch.manual_seed(0)
    m = model_fn(weights=None).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.uniform_(0.5, 1.5)
        for name, b in m.named_buffers():
            if b.dtype.is_floating_point:
                b.uniform_(0.5, 1.5)
    with tempfile.TemporaryDirectory() as d:
        f = os.path.join(d, "m.onnx")
        torch.onnx.export(m, torch.randn(1, 3, 224, 224), f, input_names=["data"],
                          dynamic_axes={"data": {0: "N"}}, opset_version=11,
                          training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
        g = onnx.load(f).graph
    out = g.output[0].name
    ren = lambda s: "output" if s == out else s
    lines = []
    for n in g.node:
        if n.op_type == "Identity":
            raise SystemExit("unexpected Identity node %s: deduplicated tensors" % n.name)
        lines.append("node %s %s %s %s %s" % (n.name, n.op_type, ",".join(map(ren, n.input)),
                                             ",".join(map(ren, n.output)),
                                             ";".join(attr_str(a) for a in n.attribute)))
    for t in g.initializer:
        lines.append("init %s %s" % (t.name, ",".join(str(x) for x in t.dims)))
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    dst = sys.argv[1] if len(sys.argv) > 1 else "."
    listing(torchvision.models.vgg16, os.path.join(dst, "torchvision_vgg16.txt"))
    listing(torchvision.models.resnet50, os.path.join(dst, "torchvision_resnet50.txt"))
