#!/usr/bin/env bash
# Every cuda-labelled test suite (ctest -L cuda) on the GPU machine, after build/gpu is built. The log goes to
# OUT_DIR/ctest_cuda.log as it is written, so a run stopped by a time limit still shows how far it got.
# Usage: tools/device/gpu_cuda_tests.sh OUT_DIR
set -uo pipefail
out="${1:-/tmp/gpu_cuda_tests}"; mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.used,clocks.sm --format=csv,noheader
timeout "${CTEST_BUDGET:-280}" ctest --test-dir build/gpu -L cuda -j3 --output-on-failure --timeout 240 > "$out/ctest_cuda.log" 2>&1
echo "ctest -L cuda rc=$?"
tail -n 60 "$out/ctest_cuda.log"
