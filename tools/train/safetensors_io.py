"""Tiny pure-Python safetensors reader/writer (the `safetensors` package is not available everywhere).

File layout: 8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}} with an
optional "__metadata__" string->string map, then the raw little-endian tensor bytes. The header is padded
with spaces to a multiple of 8 bytes, as the reference writer does. Tensors may be numpy arrays or torch
tensors (torch is imported lazily, only for bfloat16 and torch inputs). Writes are atomic (tmp + rename).
"""
import json
import os
import struct

import numpy as np

_NP_TO_ST = {
    np.dtype("float64"): "F64", np.dtype("float32"): "F32", np.dtype("float16"): "F16",
    np.dtype("int64"): "I64", np.dtype("int32"): "I32", np.dtype("int16"): "I16", np.dtype("int8"): "I8",
    np.dtype("uint8"): "U8", np.dtype("bool"): "BOOL",
}
_ST_TO_NP = {v: k for k, v in _NP_TO_ST.items()}


def _to_numpy(t):
    """Returns (safetensors dtype string, contiguous little-endian numpy array of the raw bytes)."""
    if isinstance(t, np.ndarray):
        a = np.ascontiguousarray(t)
        if a.dtype not in _NP_TO_ST:
            raise TypeError(f"unsupported numpy dtype {a.dtype}")
        return _NP_TO_ST[a.dtype], a.astype(a.dtype.newbyteorder("<"), copy=False)
    import torch  # torch tensors only

    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        return "BF16", t.view(torch.int16).numpy().view(np.uint16)
    return _to_numpy(t.numpy())


def save_file(tensors, path, metadata=None):
    """Writes `tensors` (name -> numpy array or torch tensor) and string `metadata` to `path`."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name in sorted(tensors):
        dtype, arr = _to_numpy(tensors[name])
        raw = arr.tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    hbytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hbytes += b" " * ((8 - len(hbytes) % 8) % 8)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hbytes)))
        f.write(hbytes)
        for raw in blobs:
            f.write(raw)
    os.replace(tmp, path)


def read_header(path):
    """Returns (header dict without metadata, metadata dict, byte offset of the data section)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n).decode("utf-8"))
    metadata = header.pop("__metadata__", {}) or {}
    return header, metadata, 8 + n


def load_file(path, as_torch=False):
    """Returns (tensors, metadata). numpy arrays by default (BF16 as float32); torch tensors if as_torch."""
    header, metadata, base = read_header(path)
    out = {}
    with open(path, "rb") as f:
        data = f.read()
    for name, info in header.items():
        b, e = info["data_offsets"]
        raw = data[base + b:base + e]
        shape = tuple(info["shape"])
        if info["dtype"] == "BF16":
            u16 = np.frombuffer(raw, dtype="<u2").reshape(shape)
            if as_torch:
                import torch

                out[name] = torch.from_numpy(u16.astype(np.int16)).view(torch.bfloat16)
                continue
            arr = (u16.astype(np.uint32) << 16).view(np.float32)
        else:
            arr = np.frombuffer(raw, dtype=_ST_TO_NP[info["dtype"]].newbyteorder("<")).reshape(shape)
            arr = arr.astype(arr.dtype.newbyteorder("="))
        if as_torch:
            import torch

            arr = torch.from_numpy(np.array(arr))
        out[name] = arr
    return out, metadata
