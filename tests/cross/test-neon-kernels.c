/* SPDX-License-Identifier: MIT */
/*
 * The arm64 kernels against the scalar reference, run under qemu-aarch64
 * (tests/cross/neon.sh): every dot-product type with block counts 1, 3, 7
 * and 33 (F32/F16: element counts that are not multiples of 8), and the
 * KV-cache row sums with odd heads and strides wider than a row. The
 * weights are random bytes with sane block scales, so every bit pattern
 * of the packed fields is met. argv[1] is the kernel set that must be in
 * use ("neon" or "neon+dotprod").
 */
#include "cpu-kernels.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned long long rng_state = 88172645463325252ull;

static unsigned rnd(void)
{
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        return (unsigned)(rng_state >> 11);
}

static float uniform(float lo, float hi)
{
        return lo + (hi - lo) * (float)(rnd() % 1000000) / 1e6f;
}

static void put_half(uint8_t *p, float v)
{
        slm_fp16 h = slm_fp32_to_fp16(v);
        memcpy(p, &h, 2);
}

/* A row of @n weights of @type: random bytes, then block scales a model could hold. */
static uint8_t *random_row(SlmType type, int64_t n)
{
        const SlmTypeTraits *t = slm_type_traits(type);
        size_t nb = (size_t)(n / t->block_size);
        uint8_t *row = malloc(nb * t->block_bytes);

        for (size_t i = 0; i < nb * t->block_bytes; i++)
                row[i] = (uint8_t)rnd();
        for (size_t b = 0; b < nb; b++) {
                uint8_t *blk = row + b * t->block_bytes;
                switch (type) {
                case SLM_TYPE_F32: {
                        float v = uniform(-1.0f, 1.0f);
                        memcpy(blk, &v, 4);
                        break;
                }
                case SLM_TYPE_F16:
                        put_half(blk, uniform(-1.0f, 1.0f));
                        break;
                case SLM_TYPE_Q4_0:
                case SLM_TYPE_Q8_0:
                        put_half(blk + offsetof(SlmBlockQ8_0, d), uniform(0.001f, 0.05f));
                        break;
                case SLM_TYPE_Q4_K:
                case SLM_TYPE_Q5_K:
                        put_half(blk + offsetof(SlmBlockQ4_K, d), uniform(0.001f, 0.05f));
                        put_half(blk + offsetof(SlmBlockQ4_K, dmin), uniform(0.001f, 0.05f));
                        break;
                case SLM_TYPE_Q6_K:
                        put_half(blk + offsetof(SlmBlockQ6_K, d), uniform(0.001f, 0.05f));
                        break;
                default:
                        abort();
                }
        }
        return row;
}

static int checks, failures;

static void expect_near(float got, float want, float tol, const char *what, long long n,
                        long long k)
{
        checks++;
        if (!(fabsf(got - want) <= tol)) {
                failures++;
                if (failures <= 20)
                        fprintf(stderr, "FAIL %s n=%lld (%lld): %.7g, want %.7g\n", what, n, k, got,
                                want);
        }
}

static void dots(void)
{
        const SlmType types[] = { SLM_TYPE_F32,  SLM_TYPE_F16,  SLM_TYPE_Q4_0, SLM_TYPE_Q8_0,
                                  SLM_TYPE_Q4_K, SLM_TYPE_Q5_K, SLM_TYPE_Q6_K };
        const int64_t block_counts[] = { 1, 3, 7, 33 };

        for (size_t ti = 0; ti < sizeof(types) / sizeof(types[0]); ti++) {
                const SlmTypeTraits *t = slm_type_traits(types[ti]);
                const SlmTypeTraits *dt = slm_type_traits(t->dot_type);
                SlmVecDotFn simd = slm_cpu_vec_dot_neon(types[ti]);
                if (!simd || simd != slm_cpu_vec_dot(types[ti])) {
                        fprintf(stderr, "FAIL %s: no NEON kernel in use\n", t->name);
                        failures++;
                        continue;
                }
                for (size_t bi = 0; bi < 4; bi++) {
                        int64_t blocks = block_counts[bi];
                        int64_t n = t->block_size == 1 ? blocks * 32 + 5 : blocks * t->block_size;
                        uint8_t *w = random_row(types[ti], n);
                        float *x = malloc((size_t)n * sizeof(float));
                        uint8_t *xq = malloc((size_t)(n / dt->block_size) * dt->block_bytes);
                        for (int64_t i = 0; i < n; i++)
                                x[i] = uniform(-2.0f, 2.0f);
                        slm_quantize_row(t->dot_type, x, xq, n);
                        float want = slm_vec_dot_ref(types[ti], n, w, xq);
                        float got = simd(n, w, xq);
                        expect_near(got, want, 1e-5f * (fabsf(want) + sqrtf((float)n)), t->name, n,
                                    0);
                        free(w);
                        free(x);
                        free(xq);
                }
        }
}

static void row_sums(void)
{
        const SlmType types[] = { SLM_TYPE_F32, SLM_TYPE_F16, SLM_TYPE_Q8_0 };
        const int64_t sizes[] = { 8, 13, 32, 64, 72, 100, 128, 256 };
        const int row_counts[] = { 1, 2, 7, 37 };

        for (size_t ti = 0; ti < 3; ti++) {
                const SlmTypeTraits *t = slm_type_traits(types[ti]);
                SlmRowSumFn ref = slm_cpu_row_sum_ref(types[ti]);
                SlmRowSumFn simd = slm_cpu_row_sum_neon(types[ti]);
                if (!simd || simd != slm_cpu_row_sum(types[ti])) {
                        fprintf(stderr, "FAIL %s: no NEON row sum in use\n", t->name);
                        failures++;
                        continue;
                }
                for (size_t si = 0; si < 8; si++) {
                        int64_t n = sizes[si];
                        if (n % t->block_size)
                                continue;
                        size_t row = (size_t)(n / t->block_size) * t->block_bytes;
                        size_t stride = row * 3 + t->block_bytes; /* other heads in between */
                        for (size_t ri = 0; ri < 4; ri++) {
                                int n_rows = row_counts[ri];
                                uint8_t *rows = calloc((size_t)n_rows, stride);
                                float *w = malloc((size_t)n_rows * sizeof(float));
                                float *want = malloc((size_t)(n + 1) * sizeof(float));
                                float *got = malloc((size_t)(n + 1) * sizeof(float));
                                for (int j = 0; j < n_rows; j++) {
                                        uint8_t *r = random_row(types[ti], n);
                                        memcpy(rows + (size_t)j * stride, r, row);
                                        free(r);
                                        w[j] = uniform(0.0f, 1.0f) / (float)n_rows;
                                }
                                want[n] = got[n] = 7.0f;
                                ref(n, n_rows, w, rows, stride, want);
                                simd(n, n_rows, w, rows, stride, got);
                                for (int64_t i = 0; i < n; i++)
                                        expect_near(got[i], want[i], 1e-5f * (1 + fabsf(want[i])),
                                                    t->name, n, i);
                                expect_near(got[n], 7.0f, 0.0f, "past the row", n, n_rows);
                                free(rows);
                                free(w);
                                free(want);
                                free(got);
                        }
                }
        }
}

/* Rows of an F16 KV cache: the bits of slm_fp32_to_fp16, specials and tails included. */
static void to_f16(void)
{
        static const float special[] = { 0.0f,     -0.0f,    65504.0f, 65519.99f, 65520.0f, -1e9f,
                                         5.96e-8f, 2.98e-8f, INFINITY, -INFINITY, NAN };
        float x[997];
        slm_fp16 got[998];
        SlmToF16Fn f = slm_cpu_to_f16_neon();

        if (!f || f != slm_cpu_to_f16()) {
                fprintf(stderr, "FAIL no NEON half conversion in use\n");
                failures++;
                return;
        }
        for (int i = 0; i < 997; i++)
                x[i] = ldexpf(uniform(1.0f, 2.0f), (int)(rnd() % 48) - 30) * (rnd() & 1 ? -1 : 1);
        for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++)
                x[7 * i + 3] = special[i];
        const int64_t sizes[] = { 1, 7, 8, 9, 37, 997 };
        for (size_t si = 0; si < 6; si++) {
                int64_t n = sizes[si];
                got[n] = 0x1234;
                f(n, x, got);
                for (int64_t i = 0; i < n; i++)
                        expect_near((float)got[i], (float)slm_fp32_to_fp16(x[i]), 0.0f, "to_f16", n,
                                    i);
                expect_near((float)got[n], (float)0x1234, 0.0f, "to_f16 past the row", n, n);
        }
}

int main(int argc, char **argv)
{
        const char *want = argc > 1 ? argv[1] : "neon";

        if (strcmp(slm_cpu_simd_name(), want) != 0) {
                fprintf(stderr, "FAIL kernels in use: %s, want %s\n", slm_cpu_simd_name(), want);
                failures++;
        }
        dots();
        row_sums();
        to_f16();
        printf("%s: %d checks, %d failed\n", slm_cpu_simd_name(), checks, failures);
        return failures ? 1 : 0;
}
