#!/usr/bin/env bash
# GPU round script of VMoBA's GPU path (helper "vmoba"), run from the repository root after build/gpu is
# built: the VmobaCuda tests of test_cuda_attention_methods (device planner vs host planner, forward_device vs
# the CPU method), the VmobaTiming test (planning vs gathered attention at Wan 480p/720p), a DiT step with
# --attention vmoba, then compute-sanitizer memcheck of the planner test. Stays under ~180 s.
# Usage: tools/device/gpu_vmoba.sh OUT_DIR   (logs go to OUT_DIR)
set -uo pipefail
out="${1:-/tmp/gpu_vmoba_out}"
mkdir -p "$out"
start=$(date +%s)
elapsed() { echo $(( $(date +%s) - start )); }
suite=build/gpu/tests/cuda_attention_methods/test_cuda_attention_methods
vdit=build/gpu/bin/vdit

nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader
if [ ! -x "$suite" ]; then
  echo "MISSING $suite (build failed?)"
  exit 1
fi
echo "== VmobaCuda.* (correctness)"
timeout 70 "$suite" --gtest_filter='VmobaCuda.*' 2>&1 | tee "$out/vmoba_tests.log" | tail -n 80
echo "tests rc=${PIPESTATUS[0]} at $(elapsed) s"

echo "== VmobaTiming.* (at $(elapsed) s)"
VDIT_PLANNER_TIMING=1 timeout 75 "$suite" --gtest_filter='VmobaTiming.*' 2>&1 | tee "$out/vmoba_timing.log" | tail -n 90
echo "timing rc=${PIPESTATUS[0]} at $(elapsed) s"

if [ -x "$vdit" ]; then
  echo "== vdit bench step --attention vmoba (at $(elapsed) s)"
  timeout 50 "$vdit" bench step --model-config wan2.1-1.3b --size 480p --frames 81 --attention vmoba --no-validate \
    --no-components --iters 3 --warmup 1 2>&1 | tee "$out/bench_step_vmoba.log" | tail -n 25
  echo "bench step rc=${PIPESTATUS[0]} at $(elapsed) s"
else
  echo "MISSING $vdit"
fi

san=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
if [ -n "$san" ] && [ "$(elapsed)" -lt 140 ]; then
  echo "== compute-sanitizer memcheck: VmobaCuda.PlannerMatchesHost (at $(elapsed) s)"
  timeout 30 "$san" --tool memcheck --error-exitcode 9 --print-limit 12 "$suite" \
    --gtest_filter='VmobaCuda.PlannerMatchesHost' > "$out/memcheck_vmoba.log" 2>&1
  echo "memcheck rc=$? at $(elapsed) s (full log: memcheck_vmoba.log); errors/failures:"
  grep -n -m 30 -E "=========|Failure|FAILED" "$out/memcheck_vmoba.log" | head -n 40
  tail -n 4 "$out/memcheck_vmoba.log"
fi
if [ -n "$san" ] && [ "$(elapsed)" -lt 160 ]; then
  echo "== compute-sanitizer memcheck: one sparse call through the method (gathered kernel; at $(elapsed) s)"
  timeout 20 "$san" --tool memcheck --report-api-errors no --error-exitcode 9 --print-limit 12 "$suite" \
    --gtest_filter='VmobaCuda.OutputsMatchCpu' > "$out/memcheck_vmoba_outputs.log" 2>&1
  echo "memcheck rc=$? at $(elapsed) s"
  grep -n -m 20 -E "=========|Failure|FAILED" "$out/memcheck_vmoba_outputs.log" | head -n 30
  tail -n 4 "$out/memcheck_vmoba_outputs.log"
fi
echo "done at $(elapsed) s"
