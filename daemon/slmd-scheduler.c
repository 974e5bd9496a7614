/* SPDX-License-Identifier: MIT */
#include "slmd-scheduler.h"

gboolean slmd_request_kind_is_work(SlmdRequestKind kind)
{
        switch (kind) {
        case SLMD_REQ_APPEND:
        case SLMD_REQ_GENERATE:
        case SLMD_REQ_CHAT:
        case SLMD_REQ_SUGGEST:
        case SLMD_REQ_REPLIES:
                return TRUE;
        default:
                return FALSE;
        }
}

/* Text requests step together: a chunk of prompt or one token each per step. */
static gboolean batches(const SlmdRequest *r)
{
        return r->kind == SLMD_REQ_APPEND || r->kind == SLMD_REQ_GENERATE ||
               r->kind == SLMD_REQ_CHAT;
}

void slmd_scheduler_init(SlmdScheduler *s)
{
        for (int p = 0; p <= SLMD_PRIORITY_SYSTEM; p++) {
                g_queue_init(&s->active[p]);
                s->next_step[p] = 0;
        }
        s->preempt = TRUE;
        s->running = NULL;
}

void slmd_scheduler_add(SlmdScheduler *s, SlmdRequest *req)
{
        g_queue_push_tail(&s->active[req->priority], req);
}

static double class_pace(const SlmBudget *b, int p)
{
        return p == SLMD_PRIORITY_NORMAL       ? b->pace_tps
               : p == SLMD_PRIORITY_BACKGROUND ? b->background_pace_tps
                                               : 0.0;
}

/* Whether class @p's work may run now; *wake lowered to when its pacing lets it. */
static gboolean class_open(SlmdScheduler *s, const SlmBudget *b, int p, gint64 now, gint64 *wake)
{
        gboolean open = p == SLMD_PRIORITY_NORMAL       ? b->normal_allowed
                        : p == SLMD_PRIORITY_BACKGROUND ? b->background_allowed && b->normal_allowed
                                                        : TRUE;

        if (open && class_pace(b, p) > 0 && now < s->next_step[p]) {
                *wake = MIN(*wake, s->next_step[p]);
                return FALSE;
        }
        return open;
}

/* Work the budget lets run now; control requests and cancellations always may. */
static gboolean may_run(const SlmdRequest *r, gboolean open)
{
        return !slmd_request_kind_is_work(r->kind) || open || g_atomic_int_get(&r->cancelled);
}

static gboolean in_step(const SlmdStep *step, const SlmdSeq *seq)
{
        for (guint i = 0; i < step->n; i++)
                if (step->reqs[i]->seq == seq)
                        return TRUE;
        return FALSE;
}

gboolean slmd_scheduler_next(SlmdScheduler *s, const SlmBudget *budget, gint64 now, SlmdStep *step,
                             gint64 *wake)
{
        gboolean open[SLMD_PRIORITY_SYSTEM + 1];
        SlmdRequest *first = NULL;

        step->n = 0;
        step->batch = FALSE;
        if (!s->preempt && s->running) {
                step->reqs[step->n++] = s->running; /* no preemption: it runs to its end */
                return TRUE;
        }
        for (int p = SLMD_PRIORITY_SYSTEM; p >= 0; p--)
                open[p] = class_open(s, budget, p, now, wake);
        for (int p = SLMD_PRIORITY_SYSTEM; p >= 0 && !first; p--)
                for (GList *l = s->active[p].head; l && !first; l = l->next)
                        if (may_run(l->data, open[p]))
                                first = l->data;
        if (!first)
                return FALSE;
        step->reqs[step->n++] = first;
        if (!batches(first) || !s->preempt)
                return TRUE;
        /* every other runnable text request joins, highest class first, one per session */
        step->batch = TRUE;
        for (int p = SLMD_PRIORITY_SYSTEM; p >= 0; p--)
                for (GList *l = s->active[p].head; l && step->n < SLMD_STEP_MAX_SEQS; l = l->next) {
                        SlmdRequest *r = l->data;
                        if (r != first && batches(r) && may_run(r, open[p]) &&
                            !in_step(step, r->seq))
                                step->reqs[step->n++] = r;
                }
        return TRUE;
}

void slmd_scheduler_finish(SlmdScheduler *s, const SlmdStep *step, const gboolean *done,
                           const double *pace, gint64 now)
{
        gboolean ran[SLMD_PRIORITY_SYSTEM + 1] = { FALSE };

        for (guint i = 0; i < step->n; i++) {
                SlmdRequest *r = step->reqs[i];
                GQueue *q = &s->active[r->priority];
                ran[r->priority] = TRUE;
                g_queue_remove(q, r);
                if (!done[i])
                        g_queue_push_tail(q, r);
        }
        /* without preemption a request that did not finish goes on in the next step */
        if (!s->preempt)
                s->running = done[0] ? NULL : step->reqs[0];
        for (int p = 0; p <= SLMD_PRIORITY_SYSTEM; p++)
                if (ran[p] && pace[p] > 0)
                        s->next_step[p] = now + (gint64)(G_USEC_PER_SEC / pace[p]);
}

gboolean slmd_scheduler_uses(SlmdScheduler *s, const SlmdSeq *seq)
{
        for (int p = 0; p <= SLMD_PRIORITY_SYSTEM; p++)
                for (GList *l = s->active[p].head; l; l = l->next)
                        if (((SlmdRequest *)l->data)->seq == seq)
                                return TRUE;
        return FALSE;
}
