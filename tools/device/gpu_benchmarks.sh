#!/usr/bin/env bash
# The headline GPU benchmarks with their peers in the same run: block-sparse attention against cuDNN dense and
# FlexAttention (same densities) at Wan 1.3B/14B attention shapes, and the Wan2.1-1.3B 480p DiT forward for
# dense and the sparse methods that have a GPU path (timed past the dense warm-up steps).
# Usage: tools/device/gpu_benchmarks.sh OUT_DIR
set -uo pipefail
out="${1:-/tmp/gpu_bench}"; mkdir -p "$out"
bin=build/gpu/bin/vdit
nvidia-smi --query-gpu=name,memory.used,clocks.sm --format=csv,noheader
for shape in "12 32768" "40 75600"; do
  set -- $shape
  echo "== attention H=$1 L=$2 D=128"
  timeout 60 "$bin" bench attention --method random --heads "$1" --seq "$2" --head-dim 128 \
    --density 0.125,0.25,0.5 --iters 10 --json "$out/attn_h$1.json"
  timeout 70 python3 tools/bench/torch_attention_peer.py --heads "$1" --seq "$2" --head-dim 128 \
    --densities 0.125,0.25,0.5 --backends CUDNN --json "$out/flex_h$1.json" 2>&1 | tail -n 8
done
for m in dense radial rettention; do
  echo "== bench step 1.3B 480p --attention $m"
  timeout 60 "$bin" bench step --model-config wan2.1-1.3b --size 480p --frames 81 --attention "$m" \
    --no-validate --no-components --iters 3 --warmup 1 --json "$out/step_$m.json" 2>&1 | grep -v "^  "
done
