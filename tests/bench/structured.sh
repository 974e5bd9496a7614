#!/bin/sh
# SPDX-License-Identifier: MIT
# Structured output's cost on the TinyLlama-1.1B shape (Q4_0, random weights, the real 32,000-token
# Llama-2 vocabulary from ../shared): decode tokens/s with a JSON Schema beside unconstrained,
# schema compile time, mask time per token. SLM_STRUCTURED_MODEL=FILE uses a model of your own.
# Usage: structured.sh BUILD_DIR SHARED_DIR
set -eu
build=$1 shared=$2
here=$(dirname "$0")
model=${SLM_STRUCTURED_MODEL:-}
if [ -z "$model" ]; then
        model=$build/tests/bench/tinyllama-1.1b-q4_0-llama2-vocab.gguf
        [ -f "$model" ] || "$build/daemon/tools/slm-mkmodel" --shape tinyllama-1.1b --type q4_0 \
                --vocab "$shared/models/llama-2-tiny-random.gguf" -o "$model"
fi
"$build/tests/structured" "$model" "$here/person.schema.json" -n "${SLM_STRUCTURED_TOKENS:-128}" \
        -t "${SLM_STRUCTURED_THREADS:-2}" -r "${SLM_STRUCTURED_REPS:-3}"
