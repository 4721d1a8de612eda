"""PyTorch reference text-to-video pipeline for the trained model, and a PNG contact sheet of its samples.

TorchPipeline runs tokenizer -> T5 -> DiT (UniPC/Euler + CFG) -> VAE decode -> uint8 frames, from in-memory
models or from an exported model directory. Noise is torch.randn from a CPU generator seeded per prompt,
so it differs from the C++ sampler's noise for the same seed. Also: validation prompts for choosing the
default guidance (disjoint seeds from tools/eval/prompts.json), and `contact_sheet`.
Usage: python3 preview.py --model DIR --out sheet.png [--prompt TEXT ...] [--steps N --guidance G].
"""
import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import dataset  # noqa: E402
import flow  # noqa: E402
import train_tokenizer  # noqa: E402
from t5 import encode_context  # noqa: E402
from wan_dit import pad_context  # noqa: E402


class TorchPipeline:
    def __init__(self, dit, t5, vae, sp, mean, std, video, sample, device, amp_dtype=None):
        self.dit, self.t5, self.vae, self.sp = dit, t5, vae, sp
        self.mean = mean.to(device).view(1, -1, 1, 1, 1)
        self.std = std.to(device).view(1, -1, 1, 1, 1)
        self.video, self.sample, self.device, self.amp = dict(video), dict(sample), device, amp_dtype
        self.text_len = dit.text_len

    @classmethod
    def from_model_dir(cls, model_dir, device="cpu", amp_dtype=None):
        import export

        dit, t5, vae, sp, mean, std, md = export.load_exported(model_dir, device)
        video = {k: int(md[k]) for k in ("height", "width", "frames", "fps")}
        sample = {"steps": int(md["steps"]), "shift": float(md["shift"]), "guidance": float(md["guidance"]),
                  "sampler": md["sampler"], "negative_prompt": md["negative_prompt"]}
        return cls(dit, t5, vae, sp, mean, std, video, sample, device, amp_dtype)

    def context(self, texts):
        ids, mask = (torch.from_numpy(a).to(self.device) for a in train_tokenizer.tokenize(self.sp, texts, self.text_len))
        out = encode_context(self.t5, ids, mask)
        return pad_context([o[:int(m.sum())] for o, m in zip(out, mask)], self.text_len)

    @torch.no_grad()
    def generate(self, prompts, seeds, batch=16, **overrides):
        """-> uint8 [B, T, H, W, 3] RGB. overrides: steps, shift, guidance, sampler, negative_prompt."""
        s = dict(self.sample, **overrides)
        shape = common.latent_shape(self.video)
        out = []
        for i in range(0, len(prompts), batch):
            ps, ss = prompts[i:i + batch], seeds[i:i + batch]
            noise = torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(int(sd))) for sd in ss])
            lat = flow.sample(self.dit, noise.to(self.device), self.context(ps),
                              self.context([s["negative_prompt"]] * len(ps)), s["steps"], s["shift"],
                              s["guidance"], s["sampler"], self.amp)
            with common.autocast(self.device, self.amp):
                video = self.vae.decode(lat * self.std + self.mean).float().clamp(-1, 1)
            # Wan's cache_video: (x + 1) / 2 * 255, truncated to uint8
            out.append(((video + 1) / 2 * 255).to(torch.uint8).permute(0, 2, 3, 4, 1).cpu().numpy())
        return np.concatenate(out)


def validation_prompts(n_held_in=12, seed=7):
    """Prompts for choosing generation defaults: every held-out triple once more and random held-in ones, with
    backgrounds and seeds that differ from tools/eval/prompts.json."""
    rng = np.random.default_rng(seed)
    bgs = list(dataset.BACKGROUNDS)
    out = []
    for i, (c, s, m) in enumerate(dataset.HELD_OUT):
        out.append({"prompt": f"{dataset.article(c)} {c} {s} {m} on a {bgs[(i + 1) % 3]} background",
                    "split": "held-out", "seed": 5000 + i})
    while len(out) < len(dataset.HELD_OUT) + n_held_in:
        spec = dataset.sample_spec(rng, (64, 64), 5, split="train", two_objects=False)
        out.append({"prompt": dataset.caption(spec), "split": "held-in", "seed": 6000 + len(out)})
    return out


def contact_sheet(videos, labels, path, n_frames=5):
    """Rows of n_frames evenly spaced frames per video with a label line above; written as PNG."""
    import cv2

    rows = []
    for v, text in zip(videos, labels):
        idx = np.linspace(0, len(v) - 1, n_frames).round().astype(int)
        row = np.concatenate([v[i] for i in idx], axis=1)
        bar = np.full((18, row.shape[1], 3), 255, np.uint8)
        cv2.putText(bar, text[:160], (3, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        rows.append(np.concatenate([bar, row], axis=0))
    cv2.imwrite(path, cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="exported model directory")
    ap.add_argument("--out", required=True, help="PNG path")
    ap.add_argument("--prompt", action="append", help="prompt (repeatable); default: tools/eval/prompts.json")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int)
    ap.add_argument("--guidance", type=float)
    args = ap.parse_args()
    device, amp = common.device_and_autocast()
    pipe = TorchPipeline.from_model_dir(args.model, device, amp)
    if args.prompt:
        prompts, seeds = args.prompt, [args.seed + i for i in range(len(args.prompt))]
    else:
        import json

        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "eval", "prompts.json")
        entries = json.load(open(path))["prompts"]
        prompts, seeds = [e["prompt"] for e in entries], [e["seed"] for e in entries]
    kw = {k: v for k, v in (("steps", args.steps), ("guidance", args.guidance)) if v is not None}
    videos = pipe.generate(prompts, seeds, **kw)
    contact_sheet(videos, prompts, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
