/* SPDX-License-Identifier: MIT */
/*
 * Choosing the next token from logits: penalties over the recent history
 * (repetition, frequency, presence), then greedy argmax when the
 * temperature is 0, else top-k, temperature, top-p and min-p followed by
 * a draw from a seeded generator (same seed, same logits: same tokens).
 *
 * Stop strings are matched over the generated text by SlmStopMatcher.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
        float temperature;    /* 0: greedy */
        int top_k;            /* 0: all */
        float top_p;          /* 1: off */
        float min_p;          /* 0: off */
        float repeat_penalty; /* 1: off */
        int penalty_last_n;   /* history window for the penalties */
        float frequency_penalty;
        float presence_penalty;
        uint64_t seed;
} SlmSamplerParams;

typedef struct SlmSampler SlmSampler;

void slm_sampler_params_default(SlmSamplerParams *p);
/* -EINVAL for invalid parameters (slm_sampler_params_check names the first). */
int slm_sampler_new(const SlmSamplerParams *p, int n_vocab, SlmSampler **ret_sampler);
SlmSampler *slm_sampler_free(SlmSampler *s);
/* NULL when the parameters are valid, else the name of the first bad one. */
const char *slm_sampler_params_check(const SlmSamplerParams *p);

/* Pick a token from @logits (modified in place); @history is what the sequence holds so far. */
int32_t slm_sampler_sample(SlmSampler *s, float *logits, const int32_t *history, size_t n_history);

/* Greedy choice: the largest logit, ties to the lowest id. */
int32_t slm_argmax(const float *logits, int n);

/*
 * Stop strings: feed generated text; it returns how many bytes of what was
 * fed so far are safe to show (text that cannot be the start of a stop
 * string), and sets *ret_stopped once a stop string has appeared (the text
 * before it is safe, the stop string itself is not shown).
 */
typedef struct {
        char **stops;
        size_t n_stops;
        char *text; /* fed but not yet released */
        size_t n_text, cap;
} SlmStopMatcher;

int slm_stop_matcher_init(SlmStopMatcher *m, const char *const *stops, size_t n_stops);
void slm_stop_matcher_clear(SlmStopMatcher *m);
/*
 * Feed @len bytes; *ret_out and *ret_n give the text now safe to show (valid
 * until the next call). Returns 0, or -ENOMEM.
 */
int slm_stop_matcher_feed(SlmStopMatcher *m, const char *s, size_t len, const char **ret_out,
                          size_t *ret_n, bool *ret_stopped);
/* At the end: the text held back, which is safe now. */
void slm_stop_matcher_flush(SlmStopMatcher *m, const char **ret_out, size_t *ret_n);

#ifdef __cplusplus
}
#endif
