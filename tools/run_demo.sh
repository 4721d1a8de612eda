#!/usr/bin/env bash
# Quick-start command 1: install what is missing, build, and generate a video with the built-in model
# (samples/models/vdit-tiny-t2v) on the CPU. Extra arguments go to `vdit generate` (e.g. --prompt "...").
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p build
tools/setup.sh
tools/build.sh
out=build/demo.mp4
build/release/bin/vdit generate --prompt "a red circle moving right on a black background" -o "$out" "$@"
echo "wrote $out"
