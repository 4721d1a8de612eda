"""Checks our PyTorch modules (wan_dit, t5, wan_vae, flow) against the official-code goldens.

Loads the tiny random-weight models of ../shared/wan_tiny_golden (official names, made with the official
Wan2.1 code) into our modules with strict key matching, runs the recorded inputs in float32 on the CPU and
prints max|diff|/max|ref| per output; exits 1 if any exceeds 1e-4. Usage: python3 tools/train/check_goldens.py
[--golden DIR]. Does not test training code.
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import flow  # noqa: E402
from safetensors_io import load_file  # noqa: E402
from t5 import T5Encoder, encode_context  # noqa: E402
from wan_dit import WanModel, pad_context  # noqa: E402
from wan_vae import WanVAE_  # noqa: E402

TOL = 1e-4  # fp32 vs fp32 (official GPU run): wan.md measured 7.6e-7 for CPU vs GPU


def rel(a, b):
    a, b = a.double(), b.double()
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()


def literal(s):
    import ast

    return ast.literal_eval(s)


def load_into(module, path):
    w, md = load_file(path, as_torch=True)
    sd = module.state_dict()
    own = {k: w[k] for k in sd}  # KeyError names a missing tensor
    extra = sorted(set(w) - set(sd))
    module.load_state_dict(own, strict=True)
    return extra, md


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--golden", default=os.path.join(here, "..", "..", "..", "shared", "wan_tiny_golden"))
    args = ap.parse_args()
    g = args.golden
    torch.manual_seed(0)
    results = []

    # DiT
    _, md = load_file(os.path.join(g, "dit_tiny_weights.safetensors"))
    cfg = {k: literal(md[k]) for k in ("dim", "ffn_dim", "num_heads", "num_layers", "in_dim", "out_dim",
                                       "freq_dim", "text_dim", "text_len", "patch_size", "eps")}
    dit = WanModel(**cfg).eval()
    extra, _ = load_into(dit, os.path.join(g, "dit_tiny_weights.safetensors"))
    assert not extra, extra
    gold, _ = load_file(os.path.join(g, "dit_tiny_golden.safetensors"), as_torch=True)
    with torch.no_grad():
        x, t = gold["in.x"][None], gold["in.t"]
        for branch in ("cond", "uncond"):
            ctx = pad_context([gold[f"in.context_{branch}"]], cfg["text_len"])
            out = dit(x, t, ctx)[0]
            results.append((f"dit {branch} out", rel(out, gold[f"{branch}.out"])))
        results.append(("dit cfg5", rel(gold["uncond.out"] + 5 * (gold["cond.out"] - gold["uncond.out"]),
                                        gold["cfg5.noise_pred"])))

    # T5
    _, md = load_file(os.path.join(g, "t5_tiny_weights.safetensors"))
    t5 = T5Encoder(**{k: literal(md[k]) for k in ("vocab", "dim", "dim_attn", "dim_ffn", "num_heads",
                                                  "num_layers", "num_buckets")}).eval()
    extra, _ = load_into(t5, os.path.join(g, "t5_tiny_weights.safetensors"))
    assert not extra, extra
    gold, _ = load_file(os.path.join(g, "t5_tiny_golden.safetensors"), as_torch=True)
    with torch.no_grad():
        ids, mask = gold["in.ids"], gold["in.mask"]
        full = t5(ids, mask)
        n = int(mask.sum())
        results.append(("t5 out.full", rel(full, gold["out.full"])))
        results.append(("t5 out.trimmed", rel(encode_context(t5, ids, mask)[0, :n], gold["out.trimmed"])))
        bucket = t5.blocks[0].pos_embedding.bucket(torch.arange(512)[None] - torch.arange(512)[:, None])
        results.append(("t5 rel buckets", float((bucket != gold["const.rel_bucket_512"]).sum())))

    # VAE (decoder; the golden file holds the whole official key set, encoder included)
    _, md = load_file(os.path.join(g, "vae_tiny_weights.safetensors"))
    vae = WanVAE_(dim=literal(md["dim"]), z_dim=literal(md["z_dim"]), dim_mult=literal(md["dim_mult"]),
                  num_res_blocks=literal(md["num_res_blocks"]),
                  temperal_downsample=literal(md["temperal_downsample"])).eval()
    extra, _ = load_into(vae, os.path.join(g, "vae_tiny_weights.safetensors"))
    assert not extra, extra
    gold, _ = load_file(os.path.join(g, "vae_tiny_golden.safetensors"), as_torch=True)
    with torch.no_grad():
        z = gold["in.z"] * gold["const.std"].view(1, -1, 1, 1, 1) + gold["const.mean"].view(1, -1, 1, 1, 1)
        video = vae.decode(z)
        results.append(("vae video_preclamp", rel(video, gold["out.video_preclamp"])))
        results.append(("vae video", rel(video.clamp(-1, 1), gold["out.video"])))
        mu, _ = vae.encode(video.clamp(-1, 1))
        results.append(("vae encode shape ok", 0.0 if tuple(mu.shape) == tuple(z.shape) else 1.0))

    # Schedule and UniPC against the official solver loops
    gold, _ = load_file(os.path.join(g, "sched_pipe_golden.safetensors"), as_torch=True)
    for shift in (3, 5, 8):
        sig, ts = flow.inference_schedule(50, float(shift))
        results.append((f"sigmas shift{shift}", rel(torch.tensor(sig), gold[f"unipc50_shift{shift}.sigmas"])))
        ts = torch.tensor(ts)
        results.append((f"timesteps shift{shift}",
                        float((ts != gold[f"unipc50_shift{shift}.timesteps"].long()).sum())))
    for name, steps in (("unipc50_shift5_loop", 50), ("unipc6_shift5_loop", 6)):
        if f"{name}.x" not in gold:
            continue
        xs, vs = gold[f"{name}.x"], gold[f"{name}.v"]
        solver = flow.UniPC(flow.inference_sigmas(steps, 5.0))
        x, worst = xs[0], 0.0
        for i in range(steps):
            x = solver.step(i, x, vs[i])
            worst = max(worst, rel(x, xs[i + 1]))
        results.append((f"{name} x", worst))

    # End to end: tiny DiT, 6 UniPC steps, shift 5, CFG 5, then the tiny VAE (Wan's latent constants)
    dgold, _ = load_file(os.path.join(g, "dit_tiny_golden.safetensors"), as_torch=True)
    vgold, _ = load_file(os.path.join(g, "vae_tiny_golden.safetensors"), as_torch=True)
    with torch.no_grad():
        ctx_c = pad_context([dgold["in.context_cond"]], cfg["text_len"])
        ctx_u = pad_context([dgold["in.context_uncond"]], cfg["text_len"])
        lat = flow.sample(dit, gold["pipe.in.noise"][None], ctx_c, ctx_u, steps=6, shift=5.0, guidance=5.0)
        results.append(("pipe latent", rel(lat[0], gold["pipe.out.latent"])))
        z = lat * vgold["const.std"].view(1, -1, 1, 1, 1) + vgold["const.mean"].view(1, -1, 1, 1, 1)
        results.append(("pipe video_preclamp", rel(vae.decode(z)[0], gold["pipe.out.video_preclamp"])))

    bad = 0
    for name, r in results:
        ok = r <= TOL
        bad += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name:28s} {r:.3e}")
    print(f"{len(results) - bad}/{len(results)} within {TOL:g}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
