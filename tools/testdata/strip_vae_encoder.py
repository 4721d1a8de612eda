#!/usr/bin/env python3
"""Copies a safetensors file keeping only some tensors, byte for byte, with its metadata.

Default: the Wan VAE decoder tensors and the top-level `conv2` (official names; `post_quant_conv` and
`decoder.` for diffusers names), i.e. the encoder side is dropped, as tests/data/vae needs. `--keep`
replaces that selection with name prefixes (e.g. to cut goldens down). Pure Python (no safetensors
package): 8-byte little-endian header length, JSON header, raw data. Tensor bytes are not converted.

  strip_vae_encoder.py ../shared/wan_tiny_golden/vae_tiny_weights.safetensors tests/data/vae/vae_tiny_decoder.safetensors
  strip_vae_encoder.py IN OUT --keep pipe.out.latent --keep pipe.out.video_preclamp
"""
import argparse
import json
import os
import struct
import sys

DECODER_PREFIXES = ("decoder.", "conv2.", "post_quant_conv.")


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        sys.exit(f"{path}: too short for a safetensors file")
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        sys.exit(f"{path}: header length {n} runs past the end of the file ({len(data)} bytes)")
    header = json.loads(data[8:8 + n])
    return header, data[8 + n:]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--keep", action="append", help="keep tensors whose name starts with this (repeatable)")
    args = ap.parse_args()

    header, body = read_safetensors(args.input)
    prefixes = tuple(args.keep) if args.keep else DECODER_PREFIXES
    meta = header.pop("__metadata__", None)
    names = [k for k in header if k.startswith(prefixes)]
    if not names:
        sys.exit(f"{args.input}: no tensor starts with any of {prefixes}")
    names.sort(key=lambda k: header[k]["data_offsets"][0])

    out_header, chunks, offset = {}, [], 0
    if meta is not None:
        out_header["__metadata__"] = meta
    for k in names:
        b, e = header[k]["data_offsets"]
        out_header[k] = {"dtype": header[k]["dtype"], "shape": header[k]["shape"], "data_offsets": [offset, offset + e - b]}
        chunks.append(body[b:e])
        offset += e - b
    hjson = json.dumps(out_header, separators=(",", ":")).encode()
    hjson += b" " * ((8 - len(hjson) % 8) % 8)  # keep the data 8-byte aligned
    tmp = args.output + ".tmp-%d" % os.getpid()
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for c in chunks:
            f.write(c)
    os.replace(tmp, args.output)
    print(f"{args.output}: {len(names)} of {len(header)} tensors, {os.path.getsize(args.output)} bytes")


if __name__ == "__main__":
    main()
