#!/usr/bin/env bash
# Quick-start command 1: install what is missing, build, and run the main job.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p build
tools/setup.sh
tools/build.sh
build/release/bin/vdit --help
