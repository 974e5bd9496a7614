# SPDX-License-Identifier: MIT
# Sourced by the scripts that run slmd from a build tree: a private bus in a temporary
# directory, slmd on it, and the cleanup of both on exit.
# Sets: tmp, address, slmctl (array); uses: build.
tmp=$(mktemp -d)
bus_pid= slmd_pid=

cleanup() {
        [ -n "$slmd_pid" ] && kill "$slmd_pid" 2>/dev/null && wait "$slmd_pid" 2>/dev/null
        [ -n "$bus_pid" ] && kill "$bus_pid" 2>/dev/null && wait "$bus_pid" 2>/dev/null
        rm -rf "$tmp"
}
trap cleanup EXIT

address="unix:path=$tmp/bus"
slmctl=("$build/client/slmctl" --address "$address")

# start_bus [CONFIG]: a session-like bus, or one with CONFIG (a bus configuration whose
# <listen> is __LISTEN__, as tests/integration/system-bus.conf).
start_bus() {
        if [ -n "${1:-}" ]; then
                sed "s|__LISTEN__|$address|" "$1" >"$tmp/bus.conf"
                dbus-daemon --nofork --config-file="$tmp/bus.conf" 2>"$tmp/bus.log" &
        else
                dbus-daemon --session --nofork --address="$address" &
        fi
        bus_pid=$!
        for _ in $(seq 100); do
                [ -S "$tmp/bus" ] && break
                sleep 0.05
        done
}

# start_slmd [SLMD OPTIONS...]: slmd on the bus, its log in $tmp/slmd.log, answering status;
# its store in $state_dir (default: $tmp/state, removed with the bus).
start_slmd() {
        "$build/daemon/slmd" --address "$address" --state-dir "${state_dir:-$tmp/state}" "$@" \
                2>"$tmp/slmd.log" &
        slmd_pid=$!
        for _ in $(seq 100); do
                "${slmctl[@]}" status >/dev/null 2>&1 && break
                sleep 0.1
        done
}
