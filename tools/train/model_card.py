"""Installs a trained vdit-tiny-t2v run into samples/models/ and writes its model card from the run's numbers.

Reads RUN/summary.json (written by train_all.py), copies the model files (dit, text_encoder, vae, tokenizer,
recorded_io, loss.png and a reduced preview) to DEST and writes DEST/README.md: data, configs, training
time, losses, generation defaults, compute per video, the PyTorch evaluation and known limits. Every number
comes from summary.json or is computed here (FLOPs). Optional --cpp-eval adds a results.json of
tools/eval/evaluate.py (the C++ `vdit generate` run). Usage: python3 model_card.py --run DIR [--dest DIR]
"""
import argparse
import json
import os
import shutil
import sys


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dataset  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
FILES = ("dit.safetensors", "text_encoder.safetensors", "vae.safetensors", "tokenizer.model",
         "recorded_io.safetensors", "loss.png")


def dit_flops(cfg, video):
    """FLOPs of one DiT forward (2 per multiply-add), text k/v excluded (cached per prompt)."""
    d, f, n = cfg["dit"]["dim"], cfg["dit"]["ffn_dim"], cfg["dit"]["num_layers"]
    lt = cfg["dit"]["text_len"]
    tokens = ((video["frames"] - 1) // 4 + 1) * (video["height"] // 16) * (video["width"] // 16)
    per_layer = 8 * tokens * d * d + 4 * tokens * tokens * d + 4 * tokens * d * d + 4 * tokens * lt * d \
        + 4 * tokens * d * f
    return tokens, n * per_layer, 4 * tokens * tokens * d * n


def vae_decode_flops(cfg, video):
    """Conv FLOPs of one decode, counted with hooks at 1/4 of the size and scaled (convs are linear in pixels)."""
    import torch
    import torch.nn as nn
    from wan_vae import WanVAE_

    vae = WanVAE_(**cfg["vae"]).eval()
    total = [0]

    def hook(m, i, o):
        total[0] += 2 * o.numel() * m.weight[0].numel()

    for m in vae.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d)):
            m.register_forward_hook(hook)
    h, w = video["height"] // 16, video["width"] // 16
    with torch.no_grad():
        vae.decode(torch.zeros(1, 16, (video["frames"] - 1) // 4 + 1, h, w))
    return total[0] * 4


def table(summary):
    rows = ["| split | n | colour | motion | colour + motion | shape | background |", "|---|---|---|---|---|---|---|"]
    for split, s in summary.items():
        rows.append(f"| {split} | {s['n']} | {s['colour']:.0%} | {s['motion']:.0%} | {s['colour_and_motion']:.0%} | "
                    f"{s['shape']:.0%} | {s['background']:.0%} |")
    return "\n".join(rows)


def card(s, dest, cpp_eval=None):
    cfg, video, t = s["config"], s["config"]["video"], s["timing_s"]
    gen = s["generation_defaults"]
    tokens, fwd, attn = dit_flops(cfg, video)
    dec = vae_decode_flops(cfg, video)
    steps = gen["steps"]
    sizes = {f: os.path.getsize(os.path.join(dest, f)) for f in FILES if os.path.exists(os.path.join(dest, f))}
    total_mb = sum(sizes.values()) / 1e6
    p = s["params"]
    held = ", ".join(f"{c} {sh} {m}" for c, sh, m in dataset.HELD_OUT)
    ev = (s.get("eval_torch") or {}).get("summary")
    gt = s.get("judge_on_ground_truth") or {}
    lines = [
        "# vdit-tiny-t2v",
        "",
        "The built-in default model of vdit: a small text-to-video model with the Wan2.1 architecture (UMT5-style",
        "text encoder with a sentencepiece tokenizer, Wan DiT, Wan VAE decoder), trained from scratch on procedural",
        "videos of coloured shapes. `vdit generate --prompt \"...\"` uses it when no `--model` is given. It is the",
        "quick-start model, the end-to-end test of every code path and the model on which the sparse-attention",
        "methods' quality is measured. It only knows its toy world (below).",
        "",
        "## Files",
        "",
        "| file | contents | size |",
        "|---|---|---|",
        f"| dit.safetensors | Wan DiT, official `WanModel` names, f16; config and generation defaults in metadata | {sizes.get('dit.safetensors', 0) / 1e6:.2f} MB |",
        f"| text_encoder.safetensors | UMT5-style encoder, official Wan `T5Encoder` names, f16; config in metadata | {sizes.get('text_encoder.safetensors', 0) / 1e6:.2f} MB |",
        f"| vae.safetensors | Wan VAE `conv2.*` + `decoder.*` (official `WanVAE_` names; the encoder is not shipped), f16; config, `latents_mean`, `latents_std` in metadata | {sizes.get('vae.safetensors', 0) / 1e6:.2f} MB |",
        f"| tokenizer.model | sentencepiece BPE, {cfg['tokenizer']['vocab_size']} pieces, lowercasing (nmt_nfkc_cf); `<pad>`=0, `</s>`=1, `<unk>`=2 | {sizes.get('tokenizer.model', 0) / 1e6:.2f} MB |",
        f"| recorded_io.safetensors | float32 inputs/outputs of T5, DiT and VAE for the C++ parity tests (see its metadata) | {sizes.get('recorded_io.safetensors', 0) / 1e6:.2f} MB |",
        f"| loss.png | training loss curves | {sizes.get('loss.png', 0) / 1e6:.2f} MB |",
        "",
        f"Total {total_mb:.1f} MB.",
        "",
        "## Architecture",
        "",
        f"- **DiT** (Wan2.1 t2v, shared/docs/wan.md section 1): dim {cfg['dit']['dim']}, {cfg['dit']['num_heads']} heads of "
        f"{cfg['dit']['dim'] // cfg['dit']['num_heads']}, {cfg['dit']['num_layers']} layers, ffn {cfg['dit']['ffn_dim']}, "
        f"freq_dim {cfg['dit']['freq_dim']}, text_dim {cfg['t5']['dim']}, text_len {cfg['dit']['text_len']} "
        f"(the context is zero-padded to text_len rows, not 512), patch (1, 2, 2); {p['dit'] / 1e6:.2f}M parameters.",
        f"- **Text encoder** (UMT5 style, section 3): vocab {cfg['tokenizer']['vocab_size']}, dim {cfg['t5']['dim']}, "
        f"{cfg['t5']['num_heads']} heads, ffn {cfg['t5']['dim_ffn']}, {cfg['t5']['num_layers']} layers, "
        f"{cfg['t5']['num_buckets']} relative buckets per layer; {p['t5'] / 1e6:.2f}M parameters. Trained jointly with "
        "the DiT from random init (a frozen random encoder would give the DiT arbitrary features; training it costs nothing).",
        f"- **VAE** (section 4): dim {cfg['vae']['dim']}, z_dim 16, dim_mult {cfg['vae']['dim_mult']}, 2 res blocks, "
        f"temporal downsample {cfg['vae']['temperal_downsample']}: 4x8x8 compression; decoder {p['vae_decoder'] / 1e6:.2f}M "
        f"parameters (encoder + decoder {p['vae_total'] / 1e6:.2f}M). Latents are normalised with the dataset's "
        "per-channel mean/std (metadata) instead of Wan's constants.",
        "",
        "## Generation defaults (DiT metadata)",
        "",
        f"{video['width']}x{video['height']}, {video['frames']} frames at {video['fps']} fps -> latent "
        f"[16, {(video['frames'] - 1) // 4 + 1}, {video['height'] // 8}, {video['width'] // 8}] -> {tokens} video tokens "
        f"({tokens // 64} blocks of 64). {gen['sampler']} sampler, {steps} steps, shift {gen['shift']}, guidance "
        f"{gen['guidance']} (chosen by the training run on validation prompts from {cfg['sample']['guidance_sweep']}), "
        f"negative prompt \"{gen['negative_prompt']}\" (the unconditional branch was trained on the empty caption).",
        "",
        f"Compute per video: DiT {fwd / 1e9:.1f} GFLOP per forward (self-attention {attn / 1e9:.1f}), x2 for CFG x {steps} "
        f"steps = {2 * steps * fwd / 1e9:.0f} GFLOP; VAE decode {dec / 1e9:.0f} GFLOP (convolutions); text encoder "
        f"negligible. Total about {(2 * steps * fwd + dec) / 1e12:.2f} TFLOP.",
        "",
        "## Data",
        "",
        f"Procedural clips (tools/train/dataset.py), rendered on the fly: one object (80 %) or two (20 %) of "
        f"{len(dataset.SHAPES)} shapes ({', '.join(dataset.SHAPES)}) in {len(dataset.COLOURS)} colours "
        f"({', '.join(dataset.COLOURS)}) on a {'/'.join(dataset.BACKGROUNDS)} background, {len(dataset.MOTIONS)} motions "
        f"({', '.join(dataset.MOTIONS)}); random sizes, positions and speeds; captions such as \"a red circle moving "
        "left on a black background\" (two objects: \"... and a blue square growing on ...\").",
        f"Held out of all training (VAE and DiT): the colour x shape x motion triples {held}.",
        "",
        "## Training",
        "",
        f"One {s['device']} (torch {s['torch']}), one call of `tools/train/train_all.py` with a {s['budget_s']:.0f} s budget, "
        f"{t['total']:.0f} s in all: tokenizer {t['tokenizer']} s, VAE {t['vae']} s ({s['vae']['step']} steps; crops "
        f"{cfg['vae_train']['crop']}x{cfg['vae_train']['crop']}x{cfg['vae_train']['frames']} then whole clips; validation "
        f"PSNR {s['vae'].get('val_psnr_db')} dB), latent encoding {t['encode']} s ({s['latents']['clips']} clips), DiT + "
        f"text encoder {t['dit']} s ({s['dit']['step']} steps of batch {cfg['dit_train']['batch']}, AdamW lr "
        f"{cfg['dit_train']['lr']}, bf16 autocast, EMA {cfg['dit_train']['ema']}; final loss {s['dit']['final_loss']:.4f}), "
        f"guidance sweep {t['sweep']} s, export {t['export']} s, evaluation {t['eval']} s.",
        "Flow matching as Wan: x_t = (1 - s) x0 + s eps, target eps - x0, s drawn uniformly and shifted with the "
        f"inference shift {gen['shift']}, t = int(1000 s); 10 % of captions replaced by the empty prompt.",
        "",
        "![loss curves](loss.png)",
        "",
        "## Evaluation",
        "",
        "tools/eval/evaluate.py on the 24 prompts of tools/eval/prompts.json (12 held-in, 12 held-out triples, fixed "
        "seeds), judged by tools/eval/judge.py (colour by hue, motion by centroid track, shape by contour fill).",
        "",
        "PyTorch reference sampler (fp32, exported f16 weights, torch noise), in the training run:",
        "",
        table(ev) if ev else "(not available: the evaluation step of the run failed; see summary.json's log)",
        "",
        ("The judge on the ground-truth clips of the same prompts: "
         f"colour + motion {gt['all']['colour_and_motion']:.0%}, shape {gt['all']['shape']:.0%}.") if gt else "",
    ]
    if cpp_eval:
        lines += ["", f"C++ `vdit generate` ({cpp_eval.get('example_command') or 'vdit'}):", "",
                  table(cpp_eval["summary"])]
    lines += [
        "",
        "## Known limits",
        "",
        "- Only the toy world: the listed colours, shapes, motions and backgrounds; other words are split into letters "
        "by the tokenizer and mean nothing to the model.",
        "- The judge handles one object; two-object prompts are trained but not evaluated.",
        "- Small and briefly trained: edges are soft, shapes are the weakest attribute, some seeds give a wrong "
        "colour or motion (see the evaluation).",
        "- The VAE encoder is not shipped (text-to-video needs only the decoder).",
        "- The sampler's noise differs between vdit and PyTorch for the same seed, so videos differ sample by sample.",
        "",
        "## Reproduce",
        "",
        "```",
        f"python3 tools/train/train_all.py --out OUT --budget {s['budget_s']:.0f}   # one GPU, about {t['total'] / 60:.0f} min",
        "python3 tools/train/model_card.py --run OUT --dest samples/models/vdit-tiny-t2v",
        "```",
        "",
    ]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="folder written by train_all.py")
    ap.add_argument("--dest", default=os.path.join(REPO, "samples", "models", "vdit-tiny-t2v"))
    ap.add_argument("--cpp-eval", help="results.json of tools/eval/evaluate.py --backend vdit")
    args = ap.parse_args()
    with open(os.path.join(args.run, "summary.json")) as f:
        s = json.load(f)
    os.makedirs(args.dest, exist_ok=True)
    for name in FILES:
        if os.path.abspath(args.run) != os.path.abspath(args.dest):
            shutil.copyfile(os.path.join(args.run, name), os.path.join(args.dest, name))
    cpp = json.load(open(args.cpp_eval)) if args.cpp_eval else None
    with open(os.path.join(args.dest, "README.md"), "w") as f:
        f.write(card(s, args.dest, cpp))
    print(f"wrote {args.dest}/README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
