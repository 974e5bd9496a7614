/* SPDX-License-Identifier: MIT */
/*
 * Ollama's formats: model names, manifests (the same JSON in the registry
 * and in the local store) and the local store's layout:
 *   manifests/registry.ollama.ai/NS/NAME/TAG   the manifest
 *   blobs/sha256-HEX                           each layer, named by its digest
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#include "slmctl.h"

#define MODEL_LAYER "application/vnd.ollama.image.model"

static bool name_char(char c)
{
        return g_ascii_isalnum(c) || c == '.' || c == '_' || c == '-';
}

int ollama_parse_name(const char *spec, char *repo, size_t repo_len, char *tag, size_t tag_len)
{
        const char *colon = strrchr(spec, ':'), *slash = strchr(spec, '/');
        size_t name_len = colon ? (size_t)(colon - spec) : strlen(spec);
        const char *t = colon ? colon + 1 : "latest";

        if (name_len == 0 || name_len > 128 || !*t || strlen(t) > 128)
                return -1;
        /* at most one slash, between a namespace and a name; no dots alone or leading */
        if (slash && (slash >= spec + name_len || slash == spec || slash + 1 == spec + name_len ||
                      memchr(slash + 1, '/', name_len - (size_t)(slash + 1 - spec))))
                return -1;
        for (size_t i = 0; i < name_len; i++)
                if (!(name_char(spec[i]) || spec + i == slash) ||
                    (spec[i] == '.' && (i == 0 || spec[i - 1] == '/')))
                        return -1;
        for (const char *p = t; *p; p++)
                if (!name_char(*p) || (p == t && *p == '.'))
                        return -1;
        snprintf(repo, repo_len, "%s%.*s", slash ? "" : "library/", (int)name_len, spec);
        snprintf(tag, tag_len, "%s", t);
        return 0;
}

int ollama_model_layer(const char *manifest, size_t len, char *hex, uint64_t *ret_size, char *why,
                       size_t why_len)
{
        g_autoptr(JsonParser) parser = json_parser_new();
        g_autoptr(GError) error = NULL;
        JsonNode *root;
        JsonArray *layers;

        if (!json_parser_load_from_data(parser, manifest, (gssize)len, &error)) {
                snprintf(why, why_len, "the manifest is not JSON: %s", error->message);
                return -1;
        }
        root = json_parser_get_root(parser);
        if (!root || !JSON_NODE_HOLDS_OBJECT(root) ||
            !json_object_has_member(json_node_get_object(root), "layers") ||
            !JSON_NODE_HOLDS_ARRAY(json_object_get_member(json_node_get_object(root), "layers"))) {
                snprintf(why, why_len, "the manifest has no layers");
                return -1;
        }
        layers = json_object_get_array_member(json_node_get_object(root), "layers");
        for (guint i = 0; i < json_array_get_length(layers); i++) {
                JsonNode *n = json_array_get_element(layers, i);
                JsonObject *l = JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
                const char *type =
                    l ? json_object_get_string_member_with_default(l, "mediaType", "") : "";
                const char *digest;
                gint64 size;
                if (strcmp(type, MODEL_LAYER) != 0)
                        continue;
                digest = json_object_get_string_member_with_default(l, "digest", "");
                size = json_object_get_int_member_with_default(l, "size", -1);
                if (strncmp(digest, "sha256:", 7) != 0 || strlen(digest + 7) != 64 ||
                    strspn(digest + 7, "0123456789abcdef") != 64) {
                        snprintf(why, why_len, "the model layer's digest '%.80s' is not a SHA-256",
                                 digest);
                        return -1;
                }
                if (size < 0) {
                        snprintf(why, why_len, "the model layer has no size");
                        return -1;
                }
                memcpy(hex, digest + 7, 65);
                *ret_size = (uint64_t)size;
                return 0;
        }
        snprintf(why, why_len, "the manifest has no model layer (%s)", MODEL_LAYER);
        return -1;
}

const char *ollama_store_dir(void)
{
        static char dir[4096];
        const char *env = g_getenv("OLLAMA_MODELS");
        g_autofree char *home = g_build_filename(g_get_home_dir(), ".ollama", "models", NULL);

        if (env && *env)
                snprintf(dir, sizeof(dir), "%s", env);
        else if (g_file_test(home, G_FILE_TEST_IS_DIR))
                snprintf(dir, sizeof(dir), "%s", home);
        else
                snprintf(dir, sizeof(dir), "/usr/share/ollama/.ollama/models");
        return dir;
}

int cmd_import_ollama(SlmClient *c, const char *spec, const char *name)
{
        char repo[160], tag[160], hex[65], why[256], stored[80];
        g_autofree char *manifest = NULL, *text = NULL, *blob = NULL, *what = NULL;
        g_autoptr(GError) error = NULL;
        const char *dir = ollama_store_dir();
        uint64_t size;
        gsize len;

        if (ollama_parse_name(spec, repo, sizeof(repo), tag, sizeof(tag)) < 0)
                return fail_msg("'%s' is not an Ollama model name (NAME or NAME:TAG)", spec);
        manifest = g_build_filename(dir, "manifests", "registry.ollama.ai", repo, tag, NULL);
        if (!g_file_get_contents(manifest, &text, &len, &error))
                return fail_msg("not found: no Ollama model %s:%s in %s (%s)", spec, tag, dir,
                                error->message);
        if (ollama_model_layer(text, len, hex, &size, why, sizeof(why)) < 0)
                return fail_msg("%s: %s", manifest, why);
        blob = g_strdup_printf("%s/blobs/sha256-%s", dir, hex);
        if (!name) {
                g_autofree char *base = g_strdup_printf("%s-%s", strrchr(repo, '/') + 1, tag);
                store_name_from(base, stored, sizeof(stored));
                name = stored;
        }
        what = g_strdup_printf("%s:%s from Ollama's store",
                               g_str_has_prefix(repo, "library/") ? repo + 8 : repo, tag);
        return import_file(c, blob, name, hex, what, NULL);
}
