#!/usr/bin/env bash
# GPU round script of the CUDA VAE decoder (run from the repository root after build/gpu is built): the
# test_cuda_vae suite, `vdit forward vae --device cuda` vs cpu on the tiny golden, `vdit bench vae` at 480p
# 81 frames (tf32 with 5D convs, tf32 with per-tap 2D convs, both validated against the CPU; bf16 only if
# time is left: cuDNN's legacy bf16 path measured 9.7 s and plans slowly), the PyTorch official-layout peer
# (fp32 = TF32 convs by default, bf16 autocast), then the time ratios. Each step's timeout comes from a
# deadline, so the whole script ends within 150 s; every step prints its start time.
# Usage: tools/device/gpu_vae.sh OUT_DIR   (prints everything; JSON and tensors go to OUT_DIR)
set -uo pipefail
out="${1:-/tmp/gpu_vae_out}"
mkdir -p "$out"
start=$(date +%s)
elapsed() { echo $(( $(date +%s) - start )); }
until_t() { local l=$(( $1 - $(elapsed) )); [ "$l" -lt 3 ] && l=3; echo "$l"; }  # seconds left to deadline $1
bin=build/gpu/bin/vdit
suite=build/gpu/tests/cuda_vae/test_cuda_vae

nvidia-smi --query-gpu=name,memory.used,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader
echo "== test_cuda_vae (at $(elapsed) s)"
if [ -x "$suite" ]; then
  timeout 45 "$suite" 2>&1 | tail -n 90
  echo "test_cuda_vae rc=${PIPESTATUS[0]} at $(elapsed) s"
else
  echo "MISSING $suite (build failed?)"
fi
if [ ! -x "$bin" ]; then
  echo "MISSING $bin (build failed?)"
  exit 1
fi

echo "== vdit forward vae --device cuda (fp32, bf16) vs cpu on the tiny golden (at $(elapsed) s)"
for run in "cuda fp32" "cuda bf16" "cpu fp32"; do
  set -- $run
  timeout 15 "$bin" forward vae --weights tests/data/vae/vae_tiny_decoder.safetensors \
    --inputs tests/data/vae/vae_tiny_golden.safetensors --input-name in.z --out "$out/fwd_$1_$2.safetensors" \
    --device "$1" --precision "$2" --preclamp 2>&1 | tail -n 3
  echo "forward vae --device $1 --precision $2 rc=${PIPESTATUS[0]}"
done
python3 - "$out" <<'PY'
import sys
from safetensors.torch import load_file
g = load_file("tests/data/vae/vae_tiny_golden.safetensors")
rel = lambda x, r: float((x - r).abs().max() / r.abs().max())
try:
    c = load_file(sys.argv[1] + "/fwd_cpu_fp32.safetensors")
    for p in ("fp32", "bf16"):
        a = load_file(sys.argv[1] + "/fwd_cuda_%s.safetensors" % p)
        print("forward vae cuda %s: vs cpu rel %.3e; vs golden video %.3e; vs golden preclamp %.3e" % (
            p, rel(a["video"], c["video"]), rel(a["video"], g["out.video"][0]),
            rel(a["video_preclamp"], g["out.video_preclamp"][0])))
except Exception as e:
    print("compare skipped:", e)
PY

echo "== vdit bench vae 480p 81 frames tf32, 5D convs (at $(elapsed) s)"
timeout "$(until_t 80)" "$bin" bench vae --size 480p --frames 81 --precision tf32 --iters 1 --warmup 1 \
  --json "$out/bench_vae_480p_tf32.json"
echo "bench vae tf32 rc=$? at $(elapsed) s"

echo "== vdit bench vae 480p 81 frames tf32, per-tap 2D convs (at $(elapsed) s)"
timeout "$(until_t 95)" "$bin" bench vae --size 480p --frames 81 --precision tf32 --per-tap --iters 1 --warmup 1 \
  --json "$out/bench_vae_480p_pertap.json"
echo "bench vae per-tap rc=$? at $(elapsed) s"

echo "== PyTorch official-layout peer, fp32 (TF32 convs) and bf16 (at $(elapsed) s)"
timeout "$(until_t 118)" python3 tools/bench/torch_vae_peer.py --size 480p --frames 81 --check-golden \
  --modes bf16,fp32 --iters 1 --warmup 1 --json "$out/torch_vae_480p.json" 2>&1 | tail -n 20
echo "peer rc=${PIPESTATUS[0]} at $(elapsed) s"

python3 - "$out" <<'PY'
import json, sys
ours = {}
for p in ("bf16", "tf32", "fp32", "pertap"):
    try:
        for r in json.load(open("%s/bench_vae_480p_%s.json" % (sys.argv[1], p)))["runs"]:
            ours[r["precision"] + ("-pertap" if r.get("conv") == "per-tap" else "")] = r
    except Exception as e:
        print("(ours %s: %s)" % (p, e))
try:
    peer = {r["mode"]: r for r in json.load(open(sys.argv[1] + "/torch_vae_480p.json"))["runs"]}
except Exception as e:
    print("PyTorch peer missing (%s); using round-2 numbers fp32 2725 ms, bf16 1930 ms" % e)
    peer = {"fp32": {"ms": 2725.2, "peak_gib": 9.34}, "bf16": {"ms": 1929.5, "peak_gib": 8.40}}
peer.setdefault("fp32-strict", {"ms": 9958.7, "peak_gib": 7.91})  # round 2
for o, p in (("tf32", "fp32"), ("tf32-pertap", "fp32"), ("tf32-pertap", "bf16"), ("bf16", "bf16"),
             ("fp32", "fp32-strict")):
    if o in ours and p in peer:
        print("ours %s %.1f ms (%.2f GiB) / PyTorch %s %.1f ms (%.2f GiB) = %.3f" % (
            o, ours[o]["ms"], ours[o]["peak_gib"], p, peer[p]["ms"], peer[p]["peak_gib"], ours[o]["ms"] / peer[p]["ms"]))
PY

if [ "$(elapsed)" -lt 112 ]; then
  echo "== vdit bench vae 480p bf16 (at $(elapsed) s)"
  timeout "$(until_t 147)" "$bin" bench vae --size 480p --frames 81 --precision bf16 --iters 1 --warmup 1 \
    --no-validate --json "$out/bench_vae_480p_bf16.json"
  echo "bench vae bf16 rc=$? at $(elapsed) s"
fi
echo "gpu_vae.sh done in $(elapsed) s"
