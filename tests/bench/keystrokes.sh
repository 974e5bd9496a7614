#!/bin/bash
# SPDX-License-Identifier: MIT
# A keyboard typing tests/bench/story.txt through slmd: keystroke savings of Suggest against
# presage (when built with libpresage-dev), and Suggest latency idle and beside 2 streaming
# clients, in one run.
# Usage: tests/bench/keystrokes.sh BUILD_DIR [MODEL.gguf] [TEXT]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/../../build}" && pwd)
model=${2:-$here/../../../shared/models/stories260K-f32.gguf}
text=${3:-$here/story.txt}
# shellcheck source=../private-bus.sh
. "$here/../private-bus.sh"
start_bus
start_slmd --model "$model" --threads "${SLM_BENCH_THREADS:-2}"
"${slmctl[@]}" status | sed -n '1p;4p'
# presage learns what it is shown into ~/.presage: a fresh home, so every run starts alike
mkdir -p "$tmp/home"
HOME=$tmp/home "$build/tests/keystrokes" "$address" "$text" 0
"$build/tests/keystrokes" "$address" "$text" 2 --no-presage
