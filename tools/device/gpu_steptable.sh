#!/usr/bin/env bash
# The `vdit bench step` table of issue 7: every attention method at its preset, Wan2.1-1.3B 480p and (with
# SIZES including 14b) Wan2.1-14B 720p, 81 frames, timed at step 25 of 50 (past every method's dense warm-up
# steps). PARO runs on a synthetic plan (random orders/masks at density 0.3; no calibration on random weights).
# Usage: [METHODS="dense radial ..."] [CONFIGS="1.3b 14b"] tools/device/gpu_steptable.sh OUT_DIR
set -uo pipefail
out="${1:-/tmp/gpu_steptable}"; mkdir -p "$out"
bin=build/gpu/bin/vdit
methods=${METHODS:-"dense radial rettention draft vmoba paro"}
for cfg in ${CONFIGS:-1.3b 14b}; do
  if [ "$cfg" = 14b ]; then size=720p; iters=2; warm=1; lim=110; else size=480p; iters=3; warm=1; lim=60; fi
  for m in $methods; do
    echo "== bench step wan2.1-$cfg $size --attention $m"
    timeout "$lim" "$bin" bench step --model-config "wan2.1-$cfg" --size "$size" --frames 81 --attention "$m" \
      --no-validate --no-components --iters "$iters" --warmup "$warm" --json "$out/step_${cfg}_$m.json" 2>&1 |
      grep -E "^(forward|step with|self-attention|attention density|GPU memory|paro:|error|vdit)" 
  done
done
