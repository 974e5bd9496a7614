/* SPDX-License-Identifier: MIT */
/*
 * slm-generate: the engine alone, no D-Bus. Loads a GGUF model, evaluates
 * a prompt and prints the continuation as it is generated; timings go to
 * stderr at the end.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model.h"
#include "sampler.h"

#define MAX_STOPS 16

static void usage(FILE *f)
{
        fprintf(f, "Usage: slm-generate MODEL.gguf PROMPT [options]\n"
                   "\n"
                   "Options:\n"
                   "  -n, --n-predict N       tokens to generate (default 128)\n"
                   "      --temp T            temperature, 0 = greedy (default 0)\n"
                   "      --top-k K           keep the K most likely tokens (default 40)\n"
                   "      --top-p P           nucleus sampling threshold (default 0.95)\n"
                   "      --min-p P           drop tokens below P x the best (default 0.05)\n"
                   "      --repeat-penalty R  penalty for recent tokens (default 1.0 = off)\n"
                   "      --frequency-penalty F, --presence-penalty P\n"
                   "      --seed S            random seed (default 0)\n"
                   "      --stop TEXT         stop when TEXT appears (repeatable)\n"
                   "      --ignore-eos        keep going past end-of-generation tokens\n"
                   "  -c, --ctx N             context size (default: the model's)\n"
                   "  -t, --threads N         worker threads (default 1)\n"
                   "      --backend NAME      cpu, vulkan or auto (default auto)\n"
                   "      --kv-type TYPE      KV cache in f16, q8_0 or f32 (default f16)\n"
                   "      --ids               print prompt ids and generated ids, not text\n"
                   "      --parse-special     match control-token text such as <|im_start|>\n"
                   "  -h, --help\n");
}

static double now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int parse_int(const char *s, const char *what, long min, long max, long *ret)
{
        char *end;
        long v;

        errno = 0;
        v = strtol(s, &end, 10);
        if (errno || *end || end == s || v < min || v > max) {
                fprintf(stderr, "slm-generate: invalid %s '%s'\n", what, s);
                return -EINVAL;
        }
        *ret = v;
        return 0;
}

static int parse_float(const char *s, const char *what, float *ret)
{
        char *end;
        float v;

        errno = 0;
        v = strtof(s, &end);
        if (errno || *end || end == s) {
                fprintf(stderr, "slm-generate: invalid %s '%s'\n", what, s);
                return -EINVAL;
        }
        *ret = v;
        return 0;
}

static void print_ids(const int32_t *ids, size_t n)
{
        for (size_t i = 0; i < n; i++)
                printf("%s%d", i ? " " : "", ids[i]);
        printf("\n");
}

enum {
        OPT_TEMP = 256,
        OPT_TOP_K,
        OPT_TOP_P,
        OPT_MIN_P,
        OPT_REPEAT,
        OPT_FREQ,
        OPT_PRESENCE,
        OPT_SEED,
        OPT_STOP,
        OPT_IGNORE_EOS,
        OPT_BACKEND,
        OPT_KV_TYPE,
        OPT_IDS,
        OPT_PARSE_SPECIAL,
};

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                { "n-predict", required_argument, NULL, 'n' },
                { "temp", required_argument, NULL, OPT_TEMP },
                { "top-k", required_argument, NULL, OPT_TOP_K },
                { "top-p", required_argument, NULL, OPT_TOP_P },
                { "min-p", required_argument, NULL, OPT_MIN_P },
                { "repeat-penalty", required_argument, NULL, OPT_REPEAT },
                { "frequency-penalty", required_argument, NULL, OPT_FREQ },
                { "presence-penalty", required_argument, NULL, OPT_PRESENCE },
                { "seed", required_argument, NULL, OPT_SEED },
                { "stop", required_argument, NULL, OPT_STOP },
                { "ignore-eos", no_argument, NULL, OPT_IGNORE_EOS },
                { "ctx", required_argument, NULL, 'c' },
                { "threads", required_argument, NULL, 't' },
                { "backend", required_argument, NULL, OPT_BACKEND },
                { "kv-type", required_argument, NULL, OPT_KV_TYPE },
                { "ids", no_argument, NULL, OPT_IDS },
                { "parse-special", no_argument, NULL, OPT_PARSE_SPECIAL },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        SlmSamplerParams sp;
        const char *stops[MAX_STOPS];
        size_t n_stops = 0;
        const char *backend_name = "auto";
        SlmType kv_type = SLM_KV_TYPE_DEFAULT;
        long n_predict = 128, n_ctx = 0, n_threads = 1, v;
        bool ids_mode = false, ignore_eos = false, parse_special = false;
        int c;

        slm_sampler_params_default(&sp);
        sp.temperature = 0.0f;
        while ((c = getopt_long(argc, argv, "n:c:t:h", opts, NULL)) != -1) {
                int r = 0;
                switch (c) {
                case 'n':
                        r = parse_int(optarg, "token count", 0, 1 << 24, &n_predict);
                        break;
                case 'c':
                        r = parse_int(optarg, "context size", 1, 1 << 24, &n_ctx);
                        break;
                case 't':
                        r = parse_int(optarg, "thread count", 1, 1024, &n_threads);
                        break;
                case OPT_TEMP:
                        r = parse_float(optarg, "temperature", &sp.temperature);
                        break;
                case OPT_TOP_K:
                        r = parse_int(optarg, "top-k", 0, 1 << 24, &v);
                        sp.top_k = (int)v;
                        break;
                case OPT_TOP_P:
                        r = parse_float(optarg, "top-p", &sp.top_p);
                        break;
                case OPT_MIN_P:
                        r = parse_float(optarg, "min-p", &sp.min_p);
                        break;
                case OPT_REPEAT:
                        r = parse_float(optarg, "repeat penalty", &sp.repeat_penalty);
                        break;
                case OPT_FREQ:
                        r = parse_float(optarg, "frequency penalty", &sp.frequency_penalty);
                        break;
                case OPT_PRESENCE:
                        r = parse_float(optarg, "presence penalty", &sp.presence_penalty);
                        break;
                case OPT_SEED: {
                        char *end;
                        errno = 0;
                        sp.seed = strtoull(optarg, &end, 10);
                        if (errno || *end || end == optarg) {
                                fprintf(stderr, "slm-generate: invalid seed '%s'\n", optarg);
                                r = -EINVAL;
                        }
                        break;
                }
                case OPT_STOP:
                        if (n_stops == MAX_STOPS) {
                                fprintf(stderr, "slm-generate: at most %d stop strings\n",
                                        MAX_STOPS);
                                r = -EINVAL;
                        } else {
                                stops[n_stops++] = optarg;
                        }
                        break;
                case OPT_IGNORE_EOS:
                        ignore_eos = true;
                        break;
                case OPT_BACKEND:
                        backend_name = optarg;
                        break;
                case OPT_KV_TYPE:
                        r = slm_kv_type_from_name(optarg, &kv_type);
                        if (r < 0)
                                fprintf(stderr, "slm-generate: --kv-type is f16, q8_0 or f32\n");
                        break;
                case OPT_IDS:
                        ids_mode = true;
                        break;
                case OPT_PARSE_SPECIAL:
                        parse_special = true;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
                if (r < 0)
                        return 2;
        }
        if (argc - optind != 2) {
                usage(stderr);
                return 2;
        }
        const char *bad = slm_sampler_params_check(&sp);
        if (bad) {
                fprintf(stderr, "slm-generate: invalid sampling value: %s\n", bad);
                return 2;
        }
        const char *model_path = argv[optind], *prompt = argv[optind + 1];

        SlmError err = { { 0 } };
        SlmModel *model = NULL;
        SlmBackend *backend = NULL;
        SlmContext *ctx = NULL;
        SlmSampler *sampler = NULL;
        SlmStopMatcher stopm = { 0 };
        int32_t *ids = NULL, *gen = NULL;
        float *logits = NULL;
        size_t n_prompt = 0, n_gen = 0;
        int ret = 1, r;

        double t0 = now();
        r = slm_model_load(model_path, &model, &err);
        if (r < 0) {
                fprintf(stderr, "slm-generate: %s: %s\n", model_path, err.msg);
                return 1;
        }
        const SlmHParams *hp = slm_model_hparams(model);
        const SlmTokenizer *tk = slm_model_tokenizer(model);
        r = slm_backend_new(backend_name, (int)n_threads, &backend);
        if (r < 0) {
                fprintf(stderr, "slm-generate: backend '%s': %s\n", backend_name,
                        r == -ENODEV ? "not available in this build" : strerror(-r));
                goto out;
        }
        r = slm_context_new(model, backend, (int)n_ctx, kv_type, &ctx, &err);
        if (r < 0) {
                fprintf(stderr, "slm-generate: %s\n", err.msg);
                goto out;
        }
        double t_load = now() - t0;

        r = slm_tokenizer_encode(tk, prompt, strlen(prompt),
                                 SLM_TOKENIZE_ADD_SPECIAL |
                                     (parse_special ? SLM_TOKENIZE_PARSE_SPECIAL : 0),
                                 &ids, &n_prompt);
        if (r < 0) {
                fprintf(stderr, "slm-generate: cannot tokenize the prompt: %s\n", strerror(-r));
                goto out;
        }
        if (n_prompt == 0) {
                fprintf(stderr, "slm-generate: the prompt is empty and the model adds no BOS\n");
                goto out;
        }
        if (n_prompt + (size_t)n_predict > (size_t)slm_context_n_ctx(ctx)) {
                fprintf(stderr,
                        "slm-generate: %zu prompt + %ld new tokens exceed the context of %d\n",
                        n_prompt, n_predict, slm_context_n_ctx(ctx));
                goto out;
        }
        logits = malloc((size_t)hp->n_vocab * sizeof(float));
        gen = malloc((n_prompt + (size_t)n_predict + 1) * sizeof(int32_t));
        if (!logits || !gen || slm_sampler_new(&sp, hp->n_vocab, &sampler) < 0 ||
            slm_stop_matcher_init(&stopm, stops, n_stops) < 0) {
                fprintf(stderr, "slm-generate: out of memory\n");
                goto out;
        }
        memcpy(gen, ids, n_prompt * sizeof(int32_t));

        double t1 = now();
        r = slm_context_eval(ctx, ids, (int)n_prompt, logits);
        if (r < 0) {
                fprintf(stderr, "slm-generate: evaluating the prompt failed: %s\n", strerror(-r));
                goto out;
        }
        double t_prompt = now() - t1;

        SlmDetokenizer detok;
        slm_detokenizer_init(&detok, tk, false);
        bool stopped = false;
        double t2 = now();
        while ((long)n_gen < n_predict && !stopped) {
                int32_t id = slm_sampler_sample(sampler, logits, gen, n_prompt + n_gen);
                gen[n_prompt + n_gen++] = id;
                if (!ignore_eos && slm_tokenizer_is_eog(tk, id))
                        break;
                if (!ids_mode) {
                        char buf[4096];
                        const char *out;
                        size_t n_out;
                        int n = slm_detokenizer_feed(&detok, id, buf, sizeof(buf));
                        if (n > 0 && slm_stop_matcher_feed(&stopm, buf, (size_t)n, &out, &n_out,
                                                           &stopped) == 0) {
                                fwrite(out, 1, n_out, stdout);
                                fflush(stdout);
                        }
                }
                if ((long)n_gen == n_predict || stopped)
                        break;
                r = slm_context_eval(ctx, &id, 1, logits);
                if (r < 0) {
                        fprintf(stderr, "slm-generate: decoding failed: %s\n", strerror(-r));
                        goto out;
                }
        }
        double t_gen = now() - t2;

        if (ids_mode) {
                print_ids(ids, n_prompt);
                print_ids(gen + n_prompt, n_gen);
        } else if (!stopped) {
                char buf[64];
                const char *out;
                size_t n_out;
                int n = slm_detokenizer_flush(&detok, buf, sizeof(buf));
                bool st;
                if (n > 0 && slm_stop_matcher_feed(&stopm, buf, (size_t)n, &out, &n_out, &st) == 0)
                        fwrite(out, 1, n_out, stdout);
                slm_stop_matcher_flush(&stopm, &out, &n_out);
                fwrite(out, 1, n_out, stdout);
                printf("\n");
        } else {
                printf("\n");
        }
        fflush(stdout);
        fprintf(stderr,
                "\nmodel: %s (%s, %d layers, %d embd), backend %s, %ld threads, KV cache %s, "
                "load %.1f ms\n"
                "prompt: %zu tokens in %.1f ms (%.1f tokens/s)\n"
                "generate: %zu tokens in %.1f ms (%.1f tokens/s)\n",
                model_path, slm_arch_name(hp->arch), hp->n_layer, hp->n_embd,
                slm_backend_name(backend), n_threads, slm_type_name(slm_context_kv_type(ctx)),
                t_load * 1e3, n_prompt, t_prompt * 1e3, n_prompt / (t_prompt > 0 ? t_prompt : 1e-9),
                n_gen, t_gen * 1e3,
                n_gen > 1 ? (double)(n_gen - 1) / (t_gen > 0 ? t_gen : 1e-9) : 0.0);
        ret = 0;
out:
        free(ids);
        free(gen);
        free(logits);
        slm_stop_matcher_clear(&stopm);
        slm_sampler_free(sampler);
        slm_context_free(ctx);
        slm_backend_free(backend);
        slm_model_free(model);
        return ret;
}
