#!/usr/bin/env bash
# One batched round on the GPU machine: configure and build everything into build/gpu (going on past
# compile errors so one broken part does not hide the others), then run each named part's own script
# tools/device/gpu_<name>.sh (at most PART_TIMEOUT seconds each, default 240). With several GPUs the parts
# are dealt round-robin to the GPUs (CUDA_VISIBLE_DEVICES) and each GPU's queue runs at the same time as
# the others, so benchmarks never share a GPU. Writes OUT/build.log and OUT/parts_files.tar
# (parts/<name>.log, each script's output, and parts/<name>/, the files it wrote into the folder it was given).
# Usage (on the GPU machine, .device carried): [PART_TIMEOUT=S] [GPUS=n] [CUDA_ARCH=90a] tools/device/gpu_round.sh OUT name...
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
    -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCH:-90a}" 2>&1 | sed -n '/vdit .* configuration/,/tests /p;/Error/,+5p'
  time cmake --build build/gpu -j"$(nproc)" -- -k 0
} > "$out/build.log" 2>&1
echo "build: rc=$? after $(( $(date +%s) - start )) s" >> "$out/build.log"

run_part() {  # name gpu
  local name=$1 gpu=$2 t0
  mkdir -p "$out/$name"
  if [ -f "tools/device/gpu_$name.sh" ]; then
    t0=$(date +%s)
    CUDA_VISIBLE_DEVICES=$gpu timeout "${PART_TIMEOUT:-240}" bash "tools/device/gpu_$name.sh" "$out/$name" \
      > "$out/$name.log" 2>&1
    echo "== gpu_$name.sh: rc=$? in $(( $(date +%s) - t0 )) s on GPU $gpu" >> "$out/$name.log"
  else
    echo "tools/device/gpu_$name.sh does not exist" > "$out/$name.log"
  fi
}
gpus=${GPUS:-$(nvidia-smi -L | wc -l)}
[ "$gpus" -ge 1 ] || gpus=1
parts=("$@")
for ((g = 0; g < gpus; g++)); do
  (for ((i = g; i < ${#parts[@]}; i += gpus)); do run_part "${parts[$i]}" "$g"; done) &
done
wait
mkdir -p "$out/parts"
for name in "$@"; do mv "$out/$name" "$out/$name.log" "$out/parts/"; done
tar -C "$out" -cf "$out/parts_files.tar" parts && rm -rf "${out:?}/parts"
echo "round total $(( $(date +%s) - start )) s" >> "$out/build.log"
