#!/bin/bash
# SPDX-License-Identifier: MIT
# Every template x case of ../shared/chat-templates through slm-template, byte for byte against
# what Jinja2 rendered (expected/T/C.txt), or refused with the template's own message
# (expected/T/C.error). strftime_now is fixed to 26 July 2026, as in the renderings. TAP output.
# Usage: render-cases.sh SLM_TEMPLATE CHAT_TEMPLATES_DIR
set -u
tool=$1 dir=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export SOURCE_DATE_EPOCH=1785067200
# one file per case
/usr/bin/python3 - "$dir/cases.json" "$work" <<'PY' || exit 1
import json, sys
for case in json.load(open(sys.argv[1], encoding="utf-8")):
    with open(f"{sys.argv[2]}/{case['name']}.json", "w", encoding="utf-8") as f:
        json.dump(case, f, ensure_ascii=False)
PY
total=0
for t in "$dir"/templates/*.jinja; do
        total=$((total + $(ls "$work"/*.json | wc -l)))
done
echo "1..$total"
n=0 failed=0
for t in "$dir"/templates/*.jinja; do
        name=$(basename "$t" .jinja)
        for c in "$work"/*.json; do
                n=$((n + 1))
                case=$(basename "$c" .json)
                "$tool" "$t" "$c" >"$work/out" 2>"$work/err"
                rc=$?
                if [ -f "$dir/expected/$name/$case.txt" ]; then
                        if [ $rc = 0 ] && cmp -s "$work/out" "$dir/expected/$name/$case.txt"; then
                                echo "ok $n - $name $case"
                                continue
                        fi
                        diff "$dir/expected/$name/$case.txt" "$work/out" | head -10 | sed 's/^/# /'
                elif [ $rc = 1 ] && cmp -s "$work/err" "$dir/expected/$name/$case.error"; then
                        echo "ok $n - $name $case refused: $(cat "$work/err")"
                        continue
                fi
                echo "not ok $n - $name $case (exit $rc: $(head -c 200 "$work/err"))"
                failed=1
        done
done
exit $failed
