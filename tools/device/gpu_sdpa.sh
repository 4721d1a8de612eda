#!/usr/bin/env bash
# GPU round script of the cuDNN dense-attention part (run from the repository root after build/gpu is
# built): the test_cuda_attention_dense suite (correctness against the CPU reference, and the time of our
# cuDNN SDPA call at the Wan shapes), then the PyTorch peers: dense SDPA backends + FlexAttention at
# H=12 L=32768 and H=40 L=75600 (D=128), and the eager Wan2.1 forward (1.3B 480p; 14B 720p on its first
# 2 blocks, extrapolated) with cuDNN and FA2 attention.
# Usage: tools/device/gpu_sdpa.sh OUT_DIR   (prints everything; JSON goes to OUT_DIR). Whole run < 150 s:
# each step's timeout is cut to what is left of that budget, and steps with < 15 s left are skipped.
set -uo pipefail
out="${1:-/tmp/gpu_sdpa_out}"
mkdir -p "$out"
start=$(date +%s)
budget=148
elapsed() { echo $(( $(date +%s) - start )); }
# step NAME MAX_SECONDS CMD...: runs CMD under timeout min(MAX, budget left), prints its rc and the time.
step() {
  local name="$1" max="$2"; shift 2
  local left=$(( budget - $(elapsed) ))
  echo "== $name (at $(elapsed) s)"
  if [ "$left" -lt 15 ]; then echo "SKIPPED $name: only $left s of the budget left"; return; fi
  [ "$max" -gt "$left" ] && max=$left
  timeout "$max" "$@" 2>&1 | grep -v "Warning" | tail -n 130
  echo "$name rc=${PIPESTATUS[0]} at $(elapsed) s"
}
suite=build/gpu/tests/cuda_attention_dense/test_cuda_attention_dense
peer="python3 -u tools/bench/torch_attention_peer.py"
wan="python3 -u tools/bench/torch_wan_step_peer.py"

nvidia-smi --query-gpu=name,memory.used,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader
if [ -x "$suite" ]; then
  ldd "$suite" | grep -i cudnn
  step test_cuda_attention_dense 35 "$suite"
  # The same C++ path on the torch wheel's cuDNN (9.19) instead of the system's 9.14: version check + timing.
  wheel=$(python3 -c "import nvidia.cudnn as c; print(list(c.__path__)[0] + '/lib')" 2>/dev/null)
  if [ -n "$wheel" ] && [ -d "$wheel" ]; then
    LD_LIBRARY_PATH="$wheel:${LD_LIBRARY_PATH:-}" step "test_cuda_attention_dense on $wheel" 20 "$suite" \
      --gtest_filter='CudnnSdpa.VersionCheckPasses:CudnnSdpaBench.*'
  fi
else
  echo "MISSING $suite (build failed?)"
fi
step "torch_attention_peer H=12 L=32768 D=128" 45 $peer --heads 12 --seq 32768 --head-dim 128 \
  --densities 0.125,0.25,0.5,1 --json "$out/torch_attention_peer.json"
step "torch_wan_step_peer wan2.1-1.3b 480p" 35 $wan --model-config wan2.1-1.3b --size 480p --frames 81 \
  --attention-backend cudnn,flash --json "$out/torch_step_1.3b_480p.json"
step "torch_attention_peer H=40 L=75600 D=128" 45 $peer --heads 40 --seq 75600 --head-dim 128 \
  --densities 0.125,0.25,0.5,1 --json "$out/torch_attention_peer_h40.json"
step "torch_wan_step_peer wan2.1-14b 720p (2 of 40 blocks)" 35 $wan --model-config wan2.1-14b --size 720p \
  --frames 81 --layers 2 --attention-backend cudnn,flash --json "$out/torch_step_14b_720p_2blocks.json"
echo "== gpu_sdpa.sh done in $(elapsed) s"
