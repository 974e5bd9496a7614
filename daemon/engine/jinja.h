/* SPDX-License-Identifier: MIT */
/*
 * Jinja templates as chat templates use them: the subset of Jinja2 that
 * real models' tokenizer.chat_template strings are written in, set up as
 * Hugging Face transformers renders them (trim_blocks, lstrip_blocks, loop
 * controls, a tojson that keeps key order and non-ASCII text, and the
 * globals raise_exception and strftime_now).
 *
 * Templates and the data they render come from untrusted files and
 * clients: parsing bounds nesting, rendering bounds recursion, work,
 * memory and output, and every failure is a message, never a crash.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "value.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct SlmJinja SlmJinja;

/* Parse @len bytes of template source. -EINVAL with line and reason in @err. */
int slm_jinja_parse(const char *src, size_t len, SlmJinja **ret, SlmError *err);
SlmJinja *slm_jinja_free(SlmJinja *t);

typedef struct {
        size_t max_output;  /* bytes of rendered text; 0: 4 MiB */
        size_t max_memory;  /* bytes of values made while rendering; 0: 64 MiB */
        uint64_t max_steps; /* expressions and statements evaluated; 0: 10 million */
        int64_t now;        /* strftime_now's time, seconds since the epoch */
        bool utc;           /* strftime_now in UTC rather than local time */
} SlmJinjaOptions;

/*
 * Render @t with the variables of @vars (a dict; may be a none value). On
 * success *ret_text is malloc'ed and NUL-terminated, *ret_len its length.
 * Errors, each with its message in @err:
 *  -ECANCELED  the template called raise_exception(): @err holds its message
 *  -EINVAL     the template failed (an undefined value used, wrong types, ...)
 *  -E2BIG      a limit of @opts was reached
 *  -ENOMEM
 */
int slm_jinja_render(const SlmJinja *t, SlmValue vars, const SlmJinjaOptions *opts, char **ret_text,
                     size_t *ret_len, SlmError *err);

#ifdef __cplusplus
}
#endif
