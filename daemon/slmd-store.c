/* SPDX-License-Identifier: MIT */
#include "slmd-store.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "model.h"
#include "slmd-error.h"

struct SlmdStore {
        char *dir;       /* STATE/models */
        char *state_dir; /* STATE */
        GPtrArray *models;
        char *default_name;
};

struct SlmdStaged {
        char *tmp_path;
        SlmdModelInfo info; /* name and path are filled in at commit */
};

static void info_clear(SlmdModelInfo *i)
{
        g_free(i->name);
        g_free(i->path);
        g_free(i->architecture);
        g_free(i->quantization);
        g_free(i->sha256);
        memset(i, 0, sizeof(*i));
}

static void info_free(gpointer p)
{
        info_clear(p);
        g_free(p);
}

gboolean slmd_model_name_is_valid(const char *name)
{
        size_t n = name ? strlen(name) : 0;

        if (n == 0 || n > 64 || name[0] == '.')
                return FALSE;
        for (size_t i = 0; i < n; i++)
                if (!g_ascii_isalnum(name[i]) && name[i] != '.' && name[i] != '_' && name[i] != '-')
                        return FALSE;
        return TRUE;
}

static int cmp_info(gconstpointer a, gconstpointer b)
{
        const SlmdModelInfo *x = *(SlmdModelInfo *const *)a, *y = *(SlmdModelInfo *const *)b;
        return strcmp(x->name, y->name);
}

/* ---- the record file ----------------------------------------------------------------------- */

static SlmdModelInfo *load_record(SlmdStore *store, const char *name)
{
        g_autofree char *ini = g_strdup_printf("%s/%s.ini", store->dir, name);
        g_autofree char *gguf = g_strdup_printf("%s/%s.gguf", store->dir, name);
        g_autoptr(GKeyFile) kf = g_key_file_new();
        SlmdModelInfo *i;

        if (!g_key_file_load_from_file(kf, ini, G_KEY_FILE_NONE, NULL) ||
            !g_file_test(gguf, G_FILE_TEST_IS_REGULAR))
                return NULL;
        i = g_new0(SlmdModelInfo, 1);
        i->name = g_strdup(name);
        i->path = g_steal_pointer(&gguf);
        i->architecture = g_key_file_get_string(kf, "model", "architecture", NULL);
        i->quantization = g_key_file_get_string(kf, "model", "quantization", NULL);
        i->sha256 = g_key_file_get_string(kf, "model", "sha256", NULL);
        i->size = g_key_file_get_uint64(kf, "model", "size", NULL);
        i->parameters = g_key_file_get_uint64(kf, "model", "parameters", NULL);
        if (!i->architecture || !i->quantization || !i->sha256) {
                info_free(i);
                return NULL;
        }
        return i;
}

static gboolean write_record(SlmdStore *store, const SlmdModelInfo *i, GError **error)
{
        g_autofree char *ini = g_strdup_printf("%s/%s.ini", store->dir, i->name);
        g_autoptr(GKeyFile) kf = g_key_file_new();
        g_autofree char *data = NULL;
        gsize len;

        g_key_file_set_string(kf, "model", "architecture", i->architecture);
        g_key_file_set_string(kf, "model", "quantization", i->quantization);
        g_key_file_set_string(kf, "model", "sha256", i->sha256);
        g_key_file_set_uint64(kf, "model", "size", i->size);
        g_key_file_set_uint64(kf, "model", "parameters", i->parameters);
        data = g_key_file_to_data(kf, &len, NULL);
        /* written to a temporary file, fsync'ed and renamed: all or nothing */
        return g_file_set_contents_full(
            ini, data, (gssize)len, G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE,
            0644, error);
}

static void sync_dir(const char *dir)
{
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0) {
                (void)fsync(fd);
                close(fd);
        }
}

/* ---- opening ------------------------------------------------------------------------------- */

SlmdStore *slmd_store_new(const char *state_dir, GError **error)
{
        g_autoptr(SlmdStore) store = g_new0(SlmdStore, 1);
        g_autoptr(GDir) d = NULL;
        g_autofree char *def_path = NULL, *def = NULL;
        const char *entry;

        store->state_dir = g_strdup(state_dir);
        store->dir = g_build_filename(state_dir, "models", NULL);
        store->models = g_ptr_array_new_with_free_func(info_free);
        if (g_mkdir_with_parents(store->dir, 0755) < 0) {
                g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "cannot create %s: %s",
                            store->dir, g_strerror(errno));
                return NULL;
        }
        d = g_dir_open(store->dir, 0, error);
        if (!d)
                return NULL;
        while ((entry = g_dir_read_name(d))) {
                g_autofree char *path = g_build_filename(store->dir, entry, NULL);
                if (g_str_has_prefix(entry, ".import-")) {
                        /* an import that never finished */
                        g_unlink(path);
                } else if (g_str_has_suffix(entry, ".gguf")) {
                        g_autofree char *name = g_strndup(entry, strlen(entry) - 5);
                        SlmdModelInfo *i = load_record(store, name);
                        if (i)
                                g_ptr_array_add(store->models, i);
                        else
                                g_unlink(path); /* renamed into place but never recorded */
                }
        }
        g_ptr_array_sort(store->models, cmp_info);

        def_path = g_build_filename(state_dir, "default", NULL);
        if (g_file_get_contents(def_path, &def, NULL, NULL)) {
                g_strstrip(def);
                if (slmd_store_get(store, def))
                        store->default_name = g_steal_pointer(&def);
        }
        if (!store->default_name && store->models->len > 0)
                store->default_name = g_strdup(((SlmdModelInfo *)store->models->pdata[0])->name);
        return g_steal_pointer(&store);
}

void slmd_store_free(SlmdStore *store)
{
        if (!store)
                return;
        if (store->models)
                g_ptr_array_unref(store->models);
        g_free(store->dir);
        g_free(store->state_dir);
        g_free(store->default_name);
        g_free(store);
}

GPtrArray *slmd_store_list(SlmdStore *store)
{
        return store->models;
}

const SlmdModelInfo *slmd_store_get(SlmdStore *store, const char *name)
{
        for (guint i = 0; name && i < store->models->len; i++) {
                const SlmdModelInfo *m = store->models->pdata[i];
                if (strcmp(m->name, name) == 0)
                        return m;
        }
        return NULL;
}

const char *slmd_store_get_default(SlmdStore *store)
{
        return store->default_name;
}

gboolean slmd_store_set_default(SlmdStore *store, const char *name, GError **error)
{
        g_autofree char *path = g_build_filename(store->state_dir, "default", NULL);

        if (name && !slmd_store_get(store, name)) {
                g_set_error(error, SLMD_ERROR, SLMD_ERROR_NOT_FOUND, "no model named '%s'", name);
                return FALSE;
        }
        if (!g_file_set_contents_full(path, name ? name : "", -1,
                                      G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE,
                                      0644, error))
                return FALSE;
        g_free(store->default_name);
        store->default_name = g_strdup(name);
        return TRUE;
}

gboolean slmd_store_remove(SlmdStore *store, const char *name, GError **error)
{
        const SlmdModelInfo *m = slmd_store_get(store, name);
        g_autofree char *ini = NULL;

        if (!m) {
                g_set_error(error, SLMD_ERROR, SLMD_ERROR_NOT_FOUND, "no model named '%s'", name);
                return FALSE;
        }
        ini = g_strdup_printf("%s/%s.ini", store->dir, name);
        /* the record goes first: without it the model no longer exists */
        if (g_unlink(ini) < 0 && errno != ENOENT) {
                g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "cannot remove %s: %s",
                            ini, g_strerror(errno));
                return FALSE;
        }
        g_unlink(m->path);
        sync_dir(store->dir);
        gboolean was_default = g_strcmp0(store->default_name, name) == 0;
        g_ptr_array_remove(store->models, (gpointer)m);
        if (was_default)
                return slmd_store_set_default(
                    store,
                    store->models->len ? ((SlmdModelInfo *)store->models->pdata[0])->name : NULL,
                    error);
        return TRUE;
}

/* ---- importing ----------------------------------------------------------------------------- */

void slmd_staged_free(SlmdStaged *s)
{
        if (!s)
                return;
        if (s->tmp_path)
                g_unlink(s->tmp_path);
        g_free(s->tmp_path);
        info_clear(&s->info);
        g_free(s);
}

static const char *file_type_name(uint32_t ft)
{
        switch (ft) {
        case 0:
                return "F32";
        case 1:
                return "F16";
        case 2:
                return "Q4_0";
        case 3:
                return "Q4_1";
        case 7:
                return "Q8_0";
        case 8:
                return "Q5_0";
        case 9:
                return "Q5_1";
        case 14:
                return "Q4_K_S";
        case 15:
                return "Q4_K_M";
        case 16:
                return "Q5_K_S";
        case 17:
                return "Q5_K_M";
        case 18:
                return "Q6_K";
        case 32:
                return "BF16";
        default:
                return NULL;
        }
}

/* Fill the record's model fields from a loaded model. */
static void describe(const SlmModel *m, SlmdModelInfo *info)
{
        const SlmGguf *g = slm_model_gguf(m);
        guint64 by_type[SLM_TYPE_COUNT] = { 0 };
        uint32_t ft;
        int best = 0;

        info->architecture = g_strdup(slm_arch_name(slm_model_hparams(m)->arch));
        for (uint64_t i = 0; i < g->n_tensors; i++) {
                info->parameters += g->tensors[i].n_elements;
                if (g->tensors[i].n_dims >= 2)
                        by_type[g->tensors[i].type] += g->tensors[i].n_bytes;
        }
        for (int t = 0; t < SLM_TYPE_COUNT; t++)
                if (by_type[t] > by_type[best])
                        best = t;
        if (slm_gguf_get_u32(g, "general.file_type", &ft) == 0 && file_type_name(ft))
                info->quantization = g_strdup(file_type_name(ft));
        else
                info->quantization = g_strdup(slm_type_name((uint32_t)best));
}

/* A store name from the file's general.name: invalid characters become '-'. */
static char *name_from_file(const SlmModel *m)
{
        SlmGgufStr s;
        GString *out = g_string_new(NULL);

        if (slm_gguf_get_str(slm_model_gguf(m), "general.name", &s) == 0)
                for (uint64_t i = 0; i < s.len && out->len < 64; i++) {
                        char c = s.ptr[i];
                        g_string_append_c(
                            out, g_ascii_isalnum(c) || c == '.' || c == '_' || c == '-' ? c : '-');
                }
        while (out->len && out->str[0] == '.')
                g_string_erase(out, 0, 1);
        if (out->len == 0)
                g_string_assign(out, "model");
        return g_string_free(out, FALSE);
}

SlmdStaged *slmd_store_stage(SlmdStore *store, int fd, const char *name, const char *sha256,
                             guint64 max_bytes, GCancellable *cancellable, GError **error)
{
        g_autoptr(SlmdStaged) s = g_new0(SlmdStaged, 1);
        g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
        g_autofree guint8 *buf = g_malloc(1 << 20);
        SlmModel *model = NULL;
        SlmError err = { { 0 } };
        guint64 total = 0;
        int out, r;

        if (name && *name && !slmd_model_name_is_valid(name)) {
                g_set_error(error, SLMD_ERROR, SLMD_ERROR_INVALID_ARGUMENT,
                            "invalid model name '%s': use 1 to 64 of A-Z a-z 0-9 . _ -", name);
                return NULL;
        }
        s->tmp_path = g_build_filename(store->dir, ".import-XXXXXX", NULL);
        out = g_mkstemp_full(s->tmp_path, O_RDWR | O_CLOEXEC, 0644);
        if (out < 0) {
                g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                            "cannot create a staging file: %s", g_strerror(errno));
                g_clear_pointer(&s->tmp_path, g_free);
                return NULL;
        }
        for (;;) {
                ssize_t n = read(fd, buf, 1 << 20);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        g_set_error(error, SLMD_ERROR, SLMD_ERROR_INVALID_ARGUMENT,
                                    "cannot read the model: %s", g_strerror(errno));
                        goto fail;
                }
                if (n == 0)
                        break;
                if (g_cancellable_set_error_if_cancelled(cancellable, error))
                        goto fail;
                total += (guint64)n;
                if (total > max_bytes) {
                        g_set_error(error, SLMD_ERROR, SLMD_ERROR_INVALID_MODEL,
                                    "the model is larger than the %" G_GUINT64_FORMAT
                                    " bytes allowed",
                                    max_bytes);
                        goto fail;
                }
                g_checksum_update(sum, buf, (gsize)n);
                for (ssize_t off = 0; off < n;) {
                        ssize_t w = write(out, buf + off, (size_t)(n - off));
                        if (w < 0 && errno == EINTR)
                                continue;
                        if (w < 0) {
                                g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                                            "cannot write the model: %s", g_strerror(errno));
                                goto fail;
                        }
                        off += w;
                }
        }
        if (sha256 && strcmp(sha256, g_checksum_get_string(sum)) != 0) {
                g_set_error(error, SLMD_ERROR, SLMD_ERROR_INVALID_MODEL,
                            "the file's SHA-256 is %s, not the expected %s",
                            g_checksum_get_string(sum), sha256);
                goto fail;
        }
        if (fsync(out) < 0) {
                g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "fsync: %s",
                            g_strerror(errno));
                goto fail;
        }

        /* the whole engine-side validation: header, tensors, hyperparameters, tokenizer */
        r = slm_model_load(s->tmp_path, &model, &err);
        if (r < 0) {
                g_set_error(error, SLMD_ERROR, SLMD_ERROR_INVALID_MODEL, "not a usable model: %s",
                            err.msg);
                goto fail;
        }
        close(out);
        describe(model, &s->info);
        s->info.size = total;
        s->info.sha256 = g_strdup(g_checksum_get_string(sum));
        s->info.name = name && *name ? g_strdup(name) : name_from_file(model);
        slm_model_free(model);
        return g_steal_pointer(&s);
fail:
        close(out);
        return NULL;
}

const SlmdModelInfo *slmd_store_commit(SlmdStore *store, SlmdStaged *s, GError **error)
{
        SlmdModelInfo *i;
        g_autofree char *path = NULL;

        if (slmd_store_get(store, s->info.name)) {
                g_set_error(error, SLMD_ERROR, SLMD_ERROR_FAILED,
                            "a model named '%s' exists; remove it first", s->info.name);
                return NULL;
        }
        path = g_strdup_printf("%s/%s.gguf", store->dir, s->info.name);
        if (g_rename(s->tmp_path, path) < 0) {
                g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "cannot store %s: %s",
                            path, g_strerror(errno));
                return NULL;
        }
        g_clear_pointer(&s->tmp_path, g_free);
        i = g_new0(SlmdModelInfo, 1);
        *i = s->info;
        memset(&s->info, 0, sizeof(s->info));
        i->path = g_steal_pointer(&path);
        if (!write_record(store, i, error)) {
                g_unlink(i->path);
                info_free(i);
                return NULL;
        }
        sync_dir(store->dir);
        g_ptr_array_add(store->models, i);
        g_ptr_array_sort(store->models, cmp_info);
        if (!store->default_name && !slmd_store_set_default(store, i->name, error))
                return NULL;
        return i;
}
