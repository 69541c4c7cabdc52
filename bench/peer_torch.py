#!/usr/bin/python3
"""PyTorch CPU peer for the pipeline benchmark (bench only, never a product dependency).

Two measurements, each printed as one JSON object on stdout:

  peer_torch.py gemm --threads 2 [--size 4096] [--reps 5]
      float32 n x n matmul (torch.mm, and numpy/OpenBLAS as a cross-check):
      GFLOP/s = 2 n^3 / median time. The FLOP roofline of the machine.

  peer_torch.py net --model vgg16|resnet50 --threads 2 --batches 1,8,32
                    [--modes eager,channels_last,torchscript,bf16]
                    [--warmup 1] [--reps 5] [--min-images 8] [--malloc keep|default]
      torchvision's architecture with random weights (speed does not depend
      on the values), cut at the layer pipeline extracts: vgg16 up to
      classifier[4] (the ReLU after the second 4096-wide Linear = Keras fc2),
      resnet50 up to avgpool (= Keras avg_pool), in eval mode under
      torch.inference_mode(). One repetition is enough forward passes of
      `batch` images to cover at least --min-images images; the rate is the
      images of one repetition over the median repetition time. Each of
      --modes is measured: eager NCHW, channels_last, TorchScript frozen
      (torch.jit.optimize_for_inference(torch.jit.script(m))) and bf16
      autocast with channels_last (skipped, with the reason, on CPUs
      without bf16); every mode's codes are compared with eager fp32's
      (min_cosine_to_eager). By default glibc keeps freed memory
      (--malloc keep, see keep_malloc): PyTorch's best configuration.

Progress goes to stderr; only the JSON result goes to stdout.
"""

import argparse
import json
import os
import resource
import statistics
import sys
import time


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def set_threads(n):
    import torch

    torch.set_num_threads(n)
    # One inter-op thread: the peer runs one net at a time, like pipeline.
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # already set in this process
    return torch.get_num_threads()


def peak_rss_kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def gemm(args):
    import torch

    threads = set_threads(args.threads)
    n = args.size
    flop = 2.0 * n * n * n
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g, dtype=torch.float32)
    b = torch.randn(n, n, generator=g, dtype=torch.float32)
    out = {"kind": "gemm", "size": n, "threads": threads, "torch": torch.__version__}

    def timeit(fn):
        fn()  # warm-up: thread pools, page faults of the output
        times = []
        for _ in range(args.reps):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return times

    t = timeit(lambda: torch.mm(a, b))
    out["torch_seconds"] = t
    out["torch_gflops"] = flop / statistics.median(t) / 1e9
    try:
        import numpy as np

        # OpenBLAS reads its thread count at load time; torch already loaded
        # numpy, so the environment cannot change it any more: report it.
        x, y = a.numpy(), b.numpy()
        t = timeit(lambda: x @ y)
        out["numpy_seconds"] = t
        out["numpy_gflops"] = flop / statistics.median(t) / 1e9
        out["numpy"] = np.__version__
        out["openblas_threads"] = os.environ.get("OPENBLAS_NUM_THREADS", "")
    except ImportError:
        pass
    out["gflops"] = out["torch_gflops"]
    out["self_maxrss_kib"] = peak_rss_kib()
    return out


def build(model):
    import torch
    import torchvision

    torch.manual_seed(0)
    if model == "vgg16":
        m = torchvision.models.vgg16(weights=None)
        # features -> avgpool -> flatten -> Linear, ReLU, Dropout, Linear, ReLU
        net = torch.nn.Sequential(m.features, m.avgpool, torch.nn.Flatten(1), *list(m.classifier.children())[:5])
        layer = "classifier[4] (ReLU after the second Linear = Keras fc2), 4096-d"
    elif model == "resnet50":
        m = torchvision.models.resnet50(weights=None)
        net = torch.nn.Sequential(*list(m.children())[:-1], torch.nn.Flatten(1))  # up to avgpool
        layer = "avgpool (= Keras avg_pool), 2048-d"
    else:
        raise SystemExit(f"peer_torch: unknown model {model!r}: want vgg16 or resnet50")
    return net.eval(), layer


MODES = ("eager", "channels_last", "torchscript", "bf16")


def bf16_available():
    """(True, "") where PyTorch's bf16 autocast runs on bf16 hardware here,
    else (False, why). torch 1.13 (Debian 12's) has no
    torch.ops.mkldnn._is_mkldnn_bf16_supported (later versions do): there
    the CPU's flags decide (avx512_bf16 or amx_bf16: the same libdnnl then
    runs brgconv:avx512_core_bf16 or _amx kernels, as ONEDNN_VERBOSE=1
    shows), and a small convolution under autocast must return bf16."""
    import torch

    if not torch.backends.mkldnn.is_available():
        return False, "this torch is built without oneDNN (torch.backends.mkldnn.is_available() is false)"
    probe = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    if probe is not None:
        if not probe():
            return False, "torch.ops.mkldnn._is_mkldnn_bf16_supported() is false on this CPU"
    else:
        flags = set()
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if line.startswith("flags"):
                        flags = set(line.split(":", 1)[1].split())
                        break
        except OSError as e:
            return False, f"cannot read the CPU flags: {e}"
        if not flags & {"avx512_bf16", "amx_bf16"}:
            return False, "this CPU has neither avx512_bf16 nor amx_bf16"
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        y = torch.nn.Conv2d(3, 8, 3)(torch.randn(1, 3, 8, 8))
    if y.dtype != torch.bfloat16:
        return False, f"a convolution under torch.autocast('cpu', torch.bfloat16) returned {y.dtype}"
    return True, ""


def prepare(model, mode, size):
    """The module and input layout of one configuration:
    eager: NCHW as built; channels_last: weights and input in NHWC;
    torchscript: torch.jit.optimize_for_inference(torch.jit.script(m)) (frozen,
    oneDNN blocked layouts, conv+bias+ReLU+add fused); bf16: channels_last
    under torch.autocast("cpu", torch.bfloat16)."""
    import contextlib
    import torch

    fmt = torch.contiguous_format
    ctx = contextlib.nullcontext
    if mode in ("channels_last", "bf16"):
        model = model.to(memory_format=torch.channels_last)
        fmt = torch.channels_last
    if mode == "bf16":
        ctx = lambda: torch.autocast("cpu", dtype=torch.bfloat16)  # noqa: E731
    if mode == "torchscript":
        model = torch.jit.optimize_for_inference(torch.jit.script(model))
    return model, fmt, ctx


# glibc settings under which freed memory stays in the process: no mmap
# per large block, no trim of the heap's top.
KEEP_MALLOC = {"MALLOC_MMAP_THRESHOLD_": "4294967296", "MALLOC_TRIM_THRESHOLD_": "4294967296",
               "MALLOC_TOP_PAD_": "536870912"}


def keep_malloc():
    """Re-executes this script with KEEP_MALLOC in the environment (glibc
    reads it at start). With glibc's defaults PyTorch gives each forward
    pass's activations back to the OS and faults them in again, zeroed, on
    the next pass: on the 2-core VMs of docs/PERFORMANCE.md that cost
    frozen TorchScript ResNet-50 at batch 8 between none and 40 % of its
    rate from one minute to the next (25.8 vs 40.8 img/s, same minute).
    Keeping the memory, as the jemalloc/tcmalloc advice for PyTorch on CPU
    does, is PyTorch's best configuration, and its rate is stable."""
    if all(os.environ.get(k) == v for k, v in KEEP_MALLOC.items()):
        return
    env = dict(os.environ, **KEEP_MALLOC)
    os.execve(sys.executable, [sys.executable] + sys.argv, env)


def net(args):
    import torch
    import torchvision

    threads = set_threads(args.threads)
    base, layer = build(args.model)
    res = {"kind": "net", "model": args.model, "layer": layer, "threads": threads,
           "torch": torch.__version__, "torchvision": torchvision.__version__,
           "size": args.size, "malloc": args.malloc, "results": [], "skipped": {}}
    ref = {}
    for mode in args.modes:
        if mode == "bf16":
            ok, why = bf16_available()
            if not ok:
                res["skipped"][mode] = why
                log(f"torch {args.model} {mode}: skipped, {why}")
                continue
        try:
            with torch.inference_mode():
                model, fmt, ctx = prepare(base, mode, args.size)
        except Exception as e:  # a configuration this torch cannot build: say so, go on
            res["skipped"][mode] = f"{type(e).__name__}: {e}"
            log(f"torch {args.model} {mode}: skipped: {e}")
            continue
        with torch.inference_mode(), ctx():
            for b in args.batches:
                x = torch.randn(b, 3, args.size, args.size, generator=torch.Generator().manual_seed(b))
                x = x.contiguous(memory_format=fmt)
                calls = max(1, -(-args.min_images // b))  # ceil: forward passes per repetition
                out = model(x)  # the first pass allocates (and traces); not counted in the warm-up
                dim = int(out.shape[1])
                entry = {"mode": mode, "batch": b, "calls_per_rep": calls, "images_per_rep": calls * b, "dim": dim}
                o = out.float().reshape(b, -1)
                if mode == "eager":
                    ref[b] = o
                elif b in ref:  # fidelity of the configuration against eager fp32
                    cos = torch.nn.functional.cosine_similarity(o, ref[b], dim=1)
                    entry["min_cosine_to_eager"] = float(cos.min())
                for _ in range(args.warmup * calls):
                    model(x)
                times = []
                for r in range(args.reps):
                    t = time.perf_counter()
                    for _ in range(calls):
                        model(x)
                    times.append(time.perf_counter() - t)
                    log(f"torch {args.model} {mode} batch {b}: rep {r + 1}/{args.reps} {calls * b / times[-1]:.2f} img/s")
                entry["seconds"] = times
                entry["images_per_second"] = calls * b / statistics.median(times)
                res["results"].append(entry)
    res["self_maxrss_kib"] = peak_rss_kib()
    return res


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gemm")
    g.add_argument("--threads", type=int, default=2)
    g.add_argument("--size", type=int, default=4096)
    g.add_argument("--reps", type=int, default=5)
    n = sub.add_parser("net")
    n.add_argument("--model", required=True)
    n.add_argument("--threads", type=int, default=2)
    n.add_argument("--batches", default="1,8,32")
    n.add_argument("--size", type=int, default=224)
    n.add_argument("--warmup", type=int, default=1)
    n.add_argument("--reps", type=int, default=5)
    n.add_argument("--min-images", type=int, default=8)
    n.add_argument("--modes", default=",".join(MODES), help="configurations: " + ", ".join(MODES))
    n.add_argument("--malloc", choices=("keep", "default"), default="keep",
                   help="keep: glibc keeps freed memory (see keep_malloc); default: glibc as configured")
    args = p.parse_args()
    if args.cmd == "net":
        if args.malloc == "keep":
            keep_malloc()
        args.batches = [int(s) for s in args.batches.split(",") if s.strip()]
        if not args.batches or min(args.batches) < 1:
            raise SystemExit("peer_torch: --batches wants positive integers, e.g. 1,8,32")
        args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
        bad = [m for m in args.modes if m not in MODES]
        if bad or not args.modes:
            raise SystemExit(f"peer_torch: --modes {bad}: want some of {', '.join(MODES)}")
    out = gemm(args) if args.cmd == "gemm" else net(args)
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
