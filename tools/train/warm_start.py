"""Prepares a training work folder that continues from a shipped model instead of starting from nothing.

The shipped model keeps the VAE decoder but not its encoder, and the DiT is tied to the decoder's latent space.
So: load the shipped files, train a new VAE encoder against the FROZEN shipped decoder (reconstruction loss of
train_vae.vae_loss; only encoder + conv1 learn), encode the training clips with it, normalise with the SHIPPED
latents_mean/std (the ones the DiT was trained with), and seed WORK/dit.pt with the shipped DiT + text encoder
(fresh AdamW, EMA starting at the shipped weights, step 0 so the LR warms up again). train_all.py then resumes
from WORK: the VAE phase is marked done, latents are reused, the DiT trains for the rest of its budget.
Usage: python3 tools/train/warm_start.py --from samples/models/vdit-tiny-t2v --work DIR [--encoder-seconds 100]
       python3 tools/train/train_all.py --work DIR --out OUT --budget 390 --dit-lr 3e-4
"""
import argparse
import os
import shutil
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

common.add_repo_paths()
import encode_latents  # noqa: E402
import export  # noqa: E402
import train_dit  # noqa: E402
import train_vae  # noqa: E402


def train_vae_part(cfg, vae, seconds, log, device, amp, seed, prefixes=("encoder.", "conv1.")):
    """Trains the parameters under `prefixes` (default vae.encoder + vae.conv1, against the frozen decoder) for
    `seconds`; the others stay frozen. Returns the training state (steps, losses, validation PSNR)."""
    tc = cfg["vae_train"]
    learn = [p for n, p in vae.named_parameters() if n.startswith(prefixes)]
    for n, p in vae.named_parameters():
        p.requires_grad_(n.startswith(prefixes))
    opt = torch.optim.AdamW(learn, lr=tc["lr"], betas=(0.9, 0.99), weight_decay=0.0)
    rng = np.random.default_rng(seed)
    state = {"step": 0, "elapsed": 0.0, "budget": seconds, "losses": [], "done": True, "warm_start": True}
    torch.backends.cudnn.benchmark = True
    vae.train()
    t_call, t_log = time.time(), time.time()
    while time.time() - t_call < seconds:
        progress = (time.time() - t_call) / seconds
        full = progress >= 1.0 - tc["full_frac"]
        for g in opt.param_groups:
            g["lr"] = common.lr_at(state["step"], progress, tc["lr"], tc["warmup"], 0.1)
        x = train_vae.make_batch(cfg, rng, full, device)
        with common.autocast(device, amp):
            loss, parts = train_vae.vae_loss(vae, x, tc["kl"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        for p in learn:
            if p.grad is not None:
                p.grad.nan_to_num_(0.0, 0.0, 0.0)
        torch.nn.utils.clip_grad_norm_(learn, 1.0)
        opt.step()
        state["step"] += 1
        if state["step"] % 10 == 0:
            state["losses"].append((state["step"], round(time.time() - t_call, 2), loss.item(), int(full)))
        if time.time() - t_log > 15:
            log(f"warm_start: {'+'.join(prefixes)} step {state['step']} {'full' if full else 'crop'} loss {loss.item():.4f} "
                f"(l1 {parts['l1'].item():.4f} mse {parts['mse'].item():.5f})")
            t_log = time.time()
    state["elapsed"] = round(time.time() - t_call, 1)
    torch.backends.cudnn.benchmark = False
    for p in vae.parameters():
        p.requires_grad_(True)
    vae.eval()
    with torch.no_grad():
        x = train_vae.make_batch(cfg, np.random.default_rng(99), True, device)
        mu, _ = vae.encode(x)
        mse = (vae.decode(mu).clamp(-1, 1) - x).pow(2).mean().item()
    state["val_psnr_db"] = round(10 * np.log10(4.0 / max(mse, 1e-12)), 2)
    log(f"warm_start: {'+'.join(prefixes)} {state['step']} steps in {state['elapsed']}s, the rest frozen, "
        f"val PSNR {state['val_psnr_db']} dB (full clips, mean latent)")
    return state


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--from", dest="model_dir", required=True, help="shipped model folder")
    ap.add_argument("--work", required=True, help="work folder for train_all.py (must not hold a run yet)")
    ap.add_argument("--encoder-seconds", type=float, default=100.0)
    ap.add_argument("--encode-seconds", type=float, default=40.0)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    for name in ("vae.pt", "latents.pt", "dit.pt"):
        if os.path.exists(os.path.join(args.work, name)):
            sys.exit(f"warm_start: {args.work}/{name} exists; use an empty work folder")
    os.makedirs(args.work, exist_ok=True)
    cfg = common.preset("default")
    log = common.Log(os.path.join(args.work, "train.log"))
    device, amp = common.device_and_autocast()
    dit, t5, vae, sp, mean, std, md = export.load_exported(args.model_dir, device)
    log(f"warm_start: from {args.model_dir} (DiT {sum(p.numel() for p in dit.parameters()) / 1e6:.2f}M params)")
    shutil.copyfile(os.path.join(args.model_dir, "tokenizer.model"), os.path.join(args.work, "tokenizer.model"))

    vae_state = train_vae_part(cfg, vae, args.encoder_seconds, log, device, amp, args.seed)
    fresh = torch.optim.AdamW(vae.parameters())  # train_vae loads an optimizer over all parameters on resume
    common.save_checkpoint({"vae": vae.state_dict(), "opt": fresh.state_dict(), "state": vae_state},
                           os.path.join(args.work, "vae.pt"))

    data = encode_latents.encode_dataset(cfg, args.work, args.encode_seconds, log, device, amp, args.seed + 1)
    log(f"warm_start: new encoder's latent mean {[round(v, 3) for v in data['mean'].tolist()]} std "
        f"{[round(v, 3) for v in data['std'].tolist()]}; normalising with the shipped ones instead: mean "
        f"{[round(v, 3) for v in mean.tolist()]} std {[round(v, 3) for v in std.tolist()]}")
    data["mean"], data["std"] = mean.clone(), std.clone()
    common.save_checkpoint(data, os.path.join(args.work, "latents.pt"))

    models = torch.nn.ModuleDict({"dit": dit, "t5": t5}).float()
    opt = torch.optim.AdamW(models.parameters(), lr=cfg["dit_train"]["lr"], betas=(0.9, 0.99), weight_decay=0.0)
    ema = common.EMA(models, cfg["dit_train"]["ema"])
    state = {"step": 0, "elapsed": 0.0, "budget": 0.0, "losses": [], "done": False, "warm_start": args.model_dir}
    counts = {k: sum(p.numel() for p in m.parameters()) for k, m in models.items()}
    common.save_checkpoint({"models": models.state_dict(), "opt": opt.state_dict(), "ema": ema.state_dict(),
                            "state": state, "counts": counts}, os.path.join(args.work, "dit.pt"))
    log(f"warm_start: wrote {args.work}/{{tokenizer.model,vae.pt,latents.pt,dit.pt}}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
