/* SPDX-License-Identifier: MIT */
/*
 * The cost of structured output: decode tokens/s under a JSON Schema beside
 * the same decode unconstrained, in one run, runs alternating; the time to
 * compile the schema and to build the vocabulary's trie; the time the mask
 * takes per token (p50, p99, and the first mask at each new grammar
 * position, where nothing is remembered yet).
 *
 * Usage: structured MODEL.gguf SCHEMA.json [-n TOKENS] [-t THREADS] [-r REPS] [-k TOP_K]
 * (-k: the tokens the sampler keeps, 1 for greedy, 0 to always compute the whole mask)
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "grammar.h"
#include "model.h"
#include "sampler.h"

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

static char *read_text(const char *path)
{
        FILE *f = fopen(path, "rb");
        char *s = NULL;
        long n;

        if (!f)
                return NULL;
        if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
            (s = malloc((size_t)n + 1)) && fread(s, 1, (size_t)n, f) == (size_t)n)
                s[n] = 0;
        else {
                free(s);
                s = NULL;
        }
        fclose(f);
        return s;
}

typedef struct {
        double tok_s;
        double *mask_ms; /* per constrained token */
        int n_mask;
        int documents; /* JSON texts completed */
} Run;

/* @n greedy tokens after a short prompt; under @g (NULL: free), a new document when one ends. */
static int top_k = 1; /* greedy; -k K for a sampler's top-k, 0 for the whole mask */

static int run(SlmModel *m, SlmBackend *b, const SlmGrammar *g, const SlmTokenTrie *trie, int n,
               Run *out)
{
        const SlmTokenizer *tk = slm_model_tokenizer(m);
        int n_vocab = slm_model_hparams(m)->n_vocab, r;
        float *logits = malloc((size_t)n_vocab * sizeof(float));
        SlmContext *ctx = NULL;
        SlmGrammarMatcher *gm = NULL;
        SlmError err = { { 0 } };
        int32_t prompt[8], tok;
        size_t n_prompt;
        int32_t *ids = NULL;

        if (!logits)
                return -ENOMEM;
        r = slm_context_new(m, b, n + 64, SLM_TYPE_F16, &ctx, &err);
        if (r == 0)
                r = slm_tokenizer_encode(tk, "The answer as JSON:", 19, SLM_TOKENIZE_ADD_SPECIAL,
                                         &ids, &n_prompt);
        if (r == 0) {
                n_prompt = n_prompt > 8 ? 8 : n_prompt;
                memcpy(prompt, ids, n_prompt * sizeof(int32_t));
                r = slm_context_eval(ctx, prompt, (int)n_prompt, logits);
        }
        if (r == 0 && g)
                r = slm_grammar_matcher_new(g, trie, &gm);
        double t0 = now();
        for (int i = 0; i < n && r == 0; i++) {
                if (gm) {
                        double m0 = now();
                        int allowed = slm_grammar_matcher_mask_top(gm, logits, top_k);
                        out->mask_ms[out->n_mask++] = (now() - m0) * 1e3;
                        if (allowed <= 0) {
                                r = allowed < 0 ? allowed : -EINVAL;
                                break;
                        }
                }
                tok = slm_argmax(logits, n_vocab);
                if (gm) {
                        if ((r = slm_grammar_matcher_accept(gm, tok)) < 0)
                                break;
                        if (slm_tokenizer_is_eog(tk, tok) || slm_grammar_matcher_finished(gm)) {
                                /* the document is whole: start the next one */
                                out->documents++;
                                slm_grammar_matcher_free(gm);
                                gm = NULL;
                                if ((r = slm_grammar_matcher_new(g, trie, &gm)) < 0)
                                        break;
                                if (slm_tokenizer_is_eog(tk, tok))
                                        tok = prompt[n_prompt - 1];
                        }
                }
                r = slm_context_eval(ctx, &tok, 1, logits);
        }
        out->tok_s = n / (now() - t0);
        slm_grammar_matcher_free(gm);
        slm_context_free(ctx);
        free(ids);
        free(logits);
        return r;
}

int main(int argc, char **argv)
{
        int n = 128, threads = 2, reps = 3;
        const char *model = NULL, *schema_path = NULL;

        for (int i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "-n") && i + 1 < argc)
                        n = atoi(argv[++i]);
                else if (!strcmp(argv[i], "-t") && i + 1 < argc)
                        threads = atoi(argv[++i]);
                else if (!strcmp(argv[i], "-r") && i + 1 < argc)
                        reps = atoi(argv[++i]);
                else if (!strcmp(argv[i], "-k") && i + 1 < argc)
                        top_k = atoi(argv[++i]);
                else if (!model)
                        model = argv[i];
                else
                        schema_path = argv[i];
        }
        if (!model || !schema_path || n < 1 || threads < 1 || reps < 1 || reps > 50) {
                fprintf(stderr, "Usage: structured MODEL.gguf SCHEMA.json [-n N] [-t T] [-r R]\n");
                return 2;
        }
        char *schema = read_text(schema_path);
        if (!schema) {
                fprintf(stderr, "structured: cannot read %s\n", schema_path);
                return 1;
        }

        /* compiling: schema to GBNF to a grammar */
        SlmError err = { { 0 } };
        SlmGrammar *g = NULL;
        double compile[101];
        for (int i = 0; i < 101; i++) {
                char *gbnf = NULL;
                double t0 = now();
                if (slm_json_schema_to_gbnf(schema, strlen(schema), &gbnf, &err) < 0 ||
                    slm_grammar_parse(gbnf, strlen(gbnf), &g, &err) < 0) {
                        fprintf(stderr, "structured: %s\n", err.msg);
                        return 1;
                }
                compile[i] = (now() - t0) * 1e3;
                free(gbnf);
                if (i < 100)
                        g = slm_grammar_free(g);
        }
        qsort(compile, 101, sizeof(double), cmp_double);

        SlmModel *m = NULL;
        SlmBackend *b = NULL;
        SlmTokenTrie *trie = NULL;
        if (slm_model_load(model, &m, &err) < 0 || slm_backend_new("cpu", threads, &b) < 0) {
                fprintf(stderr, "structured: %s: %s\n", model, err.msg);
                return 1;
        }
        double t0 = now();
        if (slm_token_trie_new(slm_model_tokenizer(m), &trie) < 0) {
                fprintf(stderr, "structured: out of memory\n");
                return 1;
        }
        double trie_ms = (now() - t0) * 1e3;

        double free_tok[50], json_tok[50];
        double *masks = malloc(sizeof(double) * (size_t)n * (size_t)reps);
        int n_masks = 0, docs = 0;
        Run warm = { .mask_ms = masks };
        run(m, b, NULL, trie, 8, &warm); /* pages the weights in */
        for (int k = 0; k < reps; k++) {
                Run a = { 0 }, c = { .mask_ms = masks + n_masks };
                if (run(m, b, NULL, trie, n, &a) < 0 || run(m, b, g, trie, n, &c) < 0) {
                        fprintf(stderr, "structured: a run failed\n");
                        return 1;
                }
                free_tok[k] = a.tok_s;
                json_tok[k] = c.tok_s;
                n_masks += c.n_mask;
                docs += c.documents;
        }
        qsort(free_tok, (size_t)reps, sizeof(double), cmp_double);
        qsort(json_tok, (size_t)reps, sizeof(double), cmp_double);
        /* the first mask of a run is at a new position: report them apart */
        double first_max = 0;
        for (int k = 0; k < reps; k++)
                first_max = fmax(first_max, masks[k * n]);
        qsort(masks, (size_t)n_masks, sizeof(double), cmp_double);
        double sum = 0;
        for (int i = 0; i < n_masks; i++)
                sum += masks[i];

        printf("model %s, vocabulary %d, %d threads, %d tokens x %d runs each, top-k %d\n", model,
               slm_model_hparams(m)->n_vocab, threads, n, reps, top_k);
        printf("schema %s: compiled in %.3f ms (median of 101)\n", schema_path, compile[50]);
        printf("vocabulary trie built in %.1f ms (once per model)\n", trie_ms);
        printf("decode unconstrained   %8.2f tok/s (min %.2f, max %.2f)\n", free_tok[reps / 2],
               free_tok[0], free_tok[reps - 1]);
        printf("decode with the schema %8.2f tok/s (min %.2f, max %.2f), %d documents\n",
               json_tok[reps / 2], json_tok[0], json_tok[reps - 1], docs);
        printf("ratio %.3f\n", json_tok[reps / 2] / free_tok[reps / 2]);
        printf("mask per token: mean %.3f ms, p50 %.3f ms, p99 %.3f ms, max %.3f ms "
               "(a new position: up to %.3f ms)\n",
               sum / n_masks, masks[n_masks / 2], masks[(int)(n_masks * 0.99)], masks[n_masks - 1],
               first_max);
        free(masks);
        free(schema);
        slm_token_trie_free(trie);
        slm_grammar_free(g);
        slm_backend_free(b);
        slm_model_free(m);
        return 0;
}
