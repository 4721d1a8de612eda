#!/usr/bin/env bash
# Which cuDNN runs dense attention fastest on this GPU: the system library the build links (9.14) against
# the PyTorch wheel's newer copy (loaded first through LD_LIBRARY_PATH; same backend API), at the 1.3B 480p
# attention shape alone and inside the DiT forward. The PyTorch peer always uses the wheel's copy.
# Usage: tools/device/gpu_cudnn.sh OUT_DIR
set -uo pipefail
out="${1:-/tmp/gpu_cudnn}"; mkdir -p "$out"
bin=build/gpu/bin/vdit
wheel=$(python3 -c 'import nvidia.cudnn, os; print(os.path.join(list(nvidia.cudnn.__path__)[0], "lib"))' 2>/dev/null)
echo "wheel cuDNN lib: ${wheel:-none}"; ls "$wheel" 2>/dev/null | head -3
for lib in system wheel; do
  if [ "$lib" = wheel ]; then
    [ -n "$wheel" ] || continue
    export LD_LIBRARY_PATH="$wheel${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  fi
  echo "== $lib cuDNN: attention alone (dense, H=12 L=32760 D=128)"
  timeout 60 "$bin" bench attention --method dense --heads 12 --seq 32760 --head-dim 128 --iters 10 2>&1 | tail -n 6
  echo "== $lib cuDNN: 1.3B 480p forward"
  timeout 90 "$bin" bench step --model-config wan2.1-1.3b --size 480p --frames 81 --attention dense \
    --no-validate --no-components --iters 5 --warmup 2 --json "$out/step_dense_$lib.json" 2>&1 | grep -v "^  "
done
