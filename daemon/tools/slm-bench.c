/* SPDX-License-Identifier: MIT */
/*
 * slm-bench: the engine's speed on one model, no D-Bus. "ppN" evaluates N
 * prompt tokens in one call on an empty context; "tgN" generates N tokens
 * one at a time after a one-token prompt. Each test runs -r times; the
 * median and the spread (min..max) are printed, with the decode bandwidth
 * (weight bytes read per token x tg tokens/s) next to this machine's memory
 * read bandwidth measured in the same run with the same thread count.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cpu-kernels.h"
#include "model.h"

static double now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

/* ---- memory read bandwidth ----------------------------------------------------------------- */

typedef struct {
        const uint64_t *p;
        size_t n;
        uint64_t sum;
} ReadJob;

static void *read_part(void *data)
{
        ReadJob *j = data;
        uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;

        for (size_t i = 0; i + 4 <= j->n; i += 4) {
                s0 += j->p[i];
                s1 += j->p[i + 1];
                s2 += j->p[i + 2];
                s3 += j->p[i + 3];
        }
        j->sum = s0 + s1 + s2 + s3;
        return NULL;
}

/* GB/s reading a 1 GiB buffer with @threads threads; the best of 3 passes. */
static double memory_bandwidth(int threads)
{
        size_t bytes = (size_t)1 << 30, n = bytes / 8;
        uint64_t *buf = malloc(bytes);
        pthread_t t[64];
        ReadJob jobs[64];
        double best = 0.0;

        if (!buf || threads > 64)
                return 0.0;
        for (size_t i = 0; i < n; i++)
                buf[i] = i;
        for (int pass = 0; pass < 3; pass++) {
                double t0 = now();
                for (int k = 0; k < threads; k++) {
                        jobs[k] = (ReadJob){ buf + n / threads * k, n / threads, 0 };
                        pthread_create(&t[k], NULL, read_part, &jobs[k]);
                }
                for (int k = 0; k < threads; k++)
                        pthread_join(t[k], NULL);
                double gbs = (double)bytes / (now() - t0) / 1e9;
                if (gbs > best)
                        best = gbs;
        }
        free(buf);
        return best;
}

/* ---- resident memory ----------------------------------------------------------------------- */

typedef struct {
        double rss, file, anon, huge; /* GB */
} Memory;

/* The value of "@key: N kB" in @path, in GB; 0 where it is missing. */
static double proc_kb(const char *path, const char *key)
{
        FILE *f = fopen(path, "re");
        char line[256];
        size_t n = strlen(key);
        double gb = 0.0;

        if (!f)
                return 0.0;
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, key, n) == 0 && line[n] == ':') {
                        gb = strtod(line + n + 1, NULL) * 1024.0 / 1e9;
                        break;
                }
        fclose(f);
        return gb;
}

static Memory resident(void)
{
        return (Memory){ proc_kb("/proc/self/status", "VmRSS"),
                         proc_kb("/proc/self/status", "RssFile"),
                         proc_kb("/proc/self/status", "RssAnon"),
                         proc_kb("/proc/self/smaps_rollup", "AnonHugePages") };
}

/* ---- tests --------------------------------------------------------------------------------- */

typedef struct {
        char name[16];
        double median, min, max; /* tokens/s */
        const char *backend;
} Result;

#define MAX_BACKENDS 4

static int run_test(SlmContext *ctx, int n_vocab, int pp, int tg, int reps, Result *res)
{
        double *v = calloc((size_t)reps, sizeof(double));
        int32_t *ids = malloc((size_t)(pp > 1 ? pp : 1) * sizeof(int32_t));
        float *logits = malloc((size_t)n_vocab * sizeof(float));
        int r = 0;

        if (!v || !ids || !logits) {
                r = -ENOMEM;
                goto out;
        }
        for (int i = 0; i < (pp > 1 ? pp : 1); i++)
                ids[i] = 3 + (int32_t)((i * 7919) % (n_vocab - 3));
        for (int k = 0; k < reps && r == 0; k++) {
                slm_context_truncate(ctx, 0);
                double t0 = now();
                if (pp) {
                        r = slm_context_eval(ctx, ids, pp, logits);
                        v[k] = pp / (now() - t0);
                } else {
                        r = slm_context_eval(ctx, ids, 1, logits);
                        t0 = now();
                        for (int i = 0; i < tg && r == 0; i++) {
                                int32_t id = ids[0] + i % 100;
                                r = slm_context_eval(ctx, &id, 1, logits);
                        }
                        v[k] = tg / (now() - t0);
                }
        }
        if (r == 0) {
                qsort(v, (size_t)reps, sizeof(double), cmp_double);
                res->median = v[reps / 2];
                res->min = v[0];
                res->max = v[reps - 1];
                snprintf(res->name, sizeof(res->name), pp ? "pp%d" : "tg%d", pp ? pp : tg);
        }
out:
        free(v);
        free(ids);
        free(logits);
        return r;
}

/*
 * "tgNxS": S sequences generating N tokens each, one token per sequence per step, all in one
 * batch; tokens/s counts every sequence's (the aggregate a server gets from S clients).
 */
static int run_batch_test(SlmModel *m, SlmBackend *b, int n_ctx, SlmType kv_type, int seqs, int tg,
                          int reps, Result *res)
{
        int n_vocab = slm_model_hparams(m)->n_vocab, r;
        SlmContext **ctx = calloc((size_t)seqs, sizeof(*ctx));
        SlmBatchSeq *parts = calloc((size_t)seqs, sizeof(*parts));
        int32_t *ids = calloc((size_t)seqs, sizeof(int32_t));
        float *logits = malloc((size_t)seqs * (size_t)n_vocab * sizeof(float));
        double *v = calloc((size_t)reps, sizeof(double));
        SlmBatch *batch = NULL;
        SlmError err = { { 0 } };

        r = ctx && parts && ids && logits && v ? slm_batch_new(m, b, seqs, seqs, &batch, &err)
                                               : -ENOMEM;
        for (int i = 0; i < seqs && r == 0; i++)
                r = slm_context_new(m, b, n_ctx, kv_type, &ctx[i], &err);
        for (int k = 0; k < reps && r == 0; k++) {
                double t0 = 0;
                for (int step = 0; step <= tg && r == 0; step++) {
                        if (step == 1)
                                t0 = now(); /* after every sequence's first token */
                        for (int i = 0; i < seqs; i++) {
                                if (step == 0)
                                        slm_context_truncate(ctx[i], 0);
                                ids[i] = 3 + (int32_t)((i * 7919 + step * 31) % (n_vocab - 3));
                                parts[i] = (SlmBatchSeq){ ctx[i], &ids[i], 1,
                                                          logits + (size_t)i * (size_t)n_vocab };
                        }
                        r = slm_batch_eval(batch, parts, seqs);
                }
                v[k] = (double)tg * seqs / (now() - t0);
        }
        if (r == 0) {
                qsort(v, (size_t)reps, sizeof(double), cmp_double);
                res->median = v[reps / 2];
                res->min = v[0];
                res->max = v[reps - 1];
                snprintf(res->name, sizeof(res->name), "tg%dx%d", tg, seqs);
        } else {
                fprintf(stderr, "slm-bench: a batch of %d sequences: %s\n", seqs,
                        err.msg[0] ? err.msg : strerror(-r));
        }
        for (int i = 0; ctx && i < seqs; i++)
                slm_context_free(ctx[i]);
        slm_batch_free(batch);
        free(ctx);
        free(parts);
        free(ids);
        free(logits);
        free(v);
        return r;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                { "model", required_argument, NULL, 'm' },
                { "prompt", required_argument, NULL, 'p' },
                { "gen", required_argument, NULL, 'n' },
                { "threads", required_argument, NULL, 't' },
                { "reps", required_argument, NULL, 'r' },
                { "backend", required_argument, NULL, 'b' },
                { "kv-type", required_argument, NULL, 'k' },
                { "seqs", required_argument, NULL, 's' },
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *path = NULL, *backend_name = "cpu";
        int pp = 128, tg = 64, threads = 2, reps = 3, c, n_seqs = 0;
        int seqs[8];
        SlmType kv_type = SLM_KV_TYPE_DEFAULT;
        bool json = false;

        while ((c = getopt_long(argc, argv, "m:p:n:t:r:b:k:s:jh", opts, NULL)) != -1) {
                switch (c) {
                case 'm':
                        path = optarg;
                        break;
                case 'p':
                        pp = atoi(optarg);
                        break;
                case 'n':
                        tg = atoi(optarg);
                        break;
                case 't':
                        threads = atoi(optarg);
                        break;
                case 'r':
                        reps = atoi(optarg);
                        break;
                case 'b':
                        backend_name = optarg;
                        break;
                case 'k':
                        if (slm_kv_type_from_name(optarg, &kv_type) < 0) {
                                fprintf(stderr, "slm-bench: --kv-type is f32, f16 or q8_0\n");
                                return 2;
                        }
                        break;
                case 's': {
                        char *save_s = NULL;
                        n_seqs = 0;
                        for (char *t = strtok_r(optarg, ",", &save_s); t && n_seqs < 8;
                             t = strtok_r(NULL, ",", &save_s)) {
                                seqs[n_seqs] = atoi(t);
                                if (seqs[n_seqs] < 1 || seqs[n_seqs] > 64) {
                                        fprintf(stderr, "slm-bench: --seqs takes 1..64\n");
                                        return 2;
                                }
                                n_seqs++;
                        }
                        break;
                }
                case 'j':
                        json = true;
                        break;
                default:
                        fprintf(c == 'h' ? stdout : stderr,
                                "Usage: slm-bench -m MODEL [-p 128] [-n 64] [-t 2] [-r 3] "
                                "[--backend cpu,vulkan] [--kv-type f16|q8_0|f32] [--seqs 2,4,8] "
                                "[--json]\n");
                        return c == 'h' ? 0 : 2;
                }
        }
        if (!path || pp < 0 || tg < 0 || threads < 1 || threads > 64 || reps < 1 || reps > 100) {
                fprintf(stderr, "slm-bench: -m MODEL is needed; -p/-n >= 0, -t 1..64, -r 1..100\n");
                return 2;
        }

        SlmError err = { { 0 } };
        SlmModel *m = NULL;
        Result res[10 * MAX_BACKENDS];
        char devices[MAX_BACKENDS][400];
        const char *kv_names[MAX_BACKENDS];
        Memory mems[MAX_BACKENDS];
        double packed[MAX_BACKENDS];
        char names[256], *save = NULL;
        int n_res = 0, n_want = 0, n_backends = 0;

        if (slm_model_load(path, &m, &err) < 0) {
                fprintf(stderr, "slm-bench: %s: %s\n", path, err.msg);
                return 1;
        }
        const SlmHParams *hp = slm_model_hparams(m);
        snprintf(names, sizeof(names), "%s", backend_name);
        for (char *name = strtok_r(names, ",", &save); name && n_backends < MAX_BACKENDS;
             name = strtok_r(NULL, ",", &save)) {
                SlmBackend *b = NULL;
                SlmContext *ctx = NULL;
                int n_ctx = (pp > tg + 1 ? pp : tg + 1) + 1;
                int r = slm_backend_new(name, threads, &b);

                n_want += (pp ? 1 : 0) + (tg ? 1 + n_seqs : 0);
                if (r < 0) {
                        fprintf(stderr, "slm-bench: backend '%s': %s\n", name,
                                r == -ENODEV ? "no usable device" : strerror(-r));
                        continue;
                }
                if (n_ctx > hp->n_ctx_train ||
                    slm_context_new(m, b, n_ctx, kv_type, &ctx, &err) < 0) {
                        fprintf(stderr, "slm-bench: a context of %d: %s\n", n_ctx,
                                err.msg[0] ? err.msg : "longer than the model's");
                        slm_backend_free(b);
                        continue;
                }
                const char *bname = slm_backend_name(b); /* a static string */
                kv_names[n_backends] = slm_type_name(slm_context_kv_type(ctx));
                snprintf(devices[n_backends++], sizeof(devices[0]), "%s: %s", bname,
                         slm_backend_device_name(b));
                /* one untimed pass pages the weights in (and uploads them to a device) */
                run_test(ctx, hp->n_vocab, 0, 2, 1, &res[n_res]);
                if (pp && run_test(ctx, hp->n_vocab, pp, 0, reps, &res[n_res]) == 0)
                        res[n_res++].backend = bname;
                if (tg && run_test(ctx, hp->n_vocab, 0, tg, reps, &res[n_res]) == 0)
                        res[n_res++].backend = bname;
                for (int i = 0; tg && i < n_seqs; i++)
                        if (run_batch_test(m, b, n_ctx, kv_type, seqs[i], tg, reps, &res[n_res]) ==
                            0)
                                res[n_res++].backend = bname;
                /* while the backend still holds what it made of the weights */
                mems[n_backends - 1] = resident();
                packed[n_backends - 1] =
                    strcmp(bname, "cpu") == 0 ? (double)slm_backend_cpu_packed_bytes(b) / 1e9 : 0.0;
                slm_context_free(ctx);
                slm_backend_free(b);
        }
        double weights_gb = (double)slm_model_weight_bytes(m) / 1e9;
        const char *where = slm_model_gguf(m)->anon ? "an anonymous copy" : "the file mapping";
        double mem = memory_bandwidth(threads);

        for (int i = 0; i < n_res; i++) {
                bool decode = res[i].name[0] == 't' && !strchr(res[i].name, 'x'); /* one stream */
                if (json) {
                        printf("{\"model\":\"%s\",\"arch\":\"%s\",\"test\":\"%s\","
                               "\"tokens_per_s\":%.2f,\"min\":%.2f,\"max\":%.2f,\"threads\":%d,"
                               "\"backend\":\"%s\",\"kernels\":\"%s\",\"weights_gb\":%.3f",
                               path, slm_arch_name(hp->arch), res[i].name, res[i].median,
                               res[i].min, res[i].max, threads, res[i].backend, slm_cpu_simd_name(),
                               weights_gb);
                        if (decode && strcmp(res[i].backend, "cpu") == 0)
                                printf(",\"decode_gb_per_s\":%.2f,\"memory_read_gb_per_s\":%.2f",
                                       weights_gb * res[i].median, mem);
                        for (int k = 0; k < n_backends; k++)
                                if (strncmp(devices[k], res[i].backend, strlen(res[i].backend)) ==
                                    0) {
                                        printf(",\"weights\":\"%s\",\"packed_gb\":%.3f,"
                                               "\"rss_gb\":%.3f,\"rss_file_gb\":%.3f,"
                                               "\"rss_anon_gb\":%.3f,\"anon_huge_gb\":%.3f,"
                                               "\"kv_type\":\"%s\"",
                                               where, packed[k], mems[k].rss, mems[k].file,
                                               mems[k].anon, mems[k].huge, kv_names[k]);
                                        break;
                                }
                        printf("}\n");
                } else {
                        if (i == 0)
                                printf("%-40s %-6s %-8s %3s %8s %22s %s\n", "model", "test",
                                       "backend", "thr", "t/s", "(min..max)", "bandwidth");
                        printf("%-40.40s %-6s %-8s %3d %8.2f  (%7.2f .. %7.2f)", path, res[i].name,
                               res[i].backend, threads, res[i].median, res[i].min, res[i].max);
                        if (decode && strcmp(res[i].backend, "cpu") == 0)
                                printf("  %.1f GB/s of %.1f GB/s read bandwidth",
                                       weights_gb * res[i].median, mem);
                        printf("\n");
                }
        }
        if (!json) {
                printf("weights %.2f GB in %s\n", weights_gb, where);
                for (int i = 0; i < n_backends; i++) {
                        printf("%s\n  KV cache in %s\n", devices[i], kv_names[i]);
                        if (packed[i] > 0.0)
                                printf(
                                    "  packed for the CPU kernels: %.2f GB of anonymous memory\n",
                                    packed[i]);
                        printf(
                            "  resident: %.2f GB (file %.2f, anonymous %.2f, of which huge pages "
                            "%.2f)\n",
                            mems[i].rss, mems[i].file, mems[i].anon, mems[i].huge);
                }
        }
        slm_model_free(m);
        return n_res == n_want ? 0 : 1;
}
