#!/usr/bin/env bash
# GPU round part of the lead: the end-to-end GPU pipeline test (video PSNR against the CPU run, GPU memory in
# the report), cuDNN SDPA's engine timing at the Wan shapes, and the 1.3B 480p step for dense (cuDNN with the
# timed engine choice) and PARO (synthetic plan).
# Usage: tools/device/gpu_lead.sh OUT_DIR
set -uo pipefail
out="${1:-/tmp/gpu_lead}"; mkdir -p "$out"
bin=build/gpu/bin/vdit
echo "== CudaGenerate"
timeout 150 build/gpu/tests/cuda_model/test_cuda_model --gtest_filter='CudaGenerate.*' 2>&1 | grep -E "^\[|  generate|  GPU memory|Failure|Expected|Which is|actual" | head -30
echo "== cuDNN SDPA engine timing"
timeout 90 build/gpu/tests/cuda_attention_dense/test_cuda_attention_dense --gtest_filter='CudnnSdpaBench.*' 2>&1 | grep -E "BENCH|OK|FAILED" | head -12
for m in dense paro; do
  echo "== bench step 1.3B 480p --attention $m"
  timeout 90 "$bin" bench step --model-config wan2.1-1.3b --size 480p --frames 81 --attention "$m" \
    --no-validate --no-components --iters 5 --warmup 2 --json "$out/step_$m.json" 2>&1 | grep -v "^  "
done
