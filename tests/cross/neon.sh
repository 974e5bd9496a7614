#!/bin/sh
# SPDX-License-Identifier: MIT
# The arm64 kernels, cross-compiled and run under qemu-aarch64: on a CPU without the dot-product
# extension (Cortex-A53), on one with it, and on that one with SLM_CPU_SIMD=neon.
# Usage: neon.sh OUT_DIR SOURCE_ROOT SOURCE...
set -eu
out=$1
src=$2
shift 2
cc=aarch64-linux-gnu-gcc
if ! command -v "$cc" >/dev/null || ! command -v qemu-aarch64 >/dev/null; then
        echo "skipped: needs $cc (gcc-aarch64-linux-gnu, libc6-dev-arm64-cross) and qemu-aarch64 (qemu-user)"
        exit 77
fi
mkdir -p "$out"
"$cc" -std=gnu11 -O2 -Wall -Wextra -Werror -static -I"$src/backends" -I"$src/backends/cpu" \
        -o "$out/test-neon-kernels" "$@" -lm -lpthread
qemu-aarch64 -cpu cortex-a53 "$out/test-neon-kernels" neon
qemu-aarch64 -cpu max "$out/test-neon-kernels" neon+dotprod
SLM_CPU_SIMD=neon qemu-aarch64 -cpu max "$out/test-neon-kernels" neon
