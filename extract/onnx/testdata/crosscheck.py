#!/usr/bin/env python3
"""Reference outputs from PyTorch for the Go reference forward pass (Run).

Manual cross-check, not run by go test (python is never a test dependency):

    /usr/bin/python3 extract/onnx/testdata/crosscheck.py /tmp/xc [--full]
    go test ./extract/onnx -run TestCrossCheck -crosscheck /tmp/xc -v

It writes, into the directory given:

  * For each committed model in testdata/models: <file>.ref.json with the
    input and every node output, computed by a small ONNX interpreter written
    here on torch.nn.functional in float64 (independent of the Go code: other
    language, other convolution and pooling implementations).
  * With --full: real torch.onnx exports of torchvision resnet50 and vgg16
    (random weights, BatchNormalization kept) as tv_resnet50.onnx and
    tv_vgg16.onnx, and tv_*.ref.json with the outputs of the torchvision
    modules themselves run in float64, plus intermediate layers captured with
    forward hooks. This checks Run end to end against the framework, on
    files the Go code did not write.

The Go test runs Run on the same input and compares every tensor listed.
"""
import json
import os
import sys

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.join(HERE, "..", "..", "..", "testdata", "models")


def attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def interpret(model, feed):
    """Evaluates an ONNX graph with torch float64 ops; returns all values."""
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    env = {}
    for t in model.graph.initializer:
        a = numpy_helper.to_array(t)
        env[t.name] = torch.from_numpy(a.astype(np.int64 if a.dtype == np.int64 else np.float64))
    env.update(feed)
    out = {}
    for n in model.graph.node:
        a = attrs(n)
        x = [env[i] if i else None for i in n.input]
        op = n.op_type
        if op == "Conv":
            t, l, b, r = a.get("pads", [0, 0, 0, 0])
            assert a.get("group", 1) == 1 and a.get("dilations", [1, 1]) == [1, 1]
            y = F.conv2d(F.pad(x[0], (l, r, t, b)), x[1], x[2] if len(x) > 2 else None,
                         stride=tuple(a.get("strides", [1, 1])))
        elif op == "BatchNormalization":
            y = F.batch_norm(x[0], x[3], x[4], x[1], x[2], False, 0.0, a.get("epsilon", 1e-5))
        elif op in ("MaxPool", "AveragePool"):
            t, l, b, r = a.get("pads", [0, 0, 0, 0])
            k, s = tuple(a["kernel_shape"]), tuple(a.get("strides", [1, 1]))
            assert a.get("ceil_mode", 0) == 0
            if op == "MaxPool":
                y = F.max_pool2d(F.pad(x[0], (l, r, t, b), value=-float("inf")), k, s)
            elif a.get("count_include_pad", 0):
                y = F.avg_pool2d(F.pad(x[0], (l, r, t, b)), k, s)
            else:
                ones = torch.ones_like(x[0])
                y = F.avg_pool2d(F.pad(x[0], (l, r, t, b)), k, s) / F.avg_pool2d(F.pad(ones, (l, r, t, b)), k, s)
        elif op == "GlobalAveragePool":
            y = x[0].mean(dim=(2, 3), keepdim=True)
        elif op == "Relu":
            y = F.relu(x[0])
        elif op == "Add":
            y = x[0] + x[1]
        elif op == "Flatten":
            axis = a.get("axis", 1)
            y = x[0].reshape(int(np.prod(x[0].shape[:axis])), -1)
        elif op == "Gemm":
            A = x[0].T if a.get("transA", 0) else x[0]
            B = x[1].T if a.get("transB", 0) else x[1]
            y = a.get("alpha", 1.0) * (A @ B)
            if len(x) > 2 and x[2] is not None:
                y = y + a.get("beta", 1.0) * x[2]
        elif op in ("Dropout", "Identity"):
            y = x[0]
        elif op == "Softmax":
            axis = a.get("axis", 1 if opset < 13 else -1)
            if opset < 13:
                shp = x[0].shape
                y = F.softmax(x[0].reshape(int(np.prod(shp[:axis])), -1), dim=1).reshape(shp)
            else:
                y = F.softmax(x[0], dim=axis)
        elif op == "Reshape":
            shape = [int(v) for v in x[1].tolist()]
            shape = [x[0].shape[i] if v == 0 else v for i, v in enumerate(shape)]
            y = x[0].reshape(shape)
        else:
            raise SystemExit("crosscheck.py: no interpreter for %s" % op)
        env[n.output[0]] = y
        out[n.output[0]] = y
    return out


def tensor_json(t):
    t = t.detach().to(torch.float64).contiguous()
    return {"dims": list(t.shape), "data": t.reshape(-1).tolist()}


def write(path, model_path, input_name, x, outputs):
    with open(path, "w") as f:
        json.dump({"model": model_path, "input": input_name, "input_value": tensor_json(x),
                   "outputs": {k: tensor_json(v) for k, v in outputs.items()}}, f)
    print("wrote", path, len(outputs), "tensors")


def small_models(dst):
    rng = np.random.default_rng(42)
    for name in sorted(os.listdir(MODELS)):
        if not name.endswith(".onnx"):
            continue
        path = os.path.abspath(os.path.join(MODELS, name))
        m = onnx.load(path)
        inp = m.graph.input[0]
        dims = [d.dim_value if d.dim_value > 0 else 2 for d in inp.type.tensor_type.shape.dim]
        if m.ir_version <= 3:
            dims[0] = 1  # zoo files declare a fixed batch of 1
        x = torch.from_numpy(rng.standard_normal(dims))
        write(os.path.join(dst, name + ".ref.json"), path, inp.name, x, interpret(m, {inp.name: x}))


def randomize(m):
    torch.manual_seed(0)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn_like(p) * (2.0 / p[0].numel()) ** 0.5 if p.dim() > 1 else torch.rand_like(p) * 0.2 - 0.1)
        for name, b in m.named_buffers():
            if name.endswith("running_var"):
                b.uniform_(0.5, 1.5)
            elif name.endswith("running_mean"):
                b.uniform_(-0.1, 0.1)
    for name, mod in m.named_modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            with torch.no_grad():
                mod.weight.uniform_(0.5, 1.5)


def full_models(dst):
    import torchvision
    for name, fn, hooks in [
        ("resnet50", torchvision.models.resnet50, {
            "layer1": "/layer1/layer1.2/relu_2/Relu_output_0",
            "layer3": "/layer3/layer3.5/relu_2/Relu_output_0",
            "avgpool": "/avgpool/GlobalAveragePool_output_0"}),
        ("vgg16", torchvision.models.vgg16, {
            "features": "/features/features.30/MaxPool_output_0",
            "classifier.4": "/classifier/classifier.4/Relu_output_0"}),
    ]:
        m = fn(weights=None).eval()
        randomize(m)
        path = os.path.join(dst, "tv_%s.onnx" % name)
        x32 = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))
        torch.onnx.export(m, x32, path, input_names=["data"], output_names=["output"],
                          dynamic_axes={"data": {0: "N"}}, opset_version=11,
                          training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
        m = m.double()
        got = {}
        for mod_name, tensor in hooks.items():
            mod = dict(m.named_modules())[mod_name]
            mod.register_forward_hook(lambda _m, _i, o, tensor=tensor: got.__setitem__(tensor, o))
        x = x32.double()
        with torch.no_grad():
            got["output"] = m(x)
        write(os.path.join(dst, "tv_%s.ref.json" % name), os.path.abspath(path), "data", x, got)


if __name__ == "__main__":
    dst = sys.argv[1]
    os.makedirs(dst, exist_ok=True)
    small_models(dst)
    if "--full" in sys.argv:
        full_models(dst)
