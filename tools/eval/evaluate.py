"""Evaluates text-to-video generation on fixed prompts: generate each prompt with its seed, judge, report.

Backends: `vdit` runs `vdit generate` once per prompt (any extra vdit arguments after `--`, e.g.
`-- --attention radial`), writing PNG frames (`-o DIR/`) or an .mp4; `torch` runs the PyTorch reference
pipeline on an exported model directory; `ground-truth` renders the dataset clip for each caption (checks
the judge). Prints a table, accuracy per split (held-in / held-out / all) for colour, motion, colour and
motion together, shape and background, and writes OUT/results.json.
Usage: python3 tools/eval/evaluate.py [--backend vdit|torch|ground-truth] [--vdit PATH] [--out DIR] [-- ARGS]
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tools", "train"))
import dataset  # noqa: E402
import judge  # noqa: E402

KEYS = ("colour", "motion", "colour_and_motion", "shape", "background")
DEFAULT_TEMPLATE = "{vdit} generate --prompt {prompt} --seed {seed} -o {out}"


def load_prompts(path):
    with open(path) as f:
        entries = json.load(f)["prompts"]
    for e in entries:
        e["expected"] = dataset.parse_caption(e["prompt"])
        if len(e["expected"][0]) != 1:
            raise ValueError(f"the judge handles one object per prompt: {e['prompt']!r}")
    return entries


def judge_entry(frames, entry):
    verdict = judge.judge(frames)
    (obj,), bg = entry["expected"]
    return {"verdict": verdict, "score": judge.score(verdict, (obj, bg)), "frames": int(frames.shape[0]),
            "size": [int(frames.shape[1]), int(frames.shape[2])]}


def summarize(results):
    out = {}
    for split in ("held-in", "held-out", "all"):
        rs = [r for r in results if split == "all" or r["split"] == split]
        if not rs:
            continue
        s = {"n": len(rs)}
        for k in KEYS:
            s[k] = round(sum(r["score"][k] for r in rs if "score" in r) / len(rs), 4)
        secs = [r["seconds"] for r in rs if r.get("seconds") is not None]
        s["mean_seconds"] = round(sum(secs) / len(secs), 2) if secs else None
        out[split] = s
    return out


def print_table(results, summary, file=sys.stdout):
    mark = {True: "+", False: "-"}
    print(f"{'#':>2} {'split':8} {'c m s b':7} {'sec':>6}  prompt -> judged colour / shape / motion", file=file)
    for i, r in enumerate(results):
        if "score" not in r:
            print(f"{i:2d} {r['split']:8} {'error':7} {'':>6}  {r['prompt']}: {r.get('error')}", file=file)
            continue
        sc, v = r["score"], r["verdict"]
        flags = " ".join(mark[sc[k]] for k in ("colour", "motion", "shape", "background"))
        secs = f"{r['seconds']:.1f}" if r.get("seconds") is not None else ""
        print(f"{i:2d} {r['split']:8} {flags:7} {secs:>6}  {r['prompt']} -> {v['colour']} / {v['shape']} / "
              f"{v['motion']}", file=file)
    for split, s in summary.items():
        print(f"{split:8} n={s['n']:2d}  " + "  ".join(f"{k} {s[k]:.0%}" for k in KEYS)
              + (f"  mean {s['mean_seconds']}s" if s["mean_seconds"] is not None else ""), file=file)


def run_vdit(entry, index, args, extra):
    out = os.path.join(args.out, "videos", f"{index:02d}" + (".mp4" if args.format == "mp4" else "/"))
    os.makedirs(out if args.format == "png" else os.path.dirname(out), exist_ok=True)
    fields = {"vdit": args.vdit, "prompt": entry["prompt"], "seed": str(entry["seed"]), "out": out}
    cmd = [tok.format(**fields) for tok in shlex.split(args.template)]
    if args.model:
        cmd += ["--model", args.model]
    cmd += extra
    t0 = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    secs = time.time() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"exit {proc.returncode}: {shlex.join(cmd)}\n{proc.stderr[-2000:]}")
    return judge.read_video(out.rstrip("/") if args.format == "png" else out), secs, shlex.join(cmd)


def main():
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 epilog="Arguments after -- go to every `vdit generate` call.")
    ap.add_argument("--backend", default="vdit", choices=("vdit", "torch", "ground-truth"))
    ap.add_argument("--prompts", default=os.path.join(HERE, "prompts.json"))
    ap.add_argument("--vdit", default=os.path.join(REPO, "build", "release", "bin", "vdit"))
    ap.add_argument("--template", default=DEFAULT_TEMPLATE, help="vdit command; {vdit} {prompt} {seed} {out}")
    ap.add_argument("--model", help="model directory (vdit: passed as --model; torch: default the shipped model)")
    ap.add_argument("--attention", help="shortcut for `-- --attention M`")
    ap.add_argument("--format", default="png", choices=("png", "mp4"))
    ap.add_argument("--out", default=os.path.join(REPO, "out", "eval"))
    ap.add_argument("--limit", type=int, default=0, help="only the first N prompts")
    ap.add_argument("--size", type=int, nargs=2, default=(256, 256), help="ground-truth clip size H W")
    ap.add_argument("--frames", type=int, default=17, help="ground-truth clip frames")
    args = ap.parse_args(argv)
    if args.attention:
        extra += ["--attention", args.attention]
    entries = load_prompts(args.prompts)[:args.limit or None]
    os.makedirs(args.out, exist_ok=True)
    pipe = None
    if args.backend == "torch":
        from preview import TorchPipeline
        import common

        device, amp = common.device_and_autocast()
        pipe = TorchPipeline.from_model_dir(args.model or os.path.join(REPO, "samples", "models", "vdit-tiny-t2v"),
                                            device, amp)
    results, command = [], None
    for i, e in enumerate(entries):
        r = {"prompt": e["prompt"], "split": e["split"], "seed": e["seed"]}
        try:
            t0 = time.time()
            if args.backend == "vdit":
                frames, secs, command = run_vdit(e, i, args, extra)
            elif args.backend == "torch":
                frames, secs = pipe.generate([e["prompt"]], [e["seed"]])[0], None
            else:
                frames = dataset.render_clip(dataset.spec_from_caption(e["prompt"], e["seed"], tuple(args.size),
                                                                        args.frames))
                secs = None
            r["seconds"] = round(secs if secs is not None else time.time() - t0, 2)
            r.update(judge_entry(frames, e))
        except Exception as ex:  # one failed prompt is reported, not fatal
            r["error"] = str(ex)
        results.append(r)
        print(f"[{i + 1}/{len(entries)}] {e['prompt']}: "
              + (r.get("error") or f"{r['verdict']['colour']} / {r['verdict']['shape']} / {r['verdict']['motion']}"),
              flush=True)
    summary = summarize(results)
    print_table(results, summary)
    doc = {"backend": args.backend, "prompts": args.prompts, "extra_args": extra, "example_command": command,
           "summary": summary, "results": results}
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(doc, f, indent=1)
    print(f"wrote {os.path.join(args.out, 'results.json')}")
    return 0 if all("score" in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
