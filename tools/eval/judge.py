"""Judges a generated clip of one coloured shape with OpenCV: colour (hue), shape (contour), motion (track).

Input frames are uint8 RGB [T, H, W, 3] (read_video loads a directory of numbered PNGs or a video file).
The object is the largest saturated region of each frame (backgrounds are achromatic). Colour: circular
mean hue -> nearest named hue. Shape: contour area / min-area rectangle (square 1.0, circle 0.79,
triangle 0.5). Motion: centroid track (left/right/up/down, bouncing = down then up) or area trend
(growing/shrinking). `python3 judge.py --validate N` measures the judge on N ground-truth dataset clips.
Not here: multi-object judging, running the generator (see evaluate.py).
"""
import argparse
import glob
import os
import re
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "train"))
import dataset  # noqa: E402  (the vocabulary: colour hues, shapes, motions, backgrounds)

SAT_MIN, VAL_MIN = 90, 70       # object pixels: saturated and not dark (backgrounds have saturation ~0)
MIN_AREA_FRAC = 0.0015          # smallest object (fraction of the frame) counted as found
MOVE_MIN = 0.10                 # net centroid shift (fraction of the frame side) that counts as moving
BOUNCE_MIN = 0.12               # how far the middle of the track must dip below both ends for "bouncing"
SCALE_MIN = 1.5                 # area ratio last/first quarter for growing (1/1.5 for shrinking)


def read_video(path):
    """A directory of numbered PNGs (sorted by the number in the name) or a video file -> uint8 RGB [T,H,W,3]."""
    if os.path.isdir(path):
        files = glob.glob(os.path.join(path, "*.png"))
        key = [int(m.group(1)) if (m := re.search(r"(\d+)(?=\D*$)", os.path.basename(f))) else -1 for f in files]
        files = [f for _, f in sorted(zip(key, files))]
        frames = [cv2.imread(f, cv2.IMREAD_COLOR) for f in files]
    else:
        cap, frames = cv2.VideoCapture(path), []
        while True:
            ok, fr = cap.read()
            if not ok:
                break
            frames.append(fr)
        cap.release()
    if not frames or any(f is None for f in frames):
        raise ValueError(f"no readable frames in {path}")
    return np.stack([cv2.cvtColor(f, cv2.COLOR_BGR2RGB) for f in frames])


def _largest_component(mask):
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 1:
        return None
    k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return (labels == k).astype(np.uint8)


def _nearest(value, table, circular=None):
    def dist(a, b):
        d = abs(a - b)
        return min(d, circular - d) if circular else d

    return min(table, key=lambda k: dist(value, table[k]))


def judge(frames):
    """uint8 RGB [T, H, W, 3] -> dict(colour, shape, motion, background, found, diagnostics...)."""
    t, h, w, _ = frames.shape
    border = np.concatenate([frames[:, 0], frames[:, -1], frames[:, :, 0], frames[:, :, -1]], axis=1)
    bg_level = float(np.median(border.reshape(-1, 3).mean(axis=1)))
    hue_sum = np.zeros(2)
    cx, cy, area, fill = [], [], [], []
    kernel = np.ones((3, 3), np.uint8)
    for fr in frames:
        hsv = cv2.cvtColor(fr, cv2.COLOR_RGB2HSV)  # H in [0, 180)
        mask = ((hsv[..., 1] >= SAT_MIN) & (hsv[..., 2] >= VAL_MIN)).astype(np.uint8)
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
        comp = _largest_component(mask)
        if comp is None or comp.sum() < MIN_AREA_FRAC * h * w:
            cx.append(np.nan), cy.append(np.nan), area.append(np.nan), fill.append(np.nan)
            continue
        ang = hsv[..., 0][comp > 0].astype(np.float64) * (np.pi / 90.0)
        hue_sum += [np.cos(ang).sum(), np.sin(ang).sum()]
        m = cv2.moments(comp, binaryImage=True)
        cx.append(m["m10"] / m["m00"]), cy.append(m["m01"] / m["m00"]), area.append(m["m00"])
        contours, _ = cv2.findContours(comp, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        c = max(contours, key=cv2.contourArea)
        (_, _), (rw, rh), _ = cv2.minAreaRect(c)
        fill.append(m["m00"] / max(rw * rh, 1.0))
    cx, cy, area, fill = (np.array(v, dtype=np.float64) for v in (cx, cy, area, fill))
    found = np.isfinite(area)
    out = {"background": _nearest(bg_level, dataset.BACKGROUNDS), "found": float(found.mean()),
           "colour": None, "shape": None, "motion": None}
    if found.sum() < max(2, t // 2):
        return out
    hue = (np.degrees(np.arctan2(hue_sum[1], hue_sum[0])) + 360.0) % 360.0
    fill_med = float(np.nanmedian(fill))
    out.update(hue=round(hue, 1), fill=round(fill_med, 3),
               colour=_nearest(hue, dataset.COLOURS, circular=360.0),
               shape="square" if fill_med >= 0.89 else "triangle" if fill_med <= 0.64 else "circle")
    idx = np.flatnonzero(found)
    q = max(1, len(idx) // 4)
    first, last, mid = idx[:q], idx[-q:], idx[q:len(idx) - q] if len(idx) > 2 * q else idx
    dx = (np.mean(cx[last]) - np.mean(cx[first])) / w
    dy = (np.mean(cy[last]) - np.mean(cy[first])) / h
    dip = (np.max(cy[mid]) - max(np.mean(cy[first]), np.mean(cy[last]))) / h
    ratio = float(np.mean(area[last]) / max(np.mean(area[first]), 1.0))
    if dip >= BOUNCE_MIN and abs(dx) < MOVE_MIN:
        motion = "bouncing"
    elif max(abs(dx), abs(dy)) >= MOVE_MIN:
        motion = ("moving right" if dx > 0 else "moving left") if abs(dx) >= abs(dy) else \
                 ("moving down" if dy > 0 else "moving up")
    elif ratio >= SCALE_MIN:
        motion = "growing"
    elif ratio <= 1.0 / SCALE_MIN:
        motion = "shrinking"
    else:
        motion = "static"
    out.update(motion=motion, dx=round(float(dx), 3), dy=round(float(dy), 3), dip=round(float(dip), 3),
               area_ratio=round(ratio, 3))
    return out


def score(verdict, expected):
    """Which of colour / shape / motion / background match the expected (colour, shape, motion), bg."""
    (colour, shape, motion), bg = expected
    s = {"colour": verdict["colour"] == colour, "shape": verdict["shape"] == shape,
         "motion": verdict["motion"] == motion, "background": verdict["background"] == bg}
    s["colour_and_motion"] = s["colour"] and s["motion"]
    return s


def validate(n, seed, size, frames):
    """Judge accuracy on n random single-object ground-truth clips (held-out triples included)."""
    rng = np.random.default_rng(seed)
    keys = ("colour", "shape", "motion", "background", "colour_and_motion")
    hits = {k: 0 for k in keys}
    misses = []
    for i in range(n):
        spec = dataset.sample_spec(rng, size, frames, split="all", two_objects=False)
        o = spec["objects"][0]
        s = score(judge(dataset.render_clip(spec)), ((o["colour"], o["shape"], o["motion"]), spec["background"]))
        for k in keys:
            hits[k] += s[k]
        if not all(s.values()):
            misses.append(dataset.caption(spec))
    return {k: hits[k] / n for k in keys}, misses


def main():
    ap = argparse.ArgumentParser(description="Judge a clip, or validate the judge on ground-truth clips.")
    ap.add_argument("video", nargs="?", help="PNG directory or video file")
    ap.add_argument("--validate", type=int, default=0, metavar="N", help="judge N ground-truth clips")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--size", type=int, nargs=2, default=(256, 256), metavar=("H", "W"))
    ap.add_argument("--frames", type=int, default=17)
    args = ap.parse_args()
    if args.validate:
        acc, misses = validate(args.validate, args.seed, tuple(args.size), args.frames)
        print("judge on %d ground-truth clips: %s" % (args.validate, ", ".join(f"{k} {v:.1%}" for k, v in acc.items())))
        for m in misses[:20]:
            print("  miss:", m)
        return 0
    if not args.video:
        ap.error("give a video or --validate N")
    print(judge(read_video(args.video)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
