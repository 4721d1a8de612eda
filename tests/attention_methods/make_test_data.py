#!/usr/bin/python3
"""Cuts the method goldens (../shared/method_goldens, README there) down to tests/data/attention_methods/
(budget 4 MB). Run: /usr/bin/python3 tests/attention_methods/make_test_data.py [GOLDEN_DIR]

What is kept and how it is sliced:
  vmoba_subset.safetensors  inputs (bf16, all), every partition tensor (perm, cu_chunk, key_gate_weight,
                            gate), every case's `selected`; outputs `o` only for the token rows 0::4 of the
                            ORIGINAL order (case<K>.out.o_rows [120, 2, 64]).
  draft_subset.safetensors  case 1 only (1 frame 24x48 + 100 text tokens, r = 0.9): inputs, pooled Q/K, draft
                            map, masks, threshold, reorg/restore indices, and `o` rows 0::4 (o_rows).
                            Case 0 (2048 tokens) is checked from the full golden file only.
  paro_subset.safetensors   the 6 axis-order permutations and inverses; the calib case inputs, perm,
                            sparse_plan, block_mask_applied and o_kernel rows 0::2 of the token axis
                            (calib.out.o_kernel_rows [3, 220, 64], HND like the golden).
Every kept tensor is byte-identical to the golden's (slices are plain row selections); metadata is copied.
"""
import json
import os
import struct
import sys

import numpy as np

GOLD = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/method_goldens"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "attention_methods")

NP = {"F32": np.float32, "U8": np.uint8, "I32": np.int32, "BF16": np.uint16, "I64": np.int64}


def load(name):
    raw = open(os.path.join(GOLD, name), "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    tensors = {}
    for k, v in header.items():
        s, e = v["data_offsets"]
        a = np.frombuffer(raw[8 + n + s:8 + n + e], dtype=NP[v["dtype"]]).reshape(v["shape"])
        tensors[k] = (v["dtype"], a)
    return tensors, meta


def save(name, tensors, meta):
    header, blobs, off = {}, [], 0
    for k in sorted(tensors):
        dt, a = tensors[k]
        b = np.ascontiguousarray(a).tobytes()
        header[k] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = meta
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def main():
    os.makedirs(OUT, exist_ok=True)
    t, m = load("vmoba_goldens.safetensors")
    keep = {k: v for k, v in t.items() if not k.endswith(".out.o")}
    for c in range(9):
        dt, o = t["case%d.out.o" % c]
        keep["case%d.out.o_rows" % c] = (dt, o[0::4])
    m["subset"] = "tests/attention_methods/make_test_data.py: case<K>.out.o_rows = case<K>.out.o[0::4]"
    save("vmoba_subset.safetensors", keep, m)

    t, m = load("draft_goldens.safetensors")
    keep = {k: v for k, v in t.items() if k.startswith("case1.") and k != "case1.out.o"}
    dt, o = t["case1.out.o"]
    keep["case1.out.o_rows"] = (dt, o[0::4])
    m = {k: v for k, v in m.items() if k != "case0"}
    m["subset"] = "tests/attention_methods/make_test_data.py: case 1 only; case1.out.o_rows = case1.out.o[0::4]"
    save("draft_subset.safetensors", keep, m)

    t, m = load("paro_goldens.safetensors")
    keep = {k: t[k] for k in ["perm.out.perm", "perm.out.inv", "calib.in.q", "calib.in.k", "calib.in.v",
                              "calib.out.perm", "calib.out.sparse_plan", "calib.out.block_mask_applied"]}
    dt, o = t["calib.out.o_kernel"]
    keep["calib.out.o_kernel_rows"] = (dt, o[:, 0::2])
    m["subset"] = ("tests/attention_methods/make_test_data.py: perm/inv, calib inputs and plan; "
                   "calib.out.o_kernel_rows = calib.out.o_kernel[:, 0::2]")
    save("paro_subset.safetensors", keep, m)
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print("tests/data/attention_methods: %d bytes" % total)


if __name__ == "__main__":
    main()
