#!/usr/bin/env python3
"""Writes a small Wan VAE decoder checkpoint as a PyTorch .pth and the same tensors as .safetensors (bf16).

The tensor names and shapes are the released decoder's (tests/data/vae/manifest_vae_decoder.json, official
names) with every width that is a multiple of 96 scaled by dim/96, so the .pth has the released structure
at base width `dim` and no config anywhere: a loader must infer it. Weights are seeded random
(N(0, 1/fan_in), biases 0.05·N, gammas 1 + 0.1·N), stored bf16 to keep the files small and to exercise
the loaders' dtype conversion. Needs torch (torch.save writes the zip format the
official checkpoint uses); the safetensors twin is written by hand (no safetensors package).

  make_vae_pth_fixture.py tests/data/vae/manifest_vae_decoder.json tests/data/vae/vae_dim4_decoder --dim 4
"""
import argparse
import collections
import json
import os
import struct

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("manifest")
    ap.add_argument("out_stem")
    ap.add_argument("--dim", type=int, default=4)
    ap.add_argument("--seed", type=int, default=4)
    args = ap.parse_args()
    official = json.load(open(args.manifest))["official"]
    g = torch.Generator().manual_seed(args.seed)
    sd = collections.OrderedDict()
    for name in sorted(official):
        shape = [d * args.dim // 96 if d % 96 == 0 else d for d in official[name]]
        x = torch.randn(shape, generator=g)
        if name.endswith("gamma"):
            x = 1 + 0.1 * x
        elif len(shape) == 1:
            x = 0.05 * x
        else:
            fan_in = 1
            for d in shape[1:]:
                fan_in *= d
            x = x / fan_in ** 0.5
        sd[name] = x.to(torch.bfloat16).contiguous()
    torch.save(sd, args.out_stem + ".pth")

    header, blobs, off = {}, [], 0
    for name, t in sd.items():
        b = t.view(torch.int16).numpy().tobytes()  # raw bf16 bits, little endian
        header[name] = {"dtype": "BF16", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(args.out_stem + ".safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    n = sum(t.numel() for t in sd.values())
    for ext in (".pth", ".safetensors"):
        print(f"{args.out_stem}{ext}: {len(sd)} tensors, {n} params, {os.path.getsize(args.out_stem + ext)} bytes")


if __name__ == "__main__":
    main()
