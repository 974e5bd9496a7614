/* SPDX-License-Identifier: MIT */
/*
 * slm-template: render a chat template for a conversation, exactly as the
 * daemon prompts a model with it. CONVERSATION.json is an object with
 * "messages" (role, content, optional tool_calls and tool_call_id) and
 * optionally "tools", "add_generation_prompt" (default true), "bos_token"
 * and "eos_token" (default "<s>" and "</s>"); any other member is passed to
 * the template as a variable of that name (enable_thinking, ...).
 *
 * strftime_now() reads the clock, or SOURCE_DATE_EPOCH (in UTC) when set.
 * Exit status 1 when the template refuses the conversation: its message
 * goes to stderr as "TemplateError: MESSAGE"; 2 for other errors.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jinja.h"
#include "value.h"

#define MAX_FILE (16u << 20)

static int read_file(const char *path, char **ret, size_t *ret_len)
{
        FILE *f = fopen(path, "rb");
        char *buf = NULL;
        size_t n = 0, cap = 0;

        if (!f)
                return -errno;
        for (;;) {
                if (n == cap) {
                        cap = cap ? cap * 2 : 65536;
                        char *p = cap <= MAX_FILE ? realloc(buf, cap + 1) : NULL;
                        if (!p) {
                                free(buf);
                                fclose(f);
                                return cap > MAX_FILE ? -EFBIG : -ENOMEM;
                        }
                        buf = p;
                }
                size_t got = fread(buf + n, 1, cap - n, f);
                n += got;
                if (got == 0)
                        break;
        }
        int err = ferror(f) ? -EIO : 0;
        fclose(f);
        if (err) {
                free(buf);
                return err;
        }
        buf[n] = 0;
        *ret = buf;
        *ret_len = n;
        return 0;
}

static int set_default(SlmArena *a, SlmDict *vars, const char *name, SlmValue v)
{
        if (slm_dict_get_str(vars, name))
                return 0;
        return slm_dict_set(a, vars, slm_value_str_static(name, strlen(name)), v);
}

int main(int argc, char **argv)
{
        char *tsrc = NULL, *csrc = NULL, *out = NULL;
        size_t tlen, clen, olen;
        SlmJinja *t = NULL;
        SlmArena arena;
        SlmValue conv;
        SlmError err = { { 0 } };
        int r, status = 2;

        if (argc != 3 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
                fprintf(argc == 2 ? stdout : stderr,
                        "Usage: slm-template TEMPLATE.jinja CONVERSATION.json\n");
                return argc == 2 ? 0 : 2;
        }
        slm_arena_init(&arena, 256u << 20);
        if ((r = read_file(argv[1], &tsrc, &tlen)) < 0) {
                fprintf(stderr, "slm-template: %s: %s\n", argv[1], strerror(-r));
                goto out;
        }
        if ((r = read_file(argv[2], &csrc, &clen)) < 0) {
                fprintf(stderr, "slm-template: %s: %s\n", argv[2], strerror(-r));
                goto out;
        }
        if ((r = slm_jinja_parse(tsrc, tlen, &t, &err)) < 0) {
                fprintf(stderr, "slm-template: %s: %s\n", argv[1], err.msg);
                goto out;
        }
        if ((r = slm_json_parse(&arena, csrc, clen, &conv, &err)) < 0) {
                fprintf(stderr, "slm-template: %s: %s\n", argv[2], err.msg);
                goto out;
        }
        if (conv.type != SLM_VALUE_DICT || !slm_dict_get_str(conv.dict, "messages")) {
                fprintf(stderr, "slm-template: %s: expected an object with \"messages\"\n",
                        argv[2]);
                goto out;
        }
        if (set_default(&arena, conv.dict, "add_generation_prompt", slm_value_bool(true)) < 0 ||
            set_default(&arena, conv.dict, "bos_token", slm_value_str_static("<s>", 3)) < 0 ||
            set_default(&arena, conv.dict, "eos_token", slm_value_str_static("</s>", 4)) < 0) {
                fprintf(stderr, "slm-template: out of memory\n");
                goto out;
        }

        SlmJinjaOptions opts = { .now = time(NULL) };
        const char *epoch = getenv("SOURCE_DATE_EPOCH");
        if (epoch && *epoch) {
                char *end;
                errno = 0;
                opts.now = strtoll(epoch, &end, 10);
                opts.utc = true;
                if (errno || *end) {
                        fprintf(stderr, "slm-template: SOURCE_DATE_EPOCH is not a number\n");
                        goto out;
                }
        }
        r = slm_jinja_render(t, conv, &opts, &out, &olen, &err);
        if (r == -ECANCELED) {
                fprintf(stderr, "TemplateError: %s\n", err.msg);
                status = 1;
                goto out;
        }
        if (r < 0) {
                fprintf(stderr, "slm-template: %s: %s\n", argv[1], err.msg);
                goto out;
        }
        status = fwrite(out, 1, olen, stdout) == olen && fflush(stdout) == 0 ? 0 : 2;
out:
        free(out);
        slm_jinja_free(t);
        slm_arena_clear(&arena);
        free(tsrc);
        free(csrc);
        return status;
}
