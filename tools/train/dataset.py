"""Procedural video dataset: one or two coloured shapes moving on a plain background, with captions.

A clip is described by a spec (background, objects with colour/shape/motion and their parameters) and
rendered from per-frame tracks (centre x, centre y, radius) with anti-aliased signed-distance coverage.
The same render code runs on numpy (reference, CPU) or torch (batched, on the GPU for training).
Captions are templated: "a red circle moving left on a black background". Some colour x shape x motion
triples are held out of training (HELD_OUT) for evaluation. No file I/O here except the CLI preview.
"""
import colorsys
import math
import re

import numpy as np

COLOURS = {"red": 0, "orange": 30, "yellow": 60, "green": 120, "cyan": 180, "blue": 240, "purple": 280}  # hue
SHAPES = ("circle", "square", "triangle")
MOTIONS = ("moving left", "moving right", "moving up", "moving down", "growing", "shrinking", "bouncing")
BACKGROUNDS = {"black": 0, "white": 255, "gray": 128}

# (colour, shape, motion) never shown in training; each colour, shape and motion still appears otherwise.
HELD_OUT = (
    ("red", "triangle", "moving up"), ("orange", "circle", "moving down"), ("yellow", "square", "moving left"),
    ("green", "triangle", "moving right"), ("cyan", "circle", "growing"), ("blue", "square", "shrinking"),
    ("purple", "triangle", "bouncing"), ("red", "square", "moving right"), ("yellow", "circle", "moving up"),
    ("green", "square", "growing"), ("blue", "circle", "moving left"), ("purple", "circle", "moving down"),
)
TWO_OBJECT_PROB = 0.15


def colour_rgb(name):
    r, g, b = colorsys.hsv_to_rgb(COLOURS[name] / 360.0, 1.0, 1.0)
    return (round(r * 255), round(g * 255), round(b * 255))


def article(word):
    return "an" if word[0] in "aeiou" else "a"


def object_phrase(obj):
    return f"{article(obj['colour'])} {obj['colour']} {obj['shape']} {obj['motion']}"


def caption(spec):
    return " and ".join(object_phrase(o) for o in spec["objects"]) + f" on a {spec['background']} background"


def all_captions(include_held_out=True):
    """Every single-object caption (the tokenizer corpus and the caption vocabulary)."""
    out = []
    for bg in BACKGROUNDS:
        for c in COLOURS:
            for s in SHAPES:
                for m in MOTIONS:
                    if include_held_out or (c, s, m) not in HELD_OUT:
                        out.append(f"{article(c)} {c} {s} {m} on a {bg} background")
    return out


_CAPTION_RE = re.compile(r"an? (\w+) (\w+) (moving \w+|growing|shrinking|bouncing)")


def parse_caption(text):
    """Caption -> (list of (colour, shape, motion), background); raises ValueError on unknown words."""
    text = " ".join(text.lower().split())
    m = re.fullmatch(r"(.*) on a (\w+) background", text)
    if not m or m.group(2) not in BACKGROUNDS:
        raise ValueError(f"not a dataset caption: {text!r}")
    objs = []
    for part in m.group(1).split(" and "):
        o = _CAPTION_RE.fullmatch(part)
        if not o or o.group(1) not in COLOURS or o.group(2) not in SHAPES or o.group(3) not in MOTIONS:
            raise ValueError(f"not a dataset caption: {text!r}")
        objs.append(o.groups())
    return objs, m.group(2)


def _object_params(rng, colour, shape, motion, size):
    """Random motion parameters for one object on a `size` (H, W) canvas, kept fully inside it.

    Radius r is that of the circle; the square and triangle have the same area, and every shape fits in
    1.6 r around its centre (the triangle's apex is 1.55 r above its centroid).
    """
    h, w = size
    s = min(h, w)
    obj = {"colour": colour, "shape": shape, "motion": motion}
    if motion in ("growing", "shrinking"):
        r0 = rng.uniform(0.06, 0.08) * s
        r1 = r0 * rng.uniform(1.9, 2.4)
        m = 1.6 * r1 + 2
        obj.update(x0=rng.uniform(m, w - m), y0=rng.uniform(m, h - m),
                   r0=r0 if motion == "growing" else r1, r1=r1 if motion == "growing" else r0)
        obj["x1"], obj["y1"] = obj["x0"], obj["y0"]
    elif motion == "bouncing":
        r = rng.uniform(0.09, 0.13) * s
        amp = rng.uniform(0.28, 0.40) * h
        floor = rng.uniform(h - r - 2 - 0.1 * h, h - r - 2)
        x = rng.uniform(1.6 * r + 2, w - 1.6 * r - 2)
        obj.update(x0=x, x1=x, y0=floor - amp, y1=floor, r0=r, r1=r, amp=amp)
    else:
        r = rng.uniform(0.09, 0.13) * s
        horizontal = motion in ("moving left", "moving right")
        extent = w if horizontal else h
        dist = rng.uniform(0.30, 0.45) * extent
        m = 1.6 * r + 2
        a = rng.uniform(m, extent - m - dist)
        b = rng.uniform(m, (h if horizontal else w) - m)
        start, end = (a, a + dist) if motion in ("moving right", "moving down") else (a + dist, a)
        if horizontal:
            obj.update(x0=start, x1=end, y0=b, y1=b)
        else:
            obj.update(x0=b, x1=b, y0=start, y1=end)
        obj.update(r0=r, r1=r)
    return obj


def sample_spec(rng, size, frames, split="train", triple=None, background=None, two_objects=None):
    """A random clip spec. split 'train' never uses HELD_OUT triples; 'all' may. `triple` fixes object 1."""
    bg = background or str(rng.choice(list(BACKGROUNDS)))
    n = 2 if (two_objects if two_objects is not None else rng.random() < TWO_OBJECT_PROB) else 1
    objs, used = [], set()
    for k in range(n):
        while True:
            t = triple if (k == 0 and triple) else (str(rng.choice(list(COLOURS))), str(rng.choice(SHAPES)),
                                                    str(rng.choice(MOTIONS)))
            if t[0] in used or (split == "train" and t in HELD_OUT and not (k == 0 and triple)):
                continue
            break
        used.add(t[0])
        objs.append(_object_params(rng, *t, size))
    return {"background": bg, "objects": objs, "size": tuple(size), "frames": frames}


def spec_from_caption(text, seed, size, frames):
    """A clip spec matching a dataset caption (random positions/speeds from `seed`)."""
    rng = np.random.default_rng(seed)
    objs, bg = parse_caption(text)
    spec = {"background": bg, "objects": [], "size": tuple(size), "frames": frames}
    for t in objs:
        spec["objects"].append(_object_params(rng, *t, size))
    return spec


def tracks(spec):
    """Per object a [T, 3] float32 array of (cx, cy, radius) in pixels of the spec's canvas."""
    frames = spec["frames"]
    tau = np.linspace(0.0, 1.0, frames)
    out = []
    for o in spec["objects"]:
        if o["motion"] == "bouncing":
            y = o["y1"] - o["amp"] * (2 * tau - 1) ** 2  # high, down to the floor at tau=0.5, back up
            x = np.full_like(tau, o["x0"])
        else:
            x = o["x0"] + (o["x1"] - o["x0"]) * tau
            y = o["y0"] + (o["y1"] - o["y0"]) * tau
        r = o["r0"] + (o["r1"] - o["r0"]) * tau
        out.append(np.stack([x, y, r], axis=1).astype(np.float32))
    return out


def specs_to_arrays(specs, max_objects=2):
    """Batch arrays for render_arrays: tracks [B,K,T,3], shape one-hot [B,K,3], rgb [B,K,3], present [B,K], bg [B]."""
    b, t = len(specs), specs[0]["frames"]
    trk = np.zeros((b, max_objects, t, 3), np.float32)
    onehot = np.zeros((b, max_objects, 3), np.float32)
    rgb = np.zeros((b, max_objects, 3), np.float32)
    present = np.zeros((b, max_objects), np.float32)
    bg = np.zeros((b,), np.float32)
    for i, spec in enumerate(specs):
        bg[i] = BACKGROUNDS[spec["background"]]
        for k, (o, tr) in enumerate(zip(spec["objects"], tracks(spec))):
            trk[i, k], present[i, k] = tr, 1.0
            onehot[i, k, SHAPES.index(o["shape"])] = 1.0
            rgb[i, k] = colour_rgb(o["colour"])
    return {"tracks": trk, "onehot": onehot, "rgb": rgb, "present": present, "bg": bg}


class _Numpy:
    sqrt, abs, maximum, rint = np.sqrt, np.abs, np.maximum, np.rint

    @staticmethod
    def clip01(x):
        return np.clip(x, 0.0, 1.0)

    @staticmethod
    def arange(n, origin):
        return np.arange(n, dtype=np.float32) + np.float32(origin) + np.float32(0.5)


def _torch_ops(device):
    import torch

    class _Torch:
        sqrt, abs, maximum, rint = torch.sqrt, torch.abs, torch.maximum, torch.round

        @staticmethod
        def clip01(x):
            return x.clamp(0.0, 1.0)

        @staticmethod
        def arange(n, origin):
            return torch.arange(n, dtype=torch.float32, device=device) + float(origin) + 0.5

    return _Torch


def render_arrays(arr, height, width, ops, origin=(0, 0), frame_start=0, frames=None):
    """Renders a window (origin y, x; frames) of each clip: [B, T, H, W, 3] float32 RGB 0..255, uint8-quantized.

    arr holds numpy arrays (ops=_Numpy) or torch tensors on one device (ops=_torch_ops(device)).
    Coverage of a shape = clip(0.5 - signed distance, 0, 1): one-pixel anti-aliasing.
    """
    trk = arr["tracks"]
    t_all = trk.shape[2]
    frames = frames or t_all
    ys = ops.arange(height, origin[0]).reshape(1, 1, height, 1)
    xs = ops.arange(width, origin[1]).reshape(1, 1, 1, width)
    img = arr["bg"].reshape(-1, 1, 1, 1, 1)  # broadcasts to [B, T, H, W, 3] as objects are composited
    s3 = math.sqrt(3.0)
    for k in range(trk.shape[1]):
        tk = trk[:, k, frame_start:frame_start + frames]
        cx, cy, r = (tk[..., j].reshape(-1, frames, 1, 1) for j in range(3))
        dx, dy = xs - cx, ys - cy
        d_circle = ops.sqrt(dx * dx + dy * dy) - r
        d_square = ops.maximum(ops.abs(dx), ops.abs(dy)) - 0.886 * r  # equal area with the circle
        inr = 0.776 * r  # inradius of the equal-area equilateral triangle (apex up, centroid at the centre)
        d_tri = ops.maximum(ops.maximum(dy - inr, -0.5 * s3 * dx - 0.5 * dy - inr), 0.5 * s3 * dx - 0.5 * dy - inr)
        oh = arr["onehot"][:, k]
        d = (oh[:, 0].reshape(-1, 1, 1, 1) * d_circle + oh[:, 1].reshape(-1, 1, 1, 1) * d_square
             + oh[:, 2].reshape(-1, 1, 1, 1) * d_tri)
        cov = ops.clip01(0.5 - d) * arr["present"][:, k].reshape(-1, 1, 1, 1)
        cov = cov.reshape(cov.shape[0], frames, height, width, 1)
        col = arr["rgb"][:, k].reshape(-1, 1, 1, 1, 3)
        img = img * (1 - cov) + col * cov
    return ops.rint(img)


def render_clip(spec):
    """Reference CPU render of a whole clip: uint8 [T, H, W, 3] RGB."""
    h, w = spec["size"]
    img = render_arrays(specs_to_arrays([spec]), h, w, _Numpy)[0]
    return np.clip(img, 0, 255).astype(np.uint8)


def render_batch_torch(specs, height, width, device, origin=None, frame_start=0, frames=None):
    """Batched GPU/CPU render: float32 [B, 3, T, H, W] in [-1, 1] (same pixels as render_clip).

    origin: None (whole canvas) or an int array [B, 2] of per-clip window corners (y, x).
    """
    import torch

    arr = specs_to_arrays(specs)
    if origin is not None:  # shift each clip's tracks so that one window origin (0, 0) serves all
        arr["tracks"][..., 0] -= origin[:, 1].reshape(-1, 1, 1)
        arr["tracks"][..., 1] -= origin[:, 0].reshape(-1, 1, 1)
    arr = {k: torch.from_numpy(v).to(device) for k, v in arr.items()}
    img = render_arrays(arr, height, width, _torch_ops(device), frame_start=frame_start, frames=frames)
    return (img.clamp(0, 255) / 127.5 - 1.0).permute(0, 4, 1, 2, 3).contiguous()


def main():
    """Writes a PNG contact sheet of random training clips (a quick look at the data)."""
    import argparse

    import cv2

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--out", default="dataset_preview.png")
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--size", type=int, nargs=2, default=(256, 256))
    ap.add_argument("--frames", type=int, default=17)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    rows = []
    for _ in range(args.n):
        spec = sample_spec(rng, args.size, args.frames)
        clip = render_clip(spec)
        idx = np.linspace(0, args.frames - 1, 5).round().astype(int)
        row = np.concatenate([clip[i] for i in idx], axis=1)
        label = np.full((18, row.shape[1], 3), 255, np.uint8)
        cv2.putText(label, caption(spec), (3, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        rows.append(np.concatenate([label, row], axis=0))
    cv2.imwrite(args.out, cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
