#!/bin/bash
# SPDX-License-Identifier: MIT
# The README's quick start: slmd from the build tree on a private bus, a model imported into a
# fresh store, a story streamed through slmctl, the daemon stopped.
# Usage: tests/quickstart.sh [BUILD_DIR] [MODEL.gguf]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/../build}" && pwd)
model=${2:-$here/../../shared/models/stories260K-f32.gguf}
# shellcheck source=private-bus.sh
. "$here/private-bus.sh"

echo "== a private bus and slmd"
start_bus
start_slmd
"${slmctl[@]}" status || { cat "$tmp/slmd.log" >&2; exit 1; }

echo "== import $(basename "$model")"
"${slmctl[@]}" import "$model"
"${slmctl[@]}" list

echo "== slmctl run --default \"Once upon a time\""
"${slmctl[@]}" run --default "Once upon a time" -n 100 --temp 0

echo "== stop"
kill -TERM "$slmd_pid"
status=0
wait "$slmd_pid" || status=$?
slmd_pid=
if [ "$status" -ne 0 ]; then
        echo "slmd exited with status $status:" >&2
        cat "$tmp/slmd.log" >&2
        exit 1
fi
echo "slmd stopped cleanly"
