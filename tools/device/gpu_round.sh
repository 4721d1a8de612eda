#!/usr/bin/env bash
# One batched round on the GPU machine: configure and build everything into build/gpu (going on past
# compile errors so one broken part does not hide the others), then run each named part's own script
# tools/device/gpu_<name>.sh. Writes OUT/build.log, OUT/<name>.log and OUT/<name>_files.tar.
# Usage (on the GPU machine, .device carried): tools/device/gpu_round.sh OUT name...
set -uo pipefail
cd "$(dirname "$0")/../.."
out="$1"; shift
deps="$PWD/.device/deps"
start=$(date +%s)
{
  nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
  cmake -S . -B build/gpu -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$deps" -DGTEST_ROOT="$deps" -DCLI11_INCLUDE_DIR="$deps/include" \
    -DVDIT_FFMPEG=OFF -DVDIT_OPENCV=OFF -DVDIT_ONNX=OFF -DVDIT_SENTENCEPIECE=OFF -DVDIT_BLAS=OFF \
    -DCMAKE_CUDA_ARCHITECTURES=90 2>&1 | sed -n '/vdit .* configuration/,/tests /p;/Error/,+5p'
  time cmake --build build/gpu -j"$(nproc)" -- -k 0
} > "$out/build.log" 2>&1
echo "build: rc=$? after $(( $(date +%s) - start )) s" >> "$out/build.log"
for name in "$@"; do
  mkdir -p "$out/$name"
  if [ -x "tools/device/gpu_$name.sh" ] || [ -f "tools/device/gpu_$name.sh" ]; then
    t0=$(date +%s)
    timeout 240 bash "tools/device/gpu_$name.sh" "$out/$name" > "$out/$name.log" 2>&1
    echo "== gpu_$name.sh: rc=$? in $(( $(date +%s) - t0 )) s" >> "$out/$name.log"
  else
    echo "tools/device/gpu_$name.sh does not exist" > "$out/$name.log"
  fi
  if [ -n "$(ls -A "$out/$name")" ]; then tar -C "$out" -cf "$out/${name}_files.tar" "$name"; fi
  rm -rf "${out:?}/$name"
done
echo "round total $(( $(date +%s) - start )) s" >> "$out/build.log"
