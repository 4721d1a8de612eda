#!/usr/bin/env python3
"""PyTorch peer of `vdit bench vae`: the official Wan2.1 VAE decoder (W wan/modules/vae.py, re-implemented
compactly with the same module tree, tensor names and chunked `feat_cache` decode), random weights of the
released config (dim 96, z 16), streaming decode of 81 frames (latent [1, 16, 21, H/8, W/8]) timed with CUDA
events in three modes:
  fp32        PyTorch defaults, i.e. cudnn.allow_tf32 = True (what the official fp32 decode really runs)
  fp32-strict TF32 off (comparable to `vdit bench vae --precision fp32`)
  bf16        under torch.autocast(bfloat16)
Prints time and peak memory (torch.cuda.max_memory_allocated) per mode; --json FILE writes them.
--check-golden decodes the tiny official golden (tests/data/vae) first and prints the error against it, to
show the re-implementation is faithful. Does not: encode, tile, or share weights with vdit.
"""
import argparse
import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

CACHE_T = 2
WAN21_MEAN = [-0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508,
              0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921]
WAN21_STD = [2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743,
             3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.9160]


class CausalConv3d(nn.Conv3d):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._padding = (self.padding[2], self.padding[2], self.padding[1], self.padding[1], 2 * self.padding[0], 0)
        self.padding = (0, 0, 0)

    def forward(self, x, cache_x=None):
        padding = list(self._padding)
        if cache_x is not None and self._padding[4] > 0:
            x = torch.cat([cache_x.to(x.device), x], dim=2)
            padding[4] -= cache_x.shape[2]
        return super().forward(F.pad(x, padding))


class RMS_norm(nn.Module):
    def __init__(self, dim, images=True):
        super().__init__()
        self.scale = dim ** 0.5
        self.gamma = nn.Parameter(torch.ones((dim, 1, 1) if images else (dim, 1, 1, 1)))

    def forward(self, x):
        return F.normalize(x, dim=1) * self.scale * self.gamma


class Upsample(nn.Upsample):
    def forward(self, x):
        return super().forward(x.float()).type_as(x)


def cached_conv(layer, x, feat_cache, feat_idx):
    """The official caching of a CausalConv3d's last CACHE_T input frames across chunks."""
    idx = feat_idx[0]
    cache_x = x[:, :, -CACHE_T:].clone()
    if cache_x.shape[2] < 2 and feat_cache[idx] is not None:
        cache_x = torch.cat([feat_cache[idx][:, :, -1].unsqueeze(2).to(cache_x.device), cache_x], dim=2)
    x = layer(x, feat_cache[idx])
    feat_cache[idx] = cache_x
    feat_idx[0] += 1
    return x


class Resample(nn.Module):
    def __init__(self, dim, mode):
        super().__init__()
        self.mode = mode
        self.resample = nn.Sequential(Upsample(scale_factor=(2.0, 2.0), mode="nearest-exact"),
                                      nn.Conv2d(dim, dim // 2, 3, padding=1))
        if mode == "upsample3d":
            self.time_conv = CausalConv3d(dim, dim * 2, (3, 1, 1), padding=(1, 0, 0))

    def forward(self, x, feat_cache=None, feat_idx=[0]):
        b, c, t, h, w = x.size()
        if self.mode == "upsample3d" and feat_cache is not None:
            idx = feat_idx[0]
            if feat_cache[idx] is None:
                feat_cache[idx] = "Rep"
                feat_idx[0] += 1
            else:
                cache_x = x[:, :, -CACHE_T:].clone()
                if cache_x.shape[2] < 2 and not isinstance(feat_cache[idx], str):
                    cache_x = torch.cat([feat_cache[idx][:, :, -1].unsqueeze(2).to(cache_x.device), cache_x], dim=2)
                if cache_x.shape[2] < 2 and isinstance(feat_cache[idx], str):
                    cache_x = torch.cat([torch.zeros_like(cache_x), cache_x], dim=2)
                if isinstance(feat_cache[idx], str):
                    x = self.time_conv(x)
                else:
                    x = self.time_conv(x, feat_cache[idx])
                feat_cache[idx] = cache_x
                feat_idx[0] += 1
                x = x.reshape(b, 2, c, t, h, w)
                x = torch.stack((x[:, 0], x[:, 1]), 3)
                x = x.reshape(b, c, t * 2, h, w)
        t = x.shape[2]
        x = x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
        x = self.resample(x)
        x = x.reshape(b, t, x.shape[1], x.shape[2], x.shape[3]).permute(0, 2, 1, 3, 4)
        return x


class ResidualBlock(nn.Module):
    def __init__(self, in_dim, out_dim):
        super().__init__()
        self.residual = nn.Sequential(
            RMS_norm(in_dim, images=False), nn.SiLU(), CausalConv3d(in_dim, out_dim, 3, padding=1),
            RMS_norm(out_dim, images=False), nn.SiLU(), nn.Dropout(0.0), CausalConv3d(out_dim, out_dim, 3, padding=1))
        self.shortcut = CausalConv3d(in_dim, out_dim, 1) if in_dim != out_dim else nn.Identity()

    def forward(self, x, feat_cache=None, feat_idx=[0]):
        h = self.shortcut(x)
        for layer in self.residual:
            if isinstance(layer, CausalConv3d) and feat_cache is not None:
                x = cached_conv(layer, x, feat_cache, feat_idx)
            else:
                x = layer(x)
        return x + h


class AttentionBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.norm = RMS_norm(dim)
        self.to_qkv = nn.Conv2d(dim, dim * 3, 1)
        self.proj = nn.Conv2d(dim, dim, 1)

    def forward(self, x):
        identity = x
        b, c, t, h, w = x.size()
        x = x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
        x = self.norm(x)
        q, k, v = self.to_qkv(x).reshape(b * t, 1, c * 3, -1).permute(0, 1, 3, 2).contiguous().chunk(3, dim=-1)
        x = F.scaled_dot_product_attention(q, k, v)
        x = x.squeeze(1).permute(0, 2, 1).reshape(b * t, c, h, w)
        x = self.proj(x)
        x = x.reshape(b, t, c, h, w).permute(0, 2, 1, 3, 4)
        return x + identity


class Decoder3d(nn.Module):
    def __init__(self, dim=96, z_dim=16, dim_mult=(1, 2, 4, 4), num_res_blocks=2, temperal_upsample=(True, True, False)):
        super().__init__()
        dims = [dim * u for u in [dim_mult[-1]] + list(dim_mult[::-1])]
        self.conv1 = CausalConv3d(z_dim, dims[0], 3, padding=1)
        self.middle = nn.Sequential(ResidualBlock(dims[0], dims[0]), AttentionBlock(dims[0]),
                                    ResidualBlock(dims[0], dims[0]))
        upsamples = []
        for i, (in_dim, out_dim) in enumerate(zip(dims[:-1], dims[1:])):
            if i in (1, 2, 3):
                in_dim = in_dim // 2
            for _ in range(num_res_blocks + 1):
                upsamples.append(ResidualBlock(in_dim, out_dim))
                in_dim = out_dim
            if i != len(dim_mult) - 1:
                upsamples.append(Resample(out_dim, "upsample3d" if temperal_upsample[i] else "upsample2d"))
        self.upsamples = nn.Sequential(*upsamples)
        self.head = nn.Sequential(RMS_norm(out_dim, images=False), nn.SiLU(), CausalConv3d(out_dim, 3, 3, padding=1))

    def forward(self, x, feat_cache, feat_idx):
        x = cached_conv(self.conv1, x, feat_cache, feat_idx)
        for layer in self.middle:
            x = layer(x, feat_cache, feat_idx) if isinstance(layer, ResidualBlock) else layer(x)
        for layer in self.upsamples:
            x = layer(x, feat_cache, feat_idx)
        for layer in self.head:
            x = cached_conv(layer, x, feat_cache, feat_idx) if isinstance(layer, CausalConv3d) else layer(x)
        return x


class WanVaeDecoder(nn.Module):
    """conv2 + decoder of WanVAE_, with its chunked decode (one latent frame per call)."""

    def __init__(self, dim=96, z_dim=16):
        super().__init__()
        self.z_dim = z_dim
        self.conv2 = CausalConv3d(z_dim, z_dim, 1)
        self.decoder = Decoder3d(dim, z_dim)
        self.num_conv = sum(isinstance(m, CausalConv3d) for m in self.decoder.modules())

    @torch.no_grad()
    def decode(self, z, mean, std):
        feat_map = [None] * self.num_conv
        z = z / (1.0 / std).view(1, self.z_dim, 1, 1, 1) + mean.view(1, self.z_dim, 1, 1, 1)
        x = self.conv2(z)
        out = None
        for i in range(z.shape[2]):
            idx = [0]
            o = self.decoder(x[:, :, i:i + 1], feat_cache=feat_map, feat_idx=idx)
            out = o if out is None else torch.cat([out, o], 2)
        return torch.clamp(out, min=-1.0, max=1.0)


def randomize(model, seed):
    """The golden recipe: conv weights N(0, 1/fan_in), biases 0.05·N, gammas 1 + 0.1·N."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            n = torch.randn(p.shape, generator=g)
            if name.endswith("gamma"):
                p.copy_(1 + 0.1 * n)
            elif name.endswith("bias"):
                p.copy_(0.05 * n)
            else:
                p.copy_(n / math.sqrt(p[0].numel()))


def check_golden(dev):
    from safetensors.torch import load_file
    w = load_file("tests/data/vae/vae_tiny_decoder.safetensors")
    g = load_file("tests/data/vae/vae_tiny_golden.safetensors")
    m = WanVaeDecoder(dim=16).to(dev)
    missing, unexpected = m.load_state_dict({k: v for k, v in w.items()}, strict=False)
    if missing:
        print("golden check: missing", missing[:5])
        return None
    torch.backends.cudnn.allow_tf32 = False
    out = m.decode(g["in.z"].to(dev), torch.tensor(WAN21_MEAN, device=dev), torch.tensor(WAN21_STD, device=dev))
    ref = g["out.video"].to(dev)
    rel = float((out - ref).abs().max() / ref.abs().max())
    print("golden check: peer vs official tiny golden rel %.3e (fp32, TF32 off)" % rel)
    return rel


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="480p", choices=["480p", "720p"])
    ap.add_argument("--frames", type=int, default=81)
    ap.add_argument("--modes", default="fp32,fp32-strict,bf16")
    ap.add_argument("--iters", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--check-golden", action="store_true")
    ap.add_argument("--json")
    a = ap.parse_args()
    dev = torch.device("cuda")
    res = {"size": a.size, "frames": a.frames, "torch": torch.__version__, "runs": []}
    if a.check_golden:
        res["golden_rel"] = check_golden(dev)
    h, w = (60, 104) if a.size == "480p" else (90, 160)
    T = (a.frames - 1) // 4 + 1
    model = WanVaeDecoder().to(dev).eval()
    randomize(model, a.seed)
    n_params = sum(p.numel() for p in model.parameters())
    gen = torch.Generator(device=dev).manual_seed(a.seed + 29)
    z = torch.randn(1, 16, T, h, w, device=dev, generator=gen)
    mean, std = torch.tensor(WAN21_MEAN, device=dev), torch.tensor(WAN21_STD, device=dev)
    print("official-layout Wan VAE decoder: %.1fM params, latent %s" % (n_params / 1e6, list(z.shape)))
    for mode in a.modes.split(","):
        torch.backends.cudnn.allow_tf32 = mode != "fp32-strict"
        torch.backends.cuda.matmul.allow_tf32 = False
        times = []
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        for i in range(a.warmup + a.iters):
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize()
            s.record()
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=(mode == "bf16")):
                out = model.decode(z, mean, std)
            e.record()
            torch.cuda.synchronize()
            ms = s.elapsed_time(e)
            print("  %s decode %d%s: %.1f ms" % (mode, i, " (warm-up)" if i < a.warmup else "", ms))
            if i >= a.warmup:
                times.append(ms)
            assert out.shape[2] == a.frames, out.shape
            del out
        peak = torch.cuda.max_memory_allocated() / 2 ** 30
        times.sort()
        med = times[len(times) // 2]
        print("%s: %s %d frames: median %.1f ms, peak %.2f GiB" % (mode, a.size, a.frames, med, peak))
        res["runs"].append({"mode": mode, "ms": med, "all_ms": times, "peak_gib": peak})
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    sys.exit(main())
