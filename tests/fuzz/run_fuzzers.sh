#!/usr/bin/env bash
# Seeds each fuzzer's corpus from the io fixtures and malformed files, then runs it for SECONDS.
#   tests/fuzz/run_fuzzers.sh BUILD_DIR [SECONDS=60] [FUZZER...]   (BUILD_DIR configured with -DVDIT_FUZZ=ON)
# Corpora grow in BUILD_DIR/fuzz_corpus/<name>; crashes land in BUILD_DIR/fuzz_artifacts/.
set -euo pipefail
build=${1:?usage: run_fuzzers.sh BUILD_DIR [SECONDS] [FUZZER...]}
secs=${2:-60}
shift $(( $# >= 2 ? 2 : 1 ))
names=("$@")
[ ${#names[@]} -eq 0 ] && names=(safetensors pth pickle onnx)
root=$(cd "$(dirname "$0")/../.." && pwd)
data=$root/tests/data
py=/usr/bin/python3
[ -x $py ] || py=python3

seed() {  # seed NAME FILES...
  local dir=$build/fuzz_corpus/$1
  shift
  mkdir -p "$dir"
  for f in "$@"; do [ -f "$f" ] && cp -n "$f" "$dir/" || true; done
}
seed safetensors "$data"/io/pth/*.safetensors "$data"/io/onnx/*.safetensors "$data"/malformed/st_*
seed pth "$data"/io/pth/*.pth "$data"/malformed/pth_*
seed onnx "$data"/io/onnx/*.onnx "$data"/malformed/onnx_*.onnx
mkdir -p "$build/fuzz_corpus/pickle"
$py - "$build/fuzz_corpus/pickle" "$data"/io/pth/*.pth "$data"/malformed/pth_*.pth <<'PY'
import os, sys, zipfile
out = sys.argv[1]
for p in sys.argv[2:]:
    try:
        with zipfile.ZipFile(p) as z:
            for n in z.namelist():
                if n.endswith("data.pkl"):
                    open(os.path.join(out, os.path.basename(p) + ".pkl"), "wb").write(z.read(n))
    except Exception:
        pass
PY

mkdir -p "$build/fuzz_artifacts"
for n in "${names[@]}"; do
  exe=$(find "$build" -name "fuzz_$n" -type f -perm -u+x | head -1)
  [ -n "$exe" ] || { echo "fuzz_$n not built in $build"; continue; }
  dict=()
  [ -f "$root/tests/fuzz/$n.dict" ] && dict=(-dict="$root/tests/fuzz/$n.dict")
  echo "== fuzz_$n for ${secs}s"
  "$exe" "$build/fuzz_corpus/$n" "${dict[@]}" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
    -max_len=16384 -print_final_stats=1 -artifact_prefix="$build/fuzz_artifacts/$n-" 2>&1 | tail -25
done
