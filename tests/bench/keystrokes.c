/* SPDX-License-Identifier: MIT */
/*
 * A keyboard typing a text: keystroke savings of slmd's Suggest against
 * presage (Debian's n-gram predictor, through its C API), and the latency
 * of each Suggest call, both under the same rules:
 *
 * - the text is typed one character at a time; before each character of
 *   a word (letters, digits, apostrophes, non-ASCII) the predictor is
 *   asked for its top 3 for the text so far;
 * - when the rest of the word is offered (in any case), one key takes it;
 * - spaces and punctuation are typed, one key each.
 *
 * Savings are 1 - keys / characters. Latency: p50/p90/p99/max over every
 * Suggest call, with N_STREAMS other clients generating meanwhile.
 *
 * Usage: keystrokes ADDRESS TEXT_FILE [N_STREAMS] [--no-presage]
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#ifdef HAVE_PRESAGE
#include <presage.h>
#endif

#include "slm-client.h"

#define TOP 3

static atomic_bool stop_streams;

static double now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int is_word_byte(unsigned char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '\'' || c >= 0x80;
}

/* A predictor: up to TOP words for the text typed so far (NULL-terminated, freed by @free). */
typedef struct {
        const char *name;
        char **(*predict)(void *self, const char *typed);
        void (*free)(char **words);
        void *self;
        double *lat; /* per call, ms; NULL: not measured */
        size_t n_lat, cap_lat;
} Predictor;

/* Keys it takes to type @text with @p's help. */
static size_t type_text(Predictor *p, const char *text, size_t *ret_chars)
{
        size_t n = strlen(text), keys = 0, chars = 0;
        char *typed = calloc(n + 1, 1);

        for (size_t i = 0; i < n;) {
                if (!is_word_byte((unsigned char)text[i])) {
                        typed[i] = text[i];
                        i++, keys++, chars++;
                        continue;
                }
                size_t end = i;
                while (end < n && is_word_byte((unsigned char)text[end]))
                        end++;
                size_t start = i;
                /* letter by letter; before each, the predictor's offer */
                while (i < end) {
                        typed[i] = 0;
                        double t0 = now_ms();
                        char **words = p->predict(p->self, typed);
                        double dt = now_ms() - t0;
                        if (p->lat) {
                                if (p->n_lat == p->cap_lat) {
                                        p->cap_lat = p->cap_lat ? 2 * p->cap_lat : 1024;
                                        p->lat = realloc(p->lat, p->cap_lat * sizeof(double));
                                }
                                p->lat[p->n_lat++] = dt;
                        }
                        int taken = 0;
                        for (int k = 0; words && words[k] && k < TOP && !taken; k++)
                                taken = strlen(words[k]) == end - start &&
                                        strncasecmp(words[k], text + start, end - start) == 0;
                        if (words)
                                p->free(words);
                        if (taken) {
                                memcpy(typed + start, text + start, end - start);
                                keys++;
                                chars += end - i;
                                i = end;
                                break;
                        }
                        typed[i] = text[i];
                        i++, keys++, chars++;
                }
        }
        free(typed);
        *ret_chars = chars;
        return keys;
}

/* ---- slmd ---------------------------------------------------------------------------------- */

static char **slmd_predict(void *self, const char *typed)
{
        char **words = NULL;
        SlmClientError err;

        if (slm_session_suggest(self, typed, TOP, &words, &err) < 0) {
                fprintf(stderr, "keystrokes: Suggest: %s\n", err.message);
                exit(1);
        }
        return words;
}

/* ---- presage ------------------------------------------------------------------------------- */

#ifdef HAVE_PRESAGE
static const char *past_text = "";

static const char *presage_past(void *arg)
{
        (void)arg;
        return past_text;
}

static const char *presage_future(void *arg)
{
        (void)arg;
        return "";
}

static char **presage_predict_words(void *self, const char *typed)
{
        char **words = NULL;

        past_text = typed;
        if (presage_predict(self, &words) != PRESAGE_OK)
                return NULL;
        return words;
}
#endif

/* ---- streams beside it --------------------------------------------------------------------- */

static void *stream(void *data)
{
        const char *address = data;
        SlmClient *c = NULL;
        SlmSession *s = NULL;
        SlmClientError err;

        if (slm_client_connect_address(address, &c, &err) < 0 ||
            slm_client_create_session(c, NULL, &s, &err) < 0) {
                fprintf(stderr, "keystrokes: %s\n", err.message);
                return NULL;
        }
        while (!atomic_load(&stop_streams)) {
                SlmGenerateOptions o;
                SlmFinish fin;
                slm_generate_options_init(&o);
                o.max_tokens = 200;
                o.temperature = 0;
                if (slm_session_reset(s, &err) < 0 ||
                    slm_session_generate(s, "Once upon a time", &o, NULL, NULL, &fin, &err) < 0)
                        break;
        }
        slm_session_free(s);
        slm_client_free(c);
        return NULL;
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
        if (argc < 3) {
                fprintf(stderr, "Usage: keystrokes ADDRESS TEXT_FILE [N_STREAMS] [--no-presage]\n");
                return 2;
        }
        int n_streams = argc > 3 ? atoi(argv[3]) : 0;
        int presage = !(argc > 4 && strcmp(argv[4], "--no-presage") == 0);
        FILE *f = fopen(argv[2], "r");
        char text[65536];
        size_t len = f ? fread(text, 1, sizeof(text) - 1, f) : 0;
        if (f)
                fclose(f);
        if (len == 0) {
                fprintf(stderr, "keystrokes: cannot read %s\n", argv[2]);
                return 1;
        }
        text[len] = 0;

        SlmClient *c = NULL;
        SlmSession *kb = NULL;
        SlmSessionOptions so = { NULL, "interactive", 0 };
        SlmClientError err;
        if (slm_client_connect_address(argv[1], &c, &err) < 0 ||
            slm_client_create_session(c, &so, &kb, &err) < 0) {
                fprintf(stderr, "keystrokes: %s\n", err.message);
                return 1;
        }
        pthread_t *t = calloc((size_t)(n_streams > 0 ? n_streams : 1), sizeof(pthread_t));
        for (int i = 0; i < n_streams; i++)
                pthread_create(&t[i], NULL, stream, argv[1]);

        Predictor slmd = { "slmd Suggest", slmd_predict, slm_strv_free, kb, NULL, 0, 0 };
        slmd.lat = malloc(1024 * sizeof(double));
        slmd.cap_lat = 1024;
        size_t chars = 0, keys = type_text(&slmd, text, &chars);
        atomic_store(&stop_streams, true);
        for (int i = 0; i < n_streams; i++)
                pthread_join(t[i], NULL);

        qsort(slmd.lat, slmd.n_lat, sizeof(double), cmp_double);
#define PCT(q) slmd.lat[(size_t)((double)(slmd.n_lat - 1) * (q))]
        printf("%-14s keystrokes %4zu of %4zu characters: %4.1f %% saved   Suggest beside %d "
               "streams: p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms (%zu calls)\n",
               slmd.name, keys, chars, 100.0 * (1.0 - (double)keys / (double)chars), n_streams,
               PCT(0.5), PCT(0.9), PCT(0.99), slmd.lat[slmd.n_lat - 1], slmd.n_lat);
#ifdef HAVE_PRESAGE
        if (presage) {
                presage_t prsg;
                if (presage_new(presage_past, NULL, presage_future, NULL, &prsg) != PRESAGE_OK) {
                        fprintf(stderr, "keystrokes: presage cannot start\n");
                        return 1;
                }
                presage_config_set(prsg, "Presage.Selector.SUGGESTIONS", "3");
                /* the same rules: whatever it ranks top 3 now, offered before or not */
                presage_config_set(prsg, "Presage.Selector.REPEAT_SUGGESTIONS", "yes");
                Predictor ps = {
                        "presage", presage_predict_words, presage_free_string_array, prsg, NULL, 0,
                        0
                };
                size_t pchars = 0, pkeys = type_text(&ps, text, &pchars);
                printf("%-14s keystrokes %4zu of %4zu characters: %4.1f %% saved\n", ps.name, pkeys,
                       pchars, 100.0 * (1.0 - (double)pkeys / (double)pchars));
                presage_free(prsg);
        }
#else
        (void)presage;
#endif
        free(slmd.lat);
        free(t);
        slm_session_free(kb);
        slm_client_free(c);
        return 0;
}
