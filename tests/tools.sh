#!/bin/bash
# SPDX-License-Identifier: MIT
# The benchmark tools on a real shape: slm-mkmodel writes the TinyLlama-1.1B shape in Q4_K_M
# (Q4_K with Q6_K for the output and some attn_v/ffn_down), the engine loads it, and slm-bench
# measures it and prints the JSON fields the README promises; bad arguments get clear errors.
# Usage: tests/tools.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
mkmodel=$build/daemon/tools/slm-mkmodel
bench=$build/daemon/tools/slm-bench
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() {
        echo "FAIL: $*" >&2
        exit 1
}

# Runs "$@", which must exit with $1 and say $2 on stderr.
expect_error() {
        local want=$1 says=$2 rc=0
        shift 2
        "$@" 2>"$tmp/err" >/dev/null || rc=$?
        [ "$rc" -eq "$want" ] || fail "$* exited $rc, not $want"
        grep -q -- "$says" "$tmp/err" || fail "$* said: $(cat "$tmp/err")"
}

echo "== slm-mkmodel --shape tinyllama-1.1b --type q4_k_m"
"$mkmodel" --shape tinyllama-1.1b --type q4_k_m -o "$tmp/tl.gguf"
mib=$(( $(stat -c %s "$tmp/tl.gguf") >> 20 ))
echo "$mib MiB"
# 1.1B weights at about 4.8 bits; one layer is about 25 MiB, so a missing one shows
[ "$mib" -ge 620 ] && [ "$mib" -le 660 ] || fail "$mib MiB for the 1.1B shape in Q4_K_M"
[ ! -e "$tmp/tl.gguf.part" ] || fail "the partial file was left behind"

echo "== slm-bench --json"
"$bench" -m "$tmp/tl.gguf" -p 8 -n 4 -t 2 -r 2 --json | tee "$tmp/bench.json"
/usr/bin/python3 - "$tmp/bench.json" <<'PY'
import json, sys

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
tests = [r["test"] for r in rows]
assert tests == ["pp8", "tg4"], tests
for r in rows:
    assert r["arch"] == "llama", r
    assert r["threads"] == 2 and r["backend"] == "cpu", r
    assert r["min"] <= r["tokens_per_s"] <= r["max"] and r["tokens_per_s"] > 0, r
    assert r["kv_type"] == "F16", r
    assert 0.5 < r["weights_gb"] < 0.75, r
    assert r["rss_gb"] > 0.5, r  # the weights are resident while the model is loaded
tg = rows[1]
assert tg["decode_gb_per_s"] > 0 and tg["memory_read_gb_per_s"] > 0, tg
# decode reads every weight once per token
assert abs(tg["decode_gb_per_s"] / tg["tokens_per_s"] - tg["weights_gb"]) < 0.01, tg
print("bench JSON: ok")
PY

echo "== errors"
expect_error 2 "unknown shape 'tinyllama'" "$mkmodel" --shape tinyllama --type q4_0 -o "$tmp/x.gguf"
expect_error 2 "unknown type 'q3_k'" "$mkmodel" --shape tinyllama-1.1b --type q3_k -o "$tmp/x.gguf"
expect_error 1 "cannot create" "$mkmodel" --shape tinyllama-1.1b --type q4_0 -o "$tmp/no/x.gguf"
printf 'not a model' >"$tmp/bad.gguf"
expect_error 1 "GGUF" "$bench" -m "$tmp/bad.gguf"
expect_error 2 "-t 1..64" "$bench" -m "$tmp/tl.gguf" -t 0
expect_error 2 "kv-type" "$bench" -m "$tmp/tl.gguf" --kv-type q4_0
echo "tools: ok"
