#!/usr/bin/python3
"""Builds tests/data/attention/ from the official method goldens (/work/shared/method_goldens/).

What is copied and how it is reshaped (nothing is recomputed; values are bit-identical):
* radial_golden.safetensors: every Radial block mask (HEAD 72788d4 and 04560d1), bit-packed along the key
  axis with numpy.packbits(bitorder="little") to fit the size budget (`caseK.block_mask_bits`
  [nB, ceil(nB/8)] uint8, `caseK.block_mask_04560d1_bits`), case 2's output `case2.o` f32 [2048, 1, 64];
  case parameters in the metadata (`caseK` JSON, copied from the golden metadata).
* radial_case2_in.safetensors: case 2's q, k, v (bf16 [2048, 1, 64], unchanged) for `vdit forward attention`.
* rettention_caseK_in.safetensors: q, k, v bf16 [S=3, N, B*H, d] - the golden [S, B, N, H, d] with the
  batch folded into the heads (head' = b*H + h; every (b, h) pair is independent and the band is shared).
* rettention_golden.safetensors: `caseK.o` [3, N, B*H, d], `caseK.rho` [3, B*H, N] (rho_after),
  `caseK.R` [N, B*H, d], `caseK.mask` [N, N] uint8, folded the same way; parameters in the metadata.
Run: /usr/bin/python3 tests/data/attention/make_attention_data.py [GOLDEN_DIR]
"""
import json
import os
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/method_goldens"

NP_OF = {"F32": np.float32, "U8": np.uint8, "I32": np.int32, "BF16": np.uint16}


def load(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, e in header.items():
        a, b = e["data_offsets"]
        tensors[name] = (e["dtype"], np.frombuffer(data[a:b], dtype=NP_OF[e["dtype"]]).reshape(e["shape"]))
    return tensors, meta


def save(path, tensors, meta):
    header, blobs, off = {}, [], 0
    for name, (dtype, arr) in tensors.items():
        raw = np.ascontiguousarray(arr).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    header["__metadata__"] = meta
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def fold(x):
    """[S, B, N, H, d] -> [S, N, B*H, d]"""
    S, B, N, H, d = x.shape
    return x.transpose(0, 2, 1, 3, 4).reshape(S, N, B * H, d)


def main():
    rad, rmeta = load(os.path.join(SRC, "radial_goldens.safetensors"))
    out, meta = {}, {"source": "radial_goldens.safetensors (method_goldens), bit-packed masks"}
    for k in range(5):
        meta[f"case{k}"] = rmeta[f"case{k}"]
        for suffix in ("block_mask", "block_mask_04560d1"):
            name = f"case{k}.out.{suffix}"
            if name in rad:
                out[f"case{k}.{suffix}_bits"] = ("U8", np.packbits(rad[name][1], axis=1, bitorder="little"))
    out["case2.o"] = rad["case2.out.o"]
    save(os.path.join(HERE, "radial_golden.safetensors"), out, meta)
    save(os.path.join(HERE, "radial_case2_in.safetensors"),
         {c: rad[f"case2.in.{c}"] for c in ("q", "k", "v")}, {"source": "radial_goldens.safetensors case2.in"})

    ret, tmeta = load(os.path.join(SRC, "rettention_goldens.safetensors"))
    out, meta = {}, {"source": "rettention_goldens.safetensors (method_goldens), batch folded into heads"}
    for k in range(2):
        meta[f"case{k}"] = tmeta[f"case{k}"]
        save(os.path.join(HERE, f"rettention_case{k}_in.safetensors"),
             {c: ("BF16", fold(ret[f"case{k}.in.{c}"][1])) for c in ("q", "k", "v")},
             {"source": f"rettention_goldens.safetensors case{k}.in, [S,B,N,H,d] -> [S,N,B*H,d]"})
        o = ret[f"case{k}.out.o"][1]
        rho = ret[f"case{k}.out.rho_after"][1]  # [S, B, H, N]
        R = ret[f"case{k}.out.R"][1]            # [B, N, H, d]
        out[f"case{k}.o"] = ("F32", fold(o))
        out[f"case{k}.rho"] = ("F32", rho.reshape(rho.shape[0], rho.shape[1] * rho.shape[2], rho.shape[3]))
        out[f"case{k}.R"] = ("F32", fold(R[None])[0])
        out[f"case{k}.mask"] = ret[f"case{k}.out.mask"]
    save(os.path.join(HERE, "rettention_golden.safetensors"), out, meta)


if __name__ == "__main__":
    main()
