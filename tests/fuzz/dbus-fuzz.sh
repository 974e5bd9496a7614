#!/bin/bash
# SPDX-License-Identifier: MIT
# The D-Bus fuzzer against slmd from a build tree: a private bus configured like the system bus
# with the project's policy, slmd on it, fuzz-dbus's seeded campaigns, then slmd stopped. Fails
# when a campaign's checks fail, when slmd does not exit cleanly (under the sanitizers: a leak)
# or when its log holds a sanitizer report.
#   dbus-fuzz.sh BUILD BUS_CONF MODEL [MODEL...]
# SLM_FUZZ_DBUS_CALLS, _RUNS, _CLIENTS and _SEED override the campaign (calls per run, runs,
# connections, first seed); SLM_FUZZ_DBUS_RSS_SLACK the RSS growth allowed (%, 0: unchecked).
set -u
build=$1 conf=$2
shift 2
# shellcheck source=../private-bus.sh
. "$(dirname "$0")/../private-bus.sh"
chmod 755 "$tmp" # another user's campaign reaches the bus too
start_bus "$conf"
start_slmd --threads 2

models=()
for m in "$@"; do
        models+=(--model "$m")
done
seed=${SLM_FUZZ_DBUS_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
foreign=()
# as root, user nobody runs a campaign of its own beside each one
[ "$(id -u)" -eq 0 ] && foreign=(--foreign-uid "$(id -u nobody)")
"$build/tests/fuzz/fuzz-dbus" --address "$address" --pid "$slmd_pid" "${models[@]}" \
        --seed "$seed" --runs "${SLM_FUZZ_DBUS_RUNS:-5}" --calls "${SLM_FUZZ_DBUS_CALLS:-2000}" \
        --clients "${SLM_FUZZ_DBUS_CLIENTS:-4}" --rss-slack "${SLM_FUZZ_DBUS_RSS_SLACK:-15}" \
        "${foreign[@]}"
status=$?

if kill -0 "$slmd_pid" 2>/dev/null; then
        kill "$slmd_pid"
        wait "$slmd_pid"
        rc=$?
        slmd_pid=
        if [ "$rc" -ne 0 ]; then
                echo "FAIL: slmd exited with status $rc on SIGTERM"
                status=1
        fi
else
        wait "$slmd_pid"
        echo "FAIL: slmd died (status $?)"
        slmd_pid=
        status=1
fi
if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:|CRITICAL' "$tmp/slmd.log"; then
        echo "FAIL: slmd's log:"
        grep -E -A30 'ERROR: (Address|Leak)Sanitizer|runtime error:|CRITICAL' "$tmp/slmd.log" | head -80
        status=1
fi
[ "$status" -ne 0 ] && { echo "--- slmd log (last lines)"; tail -40 "$tmp/slmd.log"; }
exit $status
