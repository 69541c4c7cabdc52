#!/usr/bin/env bash
# Installs the system packages pipeline needs on Debian 12 / Ubuntu 24.04,
# only those that are missing. Needs root (or sudo).
#   libopencv-dev     OpenCV 4.6 with DNN (graph description, Caffe/TensorFlow, OpenCL)
#   libdnnl-dev       oneDNN 2.6 (OpenMP runtime): the oneDNN engine for ONNX models (--engine)
#   pocl-opencl-icd   an OpenCL platform on the CPU (for --backend opencl)
#   libsvm-tools, liblinear-tools   C reference implementations the tests compare against
#   pkg-config, g++   for cgo
set -euo pipefail
want=(libopencv-dev libdnnl-dev libsqlite3-dev pkg-config g++ pocl-opencl-icd ocl-icd-libopencl1)
if [ "${1:-}" = "--test" ]; then
  want+=(libsvm-tools liblinear-tools sqlite3)
fi
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "deps: installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
