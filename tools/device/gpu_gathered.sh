#!/usr/bin/env bash
# GPU round script of the gathered block-sparse kernel and DraftAttention on padded grids (helper "gathered"),
# run from the repository root after build/gpu is built: the test_cuda_attention_sparse suite (the gathered
# tests first, then the BlockLayout tests: no regression), the Draft tests of test_cuda_attention_methods
# (device planner vs host planner on aligned and padded grids, forward_device vs the CPU method), the
# planner timing (Timing.DraftWanShapes: planning share at Wan 1.3B 480p / 14B 720p, the gathered kernel vs
# block_sparse_attention_cuda on the same lists; then Timing.PlanningVsAttention), and compute-sanitizer
# memcheck / racecheck / synccheck on small gathered and planner tests. Stays under ~330 s.
# Usage: tools/device/gpu_gathered.sh OUT_DIR   (BIN_DIR=dir holding the two test binaries overrides build/gpu)
set -uo pipefail
out="${1:-/tmp/gpu_gathered_out}"
mkdir -p "$out"
start=$(date +%s)
elapsed() { echo $(( $(date +%s) - start )); }
sparse=${BIN_DIR:+$BIN_DIR/test_cuda_attention_sparse}
sparse=${sparse:-build/gpu/tests/cuda_attention_sparse/test_cuda_attention_sparse}
methods=${BIN_DIR:+$BIN_DIR/test_cuda_attention_methods}
methods=${methods:-build/gpu/tests/cuda_attention_methods/test_cuda_attention_methods}

nvidia-smi --query-gpu=name,memory.used,memory.total,clocks.sm --format=csv,noheader
for b in "$sparse" "$methods"; do
  [ -x "$b" ] || { echo "MISSING $b (build failed?)"; exit 1; }
  if ldd "$b" | grep -q "not found"; then  # carried binaries: fall back to the PyTorch wheel's cuDNN
    wheel=$(python3 -c 'import nvidia.cudnn, os; print(os.path.join(list(nvidia.cudnn.__path__)[0], "lib"))' 2>/dev/null)
    export LD_LIBRARY_PATH="${wheel:+$wheel:}/usr/local/cuda/lib64:/usr/local/cuda/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    ldd "$b" | grep "not found"
  fi
done

echo "== gathered kernel tests (at $(elapsed) s)"
timeout 90 "$sparse" --gtest_filter='BlockSparseGatheredCuda.*' > "$out/gathered.log" 2>&1
echo "gathered rc=$? at $(elapsed) s"
grep -E "^\[ +(OK|FAILED|RUN) +\]|Failure|error|Which is|Expected|gathered\(" "$out/gathered.log" | head -n 60
tail -n 3 "$out/gathered.log"

echo "== Draft planner + forward_device tests (at $(elapsed) s)"
timeout 80 "$methods" --gtest_filter='MethodsCuda.Draft*' > "$out/draft.log" 2>&1
echo "draft rc=$? at $(elapsed) s"
grep -vE "^\[ +RUN +\]" "$out/draft.log" | head -n 60

echo "== planner timing (at $(elapsed) s)"
VDIT_PLANNER_TIMING=1 timeout 70 "$methods" --gtest_filter='Timing.DraftWanShapes' > "$out/timing_draft.log" 2>&1
echo "timing rc=$? at $(elapsed) s"
grep -vE "^\[ +RUN +\]|^\[-|^\[=|^$" "$out/timing_draft.log" | head -n 40

echo "== BlockLayout kernel tests (no regression; at $(elapsed) s)"
timeout 80 "$sparse" --gtest_filter='BlockSparseCuda.*' > "$out/layout.log" 2>&1
echo "layout rc=$? at $(elapsed) s"
grep -E "^\[ +(OK|FAILED) +\]|Failure" "$out/layout.log" | head -n 30
tail -n 3 "$out/layout.log"

san=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
if [ -n "$san" ] && [ "$(elapsed)" -lt 230 ]; then
  echo "== compute-sanitizer memcheck: gathered self-only / validator tests (at $(elapsed) s)"
  timeout 45 "$san" --tool memcheck --error-exitcode 9 --print-limit 12 "$sparse" \
    --gtest_filter='BlockSparseGatheredCuda.SelfOnlyRowsAndEmptyQueries:BlockSparseGatheredCuda.ValidatorAndErrors' \
    > "$out/memcheck_gathered.log" 2>&1
  echo "memcheck rc=$? at $(elapsed) s"
  grep -n -m 20 -E "=========|Failure|FAILED" "$out/memcheck_gathered.log" | head -n 24
  tail -n 3 "$out/memcheck_gathered.log"
fi
if [ -n "$san" ] && [ "$(elapsed)" -lt 270 ]; then
  echo "== compute-sanitizer memcheck + racecheck + synccheck: Draft planner layouts (at $(elapsed) s)"
  for tool in memcheck racecheck synccheck; do
    timeout 40 "$san" --tool $tool --error-exitcode 9 --print-limit 12 "$methods" \
      --gtest_filter='MethodsCuda.DraftDeviceLayoutMatchesHost' > "$out/${tool}_draft.log" 2>&1
    echo "$tool rc=$? at $(elapsed) s"
    grep -n -m 12 -E "=========|Failure|FAILED" "$out/${tool}_draft.log" | head -n 14
    tail -n 2 "$out/${tool}_draft.log"
    [ "$(elapsed)" -lt 300 ] || break
  done
fi
if [ "$(elapsed)" -lt 290 ]; then
  echo "== planning vs attention, all methods (at $(elapsed) s)"
  VDIT_PLANNER_TIMING=1 timeout 35 "$methods" --gtest_filter='Timing.PlanningVsAttention' > "$out/timing_all.log" 2>&1
  echo "timing rc=$? at $(elapsed) s"
  grep -E "^\[|draft" "$out/timing_all.log" | grep -vE "^\[ +RUN|^\[-|^\[=" | head -n 30
fi
echo "gpu_gathered.sh done in $(elapsed) s"
