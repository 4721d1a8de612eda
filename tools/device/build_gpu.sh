#!/usr/bin/env bash
# Builds vdit on the GPU machine (no Debian dev packages there): header-only and static test
# dependencies come from .device/deps (copied from this repo's build machine, carried with the run).
# Usage: tools/device/build_gpu.sh [extra cmake args]   → build/gpu
set -euo pipefail
cd "$(dirname "$0")/../.."
deps="$PWD/.device/deps"
cmake -S . -B build/gpu -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$deps" -DGTEST_ROOT="$deps" -DCLI11_INCLUDE_DIR="$deps/include" \
  -DVDIT_FFMPEG=OFF -DVDIT_OPENCV=OFF -DVDIT_ONNX=OFF -DVDIT_SENTENCEPIECE=OFF -DVDIT_BLAS=OFF \
  -DCMAKE_CUDA_ARCHITECTURES=90a "$@" > build-gpu-configure.log 2>&1 || { cat build-gpu-configure.log; exit 1; }
sed -n '/vdit .* configuration/,/tests /p' build-gpu-configure.log
cmake --build build/gpu -j"$(nproc)"
