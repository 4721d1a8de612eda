"""One command for the whole default model: tokenizer -> VAE -> latents -> DiT -> export -> evaluation.

Runs inside a wall-time budget (--budget seconds, everything included): the VAE and the latent encoding get
fixed shares, the DiT gets the rest minus a reserve for the end. Every phase resumes from WORK (default
build/vdit_train) if a previous call was cut short. The end: choose the default guidance on validation
prompts (PyTorch sampler), export f16 safetensors + recorded I/O, generate and judge tools/eval/prompts.json,
and write OUT/{dit,text_encoder,vae}.safetensors, tokenizer.model, recorded_io.safetensors, loss.png,
preview.png, summary.json (configs, timings, losses, accuracies, the log) -- eight files, one flat folder.
Usage: python3 tools/train/train_all.py --out DIR [--budget 440] [--preset default|small|tiny] [--work DIR] [--dit-lr LR]
       [--dit-schedule S] [--compile]
To continue from a shipped model instead of starting from nothing, prepare WORK with tools/train/warm_start.py.
"""
import argparse
import os
import sys
import time
import traceback

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

common.add_repo_paths()
import encode_latents  # noqa: E402
import evaluate  # noqa: E402  (tools/eval)
import export  # noqa: E402
import preview  # noqa: E402
import train_dit  # noqa: E402
import train_tokenizer  # noqa: E402
import train_vae  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def plot_losses(vae_state, dit_state, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    v = np.array([row[:3] for row in vae_state["losses"]], dtype=np.float64)
    d = np.array(dit_state["losses"], dtype=np.float64)
    if len(v):
        full = np.array([row[3] for row in vae_state["losses"]], dtype=bool)
        mk = "." if len(v) < 30 else None
        axes[0].semilogy(v[~full, 0], v[~full, 2], marker=mk, label="crops")
        axes[0].semilogy(v[full, 0], v[full, 2], marker=mk, label="whole clips")
        axes[0].legend()
        axes[0].set_title(f"VAE: L1 + MSE + KL ({int(v[-1, 0])} steps, {v[-1, 1]:.0f} s)")
    if len(d):
        axes[1].plot(d[:, 0], d[:, 2], lw=0.8, alpha=0.5, label="mean of 25 steps")
        k = max(1, len(d) // 40)
        if len(d) > k:
            sm = np.convolve(d[:, 2], np.ones(k) / k, mode="valid")
            axes[1].plot(d[k - 1:, 0], sm, lw=1.5, label=f"smoothed ({k})")
        axes[1].legend()
        axes[1].set_ylim(0, min(2.0, float(d[:, 2].max()) * 1.05))
        axes[1].set_title(f"DiT + T5: flow-matching MSE ({int(d[-1, 0])} steps, {d[-1, 1]:.0f} s)")
    for ax in axes:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def judge_videos(videos, entries):
    results = []
    for v, e in zip(videos, entries):
        e = dict(e, expected=evaluate.dataset.parse_caption(e["prompt"]))
        r = {"prompt": e["prompt"], "split": e["split"], "seed": e["seed"], "seconds": None}
        r.update(evaluate.judge_entry(v, e))
        results.append(r)
    return results


def translation_accuracy(results):
    """Motion accuracy on the prompts that ask for moving left/right/up/down (the hardest attribute to learn)."""
    hits = [r["score"]["motion"] for r in results if "score" in r and " moving " in r["prompt"]]
    return sum(hits) / max(1, len(hits)), len(hits)


def choose_guidance(pipe, cfg, log):
    """Default guidance = best colour+motion accuracy on the validation prompts (ties: the preset's)."""
    entries = preview.validation_prompts()
    prompts, seeds = [e["prompt"] for e in entries], [e["seed"] for e in entries]
    table, best = {}, None
    for g in cfg["sample"]["guidance_sweep"]:
        res = judge_videos(pipe.generate(prompts, seeds, batch=24, guidance=g), entries)
        summ = evaluate.summarize(res)
        table[str(g)] = summ
        acc = summ["all"]["colour_and_motion"]
        direction, n_dir = translation_accuracy(res)
        log(f"sweep: guidance {g}: colour+motion {acc:.0%} (held-in {summ['held-in']['colour_and_motion']:.0%}, "
            f"held-out {summ['held-out']['colour_and_motion']:.0%}), translation direction {direction:.0%} of "
            f"{n_dir}, shape {summ['all']['shape']:.0%}")
        key = (acc, -abs(g - cfg["sample"]["guidance"]))
        if best is None or key > best[0]:
            best = (key, g)
    return best[1], table


def evaluate_exported(cfg, out, device, log, guidance):
    """Generates tools/eval/prompts.json with the exported files (fp32), judges, writes preview.png."""
    entries = evaluate.load_prompts(os.path.join(REPO, "tools", "eval", "prompts.json"))
    pipe = preview.TorchPipeline.from_model_dir(out, device, None)
    videos = pipe.generate([e["prompt"] for e in entries], [e["seed"] for e in entries], batch=24)
    results = judge_videos(videos, entries)
    summary = evaluate.summarize(results)
    evaluate.print_table(results, summary)
    labels = [f"[{r['split']}] {r['prompt']} -> {r['verdict']['colour']} / {r['verdict']['shape']} / "
              f"{r['verdict']['motion']}" for r in results]
    preview.contact_sheet(videos, labels, os.path.join(out, "preview.png"))
    size = (cfg["video"]["height"], cfg["video"]["width"])
    gt = [evaluate.dataset.render_clip(evaluate.dataset.spec_from_caption(e["prompt"], e["seed"], size,
                                                                         cfg["video"]["frames"])) for e in entries]
    summary_gt = evaluate.summarize(judge_videos(gt, entries))
    for split, s in summary.items():
        log(f"eval (PyTorch, exported f16 weights, guidance {guidance}): {split}: "
            + ", ".join(f"{k} {s[k]:.0%}" for k in evaluate.KEYS))
    log(f"judge on the ground-truth clips of the same prompts: colour+motion "
        f"{summary_gt['all']['colour_and_motion']:.0%}, shape {summary_gt['all']['shape']:.0%}")
    return {"eval_torch": {"summary": summary, "results": results}, "judge_on_ground_truth": summary_gt}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="final files (flat folder)")
    ap.add_argument("--work", default=os.path.join(REPO, "build", "vdit_train"), help="checkpoints, latents")
    ap.add_argument("--budget", type=float, default=490.0, help="wall seconds for everything")
    ap.add_argument("--preset", default="default", choices=sorted(common.PRESETS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--vae-frac", type=float, default=0.38, help="share of the budget for VAE training")
    ap.add_argument("--encode-frac", type=float, default=0.08, help="cap on the share for latent encoding")
    ap.add_argument("--reserve", type=float, default=45.0, help="seconds kept for sweep, export and evaluation")
    ap.add_argument("--dit-lr", type=float, default=None, help="peak DiT learning rate (default: the preset's)")
    ap.add_argument("--dit-schedule", type=float, default=None,
                    help="DiT seconds over which the LR decays, summed over calls (default: this call's DiT share); "
                         "set it to the total of a run split over several calls so that the schedule continues")
    ap.add_argument("--compile", action="store_true",
                    help="torch.compile the DiT + encoder training step (CUDA; falls back to eager on failure)")
    args = ap.parse_args()
    t_start = time.time()
    import matplotlib  # first use may build a font cache: pay for it inside the budget, before the DiT's share

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401
    os.makedirs(args.work, exist_ok=True)
    os.makedirs(args.out, exist_ok=True)
    cfg = common.preset(args.preset)
    if args.dit_lr:
        cfg["dit_train"]["lr"] = args.dit_lr
    log = common.Log(os.path.join(args.work, "train.log"))
    device, amp = common.device_and_autocast()
    gpu = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
    log(f"train_all: preset {args.preset}, budget {args.budget:.0f}s, device {gpu}, torch {torch.__version__}")
    timing = {}

    t0 = time.time()
    tok_path = os.path.join(args.work, "tokenizer.model")
    if not os.path.exists(tok_path):
        train_tokenizer.train(tok_path, cfg["tokenizer"]["vocab_size"])
    timing["tokenizer"] = round(time.time() - t0, 1)

    t0 = time.time()
    vae_state = train_vae.train_vae(cfg, args.work, 1e9, args.vae_frac * args.budget, log, device, amp, args.seed)
    timing["vae"] = round(time.time() - t0, 1)

    t0 = time.time()
    data = encode_latents.encode_dataset(cfg, args.work, args.encode_frac * args.budget, log, device, amp,
                                         args.seed + 1)
    timing["encode"] = round(time.time() - t0, 1)

    t0 = time.time()
    dit_budget = max(1.0, args.budget - args.reserve - (time.time() - t_start))
    models, _, dit_state = train_dit.train_dit(cfg, args.work, data, dit_budget, args.dit_schedule or dit_budget, log,
                                               device, amp, args.seed, compile_step=args.compile)
    timing["dit"] = round(time.time() - t0, 1)
    del models
    if device == "cuda":
        torch.cuda.empty_cache()

    def guarded(name, fn, fallback=None):
        """Runs one end step; a failure is logged and the run still writes its files and summary."""
        t1 = time.time()
        try:
            return fn()
        except Exception as ex:  # noqa: BLE001 (the model files matter more than any one report)
            log(f"train_all: {name} failed: {type(ex).__name__}: {ex}\n{traceback.format_exc()}")
            return fallback
        finally:
            timing[name] = round(time.time() - t1, 1)

    ema = train_dit.ema_models(cfg, args.work, device)
    vae = encode_latents.load_vae(args.work, cfg, device)
    sp = train_tokenizer.load(tok_path)
    pipe = preview.TorchPipeline(ema["dit"], ema["t5"], vae, sp, data["mean"], data["std"], cfg["video"],
                                 cfg["sample"], device, None)
    guidance, sweep = guarded("sweep", lambda: choose_guidance(pipe, cfg, log), (cfg["sample"]["guidance"], {}))
    sample = dict(cfg["sample"], guidance=guidance)
    exported = guarded("export", lambda: export.export(cfg, args.work, args.out, sample, log), {})
    evaluation = guarded("eval", lambda: evaluate_exported(cfg, args.out, device, log, guidance), {})
    guarded("plot", lambda: plot_losses(vae_state, dit_state, os.path.join(args.out, "loss.png")))
    timing["total"] = round(time.time() - t_start, 1)
    log(f"train_all: done in {timing['total']:.0f}s: {timing}")
    summary = {
        "preset": args.preset, "config": cfg, "device": gpu, "torch": torch.__version__, "budget_s": args.budget,
        "timing_s": timing, "generation_defaults": sample,
        "vae": {k: vae_state[k] for k in ("step", "elapsed", "val_psnr_db") if k in vae_state},
        "dit": {"step": dit_state["step"], "elapsed": dit_state["elapsed"],
                "final_loss": dit_state["losses"][-1][2] if dit_state["losses"] else None},
        "latents": {"clips": int(data["latents"].shape[0]), "shape": list(data["latents"].shape[1:]),
                    "mean": data["mean"].tolist(), "std": data["std"].tolist()},
        "params": {"dit": sum(p.numel() for p in ema["dit"].parameters()),
                   "t5": sum(p.numel() for p in ema["t5"].parameters()),
                   "vae_decoder": sum(v.numel() for v in vae.decoder_state_dict().values()),
                   "vae_total": sum(p.numel() for p in vae.parameters())},
        "files": exported.get("files"), "recorded_io": exported.get("recorded_io"),
        "guidance_sweep": sweep, "eval_torch": evaluation.get("eval_torch"),
        "judge_on_ground_truth": evaluation.get("judge_on_ground_truth"),
        "losses": {"vae": vae_state["losses"], "dit": dit_state["losses"]}, "log": log.lines,
    }
    common.write_json(summary, os.path.join(args.out, "summary.json"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
