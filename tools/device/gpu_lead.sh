#!/usr/bin/env bash
# GPU round part of the lead: checks that need PyTorch on the GPU machine but no new code —
# how far fp32 evaluations of the official DiT formulas (CPU and GPU, TF32 off) land from the tiny golden
# and from float64 at the cross-attention stages (issue 3's 1e-5 bound), and the cuda-labelled core tests.
# Usage: tools/device/gpu_lead.sh OUT_DIR
set -uo pipefail
echo "== fp32 spread of the tiny DiT golden's cross-attention stages"
timeout 120 python3 tests/model/make_f64_reference.py --fp32-spread
echo "== test_cuda_core"
timeout 60 build/gpu/tests/cuda_core/test_cuda_core 2>&1 | tail -n 5
