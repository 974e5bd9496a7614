#!/bin/sh
# SPDX-License-Identifier: MIT
# A bounded libFuzzer run: new inputs go to a scratch corpus, the seeds stay untouched.
# Usage: run-fuzz.sh FUZZER SEED_DIR SECONDS [MORE_SEED_DIR...]
set -eu
fuzzer=$1 seeds=$2 seconds=$3
shift 3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# a crashing input is kept in the current directory as fuzz-crash-*
"$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -artifact_prefix=./fuzz- "$work" "$seeds" "$@"
