/* SPDX-License-Identifier: MIT */
#include "sampler.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
        int32_t id;
        float logit;
        float p;
} Candidate;

struct SlmSampler {
        SlmSamplerParams p;
        int n_vocab;
        uint64_t rng;
        Candidate *cand;
        int32_t *counts; /* occurrences in the penalty window, per token */
};

void slm_sampler_params_default(SlmSamplerParams *p)
{
        *p = (SlmSamplerParams){
                .temperature = 0.8f,
                .top_k = 40,
                .top_p = 0.95f,
                .min_p = 0.05f,
                .repeat_penalty = 1.0f,
                .penalty_last_n = 64,
                .frequency_penalty = 0.0f,
                .presence_penalty = 0.0f,
                .seed = 0,
        };
}

const char *slm_sampler_params_check(const SlmSamplerParams *p)
{
        if (!isfinite(p->temperature) || p->temperature < 0.0f || p->temperature > 100.0f)
                return "temperature";
        if (p->top_k < 0)
                return "top_k";
        if (!isfinite(p->top_p) || p->top_p <= 0.0f || p->top_p > 1.0f)
                return "top_p";
        if (!isfinite(p->min_p) || p->min_p < 0.0f || p->min_p >= 1.0f)
                return "min_p";
        if (!isfinite(p->repeat_penalty) || p->repeat_penalty <= 0.0f || p->repeat_penalty > 100.0f)
                return "repeat_penalty";
        if (p->penalty_last_n < 0)
                return "penalty_last_n";
        if (!isfinite(p->frequency_penalty) || fabsf(p->frequency_penalty) > 100.0f)
                return "frequency_penalty";
        if (!isfinite(p->presence_penalty) || fabsf(p->presence_penalty) > 100.0f)
                return "presence_penalty";
        return NULL;
}

int slm_sampler_new(const SlmSamplerParams *p, int n_vocab, SlmSampler **ret_sampler)
{
        SlmSampler *s;

        if (n_vocab <= 0 || slm_sampler_params_check(p))
                return -EINVAL;
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->p = *p;
        s->n_vocab = n_vocab;
        s->rng = p->seed;
        s->cand = malloc((size_t)n_vocab * sizeof(Candidate));
        s->counts = calloc((size_t)n_vocab, sizeof(int32_t));
        if (!s->cand || !s->counts) {
                slm_sampler_free(s);
                return -ENOMEM;
        }
        *ret_sampler = s;
        return 0;
}

SlmSampler *slm_sampler_free(SlmSampler *s)
{
        if (!s)
                return NULL;
        free(s->cand);
        free(s->counts);
        free(s);
        return NULL;
}

int32_t slm_argmax(const float *logits, int n)
{
        int32_t best = 0;

        for (int i = 1; i < n; i++)
                if (logits[i] > logits[best])
                        best = i;
        return best;
}

/* splitmix64: a full-period generator that needs no warm-up. */
static double next_uniform(SlmSampler *s)
{
        uint64_t z = (s->rng += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        return (double)(z >> 11) * 0x1p-53;
}

static void apply_penalties(SlmSampler *s, float *logits, const int32_t *history, size_t n)
{
        const SlmSamplerParams *p = &s->p;
        size_t first;

        if (p->repeat_penalty == 1.0f && p->frequency_penalty == 0.0f &&
            p->presence_penalty == 0.0f)
                return;
        first = n > (size_t)p->penalty_last_n ? n - (size_t)p->penalty_last_n : 0;
        for (size_t i = first; i < n; i++)
                if (history[i] >= 0 && history[i] < s->n_vocab)
                        s->counts[history[i]]++;
        for (size_t i = first; i < n; i++) {
                int32_t id = history[i];
                if (id < 0 || id >= s->n_vocab || s->counts[id] == 0)
                        continue;
                float *l = &logits[id];
                *l = *l > 0.0f ? *l / p->repeat_penalty : *l * p->repeat_penalty;
                *l -= (float)s->counts[id] * p->frequency_penalty + p->presence_penalty;
                s->counts[id] = 0; /* each token once; also leaves the array clean */
        }
}

static int cmp_desc(const void *a, const void *b)
{
        const Candidate *x = a, *y = b;
        if (x->logit != y->logit)
                return x->logit > y->logit ? -1 : 1;
        return x->id < y->id ? -1 : x->id > y->id;
}

/* Softmax of logit / temp over the first n candidates into p. */
static void softmax(Candidate *c, size_t n, float temp)
{
        double sum = 0.0;
        float max = c[0].logit;

        for (size_t i = 0; i < n; i++) {
                c[i].p = expf((c[i].logit - max) / temp);
                sum += c[i].p;
        }
        for (size_t i = 0; i < n; i++)
                c[i].p = (float)(c[i].p / sum);
}

int32_t slm_sampler_sample(SlmSampler *s, float *logits, const int32_t *history, size_t n_history)
{
        const SlmSamplerParams *p = &s->p;
        size_t n = (size_t)s->n_vocab;

        /* a corrupt model can produce NaN: such a token is never chosen */
        for (size_t i = 0; i < n; i++)
                if (isnan(logits[i]))
                        logits[i] = -INFINITY;
        apply_penalties(s, logits, history, n_history);
        if (p->temperature == 0.0f)
                return slm_argmax(logits, s->n_vocab);

        for (size_t i = 0; i < n; i++)
                s->cand[i] = (Candidate){ (int32_t)i, logits[i], 0.0f };
        qsort(s->cand, n, sizeof(Candidate), cmp_desc);
        if (p->top_k > 0 && (size_t)p->top_k < n)
                n = (size_t)p->top_k;

        /* top-p and min-p judge the untempered distribution */
        softmax(s->cand, n, 1.0f);
        if (p->top_p < 1.0f) {
                double cum = 0.0;
                for (size_t i = 0; i < n; i++) {
                        cum += s->cand[i].p;
                        if (cum >= p->top_p) {
                                n = i + 1;
                                break;
                        }
                }
        }
        if (p->min_p > 0.0f) {
                float floor = p->min_p * s->cand[0].p;
                size_t keep = 1;
                while (keep < n && s->cand[keep].p >= floor)
                        keep++;
                n = keep;
        }

        softmax(s->cand, n, p->temperature);
        double r = next_uniform(s), cum = 0.0;
        for (size_t i = 0; i < n; i++) {
                cum += s->cand[i].p;
                if (r < cum)
                        return s->cand[i].id;
        }
        return s->cand[n - 1].id;
}

/* ---- stop strings -------------------------------------------------------------------------- */

int slm_stop_matcher_init(SlmStopMatcher *m, const char *const *stops, size_t n_stops)
{
        memset(m, 0, sizeof(*m));
        if (n_stops == 0)
                return 0;
        m->stops = calloc(n_stops, sizeof(char *));
        if (!m->stops)
                return -ENOMEM;
        for (size_t i = 0; i < n_stops; i++) {
                size_t len = strlen(stops[i]);
                if (len == 0)
                        continue; /* an empty stop string would stop before anything */
                m->stops[m->n_stops] = strdup(stops[i]);
                if (!m->stops[m->n_stops]) {
                        slm_stop_matcher_clear(m);
                        return -ENOMEM;
                }
                m->n_stops++;
        }
        return 0;
}

void slm_stop_matcher_clear(SlmStopMatcher *m)
{
        for (size_t i = 0; i < m->n_stops; i++)
                free(m->stops[i]);
        free(m->stops);
        free(m->text);
        memset(m, 0, sizeof(*m));
}

int slm_stop_matcher_feed(SlmStopMatcher *m, const char *s, size_t len, const char **ret_out,
                          size_t *ret_n, bool *ret_stopped)
{
        size_t best = SIZE_MAX, hold = 0;

        *ret_stopped = false;
        if (m->n_stops == 0) {
                *ret_out = s;
                *ret_n = len;
                return 0;
        }
        if (m->n_text + len + 1 > m->cap) {
                size_t cap = 2 * (m->n_text + len + 1);
                char *p = realloc(m->text, cap);
                if (!p)
                        return -ENOMEM;
                m->text = p;
                m->cap = cap;
        }
        memcpy(m->text + m->n_text, s, len);
        m->n_text += len;
        m->text[m->n_text] = 0;

        for (size_t i = 0; i < m->n_stops; i++) {
                const char *hit = memmem(m->text, m->n_text, m->stops[i], strlen(m->stops[i]));
                if (hit && (size_t)(hit - m->text) < best)
                        best = (size_t)(hit - m->text);
        }
        if (best != SIZE_MAX) {
                *ret_out = m->text;
                *ret_n = best;
                *ret_stopped = true;
                m->n_text = 0;
                return 0;
        }
        /* hold back the longest tail that begins some stop string */
        for (size_t i = 0; i < m->n_stops; i++) {
                size_t sl = strlen(m->stops[i]);
                for (size_t k = sl - 1; k > hold; k--)
                        if (k <= m->n_text &&
                            memcmp(m->text + m->n_text - k, m->stops[i], k) == 0) {
                                hold = k;
                                break;
                        }
        }
        /* release the rest: copy it out so the held tail can move to the front */
        size_t out = m->n_text - hold;
        if (m->cap < 2 * m->n_text + 1) {
                char *p = realloc(m->text, 2 * m->n_text + 1);
                if (!p)
                        return -ENOMEM;
                m->text = p;
                m->cap = 2 * m->n_text + 1;
        }
        /* the released bytes are returned from the second half of the buffer */
        char *rel = m->text + m->n_text + 1;
        memcpy(rel, m->text, out);
        memmove(m->text, m->text + out, hold);
        m->n_text = hold;
        *ret_out = rel;
        *ret_n = out;
        return 0;
}

void slm_stop_matcher_flush(SlmStopMatcher *m, const char **ret_out, size_t *ret_n)
{
        *ret_out = m->text ? m->text : "";
        *ret_n = m->n_text;
        m->n_text = 0;
}
