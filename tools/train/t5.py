"""UMT5-style text encoder (Wan's T5Encoder) in PyTorch, written from shared/docs/wan.md section 3.

Official names: token_embedding, blocks.i.{norm1, attn.{q,k,v,o}, pos_embedding.embedding, norm2,
ffn.{gate.0, fc1, fc2}}, norm. No biases, no 1/sqrt(d) score scaling, per-layer relative position bias
(bidirectional buckets, max distance 128), gated GELU-tanh FFN, RMS pre-norm. Also the conversion of an
encoder output to the DiT context (trim to the real length incl. </s>, zero-pad to text_len).
Not here: the decoder, shared position bias, dropout (inactive at inference).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class GELU(nn.Module):
    def forward(self, x):
        return gelu_tanh(x)


class T5LayerNorm(nn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        x = x * torch.rsqrt(x.float().pow(2).mean(dim=-1, keepdim=True) + self.eps)
        if self.weight.dtype in (torch.float16, torch.bfloat16):
            x = x.type_as(self.weight)
        return self.weight * x


class T5Attention(nn.Module):
    def __init__(self, dim, dim_attn, num_heads):
        super().__init__()
        self.dim, self.dim_attn, self.num_heads, self.head_dim = dim, dim_attn, num_heads, dim_attn // num_heads
        self.q = nn.Linear(dim, dim_attn, bias=False)
        self.k = nn.Linear(dim, dim_attn, bias=False)
        self.v = nn.Linear(dim, dim_attn, bias=False)
        self.o = nn.Linear(dim_attn, dim, bias=False)

    def forward(self, x, mask, pos_bias):
        """x [B, L, dim], mask [B, L] (1 = token), pos_bias [1, NH, L, L] -> [B, L, dim]."""
        b, n, c = x.shape[0], self.num_heads, self.head_dim
        q, k, v = (f(x).view(b, -1, n, c) for f in (self.q, self.k, self.v))
        bias = pos_bias.expand(b, -1, -1, -1).to(q.dtype)
        bias = bias.masked_fill(mask.view(b, 1, 1, -1) == 0, torch.finfo(q.dtype).min)
        attn = torch.einsum("binc,bjnc->bnij", q, k) + bias  # no 1/sqrt(d) scaling (T5)
        attn = F.softmax(attn.float(), dim=-1).type_as(v)
        return self.o(torch.einsum("bnij,bjnc->binc", attn, v).reshape(b, -1, n * c))


class T5FeedForward(nn.Module):
    def __init__(self, dim, dim_ffn):
        super().__init__()
        self.dim, self.dim_ffn = dim, dim_ffn
        self.gate = nn.Sequential(nn.Linear(dim, dim_ffn, bias=False), GELU())
        self.fc1 = nn.Linear(dim, dim_ffn, bias=False)
        self.fc2 = nn.Linear(dim_ffn, dim, bias=False)

    def forward(self, x):
        return self.fc2(self.fc1(x) * self.gate(x))


class T5RelativeEmbedding(nn.Module):
    def __init__(self, num_buckets, num_heads, max_dist=128):
        super().__init__()
        self.num_buckets, self.num_heads, self.max_dist = num_buckets, num_heads, max_dist
        self.embedding = nn.Embedding(num_buckets, num_heads)

    def forward(self, lq, lk):
        """-> [1, NH, lq, lk] bias, bidirectional buckets of r = j - i."""
        device = self.embedding.weight.device
        rel = torch.arange(lk, device=device).unsqueeze(0) - torch.arange(lq, device=device).unsqueeze(1)
        return self.embedding(self.bucket(rel)).permute(2, 0, 1).unsqueeze(0).contiguous()

    def bucket(self, rel):
        half = self.num_buckets // 2
        buckets = (rel > 0).long() * half
        rel = torch.abs(rel)
        max_exact = half // 2
        large = max_exact + (torch.log(rel.float() / max_exact) / math.log(self.max_dist / max_exact)
                             * (half - max_exact)).long()
        large = torch.min(large, torch.full_like(large, half - 1))
        return buckets + torch.where(rel < max_exact, rel, large)


class T5SelfAttention(nn.Module):
    def __init__(self, dim, dim_attn, dim_ffn, num_heads, num_buckets):
        super().__init__()
        self.norm1 = T5LayerNorm(dim)
        self.attn = T5Attention(dim, dim_attn, num_heads)
        self.norm2 = T5LayerNorm(dim)
        self.ffn = T5FeedForward(dim, dim_ffn)
        self.pos_embedding = T5RelativeEmbedding(num_buckets, num_heads)

    def forward(self, x, mask):
        bias = self.pos_embedding(x.shape[1], x.shape[1])
        x = x + self.attn(self.norm1(x), mask, bias)
        return x + self.ffn(self.norm2(x))


class T5Encoder(nn.Module):
    def __init__(self, vocab, dim=128, dim_attn=128, dim_ffn=256, num_heads=2, num_layers=2, num_buckets=32):
        super().__init__()
        self.config = dict(vocab=vocab, dim=dim, dim_attn=dim_attn, dim_ffn=dim_ffn, num_heads=num_heads,
                           num_layers=num_layers, num_buckets=num_buckets)
        self.token_embedding = nn.Embedding(vocab, dim)
        self.blocks = nn.ModuleList([T5SelfAttention(dim, dim_attn, dim_ffn, num_heads, num_buckets)
                                     for _ in range(num_layers)])
        self.norm = T5LayerNorm(dim)
        self.init_weights()

    def init_weights(self):
        """The official T5 init (W t5.py init_weights)."""
        nn.init.normal_(self.token_embedding.weight, std=1.0)
        for m in self.modules():
            if isinstance(m, T5FeedForward):
                nn.init.normal_(m.gate[0].weight, std=m.dim ** -0.5)
                nn.init.normal_(m.fc1.weight, std=m.dim ** -0.5)
                nn.init.normal_(m.fc2.weight, std=m.dim_ffn ** -0.5)
            elif isinstance(m, T5Attention):
                nn.init.normal_(m.q.weight, std=(m.dim * m.dim_attn) ** -0.5)
                nn.init.normal_(m.k.weight, std=m.dim ** -0.5)
                nn.init.normal_(m.v.weight, std=m.dim ** -0.5)
                nn.init.normal_(m.o.weight, std=(m.num_heads * m.dim_attn) ** -0.5)
            elif isinstance(m, T5RelativeEmbedding):
                nn.init.normal_(m.embedding.weight, std=(2 * m.num_buckets * m.num_heads) ** -0.5)

    def forward(self, ids, mask):
        """ids, mask [B, L] -> [B, L, dim] (rows past the real length are computed but meaningless)."""
        x = self.token_embedding(ids)
        for block in self.blocks:
            x = block(x, mask)
        return self.norm(x)


def encode_context(encoder, ids, mask):
    """Encoder output trimmed to each real length (incl. </s>) and zero-padded back: [B, L, dim] float32.

    Equal to the Wan pipeline's trim + the DiT's zero-pad to text_len when L == text_len.
    """
    out = encoder(ids, mask).float()
    return out * mask.unsqueeze(-1).to(out.dtype)
