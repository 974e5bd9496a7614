#!/bin/bash
# SPDX-License-Identifier: MIT
# The README's quick start: slmd from the build tree on a private bus, a model in its store, a
# generation through slmctl, the daemon stopped.
#
# Usage: tests/quickstart.sh [BUILD_DIR] [MODEL.gguf | SOURCE]
#   MODEL.gguf  import that file and stream a story from it
#   SOURCE      pull that model (hf:..., ollama:..., https://...) and chat with it
# Without a model: the story model of ../shared/ when it is there (as the tests use it),
# else $SLM_QUICKSTART_MODEL or hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M, pulled from the
# Hugging Face hub into a store kept in BUILD_DIR/quickstart-store ($SLM_QUICKSTART_STORE),
# so a second run downloads nothing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/../build}" && pwd)
story=$here/../../shared/models/stories260K-f32.gguf
model=${2:-}
if [ -z "$model" ]; then
        if [ -f "$story" ]; then
                model=$story
        else
                model=${SLM_QUICKSTART_MODEL:-hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M}
        fi
fi
case "$model" in
hf:* | ollama:* | http://* | https://*) pull=1 ;;
*) pull= ;;
esac
# shellcheck source=private-bus.sh
. "$here/private-bus.sh"
[ -n "$pull" ] && state_dir=${SLM_QUICKSTART_STORE:-$build/quickstart-store}

echo "== a private bus and slmd"
start_bus
start_slmd
"${slmctl[@]}" status || { cat "$tmp/slmd.log" >&2; exit 1; }

if [ -n "$pull" ]; then
        echo "== slmctl pull $model"
        if ! "${slmctl[@]}" pull "$model" --name quickstart; then
                echo "The download failed (is this machine offline?). With ../shared/ beside the" >&2
                echo "checkout, or with a GGUF file: tests/quickstart.sh $build MODEL.gguf" >&2
                exit 1
        fi
        "${slmctl[@]}" default quickstart
        "${slmctl[@]}" list
        question="What is a GGUF file? Answer in two sentences."
        echo "== slmctl chat <<< \"$question\""
        echo "$question" | "${slmctl[@]}" chat --temp 0 -n 200
else
        echo "== import $(basename "$model")"
        "${slmctl[@]}" import "$model"
        "${slmctl[@]}" list
        echo "== slmctl run --default \"Once upon a time\""
        "${slmctl[@]}" run --default "Once upon a time" -n 100 --temp 0
fi

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
