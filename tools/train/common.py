"""Shared pieces of the training scripts: the model/training presets, logging, checkpoints, EMA, LR schedule.

Presets: 'default' (the shipped vdit-tiny-t2v, trained on one GPU) and 'tiny' (seconds on a CPU, to test the
pipeline). Checkpoints are torch.save dicts written atomically; loading works on torch 1.13 and 2.x.
Not here: model code (wan_dit.py, t5.py, wan_vae.py) or data (dataset.py).
"""
import copy
import json
import math
import os
import sys
import time

import torch

PRESETS = {
    "default": {
        # 256x256, 17 frames -> latent [16, 5, 32, 32] -> 5 x 16 x 16 = 1280 video tokens (20 blocks of 64)
        "video": {"height": 256, "width": 256, "frames": 17, "fps": 16},
        "tokenizer": {"vocab_size": 128},
        "t5": {"dim": 128, "dim_attn": 128, "dim_ffn": 256, "num_heads": 2, "num_layers": 2, "num_buckets": 32},
        "dit": {"dim": 256, "ffn_dim": 1024, "num_heads": 4, "num_layers": 4, "freq_dim": 256, "text_len": 32},
        "vae": {"dim": 16, "z_dim": 16, "dim_mult": [1, 2, 4, 4], "num_res_blocks": 2,
                "temperal_downsample": [False, True, True]},
        "vae_train": {"batch": 16, "crop": 128, "frames": 9, "full_frac": 0.2, "full_batch": 4, "lr": 8e-4,
                      "kl": 1e-5, "warmup": 100},
        "encode": {"clips": 12000, "batch": 32},
        "dit_train": {"batch": 64, "lr": 5e-4, "warmup": 200, "ema": 0.999, "cfg_drop": 0.1, "min_lr_frac": 0.1},
        "sample": {"steps": 20, "shift": 3.0, "guidance": 5.0, "sampler": "unipc", "negative_prompt": "",
                   "guidance_sweep": [3.0, 5.0, 7.0]},
    },
    "small": {  # a CPU check that the pieces learn (64x64, 9 frames); not shipped
        "video": {"height": 64, "width": 64, "frames": 9, "fps": 16},
        "tokenizer": {"vocab_size": 128},
        "t5": {"dim": 64, "dim_attn": 64, "dim_ffn": 128, "num_heads": 1, "num_layers": 1, "num_buckets": 32},
        "dit": {"dim": 128, "ffn_dim": 512, "num_heads": 2, "num_layers": 2, "freq_dim": 256, "text_len": 32},
        "vae": {"dim": 8, "z_dim": 16, "dim_mult": [1, 2, 4, 4], "num_res_blocks": 2,
                "temperal_downsample": [False, True, True]},
        "vae_train": {"batch": 4, "crop": 64, "frames": 9, "full_frac": 0.0, "full_batch": 4, "lr": 1e-3,
                      "kl": 1e-5, "warmup": 20},
        "encode": {"clips": 1500, "batch": 50},
        "dit_train": {"batch": 32, "lr": 5e-4, "warmup": 50, "ema": 0.99, "cfg_drop": 0.1, "min_lr_frac": 0.1},
        "sample": {"steps": 20, "shift": 3.0, "guidance": 5.0, "sampler": "unipc", "negative_prompt": "",
                   "guidance_sweep": [5.0]},
    },
    "tiny": {
        "video": {"height": 64, "width": 64, "frames": 9, "fps": 16},
        "tokenizer": {"vocab_size": 128},
        "t5": {"dim": 32, "dim_attn": 32, "dim_ffn": 64, "num_heads": 2, "num_layers": 1, "num_buckets": 32},
        "dit": {"dim": 64, "ffn_dim": 128, "num_heads": 2, "num_layers": 1, "freq_dim": 256, "text_len": 32},
        "vae": {"dim": 4, "z_dim": 16, "dim_mult": [1, 2, 4, 4], "num_res_blocks": 2,
                "temperal_downsample": [False, True, True]},
        "vae_train": {"batch": 2, "crop": 32, "frames": 5, "full_frac": 0.3, "full_batch": 1, "lr": 1e-3,
                      "kl": 1e-5, "warmup": 2},
        "encode": {"clips": 24, "batch": 8},
        "dit_train": {"batch": 4, "lr": 1e-3, "warmup": 2, "ema": 0.9, "cfg_drop": 0.1, "min_lr_frac": 0.1},
        "sample": {"steps": 4, "shift": 3.0, "guidance": 5.0, "sampler": "unipc", "negative_prompt": "",
                   "guidance_sweep": [3.0, 5.0]},
    },
}


def preset(name):
    return copy.deepcopy(PRESETS[name])


def latent_shape(video, z_dim=16):
    return (z_dim, (video["frames"] - 1) // 4 + 1, video["height"] // 8, video["width"] // 8)


class Log:
    """Prints timestamped lines and keeps them (they go into summary.json)."""

    def __init__(self, path=None):
        self.t0, self.lines, self.path = time.time(), [], path

    def __call__(self, msg):
        line = f"[{time.time() - self.t0:7.1f}s] {msg}"
        print(line, flush=True)
        self.lines.append(line)
        if self.path:
            with open(self.path, "a") as f:
                f.write(line + "\n")


def device_and_autocast():
    """('cuda', torch.bfloat16) on a GPU, else ('cpu', None): autocast only on CUDA. TF32 flags are left at
    their defaults (the fp32 evaluation should stay close to the C++ f32 path)."""
    if torch.cuda.is_available():
        return "cuda", torch.bfloat16
    return "cpu", None


def autocast(device, dtype):
    return torch.autocast(device_type=device, dtype=dtype or torch.bfloat16, enabled=dtype is not None)


def save_checkpoint(obj, path):
    tmp = f"{path}.tmp-{os.getpid()}"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_checkpoint(path, device="cpu"):
    try:
        return torch.load(path, map_location=device, weights_only=False)
    except TypeError:  # torch without the weights_only argument
        return torch.load(path, map_location=device)


class EMA:
    """Exponential moving average of a module's parameters (decay warms up: min(decay, (1+n)/(10+n)))."""

    def __init__(self, module, decay):
        self.decay, self.n = decay, 0
        self.shadow = {k: v.detach().clone().float() for k, v in module.state_dict().items()}

    @torch.no_grad()
    def update(self, module):
        self.n += 1
        d = min(self.decay, (1 + self.n) / (10 + self.n))
        sd = module.state_dict()
        shadow = [self.shadow[k] for k in sd]
        torch._foreach_mul_(shadow, d)
        torch._foreach_add_(shadow, [v.detach().float() for v in sd.values()], alpha=1 - d)

    def state_dict(self):
        return {"decay": self.decay, "n": self.n, "shadow": self.shadow}

    def load_state_dict(self, sd):
        self.decay, self.n = sd["decay"], sd["n"]
        self.shadow = {k: v.float() for k, v in sd["shadow"].items()}


def lr_at(step, progress, peak, warmup, min_frac):
    """Linear warm-up over `warmup` steps, then cosine from peak to min_frac*peak over progress 0..1 (time)."""
    warm = min(1.0, (step + 1) / max(1, warmup))
    cos = min_frac + (1 - min_frac) * 0.5 * (1 + math.cos(math.pi * min(1.0, max(0.0, progress))))
    return peak * warm * cos


def write_json(obj, path):
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)


def add_repo_paths():
    here = os.path.dirname(os.path.abspath(__file__))
    for p in (here, os.path.join(here, "..", "eval")):
        if p not in sys.path:
            sys.path.insert(0, p)
