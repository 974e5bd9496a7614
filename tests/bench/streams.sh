#!/bin/bash
# SPDX-License-Identifier: MIT
# Aggregate decode tokens/s through slmd for 1, 2, 4 and 8 concurrent streams, in one run: slmd
# on a private bus with MODEL, then each count of clients generating TOKENS tokens at once.
# Usage: tests/bench/streams.sh BUILD_DIR MODEL.gguf [TOKENS] [COUNTS...]
#   (the model: build/daemon/tools/slm-mkmodel --shape tinyllama-1.1b --type q4_0 -o FILE)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/../../build}" && pwd)
model=${SLM_STREAMS_MODEL:-${2:?a model file}}
tokens=${3:-64}
shift $(($# > 3 ? 3 : $#))
counts=("${@:-1 2 4 8}")
# shellcheck source=../private-bus.sh
. "$here/../private-bus.sh"
start_bus
start_slmd --model "$model" --threads "${SLM_BENCH_THREADS:-2}"
"${slmctl[@]}" status | sed -n '1p;4p'
"$build/tests/streams" "$address" 1 8 >/dev/null # pages the weights in
for n in ${counts[*]}; do
        "$build/tests/streams" "$address" "$n" "$tokens"
done
