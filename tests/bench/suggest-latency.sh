#!/bin/bash
# SPDX-License-Identifier: MIT
# Suggest latency with and without preemption, side by side in one run: slmd on a private bus,
# a long "normal" generation streaming, an "interactive" session calling Suggest.
# Usage: tests/bench/suggest-latency.sh BUILD_DIR [MODEL.gguf] [N_SUGGESTS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/../../build}" && pwd)
model=${2:-$here/../../../shared/models/stories260K-f32.gguf}
n=${3:-300}
# shellcheck source=../private-bus.sh
. "$here/../private-bus.sh"
start_bus

for preemption in true false; do
        printf '[daemon]\npreemption=%s\n' "$preemption" >"$tmp/slmd.conf"
        start_slmd --config "$tmp/slmd.conf" --model "$model"
        printf 'preemption %-5s  ' "$preemption"
        "$build/tests/suggest-latency" "$address" "$n"
        kill -TERM "$slmd_pid"
        wait "$slmd_pid"
        slmd_pid=
done
