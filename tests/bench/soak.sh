#!/bin/bash
# SPDX-License-Identifier: MIT
# Soak: slmd on a private bus under mixed clients for a while (streams, cancels, Suggest while
# typing, SmartReplies, slmctl runs killed mid-stream); prints requests served, errors by kind,
# p50/p99 latency per method and RSS at the start and the end.
# Usage: tests/bench/soak.sh BUILD_DIR [MODEL.gguf] [SECONDS] [STREAMERS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/../../build}" && pwd)
model=${2:-$here/../../../shared/models/stories260K-f32.gguf}
seconds=${3:-${SLM_SOAK_SECONDS:-120}}
streamers=${4:-3}
# shellcheck source=../private-bus.sh
. "$here/../private-bus.sh"
start_bus
start_slmd --model "$model" --threads 2
"$build/tests/soak" "$address" "$slmd_pid" "$build/client/slmctl" "$seconds" "$streamers"
status=$?
kill -TERM "$slmd_pid"
wait "$slmd_pid" || { echo "slmd exited with status $?"; status=1; }
slmd_pid=
exit $status
