/* SPDX-License-Identifier: MIT */
/*
 * slmctl pull: find a GGUF file on a model hub, an Ollama registry or a
 * plain URL, download it as the calling user into $XDG_CACHE_HOME/slm/
 * downloads/ (resumable), check its SHA-256 and import it. The daemon,
 * which has no network, receives the finished file through ImportModel
 * and checks the digest again.
 *
 * In the download folder a transfer is KEY.gguf.part with KEY.json beside
 * it (source, URL, size, digest); KEY is the expected SHA-256, or a hash
 * of the URL when none is known. A later pull of the same file sends a
 * Range request for the rest.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "slmctl.h"

#define DEFAULT_HUB      "https://huggingface.co"
#define DEFAULT_REGISTRY "https://registry.ollama.ai"
#define MAX_SMALL_BODY   (16u << 20) /* API answers and manifests */
#define MAX_ATTEMPTS     3           /* in a row without progress */

/* ---- HTTP ---------------------------------------------------------------------------------- */

typedef struct {
        long status;   /* of the last response */
        GString *body; /* small bodies only; NULL to discard */
        char location[2048];
        char linked_etag[80];
        uint64_t linked_size;
        char etag[80];
        int64_t content_length; /* -1: not announced */
        int64_t range_start;    /* of Content-Range, -1: none */
        bool too_big;
} Response;

static void header_value(const char *line, size_t n, char *out, size_t cap)
{
        const char *colon = memchr(line, ':', n);
        size_t len;

        if (!colon)
                return;
        colon++;
        while (colon < line + n && (*colon == ' ' || *colon == '\t'))
                colon++;
        len = (size_t)(line + n - colon);
        while (len && (colon[len - 1] == '\r' || colon[len - 1] == '\n' || colon[len - 1] == ' '))
                len--;
        if (len >= cap)
                len = cap - 1;
        memcpy(out, colon, len);
        out[len] = 0;
}

static bool header_is(const char *line, size_t n, const char *name)
{
        size_t k = strlen(name);
        return n > k && line[k] == ':' && g_ascii_strncasecmp(line, name, k) == 0;
}

static size_t on_header(char *line, size_t size, size_t count, void *data)
{
        Response *r = data;
        size_t n = size * count;
        char v[2048];

        if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
                /* a new response (after a redirect): forget the last one's headers */
                const char *sp = memchr(line, ' ', n);
                r->status = sp ? strtol(sp + 1, NULL, 10) : 0;
                r->location[0] = r->linked_etag[0] = r->etag[0] = 0;
                r->linked_size = 0;
                r->content_length = r->range_start = -1;
        } else if (header_is(line, n, "location")) {
                header_value(line, n, r->location, sizeof(r->location));
        } else if (header_is(line, n, "x-linked-etag")) {
                header_value(line, n, r->linked_etag, sizeof(r->linked_etag));
        } else if (header_is(line, n, "etag")) {
                header_value(line, n, r->etag, sizeof(r->etag));
        } else if (header_is(line, n, "x-linked-size")) {
                header_value(line, n, v, sizeof(v));
                r->linked_size = g_ascii_strtoull(v, NULL, 10);
        } else if (header_is(line, n, "content-length")) {
                header_value(line, n, v, sizeof(v));
                r->content_length = (int64_t)g_ascii_strtoull(v, NULL, 10);
        } else if (header_is(line, n, "content-range")) {
                /* "bytes START-END/TOTAL" */
                header_value(line, n, v, sizeof(v));
                if (g_ascii_strncasecmp(v, "bytes ", 6) == 0 && g_ascii_isdigit(v[6]))
                        r->range_start = (int64_t)g_ascii_strtoull(v + 6, NULL, 10);
        }
        return n;
}

static size_t on_small_body(char *data, size_t size, size_t count, void *user)
{
        Response *r = user;
        size_t n = size * count;

        if (!r->body)
                return n;
        if (r->body->len + n > MAX_SMALL_BODY) {
                r->too_big = true;
                return 0;
        }
        g_string_append_len(r->body, data, (gssize)n);
        return n;
}

/* Whether @url is on the hub itself (not merely a host whose name begins like it). */
static const char *endpoint(const char *env, const char *def, char *buf, size_t n);

static bool hub_url(const char *url)
{
        char hub[1024];
        size_t n = strlen(endpoint("HF_ENDPOINT", DEFAULT_HUB, hub, sizeof(hub)));

        return strncmp(url, hub, n) == 0 && (url[n] == '/' || url[n] == 0);
}

/* A handle with what every request here needs; @headers collects the list to free. */
static CURL *new_handle(const char *url, const char *accept, struct curl_slist **headers,
                        Response *r, char *errbuf)
{
        CURL *h = curl_easy_init();
        const char *token = g_getenv("HF_TOKEN");

        if (!h)
                return NULL;
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(h, CURLOPT_USERAGENT, "slmctl/" PACKAGE_VERSION);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
        /* a connection that moves less than 1 KiB/s for a minute is dead */
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1024L);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
        curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        if (accept) {
                g_autofree char *a = g_strdup_printf("Accept: %s", accept);
                *headers = curl_slist_append(*headers, a);
        }
        /* curl sends this to the hub only, never to the host a redirect leads to */
        if (token && *token && hub_url(url)) {
                g_autofree char *a = g_strdup_printf("Authorization: Bearer %s", token);
                *headers = curl_slist_append(*headers, a);
        }
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, *headers);
        errbuf[0] = 0;
        r->status = 0;
        r->content_length = r->range_start = -1;
        return h;
}

/*
 * A request for a small answer (an API reply, a manifest, a HEAD): status
 * and headers into @r, the body into r->body when it is set. 0, or -1 with
 * a message printed.
 */
static int http_small(const char *url, const char *accept, bool head, bool follow, Response *r)
{
        struct curl_slist *headers = NULL;
        char errbuf[CURL_ERROR_SIZE];
        CURL *h = new_handle(url, accept, &headers, r, errbuf);
        CURLcode rc;

        if (!h)
                return -fail_msg("cannot start an HTTP request");
        curl_easy_setopt(h, CURLOPT_NOBODY, head ? 1L : 0L);
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, follow ? 1L : 0L);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_small_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
        curl_easy_setopt(h, CURLOPT_TIMEOUT, 120L);
        rc = curl_easy_perform(h);
        if (rc == CURLE_OK && !follow && r->location[0]) {
                char *abs = NULL;
                /* the absolute form of a relative Location */
                if (curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &abs) == CURLE_OK && abs)
                        snprintf(r->location, sizeof(r->location), "%s", abs);
        }
        curl_easy_cleanup(h);
        curl_slist_free_all(headers);
        if (r->too_big)
                return -fail_msg("%s: the answer is larger than %u MiB", url, MAX_SMALL_BODY >> 20);
        if (rc != CURLE_OK)
                return -fail_msg("%s: %s", url, errbuf[0] ? errbuf : curl_easy_strerror(rc));
        return 0;
}

/* The answer's JSON root, or NULL with a message printed. */
static JsonNode *parse_json(const GString *body, const char *url, JsonParser *parser)
{
        g_autoptr(GError) error = NULL;

        if (!json_parser_load_from_data(parser, body->str, (gssize)body->len, &error)) {
                fail_msg("%s: the answer is not JSON: %s", url, error->message);
                return NULL;
        }
        return json_parser_get_root(parser);
}

/* ---- what to download ---------------------------------------------------------------------- */

typedef struct {
        char *source;    /* as given, for messages */
        char *url;       /* what to GET */
        char sha256[65]; /* expected, or "" */
        uint64_t size;   /* announced, 0 when unknown */
        char name[80];   /* the store name it gets by default */
} Target;

static void target_clear(Target *t)
{
        g_free(t->source);
        g_free(t->url);
}

static const char *endpoint(const char *env, const char *def, char *buf, size_t n)
{
        const char *v = g_getenv(env);
        size_t len;

        snprintf(buf, n, "%s", v && *v ? v : def);
        len = strlen(buf);
        while (len && buf[len - 1] == '/')
                buf[--len] = 0;
        return buf;
}

/* A hub ETag holds the SHA-256 of a file stored with LFS: 64 hex digits, maybe quoted. */
static void etag_sha256(const char *etag, char *out)
{
        const char *p = etag;
        size_t n;

        if (g_str_has_prefix(p, "W/"))
                p += 2;
        if (*p == '"')
                p++;
        n = strspn(p, "0123456789abcdefABCDEF");
        if (n == 64 && (p[64] == 0 || p[64] == '"')) {
                for (int i = 0; i < 64; i++)
                        out[i] = g_ascii_tolower(p[i]);
                out[64] = 0;
        }
}

static bool repo_part_ok(const char *s, size_t n)
{
        if (n == 0 || n > 96 || s[0] == '.')
                return false;
        for (size_t i = 0; i < n; i++)
                if (!(g_ascii_isalnum(s[i]) || s[i] == '.' || s[i] == '_' || s[i] == '-'))
                        return false;
        return !g_strstr_len(s, (gssize)n, "..");
}

/* "-00001-of-00003.gguf": one part of a split model. */
static bool is_split(const char *file)
{
        const char *of = strstr(file, "-of-");
        int a = 0, b = 0, end = 0;

        return of && of - file >= 6 && sscanf(of - 6, "-%5d-of-%5d.gguf%n", &a, &b, &end) == 2 &&
               of[-6] == '-' && (of - 6)[end] == 0 && b > 1;
}

/* Whether @file's name carries @quant as a whole word (case-insensitive). */
static bool has_quant(const char *file, const char *quant)
{
        const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
        g_autofree char *b = g_ascii_strdown(base, -1), *q = g_ascii_strdown(quant, -1);
        size_t qn = strlen(q);

        for (const char *p = strstr(b, q); p; p = strstr(p + 1, q)) {
                bool before = p == b || strchr("-._", p[-1]);
                bool after = p[qn] == 0 || p[qn] == '-' || p[qn] == '.';
                if (before && after)
                        return true;
        }
        return false;
}

static bool ends_with_gguf(const char *s)
{
        size_t n = strlen(s);
        return n > 5 && g_ascii_strcasecmp(s + n - 5, ".gguf") == 0;
}

/* The repository's file for @quant, from the hub's model API: 0 and *ret_path, or -1. */
static int hub_find_quant(const char *hub, const char *org, const char *repo, const char *quant,
                          char **ret_path)
{
        g_autofree char *url = g_strdup_printf("%s/api/models/%s/%s", hub, org, repo);
        g_autoptr(JsonParser) parser = json_parser_new();
        g_autoptr(GPtrArray) whole = g_ptr_array_new(), split = g_ptr_array_new();
        g_autoptr(GString) all = g_string_new(NULL);
        Response r = { .body = g_string_new(NULL) };
        JsonNode *root;
        JsonArray *sib;
        int ret = -1;

        if (http_small(url, "application/json", false, true, &r) < 0)
                goto out;
        if (r.status == 404 || r.status == 401) {
                /* the hub answers 401 for a repository that does not exist, as for a private one */
                fail_msg("not found: no repository %s/%s on %s%s", org, repo, hub,
                         r.status == 401 ? " (or it is private: set HF_TOKEN)" : "");
                goto out;
        }
        if (r.status != 200) {
                fail_msg("%s: HTTP %ld", url, r.status);
                goto out;
        }
        if (!(root = parse_json(r.body, url, parser)))
                goto out;
        if (!JSON_NODE_HOLDS_OBJECT(root) ||
            !json_object_has_member(json_node_get_object(root), "siblings") ||
            !JSON_NODE_HOLDS_ARRAY(
                json_object_get_member(json_node_get_object(root), "siblings"))) {
                fail_msg("%s: the answer lists no files (no \"siblings\")", url);
                goto out;
        }
        sib = json_object_get_array_member(json_node_get_object(root), "siblings");
        for (guint i = 0; i < json_array_get_length(sib); i++) {
                JsonNode *n = json_array_get_element(sib, i);
                const char *f = JSON_NODE_HOLDS_OBJECT(n)
                                    ? json_object_get_string_member_with_default(
                                          json_node_get_object(n), "rfilename", NULL)
                                    : NULL;
                if (!f || !ends_with_gguf(f) || strstr(f, "mmproj"))
                        continue;
                if (all->len < 400)
                        g_string_append_printf(all, "%s%s", all->len ? ", " : "", f);
                if (has_quant(f, quant))
                        g_ptr_array_add(is_split(f) ? split : whole, (gpointer)f);
        }
        if (whole->len == 1) {
                *ret_path = g_strdup(whole->pdata[0]);
                ret = 0;
        } else if (whole->len > 1) {
                g_autoptr(GString) list = g_string_new(NULL);
                for (guint i = 0; i < whole->len; i++)
                        g_string_append_printf(list, "%s%s", i ? ", " : "",
                                               (const char *)whole->pdata[i]);
                fail_msg("%s/%s has %u GGUF files of quantization %s (%s): name one with "
                         "hf:%s/%s/FILE",
                         org, repo, whole->len, quant, list->str, org, repo);
        } else if (split->len) {
                fail_msg("%s/%s has %s only as a split model (%s, ...): slmd takes one file; join "
                         "the parts with llama-gguf-split --merge and import the result",
                         org, repo, quant, (const char *)split->pdata[0]);
        } else {
                fail_msg("not found: %s/%s has no GGUF file of quantization %s%s%s", org, repo,
                         quant, all->len ? "; it has: " : " (it has no GGUF files)", all->str);
        }
out:
        g_string_free(r.body, TRUE);
        return ret;
}

/* The download URL, digest and size of a hub file, from HEAD on its resolve address. */
static int hub_resolve(const char *hub, const char *org, const char *repo, const char *path,
                       Target *t)
{
        g_auto(GStrv) parts = g_strsplit(path, "/", -1);
        g_autoptr(GString) esc = g_string_new(NULL);
        g_autofree char *url = NULL, *next = NULL;

        for (int i = 0; parts[i]; i++) {
                g_autofree char *e = g_uri_escape_string(parts[i], NULL, FALSE);
                g_string_append_printf(esc, "%s%s", i ? "/" : "", e);
        }
        url = g_strdup_printf("%s/%s/%s/resolve/main/%s", hub, org, repo, esc->str);
        next = g_strdup(url);
        for (int hops = 0; hops < 5; hops++) {
                Response r = { 0 };
                if (http_small(next, NULL, true, false, &r) < 0)
                        return -1;
                if (r.status == 404 || r.status == 401)
                        return -fail_msg("not found: %s/%s has no file %s on %s", org, repo, path,
                                         hub);
                if (r.status == 403)
                        return -fail_msg("%s: access denied (a gated repository: accept its terms "
                                         "and set HF_TOKEN)",
                                         next);
                if (r.status >= 300 && r.status < 400 && r.location[0]) {
                        if (r.linked_etag[0]) {
                                /* an LFS file: the digest and size of the file, not the redirect */
                                etag_sha256(r.linked_etag, t->sha256);
                                t->size = r.linked_size;
                                break;
                        }
                        g_free(next);
                        next = g_strdup(r.location);
                        continue;
                }
                if (r.status != 200)
                        return -fail_msg("%s: HTTP %ld", next, r.status);
                etag_sha256(r.linked_etag[0] ? r.linked_etag : r.etag, t->sha256);
                t->size = r.linked_size ? r.linked_size
                                        : (r.content_length > 0 ? (uint64_t)r.content_length : 0);
                break;
        }
        t->url = g_steal_pointer(&url);
        return 0;
}

static int resolve_hf(const char *spec, Target *t)
{
        char hub[1024];
        const char *slash = strchr(spec, '/'), *rest, *colon, *rslash;
        g_autofree char *org = NULL, *repo = NULL, *path = NULL, *base = NULL;

        endpoint("HF_ENDPOINT", DEFAULT_HUB, hub, sizeof(hub));
        if (!slash)
                goto bad;
        org = g_strndup(spec, (gsize)(slash - spec));
        rest = slash + 1;
        colon = strchr(rest, ':');
        rslash = strchr(rest, '/');
        if (colon && (!rslash || colon < rslash)) {
                repo = g_strndup(rest, (gsize)(colon - rest));
                if (!colon[1] || strchr(colon + 1, '/'))
                        goto bad;
                if (!repo_part_ok(org, strlen(org)) || !repo_part_ok(repo, strlen(repo)))
                        goto bad;
                if (hub_find_quant(hub, org, repo, colon + 1, &path) < 0)
                        return -1;
        } else if (rslash) {
                repo = g_strndup(rest, (gsize)(rslash - rest));
                path = g_strdup(rslash + 1);
                if (!repo_part_ok(org, strlen(org)) || !repo_part_ok(repo, strlen(repo)) ||
                    !ends_with_gguf(path) || path[0] == '/' || strstr(path, "..") ||
                    strstr(path, "//"))
                        goto bad;
                if (is_split(path))
                        return -fail_msg("%s is one part of a split model: slmd takes one file; "
                                         "join the parts with llama-gguf-split --merge and import "
                                         "the result",
                                         path);
        } else {
                goto bad;
        }
        if (hub_resolve(hub, org, repo, path, t) < 0)
                return -1;
        base = g_path_get_basename(path);
        base[strlen(base) - 5] = 0;
        store_name_from(base, t->name, sizeof(t->name));
        return 0;
bad:
        fprintf(stderr,
                "slmctl: '%s' is not a hub source: use hf:ORG/REPO:QUANT or "
                "hf:ORG/REPO/FILE.gguf\n",
                spec);
        return -2;
}

static int resolve_ollama(const char *spec, Target *t)
{
        char reg[1024], repo[160], tag[160], why[256];
        g_autofree char *url = NULL, *base = NULL;
        Response r = { .body = g_string_new(NULL) };
        int ret = -1;

        if (ollama_parse_name(spec, repo, sizeof(repo), tag, sizeof(tag)) < 0) {
                g_string_free(r.body, TRUE);
                fprintf(stderr, "slmctl: '%s' is not an Ollama model name (NAME or NAME:TAG)\n",
                        spec);
                return -2;
        }
        endpoint("SLM_OLLAMA_REGISTRY", DEFAULT_REGISTRY, reg, sizeof(reg));
        url = g_strdup_printf("%s/v2/%s/manifests/%s", reg, repo, tag);
        if (http_small(url, "application/vnd.docker.distribution.manifest.v2+json", false, true,
                       &r) < 0)
                goto out;
        if (r.status == 404) {
                fail_msg("not found: no model %s:%s in the registry %s",
                         g_str_has_prefix(repo, "library/") ? repo + 8 : repo, tag, reg);
                goto out;
        }
        if (r.status != 200) {
                fail_msg("%s: HTTP %ld", url, r.status);
                goto out;
        }
        if (ollama_model_layer(r.body->str, r.body->len, t->sha256, &t->size, why, sizeof(why)) <
            0) {
                fail_msg("%s: %s", url, why);
                goto out;
        }
        t->url = g_strdup_printf("%s/v2/%s/blobs/sha256:%s", reg, repo, t->sha256);
        base = g_strdup_printf("%s-%s", strrchr(repo, '/') + 1, tag);
        store_name_from(base, t->name, sizeof(t->name));
        ret = 0;
out:
        g_string_free(r.body, TRUE);
        return ret;
}

static int resolve_url(const char *url, Target *t)
{
        g_autoptr(GUri) uri = g_uri_parse(url, G_URI_FLAGS_NONE, NULL);
        g_autofree char *base = NULL;

        if (!uri || !g_uri_get_host(uri) || !*g_uri_get_host(uri)) {
                fprintf(stderr, "slmctl: '%s' is not a valid URL\n", url);
                return -2;
        }
        t->url = g_strdup(url);
        base = g_path_get_basename(g_uri_get_path(uri));
        if (ends_with_gguf(base))
                base[strlen(base) - 5] = 0;
        store_name_from(strcmp(base, "/") == 0 || strcmp(base, ".") == 0 ? "model" : base, t->name,
                        sizeof(t->name));
        return 0;
}

/* 0, -1 (failed, message printed) or -2 (not a source: a usage error). */
static int resolve(const char *source, Target *t)
{
        t->source = g_strdup(source);
        if (g_str_has_prefix(source, "hf:"))
                return resolve_hf(source + 3, t);
        if (g_str_has_prefix(source, "ollama:"))
                return resolve_ollama(source + 7, t);
        if (g_ascii_strncasecmp(source, "https://", 8) == 0 ||
            g_ascii_strncasecmp(source, "http://", 7) == 0)
                return resolve_url(source, t);
        if (strstr(source, "://"))
                fprintf(stderr, "slmctl: '%s': only http:// and https:// URLs can be pulled\n",
                        source);
        else
                fprintf(stderr,
                        "slmctl: '%s' is not a source: use hf:ORG/REPO:QUANT, "
                        "hf:ORG/REPO/FILE.gguf, ollama:NAME[:TAG] or an http(s) URL\n",
                        source);
        return -2;
}

/* ---- progress ------------------------------------------------------------------------------ */

typedef struct {
        uint64_t total;    /* 0: unknown */
        uint64_t at_start; /* bytes on disk when this run began */
        uint64_t done;     /* bytes on disk now */
        double t0, last;   /* seconds */
        int last_tenth;
        bool tty;
} Progress;

static double now_s(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void progress_show(Progress *p, bool final)
{
        double t = now_s(), rate = t > p->t0 ? (double)(p->done - p->at_start) / (t - p->t0) : 0;
        char a[32], b[32], rs[32];

        if (!final && t - p->last < (p->tty ? 0.2 : 0.5))
                return;
        p->last = t;
        if (json) {
                printf("{\"event\":\"progress\",\"bytes\":%llu,\"total\":%llu,"
                       "\"bytes_per_second\":%.0f}\n",
                       (unsigned long long)p->done, (unsigned long long)p->total, rate);
                fflush(stdout);
                return;
        }
        human_size(p->done, a, sizeof(a));
        human_size(p->total, b, sizeof(b));
        human_size((uint64_t)rate, rs, sizeof(rs));
        if (p->tty) {
                int width = 30, filled = p->total ? (int)(p->done * (uint64_t)width / p->total) : 0;
                double eta =
                    rate > 0 && p->total > p->done ? (double)(p->total - p->done) / rate : 0;
                fprintf(stderr, "\r[%.*s%*s] %s / %s  %s/s  ETA %d:%02d ", filled,
                        "##############################", width - filled, "", a, p->total ? b : "?",
                        rs, (int)eta / 60, (int)eta % 60);
                if (final)
                        fprintf(stderr, "\n");
                return;
        }
        /* plain lines: every tenth of the file, or every 10 s when its size is unknown */
        int tenth = p->total ? (int)(p->done * 10 / p->total) : (int)((t - p->t0) / 10);
        if (tenth != p->last_tenth || (final && !p->total)) {
                p->last_tenth = tenth;
                if (p->total)
                        fprintf(stderr, "downloaded %s of %s (%d%%), %s/s\n", a, b,
                                (int)(p->done * 100 / p->total), rs);
                else
                        fprintf(stderr, "downloaded %s, %s/s\n", a, rs);
        }
}

/* ---- the transfer -------------------------------------------------------------------------- */

typedef struct {
        int fd;
        uint64_t offset; /* what the file held when the request went out */
        Response r;
        Progress *p;
        const char *dir;
        uint64_t expect_total;
        bool started;    /* the body of a usable response has begun */
        int write_errno; /* a failed write, which stops the transfer */
        char why[512];   /* a refusal decided in a callback */
} Transfer;

static int check_space(const char *dir, uint64_t need, char *why, size_t n)
{
        struct statvfs vfs;
        char a[32], b[32];

        if (statvfs(dir, &vfs) < 0)
                return 0; /* the writes will say */
        uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
        if (need <= avail)
                return 0;
        human_size(need, a, sizeof(a));
        human_size(avail, b, sizeof(b));
        snprintf(why, n, "not enough space in %s: the download needs %s more, %s is free", dir, a,
                 b);
        return -1;
}

static size_t on_body(char *data, size_t size, size_t count, void *user)
{
        Transfer *x = user;
        size_t n = size * count;

        if (!x->started) {
                /* the first bytes of the final response: decide what they are */
                if (x->r.status == 206 && x->r.range_start == (int64_t)x->offset) {
                        /* the rest, as asked */
                } else if (x->r.status == 200) {
                        /* the whole file: a server that ignores Range starts over */
                        if (x->offset && ftruncate(x->fd, 0) < 0) {
                                x->write_errno = errno;
                                return 0;
                        }
                        x->offset = x->p->done = x->p->at_start = 0;
                } else {
                        return 0; /* an error page: not the file */
                }
                int64_t rest = x->r.content_length;
                if (!x->expect_total && rest > 0)
                        x->p->total = x->offset + (uint64_t)rest;
                if (rest > 0 && check_space(x->dir, (uint64_t)rest, x->why, sizeof(x->why)) < 0)
                        return 0;
                x->started = true;
        }
        for (size_t off = 0; off < n;) {
                ssize_t w = write(x->fd, data + off, n - off);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0) {
                        x->write_errno = errno;
                        return 0;
                }
                off += (size_t)w;
        }
        x->p->done += n;
        return n;
}

static int on_xfer(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                   curl_off_t ulnow)
{
        Transfer *x = user;

        (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
        if (x->started)
                progress_show(x->p, false);
        return interrupted ? 1 : 0;
}

typedef enum { XFER_DONE, XFER_RETRY, XFER_FAILED } XferResult;

/* One GET of what @fd lacks. XFER_RETRY: the connection failed and another try may go on. */
static XferResult transfer_once(const Target *t, int fd, const char *dir, Progress *p, char *why,
                                size_t why_len, bool *keep)
{
        struct curl_slist *headers = NULL;
        char errbuf[CURL_ERROR_SIZE], range[32];
        Transfer x = { .fd = fd, .p = p, .dir = dir, .expect_total = t->size };
        struct stat st;
        CURLcode rc;
        CURL *h;

        if (fstat(fd, &st) < 0) {
                snprintf(why, why_len, "cannot read the partial download: %s", strerror(errno));
                return XFER_FAILED;
        }
        x.offset = p->done = (uint64_t)st.st_size;
        if (t->size && x.offset == t->size)
                return XFER_DONE;
        if (t->size && x.offset > t->size) {
                if (ftruncate(fd, 0) < 0) {
                        snprintf(why, why_len, "cannot truncate the partial download: %s",
                                 strerror(errno));
                        return XFER_FAILED;
                }
                x.offset = p->done = 0;
        }
        if (t->size && check_space(dir, t->size - x.offset, why, why_len) < 0) {
                *keep = x.offset > 0;
                return XFER_FAILED;
        }
        h = new_handle(t->url, NULL, &headers, &x.r, errbuf);
        if (!h) {
                snprintf(why, why_len, "cannot start an HTTP request");
                return XFER_FAILED;
        }
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_xfer);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, &x);
        if (x.offset) {
                snprintf(range, sizeof(range), "%llu-", (unsigned long long)x.offset);
                curl_easy_setopt(h, CURLOPT_RANGE, range);
        }
        rc = curl_easy_perform(h);
        curl_easy_cleanup(h);
        curl_slist_free_all(headers);
        *keep = true;
        if (rc == CURLE_OK && x.started)
                return XFER_DONE;
        if (x.write_errno) {
                snprintf(why, why_len, "cannot write the download: %s", strerror(x.write_errno));
                *keep = false;
                return XFER_FAILED;
        }
        if (x.why[0]) {
                snprintf(why, why_len, "%s", x.why);
                *keep = x.offset > 0;
                return XFER_FAILED;
        }
        if (interrupted) {
                snprintf(why, why_len, "interrupted");
                return XFER_FAILED;
        }
        if (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && !x.started)) {
                if (x.r.status == 416 && x.offset && !t->size)
                        return XFER_DONE; /* nothing left to send: the file is whole */
                if (x.r.status == 206)
                        snprintf(why, why_len, "%s: the server resumed at the wrong offset",
                                 t->url);
                else if (x.r.status == 404)
                        snprintf(why, why_len, "not found: %s (HTTP 404)", t->url);
                else
                        snprintf(why, why_len, "%s: HTTP %ld", t->url, x.r.status);
                *keep = x.offset > 0 && x.r.status != 404 && x.r.status != 416;
                return XFER_FAILED;
        }
        snprintf(why, why_len, "%s: %s", t->url, errbuf[0] ? errbuf : curl_easy_strerror(rc));
        switch (rc) {
        case CURLE_PARTIAL_FILE:
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_OPERATION_TIMEDOUT:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
                return XFER_RETRY;
        default:
                return XFER_FAILED;
        }
}

static int sha256_file(const char *path, char *out)
{
        g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
        g_autofree guint8 *buf = g_malloc(1 << 20);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t n;

        if (fd < 0)
                return -errno;
        while ((n = read(fd, buf, 1 << 20)) > 0 || (n < 0 && errno == EINTR))
                if (n > 0)
                        g_checksum_update(sum, buf, (gsize)n);
        close(fd);
        if (n < 0)
                return -EIO;
        memcpy(out, g_checksum_get_string(sum), 65);
        return 0;
}

static void write_meta(const char *path, const Target *t)
{
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autoptr(JsonGenerator) gen = json_generator_new();
        g_autoptr(JsonNode) root = NULL;
        g_autofree char *text = NULL;

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "source");
        json_builder_add_string_value(b, t->source);
        json_builder_set_member_name(b, "url");
        json_builder_add_string_value(b, t->url);
        json_builder_set_member_name(b, "sha256");
        json_builder_add_string_value(b, t->sha256);
        json_builder_set_member_name(b, "size");
        json_builder_add_int_value(b, (gint64)t->size);
        json_builder_end_object(b);
        root = json_builder_get_root(b);
        json_generator_set_root(gen, root);
        text = json_generator_to_data(gen, NULL);
        g_file_set_contents(path, text, -1, NULL);
}

/* Whether the metadata beside a partial file describes the same download. */
static bool meta_matches(const char *path, const Target *t)
{
        g_autoptr(JsonParser) parser = json_parser_new();
        JsonNode *root;
        JsonObject *o;

        if (!json_parser_load_from_file(parser, path, NULL))
                return false;
        root = json_parser_get_root(parser);
        if (!root || !JSON_NODE_HOLDS_OBJECT(root))
                return false;
        o = json_node_get_object(root);
        return strcmp(json_object_get_string_member_with_default(o, "sha256", "?"), t->sha256) ==
                   0 &&
               json_object_get_int_member_with_default(o, "size", -1) == (gint64)t->size &&
               (t->sha256[0] ||
                strcmp(json_object_get_string_member_with_default(o, "url", ""), t->url) == 0);
}

static bool model_exists(SlmClient *c, const char *name, char *sha256, size_t n)
{
        SlmClientError err;
        SlmModelInfo *m;
        size_t count;
        bool found = false;

        if (slm_client_list_models(c, &m, &count, &err) < 0)
                return false; /* ImportModel will say */
        for (size_t i = 0; i < count && !found; i++)
                if (strcmp(m[i].name, name) == 0) {
                        snprintf(sha256, n, "%s", m[i].sha256);
                        found = true;
                }
        slm_model_info_free(m, count);
        return found;
}

static bool name_is_valid(const char *name)
{
        char clean[80];
        store_name_from(name, clean, sizeof(clean));
        return strcmp(clean, name) == 0;
}

int cmd_pull(SlmClient *c, const char *source, const char *name)
{
        g_autofree char *dir = g_build_filename(g_get_user_cache_dir(), "slm", "downloads", NULL);
        g_autofree char *key = NULL, *part = NULL, *meta = NULL;
        char why[1024] = "", got[65], stored_sha[80], sizes[32];
        Target t = { 0 };
        Progress p = { .tty = !json && isatty(STDERR_FILENO), .last_tenth = -1 };
        bool keep = true;
        int r, fd, idle_tries = 0;
        XferResult xr;

        if (name && !name_is_valid(name)) {
                fprintf(stderr,
                        "slmctl: invalid model name '%s': use 1 to 64 of A-Z a-z 0-9 . _ -"
                        " (not starting with a dot)\n",
                        name);
                return 2;
        }
        curl_global_init(CURL_GLOBAL_DEFAULT);
        r = resolve(source, &t);
        if (r < 0)
                goto out;
        if (!name)
                name = t.name;
        if (model_exists(c, name, stored_sha, sizeof(stored_sha))) {
                if (t.sha256[0] && strcmp(stored_sha, t.sha256) == 0) {
                        if (json) {
                                printf("{\"name\":");
                                json_string(name);
                                printf(",\"sha256\":\"%s\",\"already\":true}\n", t.sha256);
                        } else
                                printf("%s is already in the store as %s\n", source, name);
                        r = 0;
                } else {
                        r = fail_msg("a model named '%s' exists; choose another with --name, or "
                                     "remove it first (slmctl rm %s)",
                                     name, name);
                }
                goto out;
        }
        if (g_mkdir_with_parents(dir, 0700) < 0) {
                r = fail_msg("cannot create %s: %s", dir, g_strerror(errno));
                goto out;
        }
        key = t.sha256[0] ? g_strdup(t.sha256)
                          : g_compute_checksum_for_string(G_CHECKSUM_SHA256, t.url, -1);
        part = g_strdup_printf("%s/%.64s.gguf.part", dir, key);
        meta = g_strdup_printf("%s/%.64s.json", dir, key);
        if (!meta_matches(meta, &t))
                g_unlink(part);
        write_meta(meta, &t);
        fd = open(part, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd < 0) {
                r = fail_msg("cannot create %s: %s", part, g_strerror(errno));
                g_unlink(meta);
                goto out;
        }
        p.total = t.size;
        human_size(t.size, sizes, sizeof(sizes));
        if (!json)
                fprintf(stderr, "Downloading %s%s%s%s into %s\n", source, t.size ? " (" : "",
                        t.size ? sizes : "", t.size ? ")" : "", dir);
        do {
                uint64_t before;
                struct stat st;
                p.t0 = now_s();
                p.at_start = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
                before = p.at_start;
                xr = transfer_once(&t, fd, dir, &p, why, sizeof(why), &keep);
                /* give up after MAX_ATTEMPTS failures in a row that brought nothing */
                idle_tries = p.done > before ? 0 : idle_tries + 1;
                if (xr == XFER_RETRY && idle_tries < MAX_ATTEMPTS && !interrupted) {
                        if (json) {
                                printf("{\"event\":\"retry\",\"bytes\":%llu,\"reason\":",
                                       (unsigned long long)p.done);
                                json_string(why);
                                printf("}\n");
                                fflush(stdout);
                        } else {
                                fprintf(stderr, "%s%s; resuming\n", p.tty ? "\n" : "", why);
                        }
                        sleep(1);
                }
        } while (xr == XFER_RETRY && idle_tries < MAX_ATTEMPTS && !interrupted);
        close(fd);
        if (xr != XFER_DONE) {
                if (p.tty)
                        fprintf(stderr, "\n");
                if (!keep || !p.done) {
                        g_unlink(part);
                        g_unlink(meta);
                        r = fail_msg("%s", why);
                } else {
                        char have[32];
                        human_size(p.done, have, sizeof(have));
                        r = fail_msg("%s; %s are kept in %s: the same command resumes", why, have,
                                     dir);
                }
                goto out;
        }
        progress_show(&p, true);
        if (sha256_file(part, got) < 0) {
                r = fail_msg("cannot read %s back", part);
                goto out;
        }
        if (t.sha256[0] && strcmp(got, t.sha256) != 0) {
                g_unlink(part);
                g_unlink(meta);
                r = fail_msg("the download's SHA-256 is %s, not the %s its source announced; it "
                             "was removed and nothing was imported",
                             got, t.sha256);
                goto out;
        }
        SlmStatus st = SLM_STATUS_OK;
        r = import_file(c, part, name, got, source, &st);
        /* keep a good file for another try unless the daemon refused the file itself */
        if (r == 0 || st == SLM_STATUS_INVALID_MODEL) {
                g_unlink(part);
                g_unlink(meta);
        }
out:
        target_clear(&t);
        curl_global_cleanup();
        return r == -2 ? 2 : r < 0 ? 1 : r;
}
