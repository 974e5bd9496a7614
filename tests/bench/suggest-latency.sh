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
tmp=$(mktemp -d)
bus_pid= slmd_pid=

cleanup() {
        [ -n "$slmd_pid" ] && kill "$slmd_pid" 2>/dev/null && wait "$slmd_pid" 2>/dev/null
        [ -n "$bus_pid" ] && kill "$bus_pid" 2>/dev/null && wait "$bus_pid" 2>/dev/null
        rm -rf "$tmp"
}
trap cleanup EXIT

address="unix:path=$tmp/bus"
dbus-daemon --session --nofork --address="$address" &
bus_pid=$!
for _ in $(seq 100); do
        [ -S "$tmp/bus" ] && break
        sleep 0.05
done

for preemption in true false; do
        printf '[daemon]\npreemption=%s\n' "$preemption" >"$tmp/slmd.conf"
        "$build/daemon/slmd" --address "$address" --state-dir "$tmp/state" --config "$tmp/slmd.conf" \
                --model "$model" 2>"$tmp/slmd.log" &
        slmd_pid=$!
        for _ in $(seq 100); do
                "$build/client/slmctl" --address "$address" status >/dev/null 2>&1 && break
                sleep 0.1
        done
        printf 'preemption %-5s  ' "$preemption"
        "$build/tests/suggest-latency" "$address" "$n"
        kill -TERM "$slmd_pid"
        wait "$slmd_pid"
        slmd_pid=
done
