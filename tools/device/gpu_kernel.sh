#!/usr/bin/env bash
# GPU round script of the block-sparse CUDA attention kernel (run from the repository root after build/gpu is
# built): the test_cuda_attention_sparse suite; `vdit bench attention --loop all` (every main loop the build
# has: mma.sync, and wgmma with sm_90a device code) on random lists at densities 0.125/0.25/0.5
# for H=12 L=32768 and H=40 L=75600 (D=128 bf16 block 128), on Radial's and Re-ttention's Wan 480p layouts,
# at HD 64, block 64 and with a per-head permutation; compute-sanitizer memcheck/racecheck on small tests.
# (The FlexAttention peer ran in round 2: tools/bench/torch_attention_peer.py --block-lists on the saved
# lists.) Stays under ~150 s (timeouts and time guards skip the last steps).
# Usage: tools/device/gpu_kernel.sh OUT_DIR   (JSON and .npz go to OUT_DIR)
set -uo pipefail
out="${1:-/tmp/gpu_kernel_out}"
mkdir -p "$out"
start=$(date +%s)
elapsed() { echo $(( $(date +%s) - start )); }
bin=build/gpu/bin/vdit
suite=build/gpu/tests/cuda_attention_sparse/test_cuda_attention_sparse

nvidia-smi --query-gpu=name,memory.used,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader
echo "== test_cuda_attention_sparse"
if [ -x "$suite" ]; then
  timeout 70 "$suite" 2>&1 | tail -n 120
  echo "test_cuda_attention_sparse rc=${PIPESTATUS[0]} at $(elapsed) s"
else
  echo "MISSING $suite (build failed?)"
fi

if [ -x "$bin" ]; then
  echo "== vdit bench attention: random lists, H=12 L=32768 D=128 (at $(elapsed) s)"
  timeout 45 "$bin" bench attention --method random --heads 12 --seq 32768 --head-dim 128 --density 0.125,0.25,0.5 \
    --iters 10 --loop all --json "$out/bench_h12.json" --save-layout "$out/lists_h12.npz"
  echo "rc=$? at $(elapsed) s"
  echo "== vdit bench attention: random lists, H=40 L=75600 D=128 (at $(elapsed) s)"
  timeout 60 "$bin" bench attention --method random --heads 40 --seq 75600 --head-dim 128 --density 0.125,0.25,0.5 \
    --iters 10 --loop all --json "$out/bench_h40.json"
  echo "rc=$? at $(elapsed) s"
  for m in radial rettention; do
    if [ "$(elapsed)" -lt 110 ]; then
      echo "== vdit bench attention: $m, Wan 480p (H=12 L=32760) (at $(elapsed) s)"
      timeout 15 "$bin" bench attention --method $m --heads 12 --seq 32760 --head-dim 128 --iters 10 --no-dense \
        --no-cudnn --loop all --json "$out/bench_$m.json"
      echo "rc=$? at $(elapsed) s"
    fi
  done
  if [ "$(elapsed)" -lt 115 ]; then
    echo "== vdit bench attention: HD=64 and block 64, H=12 L=32768 d=0.25 (at $(elapsed) s)"
    timeout 12 "$bin" bench attention --method random --heads 12 --seq 32768 --head-dim 64 --density 0.25 --iters 10 \
      --loop all --json "$out/bench_hd64.json"
    echo "rc=$? at $(elapsed) s"
    timeout 12 "$bin" bench attention --method random --heads 12 --seq 32768 --head-dim 128 --block 64 --density 0.25 \
      --iters 10 --loop all --no-cudnn --json "$out/bench_b64.json"
    echo "rc=$? at $(elapsed) s"
  fi
  if [ "$(elapsed)" -lt 120 ]; then
    echo "== vdit bench attention: per-head token permutation (gathered loads), H=12 L=32768 d=0.25 (at $(elapsed) s)"
    timeout 12 "$bin" bench attention --method random --perm per-head --heads 12 --seq 32768 --head-dim 128 \
      --density 0.25 --iters 10 --loop all --no-cudnn --no-dense --json "$out/bench_perm.json"
    echo "rc=$? at $(elapsed) s"
  fi
else
  echo "MISSING $bin (build failed?)"
fi

if [ -x "$suite" ] && [ "$(elapsed)" -lt 130 ] && command -v compute-sanitizer > /dev/null; then
  echo "== compute-sanitizer memcheck (at $(elapsed) s)"
  timeout 20 compute-sanitizer --tool memcheck --error-exitcode 9 "$suite" \
    --gtest_filter='BlockSparseCuda.DiagonalOnlyRows:BlockSparseCuda.PartialBlocksBand:BlockSparseCuda.ErrorsAreStatuses' \
    2>&1 | tail -n 12
  echo "memcheck rc=${PIPESTATUS[0]} at $(elapsed) s"
  if [ "$(elapsed)" -lt 138 ]; then
    echo "== compute-sanitizer racecheck"
    timeout 12 compute-sanitizer --tool racecheck --error-exitcode 9 "$suite" \
      --gtest_filter='BlockSparseCuda.DiagonalOnlyRows' 2>&1 | tail -n 12
    echo "racecheck rc=${PIPESTATUS[0]} at $(elapsed) s"
  fi
fi
echo "gpu_kernel.sh done in $(elapsed) s"
