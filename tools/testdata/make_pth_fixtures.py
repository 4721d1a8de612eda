#!/usr/bin/env python3
"""Writes small PyTorch .pth fixtures (torch.save) and, for each, the expected tensors as a safetensors
file written by a pure-python writer, so the C++ reader can be checked bit for bit against torch.

    python3 tools/testdata/make_pth_fixtures.py OUTDIR [--malformed MALDIR]

OUTDIR gets (every one also as NAME.expected.safetensors):
  tensors.pth     a module state dict (with torch's _metadata) plus every dtype vdit reads (f32 f16 bf16
                  f64 i64 i32 i16 i8 u8 bool), a transpose, a column slice (offset, non-contiguous), a row
                  slice (offset, contiguous), two views of one storage, a tied tensor, an expand (stride 0),
                  a 0-dim and an empty tensor
  nested.pth      {"state_dict": <module state dict>, "epoch": 7, "note": "tiny"}: flattened with a dot
  parameters.pth  state_dict(keep_vars=True): nn.Parameter values (torch._utils._rebuild_parameter)
  protocol4.pth   tensors.pth's dict saved with pickle_protocol=4 (STACK_GLOBAL, MEMOIZE, FRAME, ...)
  zip64.pth       tensors.pth re-packed with zip64 records (as an archive over 4 GiB has them)
With --malformed, MALDIR gets malicious and broken .pth files and their expected error substrings in
MALDIR/EXPECTED.json (merged with what is there). Needs only torch (1.13 or 2.x); deterministic (seeded).
"""
import argparse
import collections
import io
import json
import os
import pickle
import struct
import sys
import zipfile

import torch

# ---------------------------------------------------------------------------------------------
# Expected values: a minimal safetensors writer (no safetensors package needed).

ST_DTYPES = {
    torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
    torch.bool: "BOOL",
}


def tensor_bytes(t):
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: same bits as int16
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def write_safetensors(path, tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    for name, t in tensors.items():
        b = tensor_bytes(t)
        header[name] = {"dtype": ST_DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


# ---------------------------------------------------------------------------------------------
# Valid fixtures.

class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(6, 4)
        self.norm = torch.nn.LayerNorm(4)
        self.conv = torch.nn.Conv2d(2, 3, 3)
        self.register_buffer("steps", torch.arange(5, dtype=torch.int64))


def make_state_dict():
    torch.manual_seed(1234)
    sd = Tiny().state_dict()  # an OrderedDict with torch's _metadata attribute
    sd["f32"] = torch.randn(3, 5)
    sd["f16"] = torch.randn(4, 3).half()
    sd["bf16"] = torch.randn(2, 3, 4).bfloat16()
    sd["f64"] = torch.randn(3, dtype=torch.float64)
    sd["i64"] = torch.arange(-6, 6, dtype=torch.int64).reshape(3, 4) * 1000003
    sd["i32"] = torch.tensor([-(2**31), -1, 0, 2**31 - 1], dtype=torch.int32)
    sd["i16"] = torch.tensor([[-32768, 7], [12, 32767]], dtype=torch.int16)
    sd["i8"] = torch.tensor([-128, -3, 0, 127], dtype=torch.int8)
    sd["u8"] = torch.tensor([0, 1, 200, 255], dtype=torch.uint8)
    sd["bool"] = torch.tensor([True, False, True])
    sd["transposed"] = torch.randn(4, 6).t()                 # stride (1, 6): materialized
    base = torch.randn(10, 4)
    sd["rows"] = base[3:7]                                   # storage offset 12, contiguous
    sd["cols"] = base[:, 1:3]                                # storage offset 1, stride (4, 1)
    shared = torch.randn(24)
    sd["shared_a"] = shared.view(4, 6)                       # two views of one storage
    sd["shared_b"] = shared.view(2, 3, 4)
    sd["tied"] = sd["f32"]                                   # the same tensor under two names
    sd["expanded"] = torch.randn(3, 1).expand(3, 4)          # stride (1, 0)
    sd["scalar"] = torch.tensor(3.25)
    sd["empty"] = torch.zeros(0, 3)
    return sd


def save_with_expected(outdir, name, obj, expected, metadata=None, **save_kwargs):
    torch.save(obj, os.path.join(outdir, name + ".pth"), **save_kwargs)
    write_safetensors(os.path.join(outdir, name + ".expected.safetensors"), expected, metadata)


def repack_zip64(src, dst):
    """Re-writes a stored zip with zip64 extra fields, a zip64 end record and locator, and 0xFFFFFFFF
    markers in the 32-bit fields, as a writer does for archives over 4 GiB."""
    with zipfile.ZipFile(src) as z:
        items = [(i.filename, z.read(i.filename), i.CRC) for i in z.infolist()]
    out, central = bytearray(), bytearray()
    for name, data, crc in items:
        n = name.encode()
        offset = len(out)
        extra = struct.pack("<HHQQ", 1, 16, len(data), len(data))
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 0, 0, 0, crc, 0xFFFFFFFF, 0xFFFFFFFF, len(n), len(extra))
        out += n + extra + data
        cextra = struct.pack("<HHQQQ", 1, 24, len(data), len(data), offset)
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 0, 0, 0, crc, 0xFFFFFFFF, 0xFFFFFFFF,
                               len(n), len(cextra), 0, 0, 0, 0, 0xFFFFFFFF)
        central += n + cextra
    cd_offset = len(out)
    out += central
    end64 = len(out)
    out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, len(items), len(items), len(central), cd_offset)
    out += struct.pack("<IIQI", 0x07064B50, 0, end64, 1)
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    with open(dst, "wb") as f:
        f.write(out)


def make_valid(outdir):
    os.makedirs(outdir, exist_ok=True)
    sd = make_state_dict()
    save_with_expected(outdir, "tensors", sd, sd)
    save_with_expected(outdir, "protocol4", sd, sd, pickle_protocol=4)
    repack_zip64(os.path.join(outdir, "tensors.pth"), os.path.join(outdir, "zip64.pth"))
    write_safetensors(os.path.join(outdir, "zip64.expected.safetensors"), sd)

    torch.manual_seed(99)
    m = Tiny()
    inner = m.state_dict()
    nested = {"state_dict": inner, "epoch": 7, "note": "tiny"}
    flat = collections.OrderedDict(("state_dict." + k, v) for k, v in inner.items())
    save_with_expected(outdir, "nested", nested, flat, metadata={"epoch": 7, "note": "tiny"})

    params = m.state_dict(keep_vars=True)
    assert any(isinstance(v, torch.nn.Parameter) for v in params.values())
    save_with_expected(outdir, "parameters", params, collections.OrderedDict((k, v.detach()) for k, v in params.items()))


# ---------------------------------------------------------------------------------------------
# Malformed and malicious fixtures.

class Reduce:
    """Pickles as REDUCE(fn, args): how a malicious checkpoint runs code in a plain unpickler."""

    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


class FakeStorage:
    def __init__(self, type_name, key, numel):
        self.type_name, self.key, self.numel = type_name, key, numel


class StoragePickler(pickle.Pickler):
    """Writes persistent ids the way torch.save does, for hand-made tensor records."""

    def persistent_id(self, obj):
        if isinstance(obj, FakeStorage):
            return ("storage", getattr(torch, obj.type_name), obj.key, "cpu", obj.numel)
        return None


def fake_tensor(storage, offset, size, stride):
    return Reduce(torch._utils._rebuild_tensor_v2, (storage, offset, size, stride, False, collections.OrderedDict()))


def dumps(obj, protocol=2):
    buf = io.BytesIO()
    StoragePickler(buf, protocol=protocol).dump(obj)
    return buf.getvalue()


def write_zip(path, records, compress=()):
    """A torch-style archive: records {name: bytes} under "archive/", stored unless listed in compress."""
    with zipfile.ZipFile(path, "w") as z:
        for name, data in records.items():
            method = zipfile.ZIP_DEFLATED if name in compress else zipfile.ZIP_STORED
            z.writestr(zipfile.ZipInfo("archive/" + name), data, compress_type=method)


def f32_bytes(n):
    return struct.pack("<%df" % n, *[float(i) for i in range(n)])


def make_malformed(maldir, outdir):
    os.makedirs(maldir, exist_ok=True)
    expected = {}

    def add(name, substring):
        expected[name] = substring
        return os.path.join(maldir, name)

    good = open(os.path.join(outdir, "tensors.pth"), "rb").read()
    with open(add("pth_truncated.pth", "no zip end-of-central-directory record"), "wb") as f:
        f.write(good[: len(good) * 3 // 5])
    with open(add("pth_not_zip.pth", "no zip end-of-central-directory record"), "wb") as f:
        f.write(b"this is not a checkpoint at all, just some text\n" * 3)
    legacy = add("pth_legacy.pth", "legacy (pre-1.6, non-zip) torch.save file")
    try:
        torch.save({"w": torch.ones(2)}, legacy, _use_new_zipfile_serialization=False)
    except Exception:  # a torch without the legacy writer: its opening, the pickled magic number, is enough
        open(legacy, "wb").write(b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.")

    ok_pickle = dumps(collections.OrderedDict(w=fake_tensor(FakeStorage("FloatStorage", "0", 4), 0, (4,), (1,))))
    write_zip(add("pth_missing_data_pkl.pth", "\"<archive>/data.pkl\" is missing"), {"data/0": f32_bytes(4), "version": b"3\n"})
    write_zip(add("pth_missing_storage.pth", "zip entry \"archive/data/0\" is missing"), {"data.pkl": ok_pickle, "version": b"3\n"})
    write_zip(add("pth_storage_too_small.pth", "holds 12 bytes but the pickle says 4 f32 elements (16 bytes)"),
              {"data.pkl": ok_pickle, "data/0": f32_bytes(3)})
    write_zip(add("pth_compressed.pth", "is compressed (method 8)"), {"data.pkl": ok_pickle, "data/0": f32_bytes(4)},
              compress=("data.pkl",))
    write_zip(add("pth_big_endian.pth", "\"big\" byte order"), {"data.pkl": ok_pickle, "byteorder": b"big", "data/0": f32_bytes(4)})
    write_zip(add("pth_torchscript.pth", "TorchScript archive"),
              {"data.pkl": ok_pickle, "constants.pkl": dumps(()), "data/0": f32_bytes(4)})
    # Flip one byte of the pickle inside a stored zip: the CRC check must catch it.
    path = add("pth_bad_crc.pth", "fails its CRC-32 check")
    write_zip(path, {"data.pkl": ok_pickle, "data/0": f32_bytes(4)})
    raw = bytearray(open(path, "rb").read())
    raw[raw.index(b"_rebuild_tensor_v2") + 3] ^= 0x20
    open(path, "wb").write(raw)
    # A central directory offset past the end of the file.
    path = add("pth_cd_out_of_range.pth", "zip central directory")
    raw = bytearray(good)
    end = raw.rindex(b"PK\x05\x06")
    if raw[end - 20:end - 16] == b"PK\x06\x07":  # torch >= 2 writes zip64 records: corrupt the zip64 one
        end64 = struct.unpack_from("<Q", raw, end - 12)[0]
        struct.pack_into("<Q", raw, end64 + 48, 1 << 40)
    else:
        struct.pack_into("<I", raw, end + 16, 0x7FFFFFF0)
    open(path, "wb").write(raw)

    def pickle_case(name, data, substring):
        write_zip(add(name, substring), {"data.pkl": data, "data/0": f32_bytes(4), "version": b"3\n"})

    # Views that reach past their storage (4 floats).
    st = FakeStorage("FloatStorage", "0", 4)
    pickle_case("pth_view_out_of_range.pth", dumps({"w": fake_tensor(st, 0, (3, 2), (2, 1))}), "reaches outside its storage")
    pickle_case("pth_offset_out_of_range.pth", dumps({"w": fake_tensor(st, 4, (1,), (1,))}), "reaches outside its storage")
    pickle_case("pth_expand_bomb.pth", dumps({"w": fake_tensor(st, 0, (1 << 15, 1 << 15), (0, 0))}),
                "would need copies beyond")  # a stride-0 view of 4 floats asking for 4 GiB
    pickle_case("pth_zero_dim_overflow.pth", dumps({"w": fake_tensor(st, 0, (0, 1 << 48, 1 << 48), (1, 1, 1))}),
                "more than 2^60 elements")  # empty, but multiplying the shape out overflows int64
    pickle_case("pth_storage_key_path.pth", dumps({"w": fake_tensor(FakeStorage("FloatStorage", "../0", 4), 0, (4,), (1,))}),
                "is not a plain record name")
    pickle_case("pth_unknown_storage_type.pth",
                dumps({"w": fake_tensor(FakeStorage("ComplexFloatStorage", "0", 2), 0, (2,), (1,))}),
                "'torch.ComplexFloatStorage' at byte")
    pickle_case("pth_not_a_dict.pth", dumps([fake_tensor(st, 0, (4,), (1,))]), "not a state dict")
    # Malicious pickles: each refused at the global, naming it; nothing runs.
    pickle_case("pth_global_os_system.pth", b"\x80\x02cos\nsystem\nq\x00X\x0a\x00\x00\x00echo pwnedq\x01\x85q\x02Rq\x03.",
                "pickle GLOBAL 'os.system' at byte 2 is not allowed")
    pickle_case("pth_reduce_posix_system.pth", dumps({"w": Reduce(os.system, ("echo pwned",))}),
                "'%s.system'" % os.system.__module__)
    pickle_case("pth_builtins_eval.pth", dumps(Reduce(eval, ("print('pwned')",))), "pickle GLOBAL '__builtin__.eval'")  # protocol 2 maps builtins back to Python 2's name
    pickle_case("pth_stack_global_exec.pth", dumps(Reduce(exec, ("print('pwned')",)), protocol=4),
                "pickle STACK_GLOBAL 'builtins.exec'")
    torch.save({"w": torch.ones(2), "evil": Reduce(os.system, ("echo pwned",))},
               add("pth_state_dict_with_payload.pth", "'%s.system'" % os.system.__module__))
    torch.save(torch.nn.Linear(2, 2), add("pth_whole_module.pth", "'torch.nn.modules.linear.Linear'"))
    pickle_case("pth_rebuild_tensor_v1.pth", b"\x80\x02ctorch._utils\n_rebuild_tensor\n.",
                "'torch._utils._rebuild_tensor' at byte 2 is not allowed")
    # Broken pickles.
    pickle_case("pth_unknown_opcode.pth", b"\x80\x02\xff.", "unknown pickle opcode 0xff at byte 2")
    pickle_case("pth_inst_opcode.pth", b"\x80\x02(ios\nsystem\n.", "pickle opcode INST (0x69) at byte 3 is not supported")
    pickle_case("pth_pickle_truncated.pth", ok_pickle[:-9], "truncated")
    pickle_case("pth_memo_missing.pth", b"\x80\x02h\x05.", "memo entry 5 was never stored")
    pickle_case("pth_huge_int.pth", b"\x80\x02}X\x01\x00\x00\x00a\x8a\x09" + b"\x01" * 9 + b"s.", "too large")
    pickle_case("pth_stack_underflow.pth", b"\x80\x02s.", "the stack is empty")

    exp_path = os.path.join(maldir, "EXPECTED.json")
    merged = json.load(open(exp_path)) if os.path.exists(exp_path) else {}
    merged.update(expected)
    with open(exp_path, "w") as f:
        json.dump(dict(sorted(merged.items())), f, indent=1)
        f.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir")
    ap.add_argument("--malformed", metavar="MALDIR", help="also write malformed/malicious .pth files here")
    a = ap.parse_args()
    make_valid(a.outdir)
    if a.malformed:
        make_malformed(a.malformed, a.outdir)
    print("torch %s: wrote fixtures to %s%s" % (torch.__version__, a.outdir, " and " + a.malformed if a.malformed else ""))


if __name__ == "__main__":
    sys.exit(main())
