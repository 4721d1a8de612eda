"""Renders training clips at the model's video size and encodes them with the trained VAE (posterior mean).

Writes WORK/latents.pt: latents fp16 [N, 16, T, h, w] (unnormalised), their captions, and the per-channel
mean/std over the whole set (float64 accumulation) that normalise the DiT's latents and go into the VAE's
metadata. Stops at `clips` clips or after `seconds`, whichever is first; not resumable mid-way (it is short).
Usage: python3 encode_latents.py --work DIR --seconds S [--preset default|tiny].
"""
import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import dataset  # noqa: E402
from wan_vae import WanVAE_  # noqa: E402


def load_vae(work, cfg, device):
    vae = WanVAE_(**cfg["vae"]).to(device).eval()
    vae.load_state_dict(common.load_checkpoint(os.path.join(work, "vae.pt"), device)["vae"])
    return vae


@torch.no_grad()
def encode_dataset(cfg, work, seconds, log, device, amp_dtype, seed=1):
    path = os.path.join(work, "latents.pt")
    if os.path.exists(path):
        data = common.load_checkpoint(path)
        log(f"encode: reusing {path} ({data['latents'].shape[0]} clips)")
        return data
    video, ec = cfg["video"], cfg["encode"]
    size = (video["height"], video["width"])
    vae = load_vae(work, cfg, device)
    rng = np.random.default_rng(seed)
    chunks, captions, t0 = [], [], time.time()
    s1 = torch.zeros(cfg["vae"]["z_dim"], dtype=torch.float64, device=device)
    s2 = torch.zeros_like(s1)
    count = 0
    torch.backends.cudnn.benchmark = True
    while len(captions) < ec["clips"] and time.time() - t0 < seconds:
        n = min(ec["batch"], ec["clips"] - len(captions))
        specs = [dataset.sample_spec(rng, size, video["frames"], split="train") for _ in range(n)]
        x = dataset.render_batch_torch(specs, size[0], size[1], device)
        with common.autocast(device, amp_dtype):
            mu, _ = vae.encode(x)
        mu = mu.float()
        s1 += mu.double().sum(dim=(0, 2, 3, 4))
        s2 += mu.double().pow(2).sum(dim=(0, 2, 3, 4))
        count += mu[:, 0].numel()
        chunks.append(mu.half())
        captions += [dataset.caption(s) for s in specs]
    torch.backends.cudnn.benchmark = False
    latents = torch.cat(chunks).cpu()
    mean = (s1 / count).float().cpu()
    std = (s2 / count - (s1 / count) ** 2).clamp_min(1e-12).sqrt().float().cpu()
    data = {"latents": latents, "captions": captions, "mean": mean, "std": std,
            "seconds": round(time.time() - t0, 1)}
    log(f"encode: {latents.shape[0]} clips -> latents {tuple(latents.shape[1:])} in {data['seconds']}s; "
        f"mean {[round(v, 3) for v in mean.tolist()]} std {[round(v, 3) for v in std.tolist()]}")
    common.save_checkpoint(data, path)
    return data


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", required=True)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--preset", default="default", choices=sorted(common.PRESETS))
    args = ap.parse_args()
    device, amp = common.device_and_autocast()
    encode_dataset(common.preset(args.preset), args.work, args.seconds, common.Log(), device, amp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
