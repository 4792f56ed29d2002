/* conf.h -- YAML configuration documents (scenarios, generator specs) on
 * libfyaml, with every error located.
 *
 * A struct conf is one parsed document plus where it came from.  Overrides
 * ("a.b[0].c=value", the value read as YAML) are applied to the tree before
 * it is read, so every reader sees one merged document.  Readers walk mappings
 * with the typed getters below; each getter returns 1 when the key is present
 * and valid, 0 when it is absent (the output is left untouched, so callers
 * preset defaults), and -1 on error with e set to "FILE:LINE: KEY: message"
 * (or "--set KEY=VALUE: message" for a value that came from an override).
 * conf_check_keys() refuses keys a reader does not know, so a typo is an error,
 * not a silently ignored setting. */
#ifndef LLM_CONF_H
#define LLM_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "common/err.h"

struct conf;
struct conf_node; /* a node of the document: mapping, sequence or scalar */

/* Parse a file or a string.  NULL on error (syntax errors carry the line). */
struct conf *conf_load_file(const char *path, struct err *e);
struct conf *conf_load_string(const char *text, const char *origin, struct err *e);
void conf_free(struct conf *c);

/* The file name (or origin) and its directory, for resolving relative paths. */
const char *conf_origin(const struct conf *c);
const char *conf_dir(const struct conf *c);

/* Apply "key.path=value": mapping keys separated by '.', sequence items as
 * [N].  Missing mappings along the path are created; an index may address an
 * existing item or append at the end. */
int conf_set(struct conf *c, const char *assignment, struct err *e);

struct conf_node *conf_root(struct conf *c);

/* The node at "a.b[0].c" (the path syntax of conf_set), or NULL when the
 * path is malformed or leads nowhere.  Nothing is created. */
struct conf_node *conf_lookup(struct conf *c, const char *path);

/* Write the document, overrides applied, to OUT as block YAML (comments are
 * not kept).  -1 with e set when libfyaml cannot write it. */
int conf_emit(const struct conf *c, FILE *out, struct err *e);

/* Resolve a file name PATH read from node N into BUF: absolute names and "-"
 * are kept; a relative name is taken relative to the document's directory,
 * or to the current directory when N came from an override (--set), since
 * that is where the user typed it. */
void conf_path(const struct conf *c, const struct conf_node *n, const char *path, char *buf, size_t len);

bool conf_is_map(const struct conf_node *n);
bool conf_is_seq(const struct conf_node *n);
bool conf_is_scalar(const struct conf_node *n);

/* "FILE:LINE" or "--set ..." for a node. */
void conf_where(const struct conf *c, const struct conf_node *n, char *buf, size_t len);
/* Set an input error located at node n; returns -1. */
int conf_error(const struct conf *c, const struct conf_node *n, struct err *e, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Refuse any key of mapping MAP not in the NULL-terminated list ALLOWED.
 * WHAT names the section in the message ("cluster"). */
int conf_check_keys(const struct conf *c, const struct conf_node *map, const char *what,
                    const char *const *allowed, struct err *e);

/* The value node for KEY, or NULL. */
struct conf_node *conf_get(const struct conf_node *map, const char *key);

int conf_get_map(const struct conf *c, const struct conf_node *map, const char *key,
                 struct conf_node **out, struct err *e);
int conf_get_seq(const struct conf *c, const struct conf_node *map, const char *key,
                 struct conf_node **out, struct err *e);
/* The string stays valid while c lives. */
int conf_get_str(const struct conf *c, const struct conf_node *map, const char *key,
                 const char **out, struct err *e);
int conf_get_double(const struct conf *c, const struct conf_node *map, const char *key,
                    double *out, struct err *e);
/* Like conf_get_double but refuses negative values. */
int conf_get_nonneg(const struct conf *c, const struct conf_node *map, const char *key,
                    double *out, struct err *e);
int conf_get_long(const struct conf *c, const struct conf_node *map, const char *key,
                  long *out, struct err *e);
int conf_get_bool(const struct conf *c, const struct conf_node *map, const char *key,
                  bool *out, struct err *e);
/* A duration (see duration.h): a number of seconds or "30s", "5m". */
int conf_get_duration(const struct conf *c, const struct conf_node *map, const char *key,
                      double *out_s, struct err *e);
/* One of NAMES (NULL-terminated); *out is its index. */
int conf_get_enum(const struct conf *c, const struct conf_node *map, const char *key,
                  const char *const *names, int *out, struct err *e);

/* Mappings in document order: the number of pairs, and pair I's key (NULL
 * when out of range or not a plain string) with its value in *value. */
size_t conf_map_len(const struct conf_node *map);
const char *conf_map_at(const struct conf_node *map, size_t i, struct conf_node **value);

size_t conf_seq_len(const struct conf_node *seq);
struct conf_node *conf_seq_at(const struct conf_node *seq, size_t i);
/* Scalar node as a string / number, WHAT naming it for messages. */
int conf_node_str(const struct conf *c, const struct conf_node *n, const char *what,
                  const char **out, struct err *e);
int conf_node_double(const struct conf *c, const struct conf_node *n, const char *what,
                     double *out, struct err *e);

#endif
