/* gguf.h -- a reader for GGUF files (versions 2 and 3): the header, the
 * metadata key/value pairs of every type, the tensor infos and where each
 * tensor's data lies.
 *
 * The reader works on the whole file in memory (the caller maps it) and
 * trusts nothing in it: every count, length and offset is checked against
 * the bytes that are there before it is used, sizes are computed without
 * overflow, and duplicate keys or tensor names are refused.  Strings point
 * into the file (not NUL-terminated); nothing is copied but the indexes.
 *
 * Layout (little-endian): "GGUF", uint32 version, uint64 tensor_count,
 * uint64 kv_count; kv_count times (string key, uint32 type, value);
 * tensor_count times (string name, uint32 n_dims, uint64 ne[n_dims],
 * uint32 ggml_type, uint64 offset); padding to general.alignment (default
 * 32); the tensor data, each tensor at data_start + offset.  A string is a
 * uint64 length and the bytes; an array a uint32 element type, a uint64
 * count and the elements.  ne[0] is the innermost (contiguous) dimension:
 * a weight matrix (n_out, n_in) has ne = {n_in, n_out}. */
#ifndef LLM_GGUF_H
#define LLM_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

enum gguf_type {
    GGUF_TYPE_UINT8 = 0,
    GGUF_TYPE_INT8 = 1,
    GGUF_TYPE_UINT16 = 2,
    GGUF_TYPE_INT16 = 3,
    GGUF_TYPE_UINT32 = 4,
    GGUF_TYPE_INT32 = 5,
    GGUF_TYPE_FLOAT32 = 6,
    GGUF_TYPE_BOOL = 7,
    GGUF_TYPE_STRING = 8,
    GGUF_TYPE_ARRAY = 9,
    GGUF_TYPE_UINT64 = 10,
    GGUF_TYPE_INT64 = 11,
    GGUF_TYPE_FLOAT64 = 12,
};

/* ggml tensor types this project reads (others are listed by number). */
enum ggml_type {
    GGML_TYPE_F32 = 0,
    GGML_TYPE_F16 = 1,
    GGML_TYPE_Q8_0 = 8,
    GGML_TYPE_BF16 = 30,
};
#define GGML_Q8_0_BLOCK 32       /* values per Q8_0 block */
#define GGML_Q8_0_BLOCK_BYTES 34 /* float16 scale + 32 int8 */

struct gguf_str {
    const char *s; /* into the file; not NUL-terminated */
    uint64_t len;
};

struct gguf_kv {
    struct gguf_str key;
    enum gguf_type type;
    union {
        uint64_t u;          /* UINT8..UINT64, BOOL */
        int64_t i;           /* INT8..INT64 */
        double f;            /* FLOAT32, FLOAT64 */
        struct gguf_str str; /* STRING */
    } v;
    /* ARRAY: ELEM_TYPE elements; fixed-size ones at ARR (unaligned: read
     * with the gguf_arr_* functions), strings indexed in STRS. */
    enum gguf_type elem_type;
    uint64_t n;
    const uint8_t *arr;
    struct gguf_str *strs;
};

struct gguf_tensor {
    struct gguf_str name;
    uint32_t n_dims;
    uint64_t ne[4];        /* unused dimensions are 1 */
    uint64_t n_elements;
    uint32_t type;         /* enum ggml_type */
    uint64_t offset;       /* from the start of the data section */
    uint64_t bytes;        /* 0 for a type this reader does not size */
    const uint8_t *data;   /* NULL for such a type */
};

/* A name and the index it belongs to, for sorted lookups. */
struct gguf_name_index {
    struct gguf_str name;
    uint64_t i;
};

struct gguf {
    const char *path;      /* for messages */
    uint32_t version;
    uint32_t alignment;
    uint64_t n_kv;
    struct gguf_kv *kv;
    uint64_t n_tensors;
    struct gguf_tensor *tensors;
    struct gguf_name_index *kv_by_key;    /* sorted by key */
    struct gguf_name_index *tensor_by_name; /* sorted by name */
    uint64_t data_start;   /* file offset of the data section */
};

/* Parse the LEN bytes at DATA (the whole file, named PATH in messages).
 * The gguf keeps pointers into DATA.  On error G is left empty
 * (gguf_close is safe) and E says "PATH: what is wrong" (ERR_INPUT). */
int gguf_open(struct gguf *g, const char *path, const uint8_t *data, size_t len, struct err *e);
void gguf_close(struct gguf *g);

const struct gguf_kv *gguf_find(const struct gguf *g, const char *key);
const struct gguf_tensor *gguf_find_tensor(const struct gguf *g, const char *name);

/* Typed reads of metadata KEY.  Return 1 when found and converted, 0 when
 * absent, -1 (E set, naming the file and key) when present with a type or
 * value that does not fit. */
int gguf_get_int(const struct gguf *g, const char *key, int64_t min, int64_t max, int64_t *out, struct err *e);
int gguf_get_float(const struct gguf *g, const char *key, double *out, struct err *e);
/* A string copied into a new NUL-terminated buffer (*OUT, caller frees);
 * a string with a NUL byte in it is refused. */
int gguf_get_string(const struct gguf *g, const char *key, char **out, struct err *e);
/* Does the string value of KEY equal S? */
int gguf_str_eq(const struct gguf_str *a, const char *s);

/* Element I of a fixed-size array, converted. */
int64_t gguf_arr_int(const struct gguf_kv *kv, uint64_t i);
double gguf_arr_float(const struct gguf_kv *kv, uint64_t i);

const char *gguf_type_name(enum gguf_type t);
const char *ggml_type_name(uint32_t t);

/* float16 (IEEE half) to float32, exactly. */
float gguf_f16_to_f32(uint16_t h);

#endif
