#!/usr/bin/env python3
"""Float64 evaluation of the tiny Wan2.1 DiT golden run: writes tests/data/wan_tiny/dit_tiny_f64_reference.safetensors
with {cond,uncond}.block{0,1}_cross_attn_out [72, 256] (the stages where the fp32 golden itself is noisy) and
heads4.cond.out [16, 3, 8, 12] (the same weights run with 4 heads of 64, so the RoPE split rule is checked at a
head_dim other than 128: 12/10/10 pairs). Float64 math, stored as f32.

Why: the official fp32 golden (GPU) deviates from an exact evaluation by up to 1.13e-5 (max|d|/max|ref|) at
the cross-attention outputs, while every other stage is within 1.2e-6; this file lets the C++ test check
those stages against the exact values with a tight bound. The formulas follow Wan2.1 wan/modules/model.py
(WanModel.forward) line by line, with torch in float64; it prints both deviations.

Usage: python3 tests/model/make_f64_reference.py [--fp32-spread]  (needs torch and numpy; run from the repository root;
--fp32-spread only prints how far fp32 evaluations on the CPU and the GPU land from the golden and from float64)
"""
import json
import math
import struct

import numpy as np
import torch
import torch.nn.functional as F

WEIGHTS = "tests/data/wan_tiny/dit_tiny_weights.safetensors"
GOLDEN = "tests/data/wan_tiny/dit_tiny_golden.safetensors"
OUT = "tests/data/wan_tiny/dit_tiny_f64_reference.safetensors"
DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64}


def load(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        s, e = info["data_offsets"]
        arr = np.frombuffer(raw[8 + n + s:8 + n + e], dtype=DTYPES[info["dtype"]]).reshape(info["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out


def save(path, tensors, metadata):
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name, t in tensors.items():
        b = t.numpy().astype(np.float32).tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def forward(W, G, NH, branches, out, dtype=torch.float64, device="cpu"):
    """The official forward for every branch (float64 unless `dtype`, with W already in it); records cross-attention
    outputs and the final output. As in the official code, the sinusoid and RoPE are evaluated in float64."""
    D, eps, text_len = 256, 1e-6, 512
    HD = D // NH

    def lin(x, p):
        return x @ W[p + ".weight"].T + W[p + ".bias"]

    def ln(x, w=None, b=None):
        return F.layer_norm(x, (D,), w, b, eps)

    def rms(x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w

    def attention(q, k, v):
        q, k, v = (t.view(-1, NH, HD).transpose(0, 1) for t in (q, k, v))
        return ((q @ k.transpose(1, 2) / math.sqrt(HD)).softmax(-1) @ v).transpose(0, 1).reshape(-1, D)

    def rope_params(n, dim):
        f = torch.outer(torch.arange(n).double(), 1.0 / torch.pow(10000, torch.arange(0, dim, 2).double().div(dim)))
        return torch.polar(torch.ones_like(f), f)

    d6 = HD // 6
    freqs = torch.cat([rope_params(1024, HD - 4 * d6), rope_params(1024, 2 * d6), rope_params(1024, 2 * d6)], 1).to(device)

    def rope(x, f, h, w):
        c = HD // 2
        fr = freqs.split([c - 2 * (c // 3), c // 3, c // 3], 1)
        xc = torch.view_as_complex(x.double().reshape(f * h * w, NH, -1, 2).contiguous())
        fi = torch.cat([fr[0][:f].view(f, 1, 1, -1).expand(f, h, w, -1),
                        fr[1][:h].view(1, h, 1, -1).expand(f, h, w, -1),
                        fr[2][:w].view(1, 1, w, -1).expand(f, h, w, -1)], -1).reshape(f * h * w, 1, -1)
        return torch.view_as_real(xc * fi).reshape(f * h * w, D).to(dtype)

    x_in, t = G["in.x"].to(device, dtype), float(G["in.t"][0])
    finals = {}
    for branch in branches:
        ctx = G["in.context_" + branch].to(device, dtype)
        ctx = torch.cat([ctx, ctx.new_zeros(text_len - ctx.shape[0], ctx.shape[1])])
        ctx = lin(F.gelu(lin(ctx, "text_embedding.0"), approximate="tanh"), "text_embedding.2")
        pe = F.conv3d(x_in[None], W["patch_embedding.weight"], W["patch_embedding.bias"], stride=(1, 2, 2))
        f, h, w = pe.shape[2:]
        x = pe.flatten(2).transpose(1, 2)[0]
        half = 128
        s = torch.outer(torch.tensor([t]).double(), torch.pow(10000, -torch.arange(half).double().div(half)))
        e = lin(F.silu(lin(torch.cat([s.cos(), s.sin()], 1).to(device, dtype), "time_embedding.0")), "time_embedding.2")
        e0 = lin(F.silu(e), "time_projection.1").view(6, D)
        for i in range(2):
            b = f"blocks.{i}."
            m = W[b + "modulation"][0] + e0
            hh = ln(x) * (1 + m[1]) + m[0]
            q = rms(lin(hh, b + "self_attn.q"), W[b + "self_attn.norm_q.weight"])
            k = rms(lin(hh, b + "self_attn.k"), W[b + "self_attn.norm_k.weight"])
            y = lin(attention(rope(q, f, h, w), rope(k, f, h, w), lin(hh, b + "self_attn.v")), b + "self_attn.o")
            x = x + y * m[2]
            hc = ln(x, W[b + "norm3.weight"], W[b + "norm3.bias"])
            q = rms(lin(hc, b + "cross_attn.q"), W[b + "cross_attn.norm_q.weight"])
            k = rms(lin(ctx, b + "cross_attn.k"), W[b + "cross_attn.norm_k.weight"])
            y = lin(attention(q, k, lin(ctx, b + "cross_attn.v")), b + "cross_attn.o")
            out[f"{branch}.block{i}_cross_attn_out"] = y
            x = x + y
            y = lin(F.gelu(lin(ln(x) * (1 + m[4]) + m[3], b + "ffn.0"), approximate="tanh"), b + "ffn.2")
            x = x + y * m[5]
        hm = W["head.modulation"][0]
        y = lin(ln(x) * (1 + hm[1] + e[0]) + hm[0] + e[0], "head.head")
        finals[branch] = torch.einsum("fhwpqrc->cfphqwr", y.view(f, h, w, 1, 2, 2, 16)).reshape(16, f, 2 * h, 2 * w)
    return finals


def main():
    W = {k: v.double() for k, v in load(WEIGHTS).items()}
    G = load(GOLDEN)
    out = {}
    finals = forward(W, G, 2, ("cond", "uncond"), out)
    for branch, final in finals.items():
        golden_out = G[branch + ".out"].double()
        print(f"{branch}.out: golden vs f64 rel {((golden_out - final).abs().max() / final.abs().max()).item():.3g}")
    out["heads4.cond.out"] = forward(W, G, 4, ("cond",), {})["cond"]
    for k, v in out.items():
        if k not in G:
            continue
        g = G[k].double().reshape(v.shape)
        print(f"{k}: golden vs f64 rel {((g - v).abs().max() / v.abs().max()).item():.3g}")
    save(OUT, out, {"note": "float64 evaluation of the tiny DiT golden run (tests/model/make_f64_reference.py), stored f32"})
    print("wrote", OUT)


def fp32_spread():
    """How far fp32 evaluations of the same formulas (CPU, and the GPU with TF32 off) land from the golden and
    from float64 at every cross-attention stage: the bound a faithful fp32 implementation can be held to."""
    W64 = {k: v.double() for k, v in load(WEIGHTS).items()}
    G = load(GOLDEN)
    exact = {}
    forward(W64, G, 2, ("cond", "uncond"), exact)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    for device in devices:
        W = {k: v.to(device, torch.float32) for k, v in W64.items()}
        got = {}
        forward(W, G, 2, ("cond", "uncond"), got, torch.float32, device)
        for k, v in got.items():
            v = v.double().cpu()
            g = G[k].double().reshape(v.shape)
            print(f"fp32 {device} {k}: vs golden {((g - v).abs().max() / g.abs().max()).item():.3g}, "
                  f"vs f64 {((exact[k] - v).abs().max() / exact[k].abs().max()).item():.3g}")


if __name__ == "__main__":
    import sys
    fp32_spread() if "--fp32-spread" in sys.argv else main()
