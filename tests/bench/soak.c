/* SPDX-License-Identifier: MIT */
/*
 * Soak: mixed clients against one slmd for a while, as a shared system
 * service sees them. Streamers generate (a quarter cancel mid-stream,
 * some append, some reset), a keyboard types and
 * asks Suggest after every key, a messenger asks SmartReplies, and child
 * processes (slmctl) are killed mid-stream. At the end: requests served
 * and errors by kind per method, p50/p99 latency per method, and the
 * daemon's RSS and descriptors at the start and the end.
 *
 * Usage: soak ADDRESS SLMD_PID SLMCTL SECONDS [STREAMERS]
 * Exit status 0 when slmd is alive at the end and served every kind.
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../proc-status.h"
#include "slm-client.h"

enum {
        M_CREATE,
        M_GENERATE,
        M_FIRST_TOKEN,
        M_SUGGEST,
        M_REPLIES,
        M_APPEND,
        M_RESET,
        M_KILLED,
        N_M
};

static const char *const method_names[N_M] = {
        "CreateSession", "Generate", "first token", "Suggest",
        "SmartReplies",  "Append",   "Reset",       "slmctl run (killed)",
};

#define N_STATUS 16 /* -SlmStatus */

typedef struct {
        pthread_mutex_t lock;
        double *ms;
        size_t n, cap;
        unsigned long errors[N_STATUS];
} Method;

static Method methods[N_M];
static atomic_bool stopping;
static const char *address;

static double now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* A served request of @m that took @ms; or an error when @status < 0. */
static void record(int m, double ms, int status)
{
        Method *x = &methods[m];

        pthread_mutex_lock(&x->lock);
        if (status < 0) {
                x->errors[-status < N_STATUS ? -status : N_STATUS - 1]++;
        } else {
                if (x->n == x->cap) {
                        x->cap = x->cap ? 2 * x->cap : 1024;
                        x->ms = realloc(x->ms, x->cap * sizeof(double));
                        if (!x->ms)
                                abort();
                }
                x->ms[x->n++] = ms;
        }
        pthread_mutex_unlock(&x->lock);
}

static unsigned rnd(unsigned *seed, unsigned n)
{
        return (unsigned)rand_r(seed) % n;
}

static void sleep_ms(unsigned ms)
{
        struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

        nanosleep(&ts, NULL);
}

static SlmClient *connect_or_wait(void)
{
        SlmClient *c = NULL;

        while (!atomic_load(&stopping) && slm_client_connect_address(address, &c, NULL) < 0)
                sleep_ms(100);
        return c;
}

static SlmSession *session(SlmClient *c, const char *priority)
{
        SlmSessionOptions so = { NULL, priority, 0 };
        SlmSession *s = NULL;
        SlmClientError err;
        double t = now_ms();
        int r = slm_client_create_session(c, &so, &s, &err);

        record(M_CREATE, now_ms() - t, r);
        return r < 0 ? NULL : s;
}

typedef struct {
        double start, first;
        int tokens, cancel_after;
} Stream;

static bool on_token(const char *text, void *data)
{
        Stream *st = data;

        (void)text;
        if (st->tokens++ == 0)
                st->first = now_ms();
        return !atomic_load(&stopping) && (st->cancel_after < 0 || st->tokens < st->cancel_after);
}

static const char *const prompts[] = { "Once upon a time", "The little dog", "Lily went to the",
                                       "One day, a boy named Tom", "" };

/* Generations of every length, a quarter cancelled mid-stream; appends and resets between. */
static void *streamer(void *data)
{
        unsigned seed = (unsigned)(uintptr_t)data;

        while (!atomic_load(&stopping)) {
                SlmClient *c = connect_or_wait();
                SlmSession *s = c ? session(c, rnd(&seed, 4) ? "normal" : "background") : NULL;
                for (int k = 0; s && k < 5 && !atomic_load(&stopping); k++) {
                        SlmGenerateOptions o;
                        SlmFinish fin;
                        SlmClientError err;
                        Stream st = { now_ms(), 0, 0,
                                      rnd(&seed, 4) ? -1 : 1 + (int)rnd(&seed, 40) };
                        slm_generate_options_init(&o);
                        o.max_tokens = 8 + rnd(&seed, 200);
                        o.temperature = rnd(&seed, 2) ? 0.0 : 0.8;
                        o.seed = seed;
                        int r = slm_session_generate(s, prompts[rnd(&seed, 5)], &o, on_token, &st,
                                                     &fin, &err);
                        record(M_GENERATE, now_ms() - st.start, r);
                        if (r == 0 && st.tokens > 0)
                                record(M_FIRST_TOKEN, st.first - st.start, 0);
                        if (rnd(&seed, 4) == 0) {
                                double t = now_ms();
                                r = slm_session_append(s, rnd(&seed, 2) ? "" : " The end.", &err);
                                record(M_APPEND, now_ms() - t, r);
                        }
                        if (rnd(&seed, 8) == 0) {
                                double t = now_ms();
                                r = slm_session_reset(s, &err);
                                record(M_RESET, now_ms() - t, r);
                        }
                }
                /* the killer's clients are the ones that leave without closing */
                slm_session_free(s);
                slm_client_free(c);
        }
        return NULL;
}

/* A keyboard: a story typed key by key, Suggest after each key, a pause now and then. */
static void *keyboard(void *data)
{
        static const char story[] = "Once upon a time, there was a little girl named Lily. She "
                                    "loved to play outside in the park with her dog. One day, she "
                                    "saw a big red ball under a tree and ran to get it.";
        unsigned seed = (unsigned)(uintptr_t)data;

        while (!atomic_load(&stopping)) {
                SlmClient *c = connect_or_wait();
                SlmSession *s = c ? session(c, "interactive") : NULL;
                char typed[sizeof(story)];
                for (size_t i = 1; s && i < sizeof(story) && !atomic_load(&stopping); i++) {
                        char **words = NULL;
                        SlmClientError err;
                        memcpy(typed, story, i);
                        typed[i] = 0;
                        double t = now_ms();
                        int r = slm_session_suggest(s, typed, 3, &words, &err);
                        record(M_SUGGEST, now_ms() - t, r);
                        if (r == 0)
                                slm_strv_free(words);
                        sleep_ms(40 + rnd(&seed, 80)); /* typing speed */
                }
                slm_session_free(s);
                slm_client_free(c);
        }
        return NULL;
}

static void *messenger(void *data)
{
        static const char *const msgs[] = { "Are you coming to the park today?", "Thank you!",
                                            "Where is the dog?", "Can we play together?" };
        unsigned seed = (unsigned)(uintptr_t)data;
        SlmClient *c = connect_or_wait();
        SlmSession *s = c ? session(c, "normal") : NULL;

        while (s && !atomic_load(&stopping)) {
                char **replies = NULL;
                SlmClientError err;
                double t = now_ms();
                int r = slm_session_smart_replies(s, msgs[rnd(&seed, 4)], 3, &replies, &err);
                record(M_REPLIES, now_ms() - t, r);
                if (r == 0)
                        slm_strv_free(replies);
                sleep_ms(200 + rnd(&seed, 600));
        }
        slm_session_free(s);
        slm_client_free(c);
        return NULL;
}

/* slmctl runs killed mid-stream: clients that vanish with no goodbye. */
static void *killer(void *data)
{
        const char *slmctl = data;
        unsigned seed = 7;

        while (!atomic_load(&stopping)) {
                double t = now_ms();
                pid_t pid = fork();
                if (pid == 0) {
                        int fd = open("/dev/null", O_WRONLY);
                        dup2(fd, 1);
                        dup2(fd, 2);
                        execl(slmctl, slmctl, "--address", address, "run", "--default",
                              "Once upon a time", "-n", "400", (char *)NULL);
                        _exit(127);
                }
                sleep_ms(50 + rnd(&seed, 400));
                kill(pid, SIGKILL);
                int st;
                waitpid(pid, &st, 0);
                record(M_KILLED, now_ms() - t, 0);
                sleep_ms(100 + rnd(&seed, 400));
        }
        return NULL;
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;

        return x < y ? -1 : x > y;
}

static double pct(const Method *m, double p)
{
        if (!m->n)
                return 0;
        size_t i = (size_t)(p / 100.0 * (double)(m->n - 1) + 0.5);
        return m->ms[i];
}

int main(int argc, char **argv)
{
        if (argc < 5) {
                fprintf(stderr, "usage: soak ADDRESS SLMD_PID SLMCTL SECONDS [STREAMERS]\n");
                return 2;
        }
        address = argv[1];
        pid_t pid = (pid_t)atoi(argv[2]);
        double seconds = atof(argv[4]);
        int n_streamers = argc > 5 ? atoi(argv[5]) : 3;
        pthread_t th[16];
        int n = 0;

        if (n_streamers < 1 || n_streamers > 12 || seconds <= 0) {
                fprintf(stderr, "soak: 1 to 12 streamers, a positive duration\n");
                return 2;
        }
        signal(SIGPIPE, SIG_IGN);
        for (int i = 0; i < N_M; i++)
                pthread_mutex_init(&methods[i].lock, NULL);

        /* one of each request first: the start is a daemon in use */
        SlmClient *c = connect_or_wait();
        SlmSession *s = c ? session(c, "normal") : NULL;
        char **w = NULL;
        if (!s || slm_session_suggest(s, "Once upon a", 3, &w, NULL) < 0) {
                fprintf(stderr, "soak: slmd does not serve\n");
                return 1;
        }
        slm_strv_free(w);
        slm_session_free(s);
        slm_client_free(c);
        memset(methods[M_CREATE].errors, 0, sizeof(methods[M_CREATE].errors));
        methods[M_CREATE].n = 0;
        unsigned long rss0 = proc_status_value(pid, "VmRSS:");
        unsigned fd0 = proc_fd_count(pid);

        for (int i = 0; i < n_streamers; i++)
                pthread_create(&th[n++], NULL, streamer, (void *)(uintptr_t)(i + 1));
        pthread_create(&th[n++], NULL, keyboard, (void *)(uintptr_t)100);
        pthread_create(&th[n++], NULL, messenger, (void *)(uintptr_t)200);
        pthread_create(&th[n++], NULL, killer, argv[3]);

        double t0 = now_ms(), next = t0 + 60000;
        while (now_ms() - t0 < seconds * 1000 && kill(pid, 0) == 0) {
                sleep_ms(200);
                if (now_ms() >= next) {
                        printf("soak: %.0f s, RSS %lu kB\n", (now_ms() - t0) / 1000,
                               proc_status_value(pid, "VmRSS:"));
                        fflush(stdout);
                        next += 60000;
                }
        }
        atomic_store(&stopping, true);
        for (int i = 0; i < n; i++)
                pthread_join(th[i], NULL);
        bool alive = kill(pid, 0) == 0;
        sleep_ms(2000); /* sessions of the last vanished clients go */
        unsigned long rss1 = proc_status_value(pid, "VmRSS:");
        unsigned fd1 = proc_fd_count(pid);

        printf("soak: %.0f s, %d streamers, a keyboard, a messenger, slmctl runs killed\n",
               (now_ms() - t0) / 1000, n_streamers);
        printf("%-20s %8s %9s %9s  %s\n", "method", "served", "p50 ms", "p99 ms", "errors");
        bool all_served = true;
        for (int m = 0; m < N_M; m++) {
                Method *x = &methods[m];
                char errs[512] = "";
                qsort(x->ms, x->n, sizeof(double), cmp_double);
                for (int e = 1; e < N_STATUS; e++)
                        if (x->errors[e]) {
                                size_t l = strlen(errs);
                                snprintf(errs + l, sizeof(errs) - l, "%s%s %lu", l ? ", " : "",
                                         slm_status_name((SlmStatus)-e), x->errors[e]);
                        }
                printf("%-20s %8zu %9.1f %9.1f  %s\n", method_names[m], x->n, pct(x, 50),
                       pct(x, 99), *errs ? errs : "none");
                if (m != M_RESET && m != M_APPEND && x->n == 0)
                        all_served = false;
                free(x->ms);
        }
        printf("RSS %lu kB -> %lu kB (%+.1f %%), descriptors %u -> %u, slmd %s\n", rss0, rss1,
               rss0 ? 100.0 * ((double)rss1 - (double)rss0) / (double)rss0 : 0.0, fd0, fd1,
               alive ? "alive (0 crashes)" : "GONE");
        return alive && all_served ? 0 : 1;
}
