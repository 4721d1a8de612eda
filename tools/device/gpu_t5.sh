#!/usr/bin/env bash
# GPU round script of the CUDA UMT5 text encoder (run from the repository root after build/gpu is built):
# the test_cuda_text suite, `vdit forward t5 --device cuda` (bf16, f32) vs --device cpu on the built-in
# model's recorded inputs and on the tiny golden, `vdit bench t5` at the UMT5-XXL size (bf16, 512 and 64
# tokens; f32 512) and a measured PyTorch peer (transformers UMT5EncoderModel, random bf16 weights, same
# config), and a full-size check: the same random UMT5-XXL weights saved with HF names, run by vdit (cuda
# bf16/f32) and by transformers (fp32, bf16). Usage: tools/device/gpu_t5.sh OUT_DIR (prints everything;
# JSON and small tensors go to OUT_DIR; the 11 GB checkpoint goes to $TMPDIR and is removed).
# Finishes in under 120 s: each step has a timeout and optional steps are skipped when time runs short.
set -uo pipefail
out="${1:-/tmp/gpu_t5_out}"
mkdir -p "$out"
start=$(date +%s)
elapsed() { echo $(( $(date +%s) - start )); }
bin=build/gpu/bin/vdit
suite=build/gpu/tests/cuda_text/test_cuda_text

nvidia-smi --query-gpu=name,memory.used,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader
echo "== test_cuda_text"
if [ -x "$suite" ]; then
  timeout 40 "$suite" 2>&1 | tail -n 120
  echo "test_cuda_text rc=${PIPESTATUS[0]} at $(elapsed) s"
else
  echo "MISSING $suite (build failed?)"
fi

if [ ! -x "$bin" ]; then
  echo "MISSING $bin (build failed?)"
  exit 1
fi

echo "== vdit forward t5: built-in model (recorded_io) and tiny golden, cpu vs cuda bf16 / f32"
m=samples/models/vdit-tiny-t2v
for run in "builtin $m/text_encoder.safetensors $m/recorded_io.safetensors" \
           "golden tests/data/text/t5_tiny_weights.safetensors tests/data/text/t5_tiny_golden.safetensors"; do
  set -- $run
  name=$1 weights=$2 inputs=$3
  timeout 20 "$bin" --log-level info forward t5 --weights "$weights" --inputs "$inputs" \
    --out "$out/${name}_cpu.safetensors" --device cpu
  echo "forward t5 $name cpu rc=$?"
  for p in bf16 f32; do
    timeout 20 "$bin" --log-level info forward t5 --weights "$weights" --inputs "$inputs" \
      --out "$out/${name}_cuda_$p.safetensors" --device cuda --precision $p
    echo "forward t5 $name cuda $p rc=$?"
  done
done
python3 - "$out" <<'PY'
import sys
from safetensors.torch import load_file
o = sys.argv[1]
rel = lambda x, r: float((x.float() - r.float()).abs().max() / r.float().abs().max())
refs = {"builtin": (load_file("samples/models/vdit-tiny-t2v/recorded_io.safetensors"), "t5.out", None),
        "golden": (load_file("tests/data/text/t5_tiny_golden.safetensors"), "out.full", "out.trimmed_bf16_model")}
for name, (rec, key, bf_key) in refs.items():
    ref = rec[key].reshape(-1, rec[key].shape[-1])
    try:
        cpu = load_file(f"{o}/{name}_cpu.safetensors")["out"]
    except Exception as e:
        print(name, "cpu output missing:", e); continue
    print(f"{name}: cpu vs recorded fp32 rel {rel(cpu, ref):.3e}")
    for p in ("bf16", "f32"):
        try:
            g = load_file(f"{o}/{name}_cuda_{p}.safetensors")["out"]
        except Exception as e:
            print(name, p, "cuda output missing:", e); continue
        line = f"{name}: cuda {p} vs cpu rel {rel(g, cpu):.3e}, vs recorded fp32 rel {rel(g, ref):.3e}"
        if bf_key:
            n = rec[bf_key].shape[0]
            line += (f", trimmed rows vs official bf16 model {rel(g[:n], rec[bf_key]):.3e}"
                     f" (official bf16 vs fp32: {rel(rec[bf_key], rec['out.trimmed']):.3e})")
        print(line)
PY

echo "== vdit bench t5: UMT5-XXL bf16, 512 tokens (at $(elapsed) s)"
timeout 60 "$bin" bench t5 --tokens 512 --precision bf16 --iters 10 --warmup 2 --json "$out/bench_t5_bf16_512.json"
echo "bench t5 bf16 512 rc=$? at $(elapsed) s"

if [ "$(elapsed)" -lt 70 ]; then
  echo "== vdit bench t5: bf16, 64 tokens (a typical trimmed prompt), heuristic GEMM algorithms as the pipeline"
  timeout 20 "$bin" bench t5 --tokens 64 --no-validate --iters 10 --autotune 0 --json "$out/bench_t5_bf16_64.json"
  echo "bench t5 bf16 64 rc=$? at $(elapsed) s"
fi

if [ "$(elapsed)" -lt 80 ]; then
  echo "== PyTorch peer: transformers UMT5EncoderModel, random bf16 weights, 512 tokens (at $(elapsed) s)"
  timeout $(( 112 - $(elapsed) )) python3 - "$out" <<'PY'
import json, sys, time
import torch
from transformers import UMT5Config, UMT5EncoderModel
t0 = time.time()
cfg = UMT5Config(vocab_size=256384, d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64,
                 relative_attention_num_buckets=32, relative_attention_max_distance=128,
                 feed_forward_proj="gated-gelu", dropout_rate=0.0)
torch.set_default_dtype(torch.bfloat16)
with torch.device("cuda"):
    model = UMT5EncoderModel(cfg).eval()
torch.set_default_dtype(torch.float32)
print(f"peer: built in {time.time() - t0:.1f} s; dtype {next(model.parameters()).dtype}, "
      f"{sum(p.numel() for p in model.parameters()) / 1e9:.3f} B params")
ids = torch.randint(2, 256384, (1, 512), device="cuda")
mask = torch.ones_like(ids)
torch.cuda.reset_peak_memory_stats()
times = []
with torch.inference_mode():
    for i in range(12):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record(); model(input_ids=ids, attention_mask=mask); b.record(); torch.cuda.synchronize()
        if i >= 2: times.append(a.elapsed_time(b))
times.sort()
r = {"median_ms": times[len(times) // 2], "best_ms": times[0],
     "peak_gib": torch.cuda.max_memory_allocated() / 2**30}
print(f"peer: transformers UMT5EncoderModel bf16 512 tokens: median {r['median_ms']:.2f} ms, best {r['best_ms']:.2f} ms, "
      f"peak allocated {r['peak_gib']:.2f} GiB")
json.dump(r, open(sys.argv[1] + "/peer_umt5_hf.json", "w"))
PY
  echo "peer rc=$? at $(elapsed) s"
fi

if [ "$(elapsed)" -lt 55 ]; then
  echo "== full-size check: transformers UMT5-XXL (random init) saved with HF names, vdit forward t5 --device cuda"
  echo "   (bf16, f32) against transformers fp32 and bf16 on 512 ids with 300 valid (at $(elapsed) s)"
  tmp="${TMPDIR:-/tmp}/vdit_t5_xxl_$$"
  mkdir -p "$tmp"
  timeout $(( 105 - $(elapsed) )) python3 - "$tmp" "$bin" <<'PY'
import subprocess, sys, time
import torch
from safetensors.torch import load_file, save_file
from transformers import UMT5Config, UMT5EncoderModel
tmp, vdit = sys.argv[1], sys.argv[2]
torch.manual_seed(0)
cfg = UMT5Config(vocab_size=256384, d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64,
                 relative_attention_num_buckets=32, relative_attention_max_distance=128,
                 feed_forward_proj="gated-gelu", dropout_rate=0.0)
torch.set_default_dtype(torch.bfloat16)
with torch.device("cuda"):
    model = UMT5EncoderModel(cfg).eval()
torch.set_default_dtype(torch.float32)
t0 = time.time()
sd = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
if "shared.weight" in sd:
    sd.pop("encoder.embed_tokens.weight", None)  # tied: one copy is enough
save_file(sd, f"{tmp}/model.safetensors")
print(f"full-size: saved {len(sd)} tensors (HF names, bf16) in {time.time() - t0:.1f} s")
del sd
L, valid = 512, 300
g = torch.Generator().manual_seed(1)
ids = torch.randint(2, 256384, (L,), generator=g)
ids[valid - 1] = 1
ids[valid:] = 0
mask = (torch.arange(L) < valid).long()
save_file({"ids": ids, "mask": mask}, f"{tmp}/in.safetensors")
with torch.inference_mode():
    ref_bf16 = model(input_ids=ids[None].cuda(), attention_mask=mask[None].cuda()).last_hidden_state[0].float().cpu()
    model.float()
    ref = model(input_ids=ids[None].cuda(), attention_mask=mask[None].cuda()).last_hidden_state[0].float().cpu()
del model
torch.cuda.empty_cache()
rel = lambda x, r: float((x - r).abs().max() / r.abs().max())
print(f"full-size: transformers bf16 vs fp32: all rows rel {rel(ref_bf16, ref):.3e}, valid rows {rel(ref_bf16[:valid], ref[:valid]):.3e}")
for p in ("bf16", "f32"):
    t0 = time.time()
    r = subprocess.run([vdit, "--log-level", "info", "forward", "t5", "--weights", f"{tmp}/model.safetensors",
                        "--inputs", f"{tmp}/in.safetensors", "--out", f"{tmp}/out_{p}.safetensors",
                        "--device", "cuda", "--precision", p], capture_output=True, text=True)
    print((r.stdout + r.stderr).strip())
    if r.returncode != 0:
        print(f"full-size: vdit {p} failed rc={r.returncode}"); continue
    out = load_file(f"{tmp}/out_{p}.safetensors")["out"]
    print(f"full-size: vdit cuda {p} ({time.time() - t0:.1f} s incl. load): vs transformers fp32 all rows rel "
          f"{rel(out, ref):.3e}, valid rows {rel(out[:valid], ref[:valid]):.3e}; vs transformers bf16 {rel(out, ref_bf16):.3e}")
PY
  echo "full-size check rc=$? at $(elapsed) s"
  rm -rf "$tmp"
fi

if [ "$(elapsed)" -lt 100 ]; then
  echo "== vdit bench t5: f32, 512 tokens (at $(elapsed) s)"
  timeout $(( 117 - $(elapsed) )) "$bin" bench t5 --tokens 512 --precision f32 --no-validate --iters 5 --warmup 1 \
    --autotune 0 --json "$out/bench_t5_f32_512.json"
  echo "bench t5 f32 512 rc=$? at $(elapsed) s"
fi
echo "gpu_t5.sh done at $(elapsed) s"
