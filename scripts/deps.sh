#!/usr/bin/env bash
# Installs the system packages pipeline needs on Debian 12 / Ubuntu 24.04,
# only those that are missing. Needs root (or sudo).
#   libopencv-dev     OpenCV 4.6 with DNN (graph description, Caffe/TensorFlow, OpenCL)
#   libdnnl-dev       oneDNN 2.6 (OpenMP runtime): the oneDNN engine for ONNX models (--engine)
#   pocl-opencl-icd   an OpenCL platform on the CPU (for --backend opencl)
#   libsvm-tools, liblinear-tools   C reference implementations the tests compare against
#   python3-h5py, python3-pil   cross-checks: our HDF5 writer/reader against h5py, the keras preset against Pillow
#   pkg-config, g++   for cgo
#   libhdf5-dev       HDF5, to read Keras .h5 weights files (extract/keras)
#   libjpeg-dev, libpng-dev   libjpeg and libpng, for the corrupt JPEG/PNG checks (extract)
set -euo pipefail
want=(libopencv-dev libdnnl-dev libsqlite3-dev libhdf5-dev libjpeg-dev libpng-dev pkg-config g++ pocl-opencl-icd ocl-icd-libopencl1)
if [ "${1:-}" = "--test" ]; then
  want+=(libsvm-tools liblinear-tools sqlite3 jq python3-h5py python3-pil)
fi
# --runtime: only what the built binary needs to run (Debian 12 names; the
# container image of deploy/Dockerfile installs these): the shared libraries
# it links (cmd/pipeline/deploy_test.go checks this list against them), the
# OpenCL loader and pocl for --backend opencl, CA certificates for
# `pipeline models pull`.
runtime=(libopencv-core406 libopencv-imgproc406 libopencv-imgcodecs406 libopencv-dnn406
  libopencv-highgui406 libopencv-videoio406 libopencv-video406 libopencv-objdetect406
  libopencv-calib3d406 libopencv-features2d406 libopencv-photo406 libstdc++6
  libhdf5-103-1 libjpeg62-turbo libpng16-16 libdnnl2 libgomp1
  pocl-opencl-icd ocl-icd-libopencl1 ca-certificates)
if [ "${1:-}" = "--runtime" ]; then
  want=("${runtime[@]}")
fi
if [ "${1:-}" = "--print-runtime" ]; then
  printf '%s\n' "${runtime[@]}"
  exit 0
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
