/* tune.c -- see tune.h.  A tune run: read the scenario and its tune section,
 * measure the workload, search (or evaluate one shard of the grid), write
 * the outputs.  A merge: read the shard files of a sweep and write the
 * outputs one run would have. */
#include "sim/tune_int.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "common/log.h"
#include "common/path.h"
#include "sim/scenario.h"
#include "workloads/trace.h"

#define TUNE_SHARD_MAGIC "# llmsim tune shard v1"
#define TUNE_LINE_MAX 8192

/* XXH64 of the scenario file's bytes and the --set overrides. */
static int tune_fingerprint(const char *path, char *const *sets, int nsets, uint64_t *out, struct err *e)
{
    XXH64_state_t *st = XXH64_createState();
    FILE *f = fopen(path, "rb");
    char buf[65536];
    size_t n;
    int i;

    if (st == NULL || f == NULL) {
        if (f)
            fclose(f);
        XXH64_freeState(st);
        return st == NULL ? err_set(e, ERR_SYSTEM, "out of memory") : err_sys(e, errno, "%s", path);
    }
    XXH64_reset(st, 0);
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        XXH64_update(st, buf, n);
    fclose(f);
    for (i = 0; i < nsets; i++)
        XXH64_update(st, sets[i], strlen(sets[i]) + 1);
    *out = XXH64_digest(st);
    XXH64_freeState(st);
    return 0;
}

/* The most requests kept in memory (32 bytes each). */
#define TUNE_MAX_CACHED 4000000

/* Whether every run reads the same requests from the workload: a trace file
 * (a generator's stream follows the seed), not thinned at random
 * (rate_scale with a fraction draws from the seed), and no knob in the
 * workload section. */
static bool tune_cacheable(const struct tune_ctx *ctx, struct scenario *sc)
{
    struct conf_node *rs = conf_lookup(sc->conf, "workload.rate_scale");
    const char *text;
    struct err ignore = {0};
    double v;
    size_t k;

    if (ctx->opt->reread || conf_lookup(sc->conf, "workload.trace") == NULL)
        return false;
    for (k = 0; k < ctx->spec.nknobs; k++)
        if (strncmp(ctx->spec.knobs[k].key, "workload", 8) == 0)
            return false;
    if (rs != NULL) {
        if (conf_node_str(sc->conf, rs, "rate_scale", &text, &ignore) < 0)
            return false;
        v = strtod(text, NULL);
        if (v != floor(v))
            return false;
    }
    return true;
}

/* The workload's length: read it through once (a generator is generated),
 * keeping the requests in ctx when every run reads the same ones. */
static int tune_span(struct tune_ctx *ctx, struct scenario *sc, struct err *e)
{
    struct trace_reader *tr = workload_open(sc->conf, sc->workload, sc->seed, e);
    bool keep = tune_cacheable(ctx, sc);
    struct trace_request rq;
    size_t cap = 0;
    int rc;

    ctx->span_s = 0;
    if (tr == NULL)
        return -1;
    while ((rc = trace_next(tr, &rq, e)) > 0) {
        ctx->span_s = rq.arrival_s;
        if (!keep)
            continue;
        if (ctx->nrequests == TUNE_MAX_CACHED) {
            log_info("tune: over %d requests: the workload is read again for every simulation", TUNE_MAX_CACHED);
            keep = false;
            free(ctx->requests);
            ctx->requests = NULL;
            ctx->nrequests = 0;
            continue;
        }
        if (ctx->nrequests == cap) {
            struct trace_request *n;
            cap = cap ? 2 * cap : 4096;
            n = realloc(ctx->requests, cap * sizeof(*n));
            if (n == NULL) {
                trace_close(tr);
                return err_set(e, ERR_SYSTEM, "out of memory");
            }
            ctx->requests = n;
        }
        ctx->requests[ctx->nrequests++] = rq;
    }
    trace_close(tr);
    if (rc < 0 || !keep) {
        free(ctx->requests);
        ctx->requests = NULL;
        ctx->nrequests = 0;
    } else if (ctx->requests == NULL) {
        /* An empty workload: a non-NULL empty array still replaces it. */
        ctx->requests = malloc(sizeof(*ctx->requests));
        if (ctx->requests == NULL)
            return err_set(e, ERR_SYSTEM, "out of memory");
    }
    return rc;
}

static int tune_ctx_init(struct tune_ctx *ctx, const char *path, char *const *sets, int nsets,
                         const struct tune_options *opt, struct err *e)
{
    struct scenario *sc;

    memset(ctx, 0, sizeof(*ctx));
    ctx->path = path;
    ctx->opt = opt;
    ctx->sets = (char **)sets;
    ctx->nsets = nsets;
    if (realpath(path, ctx->real_path) == NULL)
        return err_sys(e, errno, "%s", path);
    if (tune_spec_load(path, sets, nsets, &ctx->spec, e) < 0)
        return -1;
    sc = scenario_load(ctx->real_path, sets, nsets, e);
    if (sc == NULL)
        return -1;
    snprintf(ctx->name, sizeof(ctx->name), "%s", sc->name);
    ctx->base_seed = sc->seed;
    /* The workload is read ahead only when the search takes prefixes of it
     * or the runs can share it. */
    if ((tune_method_resolve(ctx) == TUNE_HALVING || tune_cacheable(ctx, sc)) && tune_span(ctx, sc, e) < 0) {
        scenario_free(sc);
        return -1;
    }
    scenario_free(sc);
    if (!(ctx->span_s > 0) && tune_method_resolve(ctx) == TUNE_HALVING)
        return err_set(e, ERR_INPUT, "%s: the workload has no length to take prefixes of; use method: grid", path);
    return tune_fingerprint(ctx->real_path, sets, nsets, &ctx->fingerprint, e);
}

/* ---- shards ----------------------------------------------------------------- */

static void tune_clean_text(char *s)
{
    for (; *s; s++)
        if (*s == '\t' || *s == '\n' || *s == '\r')
            *s = ' ';
}

int tune_shard_write(const struct tune_ctx *ctx, const struct tune_job *jobs, size_t njobs, struct err *e)
{
    char path[4096], tmp[4200];
    FILE *f;
    size_t i;
    int k;

    snprintf(path, sizeof(path), "%s/shard-%d-of-%d.tsv", ctx->opt->outdir, ctx->opt->shard_index,
             ctx->opt->shard_count);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "w");
    if (f == NULL)
        return err_sys(e, errno, "%s", tmp);
    fprintf(f, "%s\nscenario\t%s\nfingerprint\t%016" PRIx64 "\nshard\t%d\t%d\nitems\t%zu\nseeds\t%d\n",
            TUNE_SHARD_MAGIC, ctx->real_path, ctx->fingerprint, ctx->opt->shard_index, ctx->opt->shard_count,
            tune_grid_items(ctx), ctx->spec.seeds);
    for (k = 0; k < ctx->nsets; k++) {
        char s[TUNE_LINE_MAX - 8];
        snprintf(s, sizeof(s), "%s", ctx->sets[k]);
        tune_clean_text(s);
        fprintf(f, "set\t%s\n", s);
    }
    for (i = 0; i < njobs; i++) {
        char err[sizeof(jobs[i].error)];
        fprintf(f, "job\t%ld\t%d\t%d", jobs[i].cand, jobs[i].seed_k, jobs[i].ok ? 1 : 0);
        for (k = 0; k < TM_N; k++)
            fprintf(f, "\t%.17g", jobs[i].m[k]);
        snprintf(err, sizeof(err), "%s", jobs[i].ok ? "" : jobs[i].error);
        tune_clean_text(err);
        fprintf(f, "\t%s\n", err);
    }
    if (fflush(f) != 0 || ferror(f)) {
        fclose(f);
        return err_sys(e, errno ? errno : EIO, "%s", tmp);
    }
    if (fclose(f) != 0)
        return err_sys(e, errno, "%s", tmp);
    if (rename(tmp, path) != 0)
        return err_sys(e, errno, "%s", path);
    return 0;
}

/* What a shard file says about its sweep. */
struct tune_shard_head {
    char scenario[4096];
    uint64_t fingerprint;
    int index, count, seeds;
    size_t items;
    char **sets;
    int nsets;
};

static void tune_head_free(struct tune_shard_head *h)
{
    tune_sets_free(h->sets, (size_t)h->nsets);
    h->sets = NULL;
    h->nsets = 0;
}

static int tune_parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;

    errno = 0;
    *out = strtol(s, &end, 10);
    return (*s == '\0' || *end != '\0' || errno || *out < lo || *out > hi) ? -1 : 0;
}

/* Read the file's jobs into JOBS (ITEMS x SEEDS, indexed by item and seed),
 * marking SEEN; with JOBS NULL, read only the head. */
static int tune_shard_read(const char *path, struct tune_shard_head *h, struct tune_job *jobs, bool *seen,
                           struct err *e)
{
    FILE *f = fopen(path, "r");
    char line[TUNE_LINE_MAX];
    long lineno = 0;
    int rc = -1;

    memset(h, 0, sizeof(*h));
    h->index = -1;
    if (f == NULL)
        return err_sys(e, errno, "%s", path);
    while (fgets(line, sizeof(line), f) != NULL) {
        char *field[TM_N + 6], *p = line;
        size_t n = strlen(line), nf = 0;
        long a, b, c;

        lineno++;
        if (n == sizeof(line) - 1 && line[n - 1] != '\n') {
            err_at(e, path, lineno, "line longer than %d bytes", TUNE_LINE_MAX - 2);
            goto out;
        }
        if (n > 0 && line[n - 1] == '\n')
            line[--n] = '\0';
        if (lineno == 1) {
            if (strcmp(line, TUNE_SHARD_MAGIC) != 0) {
                err_at(e, path, 1, "not an llmsim tune shard file (expected '%s')", TUNE_SHARD_MAGIC);
                goto out;
            }
            continue;
        }
        while (nf < sizeof(field) / sizeof(field[0])) {
            field[nf++] = p;
            p = strchr(p, '\t');
            if (p == NULL)
                break;
            *p++ = '\0';
        }
        if (p != NULL) {
            err_at(e, path, lineno, "too many fields");
            goto out;
        }
        if (strcmp(field[0], "scenario") == 0 && nf == 2 && strlen(field[1]) < sizeof(h->scenario)) {
            snprintf(h->scenario, sizeof(h->scenario), "%s", field[1]);
        } else if (strcmp(field[0], "fingerprint") == 0 && nf == 2 && strlen(field[1]) == 16 &&
                   strspn(field[1], "0123456789abcdef") == 16) {
            h->fingerprint = strtoull(field[1], NULL, 16);
        } else if (strcmp(field[0], "shard") == 0 && nf == 3 && tune_parse_long(field[2], 1, 100000, &b) == 0 &&
                   tune_parse_long(field[1], 0, b - 1, &a) == 0) {
            h->index = (int)a;
            h->count = (int)b;
        } else if (strcmp(field[0], "items") == 0 && nf == 2 &&
                   tune_parse_long(field[1], 1, (long)TUNE_MAX_CANDIDATES + 1, &a) == 0) {
            h->items = (size_t)a;
        } else if (strcmp(field[0], "seeds") == 0 && nf == 2 && tune_parse_long(field[1], 1, TUNE_MAX_SEEDS, &a) == 0) {
            h->seeds = (int)a;
        } else if (strcmp(field[0], "set") == 0 && nf == 2) {
            char **s = realloc(h->sets, ((size_t)h->nsets + 1) * sizeof(*s));
            if (s == NULL || (s[h->nsets] = strdup(field[1])) == NULL) {
                if (s)
                    h->sets = s;
                err_set(e, ERR_SYSTEM, "out of memory");
                goto out;
            }
            h->sets = s;
            h->nsets++;
        } else if (strcmp(field[0], "job") == 0 && nf == TM_N + 5) {
            struct tune_job *j;
            size_t slot;
            int k;

            if (jobs == NULL)
                continue;
            if (h->items == 0 || h->seeds == 0 || tune_parse_long(field[1], -1, (long)h->items - 2, &a) < 0 ||
                tune_parse_long(field[2], 0, h->seeds - 1, &b) < 0 || tune_parse_long(field[3], 0, 1, &c) < 0) {
                err_at(e, path, lineno, "job: bad candidate, seed or status (or job before items/seeds)");
                goto out;
            }
            slot = (size_t)(a + 1) * (size_t)h->seeds + (size_t)b;
            if ((a + 1) % h->count != h->index) {
                err_at(e, path, lineno, "job: candidate %ld is not in shard %d of %d", a, h->index, h->count);
                goto out;
            }
            if (seen[slot]) {
                err_at(e, path, lineno, "job: candidate %ld seed %ld given twice", a, b);
                goto out;
            }
            j = &jobs[slot];
            j->cand = a;
            j->seed_k = (int)b;
            j->fidelity = 1.0;
            j->ok = c == 1;
            for (k = 0; k < TM_N; k++) {
                char *end;
                j->m[k] = strtod(field[4 + k], &end);
                if (*field[4 + k] == '\0' || *end != '\0' || isinf(j->m[k])) {
                    err_at(e, path, lineno, "job: %s: not a number: '%.40s'", tune_metric_names[k], field[4 + k]);
                    goto out;
                }
            }
            snprintf(j->error, sizeof(j->error), "%s", field[TM_N + 4]);
            seen[slot] = true;
        } else {
            err_at(e, path, lineno, "unexpected line '%.60s'", field[0]);
            goto out;
        }
    }
    if (ferror(f)) {
        err_sys(e, EIO, "%s", path);
        goto out;
    }
    if (h->scenario[0] == '\0' || h->index < 0 || h->items == 0 || h->seeds == 0 || h->fingerprint == 0) {
        err_at(e, path, 0, "incomplete head (scenario, fingerprint, shard, items, seeds)");
        goto out;
    }
    rc = 0;
out:
    fclose(f);
    if (rc < 0)
        tune_head_free(h);
    return rc;
}

/* ---- runs --------------------------------------------------------------- */

static int tune_shard_run(struct tune_ctx *ctx, struct err *e)
{
    size_t items = tune_grid_items(ctx), i, n = 0;
    int s, seeds = ctx->spec.seeds, rc;
    struct tune_job *jobs;

    if (tune_method_resolve(ctx) != TUNE_GRID)
        return err_set(e, ERR_INPUT, "%s: tune: --shard evaluates a slice of the grid; this scenario asks for "
                       "method: halving (use method: grid or auto)", ctx->path);
    jobs = calloc((items / (size_t)ctx->opt->shard_count + 1) * (size_t)seeds, sizeof(*jobs));
    if (jobs == NULL)
        return err_set(e, ERR_SYSTEM, "out of memory");
    for (i = (size_t)ctx->opt->shard_index; i < items; i += (size_t)ctx->opt->shard_count)
        for (s = 0; s < seeds; s++) {
            jobs[n].cand = tune_grid_item_cand(i);
            jobs[n].fidelity = 1.0;
            jobs[n++].seed_k = s;
        }
    rc = tune_eval(ctx, jobs, n, e);
    if (rc == 0)
        rc = tune_shard_write(ctx, jobs, n, e);
    if (rc == 0 && !ctx->opt->quiet)
        printf("%s: shard %d of %d: %zu simulations of %zu candidates written to %s/shard-%d-of-%d.tsv\n", ctx->name,
               ctx->opt->shard_index, ctx->opt->shard_count, n, n / (size_t)seeds, ctx->opt->outdir,
               ctx->opt->shard_index, ctx->opt->shard_count);
    free(jobs);
    return rc;
}

int tune_run(const char *path, char *const *sets, int nsets, const struct tune_options *opt, struct err *e)
{
    struct tune_ctx ctx;
    struct tune_result r;
    int rc = -1;

    memset(&r, 0, sizeof(r));
    if (path_mkdirs(opt->outdir, e) < 0)
        return -1;
    if (tune_ctx_init(&ctx, path, sets, nsets, opt, e) < 0)
        goto out;
    if (opt->shard_count > 0) {
        rc = tune_shard_run(&ctx, e);
        goto out;
    }
    if (tune_search(&ctx, &r, e) < 0)
        goto out;
    rc = tune_write_outputs(&ctx, &r, e);
out:
    tune_result_free(&r);
    tune_spec_free(&ctx.spec);
    free(ctx.requests);
    return rc;
}

static int tune_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The shard files in DIR, appended to *FILES. */
static int tune_list_shards(const char *dir, char ***files, size_t *n, struct err *e)
{
    DIR *d = opendir(dir);
    struct dirent *de;

    if (d == NULL)
        return err_sys(e, errno, "%s", dir);
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        char **f;
        if (strncmp(de->d_name, "shard-", 6) != 0 || len < 10 || strcmp(de->d_name + len - 4, ".tsv") != 0)
            continue;
        f = realloc(*files, (*n + 1) * sizeof(*f));
        if (f == NULL) {
            closedir(d);
            return err_set(e, ERR_SYSTEM, "out of memory");
        }
        *files = f;
        f[*n] = malloc(strlen(dir) + len + 2);
        if (f[*n] == NULL) {
            closedir(d);
            return err_set(e, ERR_SYSTEM, "out of memory");
        }
        sprintf(f[*n], "%s/%s", dir, de->d_name);
        (*n)++;
    }
    closedir(d);
    return 0;
}

int tune_merge(char *const *dirs, int ndirs, const struct tune_options *opt, struct err *e)
{
    struct tune_shard_head first, h;
    struct tune_ctx ctx;
    struct tune_result r;
    struct tune_job *jobs = NULL;
    bool *seen = NULL, *shard_seen = NULL;
    char **files = NULL;
    size_t nfiles = 0, i, total;
    int rc = -1, d;
    uint64_t fp;

    memset(&first, 0, sizeof(first));
    memset(&ctx, 0, sizeof(ctx));
    memset(&r, 0, sizeof(r));
    for (d = 0; d < ndirs; d++)
        if (tune_list_shards(dirs[d], &files, &nfiles, e) < 0)
            goto out;
    if (nfiles == 0) {
        err_set(e, ERR_INPUT, "--merge: no shard-I-of-N.tsv files in the directories given");
        goto out;
    }
    qsort(files, nfiles, sizeof(*files), tune_cmp_str);
    if (tune_shard_read(files[0], &first, NULL, NULL, e) < 0)
        goto out;
    total = first.items * (size_t)first.seeds;
    if (total > 100000000) {
        err_set(e, ERR_INPUT, "%s: %zu candidates x %d seeds: too many to merge", files[0], first.items, first.seeds);
        goto out;
    }
    jobs = calloc(total, sizeof(*jobs));
    seen = calloc(total, sizeof(*seen));
    shard_seen = calloc((size_t)first.count, sizeof(*shard_seen));
    if (jobs == NULL || seen == NULL || shard_seen == NULL) {
        err_set(e, ERR_SYSTEM, "out of memory");
        goto out;
    }
    for (i = 0; i < nfiles; i++) {
        int k;
        if (tune_shard_read(files[i], &h, jobs, seen, e) < 0)
            goto out;
        if (h.fingerprint != first.fingerprint || h.count != first.count || h.items != first.items ||
            h.seeds != first.seeds || strcmp(h.scenario, first.scenario) != 0 || h.nsets != first.nsets) {
            err_set(e, ERR_INPUT, "%s: from another sweep than %s (scenario, overrides or shard count differ)",
                    files[i], files[0]);
            tune_head_free(&h);
            goto out;
        }
        for (k = 0; k < h.nsets; k++)
            if (strcmp(h.sets[k], first.sets[k]) != 0) {
                err_set(e, ERR_INPUT, "%s: --set %s differs from %s", files[i], h.sets[k], files[0]);
                tune_head_free(&h);
                goto out;
            }
        if (shard_seen[h.index]) {
            err_set(e, ERR_INPUT, "%s: shard %d of %d is given twice", files[i], h.index, h.count);
            tune_head_free(&h);
            goto out;
        }
        shard_seen[h.index] = true;
        tune_head_free(&h);
    }
    for (d = 0; d < first.count; d++)
        if (!shard_seen[d]) {
            err_set(e, ERR_INPUT, "--merge: shard %d of %d is missing", d, first.count);
            goto out;
        }
    for (i = 0; i < total; i++)
        if (!seen[i]) {
            err_set(e, ERR_INPUT, "--merge: candidate %ld seed %zu is missing from shard %zu",
                    tune_grid_item_cand(i / (size_t)first.seeds), i % (size_t)first.seeds,
                    (i / (size_t)first.seeds) % (size_t)first.count);
            goto out;
        }
    if (path_mkdirs(opt->outdir, e) < 0 || tune_ctx_init(&ctx, first.scenario, first.sets, first.nsets, opt, e) < 0)
        goto out;
    if (tune_fingerprint(ctx.real_path, first.sets, first.nsets, &fp, e) < 0)
        goto out;
    if (fp != first.fingerprint || tune_grid_items(&ctx) != first.items || ctx.spec.seeds != first.seeds) {
        err_set(e, ERR_INPUT, "%s: changed since the shards ran (fingerprint %016" PRIx64 ", shards have %016" PRIx64
                ")", first.scenario, fp, first.fingerprint);
        goto out;
    }
    r.best = r.runner_up = r.baseline = -1;
    r.method = "grid";
    if (tune_points_add(&ctx, &r, jobs, total, first.seeds, e) < 0)
        goto out;
    ctx.simulations = (long)total;
    ctx.sim_units = (double)total;
    tune_pick(&ctx, &r);
    rc = tune_write_outputs(&ctx, &r, e);
out:
    tune_result_free(&r);
    tune_spec_free(&ctx.spec);
    free(ctx.requests);
    tune_head_free(&first);
    for (i = 0; i < nfiles; i++)
        free(files[i]);
    free(files);
    free(jobs);
    free(seen);
    free(shard_seen);
    return rc;
}
