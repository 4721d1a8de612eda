"""Exports the trained model as vdit reads it: f16 safetensors with official names and the config in metadata.

Writes OUT/{dit,text_encoder,vae}.safetensors, OUT/tokenizer.model and OUT/recorded_io.safetensors. The DiT and
T5 weights are the EMA weights; the VAE file holds what text-to-video needs (conv2.*, decoder.*), plus
latents_mean/latents_std. recorded_io is computed on the CPU in float32 by our PyTorch modules loaded back
from the exported f16 files, so a correct C++ f32 forward matches it to ~1e-6. Metadata values are strings:
integers, "true"/"false", JSON for lists. Usage: python3 export.py --work DIR --out DIR [--preset P].
"""
import argparse
import json
import os
import shutil
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import train_tokenizer  # noqa: E402
from safetensors_io import load_file, save_file  # noqa: E402
from t5 import T5Encoder, encode_context  # noqa: E402
from wan_dit import WanModel  # noqa: E402
from wan_vae import WanVAE_  # noqa: E402

RECORD_PROMPT = "a red circle moving right on a black background"
TOKENIZER_TESTS = ("A Red  Circle moving LEFT on a black background",
                   "an orange square growing and a blue triangle moving up on a white background",
                   "a dog &amp; a cat jumping", "")


def _s(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return json.dumps(list(v))
    return str(v)


def dit_metadata(dit_cfg, video, sample):
    md = {"model_type": "t2v", "in_dim": 16, "out_dim": 16, "eps": 1e-6, "patch_size": [1, 2, 2],
          "qk_norm": True, "cross_attn_norm": True, "window_size": [-1, -1]}
    md.update({k: dit_cfg[k] for k in ("dim", "ffn_dim", "num_heads", "num_layers", "freq_dim", "text_dim",
                                       "text_len")})
    md.update(height=video["height"], width=video["width"], frames=video["frames"], fps=video["fps"],
              steps=sample["steps"], shift=float(sample["shift"]), guidance=float(sample["guidance"]),
              sampler=sample["sampler"], negative_prompt=sample["negative_prompt"], name="vdit-tiny-t2v")
    return {k: _s(v) for k, v in md.items()}


def t5_metadata(t5_cfg, text_len):
    md = dict(t5_cfg, shared_pos=False, text_len=text_len, max_distance=128, eps=1e-6, pad_id=0, eos_id=1,
              tokenizer="tokenizer.model")
    return {k: _s(v) for k, v in md.items()}


def vae_metadata(vae_cfg, mean, std):
    md = dict(vae_cfg, attn_scales=[], components="conv2, decoder (the encoder is not shipped)")
    md = {k: _s(v) for k, v in md.items()}
    md["latents_mean"] = json.dumps([float(np.float32(v)) for v in mean])
    md["latents_std"] = json.dumps([float(np.float32(v)) for v in std])
    return md


def f16(sd, prefix=""):
    return {k[len(prefix):]: v.detach().to(torch.float16).cpu() for k, v in sd.items() if k.startswith(prefix)}


def load_exported(model_dir, device="cpu"):
    """The exported files -> (dit, t5, vae, sp, mean, std, dit_metadata), float32 modules in eval mode."""
    w, md = load_file(os.path.join(model_dir, "dit.safetensors"), as_torch=True)
    ints = {k: int(md[k]) for k in ("dim", "ffn_dim", "num_heads", "num_layers", "in_dim", "out_dim", "freq_dim",
                                    "text_dim", "text_len")}
    dit = WanModel(patch_size=tuple(json.loads(md["patch_size"])), eps=float(md["eps"]), **ints)
    dit.load_state_dict({k: v.float() for k, v in w.items()})
    tw, tmd = load_file(os.path.join(model_dir, "text_encoder.safetensors"), as_torch=True)
    t5 = T5Encoder(**{k: int(tmd[k]) for k in ("vocab", "dim", "dim_attn", "dim_ffn", "num_heads", "num_layers",
                                               "num_buckets")})
    t5.load_state_dict({k: v.float() for k, v in tw.items()})
    vw, vmd = load_file(os.path.join(model_dir, "vae.safetensors"), as_torch=True)
    vae = WanVAE_(dim=int(vmd["dim"]), z_dim=int(vmd["z_dim"]), dim_mult=json.loads(vmd["dim_mult"]),
                  num_res_blocks=int(vmd["num_res_blocks"]), temperal_downsample=json.loads(vmd["temperal_downsample"]))
    missing, unexpected = vae.load_state_dict({k: v.float() for k, v in vw.items()}, strict=False)
    assert not unexpected and all(k.startswith(("encoder.", "conv1.")) for k in missing), (missing, unexpected)
    mean = torch.tensor(json.loads(vmd["latents_mean"]), dtype=torch.float32)
    std = torch.tensor(json.loads(vmd["latents_std"]), dtype=torch.float32)
    sp = train_tokenizer.load(os.path.join(model_dir, "tokenizer.model"))
    return dit.to(device).eval(), t5.to(device).eval(), vae.to(device).eval(), sp, mean, std, md


@torch.no_grad()
def record_io(model_dir, z_real, path):
    """Small input/output pairs for the C++ parity tests (float32, CPU)."""
    dit, t5, vae, sp, mean, std, md = load_exported(model_dir)
    text_len = int(md["text_len"])
    ids, mask = (torch.from_numpy(a) for a in train_tokenizer.tokenize(sp, [RECORD_PROMPT], text_len))
    nids, nmask = (torch.from_numpy(a) for a in train_tokenizer.tokenize(sp, [md["negative_prompt"]], text_len))
    full = t5(ids, mask)[0]
    lc, lu = int(mask.sum()), int(nmask.sum())
    ctx = encode_context(t5, ids, mask)[0, :lc]
    ctx_u = encode_context(t5, nids, nmask)[0, :lu]
    g = torch.Generator().manual_seed(1234)
    x = torch.randn(16, 3, 16, 24, generator=g)  # non-square grid: catches h/w mix-ups in RoPE and patching
    t = torch.tensor([937], dtype=torch.long)
    pad = torch.zeros(2, text_len, ctx.shape[1])
    pad[0, :lc], pad[1, :lu] = ctx, ctx_u
    out = dit(torch.stack([x, x]), torch.cat([t, t]), pad)
    h0, w0 = (z_real.shape[2] - 4) // 2, (z_real.shape[3] - 6) // 2
    z = z_real[:, :3, h0:h0 + 4, w0:w0 + 6].float()  # normalised latent crop [16, 3, 4, 6] of a real clip
    video = vae.decode(z[None] * std.view(1, -1, 1, 1, 1) + mean.view(1, -1, 1, 1, 1))[0]
    # Inputs keep the plain names that `vdit forward dit|t5|vae --inputs` read (x, t, context; ids, mask; z);
    # outputs are prefixed by component because both the DiT and the T5 outputs would be "out".
    tensors = {"ids": ids[0], "mask": mask[0], "t5.out": full, "t5.out_trimmed": ctx,
               "x": x, "t": t, "context": ctx, "dit.out": out[0],
               "context_uncond": ctx_u, "dit.out_uncond": out[1],
               "z": z, "vae.video": video.clamp(-1, 1), "vae.video_preclamp": video}
    for i, text in enumerate(TOKENIZER_TESTS):  # for the C++ tokenizer: cleaning, case folding, unknown words
        tids, tmask = train_tokenizer.tokenize(sp, [text], text_len)
        tensors[f"tok.ids_{i}"] = torch.from_numpy(tids[0])
        tensors[f"tok.mask_{i}"] = torch.from_numpy(tmask[0])
    meta = {f"tok.text_{i}": text for i, text in enumerate(TOKENIZER_TESTS)}
    meta.update({"prompt": RECORD_PROMPT, "negative_prompt": md["negative_prompt"],
            "t5": "ids, mask [text_len] -> t5.out [text_len, dim] (every row); t5.out_trimmed = first mask.sum() rows",
            "dit": "x [16,F,H,W], t [1] int64 timestep, context [Lc, text_dim] (zero-padded to text_len inside) -> "
                   "dit.out; context_uncond (the negative prompt) -> dit.out_uncond",
            "vae": "z normalised [16,T,h,w] (decode input z*latents_std + latents_mean) -> vae.video [3,1+4(T-1),8h,8w] "
                   "clamped to [-1,1]; vae.video_preclamp",
            "precision": "float32 CPU reference, weights read back from the exported f16 files",
            "tok": "tok.ids_i/tok.mask_i [text_len]: tokenizer output for metadata tok.text_i (pieces, </s>=1, pad 0)"})
    save_file({k: v.contiguous() for k, v in tensors.items()}, path, meta)
    return {k: list(v.shape) for k, v in tensors.items()}


def export(cfg, work, out, sample, log):
    """sample: the generation defaults to store (steps, shift, guidance, sampler, negative_prompt)."""
    os.makedirs(out, exist_ok=True)
    ck = common.load_checkpoint(os.path.join(work, "dit.pt"))
    shadow = ck["ema"]["shadow"]
    data = common.load_checkpoint(os.path.join(work, "latents.pt"))
    vae_sd = common.load_checkpoint(os.path.join(work, "vae.pt"))["vae"]
    dit_cfg = dict(cfg["dit"], text_dim=cfg["t5"]["dim"])
    vocab = shadow["t5.token_embedding.weight"].shape[0]
    save_file(f16(shadow, "dit."), os.path.join(out, "dit.safetensors"), dit_metadata(dit_cfg, cfg["video"], sample))
    save_file(f16(shadow, "t5."), os.path.join(out, "text_encoder.safetensors"),
              t5_metadata(dict(cfg["t5"], vocab=vocab), cfg["dit"]["text_len"]))
    dec = {k: v for k, v in vae_sd.items() if k.startswith(("conv2.", "decoder."))}
    save_file(f16(dec), os.path.join(out, "vae.safetensors"),
              vae_metadata(cfg["vae"], data["mean"].tolist(), data["std"].tolist()))
    shutil.copyfile(os.path.join(work, "tokenizer.model"), os.path.join(out, "tokenizer.model"))
    z_real = (data["latents"][0].float() - data["mean"].view(-1, 1, 1, 1)) / data["std"].view(-1, 1, 1, 1)
    shapes = record_io(out, z_real, os.path.join(out, "recorded_io.safetensors"))
    sizes = {f: os.path.getsize(os.path.join(out, f)) for f in sorted(os.listdir(out))}
    log(f"export: {out}: " + ", ".join(f"{f} {s / 1e6:.2f} MB" for f, s in sizes.items())
        + f"; total {sum(sizes.values()) / 1e6:.2f} MB")
    return {"files": sizes, "recorded_io": shapes}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--preset", default="default", choices=sorted(common.PRESETS))
    args = ap.parse_args()
    cfg = common.preset(args.preset)
    export(cfg, args.work, args.out, cfg["sample"], common.Log())
    return 0


if __name__ == "__main__":
    sys.exit(main())
