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
echo "== GPU clocks and power during a dense 1.3B forward (attention inside the forward vs alone)"
nvidia-smi --query-gpu=clocks.sm,clocks.max.sm,power.draw,temperature.gpu --format=csv,noheader -lms 250 > "$out/clocks.csv" 2>&1 &
smi=$!
timeout 60 "$bin" bench step --model-config wan2.1-1.3b --size 480p --frames 81 --attention dense \
  --no-validate --no-components --iters 8 --warmup 2 2>&1 | grep -E "^(forward|self-attention)"
kill $smi 2>/dev/null
python3 - "$out/clocks.csv" <<'PY'
import sys, statistics as st
rows = [l.split(",") for l in open(sys.argv[1]) if "MHz" in l]
sm = [float(r[0].split()[0]) for r in rows]; pw = [float(r[2].split()[0]) for r in rows if "W" in r[2]]
busy = [(c, p) for c, p in zip(sm, pw) if p > 300]  # samples while the GPU was loaded
print(f"{len(rows)} samples; max SM clock {rows[0][1].strip()}; under load (>300 W, {len(busy)} samples): "
      f"SM clock median {st.median(c for c, _ in busy) if busy else 0:.0f} MHz (min {min((c for c, _ in busy), default=0):.0f}), "
      f"power median {st.median(p for _, p in busy) if busy else 0:.0f} W")
PY
