#!/usr/bin/env python3
"""PyTorch eager peer of one Wan2.1 DiT forward (one CFG branch of one denoising step), random weights.

Same shapes and op sequence as the official WanModel.forward (Wan-Video/Wan2.1 wan/modules/model.py; see
docs/wan.md section 1.2): patch embedding, sinusoidal time embedding + MLP + 6-way projection, text MLP over 512
tokens, per block 6-way modulation, LayerNorm (eps 1e-6, no affine) + modulation, self-attention with RMSNorm
q/k over the full width and 3D RoPE (complex multiply, 22/21/21 pairs), cross-attention (norm3 with affine,
RMSNorm q/k) to the 512 text tokens, GELU-tanh FFN, gated residuals, head and unpatchify.
Precision, as the official autocast run: bf16 weights and bf16 GEMM/conv/attention inputs; LayerNorm,
RMSNorm, modulation, gates and the residual stream in fp32; time MLP and head in fp32 (fp32 weights).
Differences from the official code: RoPE in complex64 (the official uses complex128; --rope-dtype float64
restores it), weights stored in bf16 instead of fp32-cast-by-autocast (no per-call weight casts), and the
attention output goes to `o` in bf16 (the official casts it to fp32 and autocast back: same values).
Times one forward (median of >= 5 after 2 warm-ups, CUDA events, inference mode) per attention backend;
the self-attention share is the sum of CUDA-event times around the self-attention calls, taken in separate
instrumented forwards; peak memory is torch.cuda.max_memory_allocated (weights included).

Example: python3 tools/bench/torch_wan_step_peer.py --model-config wan2.1-1.3b --size 480p \
             --attention-backend cudnn,flash --json step.json
"""
import argparse
import json
import math
import sys
import time

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

CONFIGS = {
    "wan2.1-1.3b": dict(dim=1536, ffn=8960, heads=12, layers=30),
    "wan2.1-14b": dict(dim=5120, ffn=13824, heads=40, layers=40),
}
COMMON = dict(text_dim=4096, freq_dim=256, in_dim=16, out_dim=16, patch=(1, 2, 2), text_len=512, eps=1e-6)
SIZES = {"480p": (60, 104), "720p": (90, 160)}  # latent H, W (480x832, 720x1280 pixels / 8)
DEVICE = "cuda"  # the functions below also run on "cpu" (used to check shapes without a GPU)
BACKENDS = {"cudnn": SDPBackend.CUDNN_ATTENTION, "flash": SDPBackend.FLASH_ATTENTION,
            "efficient": SDPBackend.EFFICIENT_ATTENTION}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-config", default="wan2.1-1.3b", choices=sorted(CONFIGS))
    p.add_argument("--size", default="480p", choices=sorted(SIZES))
    p.add_argument("--frames", type=int, default=81, help="video frames (latent frames = (frames-1)/4 + 1)")
    p.add_argument("--attention-backend", default="cudnn", help="cudnn|flash|efficient, or a comma list")
    p.add_argument("--layers", type=int, default=0, help="run only the first N blocks (0 = all); times are "
                   "then also extrapolated to the full depth")
    p.add_argument("--rope-dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None)
    a = p.parse_args()
    a.iters = max(a.iters, 5)
    return a


def rnd(shape, fan_in, dtype, g):
    return (torch.randn(shape, device=DEVICE, generator=g, dtype=torch.float32) / math.sqrt(fan_in)).to(dtype)


def make_block(D, Fh, g):
    bf, f32 = torch.bfloat16, torch.float32
    b = {"modulation": rnd((1, 6, D), D, f32, g)}
    for pre in ("sa", "ca"):
        for n in ("q", "k", "v", "o"):
            b[f"{pre}_{n}_w"] = rnd((D, D), D, bf, g)
            b[f"{pre}_{n}_b"] = rnd((D,), D, bf, g)
        b[f"{pre}_norm_q"] = 1 + 0.1 * rnd((D,), 1, f32, g)
        b[f"{pre}_norm_k"] = 1 + 0.1 * rnd((D,), 1, f32, g)
    b["norm3_w"] = 1 + 0.1 * rnd((D,), 1, f32, g)
    b["norm3_b"] = 0.1 * rnd((D,), 1, f32, g)
    b["ffn0_w"], b["ffn0_b"] = rnd((Fh, D), D, bf, g), rnd((Fh,), D, bf, g)
    b["ffn2_w"], b["ffn2_b"] = rnd((D, Fh), Fh, bf, g), rnd((D,), Fh, bf, g)
    return b


def make_model(cfg, layers, g):
    """Random weights, created on the GPU block by block (14B needs ~29 GB in bf16)."""
    D, Fh, c = cfg["dim"], cfg["ffn"], COMMON
    bf, f32 = torch.bfloat16, torch.float32
    m = {
        "patch_w": rnd((D, c["in_dim"], *c["patch"]), c["in_dim"] * 4, bf, g), "patch_b": rnd((D,), D, bf, g),
        "txt0_w": rnd((D, c["text_dim"]), c["text_dim"], bf, g), "txt0_b": rnd((D,), D, bf, g),
        "txt2_w": rnd((D, D), D, bf, g), "txt2_b": rnd((D,), D, bf, g),
        "te0_w": rnd((D, c["freq_dim"]), c["freq_dim"], f32, g), "te0_b": rnd((D,), D, f32, g),
        "te2_w": rnd((D, D), D, f32, g), "te2_b": rnd((D,), D, f32, g),
        "tp_w": rnd((6 * D, D), D, f32, g), "tp_b": rnd((6 * D,), D, f32, g),
        "head_mod": rnd((1, 2, D), D, f32, g),
        "head_w": rnd((c["out_dim"] * 4, D), D, f32, g), "head_b": rnd((c["out_dim"] * 4,), D, f32, g),
        "blocks": [],
    }
    for _ in range(layers):
        m["blocks"].append(make_block(D, Fh, g))
    return m


def rope_table(grid, head_dim, dtype):
    """[L, 1, head_dim/2] complex: frame/height/width pairs 22/21/21 (for 128), theta 10000 (official rope_params)."""
    c = head_dim // 2
    parts = [c - 2 * (c // 3), c // 3, c // 3]
    real = torch.float64 if dtype == "float64" else torch.float32
    f, h, w = grid
    tabs = []
    for n_pairs, n_pos in zip(parts, (f, h, w)):
        dim = 2 * n_pairs
        inv = 1.0 / torch.pow(10000.0, torch.arange(0, dim, 2, dtype=torch.float64, device=DEVICE) / dim)
        ang = torch.outer(torch.arange(n_pos, dtype=torch.float64, device=DEVICE), inv)
        tabs.append(torch.polar(torch.ones_like(ang), ang))
    full = torch.cat([tabs[0].view(f, 1, 1, -1).expand(f, h, w, -1), tabs[1].view(1, h, 1, -1).expand(f, h, w, -1),
                      tabs[2].view(1, 1, w, -1).expand(f, h, w, -1)], dim=-1)
    return full.reshape(f * h * w, 1, c).to(torch.complex128 if real == torch.float64 else torch.complex64)


def rope(x, table):  # x [L, NH, HD] fp32 -> fp32
    real = torch.float64 if table.dtype == torch.complex128 else torch.float32
    xc = torch.view_as_complex(x.to(real).reshape(x.shape[0], x.shape[1], -1, 2))
    return torch.view_as_real(xc * table).flatten(2).float()


def rms(x, w, eps):  # official WanRMSNorm: normalize in fp32, round to x's dtype, times the fp32 weight
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(dim=-1, keepdim=True) + eps)).type_as(x) * w


def attention(q, k, v, NH):  # q [L, D] bf16, k/v [Lk, D] bf16 -> [L, D] bf16
    L, D = q.shape
    hd = D // NH
    q4, k4, v4 = (t.view(1, t.shape[0], NH, hd).transpose(1, 2) for t in (q, k, v))
    return F.scaled_dot_product_attention(q4, k4, v4).transpose(1, 2).reshape(L, D)


def block_forward(x, e0, ctx, b, NH, table, eps, timer):
    L, D = x.shape
    s1, c1, g1, s2, c2, g2 = (b["modulation"] + e0).unbind(1)  # each [1, D] fp32
    h = (F.layer_norm(x, (D,), eps=eps) * (1 + c1) + s1).bfloat16()
    q = rms(F.linear(h, b["sa_q_w"], b["sa_q_b"]), b["sa_norm_q"], eps)  # fp32
    k = rms(F.linear(h, b["sa_k_w"], b["sa_k_b"]), b["sa_norm_k"], eps)
    v = F.linear(h, b["sa_v_w"], b["sa_v_b"])
    q = rope(q.view(L, NH, -1), table).bfloat16().view(L, D)
    k = rope(k.view(L, NH, -1), table).bfloat16().view(L, D)
    if timer is not None:
        e_start, e_end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e_start.record()
    a = attention(q, k, v, NH)
    if timer is not None:
        e_end.record()
        timer["attn"].append((e_start, e_end))
    x = x + F.linear(a, b["sa_o_w"], b["sa_o_b"]) * g1
    hc = F.layer_norm(x, (D,), b["norm3_w"], b["norm3_b"], eps=eps).bfloat16()
    qc = rms(F.linear(hc, b["ca_q_w"], b["ca_q_b"]), b["ca_norm_q"], eps).bfloat16()
    kc = rms(F.linear(ctx, b["ca_k_w"], b["ca_k_b"]), b["ca_norm_k"], eps).bfloat16()
    vc = F.linear(ctx, b["ca_v_w"], b["ca_v_b"])
    x = x + F.linear(attention(qc, kc, vc, NH), b["ca_o_w"], b["ca_o_b"])
    h2 = (F.layer_norm(x, (D,), eps=eps) * (1 + c2) + s2).bfloat16()
    y = F.linear(F.gelu(F.linear(h2, b["ffn0_w"], b["ffn0_b"]), approximate="tanh"), b["ffn2_w"], b["ffn2_b"])
    return x + y * g2


def forward(m, cfg, x_lat, t, context, table, timer=None):
    """x_lat [1, 16, T, H, W] fp32, t [1], context [512, 4096] bf16 -> velocity [16, T, H, W] fp32.
    timer: None, or {"attn": [], "block": []} to collect CUDA event pairs around self-attention calls and blocks."""
    D, NH, c = cfg["dim"], cfg["heads"], COMMON
    eps = c["eps"]
    x = F.conv3d(x_lat.bfloat16(), m["patch_w"], m["patch_b"], stride=c["patch"])  # [1, D, T, H/2, W/2]
    _, _, T, H2, W2 = x.shape
    x = x.flatten(2).transpose(1, 2)[0].float()  # [L, D]; the residual stream is fp32
    half = c["freq_dim"] // 2
    inv = torch.pow(10000.0, -torch.arange(half, dtype=torch.float64, device=DEVICE).div(half))
    arg = torch.outer(t.double(), inv)
    emb = torch.cat([torch.cos(arg), torch.sin(arg)], dim=1).float()  # [1, 256], cos first
    e = F.linear(F.silu(F.linear(emb, m["te0_w"], m["te0_b"])), m["te2_w"], m["te2_b"])  # [1, D] fp32
    e0 = F.linear(F.silu(e), m["tp_w"], m["tp_b"]).view(1, 6, D)
    ctx = F.linear(F.gelu(F.linear(context, m["txt0_w"], m["txt0_b"]), approximate="tanh"), m["txt2_w"],
                   m["txt2_b"])  # [512, D] bf16
    for b in m["blocks"]:
        if timer is not None:
            b_start, b_end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            b_start.record()
        x = block_forward(x, e0, ctx, b, NH, table, eps, timer)
        if timer is not None:
            b_end.record()
            timer["block"].append((b_start, b_end))
    shift, scale = (m["head_mod"] + e.unsqueeze(1)).unbind(1)
    y = F.linear(F.layer_norm(x, (D,), eps=eps) * (1 + scale) + shift, m["head_w"], m["head_b"])  # [L, 64] fp32
    y = y.view(T, H2, W2, 1, 2, 2, c["out_dim"])
    return torch.einsum("fhwpqrc->cfphqwr", y).reshape(c["out_dim"], T, H2 * 2, W2 * 2)


def time_forward(fn, warmup, iters):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    ms = []
    for _ in range(iters):
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record()
        out = fn()
        e1.record()
        e1.synchronize()
        ms.append(e0.elapsed_time(e1))
    ms.sort()
    return ms[len(ms) // 2], ms[0], out


def main():
    args = parse_args()
    if not torch.cuda.is_available():
        sys.exit("no CUDA device")
    torch.backends.cuda.matmul.allow_tf32 = False
    cfg = CONFIGS[args.model_config]
    layers = args.layers if args.layers > 0 else cfg["layers"]
    T = (args.frames - 1) // 4 + 1
    H, W = SIZES[args.size]
    grid = (T, H // 2, W // 2)
    L = grid[0] * grid[1] * grid[2]
    t_start = time.time()
    g = torch.Generator(device=DEVICE).manual_seed(args.seed)
    torch.cuda.reset_peak_memory_stats()
    m = make_model(cfg, layers, g)
    weight_gib = torch.cuda.memory_allocated() / 2**30
    x_lat = torch.randn(1, COMMON["in_dim"], T, H, W, device=DEVICE, generator=g)
    context = torch.randn(COMMON["text_len"], COMMON["text_dim"], device=DEVICE, generator=g).bfloat16()
    t = torch.tensor([500.0], device=DEVICE)
    table = rope_table(grid, cfg["dim"] // cfg["heads"], args.rope_dtype)
    print(f"torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}, {torch.cuda.get_device_name()}")
    print(f"{args.model_config} {args.size} {args.frames} frames: latent 16x{T}x{H}x{W}, {L} tokens, "
          f"{layers}/{cfg['layers']} blocks, weights {weight_gib:.1f} GiB bf16, RoPE {args.rope_dtype}")

    runs, outs = [], {}
    for name in [s.strip() for s in args.attention_backend.split(",") if s.strip()]:
        run = {"backend": name}
        try:
            with torch.inference_mode(), sdpa_kernel([BACKENDS[name]]):
                torch.cuda.reset_peak_memory_stats()
                med, mn, out = time_forward(lambda: forward(m, cfg, x_lat, t, context, table), args.warmup,
                                            args.iters)
                peak = torch.cuda.max_memory_allocated() / 2**30
                attn_sums, block_sums = [], []
                for _ in range(3):  # instrumented forwards: events around each self-attention call and block
                    timer = {"attn": [], "block": []}
                    forward(m, cfg, x_lat, t, context, table, timer)
                    torch.cuda.synchronize()
                    attn_sums.append(sum(a.elapsed_time(b) for a, b in timer["attn"]))
                    block_sums.append(sum(a.elapsed_time(b) for a, b in timer["block"]))
                attn, blocks = sorted(attn_sums)[1], sorted(block_sums)[1]
                outside = max(0.0, med - blocks)  # embeddings, head, unpatchify
            outs[name] = out.float()
            run.update(forward_ms=med, forward_min_ms=mn, blocks_ms=blocks, outside_blocks_ms=outside,
                       self_attn_ms=attn, self_attn_calls=layers,
                       self_attn_per_call_ms=attn / layers, self_attn_share=attn / med, peak_mem_gib=peak,
                       finite=bool(torch.isfinite(out).all().item()))
            if layers != cfg["layers"]:
                # Blocks are identical in cost and size: scale the blocks' time (not the embeddings and head),
                # add the missing blocks' weights to the peak.
                block_gib = sum(v.numel() * v.element_size() for v in m["blocks"][0].values()) / 2**30
                run["extrapolated_full_forward_ms"] = outside + blocks * cfg["layers"] / layers
                run["extrapolated_full_self_attn_ms"] = attn * cfg["layers"] / layers
                run["extrapolated_full_peak_mem_gib"] = peak + (cfg["layers"] - layers) * block_gib
            print(f"  {name:<9} forward {med:9.1f} ms (min {mn:.1f}); self-attention {attn:8.1f} ms "
                  f"({100 * attn / med:.0f} %, {attn / layers:.2f} ms/call); peak {peak:.1f} GiB"
                  + (f"; full depth ~{run['extrapolated_full_forward_ms']:.0f} ms, "
                     f"~{run['extrapolated_full_peak_mem_gib']:.1f} GiB" if layers != cfg["layers"] else ""), flush=True)
        except Exception as e:
            run["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"
            print(f"  {name:<9} error: {run['error']}")
        runs.append(run)
    names = list(outs)
    diffs = {}
    for i in range(1, len(names)):
        a, b = outs[names[0]], outs[names[i]]
        diffs[f"{names[i]}_vs_{names[0]}"] = float((a - b).abs().max() / a.abs().max())
    if diffs:
        print("  output rel diff (max|d|/max|ref|): " + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items()))
    result = {
        "tool": "torch_wan_step_peer", "torch": torch.__version__, "cudnn": torch.backends.cudnn.version(),
        "device": torch.cuda.get_device_name(), "model_config": args.model_config, "size": args.size,
        "frames": args.frames, "latent": [16, T, H, W], "grid": list(grid), "tokens": L,
        "text_len": COMMON["text_len"], "layers_run": layers, "layers_model": cfg["layers"],
        "rope_dtype": args.rope_dtype, "weights_gib": weight_gib, "iters": args.iters, "warmup": args.warmup,
        "precision": "bf16 weights/GEMMs/attention; LN, RMSNorm, modulation, residual fp32; time MLP and head fp32",
        "self_attn_method": "sum of CUDA-event times around the self-attention SDPA calls, median of 3 "
                            "instrumented forwards (blocks_ms likewise around whole blocks)",
        "runs": runs, "output_rel_diff": diffs, "wall_s": time.time() - t_start,
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
