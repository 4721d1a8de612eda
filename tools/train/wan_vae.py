"""Wan2.1 video VAE (WanVAE_) in PyTorch, written from shared/docs/wan.md section 4, one-shot form.

Official names (encoder.*, conv1, conv2, decoder.*): causal 3D convs, RMS_norm, ResidualBlock, the per-frame
middle AttentionBlock and the Resample up/down layers, 4x8x8 compression, frames 4k+1. The whole clip is
processed at once; wan.md shows this equals the official per-chunk streaming (frame 0 passes the temporal
resamplers untouched; the other frames use causal zero-padded time convs). Latent normalisation
((mu - mean) / std and back) is done by the callers with the dataset statistics, not Wan's constants.
Not here: the streaming cache (the C++ decoder may stream; the math is the same).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

_HAS_SDPA = hasattr(F, "scaled_dot_product_attention")


class CausalConv3d(nn.Conv3d):
    """Conv3d with 2*pad_t zero frames in front only (and symmetric spatial padding)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        p = self.padding
        self._padding = (p[2], p[2], p[1], p[1], 2 * p[0], 0)
        self.padding = (0, 0, 0)

    def forward(self, x):
        return super().forward(F.pad(x, self._padding))


class RMS_norm(nn.Module):  # noqa: N801 (official name)
    def __init__(self, dim, images=True):
        super().__init__()
        self.scale = dim ** 0.5
        self.gamma = nn.Parameter(torch.ones((dim, 1, 1) if images else (dim, 1, 1, 1)))

    def forward(self, x):
        return F.normalize(x, dim=1) * self.scale * self.gamma


class ResidualBlock(nn.Module):
    def __init__(self, in_dim, out_dim):
        super().__init__()
        self.residual = nn.Sequential(
            RMS_norm(in_dim, images=False), nn.SiLU(), CausalConv3d(in_dim, out_dim, 3, padding=1),
            RMS_norm(out_dim, images=False), nn.SiLU(), nn.Dropout(0.0), CausalConv3d(out_dim, out_dim, 3, padding=1))
        self.shortcut = CausalConv3d(in_dim, out_dim, 1) if in_dim != out_dim else nn.Identity()

    def forward(self, x):
        return self.residual(x) + self.shortcut(x)


class AttentionBlock(nn.Module):
    """Single-head self-attention over the H*W positions of each frame separately."""

    def __init__(self, dim):
        super().__init__()
        self.norm = RMS_norm(dim)
        self.to_qkv = nn.Conv2d(dim, dim * 3, 1)
        self.proj = nn.Conv2d(dim, dim, 1)
        nn.init.zeros_(self.proj.weight)

    def forward(self, x):
        b, c, t, h, w = x.shape
        y = x.transpose(1, 2).reshape(b * t, c, h, w)
        q, k, v = self.to_qkv(self.norm(y)).reshape(b * t, 1, c * 3, h * w).permute(0, 1, 3, 2).chunk(3, dim=-1)
        if _HAS_SDPA:
            y = F.scaled_dot_product_attention(q.contiguous(), k.contiguous(), v.contiguous())
        else:
            s = torch.matmul(q, k.transpose(-1, -2)) * (c ** -0.5)
            y = torch.matmul(s.float().softmax(-1).type_as(v), v)
        y = self.proj(y.squeeze(1).permute(0, 2, 1).reshape(b * t, c, h, w))
        return x + y.reshape(b, t, c, h, w).transpose(1, 2)


class Upsample(nn.Upsample):
    def forward(self, x):
        return super().forward(x.float()).type_as(x)


class Resample(nn.Module):
    def __init__(self, dim, mode):
        super().__init__()
        self.mode = mode
        if mode in ("upsample2d", "upsample3d"):
            self.resample = nn.Sequential(Upsample(scale_factor=(2.0, 2.0), mode="nearest-exact"),
                                          nn.Conv2d(dim, dim // 2, 3, padding=1))
            if mode == "upsample3d":
                self.time_conv = CausalConv3d(dim, dim * 2, (3, 1, 1), padding=(1, 0, 0))
        elif mode in ("downsample2d", "downsample3d"):
            self.resample = nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(dim, dim, 3, stride=(2, 2)))
            if mode == "downsample3d":
                self.time_conv = CausalConv3d(dim, dim, (3, 1, 1), stride=(2, 1, 1), padding=(0, 0, 0))
        else:
            raise ValueError(mode)

    def forward(self, x):
        b, c, t, h, w = x.shape
        if self.mode == "upsample3d" and t > 1:
            # frame 0 passes; frames 1..T-1 -> 2 frames each (channels [0:C] then [C:2C]): 1 + 2(T-1)
            y = self.time_conv(x[:, :, 1:]).reshape(b, 2, c, t - 1, h, w)
            y = torch.stack((y[:, 0], y[:, 1]), 3).reshape(b, c, 2 * (t - 1), h, w)
            x = torch.cat([x[:, :, :1], y], dim=2)
        t = x.shape[2]
        x = self.resample(x.transpose(1, 2).reshape(b * t, c, h, w))
        x = x.reshape(b, t, x.shape[1], x.shape[2], x.shape[3]).transpose(1, 2)
        if self.mode == "downsample3d" and t > 1:
            # frame 0 passes; stride-2 windows [x0,x1,x2], [x2,x3,x4], ... (chunks of 4 in the official code)
            x = torch.cat([x[:, :, :1], self.time_conv(x)], dim=2)
        return x


class Encoder3d(nn.Module):
    def __init__(self, dim, z_dim, dim_mult, num_res_blocks, temperal_downsample):
        super().__init__()
        dims = [dim * u for u in [1] + dim_mult]
        self.conv1 = CausalConv3d(3, dims[0], 3, padding=1)
        layers = []
        for i, (in_dim, out_dim) in enumerate(zip(dims[:-1], dims[1:])):
            for _ in range(num_res_blocks):
                layers.append(ResidualBlock(in_dim, out_dim))
                in_dim = out_dim
            if i != len(dim_mult) - 1:
                layers.append(Resample(out_dim, "downsample3d" if temperal_downsample[i] else "downsample2d"))
        self.downsamples = nn.Sequential(*layers)
        self.middle = nn.Sequential(ResidualBlock(out_dim, out_dim), AttentionBlock(out_dim),
                                    ResidualBlock(out_dim, out_dim))
        self.head = nn.Sequential(RMS_norm(out_dim, images=False), nn.SiLU(), CausalConv3d(out_dim, z_dim, 3, padding=1))

    def forward(self, x):
        return self.head(self.middle(self.downsamples(self.conv1(x))))


class Decoder3d(nn.Module):
    def __init__(self, dim, z_dim, dim_mult, num_res_blocks, temperal_upsample):
        super().__init__()
        dims = [dim * u for u in [dim_mult[-1]] + dim_mult[::-1]]
        self.conv1 = CausalConv3d(z_dim, dims[0], 3, padding=1)
        self.middle = nn.Sequential(ResidualBlock(dims[0], dims[0]), AttentionBlock(dims[0]),
                                    ResidualBlock(dims[0], dims[0]))
        layers = []
        for i, (in_dim, out_dim) in enumerate(zip(dims[:-1], dims[1:])):
            if i in (1, 2, 3):
                in_dim = in_dim // 2
            for _ in range(num_res_blocks + 1):
                layers.append(ResidualBlock(in_dim, out_dim))
                in_dim = out_dim
            if i != len(dim_mult) - 1:
                layers.append(Resample(out_dim, "upsample3d" if temperal_upsample[i] else "upsample2d"))
        self.upsamples = nn.Sequential(*layers)
        self.head = nn.Sequential(RMS_norm(out_dim, images=False), nn.SiLU(), CausalConv3d(out_dim, 3, 3, padding=1))

    def forward(self, x):
        return self.head(self.upsamples(self.middle(self.conv1(x))))


class WanVAE_(nn.Module):  # noqa: N801 (official name)
    def __init__(self, dim=16, z_dim=16, dim_mult=(1, 2, 4, 4), num_res_blocks=2,
                 temperal_downsample=(False, True, True)):
        super().__init__()
        dim_mult, temperal_downsample = list(dim_mult), list(temperal_downsample)
        self.config = dict(dim=dim, z_dim=z_dim, dim_mult=dim_mult, num_res_blocks=num_res_blocks,
                           attn_scales=[], temperal_downsample=temperal_downsample)
        self.z_dim = z_dim
        self.encoder = Encoder3d(dim, z_dim * 2, dim_mult, num_res_blocks, temperal_downsample)
        self.conv1 = CausalConv3d(z_dim * 2, z_dim * 2, 1)
        self.conv2 = CausalConv3d(z_dim, z_dim, 1)
        self.decoder = Decoder3d(dim, z_dim, dim_mult, num_res_blocks, temperal_downsample[::-1])

    def encode(self, video):
        """video [B, 3, 1+4k, H, W] in [-1, 1] -> (mu, log_var), each [B, z, 1+k, H/8, W/8], unnormalised."""
        mu, log_var = self.conv1(self.encoder(video)).chunk(2, dim=1)
        return mu, log_var

    def decode(self, z):
        """Unnormalised latent [B, z, T, h, w] -> video [B, 3, 1+4(T-1), 8h, 8w] (not clamped)."""
        return self.decoder(self.conv2(z))

    def decoder_state_dict(self):
        """The tensors a text-to-video decoder needs: conv2.* and decoder.*."""
        return {k: v for k, v in self.state_dict().items() if k.startswith(("conv2.", "decoder."))}
