#!/bin/sh
# SPDX-License-Identifier: MIT
# The unit's exposure as systemd-analyze rates it, offline (no running systemd needed): at most
# 2.0. Usage: hardening.sh UNIT-FILE
set -eu
unit=$1
if ! command -v systemd-analyze >/dev/null; then
        echo "systemd-analyze is missing (Debian package systemd)" >&2
        exit 1
fi
out=$(systemd-analyze security --offline=true "$unit" 2>&1) || true
echo "$out" | tail -n 25
level=$(echo "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
if [ -z "$level" ]; then
        echo "no exposure level in systemd-analyze's output" >&2
        exit 1
fi
echo "exposure: $level (at most 2.0)"
awk -v l="$level" 'BEGIN { exit !(l <= 2.0) }'
