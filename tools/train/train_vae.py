"""Trains the small Wan VAE (encoder + decoder) on freshly rendered clips, for a wall-time budget; resumable.

Each step renders a new batch on the device (dataset.render_batch_torch): first random crops (crop x crop
pixels, `frames` frames, centred near an object), then for the last `full_frac` of the budget whole clips at
the model's video size. Loss: L1 + MSE of the reconstruction from a posterior sample, plus a small KL
(per-element mean) that keeps the latents smooth for the DiT. Writes WORK/vae.pt (weights, optimiser, loss
history). Usage: python3 train_vae.py --work DIR --seconds S [--preset default|tiny].
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


def crop_origins(specs, crop, size, rng):
    """[B, 2] int window corners (y, x) near each clip's first object (mid-track) with some jitter."""
    h, w = size
    out = np.zeros((len(specs), 2), np.int64)
    for i, spec in enumerate(specs):
        tr = dataset.tracks(spec)[0]
        cx, cy = tr[len(tr) // 2, 0], tr[len(tr) // 2, 1]
        jy, jx = rng.uniform(-crop / 4, crop / 4, size=2)
        out[i] = (int(np.clip(cy - crop / 2 + jy, 0, h - crop)), int(np.clip(cx - crop / 2 + jx, 0, w - crop)))
    return out


def make_batch(cfg, rng, full, device):
    video, tc = cfg["video"], cfg["vae_train"]
    size = (video["height"], video["width"])
    n = tc["full_batch"] if full else tc["batch"]
    specs = [dataset.sample_spec(rng, size, video["frames"], split="train") for _ in range(n)]
    if full:
        return dataset.render_batch_torch(specs, size[0], size[1], device)
    start = int(rng.integers(0, video["frames"] - tc["frames"] + 1))
    return dataset.render_batch_torch(specs, tc["crop"], tc["crop"], device, origin=crop_origins(specs, tc["crop"], size, rng),
                                      frame_start=start, frames=tc["frames"])


def vae_loss(vae, x, kl_weight):
    mu, log_var = vae.encode(x)
    log_var = log_var.float().clamp(-30.0, 20.0)
    z = mu.float() + torch.exp(0.5 * log_var) * torch.randn_like(log_var)
    rec = vae.decode(z).float()
    # Objects cover a few percent of a frame: an unweighted loss is met by a sharp background and grey,
    # colourless blobs (seen in the first H200 run). Pixels that differ from the clip's background (its
    # top-left pixel per frame) weigh 10x, so the objects' colour is what the VAE must get right.
    x32 = x.float()
    bg = x32[:, :, :, :1, :1]                                        # [B, 3, T, 1, 1]
    fg = ((x32 - bg).abs().amax(dim=1, keepdim=True) > 0.05).float()  # [B, 1, T, H, W]
    w = 1.0 + 9.0 * fg
    w = w / w.mean()
    l1 = ((rec - x32).abs() * w).mean()
    mse = ((rec - x32).pow(2) * w).mean()
    kl = 0.5 * (mu.float().pow(2) + log_var.exp() - 1.0 - log_var).mean()
    return l1 + mse + kl_weight * kl, {"l1": l1.detach(), "mse": mse.detach(), "kl": kl.detach()}


def train_vae(cfg, work, seconds, budget, log, device, amp_dtype, seed=0):
    """Runs until `budget` seconds of VAE training in total (or `seconds` in this call). Returns the state."""
    path = os.path.join(work, "vae.pt")
    tc = cfg["vae_train"]
    vae = WanVAE_(**cfg["vae"]).to(device)
    opt = torch.optim.AdamW(vae.parameters(), lr=tc["lr"], betas=(0.9, 0.99), weight_decay=0.0)
    state = {"step": 0, "elapsed": 0.0, "budget": budget, "losses": [], "done": False}
    if os.path.exists(path):
        ck = common.load_checkpoint(path, device)
        vae.load_state_dict(ck["vae"])
        opt.load_state_dict(ck["opt"])
        state = ck["state"]
        log(f"vae: resumed at step {state['step']} ({state['elapsed']:.0f}s of {state['budget']:.0f}s)")
        if state["done"]:
            return state
    torch.backends.cudnn.benchmark = True  # fixed shapes per phase: let cuDNN pick its fastest 3D convs
    n_params = sum(p.numel() for p in vae.parameters())
    log(f"vae: {n_params / 1e6:.2f}M params, config {cfg['vae']}, train {tc}")
    rng = np.random.default_rng(seed * 1000 + state["step"])
    t_call, t_last_log, t_last_ckpt = time.time(), time.time(), time.time()
    loss_sum, loss_n, full = torch.zeros((), device=device), 0, False
    params = list(vae.parameters())
    vae.train()

    def save():
        common.save_checkpoint({"vae": vae.state_dict(), "opt": opt.state_dict(), "state": state}, path)

    def flush():
        state["losses"].append((state["step"], round(state["elapsed"], 2), (loss_sum / loss_n).item(), int(full)))
        loss_sum.zero_()

    while state["elapsed"] < state["budget"] and time.time() - t_call < seconds:
        t0 = time.time()
        progress = state["elapsed"] / state["budget"]
        if full != (progress >= 1.0 - tc["full_frac"]) and loss_n:
            flush()  # keep crop and whole-clip losses in separate points
            loss_n = 0
        full = progress >= 1.0 - tc["full_frac"]
        for g in opt.param_groups:
            g["lr"] = common.lr_at(state["step"], progress, tc["lr"], tc["warmup"], 0.1)
        x = make_batch(cfg, rng, full, device)
        with common.autocast(device, amp_dtype):
            loss, parts = vae_loss(vae, x, tc["kl"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        for p in params:  # a non-finite batch becomes a zero-gradient step
            if p.grad is not None:
                p.grad.nan_to_num_(0.0, 0.0, 0.0)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        state["step"] += 1
        loss_sum += loss.detach()
        loss_n += 1
        if loss_n >= 10:
            flush()  # syncs once per 10 steps
            loss_n = 0
        state["elapsed"] += time.time() - t0
        if time.time() - t_last_log > 15 and state["losses"]:
            log(f"vae: step {state['step']} {'full' if full else 'crop'} loss {state['losses'][-1][2]:.4f} "
                f"(l1 {parts['l1'].item():.4f} mse {parts['mse'].item():.5f} kl {parts['kl'].item():.2f}) "
                f"{state['elapsed']:.0f}/{state['budget']:.0f}s")
            t_last_log = time.time()
        if time.time() - t_last_ckpt > 60:
            save()
            t_last_ckpt = time.time()
    if loss_n:
        flush()
    state["done"] = state["elapsed"] >= state["budget"]
    torch.backends.cudnn.benchmark = False
    vae.eval()
    with torch.no_grad():
        x = make_batch(cfg, np.random.default_rng(99), True, device)
        mu, _ = vae.encode(x)
        rec = vae.decode(mu).clamp(-1, 1)
        mse = (rec - x).pow(2).mean().item()
    state["val_psnr_db"] = round(10 * np.log10(4.0 / max(mse, 1e-12)), 2)
    log(f"vae: {state['step']} steps in {state['elapsed']:.0f}s, val PSNR {state['val_psnr_db']} dB (full clips, mean latent)")
    save()
    return state


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", required=True)
    ap.add_argument("--seconds", type=float, required=True, help="wall time for this call")
    ap.add_argument("--budget", type=float, default=None, help="total VAE training time (default: --seconds)")
    ap.add_argument("--preset", default="default", choices=sorted(common.PRESETS))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    device, amp = common.device_and_autocast()
    log = common.Log(os.path.join(args.work, "train.log"))
    train_vae(common.preset(args.preset), args.work, args.seconds, args.budget or args.seconds, log, device, amp,
              args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
