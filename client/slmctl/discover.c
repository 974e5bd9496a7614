/* SPDX-License-Identifier: MIT */
/*
 * slmctl discover: GGUF files other programs already downloaded, so a user
 * imports them instead of downloading them again. Looks in Ollama's store,
 * the Hugging Face hub cache, llama.cpp's cache and LM Studio's folders,
 * reads each file's header and asks the daemon whether it runs it.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <glib.h>

#include "slmctl.h"

#define MAX_DEPTH 6 /* folders below a root */
#define MAX_FILES 10000

typedef struct {
        const char *where; /* ollama, huggingface, llama.cpp, lm-studio */
        char *label;       /* what the user knows it as */
        char *path;
        char *import; /* the command that imports it */
} Found;

static void found_free(gpointer p)
{
        Found *f = p;
        g_free(f->label);
        g_free(f->path);
        g_free(f->import);
        g_free(f);
}

typedef struct {
        GPtrArray *found;
        GHashTable *seen; /* real paths already listed */
} Scan;

static void add(Scan *s, const char *where, const char *label, const char *path, const char *import)
{
        g_autofree char *real = realpath(path, NULL);
        Found *f;

        if (!real || g_hash_table_contains(s->seen, real) || s->found->len >= MAX_FILES)
                return;
        g_hash_table_add(s->seen, g_strdup(real));
        f = g_new0(Found, 1);
        f->where = where;
        f->label = g_strdup(label);
        f->path = g_strdup(path);
        f->import = g_strdup(import);
        g_ptr_array_add(s->found, f);
}

static bool is_gguf_name(const char *name)
{
        size_t n = strlen(name);
        return n > 5 && g_ascii_strcasecmp(name + n - 5, ".gguf") == 0;
}

/* Every *.gguf below @dir (files through symlinks, folders only when real). */
static void walk(Scan *s, const char *root, const char *dir, int depth, const char *where)
{
        DIR *d = opendir(dir);
        struct dirent *e;

        if (!d)
                return;
        while ((e = readdir(d))) {
                g_autofree char *path = NULL;
                struct stat st, lst;
                if (e->d_name[0] == '.')
                        continue;
                path = g_build_filename(dir, e->d_name, NULL);
                if (lstat(path, &lst) < 0 || stat(path, &st) < 0)
                        continue;
                if (S_ISDIR(lst.st_mode) && depth < MAX_DEPTH) {
                        walk(s, root, path, depth + 1, where);
                } else if (S_ISREG(st.st_mode) && is_gguf_name(e->d_name)) {
                        g_autofree char *q = g_shell_quote(path);
                        g_autofree char *cmd = g_strdup_printf("slmctl import %s", q);
                        const char *label = path + strlen(root) + (path[strlen(root)] == '/');
                        g_autofree char *hf = NULL;
                        /* the hub cache: models--ORG--REPO/snapshots/REV/FILE */
                        if (strcmp(where, "huggingface") == 0) {
                                g_auto(GStrv) parts = g_strsplit(label, "/", 4);
                                g_auto(GStrv) names =
                                    parts[0] ? g_strsplit(parts[0], "--", 3) : NULL;
                                if (g_strv_length(parts) == 4 && names &&
                                    g_strv_length(names) == 3 && strcmp(names[0], "models") == 0)
                                        label = hf = g_strdup_printf("%s/%s/%s", names[1], names[2],
                                                                     parts[3]);
                        }
                        add(s, where, label, path, cmd);
                }
        }
        closedir(d);
}

/* Ollama: manifests/registry.ollama.ai/NS/NAME/TAG, each naming its model blob. */
static void walk_ollama(Scan *s, const char *store)
{
        g_autofree char *top = g_build_filename(store, "manifests", "registry.ollama.ai", NULL);
        g_autoptr(GDir) nsd = g_dir_open(top, 0, NULL);
        const char *ns;

        while (nsd && (ns = g_dir_read_name(nsd))) {
                g_autofree char *nsp = g_build_filename(top, ns, NULL);
                g_autoptr(GDir) named = g_dir_open(nsp, 0, NULL);
                const char *name;
                while (named && (name = g_dir_read_name(named))) {
                        g_autofree char *np = g_build_filename(nsp, name, NULL);
                        g_autoptr(GDir) tagd = g_dir_open(np, 0, NULL);
                        const char *tag;
                        while (tagd && (tag = g_dir_read_name(tagd))) {
                                g_autofree char *mp = g_build_filename(np, tag, NULL), *text = NULL;
                                g_autofree char *label = NULL, *blob = NULL, *cmd = NULL;
                                char hex[65], why[256];
                                uint64_t size;
                                gsize len;
                                if (!g_file_get_contents(mp, &text, &len, NULL) ||
                                    ollama_model_layer(text, len, hex, &size, why, sizeof(why)) < 0)
                                        continue;
                                label = strcmp(ns, "library") == 0
                                            ? g_strdup_printf("%s:%s", name, tag)
                                            : g_strdup_printf("%s/%s:%s", ns, name, tag);
                                blob = g_strdup_printf("%s/blobs/sha256-%s", store, hex);
                                cmd = g_strdup_printf("slmctl import --from-ollama %s", label);
                                add(s, "ollama", label, blob, cmd);
                        }
                }
        }
}

static const char *env_or(const char *env, const char *sub, char *buf, size_t n)
{
        const char *v = g_getenv(env);

        if (v && *v)
                snprintf(buf, n, "%s", v);
        else
                snprintf(buf, n, "%s/%s", g_get_home_dir(), sub);
        return buf;
}

static bool in_list(char **list, const char *s)
{
        for (size_t i = 0; list && list[i]; i++)
                if (strcmp(list[i], s) == 0)
                        return true;
        return false;
}

/* Whether the daemon runs @g: "yes", or "no: why"; "?" without a daemon to ask. */
static void verdict(const GgufFacts *g, char **archs, char **types, char *out, size_t n)
{
        if (g->problem) {
                snprintf(out, n, "no: %s", g->problem);
                return;
        }
        if (g->split_count > 1) {
                snprintf(out, n, "no: split into %lld files (join them with llama-gguf-split)",
                         (long long)g->split_count);
                return;
        }
        if (!archs) {
                snprintf(out, n, "?");
                return;
        }
        if (!in_list(archs, g->architecture)) {
                snprintf(out, n, "no: architecture %s", *g->architecture ? g->architecture : "?");
                return;
        }
        for (uint32_t t = 0; t < GGUF_MAX_TYPES; t++)
                if (g->has_type[t] && !in_list(types, gguf_type_name(t))) {
                        snprintf(out, n, "no: tensors of type %s", gguf_type_name(t));
                        return;
                }
        snprintf(out, n, "yes");
}

int cmd_discover(SlmClient *c)
{
        g_autoptr(GPtrArray) found = g_ptr_array_new_with_free_func(found_free);
        g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        Scan s = { found, seen };
        char **archs = NULL, **types = NULL, buf[4096];
        SlmClientError err;
        bool asked = c && slm_client_capabilities(c, &archs, &types, &err) == 0;

        walk_ollama(&s, ollama_store_dir());
        {
                const char *hub = g_getenv("HF_HUB_CACHE"), *home = g_getenv("HF_HOME");
                g_autofree char *dir =
                    hub && *hub ? g_strdup(hub)
                    : home && *home
                        ? g_build_filename(home, "hub", NULL)
                        : g_build_filename(g_get_home_dir(), ".cache", "huggingface", "hub", NULL);
                walk(&s, dir, dir, 0, "huggingface");
        }
        env_or("LLAMA_CACHE", ".cache/llama.cpp", buf, sizeof(buf));
        walk(&s, buf, buf, 0, "llama.cpp");
        for (int i = 0; i < 2; i++) {
                g_autofree char *dir = g_build_filename(
                    g_get_home_dir(), i ? ".cache/lm-studio/models" : ".lmstudio/models", NULL);
                walk(&s, dir, dir, 0, "lm-studio");
        }

        if (json)
                printf("[");
        else if (found->len == 0)
                printf("No GGUF files found in Ollama's store, the Hugging Face cache, llama.cpp's "
                       "cache or LM Studio's folders.\n");
        else
                printf("%-12s %-40s %-8s %-8s %10s  %s\n", "FROM", "MODEL", "ARCH", "QUANT", "SIZE",
                       "RUNS");
        for (guint i = 0; i < found->len; i++) {
                Found *f = found->pdata[i];
                GgufFacts g;
                char size[32], runs[160];
                if (gguf_scan(f->path, &g) < 0) {
                        memset(&g, 0, sizeof(g));
                        g.problem = "cannot be read";
                }
                verdict(&g, asked ? archs : NULL, types, runs, sizeof(runs));
                human_size(g.size, size, sizeof(size));
                if (json) {
                        printf("%s{\"from\":", i ? "," : "");
                        json_string(f->where);
                        printf(",\"model\":");
                        json_string(f->label);
                        printf(",\"path\":");
                        json_string(f->path);
                        printf(",\"architecture\":");
                        json_string(g.architecture);
                        printf(",\"quantization\":");
                        json_string(g.problem ? "" : gguf_quantization(&g));
                        printf(",\"size\":%llu,\"runs\":%s", (unsigned long long)g.size,
                               !asked && strcmp(runs, "?") == 0 ? "null"
                               : strcmp(runs, "yes") == 0       ? "true"
                                                                : "false");
                        printf(",\"why_not\":");
                        json_string(strncmp(runs, "no: ", 4) == 0 ? runs + 4 : "");
                        printf(",\"import\":");
                        json_string(f->import);
                        printf("}");
                } else {
                        printf("%-12s %-40s %-8s %-8s %10s  %s\n", f->where, f->label,
                               *g.architecture ? g.architecture : "?",
                               g.problem ? "?" : gguf_quantization(&g), size, runs);
                        printf("%-12s %s\n", "", f->import);
                }
        }
        if (json)
                printf("]\n");
        else if (found->len && !asked)
                printf("(slmd is not reachable: whether it runs each file is not known)\n");
        slm_strv_free(archs);
        slm_strv_free(types);
        return 0;
}
