#!/bin/bash
# SPDX-License-Identifier: MIT
# Differential test: every template of TEMPLATE_DIR... rendered by slm-template and by Jinja2
# (python3-jinja2) with the same variables must give the same bytes, or both refuse: the same
# message for raise_exception(), exit status 1; any other failure, exit status 2. TAP output.
# Skips where /usr/bin/python3 has no jinja2.
# Usage: jinja2-diff.sh SLM_TEMPLATE VARS.json TEMPLATE_DIR...
set -u
tool=$1 vars=$2
shift 2
here=$(dirname "$0")
if ! /usr/bin/python3 -c 'import jinja2' 2>/dev/null; then
        echo "1..0 # SKIP python3-jinja2 is not installed"
        exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export SOURCE_DATE_EPOCH=1785067200
templates=()
for d in "$@"; do
        templates+=("$d"/*.jinja)
done
echo "1..${#templates[@]}"
n=0 failed=0
for t in "${templates[@]}"; do
        n=$((n + 1))
        /usr/bin/python3 "$here/jinja2-render.py" "$t" "$vars" >"$work/want" 2>"$work/want.err"
        want_rc=$?
        "$tool" "$t" "$vars" >"$work/got" 2>"$work/got.err"
        got_rc=$?
        ok=0
        if [ $want_rc = 0 ] && [ $got_rc = 0 ] && cmp -s "$work/want" "$work/got"; then
                ok=1
        elif [ $want_rc = 1 ] && [ $got_rc = 1 ] && cmp -s "$work/want.err" "$work/got.err"; then
                ok=1
        elif [ $want_rc = 2 ] && [ $got_rc = 2 ]; then
                ok=1
        fi
        if [ $ok = 1 ]; then
                echo "ok $n - $(basename "$t")"
        else
                failed=1
                echo "not ok $n - $(basename "$t"): Jinja2 exit $want_rc, slm-template exit $got_rc"
                diff <(cat "$work/want" "$work/want.err") <(cat "$work/got" "$work/got.err") |
                        head -20 | sed 's/^/# /'
        fi
done
exit $failed
