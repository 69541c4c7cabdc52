#!/usr/bin/env bash
# Benchmark of `pipeline extract` against its ceilings (docs/PERFORMANCE.md).
#
#   bench/run.sh                          everything: VGG-16 fc2 and ResNet-50 avg_pool, all images
#   bench/run.sh --n 40 --batches 8 --e2e-batches 8 --reps 3     a quick run
#   bench/run.sh --models resnet50 --no-torch                     OpenCV side only
#   bench/run.sh mem                      peak RSS over 808 and 8 x 808 images (ResNet-50, long)
#   bench/run.sh run -h | bench/run.sh mem -h                     all flags
#
# Builds bench/out/bin/pipebench and bench/out/bin/pipeline, installs the
# PyTorch peer (Debian's python3-torch, python3-torchvision: bench only,
# never a product dependency) when it is missing, and writes results to
# bench/out (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."

need_torch=1
for a in "$@"; do
	case "$a" in
	mem | forward | flops) need_torch=0 ;;
	--no-torch | --no-torch=true) need_torch=0 ;;
	esac
done
if [ "$need_torch" = 1 ] && ! /usr/bin/python3 -c 'import torch, torchvision' 2>/dev/null; then
	echo "bench: installing the PyTorch peer: apt-get install python3-torch python3-torchvision" >&2
	sudo=""
	[ "$(id -u)" = 0 ] || sudo="sudo"
	$sudo apt-get update -q >&2
	$sudo apt-get install -y -q python3-torch python3-torchvision >&2
fi

command -v go >/dev/null || { echo "bench: go not found on PATH (Go 1.26: /usr/local/go/bin)" >&2; exit 1; }
mkdir -p bench/out/bin
go build -o bench/out/bin/pipebench ./bench/pipebench
exec bench/out/bin/pipebench "$@"
