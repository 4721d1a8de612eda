"""Wan2.1 text-to-video DiT (WanModel) in PyTorch, written from shared/docs/wan.md section 1.

Same math and the official parameter names (patch_embedding, text_embedding.0/.2, time_embedding.0/.2,
time_projection.1, blocks.i.*, head.*), so a state_dict dump is a checkpoint the C++ port reads. Batched:
every sample in a batch has the same latent grid; the context is already zero-padded to text_len
(see pad_context). RoPE angles are built in float64 and applied in float32 (the official code rotates in
float64; the difference is ~1e-7 relative). Not here: i2v, window attention, sequence parallelism.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

_HAS_SDPA = hasattr(F, "scaled_dot_product_attention")


def attention(q, k, v):
    """Softmax(q k^T / sqrt(d)) v over [B, L, NH, HD] inputs; returns [B, Lq, NH, HD]."""
    dtype = v.dtype  # q/k leave RMSNorm/RoPE in float32; under autocast v is bf16
    q, k, v = q.to(dtype).transpose(1, 2), k.to(dtype).transpose(1, 2), v.transpose(1, 2)  # [B, NH, L, HD]
    if _HAS_SDPA:
        out = F.scaled_dot_product_attention(q, k, v)
    else:
        scores = torch.matmul(q, k.transpose(-1, -2)) * (q.shape[-1] ** -0.5)
        out = torch.matmul(scores.float().softmax(-1).type_as(v), v)
    return out.transpose(1, 2)


def sinusoidal_embedding_1d(dim, position):
    """[B] timesteps -> [B, dim] float32: cos first, then sin, computed in float64 (W model.py)."""
    half = dim // 2
    position = position.to(torch.float64)
    omega = torch.pow(10000.0, -torch.arange(half, dtype=torch.float64, device=position.device).div(half))
    sinusoid = torch.outer(position, omega)
    return torch.cat([torch.cos(sinusoid), torch.sin(sinusoid)], dim=1).float()


def rope_angles(head_dim, grid, device):
    """Angles [L, HD/2] (float64) of the 3D RoPE for a (F, H, W) patch grid, split c-2(c//3), c//3, c//3."""
    c = head_dim // 2
    splits = [c - 2 * (c // 3), c // 3, c // 3]
    parts = []
    for axis, (n_pairs, size) in enumerate(zip(splits, grid)):
        inv = 1.0 / torch.pow(10000.0, torch.arange(0, 2 * n_pairs, 2, dtype=torch.float64).div(2 * n_pairs))
        ang = torch.outer(torch.arange(size, dtype=torch.float64), inv)  # [size, n_pairs]
        shape = [1, 1, 1, n_pairs]
        shape[axis] = size
        parts.append(ang.view(*shape).expand(grid[0], grid[1], grid[2], n_pairs))
    return torch.cat(parts, dim=-1).reshape(-1, c).to(device)


def rope_apply(x, cos, sin):
    """Rotates pairs (2j, 2j+1) of x [B, L, NH, HD] by the angles behind cos/sin [L, HD/2]; float32 out."""
    b, l, n, d = x.shape
    xr = x.float().reshape(b, l, n, d // 2, 2)
    a, bb = xr[..., 0], xr[..., 1]
    c, s = cos.view(1, l, 1, -1), sin.view(1, l, 1, -1)
    return torch.stack([a * c - bb * s, a * s + bb * c], dim=-1).reshape(b, l, n, d)


class WanRMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(dim=-1, keepdim=True) + self.eps)).type_as(x) * self.weight


class WanLayerNorm(nn.LayerNorm):
    """LayerNorm computed in float32 (affine only for norm3)."""

    def __init__(self, dim, eps=1e-6, elementwise_affine=False):
        super().__init__(dim, eps=eps, elementwise_affine=elementwise_affine)

    def forward(self, x):
        return super().forward(x.float()).type_as(x)


class WanSelfAttention(nn.Module):
    def __init__(self, dim, num_heads, eps=1e-6):
        super().__init__()
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))
        self.norm_q, self.norm_k = WanRMSNorm(dim, eps), WanRMSNorm(dim, eps)

    def forward(self, x, cos, sin):
        b, l, n, d = x.shape[0], x.shape[1], self.num_heads, self.head_dim
        q = self.norm_q(self.q(x)).view(b, l, n, d)  # RMS over the full dim, then split
        k = self.norm_k(self.k(x)).view(b, l, n, d)
        v = self.v(x).view(b, l, n, d)
        return self.o(attention(rope_apply(q, cos, sin), rope_apply(k, cos, sin), v).flatten(2))  # [B, L, D]


class WanCrossAttention(nn.Module):
    """Text cross-attention: no RoPE, no mask (padded context rows are attended to, as in Wan)."""

    def __init__(self, dim, num_heads, eps=1e-6):
        super().__init__()
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))
        self.norm_q, self.norm_k = WanRMSNorm(dim, eps), WanRMSNorm(dim, eps)

    def forward(self, x, context):
        b, n, d = x.shape[0], self.num_heads, self.head_dim
        q = self.norm_q(self.q(x)).view(b, -1, n, d)
        k = self.norm_k(self.k(context)).view(b, -1, n, d)
        v = self.v(context).view(b, -1, n, d)
        return self.o(attention(q, k, v).flatten(2))


class WanAttentionBlock(nn.Module):
    def __init__(self, dim, ffn_dim, num_heads, eps=1e-6):
        super().__init__()
        self.norm1 = WanLayerNorm(dim, eps)
        self.self_attn = WanSelfAttention(dim, num_heads, eps)
        self.norm3 = WanLayerNorm(dim, eps, elementwise_affine=True)  # cross-attention norm (naming trap)
        self.cross_attn = WanCrossAttention(dim, num_heads, eps)
        self.norm2 = WanLayerNorm(dim, eps)  # FFN norm, no params
        self.ffn = nn.Sequential(nn.Linear(dim, ffn_dim), nn.GELU(approximate="tanh"), nn.Linear(ffn_dim, dim))
        self.modulation = nn.Parameter(torch.randn(1, 6, dim) / dim ** 0.5)

    def forward(self, x, e0, cos, sin, context):
        """x [B, L, D] float32 residual; e0 [B, 6, D] float32."""
        s1, c1, g1, s2, c2, g2 = (self.modulation.float() + e0).chunk(6, dim=1)  # each [B, 1, D]
        y = self.self_attn(self.norm1(x) * (1 + c1) + s1, cos, sin)
        x = x + y.float() * g1
        x = x + self.cross_attn(self.norm3(x), context).float()
        y = self.ffn(self.norm2(x) * (1 + c2) + s2)
        return x + y.float() * g2


class Head(nn.Module):
    def __init__(self, dim, out_dim, patch_size, eps=1e-6):
        super().__init__()
        self.norm = WanLayerNorm(dim, eps)
        self.head = nn.Linear(dim, math.prod(patch_size) * out_dim)
        self.modulation = nn.Parameter(torch.randn(1, 2, dim) / dim ** 0.5)

    def forward(self, x, e):
        """Uses e (the time embedding itself, before SiLU), not e0."""
        shift, scale = (self.modulation.float() + e.unsqueeze(1)).chunk(2, dim=1)
        return self.head(self.norm(x) * (1 + scale) + shift)


class WanModel(nn.Module):
    def __init__(self, dim=256, ffn_dim=1024, num_heads=4, num_layers=4, in_dim=16, out_dim=16, freq_dim=256,
                 text_dim=128, text_len=32, patch_size=(1, 2, 2), eps=1e-6, model_type="t2v"):
        super().__init__()
        assert model_type == "t2v" and dim % num_heads == 0
        self.config = dict(model_type=model_type, dim=dim, ffn_dim=ffn_dim, num_heads=num_heads,
                           num_layers=num_layers, in_dim=in_dim, out_dim=out_dim, freq_dim=freq_dim,
                           text_dim=text_dim, text_len=text_len, patch_size=tuple(patch_size), eps=eps)
        self.dim, self.freq_dim, self.text_len, self.out_dim = dim, freq_dim, text_len, out_dim
        self.patch_size, self.head_dim = tuple(patch_size), dim // num_heads
        self.patch_embedding = nn.Conv3d(in_dim, dim, kernel_size=patch_size, stride=patch_size)
        self.text_embedding = nn.Sequential(nn.Linear(text_dim, dim), nn.GELU(approximate="tanh"),
                                            nn.Linear(dim, dim))
        self.time_embedding = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.time_projection = nn.Sequential(nn.SiLU(), nn.Linear(dim, dim * 6))
        self.blocks = nn.ModuleList([WanAttentionBlock(dim, ffn_dim, num_heads, eps) for _ in range(num_layers)])
        self.head = Head(dim, out_dim, patch_size, eps)
        self._rope_cache = {}
        self.init_weights()

    def init_weights(self):
        """The official init (W model.py init_weights)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.xavier_uniform_(self.patch_embedding.weight.flatten(1))
        for m in list(self.text_embedding.modules()) + list(self.time_embedding.modules()):
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.02)
        nn.init.zeros_(self.head.head.weight)

    def rope(self, grid, device):
        key = (tuple(grid), str(device))
        if key not in self._rope_cache:
            ang = rope_angles(self.head_dim, grid, "cpu")
            self._rope_cache[key] = (torch.cos(ang).float().to(device), torch.sin(ang).float().to(device))
        return self._rope_cache[key]

    def embed_text(self, context):
        """context [B, text_len, text_dim] (zero-padded) -> [B, text_len, D]; constant over steps."""
        return self.text_embedding(context)

    def forward(self, x, t, context, context_embedded=False):
        """x [B, 16, F, H, W], t [B] integer timesteps, context [B, text_len, text_dim] -> [B, 16, F, H, W]."""
        x = self.patch_embedding(x)  # [B, D, F, H/2, W/2]
        grid = tuple(x.shape[2:])
        x = x.flatten(2).transpose(1, 2).float()  # [B, L, D], token l = (f*H' + h)*W' + w
        with torch.autocast(device_type=x.device.type, enabled=False):
            e = self.time_embedding(sinusoidal_embedding_1d(self.freq_dim, t))  # [B, D]
            e0 = self.time_projection(e).unflatten(1, (6, self.dim))  # [B, 6, D]
        ctx = context if context_embedded else self.embed_text(context)
        cos, sin = self.rope(grid, x.device)
        for block in self.blocks:
            x = block(x, e0, cos, sin, ctx)
        with torch.autocast(device_type=x.device.type, enabled=False):
            y = self.head(x, e)  # [B, L, prod(patch)*16]
        return self.unpatchify(y.float(), grid)

    def unpatchify(self, y, grid):
        """y [B, L, pt*ph*pw*C] with C fastest -> [B, C, F*pt, H*ph, W*pw]."""
        b, (f, h, w), (pt, ph, pw), c = y.shape[0], grid, self.patch_size, self.out_dim
        y = y.view(b, f, h, w, pt, ph, pw, c)
        y = torch.einsum("bfhwxyzc->bcfxhywz", y)
        return y.reshape(b, c, f * pt, h * ph, w * pw)


def pad_context(contexts, text_len):
    """List of [Lc_i, text_dim] -> [B, text_len, text_dim], zero rows after each real length."""
    out = contexts[0].new_zeros(len(contexts), text_len, contexts[0].shape[1])
    for i, c in enumerate(contexts):
        out[i, :c.shape[0]] = c[:text_len]
    return out
