/* SPDX-License-Identifier: MIT */
/*
 * The packed layouts (portable C: packing runs once per matrix) and the
 * activation conversions the packed kernels read. The kernels themselves
 * are in kernels-pack.h, compiled once per instruction set.
 */
#include "cpu-pack.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/*
 * The same four bytes of eight rows side by side: dst[32 * c + 4 * r + e] =
 * src_r[4 * c + e] for chunk c < n_chunks, XORed with @flip (0x80 turns
 * signed bytes into unsigned ones offset by 128).
 */
static void interleave(const uint8_t *const src[SLM_PACK_ROWS], int n_chunks, uint8_t flip,
                       uint8_t *dst)
{
        for (int c = 0; c < n_chunks; c++)
                for (int r = 0; r < SLM_PACK_ROWS; r++)
                        for (int e = 0; e < 4; e++)
                                *dst++ = src[r][4 * c + e] ^ flip;
}

#define ROW(rows, r, row_bytes, type, b)                                                           \
        ((const type *)((const uint8_t *)(rows) + (r) * (row_bytes)) + (b))

/*
 * Q4_0: d[8] (fp16), then four chunks of 32 bytes. A byte keeps both
 * nibbles of the original: the low one is weight 4c+e, the high one
 * weight 16+4c+e, unsigned (the kernels subtract 8 * sum(x)).
 */
static void pack_q4_0(int64_t n, const void *rows, size_t row_bytes, void *dst)
{
        uint8_t *out = dst;

        for (int64_t b = 0; b < n / SLM_QK; b++, out += SLM_PACK_Q4_0_BYTES) {
                const uint8_t *src[SLM_PACK_ROWS];
                for (int r = 0; r < SLM_PACK_ROWS; r++) {
                        const SlmBlockQ4_0 *blk = ROW(rows, r, row_bytes, SlmBlockQ4_0, b);
                        memcpy(out + SLM_PACK_D + 2 * r, &blk->d, 2);
                        src[r] = blk->qs;
                }
                interleave(src, 4, 0, out + SLM_PACK_QS);
        }
}

/* Q8_0: d[8], then eight chunks of 32 bytes, each weight + 128 as an unsigned byte. */
static void pack_q8_0(int64_t n, const void *rows, size_t row_bytes, void *dst)
{
        uint8_t *out = dst;

        for (int64_t b = 0; b < n / SLM_QK; b++, out += SLM_PACK_Q8_0_BYTES) {
                const uint8_t *src[SLM_PACK_ROWS];
                for (int r = 0; r < SLM_PACK_ROWS; r++) {
                        const SlmBlockQ8_0 *blk = ROW(rows, r, row_bytes, SlmBlockQ8_0, b);
                        memcpy(out + SLM_PACK_D + 2 * r, &blk->d, 2);
                        src[r] = (const uint8_t *)blk->qs;
                }
                interleave(src, 8, 0x80, out + SLM_PACK_QS);
        }
}

/*
 * Q4_K and Q5_K: d[8], dmin[8] (fp16), the 6-bit scales unpacked as
 * sc[sub-block][row], the mins as m[pair of sub-blocks][row][2], then qs
 * interleaved (32 chunks: the low nibbles of chunks 8p..8p+7 are
 * sub-block 2p, the high ones 2p+1), and for Q5_K qh interleaved (8 chunks).
 */
static void pack_q45_k(int64_t n, const void *rows, size_t row_bytes, size_t block_bytes,
                       size_t qs_offset, int qh_offset, size_t out_bytes, void *dst)
{
        uint8_t *out = dst;

        for (int64_t b = 0; b < n / SLM_QK_K; b++, out += out_bytes) {
                const uint8_t *qs[SLM_PACK_ROWS], *qh[SLM_PACK_ROWS];
                for (int r = 0; r < SLM_PACK_ROWS; r++) {
                        const uint8_t *blk =
                            (const uint8_t *)rows + r * row_bytes + b * block_bytes;
                        const SlmBlockQ4_K *k = (const SlmBlockQ4_K *)blk;
                        uint8_t sc[8], m[8];
                        memcpy(out + SLM_PACK_D + 2 * r, &k->d, 2);
                        memcpy(out + SLM_PACK_K_DMIN + 2 * r, &k->dmin, 2);
                        slm_k_scales(k->scales, sc, m);
                        for (int j = 0; j < 8; j++) {
                                out[SLM_PACK_K_SC + 8 * j + r] = sc[j];
                                out[SLM_PACK_K_M + 16 * (j / 2) + 2 * r + j % 2] = m[j];
                        }
                        qs[r] = blk + qs_offset;
                        qh[r] = qh_offset >= 0 ? blk + qh_offset : NULL;
                }
                interleave(qs, 32, 0, out + SLM_PACK_K_QS);
                if (qh_offset >= 0)
                        interleave(qh, 8, 0, out + SLM_PACK_Q5_K_QH);
        }
}

static void pack_q4_k(int64_t n, const void *rows, size_t row_bytes, void *dst)
{
        pack_q45_k(n, rows, row_bytes, sizeof(SlmBlockQ4_K), offsetof(SlmBlockQ4_K, qs), -1,
                   SLM_PACK_Q4_K_BYTES, dst);
}

static void pack_q5_k(int64_t n, const void *rows, size_t row_bytes, void *dst)
{
        pack_q45_k(n, rows, row_bytes, sizeof(SlmBlockQ5_K), offsetof(SlmBlockQ5_K, qs),
                   offsetof(SlmBlockQ5_K, qh), SLM_PACK_Q5_K_BYTES, dst);
}

/*
 * Q6_K: d[8], the scales as sc[sub-block][row], then for each half of the
 * block and chunk c < 8, 96 bytes: ql[4c..], ql[32+4c..] and qh[4c..] of
 * that half, interleaved.
 */
static void pack_q6_k(int64_t n, const void *rows, size_t row_bytes, void *dst)
{
        uint8_t *out = dst;

        for (int64_t b = 0; b < n / SLM_QK_K; b++, out += SLM_PACK_Q6_K_BYTES) {
                const SlmBlockQ6_K *k[SLM_PACK_ROWS];
                for (int r = 0; r < SLM_PACK_ROWS; r++) {
                        k[r] = ROW(rows, r, row_bytes, SlmBlockQ6_K, b);
                        memcpy(out + SLM_PACK_D + 2 * r, &k[r]->d, 2);
                        for (int j = 0; j < 16; j++)
                                out[SLM_PACK_Q6_SC + 8 * j + r] = (uint8_t)k[r]->scales[j];
                }
                for (int h = 0; h < 2; h++)
                        for (int c = 0; c < 8; c++) {
                                uint8_t *o = out + SLM_PACK_Q6_Q + (h * 8 + c) * 96;
                                const uint8_t *la[SLM_PACK_ROWS], *lb[SLM_PACK_ROWS],
                                    *hb[SLM_PACK_ROWS];
                                for (int r = 0; r < SLM_PACK_ROWS; r++) {
                                        la[r] = k[r]->ql + 64 * h + 4 * c;
                                        lb[r] = k[r]->ql + 64 * h + 32 + 4 * c;
                                        hb[r] = k[r]->qh + 32 * h + 4 * c;
                                }
                                interleave(la, 1, 0, o);
                                interleave(lb, 1, 0, o + 32);
                                interleave(hb, 1, 0, o + 64);
                        }
        }
}

/* F16: weight k of the eight rows side by side. */
static void pack_f16(int64_t n, const void *rows, size_t row_bytes, void *dst)
{
        slm_fp16 *out = dst;

        for (int64_t k = 0; k < n; k++)
                for (int r = 0; r < SLM_PACK_ROWS; r++)
                        memcpy(out++, (const uint8_t *)rows + r * row_bytes + 2 * k, 2);
}

/* ---- activations --------------------------------------------------------------------------- */

static void convert_q8s(int64_t n, const float *x, int32_t k, void *dst)
{
        SlmBlockQ8S *out = dst;

        for (int64_t b = 0; b < n / SLM_QK; b++) {
                SlmBlockQ8_0 q;
                int32_t sum = 0;
                slm_quantize_row(SLM_TYPE_Q8_0, x + b * SLM_QK, &q, SLM_QK);
                out[b].d = slm_fp16_to_fp32(q.d);
                memcpy(out[b].qs, q.qs, SLM_QK);
                for (int i = 0; i < SLM_QK; i++)
                        sum += q.qs[i];
                out[b].offset = -k * sum;
        }
}

static void convert_x_q4_0(int64_t n, const float *x, void *dst)
{
        convert_q8s(n, x, 8, dst);
}

static void convert_x_q8_0(int64_t n, const float *x, void *dst)
{
        convert_q8s(n, x, 128, dst);
}

static void convert_x_q8_ks(int64_t n, const float *x, void *dst)
{
        SlmBlockQ8KS *out = dst;

        for (int64_t b = 0; b < n / SLM_QK_K; b++) {
                SlmBlockQ8_K q;
                slm_quantize_row(SLM_TYPE_Q8_K, x + b * SLM_QK_K, &q, SLM_QK_K);
                out[b].d = q.d;
                memcpy(out[b].qs, q.qs, SLM_QK_K);
                for (int j = 0; j < SLM_QK_K / 16; j++)
                        out[b].c16[j] = 32 * q.bsums[j];
                for (int j = 0; j < SLM_QK_K / 32; j++)
                        out[b].s32[j] = (int16_t)(q.bsums[2 * j] + q.bsums[2 * j + 1]);
        }
}

/* What the kernels load: fp16 scales 16 bytes at a time, int8 ones 8, weights 32. */
static const SlmPackPiece q4_0_pieces[] = { { SLM_PACK_QS, 16 }, { SLM_PACK_Q4_0_BYTES, 32 } };
static const SlmPackPiece q8_0_pieces[] = { { SLM_PACK_QS, 16 }, { SLM_PACK_Q8_0_BYTES, 32 } };
static const SlmPackPiece q4_k_pieces[] = { { SLM_PACK_K_SC, 16 },
                                            { SLM_PACK_K_M, 8 },
                                            { SLM_PACK_K_QS, 16 },
                                            { SLM_PACK_Q4_K_BYTES, 32 } };
static const SlmPackPiece q5_k_pieces[] = { { SLM_PACK_K_SC, 16 },
                                            { SLM_PACK_K_M, 8 },
                                            { SLM_PACK_K_QS, 16 },
                                            { SLM_PACK_Q5_K_BYTES, 32 } };
static const SlmPackPiece q6_k_pieces[] = { { SLM_PACK_Q6_SC, 16 },
                                            { SLM_PACK_Q6_Q, 8 },
                                            { SLM_PACK_Q6_K_BYTES, 32 } };
static const SlmPackPiece f16_pieces[] = { { SLM_PACK_F16_BYTES, 16 } };

const SlmPackLayout slm_pack_layout_q4_0 = {
        SLM_QK, SLM_PACK_Q4_0_BYTES, sizeof(SlmBlockQ8S), convert_x_q4_0, pack_q4_0, q4_0_pieces
};
const SlmPackLayout slm_pack_layout_q8_0 = {
        SLM_QK, SLM_PACK_Q8_0_BYTES, sizeof(SlmBlockQ8S), convert_x_q8_0, pack_q8_0, q8_0_pieces
};
const SlmPackLayout slm_pack_layout_q4_k = {
        SLM_QK_K, SLM_PACK_Q4_K_BYTES, sizeof(SlmBlockQ8KS), convert_x_q8_ks, pack_q4_k, q4_k_pieces
};
const SlmPackLayout slm_pack_layout_q5_k = {
        SLM_QK_K, SLM_PACK_Q5_K_BYTES, sizeof(SlmBlockQ8KS), convert_x_q8_ks, pack_q5_k, q5_k_pieces
};
const SlmPackLayout slm_pack_layout_q6_k = {
        SLM_QK_K, SLM_PACK_Q6_K_BYTES, sizeof(SlmBlockQ8KS), convert_x_q8_ks, pack_q6_k, q6_k_pieces
};

/* F16: floats rounded through fp16, as the reference rounds them for its F16 dot. */
static void convert_x_f16(int64_t n, const float *x, void *dst)
{
        float *out = dst;

        for (int64_t i = 0; i < n; i++)
                out[i] = slm_fp16_to_fp32(slm_fp32_to_fp16(x[i]));
}

const SlmPackLayout slm_pack_layout_f16 = {
        1, SLM_PACK_F16_BYTES, sizeof(float), convert_x_f16, pack_f16, f16_pieces
};

/* ---- pairs for the 512-bit kernels ----------------------------------------------------------- */

/* Blocks are packed a few at a time into two buffers of this size, then merged. */
#define PAIR_CHUNK 4096
_Static_assert(SLM_PACK_Q6_K_BYTES <= PAIR_CHUNK && SLM_PACK_Q5_K_BYTES <= PAIR_CHUNK,
               "a block of every layout fits a chunk");

void slm_pack_pair(const SlmPackKernel *k, int64_t n, const void *rows, size_t row_bytes, void *dst)
{
        const SlmPackLayout *l = k->layout;
        const size_t gbb = l->group_block_bytes, src_block = slm_type_traits(k->type)->block_bytes;
        const int64_t nb = n / l->block_size, per = PAIR_CHUNK / gbb;
        uint8_t first[PAIR_CHUNK], second[PAIR_CHUNK], *out = dst;

        for (int64_t b0 = 0; b0 < nb; b0 += per) {
                int64_t count = nb - b0 < per ? nb - b0 : per;
                const uint8_t *src = (const uint8_t *)rows + (size_t)b0 * src_block;
                l->pack(count * l->block_size, src, row_bytes, first);
                l->pack(count * l->block_size, src + SLM_PACK_ROWS * row_bytes, row_bytes, second);
                for (size_t i = 0; i < (size_t)count; i++) {
                        size_t off = 0;
                        for (const SlmPackPiece *p = l->pieces; off < gbb; p++)
                                for (; off < p->end; off += p->size) {
                                        memcpy(out, first + i * gbb + off, p->size);
                                        memcpy(out + p->size, second + i * gbb + off, p->size);
                                        out += 2 * p->size;
                                }
                }
        }
}

/* ---- which kernels run --------------------------------------------------------------------- */

const SlmPackKernel *slm_pack_find(const SlmPackKernel *table, size_t n, SlmType type)
{
        for (size_t i = 0; i < n; i++)
                if (table[i].type == type)
                        return &table[i];
        return NULL;
}

const SlmPackKernel *slm_cpu_pack_kernel_isa(SlmType type, const char *isa)
{
        if (strcmp(isa, "avx512vnni") == 0)
                return slm_cpu_pack_kernels_vnni(type);
        if (strcmp(isa, "avx2") == 0)
                return slm_cpu_pack_kernels_avx2(type);
        return NULL;
}

static const SlmPackKernel *chosen[SLM_TYPE_COUNT];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void choose(void)
{
        const char *env = getenv("SLM_CPU_SIMD");
        bool scalar = env && strcmp(env, "scalar") == 0;
        bool vnni = !env || strcmp(env, "avx2") != 0;

        if (scalar)
                return;
        for (int t = 0; t < SLM_TYPE_COUNT; t++) {
                chosen[t] = vnni ? slm_cpu_pack_kernels_vnni((SlmType)t) : NULL;
                if (!chosen[t])
                        chosen[t] = slm_cpu_pack_kernels_avx2((SlmType)t);
        }
}

const SlmPackKernel *slm_cpu_pack_kernel(SlmType type)
{
        pthread_once(&once, choose);
        return (unsigned)type < SLM_TYPE_COUNT ? chosen[type] : NULL;
}
