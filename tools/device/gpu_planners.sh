#!/usr/bin/env bash
# GPU round script of the sparse methods' GPU path (helper "planners"), run from the repository root after
# build/gpu is built: the test_cuda_attention_methods suite (forward_device vs the CPU methods, device vs
# host Draft layouts), then its Timing test (planning vs attention time at the Wan2.1 shapes), then
# compute-sanitizer memcheck/racecheck on the device planners. Stays under ~150 s.
# Usage: tools/device/gpu_planners.sh OUT_DIR   (logs go to OUT_DIR)
set -uo pipefail
out="${1:-/tmp/gpu_planners_out}"
mkdir -p "$out"
start=$(date +%s)
elapsed() { echo $(( $(date +%s) - start )); }
suite=build/gpu/tests/cuda_attention_methods/test_cuda_attention_methods

nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader
if [ ! -x "$suite" ]; then
  echo "MISSING $suite (build failed?)"
  exit 1
fi
echo "== test_cuda_attention_methods (correctness)"
timeout 60 "$suite" --gtest_filter='MethodsCuda.*' 2>&1 | tee "$out/methods.log" | tail -n 150
echo "methods rc=${PIPESTATUS[0]} at $(elapsed) s"

echo "== test_cuda_attention_methods Timing (at $(elapsed) s)"
VDIT_PLANNER_TIMING=1 timeout 60 "$suite" --gtest_filter='Timing.*' 2>&1 | tee "$out/timing.log" | tail -n 60
echo "timing rc=${PIPESTATUS[0]} at $(elapsed) s"

san=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
if [ -n "$san" ] && [ "$(elapsed)" -lt 100 ]; then
  echo "== compute-sanitizer memcheck: Draft layouts + outputs (no cuDNN; at $(elapsed) s)"
  timeout 40 "$san" --tool memcheck --error-exitcode 9 --print-limit 12 "$suite" \
    --gtest_filter='MethodsCuda.DraftDeviceLayoutMatchesHost:MethodsCuda.DraftOutputs' > "$out/memcheck_draft.log" 2>&1
  echo "memcheck rc=$? at $(elapsed) s (full log: memcheck_draft.log); first lines of errors/failures:"
  grep -n -m 40 -E "=========|Failure|FAILED|Expected|Which is|Value of|Actual" "$out/memcheck_draft.log" | head -n 60
  tail -n 6 "$out/memcheck_draft.log"
fi
if [ -n "$san" ] && [ "$(elapsed)" -lt 115 ]; then
  echo "== compute-sanitizer memcheck: Re-ttention steps, API errors not reported (cuDNN probes; at $(elapsed) s)"
  timeout 25 "$san" --tool memcheck --report-api-errors no --error-exitcode 9 --print-limit 12 "$suite" \
    --gtest_filter='MethodsCuda.RettentionCachingAndSparseSteps' > "$out/memcheck_rettention.log" 2>&1
  echo "memcheck rc=$? at $(elapsed) s"
  grep -n -m 30 -E "=========|Failure|FAILED" "$out/memcheck_rettention.log" | head -n 40
  tail -n 4 "$out/memcheck_rettention.log"
fi
if [ -n "$san" ] && [ "$(elapsed)" -lt 125 ]; then
  echo "== compute-sanitizer racecheck + synccheck: Draft layouts (at $(elapsed) s)"
  timeout 15 "$san" --tool racecheck --error-exitcode 9 "$suite" \
    --gtest_filter='MethodsCuda.DraftDeviceLayoutMatchesHost' 2>&1 | tail -n 4
  echo "racecheck rc=${PIPESTATUS[0]} at $(elapsed) s"
  timeout 15 "$san" --tool synccheck --error-exitcode 9 "$suite" \
    --gtest_filter='MethodsCuda.DraftDeviceLayoutMatchesHost' 2>&1 | tail -n 4
  echo "synccheck rc=${PIPESTATUS[0]} at $(elapsed) s"
fi
echo "done at $(elapsed) s"
