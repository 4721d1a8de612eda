#!/usr/bin/env python3
"""Writes the ONNX fixtures and the malformed safetensors/ONNX files of the io tests, with no onnx or
protobuf package: ONNX files are encoded here by hand (protobuf wire format), independently of the
C++ protobuf library the reader uses. (The .pth fixtures need torch: tools/testdata/make_pth_fixtures.py.)

    python3 tools/testdata/make_io_fixtures.py IO_DIR MALFORMED_DIR

IO_DIR/onnx gets model_raw.onnx (raw_data), model_typed.onnx (float_data/int32_data/int64_data/
double_data), model_external.onnx (+ .bin files, one in a subfolder) holding the same tensors, and
model.expected.safetensors with their values. MALFORMED_DIR gets broken files and their expected error
substrings in MALFORMED_DIR/EXPECTED.json (merged with what is there).
"""
import json
import os
import struct
import sys

# ---------------------------------------------------------------------------------------------
# Protobuf wire format.


def varint(n):
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field_varint(num, v):
    return varint(num << 3) + varint(v)


def field_bytes(num, b):
    if isinstance(b, str):
        b = b.encode()
    return varint(num << 3 | 2) + varint(len(b)) + b


def packed_varints(num, values):
    return field_bytes(num, b"".join(varint(v) for v in values))


def packed_fixed(num, fmt, values):
    return field_bytes(num, struct.pack("<%d%s" % (len(values), fmt), *values))


# ONNX field numbers (onnx.proto) and data types.
FLOAT, UINT8, INT8, UINT16, INT16, INT32, INT64, STRING, BOOL, FLOAT16, DOUBLE = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11
BFLOAT16 = 16


def string_entry(num, key, value):
    return field_bytes(num, field_bytes(1, key) + field_bytes(2, value))


def tensor_proto(name, dtype, dims, raw=None, typed=b"", external=None, extra=b""):
    t = b"".join(field_varint(1, d) for d in dims) + field_varint(2, dtype)
    t += typed
    if name is not None:
        t += field_bytes(8, name)
    if raw is not None:
        t += field_bytes(9, raw)
    if external is not None:
        for k, v in external:
            t += string_entry(13, k, v)
        t += field_varint(14, 1)  # data_location = EXTERNAL
    return t + extra


def model_proto(initializers, metadata=(), producer="vdit-fixtures", graph_name="tiny", opsets=(("", 17),)):
    graph = field_bytes(2, graph_name) + b"".join(field_bytes(5, t) for t in initializers)
    m = field_varint(1, 8) + field_bytes(2, producer) + field_bytes(3, "1.0")
    m += field_bytes(7, graph)
    for domain, version in opsets:
        m += field_bytes(8, field_bytes(1, domain) + field_varint(2, version))
    for k, v in metadata:
        m += string_entry(14, k, v)
    return m


# ---------------------------------------------------------------------------------------------
# The tensors (values exact in every dtype) and the expected-values safetensors file.


def f32_to_bf16_bits(x):
    u = struct.unpack("<I", struct.pack("<f", x))[0]
    return (u + 0x7FFF + ((u >> 16) & 1)) >> 16


def f16_bits(x):
    return struct.unpack("<H", struct.pack("<e", x))[0]


TENSORS = [  # name, onnx type, safetensors dtype, shape, values
    ("f32", FLOAT, "F32", [2, 3], [0.5, -1.25, 3.0, 1e-3, -7.5, 65504.0]),
    ("f16", FLOAT16, "F16", [4], [1.5, -0.25, 2048.0, -65504.0]),
    ("bf16", BFLOAT16, "BF16", [2, 2], [1.0, -3.5, 1.5e10, -2.0 ** -20]),
    ("f64", DOUBLE, "F64", [3], [0.1, -2.0 ** 60, 3.141592653589793]),
    ("i64", INT64, "I64", [3], [-(2 ** 62), 5, 2 ** 40 + 3]),
    ("i32", INT32, "I32", [2, 2], [-(2 ** 31), -1, 7, 2 ** 31 - 1]),
    ("i16", INT16, "I16", [3], [-32768, 12, 32767]),
    ("i8", INT8, "I8", [4], [-128, -3, 0, 127]),
    ("u8", UINT8, "U8", [3], [0, 200, 255]),
    ("bool", BOOL, "BOOL", [3], [1, 0, 1]),
    ("empty", FLOAT, "F32", [0, 4], []),
]

PACK = {"F32": "f", "F64": "d", "I64": "q", "I32": "i", "I16": "h", "I8": "b", "U8": "B", "BOOL": "B"}


def raw_bytes(st, values):
    if st == "F16":
        return struct.pack("<%dH" % len(values), *[f16_bits(v) for v in values])
    if st == "BF16":
        return struct.pack("<%dH" % len(values), *[f32_to_bf16_bits(v) for v in values])
    return struct.pack("<%d%s" % (len(values), PACK[st]), *values)


def typed_field(onnx_type, st, values):
    if onnx_type == FLOAT:
        return packed_fixed(4, "f", values)
    if onnx_type == DOUBLE:
        return packed_fixed(10, "d", values)
    if onnx_type == INT64:
        return packed_varints(7, values)
    if st == "F16":
        return packed_varints(5, [f16_bits(v) for v in values])
    if st == "BF16":
        return packed_varints(5, [f32_to_bf16_bits(v) for v in values])
    return packed_varints(5, values)  # INT32, INT16, INT8, UINT8, BOOL


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, st, shape, data in tensors:
        header[name] = {"dtype": st, "shape": shape, "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


METADATA = [("author", "vdit tests"), ("purpose", "initializer reader fixture")]
OPSETS = [("", 17), ("com.microsoft", 1)]


def make_onnx(outdir):
    os.makedirs(os.path.join(outdir, "weights"), exist_ok=True)
    raw = [tensor_proto(n, ot, shape, raw=raw_bytes(st, v)) for n, ot, st, shape, v in TENSORS]
    typed = [tensor_proto(n, ot, shape, typed=typed_field(ot, st, v)) for n, ot, st, shape, v in TENSORS]
    for name, ts in (("model_raw.onnx", raw), ("model_typed.onnx", typed)):
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(model_proto(ts, METADATA, opsets=OPSETS))
    # External data: odd tensors in a subfolder file after 8 bytes of padding, the rest back to back
    # in model_external.bin (with length given for some, left out for others).
    main, sub, ext = bytearray(), bytearray(b"\0" * 8), []
    for i, (n, ot, st, shape, v) in enumerate(TENSORS):
        data = raw_bytes(st, v)
        if i % 2:
            e = [("location", "weights/extra.bin"), ("offset", str(len(sub))), ("length", str(len(data)))]
            sub += data
        else:
            e = [("location", "model_external.bin"), ("offset", str(len(main)))]
            if i % 4 == 0:
                e.append(("length", str(len(data))))
            main += data
        ext.append(tensor_proto(n, ot, shape, external=e))
    with open(os.path.join(outdir, "model_external.onnx"), "wb") as f:
        f.write(model_proto(ext, METADATA, opsets=OPSETS))
    open(os.path.join(outdir, "model_external.bin"), "wb").write(main)
    open(os.path.join(outdir, "weights", "extra.bin"), "wb").write(sub)
    write_safetensors(os.path.join(outdir, "model.expected.safetensors"),
                      [(n, st, shape, raw_bytes(st, v)) for n, ot, st, shape, v in TENSORS])


# ---------------------------------------------------------------------------------------------
# Malformed files.


def st_file(header, data_len):
    h = header.encode() if isinstance(header, str) else header
    return struct.pack("<Q", len(h)) + h + bytes(range(256)) * (data_len // 256) + bytes(range(data_len % 256))


def make_malformed(maldir):
    os.makedirs(maldir, exist_ok=True)
    expected = {}

    def write(name, data, substring):
        expected[name] = substring
        with open(os.path.join(maldir, name), "wb") as f:
            f.write(data)

    # safetensors
    write("st_truncated.safetensors", b"\x10\x00\x00", "truncated")
    write("st_header_past_end.safetensors", struct.pack("<Q", 4096) + b'{"a":1}', "header length 4096 past the end")
    write("st_invalid_json.safetensors", st_file('{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]', 8),
          "not a valid JSON object")
    write("st_unknown_dtype.safetensors", st_file('{"w":{"dtype":"F7","shape":[2],"data_offsets":[0,8]}}', 8),
          "unknown dtype \"F7\"")
    write("st_offsets_out_of_range.safetensors", st_file('{"w":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}', 16),
          "outside the data section")
    write("st_overlap.safetensors",
          st_file('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', 16),
          "overlap")
    write("st_shape_mismatch.safetensors", st_file('{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', 8),
          "needs 12 bytes but data_offsets span 8")
    write("st_negative_dim.safetensors", st_file('{"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}', 8),
          "not a non-negative integer")
    write("st_zero_dim_overflow.safetensors",  # empty, but multiplying the shape out overflows int64
          st_file('{"w":{"dtype":"F32","shape":[0,1099511627776,1099511627776],"data_offsets":[0,0]}}', 0), "absurd shape")
    write("st_missing_fields.safetensors", st_file('{"w":{"dtype":"F32","shape":[2]}}', 8), "needs dtype (string)")
    write("st_index_missing_shard.safetensors.index.json",
          b'{"weight_map": {"w": "st_no_such_shard.safetensors"}}', "st_no_such_shard.safetensors: cannot open")

    # ONNX
    ok = tensor_proto("w", FLOAT, [2], raw=struct.pack("<2f", 1, 2))
    good = model_proto([ok])
    write("onnx_garbage.onnx", b"\xff\xff\xff\xff this is not a protobuf" * 2, "not a valid ONNX model")
    write("onnx_truncated.onnx", good[:-5], "not a valid ONNX model")
    write("onnx_no_graph.onnx", field_varint(1, 8) + field_bytes(2, "x"), "has no graph")
    write("onnx_raw_size_mismatch.onnx", model_proto([tensor_proto("w", FLOAT, [3], raw=b"\0" * 8)]),
          "f32 [3] needs 12 bytes but raw_data holds 8")
    write("onnx_typed_count_mismatch.onnx", model_proto([tensor_proto("w", INT64, [2, 2], typed=packed_varints(7, [1, 2, 3]))]),
          "needs 4 values in int64_data but it has 3")
    write("onnx_no_data.onnx", model_proto([tensor_proto("w", FLOAT16, [2])]), "needs 2 values in int32_data but it has 0")
    write("onnx_unknown_dtype.onnx", model_proto([tensor_proto("w", 99, [1], raw=b"\0")]), "unknown ONNX data type 99")
    write("onnx_string_dtype.onnx", model_proto([tensor_proto("w", STRING, [1], extra=field_bytes(6, "hello"))]),
          "ONNX data type STRING (8) is not supported")
    write("onnx_negative_dim.onnx", model_proto([tensor_proto("w", FLOAT, [-3], raw=b"")]), "dimension -3 is negative")
    write("onnx_zero_dim_overflow.onnx", model_proto([tensor_proto("w", FLOAT, [0, 2 ** 48, 2 ** 48], raw=b"")]),
          "more than 2^60 elements")  # found by fuzz_onnx: empty, but shape_numel overflowed
    write("onnx_duplicate_name.onnx", model_proto([ok, ok]), "initializer \"w\" appears twice")
    write("onnx_unnamed.onnx", model_proto([tensor_proto(None, FLOAT, [1], raw=b"\0" * 4)]), "initializer 0 has no name")
    write("onnx_segmented.onnx", model_proto([tensor_proto("w", FLOAT, [1], raw=b"\0" * 4, extra=field_bytes(3, field_varint(1, 0)))]),
          "is segmented")
    write("onnx_sparse.onnx", field_bytes(7, field_bytes(15, field_bytes(1, ok))), "sparse initializers")
    ext_data = struct.pack("<4f", 1, 2, 3, 4)
    write("onnx_ext_data.bin", ext_data, None)

    def ext_model(name, entries, substring, dims=(4,), more=()):
        t = [tensor_proto("w", FLOAT, list(dims), external=entries)] + list(more)
        write(name, model_proto(t), substring)

    ext_model("onnx_ext_escape.onnx", [("location", "../io/onnx/model_external.bin")], "escapes the model's folder")
    ext_model("onnx_ext_absolute.onnx", [("location", "/etc/hostname")], "escapes the model's folder")
    ext_model("onnx_ext_missing_file.onnx", [("location", "onnx_no_such_file.bin")], "onnx_no_such_file.bin: cannot open")
    ext_model("onnx_ext_no_location.onnx", [("offset", "0")], "external_data has no location")
    ext_model("onnx_ext_out_of_range.onnx", [("location", "onnx_ext_data.bin"), ("offset", "8")],
              "external data [8, +16) lies outside onnx_ext_data.bin (16 bytes)")
    ext_model("onnx_ext_huge_offset.onnx", [("location", "onnx_ext_data.bin"), ("offset", "9223372036854775807")],
              "lies outside onnx_ext_data.bin")
    ext_model("onnx_ext_bad_offset.onnx", [("location", "onnx_ext_data.bin"), ("offset", "-4")], "is not a non-negative integer")
    ext_model("onnx_ext_length_mismatch.onnx", [("location", "onnx_ext_data.bin"), ("length", "12")],
              "needs 16 bytes but its external_data length is 12")
    ext_model("onnx_ext_overlap.onnx", [("location", "onnx_ext_data.bin"), ("offset", "0")], "overlap in external data", dims=(2,),
              more=[tensor_proto("v", FLOAT, [2], external=[("location", "onnx_ext_data.bin"), ("offset", "4")])])

    exp_path = os.path.join(maldir, "EXPECTED.json")
    merged = json.load(open(exp_path)) if os.path.exists(exp_path) else {}
    merged.update({k: v for k, v in expected.items() if v is not None})
    with open(exp_path, "w") as f:
        json.dump(dict(sorted(merged.items())), f, indent=1)
        f.write("\n")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    make_onnx(os.path.join(sys.argv[1], "onnx"))
    make_malformed(sys.argv[2])
    print("wrote ONNX fixtures to %s/onnx and malformed files to %s" % (sys.argv[1], sys.argv[2]))


if __name__ == "__main__":
    main()
