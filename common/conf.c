/* conf.c -- see conf.h.  libfyaml does the parsing; this file adds located
 * errors, typed getters, unknown-key checks and dotted-path overrides. */
#include "common/conf.h"

#include <ctype.h>
#include <errno.h>
#include <libfyaml.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/duration.h"

/* Nodes put in the tree by conf_set (values, keys and the mappings or lists
 * created on the way) carry the assignment's text as libfyaml node meta, so
 * errors name it; the meta goes away with the node when a later --set
 * replaces it.  The texts live in c->sets until conf_free. */
struct conf {
    struct fy_document *doc;
    struct fy_diag *diag; /* collects libfyaml's errors; ours to destroy */
    char *origin;
    char *dir;
    char **sets;
    size_t nsets;
};

/* Aliases are expanded when a document is loaded; an expansion past this
 * many nodes (an alias bomb) or this deep (an alias inside itself) is
 * refused. */
#define CONF_MAX_NODES 1000000L
#define CONF_MAX_DEPTH 256

#define FYN(n) ((struct fy_node *)(n))
#define CN(n) ((struct conf_node *)(n))

static struct conf *conf_new(const char *origin)
{
    struct conf *c = calloc(1, sizeof(*c));
    const char *slash;

    if (c == NULL)
        return NULL;
    c->origin = strdup(origin);
    slash = strrchr(origin, '/');
    if (slash == NULL)
        c->dir = strdup(".");
    else if (slash == origin)
        c->dir = strdup("/");
    else
        c->dir = strndup(origin, (size_t)(slash - origin));
    if (c->origin == NULL || c->dir == NULL) {
        free(c->origin);
        free(c->dir);
        free(c);
        return NULL;
    }
    return c;
}

void conf_free(struct conf *c)
{
    size_t i;

    if (c == NULL)
        return;
    if (c->doc)
        fy_document_destroy(c->doc);
    /* fy_diag_destroy, unlike fy_diag_unref, frees the collected errors. */
    if (c->diag)
        fy_diag_destroy(c->diag);
    for (i = 0; i < c->nsets; i++)
        free(c->sets[i]);
    free(c->sets);
    free(c->origin);
    free(c->dir);
    free(c);
}

static long conf_line(struct fy_node *n);
static bool conf_is_null(struct fy_node *n);

/* Why a document's aliases cannot be expanded. */
enum conf_alias_fault { CONF_ALIAS_OK = 0, CONF_ALIAS_TOO_BIG, CONF_ALIAS_TOO_DEEP, CONF_ALIAS_UNDEFINED };

/* Count the nodes of N with aliases expanded, within *budget.  On a fault
 * sets *bad to the outermost alias being expanded (VIA) or the node itself. */
static enum conf_alias_fault conf_count_nodes(struct fy_node *n, struct fy_node *via, int depth,
                                              long *budget, struct fy_node **bad)
{
    enum conf_alias_fault f = CONF_ALIAS_OK;
    struct fy_node_pair *p;
    struct fy_node *item;
    void *iter = NULL;

    if (n == NULL)
        return CONF_ALIAS_OK;
    *bad = via ? via : n;
    if (--*budget < 0)
        return CONF_ALIAS_TOO_BIG;
    if (depth > CONF_MAX_DEPTH)
        return CONF_ALIAS_TOO_DEEP;
    if (fy_node_is_alias(n)) {
        struct fy_node *target = fy_node_resolve_alias(n);
        if (target == NULL)
            return CONF_ALIAS_UNDEFINED;
        return conf_count_nodes(target, via ? via : n, depth + 1, budget, bad);
    }
    switch (fy_node_get_type(n)) {
    case FYNT_MAPPING:
        while (f == CONF_ALIAS_OK && (p = fy_node_mapping_iterate(n, &iter)) != NULL) {
            f = conf_count_nodes(fy_node_pair_key(p), via, depth + 1, budget, bad);
            if (f == CONF_ALIAS_OK)
                f = conf_count_nodes(fy_node_pair_value(p), via, depth + 1, budget, bad);
        }
        return f;
    case FYNT_SEQUENCE:
        while (f == CONF_ALIAS_OK && (item = fy_node_sequence_iterate(n, &iter)) != NULL)
            f = conf_count_nodes(item, via, depth + 1, budget, bad);
        return f;
    default:
        return CONF_ALIAS_OK;
    }
}

/* Report the first collected diagnostic, located. */
static void conf_diag_error(struct fy_diag *diag, const char *origin, struct err *e)
{
    void *iter = NULL;
    struct fy_diag_error *de = fy_diag_errors_iterate(diag, &iter);

    if (de != NULL)
        err_at(e, origin, de->line > 0 ? de->line : 1, "YAML syntax error: %s", de->msg);
    else
        err_at(e, origin, 0, "cannot parse YAML");
}

/* Parse with diagnostics collected, then report the first error located.
 * The text must hold exactly one document (none gives an empty mapping);
 * aliases and merge keys are resolved. */
static struct conf *conf_parse(const char *origin, const char *text, size_t len, bool is_file,
                               struct err *e)
{
    struct fy_diag_cfg dcfg;
    struct fy_parse_cfg pcfg;
    struct fy_diag *diag;
    struct fy_parser *fyp = NULL;
    struct fy_document *extra = NULL;
    struct fy_node *bad = NULL;
    struct conf *c = conf_new(origin);
    long budget = CONF_MAX_NODES;
    int rc;

    if (c == NULL)
        goto nomem;
    fy_diag_cfg_default(&dcfg);
    dcfg.fp = NULL;
    dcfg.output_fn = NULL;
    dcfg.colorize = false;
    diag = c->diag = fy_diag_create(&dcfg);
    if (diag == NULL)
        goto nomem;
    fy_diag_set_collect_errors(diag, true);
    memset(&pcfg, 0, sizeof(pcfg));
    pcfg.flags = FYPCF_QUIET | FYPCF_COLLECT_DIAG;
    pcfg.diag = diag;
    fyp = fy_parser_create(&pcfg);
    if (fyp == NULL)
        goto nomem;
    rc = is_file ? fy_parser_set_input_file(fyp, text) : fy_parser_set_string(fyp, text, len);
    if (rc != 0) {
        if (is_file && access(text, R_OK) != 0)
            err_sys(e, errno, "%s", origin);
        else
            err_at(e, origin, 0, "cannot read YAML");
        goto fail;
    }
    c->doc = fy_parse_load_document(fyp);
    if (c->doc != NULL && !fy_diag_got_error(diag))
        extra = fy_parse_load_document(fyp);
    if (fy_diag_got_error(diag)) {
        conf_diag_error(diag, origin, e);
        goto fail;
    }
    if (extra != NULL) {
        err_at(e, origin, conf_line(fy_document_root(extra)),
               "a second YAML document ('---'): a configuration holds one");
        goto fail;
    }
    if (c->doc == NULL) /* no document at all: empty or only comments */
        c->doc = fy_document_create(&pcfg);
    if (c->doc == NULL)
        goto nomem;
    if (conf_is_null(fy_document_root(c->doc))) { /* "---" alone, "~" */
        struct fy_node *m = fy_node_create_mapping(c->doc);
        if (m == NULL || fy_document_set_root(c->doc, m) != 0)
            goto nomem;
    }
    switch (conf_count_nodes(fy_document_root(c->doc), NULL, 0, &budget, &bad)) {
    case CONF_ALIAS_OK:
        break;
    case CONF_ALIAS_TOO_BIG:
        err_at(e, origin, conf_line(bad), "YAML aliases expand to over %ld nodes", CONF_MAX_NODES);
        goto fail;
    case CONF_ALIAS_TOO_DEEP:
        err_at(e, origin, conf_line(bad), "YAML alias nested too deep (does it refer to itself?)");
        goto fail;
    case CONF_ALIAS_UNDEFINED:
        err_at(e, origin, conf_line(bad), "YAML alias to an undefined anchor");
        goto fail;
    }
    if (fy_document_resolve(c->doc) != 0) {
        if (fy_diag_got_error(diag))
            conf_diag_error(diag, origin, e);
        else
            err_at(e, origin, 0, "cannot resolve YAML aliases");
        goto fail;
    }
    goto done;

nomem:
    err_set(e, ERR_SYSTEM, "out of memory");
fail:
    conf_free(c);
    c = NULL;
done:
    if (extra != NULL)
        fy_parse_document_destroy(fyp, extra);
    if (fyp != NULL)
        fy_parser_destroy(fyp);
    return c;
}

struct conf *conf_load_file(const char *path, struct err *e)
{
    FILE *f = fopen(path, "r");

    if (f == NULL) {
        err_sys(e, errno, "%s", path);
        return NULL;
    }
    fclose(f);
    return conf_parse(path, path, 0, true, e);
}

struct conf *conf_load_string(const char *text, const char *origin, struct err *e)
{
    return conf_parse(origin ? origin : "<string>", text, strlen(text), false, e);
}

const char *conf_origin(const struct conf *c) { return c->origin; }
const char *conf_dir(const struct conf *c) { return c->dir; }
struct conf_node *conf_root(struct conf *c) { return CN(fy_document_root(c->doc)); }

bool conf_is_map(const struct conf_node *n) { return n && fy_node_get_type(FYN(n)) == FYNT_MAPPING; }
bool conf_is_seq(const struct conf_node *n) { return n && fy_node_get_type(FYN(n)) == FYNT_SEQUENCE; }
bool conf_is_scalar(const struct conf_node *n) { return n && fy_node_get_type(FYN(n)) == FYNT_SCALAR; }

/* Line of a node (1-based), 0 if unknown: a scalar has a token; a collection
 * is placed at its first element. */
static long conf_line(struct fy_node *n)
{
    int depth;

    for (depth = 0; n != NULL && depth < 64; depth++) {
        struct fy_token *t;
        const struct fy_mark *m;
        void *iter = NULL;

        switch (fy_node_get_type(n)) {
        case FYNT_SCALAR:
            t = fy_node_get_scalar_token(n);
            if (t == NULL)
                return 0;
            m = fy_token_start_mark(t);
            return m ? m->line + 1 : 0;
        case FYNT_MAPPING: {
            struct fy_node_pair *p = fy_node_mapping_iterate(n, &iter);
            n = p ? fy_node_pair_key(p) : NULL;
            break;
        }
        case FYNT_SEQUENCE:
            n = fy_node_sequence_iterate(n, &iter);
            break;
        default:
            return 0;
        }
    }
    return 0;
}

/* The --set text that put n (or a node above it) in the tree, or NULL. */
static const char *conf_override_of(struct fy_node *n)
{
    for (; n != NULL; n = fy_node_get_parent(n)) {
        const char *text = fy_node_get_meta(n);
        if (text != NULL)
            return text;
    }
    return NULL;
}

void conf_path(const struct conf *c, const struct conf_node *n, const char *path, char *buf, size_t len)
{
    if (path[0] == '/' || strcmp(path, "-") == 0 || conf_override_of(FYN(n)) != NULL)
        snprintf(buf, len, "%s", path);
    else
        snprintf(buf, len, "%s/%s", c->dir, path);
}

void conf_where(const struct conf *c, const struct conf_node *n, char *buf, size_t len)
{
    const char *o = conf_override_of(FYN(n));
    long line;

    if (o != NULL) {
        snprintf(buf, len, "--set %s", o);
        return;
    }
    line = conf_line(FYN(n));
    if (line > 0)
        snprintf(buf, len, "%s:%ld", c->origin, line);
    else
        snprintf(buf, len, "%s", c->origin);
}

int conf_error(const struct conf *c, const struct conf_node *n, struct err *e, const char *fmt, ...)
{
    char where[600];
    char what[ERR_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    conf_where(c, n, where, sizeof(where));
    return err_set(e, ERR_INPUT, "%s: %s", where, what);
}

/* Key of a pair as a C string, or NULL for a non-scalar key. */
static const char *conf_key(struct fy_node_pair *p)
{
    struct fy_node *k = fy_node_pair_key(p);

    if (k == NULL || fy_node_get_type(k) != FYNT_SCALAR)
        return NULL;
    return fy_node_get_scalar0(k);
}

int conf_check_keys(const struct conf *c, const struct conf_node *map, const char *what,
                    const char *const *allowed, struct err *e)
{
    struct fy_node_pair *p;
    void *iter = NULL;

    if (!conf_is_map(map))
        return conf_error(c, map, e, "%s: expected a mapping", what);
    while ((p = fy_node_mapping_iterate(FYN(map), &iter)) != NULL) {
        const char *key = conf_key(p);
        const char *const *a;
        char list[512];
        size_t used = 0;

        if (key == NULL)
            return conf_error(c, CN(fy_node_pair_key(p)), e, "%s: keys must be plain strings", what);
        for (a = allowed; *a != NULL; a++)
            if (strcmp(*a, key) == 0)
                break;
        if (*a != NULL)
            continue;
        list[0] = '\0';
        for (a = allowed; *a != NULL && used + strlen(*a) + 3 < sizeof(list); a++)
            used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", a == allowed ? "" : ", ", *a);
        return conf_error(c, CN(fy_node_pair_key(p)), e, "unknown key '%s' in %s (known: %s)", key, what, list);
    }
    return 0;
}

/* A null: no node, or a plain scalar "", "~" or "null" (YAML 1.2 core). */
static bool conf_is_null(struct fy_node *n)
{
    const char *s;
    size_t len;

    if (n == NULL)
        return true;
    if (fy_node_get_type(n) != FYNT_SCALAR || fy_node_get_style(n) != FYNS_PLAIN)
        return false;
    s = fy_node_get_scalar(n, &len);
    if (s == NULL || len == 0)
        return true;
    return (len == 1 && s[0] == '~') ||
           (len == 4 && (memcmp(s, "null", 4) == 0 || memcmp(s, "Null", 4) == 0 || memcmp(s, "NULL", 4) == 0));
}

struct conf_node *conf_get(const struct conf_node *map, const char *key)
{
    struct fy_node *v;

    if (!conf_is_map(map))
        return NULL;
    v = fy_node_mapping_lookup_by_string(FYN(map), key, strlen(key));
    if (conf_is_null(v))
        return NULL;
    return CN(v);
}

int conf_get_map(const struct conf *c, const struct conf_node *map, const char *key,
                 struct conf_node **out, struct err *e)
{
    struct conf_node *v = conf_get(map, key);

    if (v == NULL)
        return 0;
    if (!conf_is_map(v))
        return conf_error(c, v, e, "%s: expected a mapping", key);
    *out = v;
    return 1;
}

int conf_get_seq(const struct conf *c, const struct conf_node *map, const char *key,
                 struct conf_node **out, struct err *e)
{
    struct conf_node *v = conf_get(map, key);

    if (v == NULL)
        return 0;
    if (!conf_is_seq(v))
        return conf_error(c, v, e, "%s: expected a list", key);
    *out = v;
    return 1;
}

int conf_node_str(const struct conf *c, const struct conf_node *n, const char *what,
                  const char **out, struct err *e)
{
    const char *s;

    if (!conf_is_scalar(n))
        return conf_error(c, n, e, "%s: expected a scalar value", what);
    s = fy_node_get_scalar0(FYN(n));
    if (s == NULL)
        return err_set(e, ERR_SYSTEM, "out of memory");
    *out = s;
    return 1;
}

int conf_get_str(const struct conf *c, const struct conf_node *map, const char *key,
                 const char **out, struct err *e)
{
    struct conf_node *v = conf_get(map, key);

    if (v == NULL)
        return 0;
    return conf_node_str(c, v, key, out, e);
}

int conf_node_double(const struct conf *c, const struct conf_node *n, const char *what,
                     double *out, struct err *e)
{
    const char *s;
    char *end;
    double v;

    if (conf_node_str(c, n, what, &s, e) < 0)
        return -1;
    errno = 0;
    v = strtod(s, &end);
    if (end == s || *end != '\0' || errno == ERANGE || !isfinite(v))
        return conf_error(c, n, e, "%s: expected a number, got '%s'", what, s);
    *out = v;
    return 1;
}

int conf_get_double(const struct conf *c, const struct conf_node *map, const char *key,
                    double *out, struct err *e)
{
    struct conf_node *v = conf_get(map, key);

    if (v == NULL)
        return 0;
    return conf_node_double(c, v, key, out, e);
}

int conf_get_nonneg(const struct conf *c, const struct conf_node *map, const char *key,
                    double *out, struct err *e)
{
    struct conf_node *v = conf_get(map, key);
    double x;

    if (v == NULL)
        return 0;
    if (conf_node_double(c, v, key, &x, e) < 0)
        return -1;
    if (x < 0)
        return conf_error(c, v, e, "%s: must not be negative, got %g", key, x);
    *out = x;
    return 1;
}

int conf_get_long(const struct conf *c, const struct conf_node *map, const char *key,
                  long *out, struct err *e)
{
    struct conf_node *v = conf_get(map, key);
    const char *s;
    char *end;
    long x;

    if (v == NULL)
        return 0;
    if (conf_node_str(c, v, key, &s, e) < 0)
        return -1;
    errno = 0;
    x = strtol(s, &end, 10);
    if (end == s || *end != '\0' || errno == ERANGE)
        return conf_error(c, v, e, "%s: expected an integer, got '%s'", key, s);
    *out = x;
    return 1;
}

int conf_get_bool(const struct conf *c, const struct conf_node *map, const char *key,
                  bool *out, struct err *e)
{
    static const char *const yes[] = {"true", "yes", "on", NULL};
    static const char *const no[] = {"false", "no", "off", NULL};
    struct conf_node *v = conf_get(map, key);
    const char *s;
    int i;

    if (v == NULL)
        return 0;
    if (conf_node_str(c, v, key, &s, e) < 0)
        return -1;
    for (i = 0; yes[i]; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 1;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 1;
        }
    }
    return conf_error(c, v, e, "%s: expected true or false, got '%s'", key, s);
}

int conf_get_duration(const struct conf *c, const struct conf_node *map, const char *key,
                      double *out_s, struct err *e)
{
    struct conf_node *v = conf_get(map, key);
    const char *s;
    struct err sub;

    if (v == NULL)
        return 0;
    if (conf_node_str(c, v, key, &s, e) < 0)
        return -1;
    if (duration_parse(s, out_s, &sub) < 0)
        return conf_error(c, v, e, "%s: %s", key, sub.msg);
    return 1;
}

int conf_get_enum(const struct conf *c, const struct conf_node *map, const char *key,
                  const char *const *names, int *out, struct err *e)
{
    struct conf_node *v = conf_get(map, key);
    const char *s;
    char list[512];
    size_t used = 0;
    int i;

    if (v == NULL)
        return 0;
    if (conf_node_str(c, v, key, &s, e) < 0)
        return -1;
    list[0] = '\0';
    for (i = 0; names[i] != NULL; i++) {
        if (strcmp(names[i], s) == 0) {
            *out = i;
            return 1;
        }
        if (used + strlen(names[i]) + 3 < sizeof(list))
            used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "", names[i]);
    }
    return conf_error(c, v, e, "%s: unknown value '%s' (expected one of: %s)", key, s, list);
}

size_t conf_map_len(const struct conf_node *map)
{
    return conf_is_map(map) ? (size_t)fy_node_mapping_item_count(FYN(map)) : 0;
}

const char *conf_map_at(const struct conf_node *map, size_t i, struct conf_node **value)
{
    struct fy_node_pair *p;

    if (!conf_is_map(map) || i >= conf_map_len(map))
        return NULL;
    p = fy_node_mapping_get_by_index(FYN(map), (int)i);
    if (p == NULL)
        return NULL;
    *value = CN(fy_node_pair_value(p));
    return conf_key(p);
}

size_t conf_seq_len(const struct conf_node *seq)
{
    return conf_is_seq(seq) ? (size_t)fy_node_sequence_item_count(FYN(seq)) : 0;
}

struct conf_node *conf_seq_at(const struct conf_node *seq, size_t i)
{
    if (!conf_is_seq(seq) || i > (size_t)INT32_MAX)
        return NULL;
    return CN(fy_node_sequence_get_by_index(FYN(seq), (int)i));
}

/* ---- overrides ------------------------------------------------------------ */

/* One step of a path: a mapping key or a sequence index. */
struct conf_step {
    char key[128];
    long index; /* -1 for a key step */
};

static int conf_next_step(const char **pp, struct conf_step *st)
{
    const char *p = *pp;
    size_t n = 0;

    if (*p == '[') {
        char *end;
        if (!isdigit((unsigned char)p[1]))
            return -1;
        errno = 0;
        st->index = strtol(p + 1, &end, 10);
        if (*end != ']' || errno == ERANGE)
            return -1;
        st->key[0] = '\0';
        p = end + 1;
    } else {
        st->index = -1;
        while (*p != '\0' && *p != '.' && *p != '[') {
            if (n + 1 >= sizeof(st->key))
                return -1;
            st->key[n++] = *p++;
        }
        if (n == 0)
            return -1;
        st->key[n] = '\0';
    }
    /* A step ends the path or is followed by ".key" or "[N]". */
    if (*p == '.') {
        p++;
        if (*p == '\0' || *p == '.' || *p == '[')
            return -1;
    } else if (*p != '\0' && *p != '[') {
        return -1;
    }
    *pp = p;
    return 0;
}

/* Keep a copy of an assignment's text for the nodes it creates; NULL when
 * out of memory. */
static const char *conf_keep_text(struct conf *c, const char *text)
{
    char **sets = realloc(c->sets, (c->nsets + 1) * sizeof(*sets));

    if (sets == NULL)
        return NULL;
    c->sets = sets;
    sets[c->nsets] = strdup(text);
    if (sets[c->nsets] == NULL)
        return NULL;
    return sets[c->nsets++];
}

/* Put VAL at step ST of container CUR (a new key, a replaced value, an
 * appended or replaced item); a new key is marked with TEXT. */
static int conf_place(struct conf *c, struct fy_node *cur, const struct conf_step *st,
                      struct fy_node *val, const char *text)
{
    if (fy_node_set_meta(val, (void *)text) != 0)
        return -1;
    if (st->index < 0) {
        struct fy_node_pair *p = fy_node_mapping_lookup_pair_by_string(cur, st->key, strlen(st->key));
        struct fy_node *key;

        if (p != NULL)
            return fy_node_pair_set_value(p, val);
        key = fy_node_create_scalar_copy(c->doc, st->key, strlen(st->key));
        if (key == NULL || fy_node_set_meta(key, (void *)text) != 0)
            return -1;
        return fy_node_mapping_append(cur, key, val);
    } else {
        int count = fy_node_sequence_item_count(cur);
        struct fy_node *old;

        if (st->index == count)
            return fy_node_sequence_append(cur, val);
        old = fy_node_sequence_get_by_index(cur, (int)st->index);
        if (old == NULL)
            return -1;
        if (fy_node_sequence_insert_before(cur, old, val) != 0)
            return -1;
        fy_node_free(fy_node_sequence_remove(cur, old));
        return 0;
    }
}

int conf_set(struct conf *c, const char *assignment, struct err *e)
{
    const char *eq = strchr(assignment, '=');
    const char *p, *value;
    struct fy_node *cur = fy_document_root(c->doc);
    struct conf_step st;
    char path[512];
    const char *text;

    if (eq == NULL || eq == assignment)
        return err_set(e, ERR_INPUT, "--set %s: expected KEY.PATH=VALUE", assignment);
    if ((size_t)(eq - assignment) >= sizeof(path))
        return err_set(e, ERR_INPUT, "--set %s: key path too long", assignment);
    memcpy(path, assignment, (size_t)(eq - assignment));
    path[eq - assignment] = '\0';
    value = eq + 1;
    /* Check the whole path before changing the tree. */
    for (p = path; *p != '\0';)
        if (conf_next_step(&p, &st) < 0)
            return err_set(e, ERR_INPUT, "--set %s: malformed key path '%s'", assignment, path);
    text = conf_keep_text(c, assignment);
    if (text == NULL)
        return err_set(e, ERR_SYSTEM, "out of memory");
    /* libfyaml keeps pointing into the text a node is built from: build
     * from the copy the document keeps, not the caller's string. */
    value = text + (eq - assignment) + 1;
    p = path;
    for (;;) {
        struct fy_node *next = NULL;

        if (conf_next_step(&p, &st) < 0)
            return err_set(e, ERR_INPUT, "--set %s: malformed key path '%s'", assignment, path);
        if (st.index < 0 && fy_node_get_type(cur) != FYNT_MAPPING)
            return err_set(e, ERR_INPUT, "--set %s: '%s' is not inside a mapping", assignment, st.key);
        if (st.index >= 0 && fy_node_get_type(cur) != FYNT_SEQUENCE)
            return err_set(e, ERR_INPUT, "--set %s: [%ld] applied to something that is not a list",
                           assignment, st.index);
        if (st.index >= 0 && st.index > fy_node_sequence_item_count(cur))
            return err_set(e, ERR_INPUT, "--set %s: index %ld is past the end of a list of %d",
                           assignment, st.index, fy_node_sequence_item_count(cur));
        if (*p == '\0')
            break;
        if (st.index < 0)
            next = fy_node_mapping_lookup_by_string(cur, st.key, strlen(st.key));
        else
            next = fy_node_sequence_get_by_index(cur, (int)st.index);
        if (conf_is_null(next)) {
            /* Create the missing container the rest of the path needs. */
            next = *p == '[' ? fy_node_create_sequence(c->doc) : fy_node_create_mapping(c->doc);
            if (next == NULL || conf_place(c, cur, &st, next, text) != 0)
                return err_set(e, ERR_SYSTEM, "out of memory");
        }
        cur = next;
    }
    {
        struct fy_node *val = *value ? fy_node_build_from_string(c->doc, value, strlen(value)) : NULL;
        if (val == NULL) {
            /* Not YAML: the text itself, as a string. */
            fy_diag_reset_error(c->diag);
            val = fy_node_create_scalar_copy(c->doc, value, strlen(value));
        }
        if (val == NULL || conf_place(c, cur, &st, val, text) != 0)
            return err_set(e, ERR_SYSTEM, "--set %s: cannot apply", assignment);
    }
    return 0;
}

/* ---- lookup and output ------------------------------------------------------ */

struct conf_node *conf_lookup(struct conf *c, const char *path)
{
    struct fy_node *cur = fy_document_root(c->doc);
    struct conf_step st;
    const char *p = path;

    if (*p == '\0')
        return NULL;
    while (*p != '\0') {
        if (conf_next_step(&p, &st) < 0)
            return NULL;
        if (st.index < 0)
            cur = fy_node_get_type(cur) == FYNT_MAPPING
                      ? fy_node_mapping_lookup_by_string(cur, st.key, strlen(st.key))
                      : NULL;
        else
            cur = fy_node_get_type(cur) == FYNT_SEQUENCE && st.index < INT32_MAX
                      ? fy_node_sequence_get_by_index(cur, (int)st.index)
                      : NULL;
        if (cur == NULL)
            return NULL;
    }
    return CN(cur);
}

int conf_emit(const struct conf *c, FILE *out, struct err *e)
{
    if (fy_emit_document_to_fp(c->doc, FYECF_MODE_BLOCK | FYECF_WIDTH_INF, out) != 0)
        return err_set(e, ERR_SYSTEM, "%s: cannot write the YAML document", c->origin);
    return 0;
}
