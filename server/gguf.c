/* gguf.c -- see gguf.h.  Every read goes through struct reader, which
 * refuses to step past the end of the file. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/gguf.h"

#define GGUF_MAX_TENSORS (1u << 20)
#define GGUF_MAX_KV (1u << 20)
#define GGUF_MAX_DIMS 4
#define GGUF_MAX_ALIGNMENT (1u << 20)

struct reader {
    const uint8_t *base;
    size_t len, off;
    const char *path;
    struct err *e;
};

/* Take N bytes; NULL (E set) when fewer are left.  WHAT names them. */
static const uint8_t *take(struct reader *r, uint64_t n, const char *what)
{
    const uint8_t *p;

    if (n > r->len - r->off) {
        err_at(r->e, r->path, 0, "truncated at byte %zu: %s needs %llu bytes, %zu left", r->off, what,
               (unsigned long long)n, r->len - r->off);
        return NULL;
    }
    p = r->base + r->off;
    r->off += (size_t)n;
    return p;
}

static int rd_u32(struct reader *r, uint32_t *v, const char *what)
{
    const uint8_t *p = take(r, 4, what);
    if (p == NULL)
        return -1;
    memcpy(v, p, 4);
    return 0;
}

static int rd_u64(struct reader *r, uint64_t *v, const char *what)
{
    const uint8_t *p = take(r, 8, what);
    if (p == NULL)
        return -1;
    memcpy(v, p, 8);
    return 0;
}

static int rd_str(struct reader *r, struct gguf_str *s, const char *what)
{
    const uint8_t *p;

    if (rd_u64(r, &s->len, what) < 0 || (p = take(r, s->len, what)) == NULL)
        return -1;
    s->s = (const char *)p;
    return 0;
}

/* Bytes of one element of a fixed-size type; 0 for STRING/ARRAY/unknown. */
static size_t type_size(uint32_t t)
{
    switch (t) {
    case GGUF_TYPE_UINT8:
    case GGUF_TYPE_INT8:
    case GGUF_TYPE_BOOL:
        return 1;
    case GGUF_TYPE_UINT16:
    case GGUF_TYPE_INT16:
        return 2;
    case GGUF_TYPE_UINT32:
    case GGUF_TYPE_INT32:
    case GGUF_TYPE_FLOAT32:
        return 4;
    case GGUF_TYPE_UINT64:
    case GGUF_TYPE_INT64:
    case GGUF_TYPE_FLOAT64:
        return 8;
    }
    return 0;
}

const char *gguf_type_name(enum gguf_type t)
{
    static const char *const names[] = {"uint8", "int8",   "uint16", "int16", "uint32", "int32", "float32",
                                        "bool",  "string", "array",  "uint64", "int64", "float64"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "unknown";
}

const char *ggml_type_name(uint32_t t)
{
    switch (t) {
    case GGML_TYPE_F32:
        return "F32";
    case GGML_TYPE_F16:
        return "F16";
    case 2:
        return "Q4_0";
    case 3:
        return "Q4_1";
    case 6:
        return "Q5_0";
    case 7:
        return "Q5_1";
    case GGML_TYPE_Q8_0:
        return "Q8_0";
    case 10:
        return "Q2_K";
    case 11:
        return "Q3_K";
    case 12:
        return "Q4_K";
    case 13:
        return "Q5_K";
    case 14:
        return "Q6_K";
    case GGML_TYPE_BF16:
        return "BF16";
    }
    return "unsupported";
}

/* A fixed-size value of type T at P, widened. */
static void read_scalar(struct gguf_kv *kv, uint32_t t, const uint8_t *p)
{
    switch (t) {
    case GGUF_TYPE_UINT8:
    case GGUF_TYPE_BOOL:
        kv->v.u = p[0];
        break;
    case GGUF_TYPE_INT8:
        kv->v.i = (int8_t)p[0];
        break;
    case GGUF_TYPE_UINT16: {
        uint16_t v;
        memcpy(&v, p, 2);
        kv->v.u = v;
        break;
    }
    case GGUF_TYPE_INT16: {
        int16_t v;
        memcpy(&v, p, 2);
        kv->v.i = v;
        break;
    }
    case GGUF_TYPE_UINT32: {
        uint32_t v;
        memcpy(&v, p, 4);
        kv->v.u = v;
        break;
    }
    case GGUF_TYPE_INT32: {
        int32_t v;
        memcpy(&v, p, 4);
        kv->v.i = v;
        break;
    }
    case GGUF_TYPE_FLOAT32: {
        float v;
        memcpy(&v, p, 4);
        kv->v.f = v;
        break;
    }
    case GGUF_TYPE_UINT64:
        memcpy(&kv->v.u, p, 8);
        break;
    case GGUF_TYPE_INT64:
        memcpy(&kv->v.i, p, 8);
        break;
    case GGUF_TYPE_FLOAT64:
        memcpy(&kv->v.f, p, 8);
        break;
    }
}

static int is_signed(uint32_t t)
{
    return t == GGUF_TYPE_INT8 || t == GGUF_TYPE_INT16 || t == GGUF_TYPE_INT32 || t == GGUF_TYPE_INT64;
}

static int is_float(uint32_t t)
{
    return t == GGUF_TYPE_FLOAT32 || t == GGUF_TYPE_FLOAT64;
}

static int read_kv(struct reader *r, struct gguf_kv *kv, uint64_t index)
{
    uint32_t t;
    const uint8_t *p;
    char what[64];

    snprintf(what, sizeof what, "metadata key %llu", (unsigned long long)index);
    if (rd_str(r, &kv->key, what) < 0 || rd_u32(r, &t, what) < 0)
        return -1;
    kv->type = (enum gguf_type)t;
    if (t == GGUF_TYPE_STRING)
        return rd_str(r, &kv->v.str, what);
    if (t == GGUF_TYPE_ARRAY) {
        uint32_t et;
        size_t es;
        if (rd_u32(r, &et, what) < 0 || rd_u64(r, &kv->n, what) < 0)
            return -1;
        kv->elem_type = (enum gguf_type)et;
        if (et == GGUF_TYPE_ARRAY)
            return err_at(r->e, r->path, 0, "metadata '%.*s': arrays of arrays are not supported",
                          (int)(kv->key.len > 200 ? 200 : kv->key.len), kv->key.s);
        if (et == GGUF_TYPE_STRING) {
            /* Each string is at least its 8-byte length. */
            if (kv->n > (r->len - r->off) / 8)
                return err_at(r->e, r->path, 0, "metadata '%.*s': %llu strings cannot fit in the %zu bytes left",
                              (int)(kv->key.len > 200 ? 200 : kv->key.len), kv->key.s,
                              (unsigned long long)kv->n, r->len - r->off);
            kv->strs = malloc((size_t)(kv->n > 0 ? kv->n : 1) * sizeof *kv->strs);
            if (kv->strs == NULL)
                return err_set(r->e, ERR_SYSTEM, "%s: out of memory", r->path);
            for (uint64_t i = 0; i < kv->n; i++)
                if (rd_str(r, &kv->strs[i], what) < 0)
                    return -1;
            return 0;
        }
        es = type_size(et);
        if (es == 0)
            return err_at(r->e, r->path, 0, "metadata '%.*s': unknown array element type %u",
                          (int)(kv->key.len > 200 ? 200 : kv->key.len), kv->key.s, et);
        if (kv->n > (r->len - r->off) / es)
            return err_at(r->e, r->path, 0, "truncated: metadata '%.*s': %llu elements of %zu bytes, %zu bytes left",
                          (int)(kv->key.len > 200 ? 200 : kv->key.len), kv->key.s, (unsigned long long)kv->n, es,
                          r->len - r->off);
        kv->arr = take(r, kv->n * es, what);
        return kv->arr == NULL ? -1 : 0;
    }
    if (type_size(t) == 0)
        return err_at(r->e, r->path, 0, "metadata '%.*s': unknown value type %u",
                      (int)(kv->key.len > 200 ? 200 : kv->key.len), kv->key.s, t);
    if ((p = take(r, type_size(t), what)) == NULL)
        return -1;
    read_scalar(kv, t, p);
    return 0;
}

/* Bytes of a tensor of type T with NE: 0 when the type is not one we size. */
static int tensor_bytes(const struct gguf_tensor *t, uint64_t *bytes)
{
    switch (t->type) {
    case GGML_TYPE_F32:
        *bytes = t->n_elements * 4;
        return 0;
    case GGML_TYPE_F16:
    case GGML_TYPE_BF16:
        *bytes = t->n_elements * 2;
        return 0;
    case GGML_TYPE_Q8_0:
        if (t->ne[0] % GGML_Q8_0_BLOCK != 0)
            return -1;
        *bytes = t->n_elements / GGML_Q8_0_BLOCK * GGML_Q8_0_BLOCK_BYTES;
        return 0;
    }
    *bytes = 0;
    return 0;
}

static int str_cmp(const struct gguf_str *a, const struct gguf_str *b)
{
    size_t n = a->len < b->len ? (size_t)a->len : (size_t)b->len;
    int c = n > 0 ? memcmp(a->s, b->s, n) : 0;
    return c != 0 ? c : (a->len > b->len) - (a->len < b->len);
}

static int index_cmp(const void *x, const void *y)
{
    return str_cmp(&((const struct gguf_name_index *)x)->name, &((const struct gguf_name_index *)y)->name);
}

/* Sort IDX (n) by name; the first duplicate name, or NULL. */
static const struct gguf_str *sort_index(struct gguf_name_index *idx, uint64_t n)
{
    qsort(idx, (size_t)n, sizeof *idx, index_cmp);
    for (uint64_t i = 1; i < n; i++)
        if (str_cmp(&idx[i - 1].name, &idx[i].name) == 0)
            return &idx[i].name;
    return NULL;
}

static const struct gguf_name_index *find_index(const struct gguf_name_index *idx, uint64_t n, const char *name)
{
    struct gguf_str key = {name, strlen(name)};
    uint64_t lo = 0, hi = n;

    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        int c = str_cmp(&idx[mid].name, &key);
        if (c == 0)
            return &idx[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int read_tensor(struct reader *r, struct gguf_tensor *t, uint64_t index)
{
    char what[64];

    snprintf(what, sizeof what, "tensor info %llu", (unsigned long long)index);
    if (rd_str(r, &t->name, what) < 0 || rd_u32(r, &t->n_dims, what) < 0)
        return -1;
    if (t->n_dims == 0 || t->n_dims > GGUF_MAX_DIMS)
        return err_at(r->e, r->path, 0, "tensor '%.*s': %u dimensions (1..%d)", (int)(t->name.len > 200 ? 200 : t->name.len),
                      t->name.s, t->n_dims, GGUF_MAX_DIMS);
    t->n_elements = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
        t->ne[d] = 1;
        if (d < t->n_dims && rd_u64(r, &t->ne[d], what) < 0)
            return -1;
        /* Each dimension and the product stay below 2^40: no overflow below. */
        if (t->ne[d] == 0 || t->ne[d] > (1ull << 40) || t->n_elements > (1ull << 40) / t->ne[d])
            return err_at(r->e, r->path, 0, "tensor '%.*s': dimension %u is %llu: empty or absurd",
                          (int)(t->name.len > 200 ? 200 : t->name.len), t->name.s, d, (unsigned long long)t->ne[d]);
        t->n_elements *= t->ne[d];
    }
    if (rd_u32(r, &t->type, what) < 0 || rd_u64(r, &t->offset, what) < 0)
        return -1;
    if (tensor_bytes(t, &t->bytes) < 0)
        return err_at(r->e, r->path, 0, "tensor '%.*s': %s rows of %llu values are not whole blocks of %d",
                      (int)(t->name.len > 200 ? 200 : t->name.len), t->name.s, ggml_type_name(t->type),
                      (unsigned long long)t->ne[0], GGML_Q8_0_BLOCK);
    return 0;
}

int gguf_open(struct gguf *g, const char *path, const uint8_t *data, size_t len, struct err *e)
{
    struct reader r = {data, len, 0, path, e};
    const uint8_t *magic;
    const struct gguf_kv *al;

    memset(g, 0, sizeof *g);
    g->path = path;
    if ((magic = take(&r, 4, "the magic")) == NULL)
        return -1;
    if (memcmp(magic, "GGUF", 4) != 0)
        return err_at(e, path, 0, "not a GGUF file (no GGUF magic)");
    if (rd_u32(&r, &g->version, "the version") < 0)
        return -1;
    if (g->version != 2 && g->version != 3)
        return err_at(e, path, 0, "GGUF version %u: only versions 2 and 3 are read", g->version);
    if (rd_u64(&r, &g->n_tensors, "the tensor count") < 0 || rd_u64(&r, &g->n_kv, "the metadata count") < 0)
        goto fail;
    /* A key/value is at least 8 + 4 + 1 bytes, a tensor info 8 + 4 + 8 + 4 + 8. */
    if (g->n_kv > GGUF_MAX_KV || g->n_kv > (len - r.off) / 13) {
        err_at(e, path, 0, "header: %llu metadata entries cannot fit in the file", (unsigned long long)g->n_kv);
        goto fail;
    }
    if (g->n_tensors > GGUF_MAX_TENSORS || g->n_tensors > (len - r.off) / 32) {
        err_at(e, path, 0, "header: %llu tensors cannot fit in the file", (unsigned long long)g->n_tensors);
        goto fail;
    }
    g->kv = calloc((size_t)g->n_kv + 1, sizeof *g->kv);
    g->tensors = calloc((size_t)g->n_tensors + 1, sizeof *g->tensors);
    g->kv_by_key = calloc((size_t)g->n_kv + 1, sizeof *g->kv_by_key);
    g->tensor_by_name = calloc((size_t)g->n_tensors + 1, sizeof *g->tensor_by_name);
    if (g->kv == NULL || g->tensors == NULL || g->kv_by_key == NULL || g->tensor_by_name == NULL) {
        err_set(e, ERR_SYSTEM, "%s: out of memory", path);
        goto fail;
    }
    for (uint64_t i = 0; i < g->n_kv; i++) {
        if (read_kv(&r, &g->kv[i], i) < 0) {
            g->n_kv = i + 1; /* free what was read */
            goto fail;
        }
        g->kv_by_key[i].name = g->kv[i].key;
        g->kv_by_key[i].i = i;
    }
    {
        const struct gguf_str *dup = sort_index(g->kv_by_key, g->n_kv);
        if (dup != NULL) {
            err_at(e, path, 0, "metadata key '%.*s' appears twice", (int)(dup->len > 200 ? 200 : dup->len), dup->s);
            goto fail;
        }
    }
    g->alignment = 32;
    if ((al = gguf_find(g, "general.alignment")) != NULL) {
        if (al->type != GGUF_TYPE_UINT32 || al->v.u == 0 || (al->v.u & (al->v.u - 1)) != 0 ||
            al->v.u > GGUF_MAX_ALIGNMENT) {
            err_at(e, path, 0, "general.alignment must be a uint32 power of two up to %u", GGUF_MAX_ALIGNMENT);
            goto fail;
        }
        g->alignment = (uint32_t)al->v.u;
    }
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (read_tensor(&r, &g->tensors[i], i) < 0)
            goto fail;
    g->data_start = ((uint64_t)r.off + g->alignment - 1) / g->alignment * g->alignment;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        struct gguf_tensor *t = &g->tensors[i];
        g->tensor_by_name[i].name = t->name;
        g->tensor_by_name[i].i = i;
        if (t->offset % g->alignment != 0) {
            err_at(e, path, 0, "tensor '%.*s': offset %llu is not a multiple of the alignment %u",
                   (int)(t->name.len > 200 ? 200 : t->name.len), t->name.s, (unsigned long long)t->offset,
                   g->alignment);
            goto fail;
        }
        if (t->bytes == 0)
            continue; /* a type we do not read: its bounds are unknown; refused if used */
        if (g->data_start > len || t->offset > len - g->data_start || t->bytes > len - g->data_start - t->offset) {
            err_at(e, path, 0, "truncated: tensor '%.*s' (%s, %llu bytes at data offset %llu) ends past the file's %zu bytes",
                   (int)(t->name.len > 200 ? 200 : t->name.len), t->name.s, ggml_type_name(t->type),
                   (unsigned long long)t->bytes, (unsigned long long)t->offset, len);
            goto fail;
        }
        t->data = data + g->data_start + t->offset;
    }
    {
        const struct gguf_str *dup = sort_index(g->tensor_by_name, g->n_tensors);
        if (dup != NULL) {
            err_at(e, path, 0, "tensor '%.*s' appears twice", (int)(dup->len > 200 ? 200 : dup->len), dup->s);
            goto fail;
        }
    }
    return 0;
fail:
    gguf_close(g);
    return -1;
}

void gguf_close(struct gguf *g)
{
    if (g->kv != NULL)
        for (uint64_t i = 0; i < g->n_kv; i++)
            free(g->kv[i].strs);
    free(g->kv);
    free(g->tensors);
    free(g->kv_by_key);
    free(g->tensor_by_name);
    memset(g, 0, sizeof *g);
}

int gguf_str_eq(const struct gguf_str *a, const char *s)
{
    size_t n = strlen(s);
    return a->len == n && memcmp(a->s, s, n) == 0;
}

const struct gguf_kv *gguf_find(const struct gguf *g, const char *key)
{
    const struct gguf_name_index *x = find_index(g->kv_by_key, g->n_kv, key);
    return x != NULL ? &g->kv[x->i] : NULL;
}

const struct gguf_tensor *gguf_find_tensor(const struct gguf *g, const char *name)
{
    const struct gguf_name_index *x = find_index(g->tensor_by_name, g->n_tensors, name);
    return x != NULL ? &g->tensors[x->i] : NULL;
}

int gguf_get_int(const struct gguf *g, const char *key, int64_t min, int64_t max, int64_t *out, struct err *e)
{
    const struct gguf_kv *kv = gguf_find(g, key);
    int64_t v;

    if (kv == NULL)
        return 0;
    if (kv->type == GGUF_TYPE_ARRAY || kv->type == GGUF_TYPE_STRING || is_float(kv->type) ||
        kv->type == GGUF_TYPE_BOOL)
        return err_at(e, g->path, 0, "metadata %s is a %s, not an integer", key, gguf_type_name(kv->type));
    if (is_signed(kv->type))
        v = kv->v.i;
    else if (kv->v.u > INT64_MAX)
        return err_at(e, g->path, 0, "metadata %s is %llu: not in %lld..%lld", key, (unsigned long long)kv->v.u,
                      (long long)min, (long long)max);
    else
        v = (int64_t)kv->v.u;
    if (v < min || v > max)
        return err_at(e, g->path, 0, "metadata %s is %lld: not in %lld..%lld", key, (long long)v, (long long)min,
                      (long long)max);
    *out = v;
    return 1;
}

int gguf_get_float(const struct gguf *g, const char *key, double *out, struct err *e)
{
    const struct gguf_kv *kv = gguf_find(g, key);

    if (kv == NULL)
        return 0;
    if (is_float(kv->type))
        *out = kv->v.f;
    else if (is_signed(kv->type))
        *out = (double)kv->v.i;
    else if (kv->type <= GGUF_TYPE_UINT32 || kv->type == GGUF_TYPE_UINT64)
        *out = (double)kv->v.u;
    else
        return err_at(e, g->path, 0, "metadata %s is a %s, not a number", key, gguf_type_name(kv->type));
    if (!isfinite(*out))
        return err_at(e, g->path, 0, "metadata %s is not a finite number", key);
    return 1;
}

int gguf_get_string(const struct gguf *g, const char *key, char **out, struct err *e)
{
    const struct gguf_kv *kv = gguf_find(g, key);

    if (kv == NULL)
        return 0;
    if (kv->type != GGUF_TYPE_STRING)
        return err_at(e, g->path, 0, "metadata %s is a %s, not a string", key, gguf_type_name(kv->type));
    if (memchr(kv->v.str.s, '\0', (size_t)kv->v.str.len) != NULL)
        return err_at(e, g->path, 0, "metadata %s has a NUL byte in it", key);
    *out = malloc((size_t)kv->v.str.len + 1);
    if (*out == NULL)
        return err_set(e, ERR_SYSTEM, "%s: out of memory", g->path);
    memcpy(*out, kv->v.str.s, (size_t)kv->v.str.len);
    (*out)[kv->v.str.len] = '\0';
    return 1;
}

int64_t gguf_arr_int(const struct gguf_kv *kv, uint64_t i)
{
    struct gguf_kv one;
    size_t es = type_size(kv->elem_type);

    read_scalar(&one, kv->elem_type, kv->arr + i * es);
    if (is_float(kv->elem_type))
        return isfinite(one.v.f) && fabs(one.v.f) < 9e18 ? (int64_t)one.v.f : 0;
    return is_signed(kv->elem_type) ? one.v.i : (int64_t)one.v.u;
}

double gguf_arr_float(const struct gguf_kv *kv, uint64_t i)
{
    struct gguf_kv one;
    size_t es = type_size(kv->elem_type);

    read_scalar(&one, kv->elem_type, kv->arr + i * es);
    if (is_float(kv->elem_type))
        return one.v.f;
    return is_signed(kv->elem_type) ? (double)one.v.i : (double)one.v.u;
}

float gguf_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ffu;
    float f;

    if (exp == 0) {
        f = ldexpf((float)mant, -24); /* zero or subnormal: mant * 2^-24 */
        return sign ? -f : f;
    }
    if (exp == 31) {
        uint32_t u = sign | 0x7f800000u | (mant << 13);
        memcpy(&f, &u, 4);
        return f;
    }
    {
        uint32_t u = sign | ((exp + 112) << 23) | (mant << 13);
        memcpy(&f, &u, 4);
        return f;
    }
}
