#!/usr/bin/env bash
# Quick-start command 2: install what is missing, build, run the whole test suite (GPU tests skip
# without a GPU). Any extra arguments go to ctest (e.g. -L cpu, -R test_core).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p build
tools/setup.sh
tools/build.sh
cd build/release
ctest --output-on-failure -j"$(nproc)" "$@"
