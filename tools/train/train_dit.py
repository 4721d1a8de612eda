"""Trains the Wan DiT with flow matching on normalised VAE latents, jointly with the small T5 encoder; resumable.

The text encoder is trained together with the DiT from random init (it is 0.3M parameters, so this costs
nothing, and a frozen random encoder would hand the DiT arbitrary, badly scaled features). Captions are
replaced by the negative prompt "" (just </s>) with probability cfg_drop, so the same weights give the
unconditional branch for classifier-free guidance. Flow matching as Wan: x_t = (1-s) x0 + s eps,
target eps - x0, s = shift(u), t = int(1000 s). bf16 autocast on CUDA, fp32 master weights, EMA of both
models (exported). Writes WORK/dit.pt. Usage: python3 train_dit.py --work DIR --seconds S [--preset P].
"""
import argparse
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import flow  # noqa: E402
import train_tokenizer  # noqa: E402
from t5 import T5Encoder, encode_context  # noqa: E402
from wan_dit import WanModel  # noqa: E402


def build_models(cfg, vocab):
    """ModuleDict {'dit', 't5'} from the preset (text_dim = the encoder width)."""
    t5 = T5Encoder(vocab=vocab, **cfg["t5"])
    dit = WanModel(text_dim=cfg["t5"]["dim"], **cfg["dit"])
    return nn.ModuleDict({"dit": dit, "t5": t5})


def train_dit(cfg, work, data, seconds, budget, log, device, amp_dtype, seed=0, compile_step=False):
    """Trains until `budget` seconds in total (or `seconds` in this call). data: encode_latents' dict.
    `budget` is also the length of the LR schedule, so a run split over calls passes the same total each time.
    compile_step: torch.compile the forward + loss (falls back to eager if compiling or the first step fails)."""
    path = os.path.join(work, "dit.pt")
    tc, sc = cfg["dit_train"], cfg["sample"]
    text_len = cfg["dit"]["text_len"]
    sp = train_tokenizer.load(os.path.join(work, "tokenizer.model"))
    torch.manual_seed(seed)
    models = build_models(cfg, sp.get_piece_size()).to(device)
    opt = torch.optim.AdamW(models.parameters(), lr=tc["lr"], betas=(0.9, 0.99), weight_decay=0.0)
    ema = common.EMA(models, tc["ema"])
    state = {"step": 0, "elapsed": 0.0, "budget": budget, "losses": [], "done": False}
    if os.path.exists(path):
        ck = common.load_checkpoint(path, device)
        models.load_state_dict(ck["models"])
        opt.load_state_dict(ck["opt"])
        ema.load_state_dict(ck["ema"])
        state = ck["state"]
        state["budget"] = max(state["budget"], budget)
        log(f"dit: resumed at step {state['step']} ({state['elapsed']:.0f}s of {state['budget']:.0f}s)")
        if state["elapsed"] >= state["budget"]:
            return models, ema, state
    counts = {k: sum(p.numel() for p in m.parameters()) for k, m in models.items()}
    log(f"dit: {counts['dit'] / 1e6:.2f}M params, t5 {counts['t5'] / 1e6:.2f}M; dit {cfg['dit']}, t5 {cfg['t5']}, "
        f"train {tc}, shift {sc['shift']}")

    latents = data["latents"].to(device)  # fp16 [N, 16, T, h, w], unnormalised
    mean = data["mean"].to(device).view(1, -1, 1, 1, 1)
    std = data["std"].to(device).view(1, -1, 1, 1, 1)
    ids, mask = (torch.from_numpy(a).to(device) for a in train_tokenizer.tokenize(sp, data["captions"], text_len))
    neg_ids, neg_mask = (torch.from_numpy(a).to(device) for a in train_tokenizer.tokenize(sp, [sc["negative_prompt"]], text_len))
    n = latents.shape[0]
    gen = torch.Generator(device=device)
    gen.manual_seed(seed * 7919 + state["step"])
    t_call, t_last_log, t_last_ckpt = time.time(), time.time(), time.time()
    loss_sum, loss_n = torch.zeros((), device=device), 0  # summed on the device: no per-step sync
    params = list(models.parameters())
    models.train()

    def forward_loss(xt, t, bid, bmask, target):
        with common.autocast(device, amp_dtype):
            ctx = encode_context(models["t5"], bid, bmask)
            pred = models["dit"](xt, t, ctx)
        return (pred.float() - target).pow(2).mean()

    loss_fn, compiled_unproven = forward_loss, False
    if compile_step and hasattr(torch, "compile"):
        loss_fn, compiled_unproven = torch.compile(forward_loss), True
        log("dit: training step compiled with torch.compile (first steps include the compilation)")

    def save():
        common.save_checkpoint({"models": models.state_dict(), "opt": opt.state_dict(), "ema": ema.state_dict(),
                                "state": state, "counts": counts}, path)

    while state["elapsed"] < state["budget"] and time.time() - t_call < seconds:
        t0 = time.time()
        progress = state["elapsed"] / state["budget"]
        for g in opt.param_groups:
            g["lr"] = common.lr_at(state["step"], progress, tc["lr"], tc["warmup"], tc["min_lr_frac"])
        b = tc["batch"]
        idx = torch.randint(n, (b,), device=device, generator=gen)
        x0 = (latents[idx].float() - mean) / std
        drop = (torch.rand(b, device=device, generator=gen) < tc["cfg_drop"]).view(-1, 1)
        bid = torch.where(drop, neg_ids.expand(b, -1), ids[idx])
        bmask = torch.where(drop, neg_mask.expand(b, -1), mask[idx])
        sigma = flow.shift_sigma(torch.rand(b, device=device, generator=gen), sc["shift"]).clamp(1e-4, 0.9999)
        t = (sigma * 1000).long()  # the model sees int(1000 s), as at inference
        noise = torch.randn(x0.shape, device=device, generator=gen)
        xt, target = flow.flow_targets(x0, noise, sigma)
        opt.zero_grad(set_to_none=True)
        if compiled_unproven:  # the first compiled step: any failure falls back to the eager step
            try:
                loss = loss_fn(xt, t, bid, bmask, target)
                loss.backward()
                log(f"dit: compiled step ready after {time.time() - t0:.0f}s")
            except Exception as ex:  # noqa: BLE001 (compiler errors have many types)
                log(f"dit: torch.compile failed ({type(ex).__name__}: {str(ex)[:300]}); training eagerly")
                loss_fn = forward_loss
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(xt, t, bid, bmask, target)
                loss.backward()
            compiled_unproven = False
        else:
            loss = loss_fn(xt, t, bid, bmask, target)
            loss.backward()
        for p in params:  # a non-finite batch becomes a zero-gradient step instead of poisoning the weights
            if p.grad is not None:
                p.grad.nan_to_num_(0.0, 0.0, 0.0)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        ema.update(models)
        state["step"] += 1
        loss_sum += loss.detach()
        loss_n += 1
        if loss_n >= 25:
            mean_loss = (loss_sum / loss_n).item()  # syncs once per 25 steps
            loss_sum.zero_()
            loss_n = 0
            state["losses"].append((state["step"], round(state["elapsed"], 2), mean_loss))
            if not np.isfinite(mean_loss):
                log(f"dit: non-finite loss around step {state['step']} (those gradients were zeroed)")
        state["elapsed"] += time.time() - t0
        if time.time() - t_last_log > 15 and state["losses"]:
            sps = state["step"] / max(state["elapsed"], 1e-6)
            log(f"dit: step {state['step']} loss {state['losses'][-1][2]:.4f} lr {opt.param_groups[0]['lr']:.2e} "
                f"{sps:.1f} it/s {state['elapsed']:.0f}/{state['budget']:.0f}s")
            t_last_log = time.time()
        if time.time() - t_last_ckpt > 90:
            save()
            t_last_ckpt = time.time()
    if loss_n:
        state["losses"].append((state["step"], round(state["elapsed"], 2), (loss_sum / loss_n).item()))
    state["done"] = state["elapsed"] >= state["budget"]
    log(f"dit: {state['step']} steps in {state['elapsed']:.0f}s, last loss "
        f"{state['losses'][-1][2] if state['losses'] else float('nan'):.4f}")
    save()
    return models, ema, state


def ema_models(cfg, work, device="cpu"):
    """The EMA weights of WORK/dit.pt as a ModuleDict {'dit', 't5'} in eval mode."""
    ck = common.load_checkpoint(os.path.join(work, "dit.pt"), device)
    vocab = ck["ema"]["shadow"]["t5.token_embedding.weight"].shape[0]
    models = build_models(cfg, vocab).to(device)
    models.load_state_dict(ck["ema"]["shadow"])
    return models.eval()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", required=True)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--budget", type=float, default=None)
    ap.add_argument("--preset", default="default", choices=sorted(common.PRESETS))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    device, amp = common.device_and_autocast()
    log = common.Log(os.path.join(args.work, "train.log"))
    data = common.load_checkpoint(os.path.join(args.work, "latents.pt"))
    train_dit(common.preset(args.preset), args.work, data, args.seconds, args.budget or args.seconds, log, device,
              amp, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
