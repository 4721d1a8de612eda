"""The Python binding (samples/python/vdit.py, ctypes over dit/api/vdit.h) against the shared libvdit named by
$VDIT_LIBRARY: errors as VditError with the library's status and message, dense attention against a naive
reference, and (in builds with sentencepiece) generation with the built-in model, progress and cancellation.
Exit 0 = pass."""
import math
import os
import sys
from array import array

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "samples", "python"))
import vdit  # noqa: E402

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


def expect_error(status, fn, what):
    try:
        fn()
    except vdit.VditError as e:
        check(e.status == status, f"{what}: status {e.status} ({e}), expected {status}")
        return str(e)
    check(False, f"{what}: no error")
    return ""


def rand(n, seed):
    out = array("f")
    for _ in range(n):
        seed = (seed * 1664525 + 1013904223) % 2**32
        out.append(((seed >> 8) & 0xFFFF) / 32768.0 - 1.0)
    return out


def reference(q, k, v, L, NH, HD):
    out = array("f", bytes(4 * L * NH * HD))
    for h in range(NH):
        for i in range(L):
            s = [sum(q[(i * NH + h) * HD + d] * k[(j * NH + h) * HD + d] for d in range(HD)) / math.sqrt(HD)
                 for j in range(L)]
            mx = max(s)
            p = [math.exp(x - mx) for x in s]
            z = sum(p)
            for d in range(HD):
                out[(i * NH + h) * HD + d] = sum(p[j] * v[(j * NH + h) * HD + d] for j in range(L)) / z
    return out


def test_attention():
    F, H, W, NH, HD = 2, 2, 8, 2, 8
    L = F * H * W
    n = L * NH * HD
    q, k, v = rand(n, 1), rand(n, 2), rand(n, 3)
    a = vdit.Attention("dense", {"num_layers": 2, "num_heads": NH, "head_dim": HD, "grid": (F, H, W), "num_steps": 4})
    check(a.name == "dense", f"name {a.name}")
    out = a.forward(q, k, v, L, NH, HD, layer=1, step=2, grid=(F, H, W))
    ref = reference(q, k, v, L, NH, HD)
    worst = max(abs(x - y) for x, y in zip(out, ref))
    check(worst < 1e-5, f"dense vs reference: max |diff| {worst}")
    expect_error(1, lambda: a.forward(q, k, v, L, NH, HD, layer=2, grid=(F, H, W)), "layer out of range")
    a.close()
    msg = expect_error(1, lambda: vdit.Attention("no-such-method", {"num_heads": 2, "head_dim": 8}), "unknown method")
    check("radial" in msg, f"message should list the methods: {msg}")
    check("radial" in vdit.attention_methods(), f"methods {vdit.attention_methods()}")


def test_generate():
    msg = expect_error(1, lambda: vdit.generate(""), "empty prompt")
    check("prompt" in msg, f"message: {msg}")
    if not vdit.has_feature("sentencepiece"):
        msg = expect_error(5, lambda: vdit.generate("a red circle"), "generate without sentencepiece")
        check("sentencepiece" in msg, f"message: {msg}")
        return
    seen = []
    video = vdit.generate("a red circle moving right on a white background", seed=7, steps=4,
                          progress=lambda stage, done, total, s: seen.append((stage, done, total)))
    check((video.frames, video.width, video.height) == (17, 256, 256),
          f"video {video.frames} x {video.width}x{video.height}")
    check(len(video.rgb) == 17 * 256 * 256 * 3 and video.seed == 7, f"{len(video.rgb)} bytes, seed {video.seed}")
    px = video.rgb
    red = sum(1 for i in range(0, len(px), 3) if px[i] > 150 and px[i + 1] < 90 and px[i + 2] < 90)
    white = sum(1 for i in range(0, len(px), 3) if px[i] > 200 and px[i + 1] > 200 and px[i + 2] > 200)
    n = len(px) // 3
    check(red > n // 200 and white > n // 2, f"{red} red and {white} white pixels of {n}")
    check(("denoising", 4, 4) in seen, f"progress events {seen[:6]} ...")
    expect_error(8, lambda: vdit.generate("a red circle moving right on a white background", seed=7, steps=4,
                                          progress=lambda stage, done, total, s: stage != "denoising" or done < 1),
                 "cancel")


print("libvdit", vdit.version())
test_attention()
test_generate()
if failures:
    print(f"{len(failures)} check(s) failed", file=sys.stderr)
    sys.exit(1)
print("test_python_binding: all checks passed")
