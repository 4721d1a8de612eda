#!/usr/bin/env bash
# One GPU call of built-in-model training: continues from the work folder a previous call left on the same
# (still warm) machine, or else warm-starts from a shipped model (tools/train/warm_start.py: a new VAE encoder
# against the frozen shipped decoder, latents, the shipped DiT + text encoder), then runs train_all.py with a
# DiT LR schedule that spans the calls (--dit-schedule) and torch.compile.
# Usage: tools/device/gpu_train.sh OUT_DIR BUDGET_S DIT_SCHEDULE_S [FROM_MODEL_DIR]
set -euo pipefail
out="$1"; budget="$2"; schedule="$3"; from="${4:-samples/models/vdit-tiny-t2v}"
work=build/vdit_train
mkdir -p "$out"
nvidia-smi --query-gpu=name,clocks.max.sm,power.limit --format=csv,noheader || true
if [ ! -f "$work/dit.pt" ]; then
  echo "== warm start from $from"
  python3 tools/train/warm_start.py --from "$from" --work "$work" --encoder-seconds 80 --encode-seconds 50
else
  echo "== resuming $work"
fi
python3 tools/train/train_all.py --work "$work" --out "$out/model" --budget "$budget" --dit-schedule "$schedule" \
  --dit-lr 3e-4 --compile --reserve 60 || echo "train_all failed: $?"
cp "$work/train.log" "$out/" || true
