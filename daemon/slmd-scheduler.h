/* SPDX-License-Identifier: MIT */
/*
 * The inference thread's scheduler: what the next step runs.
 *
 * Requests wait in one queue per priority class. A step is either one
 * request alone (control requests, model loads, suggestions and replies,
 * which run several evaluations of their own) or a batch: every runnable
 * text request (Append, Generate, Chat) of every open class, highest
 * class first, up to SLMD_STEP_MAX_SEQS, which the worker evaluates in one
 * forward pass. The highest class with runnable work decides which kind
 * of step comes next, so an interactive request waits at most one step.
 *
 * The budget closes classes (paused work waits, control requests and
 * cancellations still run) and paces them: a paced class joins a step at
 * most pace times a second. Without preemption a started request runs
 * alone to its end (for measuring what preemption is worth).
 *
 * Only the inference thread calls these; the budget is read under the
 * worker's lock.
 */
#pragma once

#include "slmd-worker.h"

G_BEGIN_DECLS

#define SLMD_STEP_MAX_SEQS 16

typedef struct {
        GQueue active[SLMD_PRIORITY_SYSTEM + 1];
        gint64 next_step[SLMD_PRIORITY_SYSTEM + 1]; /* pacing: when a class may step again */
        gboolean preempt;
        SlmdRequest *running; /* without preemption: started and not finished */
} SlmdScheduler;

typedef struct {
        SlmdRequest *reqs[SLMD_STEP_MAX_SEQS]; /* highest class first */
        guint n;
        gboolean batch; /* text requests evaluated together; else reqs[0] alone */
} SlmdStep;

/* Requests that evaluate the model, as opposed to control requests, which take no time. */
gboolean slmd_request_kind_is_work(SlmdRequestKind kind);

void slmd_scheduler_init(SlmdScheduler *s);
void slmd_scheduler_add(SlmdScheduler *s, SlmdRequest *req);
/*
 * The next step under @budget at @now (monotonic µs); FALSE when nothing
 * may run now, with *wake lowered to when paced work may.
 */
gboolean slmd_scheduler_next(SlmdScheduler *s, const SlmBudget *budget, gint64 now, SlmdStep *step,
                             gint64 *wake);
/*
 * After @step: requests done[i] leave their queues, the others go to the
 * back of theirs (round-robin within a class); @pace (tokens/s per class,
 * 0 for none) sets when each class that ran may run again.
 */
void slmd_scheduler_finish(SlmdScheduler *s, const SlmdStep *step, const gboolean *done,
                           const double *pace, gint64 now);
/* Whether a queued request works on @seq. */
gboolean slmd_scheduler_uses(SlmdScheduler *s, const SlmdSeq *seq);

G_END_DECLS
