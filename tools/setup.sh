#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages vdit needs that are missing (idempotent; fast when all are there).
# Usage: tools/setup.sh            build + test dependencies
# Needs root or sudo for apt-get. CUDA (nvcc, cuDNN) is optional and never installed here.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  libopenblas-dev                                  # CPU GEMMs
  nlohmann-json3-dev libcli11-dev                  # JSON, command line
  libsentencepiece-dev                             # tokenizer
  libonnx-dev libprotobuf-dev protobuf-compiler    # ONNX initializers
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev   # video output (FFmpeg)
  libopencv-imgcodecs-dev libopencv-imgproc-dev libopencv-core-dev  # image output (OpenCV)
  libgtest-dev                                     # tests
  python3                                          # the Python binding's test (ctypes, no modules)
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi
echo "setup: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
