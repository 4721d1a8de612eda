#!/usr/bin/env bash
# Configures and builds vdit (Release) into build/release. Extra arguments go to CMake's configure step.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release "$@" >build/configure.log 2>&1 || { cat build/configure.log; exit 1; }
sed -n '/vdit .* configuration/,/tests /p' build/configure.log
cmake --build build/release -j"$(nproc)"
