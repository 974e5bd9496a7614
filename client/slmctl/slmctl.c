/* SPDX-License-Identifier: MIT */
/* slmctl: manage and use slmd from the command line (built on libslm). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>

#include "slmctl.h"

bool json;
volatile sig_atomic_t interrupted;
static SlmSession *running; /* the session a Ctrl-C cancels */

static void usage(FILE *f)
{
        fprintf(f, "Usage: slmctl [--system|--session|--address ADDR] [--json] COMMAND [ARGS]\n"
                   "\n"
                   "Commands:\n"
                   "  status                  the daemon, its model and backend\n"
                   "  list                    stored models\n"
                   "  import FILE [--name N] [--sha256 HEX]\n"
                   "                          copy a GGUF model into the store\n"
                   "  import --from-ollama NAME[:TAG] [--name N]\n"
                   "                          import a model from Ollama's store\n"
                   "  pull SOURCE [--name N]  download a model and import it; SOURCE is\n"
                   "                          hf:ORG/REPO:QUANT, hf:ORG/REPO/FILE.gguf,\n"
                   "                          ollama:NAME[:TAG] or an http(s) URL\n"
                   "  discover                GGUF files already on this machine (Ollama,\n"
                   "                          Hugging Face, llama.cpp, LM Studio)\n"
                   "  rm NAME [--force]       remove a stored model (--force: even if loaded)\n"
                   "  load [NAME]             make a model resident (default: the default one)\n"
                   "  unload                  free the resident model\n"
                   "  default NAME            set the default model\n"
                   "  run MODEL|--default PROMPT [-n N] [--temp T] [--seed S]\n"
                   "                          generate, streaming to the terminal\n"
                   "  chat [--system-prompt T] [--tools FILE]\n"
                   "                          talk to the model; Ctrl-C stops an answer\n"
                   "                          (run and chat: --json-schema FILE, --grammar FILE\n"
                   "                          shape the output as JSON or GBNF say)\n"
                   "  suggest TEXT [-n N]     next-word candidates\n"
                   "  replies MESSAGE [-n N]  short replies to a message\n");
}

/* ---- output -------------------------------------------------------------------------------- */

void json_string(const char *s)
{
        putchar('"');
        for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
                if (*p == '"' || *p == '\\')
                        printf("\\%c", *p);
                else if (*p == '\n')
                        printf("\\n");
                else if (*p == '\t')
                        printf("\\t");
                else if (*p < 0x20)
                        printf("\\u%04x", *p);
                else
                        putchar(*p);
        }
        putchar('"');
}

int fail(const SlmClientError *err)
{
        if (json) {
                printf("{\"error\":");
                json_string(slm_status_name(err->status));
                printf(",\"message\":");
                json_string(err->message);
                printf("}\n");
        } else {
                fprintf(stderr, "slmctl: %s\n", err->message);
        }
        return err->status == SLM_STATUS_PERMISSION_DENIED ? 4 : 1;
}

int fail_msg(const char *fmt, ...)
{
        SlmClientError err = { .status = SLM_STATUS_FAILED };
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(err.message, sizeof(err.message), fmt, ap);
        va_end(ap);
        return fail(&err);
}

void store_name_from(const char *s, char *out, size_t n)
{
        size_t len = 0;

        while (*s == '.')
                s++;
        for (; *s && len + 1 < n && len < 64; s++) {
                char ch = *s;
                bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                          (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
                out[len++] = ok ? ch : '-';
        }
        out[len] = 0;
        if (len == 0)
                snprintf(out, n, "model");
}

void human_size(uint64_t b, char *out, size_t n)
{
        const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
        double v = (double)b;
        int u = 0;

        while (v >= 1024 && u < 4) {
                v /= 1024;
                u++;
        }
        snprintf(out, n, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

/* ---- commands ------------------------------------------------------------------------------ */

static int cmd_status(SlmClient *c)
{
        SlmClientError err;
        SlmDaemonStatus st;

        if (slm_client_status(c, &st, &err) < 0)
                return fail(&err);
        if (json) {
                printf("{\"version\":");
                json_string(st.version);
                printf(",\"state\":");
                json_string(st.state);
                printf(",\"active_model\":");
                json_string(st.active_model);
                printf(",\"default_model\":");
                json_string(st.default_model);
                printf(",\"backend\":");
                json_string(st.backend);
                printf(",\"sessions\":%u,\"thermal\":", st.sessions);
                json_string(st.thermal);
                printf(",\"budget\":");
                json_string(st.budget_reason);
                printf(",\"threads\":%d,\"background_refused\":%s}\n", st.budget_threads,
                       st.background_refused ? "true" : "false");
        } else {
                printf("slmd %s, %s\n", st.version, st.state);
                printf("  model:    %s\n", *st.active_model ? st.active_model : "(none loaded)");
                printf("  default:  %s\n", *st.default_model ? st.default_model : "(none)");
                printf("  backend:  %s\n", st.backend);
                printf("  sessions: %u\n", st.sessions);
                printf("  budget:   %s (%d threads)\n", st.budget_reason, st.budget_threads);
        }
        slm_daemon_status_clear(&st);
        return 0;
}

static int cmd_list(SlmClient *c)
{
        SlmClientError err;
        SlmModelInfo *m;
        size_t n;

        if (slm_client_list_models(c, &m, &n, &err) < 0)
                return fail(&err);
        if (json) {
                printf("[");
                for (size_t i = 0; i < n; i++) {
                        printf("%s{\"name\":", i ? "," : "");
                        json_string(m[i].name);
                        printf(",\"architecture\":");
                        json_string(m[i].architecture);
                        printf(",\"quantization\":");
                        json_string(m[i].quantization);
                        printf(",\"size\":%llu,\"parameters\":%llu,\"sha256\":",
                               (unsigned long long)m[i].size, (unsigned long long)m[i].parameters);
                        json_string(m[i].sha256);
                        printf(",\"default\":%s,\"loaded\":%s}", m[i].is_default ? "true" : "false",
                               m[i].loaded ? "true" : "false");
                }
                printf("]\n");
        } else if (n == 0) {
                printf("No models. Add one with: slmctl import FILE.gguf\n");
        } else {
                printf("%-28s %-8s %-8s %10s %10s  %s\n", "NAME", "ARCH", "QUANT", "SIZE", "PARAMS",
                       "");
                for (size_t i = 0; i < n; i++) {
                        char size[32], params[32];
                        human_size(m[i].size, size, sizeof(size));
                        snprintf(params, sizeof(params), "%.1fM", m[i].parameters / 1e6);
                        printf("%-28s %-8s %-8s %10s %10s  %s%s\n", m[i].name, m[i].architecture,
                               m[i].quantization, size, params, m[i].is_default ? "default " : "",
                               m[i].loaded ? "loaded" : "");
                }
        }
        slm_model_info_free(m, n);
        return 0;
}

static void progress_bar(uint64_t done, uint64_t total, void *data)
{
        int width = 40, filled = total ? (int)(done * (uint64_t)width / total) : width;
        char a[32], b[32];

        (void)data;
        if (json || !isatty(STDERR_FILENO))
                return;
        human_size(done, a, sizeof(a));
        human_size(total, b, sizeof(b));
        fprintf(stderr, "\r[%.*s%*s] %s / %s ", filled, "########################################",
                width - filled, "", a, b);
}

int import_file(SlmClient *c, const char *path, const char *name, const char *sha256,
                const char *what, SlmStatus *ret_status)
{
        SlmClientError err;
        char *stored = NULL;
        int r =
            slm_client_import_verified(c, path, name, sha256, progress_bar, NULL, &stored, &err);

        if (!json && isatty(STDERR_FILENO))
                fprintf(stderr, "\n");
        if (ret_status)
                *ret_status = r < 0 ? err.status : SLM_STATUS_OK;
        if (r < 0)
                return fail(&err);
        if (json) {
                printf("{\"name\":");
                json_string(stored);
                if (sha256) {
                        printf(",\"sha256\":");
                        json_string(sha256);
                }
                printf("}\n");
        } else {
                printf("Imported %s as %s\n", what ? what : path, stored);
        }
        free(stored);
        return 0;
}

static int simple(int r, const SlmClientError *err, const char *done)
{
        if (r < 0)
                return fail(err);
        if (json)
                printf("{\"ok\":true}\n");
        else if (done)
                printf("%s\n", done);
        return 0;
}

static bool print_token(const char *text, void *data)
{
        (void)data;
        fputs(text, stdout);
        fflush(stdout);
        return true;
}

static void on_sigint(int sig)
{
        (void)sig;
        interrupted = 1;
        if (running)
                slm_session_request_cancel(running);
}

static int cmd_run(SlmClient *c, const char *model, const char *prompt, SlmGenerateOptions *o)
{
        SlmClientError err;
        SlmDaemonStatus st;
        SlmSession *s;
        SlmFinish fin;
        int r;

        if (model) {
                if (slm_client_status(c, &st, &err) < 0)
                        return fail(&err);
                bool loaded = strcmp(st.active_model, model) == 0;
                slm_daemon_status_clear(&st);
                if (!loaded && slm_client_load(c, model, &err) < 0)
                        return fail(&err);
        }
        if (slm_client_create_session(c, NULL, &s, &err) < 0)
                return fail(&err);
        running = s;
        r = slm_session_generate(s, prompt, o, json ? NULL : print_token, NULL, &fin, &err);
        running = NULL;
        if (r < 0) {
                slm_session_free(s);
                if (!json)
                        printf("\n");
                return fail(&err);
        }
        if (json) {
                printf("{\"reason\":");
                json_string(fin.reason);
                printf(",\"tokens\":%u,\"prompt_tokens\":%u,\"tokens_per_second\":%.2f}\n",
                       fin.tokens, fin.prompt_tokens, fin.tokens_per_second);
        } else {
                printf("\n");
                fprintf(stderr, "[%s: %u tokens, %.1f tokens/s]\n", fin.reason, fin.tokens,
                        fin.tokens_per_second);
        }
        slm_session_free(s);
        return strcmp(fin.reason, "error") == 0 ? 1 : 0;
}

/* Prints the answer and keeps it for the conversation. */
static bool print_and_keep(const char *text, void *data)
{
        g_string_append(data, text);
        return print_token(text, NULL);
}

/* The whole conversation goes each turn: the model's template writes it, the daemon reuses what
 * its context already holds. */
static int cmd_chat(SlmClient *c, const char *system, SlmGenerateOptions *o)
{
        g_autoptr(GPtrArray) texts = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GArray) msgs = g_array_new(FALSE, TRUE, sizeof(SlmMessage));
        SlmClientError err;
        SlmSession *s;
        char line[8192];

        if (slm_client_create_session(c, NULL, &s, &err) < 0)
                return fail(&err);
        if (isatty(STDIN_FILENO))
                printf("Chatting with slmd. Ctrl-C stops an answer, Ctrl-D ends.\n");
        if (system)
                g_array_append_val(msgs, ((SlmMessage){ "system", system, NULL, NULL }));
        for (;;) {
                SlmFinish fin;
                if (isatty(STDIN_FILENO)) {
                        printf("> ");
                        fflush(stdout);
                }
                if (!fgets(line, sizeof(line), stdin))
                        break;
                line[strcspn(line, "\n")] = 0;
                if (!*line)
                        continue;
                char *user = g_strdup(line);
                g_ptr_array_add(texts, user);
                g_array_append_val(msgs, ((SlmMessage){ "user", user, NULL, NULL }));
                GString *answer = g_string_new(NULL);
                running = s;
                int r = slm_session_chat_messages(s, (SlmMessage *)msgs->data, msgs->len, o,
                                                  print_and_keep, answer, &fin, &err);
                running = NULL;
                printf("\n");
                char *reply = g_string_free(answer, FALSE);
                g_ptr_array_add(texts, reply);
                if (r < 0) {
                        slm_session_free(s);
                        return fail(&err);
                }
                g_array_append_val(msgs, ((SlmMessage){ "assistant", reply, NULL, NULL }));
        }
        slm_session_free(s);
        return 0;
}

/* The text of @path for an option, or exit status 2. */
static int option_file(const char *opt, const char *path, char **ret)
{
        g_autoptr(GError) error = NULL;

        if (!g_file_get_contents(path, ret, NULL, &error)) {
                fprintf(stderr, "slmctl: %s: %s\n", opt, error->message);
                return -1;
        }
        return 0;
}

static int cmd_strv(SlmClient *c, bool suggest, const char *text, uint32_t n)
{
        SlmClientError err;
        SlmSessionOptions so = { NULL, suggest ? "interactive" : NULL, 0 };
        SlmSession *s;
        char **v;
        int r;

        if (slm_client_create_session(c, &so, &s, &err) < 0)
                return fail(&err);
        r = suggest ? slm_session_suggest(s, text, n, &v, &err)
                    : slm_session_smart_replies(s, text, n, &v, &err);
        slm_session_free(s);
        if (r < 0)
                return fail(&err);
        if (json)
                printf("[");
        for (size_t i = 0; v[i]; i++) {
                if (json) {
                        printf("%s", i ? "," : "");
                        json_string(v[i]);
                } else {
                        printf("%s\n", v[i]);
                }
        }
        if (json)
                printf("]\n");
        slm_strv_free(v);
        return 0;
}

/* ---- main ---------------------------------------------------------------------------------- */

static int parse_u32(const char *s, uint32_t *ret)
{
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || *end || end == s || v > UINT32_MAX || s[0] == '-')
                return -1;
        *ret = (uint32_t)v;
        return 0;
}

int main(int argc, char **argv)
{
        enum {
                OPT_SYSTEM = 256,
                OPT_SESSION,
                OPT_ADDRESS,
                OPT_JSON,
                OPT_NAME,
                OPT_FORCE,
                OPT_DEFAULT,
                OPT_TEMP,
                OPT_SEED,
                OPT_SYSPROMPT,
                OPT_SHA256,
                OPT_FROM_OLLAMA,
                OPT_JSON_SCHEMA,
                OPT_GRAMMAR,
                OPT_TOOLS
        };
        static const struct option opts[] = {
                { "system", no_argument, NULL, OPT_SYSTEM },
                { "session", no_argument, NULL, OPT_SESSION },
                { "address", required_argument, NULL, OPT_ADDRESS },
                { "json", no_argument, NULL, OPT_JSON },
                { "name", required_argument, NULL, OPT_NAME },
                { "force", no_argument, NULL, OPT_FORCE },
                { "default", no_argument, NULL, OPT_DEFAULT },
                { "temp", required_argument, NULL, OPT_TEMP },
                { "seed", required_argument, NULL, OPT_SEED },
                { "system-prompt", required_argument, NULL, OPT_SYSPROMPT },
                { "sha256", required_argument, NULL, OPT_SHA256 },
                { "from-ollama", no_argument, NULL, OPT_FROM_OLLAMA },
                { "json-schema", required_argument, NULL, OPT_JSON_SCHEMA },
                { "grammar", required_argument, NULL, OPT_GRAMMAR },
                { "tools", required_argument, NULL, OPT_TOOLS },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        SlmBusType bus = SLM_BUS_SYSTEM;
        const char *address = NULL, *name = NULL, *sysprompt = NULL, *sha256 = NULL;
        bool force = false, use_default = false, from_ollama = false;
        uint32_t n = 0;
        SlmGenerateOptions go;
        g_autofree char *schema = NULL, *grammar = NULL, *tools = NULL;
        SlmClientError err;
        SlmClient *c = NULL;
        int opt, r;

        slm_generate_options_init(&go);
        /* getopt permutes: options may come anywhere, the words end up at argv[optind..] */
        while ((opt = getopt_long(argc, argv, "n:h", opts, NULL)) != -1) {
                switch (opt) {
                case OPT_SYSTEM:
                        bus = SLM_BUS_SYSTEM;
                        address = NULL;
                        break;
                case OPT_SESSION:
                        bus = SLM_BUS_SESSION;
                        address = NULL;
                        break;
                case OPT_ADDRESS:
                        address = optarg;
                        break;
                case OPT_JSON:
                        json = true;
                        break;
                case OPT_NAME:
                        name = optarg;
                        break;
                case OPT_FORCE:
                        force = true;
                        break;
                case OPT_DEFAULT:
                        use_default = true;
                        break;
                case OPT_SYSPROMPT:
                        sysprompt = optarg;
                        break;
                case OPT_SHA256:
                        sha256 = optarg;
                        break;
                case OPT_FROM_OLLAMA:
                        from_ollama = true;
                        break;
                case OPT_JSON_SCHEMA:
                        g_clear_pointer(&schema, g_free);
                        if (option_file("--json-schema", optarg, &schema) < 0)
                                return 2;
                        go.json_schema = schema;
                        break;
                case OPT_GRAMMAR:
                        g_clear_pointer(&grammar, g_free);
                        if (option_file("--grammar", optarg, &grammar) < 0)
                                return 2;
                        go.grammar = grammar;
                        break;
                case OPT_TOOLS:
                        g_clear_pointer(&tools, g_free);
                        if (option_file("--tools", optarg, &tools) < 0)
                                return 2;
                        go.tools = tools;
                        break;
                case 'n':
                        if (parse_u32(optarg, &n) < 0) {
                                fprintf(stderr, "slmctl: invalid count '%s'\n", optarg);
                                return 2;
                        }
                        go.max_tokens = n;
                        break;
                case OPT_TEMP: {
                        char *end;
                        go.temperature = strtod(optarg, &end);
                        if (*end || end == optarg || go.temperature < 0) {
                                fprintf(stderr, "slmctl: invalid temperature '%s'\n", optarg);
                                return 2;
                        }
                        break;
                }
                case OPT_SEED: {
                        char *end;
                        go.seed = strtoull(optarg, &end, 10);
                        go.has_seed = true;
                        if (*end || end == optarg) {
                                fprintf(stderr, "slmctl: invalid seed '%s'\n", optarg);
                                return 2;
                        }
                        break;
                }
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        char **pos = argv + optind;
        int npos = argc - optind;
        if (npos == 0) {
                usage(stderr);
                return 2;
        }
        const char *cmd = pos[0];

        r = address ? slm_client_connect_address(address, &c, &err)
                    : slm_client_connect(bus, &c, &err);
        /* discover reads local files; without the daemon it cannot say what runs, but still lists
         */
        if (r < 0 && strcmp(cmd, "discover") != 0)
                return fail(&err);
        signal(SIGINT, on_sigint);

        if (strcmp(cmd, "status") == 0 && npos == 1)
                r = cmd_status(c);
        else if (strcmp(cmd, "list") == 0 && npos == 1)
                r = cmd_list(c);
        else if (strcmp(cmd, "import") == 0 && npos == 2 && from_ollama && !sha256)
                r = cmd_import_ollama(c, pos[1], name);
        else if (strcmp(cmd, "import") == 0 && npos == 2 && !from_ollama)
                r = import_file(c, pos[1], name, sha256, NULL, NULL);
        else if (strcmp(cmd, "pull") == 0 && npos == 2)
                r = cmd_pull(c, pos[1], name);
        else if (strcmp(cmd, "discover") == 0 && npos == 1)
                r = cmd_discover(c);
        else if (strcmp(cmd, "rm") == 0 && npos == 2)
                r = simple(slm_client_remove(c, pos[1], force, &err), &err, "Removed.");
        else if (strcmp(cmd, "load") == 0 && npos <= 2)
                r = simple(slm_client_load(c, npos == 2 ? pos[1] : NULL, &err), &err, "Loaded.");
        else if (strcmp(cmd, "unload") == 0 && npos == 1)
                r = simple(slm_client_unload(c, &err), &err, "Unloaded.");
        else if (strcmp(cmd, "default") == 0 && npos == 2)
                r = simple(slm_client_set_default(c, pos[1], &err), &err, NULL);
        else if (strcmp(cmd, "run") == 0 && npos == (use_default ? 2 : 3))
                r = cmd_run(c, use_default ? NULL : pos[1], pos[npos - 1], &go);
        else if (strcmp(cmd, "chat") == 0 && npos == 1)
                r = cmd_chat(c, sysprompt, &go);
        else if (strcmp(cmd, "suggest") == 0 && npos == 2)
                r = cmd_strv(c, true, pos[1], n ? n : 3);
        else if (strcmp(cmd, "replies") == 0 && npos == 2)
                r = cmd_strv(c, false, pos[1], n ? n : 3);
        else {
                usage(stderr);
                r = 2;
        }
        slm_client_free(c);
        return r;
}
