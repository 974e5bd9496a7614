/* SPDX-License-Identifier: MIT */
#include "cpu-kernels.h"
#include "cpu-pack.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* The scalar reference, one function per type so the table has a uniform shape. */
#define REF(T, NAME)                                                                               \
        static float NAME(int64_t n, const void *w, const void *x)                                 \
        {                                                                                          \
                return slm_vec_dot_ref(T, n, w, x);                                                \
        }
REF(SLM_TYPE_F32, ref_f32)
REF(SLM_TYPE_F16, ref_f16)
REF(SLM_TYPE_BF16, ref_bf16)
REF(SLM_TYPE_Q4_0, ref_q4_0)
REF(SLM_TYPE_Q4_1, ref_q4_1)
REF(SLM_TYPE_Q5_0, ref_q5_0)
REF(SLM_TYPE_Q5_1, ref_q5_1)
REF(SLM_TYPE_Q8_0, ref_q8_0)
REF(SLM_TYPE_Q4_K, ref_q4_k)
REF(SLM_TYPE_Q5_K, ref_q5_k)
REF(SLM_TYPE_Q6_K, ref_q6_k)

/* Rows dequantized a piece at a time (a multiple of every block size it is used for). */
#define ROW_SUM_PIECE 64

static void row_sum_ref(SlmType type, int64_t n, int n_rows, const float *w, const void *rows,
                        size_t stride, float *out)
{
        float buf[ROW_SUM_PIECE];
        uint64_t piece_bytes = 0;

        slm_type_row_bytes(type, ROW_SUM_PIECE, &piece_bytes);
        for (int64_t i = 0; i < n; i++)
                out[i] = 0.0f;
        for (int j = 0; j < n_rows; j++) {
                const uint8_t *row = (const uint8_t *)rows + (size_t)j * stride;
                for (int64_t i0 = 0; i0 < n; i0 += ROW_SUM_PIECE) {
                        int64_t m = n - i0 < ROW_SUM_PIECE ? n - i0 : ROW_SUM_PIECE;
                        slm_dequantize_row(type, row + (size_t)(i0 / ROW_SUM_PIECE) * piece_bytes,
                                           buf, m);
                        for (int64_t i = 0; i < m; i++)
                                out[i0 + i] += w[j] * buf[i];
                }
        }
}

#define ROW_SUM_REF(T, NAME)                                                                       \
        static void NAME(int64_t n, int n_rows, const float *w, const void *rows, size_t stride,   \
                         float *out)                                                               \
        {                                                                                          \
                row_sum_ref(T, n, n_rows, w, rows, stride, out);                                   \
        }
ROW_SUM_REF(SLM_TYPE_F32, row_sum_ref_f32)
ROW_SUM_REF(SLM_TYPE_F16, row_sum_ref_f16)
ROW_SUM_REF(SLM_TYPE_Q8_0, row_sum_ref_q8_0)

SlmRowSumFn slm_cpu_row_sum_ref(SlmType type)
{
        switch (type) {
        case SLM_TYPE_F32:
                return row_sum_ref_f32;
        case SLM_TYPE_F16:
                return row_sum_ref_f16;
        case SLM_TYPE_Q8_0:
                return row_sum_ref_q8_0;
        default:
                return NULL;
        }
}

static void to_f16_ref(int64_t n, const float *src, slm_fp16 *dst)
{
        for (int64_t i = 0; i < n; i++)
                dst[i] = slm_fp32_to_fp16(src[i]);
}

static void silu_glu_ref(const float *gate, const float *up, int64_t n, float *y)
{
        for (int64_t i = 0; i < n; i++)
                y[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

static SlmToF16Fn to_f16 = to_f16_ref;
static SlmGluFn silu_glu = silu_glu_ref;
static SlmVecDotFn table[SLM_TYPE_COUNT];
static SlmTileDotFn tiles[SLM_TYPE_COUNT];
static SlmRowSumFn row_sums[SLM_TYPE_COUNT];
static SlmKeyDotsFn key_dots_8[SLM_TYPE_COUNT]; /* heads of 8 */
static const char *simd_name = "scalar";
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init(void)
{
        const char *env = getenv("SLM_CPU_SIMD");
        bool simd = !env || strcmp(env, "scalar") != 0;

        table[SLM_TYPE_F32] = ref_f32;
        table[SLM_TYPE_F16] = ref_f16;
        table[SLM_TYPE_BF16] = ref_bf16;
        table[SLM_TYPE_Q4_0] = ref_q4_0;
        table[SLM_TYPE_Q4_1] = ref_q4_1;
        table[SLM_TYPE_Q5_0] = ref_q5_0;
        table[SLM_TYPE_Q5_1] = ref_q5_1;
        table[SLM_TYPE_Q8_0] = ref_q8_0;
        table[SLM_TYPE_Q4_K] = ref_q4_k;
        table[SLM_TYPE_Q5_K] = ref_q5_k;
        table[SLM_TYPE_Q6_K] = ref_q6_k;
        for (int t = 0; t < SLM_TYPE_COUNT; t++) {
                SlmRowSumFn f = NULL;
                if (simd && !(f = slm_cpu_row_sum_avx2((SlmType)t)))
                        f = slm_cpu_row_sum_neon((SlmType)t);
                row_sums[t] = f ? f : slm_cpu_row_sum_ref((SlmType)t);
        }
        if (!simd)
                return;
        if (slm_cpu_silu_glu_avx2())
                silu_glu = slm_cpu_silu_glu_avx2();
        if (slm_cpu_to_f16_avx2())
                to_f16 = slm_cpu_to_f16_avx2();
        else if (slm_cpu_to_f16_neon())
                to_f16 = slm_cpu_to_f16_neon();
        for (int t = 0; t < SLM_TYPE_COUNT; t++) {
                SlmVecDotFn f = slm_cpu_vec_dot_avx2((SlmType)t);
                if (f && table[t]) {
                        table[t] = f;
                        tiles[t] = slm_cpu_tile_dot_avx2((SlmType)t);
                        /* only beside the dots it agrees with to the bit */
                        key_dots_8[t] = slm_cpu_key_dots_8_avx2((SlmType)t);
                        simd_name = "avx2";
                } else if ((f = slm_cpu_vec_dot_neon((SlmType)t)) && table[t]) {
                        table[t] = f;
                        simd_name = slm_cpu_have_neon_dotprod() ? "neon+dotprod" : "neon";
                }
        }
}

SlmVecDotFn slm_cpu_vec_dot(SlmType type)
{
        pthread_once(&once, init);
        return (unsigned)type < SLM_TYPE_COUNT ? table[type] : NULL;
}

SlmGluFn slm_cpu_silu_glu(void)
{
        pthread_once(&once, init);
        return silu_glu;
}

SlmToF16Fn slm_cpu_to_f16(void)
{
        pthread_once(&once, init);
        return to_f16;
}

void slm_cpu_quantize_row(SlmType type, const float *src, void *dst, int64_t n)
{
        if (type == SLM_TYPE_F16)
                slm_cpu_to_f16()(n, src, dst);
        else
                slm_quantize_row(type, src, dst, n);
}

SlmKeyDotsFn slm_cpu_key_dots(SlmType type, int64_t n)
{
        pthread_once(&once, init);
        return (unsigned)type < SLM_TYPE_COUNT && n == 8 ? key_dots_8[type] : NULL;
}

SlmRowSumFn slm_cpu_row_sum(SlmType type)
{
        pthread_once(&once, init);
        return (unsigned)type < SLM_TYPE_COUNT ? row_sums[type] : NULL;
}

SlmTileDotFn slm_cpu_tile_dot(SlmType type)
{
        pthread_once(&once, init);
        return (unsigned)type < SLM_TYPE_COUNT ? tiles[type] : NULL;
}

const char *slm_cpu_simd_name(void)
{
        const SlmPackKernel *k = slm_cpu_pack_kernel(SLM_TYPE_Q4_0);

        pthread_once(&once, init);
        if (k && strcmp(k->isa, "avx512vnni") == 0)
                return "avx2+avx512vnni";
        return simd_name;
}
