#!/usr/bin/env python3
"""PyTorch attention peers on the GPU, for `vdit bench attention` to be compared against.

(a) Dense SDPA (torch.nn.functional.scaled_dot_product_attention) with the FLASH (FA2), CUDNN and EFFICIENT
    backends; (b) FlexAttention (torch.compile'd) with a BlockMask of 128x128 full blocks built from per-head
    block lists: random lists of fixed length per row at the given densities (diagonal block always kept), or
    (c) exactly the lists our benchmark used (`--block-lists FILE.npz` from `vdit bench attention --save-layout`).
bf16, batch 1, token-major [B, L, H, D] storage (what a DiT's linear layers produce) seen as [B, H, L, D];
random uniform(-1, 1) inputs rotated over 3 buffer sets so L2 does not flatter; median of N timed calls after
2 warm-ups, CUDA events. TFLOP/s = 4·L²·D·H / time (dense), 4·B²·D·(listed blocks) / time (FlexAttention).
FlexAttention is first checked against SDPA-math with the same element mask on a few query blocks.
Prints a table and, with --json, writes everything to a file. It does not time backward passes.

Example: python3 tools/bench/torch_attention_peer.py --heads 12 --seq 32768 --head-dim 128 \
             --densities 0.125,0.25,0.5,1 --json out.json
"""
import argparse
import json
import sys
import time

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

BACKENDS = {"FLASH": SDPBackend.FLASH_ATTENTION, "CUDNN": SDPBackend.CUDNN_ATTENTION,
            "EFFICIENT": SDPBackend.EFFICIENT_ATTENTION}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--seq", type=int, default=32768)
    p.add_argument("--head-dim", type=int, default=128)
    p.add_argument("--block", type=int, default=128, help="FlexAttention block size (both sides)")
    p.add_argument("--densities", default="0.125,0.25,0.5,1",
                   help="comma list of block densities for random lists; empty = none")
    p.add_argument("--block-lists", default=None, help="npz with full_ptr [rows+1] int64, full_idx int32, "
                   "rows = heads·nQ (from vdit bench attention --save-layout)")
    p.add_argument("--backends", default="FLASH,CUDNN,EFFICIENT")
    p.add_argument("--iters", type=int, default=5, help="timed calls (median); at least 5")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--no-flex", action="store_true", help="dense backends only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None)
    a = p.parse_args()
    a.iters = max(a.iters, 5)
    return a


def time_calls(fn, n_sets, warmup, iters):
    """Median and min milliseconds of fn(i % n_sets) over `iters` calls after `warmup` calls."""
    for i in range(warmup):
        fn(i % n_sets)
    torch.cuda.synchronize()
    ms = []
    for i in range(iters):
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record()
        fn(i % n_sets)
        e1.record()
        e1.synchronize()
        ms.append(e0.elapsed_time(e1))
    ms.sort()
    return ms[len(ms) // 2], ms[0]


def make_inputs(args, n_sets=3):
    g = torch.Generator(device="cuda").manual_seed(args.seed)
    sets = []
    for _ in range(n_sets):
        qkv = [(torch.rand(1, args.seq, args.heads, args.head_dim, device="cuda", generator=g) * 2 - 1)
               .to(torch.bfloat16) for _ in range(3)]
        sets.append([t.transpose(1, 2) for t in qkv])  # [B, H, L, D] views of [B, L, H, D] storage
    return sets


def bench_dense(args, sets):
    rows = []
    flops = 4.0 * args.seq * args.seq * args.head_dim * args.heads
    for name in [b.strip().upper() for b in args.backends.split(",") if b.strip()]:
        row = {"backend": name}
        try:
            with sdpa_kernel([BACKENDS[name]]):
                med, mn = time_calls(lambda i: F.scaled_dot_product_attention(*sets[i]), len(sets), args.warmup,
                                     args.iters)
            row.update(ms=med, min_ms=mn, tflops=flops / (med * 1e-3) / 1e12)
        except Exception as e:  # a backend may refuse the shape; say so and go on
            row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
        rows.append(row)
    return rows


# ---- block lists -----------------------------------------------------------------------------------------

# Block lists are kept as tensors: counts [rows] int64 and idx [rows, nK] int32, each row's first counts[r]
# entries sorted ascending (the rest padding), rows = heads·nQ in (head, query block) order.

def random_lists(heads, nq, nk, density, seed, device="cuda"):
    """Per (head, query block) round(density·nk) distinct key blocks (at least 1), the diagonal included."""
    g = torch.Generator(device=device).manual_seed(seed)
    rows = heads * nq
    per_row = max(1, min(nk, round(density * nk)))
    diag = torch.arange(nq, device=device).clamp(max=nk - 1).repeat(heads)
    keys = torch.rand(rows, nk, generator=g, device=device)
    keys[torch.arange(rows, device=device), diag] = -1.0  # sorts first: always chosen
    chosen = keys.argsort(dim=1)[:, :per_row].sort(dim=1).values
    idx = torch.zeros(rows, nk, dtype=torch.int32, device=device)
    idx[:, :per_row] = chosen.to(torch.int32)
    return torch.full((rows,), per_row, dtype=torch.int64, device=device), idx


def load_lists(path, heads, nq, nk):
    import numpy as np
    z = np.load(path)
    ptr, idx = z["full_ptr"].astype("int64"), z["full_idx"].astype("int64")
    rows = len(ptr) - 1
    meta = {k: z[k].tolist() for k in z.files if k not in ("full_ptr", "full_idx", "partial_ptr", "partial_idx")}
    per_row = [idx[ptr[r]:ptr[r + 1]] for r in range(rows)]
    partial = 0
    if "partial_ptr" in z.files and len(z["partial_idx"]) > 0:
        # Element predicates are not in the file: partial blocks are run as full blocks (time, not masking).
        pptr, pidx = z["partial_ptr"].astype("int64"), z["partial_idx"].astype("int64")
        partial = int(len(pidx))
        per_row = [np.union1d(per_row[r], pidx[pptr[r]:pptr[r + 1]]) for r in range(rows)]
    if rows == nq:  # head-shared lists
        per_row = per_row * heads
        rows = heads * nq
    if rows != heads * nq:
        sys.exit(f"{path}: {rows} rows, but heads {heads} x query blocks {nq} = {heads * nq}; pass the --heads, "
                 f"--seq and --block the layout was made for")
    counts = torch.tensor([len(x) for x in per_row], dtype=torch.int64)
    out = torch.zeros(rows, nk, dtype=torch.int32)
    for r, x in enumerate(per_row):
        out[r, : len(x)] = torch.from_numpy(np.sort(x).astype("int32"))
    return (counts, out), {"file": path, "partial_blocks_run_as_full": partial, "meta": meta}


def adopt_layout_shape(args):
    """The layout file's scalars (block, seq_len, num_heads) override --block, --seq, --heads."""
    import numpy as np
    z = np.load(args.block_lists)
    for key, attr in (("block", "block"), ("seq_len", "seq"), ("num_heads", "heads")):
        if key in z.files:
            value = int(z[key])
            if value != getattr(args, attr):
                print(f"  {args.block_lists}: {key} {value} replaces --{attr.replace('_', '-')} {getattr(args, attr)}")
                setattr(args, attr, value)


def block_mask_from_lists(lists, heads, nq, nk, block, seq):
    from torch.nn.attention.flex_attention import BlockMask
    counts, idx = lists
    counts = counts.to(torch.int32).view(1, heads, nq).cuda()
    idx = idx.view(1, heads, nq, nk).cuda()
    # All listed blocks are "full" (no mask_mod evaluated inside them); no partial blocks.
    return BlockMask.from_kv_blocks(torch.zeros_like(counts), torch.zeros_like(idx), counts, idx, BLOCK_SIZE=block,
                                    seq_lengths=(seq, seq))


def check_flex(flex, q, k, v, lists, heads, nq, block, seq, bm):
    """Max |flex - math| and max |math| on query blocks 0 and nq-1 of every head, with the lists' element mask."""
    counts, idx = lists
    out = flex(q, k, v, block_mask=bm)
    key_block = torch.arange(seq, device="cuda") // block
    worst, scale = 0.0, 0.0
    for h in range(heads):
        for r in sorted({0, nq - 1}):
            row = h * nq + r
            q0, q1 = r * block, min(seq, (r + 1) * block)
            cols = idx[row, : counts[row]].to(device="cuda", dtype=torch.int64)
            mask = torch.isin(key_block, cols).expand(q1 - q0, seq)
            with sdpa_kernel([SDPBackend.MATH]):
                ref = F.scaled_dot_product_attention(q[:, h:h + 1, q0:q1].float(), k[:, h:h + 1].float(),
                                                     v[:, h:h + 1].float(), attn_mask=mask)
            worst = max(worst, (out[:, h:h + 1, q0:q1].float() - ref).abs().max().item())
            scale = max(scale, ref.abs().max().item())
    return worst, scale


def print_flex_row(r):
    if "ms" in r:
        sp = r["speedup_vs_cudnn_dense"]
        print(f"  {r['lists']:<7} {r['block_density']:8.4f} {r['ms']:9.3f} {r['tflops_computed']:9.1f} "
              f"{(f'{sp:.2f}x' if sp else '-'):>9} {r['max_abs_err_vs_math']:9.2e}{'' if r['valid'] else '  INVALID'}",
              flush=True)
    else:
        print(f"  {r['lists']:<7} {r['block_density']:8.4f} error: {r['error']}", flush=True)


def bench_flex(args, sets, dense_cudnn_ms, result, save):
    """Appends one row per block-list set to result["flex"], printing and saving after each."""
    from torch.nn.attention.flex_attention import flex_attention
    B, H, L, D = args.block, args.heads, args.seq, args.head_dim
    nq = nk = (L + B - 1) // B
    flex = torch.compile(flex_attention, dynamic=False)
    cases = []
    if args.block_lists:
        lists, info = load_lists(args.block_lists, H, nq, nk)
        cases.append(("file", lists, info))
    for d in [float(x) for x in args.densities.split(",") if x.strip()]:
        cases.append((d, random_lists(H, nq, nk, d, args.seed + int(d * 1000)), {}))
    print(f"FlexAttention (torch.compile, {B}x{B} full blocks; TFLOP/s* on computed blocks = 4·B²·D·listed / time)")
    print(f"  {'lists':<7} {'density':>8} {'ms':>9} {'TFLOP/s*':>9} {'vs cuDNN':>9} {'max|err|':>9}", flush=True)
    for what, lists, info in cases:
        bm = block_mask_from_lists(lists, H, nq, nk, B, L)
        listed = int(lists[0].sum())
        row = {"lists": "file" if what == "file" else "random", "density_requested": None if what == "file" else what,
               "block_density": listed / (H * nq * nk), "listed_blocks": listed, **info}
        try:
            if result["flex_compile_s"] is None:
                t0 = time.time()
                flex(*sets[0], block_mask=bm)
                torch.cuda.synchronize()
                result["flex_compile_s"] = time.time() - t0
                print(f"  (compiled in {result['flex_compile_s']:.1f} s)", flush=True)
            err, ref_max = check_flex(flex, *sets[0], lists, H, nq, B, L, bm)
            # A wrong list changes outputs by about their own size; bf16 rounding is ~1e-2 of it.
            row.update(max_abs_err_vs_math=err, max_abs_math=ref_max, valid=err <= 0.05 * ref_max)
            med, mn = time_calls(lambda i: flex(*sets[i], block_mask=bm), len(sets), args.warmup, args.iters)
            row.update(ms=med, min_ms=mn, tflops_computed=4.0 * B * B * D * listed / (med * 1e-3) / 1e12,
                       speedup_vs_cudnn_dense=(dense_cudnn_ms / med) if dense_cudnn_ms else None)
        except Exception as e:
            row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"
        result["flex"].append(row)
        print_flex_row(row)
        save()


def main():
    args = parse_args()
    if not torch.cuda.is_available():
        sys.exit("no CUDA device")
    torch.backends.cuda.matmul.allow_tf32 = False
    t_start = time.time()
    result = {
        "tool": "torch_attention_peer", "torch": torch.__version__, "cudnn": torch.backends.cudnn.version(),
        "device": torch.cuda.get_device_name(), "dtype": "bf16", "batch": 1, "heads": args.heads,
        "seq": args.seq, "head_dim": args.head_dim, "layout": "BSHD storage, BHSD view", "inputs": "uniform(-1,1)",
        "iters": args.iters, "warmup": args.warmup, "dense": [], "flex_block": args.block,
        "flex_compile_s": None, "flex": [], "wall_s": None,
    }

    def save():  # after every stage, so a run cut short still leaves its numbers
        result["wall_s"] = time.time() - t_start
        if args.json:
            with open(args.json, "w") as f:
                json.dump(result, f, indent=1)

    print(f"torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}, {torch.cuda.get_device_name()}")
    if args.block_lists:
        adopt_layout_shape(args)
        result.update(heads=args.heads, seq=args.seq, flex_block=args.block)
    sets = make_inputs(args)
    result["dense"] = bench_dense(args, sets)
    print(f"dense SDPA, bf16, B=1, H={args.heads}, L={args.seq}, D={args.head_dim} "
          f"(median of {args.iters} after {args.warmup} warm-ups)")
    print(f"  {'backend':<10} {'ms':>9} {'TFLOP/s':>8}")
    for r in result["dense"]:
        if "ms" in r:
            print(f"  {r['backend']:<10} {r['ms']:9.3f} {r['tflops']:8.1f}")
        else:
            print(f"  {r['backend']:<10} error: {r['error']}")
    sys.stdout.flush()
    save()
    cudnn_ms = next((r["ms"] for r in result["dense"] if r["backend"] == "CUDNN" and "ms" in r), None)
    if not args.no_flex:
        bench_flex(args, sets, cudnn_ms, result, save)
    if args.json:
        print(f"wrote {args.json} ({result['wall_s']:.1f} s)")


if __name__ == "__main__":
    main()
