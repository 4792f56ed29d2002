/* bench_report.c -- `llmbench report DIR`: one HTML page from the JSON files
 * that the other subcommands wrote into DIR.
 *
 * Naming: any DIR/NAME.json whose "tool" is "llmbench" is read, in name
 * order; the usual set is
 *     llmbench roofline --json DIR/roofline.json
 *     llmbench matmul --dtype f32 --json DIR/matmul-f32.json
 *     llmbench matmul --dtype q8 --json DIR/matmul-q8.json
 *     llmbench attention --json DIR/attention.json
 * The page, DIR/report.html, holds a table per file and gnuplot charts:
 * matmul GFLOP/s against size per backend and dtype (with the OpenBLAS
 * baseline), the fraction of the roofline per case, and the roofline
 * against threads.  The charts read data files written here (bench_*.dat);
 * the gnuplot scripts are fixed text, so no string from the JSON files ever
 * enters a script.  gnuplot is run, and the page escaped, by the helpers of
 * the llmsim report (reports/report.h). */
#include "config.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "kernels/bench.h"
#include "reports/report.h"

#define BR_PATH_MAX 4096
#define BR_MAX_FILES 256

/* The JSON documents of DIR, in name order. */
struct br_input {
    char *names[BR_MAX_FILES];
    json_t *docs[BR_MAX_FILES];
    int n;
};

/* Release the documents and names of IN. */
static void br_input_free(struct br_input *in)
{
    int i;

    for (i = 0; i < in->n; i++) {
        free(in->names[i]);
        json_decref(in->docs[i]);
    }
    in->n = 0;
}

/* scandir filter: visible files named *.json. */
static int br_is_json(const struct dirent *d)
{
    size_t len = strlen(d->d_name);

    return len > 5 && strcmp(d->d_name + len - 5, ".json") == 0 && d->d_name[0] != '.';
}

/* Read every llmbench JSON file of DIR into IN.  Returns 0, or -1 with an
 * ERR_INPUT naming the file (FILE:LINE for a syntax error) or DIR. */
static int br_read(const char *dir, struct br_input *in, struct err *e)
{
    struct dirent **list = NULL;
    int n = scandir(dir, &list, br_is_json, alphasort), i, rc = 0;

    if (n < 0)
        return err_set(e, ERR_INPUT, "%s: %s", dir, strerror(errno));
    for (i = 0; i < n; i++) {
        char path[BR_PATH_MAX];
        json_error_t je;
        json_t *doc, *tool;

        snprintf(path, sizeof(path), "%s/%s", dir, list[i]->d_name);
        if (rc == 0) {
            doc = json_load_file(path, 0, &je);
            if (doc == NULL) {
                rc = err_at(e, path, je.line, "%s", je.text);
            } else {
                tool = json_object_get(doc, "tool");
                if (!json_is_string(tool) || strcmp(json_string_value(tool), "llmbench") != 0 ||
                    !json_is_array(json_object_get(doc, "results")) ||
                    !json_is_string(json_object_get(doc, "command"))) {
                    log_warn("%s: not an llmbench result file, skipped", path);
                    json_decref(doc);
                } else if (in->n == BR_MAX_FILES) {
                    log_warn("%s: more than %d files, skipped", path, BR_MAX_FILES);
                    json_decref(doc);
                } else {
                    in->names[in->n] = strdup(list[i]->d_name);
                    in->docs[in->n++] = doc;
                }
            }
        }
        free(list[i]);
    }
    free(list);
    if (rc == 0 && in->n == 0)
        rc = err_set(e, ERR_INPUT,
                     "%s: no llmbench JSON files (write them with e.g. llmbench matmul --json %s/matmul-f32.json)",
                     dir, dir);
    return rc;
}

/* ---- data files for the charts ------------------------------------------------------ */

/* Copy S into BUF keeping only characters safe in a gnuplot data file
 * label: letters, digits and "._-+/". */
static void br_label(char *buf, size_t len, const char *s)
{
    size_t i = 0;

    for (; s != NULL && *s != '\0' && i + 1 < len; s++)
        buf[i++] = (isalnum((unsigned char)*s) || strchr("._-+/", *s) != NULL) ? *s : '_';
    buf[i] = '\0';
}

/* The string at KEY of object O, or "?". */
static const char *br_str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));

    return s != NULL ? s : "?";
}

/* The number at KEY of object O, or NAN. */
static double br_num(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);

    return json_is_number(v) ? json_number_value(v) : NAN;
}

/* Open DIR/NAME for writing. */
static FILE *br_open(const char *dir, const char *name, struct err *e)
{
    char path[BR_PATH_MAX];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    if (f == NULL)
        err_sys(e, errno, "%s", path);
    return f;
}

/* Close F (DIR/NAME); returns 0, or -1 with an ERR_SYSTEM naming it. */
static int br_close(FILE *f, const char *dir, const char *name, struct err *e)
{
    if (fclose(f) != 0)
        return err_sys(e, errno, "%s/%s", dir, name);
    return 0;
}

/* A point of the matmul chart. */
struct br_point {
    double size, gflops;
};

/* qsort comparator: increasing size. */
static int br_point_cmp(const void *a, const void *b)
{
    double x = ((const struct br_point *)a)->size, y = ((const struct br_point *)b)->size;

    return x < y ? -1 : x > y ? 1 : 0;
}

/* Write block LABEL of bench_matmul.dat: the results RES as "size gflops"
 * rows in increasing size, size = cube root of m n k; GFLOP/s from the key
 * "gflops", or from flops / TIME_KEY when TIME_KEY is not NULL. */
static void br_matmul_block(FILE *f, int first, const char *label, json_t *res, const char *time_key)
{
    size_t n = json_array_size(res), j, np = 0;
    struct br_point *p = calloc(n > 0 ? n : 1, sizeof(*p));
    json_t *r;

    if (p == NULL)
        return;
    json_array_foreach(res, j, r)
    {
        double size = cbrt(br_num(r, "m") * br_num(r, "n") * br_num(r, "k"));
        double g = time_key == NULL ? br_num(r, "gflops") : br_num(r, "flops") / br_num(r, time_key) / 1e9;

        if (isfinite(size) && isfinite(g) && g > 0)
            p[np++] = (struct br_point){size, g};
    }
    qsort(p, np, sizeof(*p), br_point_cmp);
    fprintf(f, "%s%s\n", first ? "" : "\n\n", label);
    for (j = 0; j < np; j++)
        fprintf(f, "%.6g %.6g\n", p[j].size, p[j].gflops);
    free(p);
}

/* bench_matmul.dat: one block per matmul file (then one for the OpenBLAS
 * baseline of the first file that has it), each a title line then its
 * points.  Returns the number of blocks, or -1 with e set. */
static int br_write_matmul(const char *dir, struct br_input *in, struct err *e)
{
    FILE *f = br_open(dir, "bench_matmul.dat", e);
    int i, blocks = 0, baseline = -1;
    size_t j;
    json_t *r;

    if (f == NULL)
        return -1;
    for (i = 0; i < in->n; i++) {
        json_t *res = json_object_get(in->docs[i], "results");
        char label[128], a[48], b[48];

        if (strcmp(br_str(in->docs[i], "command"), "matmul") != 0 || json_array_size(res) == 0)
            continue;
        r = json_array_get(res, 0);
        br_label(a, sizeof(a), br_str(r, "backend"));
        br_label(b, sizeof(b), br_str(r, "dtype"));
        snprintf(label, sizeof(label), "%s-%s", a, b);
        br_matmul_block(f, blocks == 0, label, res, NULL);
        json_array_foreach(res, j, r)
            if (baseline < 0 && isfinite(br_num(r, "openblas_time_s")))
                baseline = i;
        blocks++;
    }
    if (baseline >= 0) {
        br_matmul_block(f, blocks == 0, "openblas-f32", json_object_get(in->docs[baseline], "results"),
                        "openblas_time_s");
        blocks++;
    }
    if (br_close(f, dir, "bench_matmul.dat", e) != 0)
        return -1;
    return blocks;
}

/* bench_fraction.dat: "label percent" per matmul and attention result.
 * Returns the number of rows, or -1 with e set. */
static int br_write_fraction(const char *dir, struct br_input *in, struct err *e)
{
    FILE *f = br_open(dir, "bench_fraction.dat", e);
    int i, rows = 0;
    size_t j;
    json_t *r;

    if (f == NULL)
        return -1;
    for (i = 0; i < in->n; i++) {
        const char *cmd = br_str(in->docs[i], "command");

        if (strcmp(cmd, "matmul") != 0 && strcmp(cmd, "attention") != 0)
            continue;
        json_array_foreach(json_object_get(in->docs[i], "results"), j, r)
        {
            char a[48], b[48], label[160];
            double frac = br_num(r, "roofline_fraction");

            if (!isfinite(frac))
                continue;
            br_label(a, sizeof(a), br_str(r, "backend"));
            if (cmd[0] == 'm') {
                br_label(b, sizeof(b), br_str(r, "dtype"));
                snprintf(label, sizeof(label), "%s-%s-%.0fx%.0fx%.0f", a, b, br_num(r, "m"),
                         br_num(r, "n"), br_num(r, "k"));
            } else {
                br_label(b, sizeof(b), br_str(r, "mode"));
                snprintf(label, sizeof(label), "%s-%s-%.0f", b, a, br_num(r, "context"));
            }
            fprintf(f, "\"%s\" %.4g\n", label, 100 * frac);
            rows++;
        }
    }
    if (br_close(f, dir, "bench_fraction.dat", e) != 0)
        return -1;
    return rows;
}

/* bench_roofline.dat: "threads GB/s GFLOP/s" of the first roofline file.
 * Returns the number of rows, or -1 with e set. */
static int br_write_roofline(const char *dir, struct br_input *in, struct err *e)
{
    FILE *f = br_open(dir, "bench_roofline.dat", e);
    int i, rows = 0;
    size_t j;
    json_t *r;

    if (f == NULL)
        return -1;
    for (i = 0; i < in->n && rows == 0; i++) {
        if (strcmp(br_str(in->docs[i], "command"), "roofline") != 0)
            continue;
        json_array_foreach(json_object_get(in->docs[i], "results"), j, r)
        {
            if (!isfinite(br_num(r, "threads")) || !isfinite(br_num(r, "bandwidth_gbs")))
                continue;
            fprintf(f, "%.0f %.6g %.6g\n", br_num(r, "threads"), br_num(r, "bandwidth_gbs"),
                    br_num(r, "peak_gflops"));
            rows++;
        }
    }
    if (br_close(f, dir, "bench_roofline.dat", e) != 0)
        return -1;
    return rows;
}

/* ---- charts ------------------------------------------------------------------------- */

struct br_chart {
    const char *file;
    const char *title;
    const char *caption;
};

static const struct br_chart br_charts[] = {
    {.file = "bench_matmul.png",
     .title = "Matmul GFLOP/s against size",
     .caption = "GFLOP/s (2mnk / median time) against the cube root of m n k, per backend and "
                "weight dtype, with OpenBLAS f32 measured in the same run.  GEMVs sit at the left."},
    {.file = "bench_fraction.png",
     .title = "Fraction of the roofline",
     .caption = "Achieved fraction of the roofline measured in the same run: min(peak FLOP/s, "
                "bandwidth x arithmetic intensity) for matmul and prefill; of the bandwidth for "
                "decode attention."},
    {.file = "bench_roofline.png",
     .title = "Roofline against threads",
     .caption = "Streaming-read bandwidth (GB/s) and FMA peak (GFLOP/s) per thread count."},
};
#define BR_NCHARTS ((int)(sizeof(br_charts) / sizeof(br_charts[0])))

/* The fixed scripts: only numbers computed here are filled in. */
static const char br_matmul_gp[] =
    "set terminal pngcairo size 900,500 noenhanced\n"
    "set output 'bench_matmul.png'\n"
    "set logscale x 2\n"
    "set xlabel 'cube root of m n k'\n"
    "set ylabel 'GFLOP/s'\n"
    "set key left top\n"
    "set grid\n"
    "plot for [i=0:%d] 'bench_matmul.dat' index i using 1:2 with linespoints title columnheader(1)\n";

static const char br_fraction_gp[] =
    "set terminal pngcairo size 900,500 noenhanced\n"
    "set output 'bench_fraction.png'\n"
    "set style fill solid 0.6\n"
    "set boxwidth 0.7\n"
    "set ylabel '% of roofline'\n"
    "set yrange [0:*]\n"
    "set xtics rotate by -40 font ',8'\n"
    "set grid ytics\n"
    "set bmargin 9\n"
    "plot 'bench_fraction.dat' using 0:2:xtic(1) with boxes notitle, 100 with lines dt 2 notitle\n";

static const char br_roofline_gp[] =
    "set terminal pngcairo size 900,400 noenhanced\n"
    "set output 'bench_roofline.png'\n"
    "set xlabel 'threads'\n"
    "set ylabel 'GB/s'\n"
    "set y2label 'GFLOP/s'\n"
    "set ytics nomirror\n"
    "set y2tics\n"
    "set yrange [0:*]\n"
    "set y2range [0:*]\n"
    "set xtics 1\n"
    "set grid\n"
    "plot 'bench_roofline.dat' using 1:2 axes x1y1 with linespoints title 'bandwidth (GB/s)', "
    "'' using 1:3 axes x1y2 with linespoints title 'peak (GFLOP/s)'\n";

/* Whether DIR/FILE exists and is not empty. */
static int br_exists(const char *dir, const char *file)
{
    char path[BR_PATH_MAX];
    FILE *f;
    int ok;

    snprintf(path, sizeof(path), "%s/%s", dir, file);
    f = fopen(path, "rb");
    if (f == NULL)
        return 0;
    ok = fgetc(f) != EOF;
    fclose(f);
    return ok;
}

/* Draw the charts the data allows; drawn[i] tells whether br_charts[i]
 * came out.  A failure to draw is a warning, once. */
static void br_draw(const char *dir, int matmul_blocks, int fraction_rows, int roofline_rows,
                    int drawn[BR_NCHARTS])
{
    char script[2048];
    int counts[BR_NCHARTS] = {matmul_blocks, fraction_rows, roofline_rows}, i;
    struct err e = {0};

    for (i = 0; i < BR_NCHARTS; i++) {
        char path[BR_PATH_MAX];

        drawn[i] = 0;
        snprintf(path, sizeof(path), "%s/%s", dir, br_charts[i].file);
        unlink(path);
    }
    for (i = 0; i < BR_NCHARTS; i++) {
        if (counts[i] <= 0)
            continue;
        if (i == 0)
            snprintf(script, sizeof(script), br_matmul_gp, matmul_blocks - 1);
        else
            snprintf(script, sizeof(script), "%s", i == 1 ? br_fraction_gp : br_roofline_gp);
        if (report_run_gnuplot(dir, script, &e) != 0) {
            log_warn("%s: %s: charts left out of the report", dir, e.msg);
            return;
        }
        drawn[i] = br_exists(dir, br_charts[i].file);
    }
}

/* ---- the page --------------------------------------------------------------------------- */

/* A table cell with a number in FMT, or "n/a". */
static void br_cell_num(FILE *out, const char *fmt, double v)
{
    fputs("<td class=\"num\">", out);
    if (isfinite(v))
        fprintf(out, fmt, v);
    else
        fputs("n/a", out);
    fputs("</td>", out);
}

/* A table cell holding S, escaped. */
static void br_cell_str(FILE *out, const char *s)
{
    fputs("<td>", out);
    report_html_escape(out, s);
    fputs("</td>", out);
}

/* The table of a matmul file's results RES. */
static void br_table_matmul(FILE *out, json_t *res)
{
    size_t j;
    json_t *r;

    fputs("<table><tr><th>m x n x k</th><th>backend</th><th>dtype</th><th>ms</th><th>GFLOP/s</th>"
          "<th>GB/s</th><th>roofline</th><th>vs OpenBLAS</th><th>vs f32</th><th>err</th></tr>\n",
          out);
    json_array_foreach(res, j, r)
    {
        fprintf(out, "<tr><td>%.0fx%.0fx%.0f</td>", br_num(r, "m"), br_num(r, "n"), br_num(r, "k"));
        br_cell_str(out, br_str(r, "backend"));
        br_cell_str(out, br_str(r, "dtype"));
        br_cell_num(out, "%.3f", 1e3 * br_num(r, "time_s"));
        br_cell_num(out, "%.1f", br_num(r, "gflops"));
        br_cell_num(out, "%.1f", br_num(r, "gbs"));
        br_cell_num(out, "%.0f%%", 100 * br_num(r, "roofline_fraction"));
        br_cell_num(out, "%.2fx", br_num(r, "vs_openblas"));
        br_cell_num(out, "%.2fx", br_num(r, "vs_f32"));
        br_cell_num(out, "%.1e", br_num(r, "max_rel_err"));
        fputs("</tr>\n", out);
    }
    fputs("</table>\n", out);
}

/* The table of an attention file's results RES. */
static void br_table_attention(FILE *out, json_t *res)
{
    size_t j;
    json_t *r;

    fputs("<table><tr><th>mode</th><th>context</th><th>heads/kv/dim</th><th>backend</th><th>ms</th>"
          "<th>GFLOP/s</th><th>GB/s</th><th>roofline</th><th>vs ref</th><th>err</th></tr>\n",
          out);
    json_array_foreach(res, j, r)
    {
        fputs("<tr>", out);
        br_cell_str(out, br_str(r, "mode"));
        br_cell_num(out, "%.0f", br_num(r, "context"));
        fprintf(out, "<td>%.0f/%.0f/%.0f</td>", br_num(r, "n_heads"), br_num(r, "n_kv_heads"),
                br_num(r, "head_dim"));
        br_cell_str(out, br_str(r, "backend"));
        br_cell_num(out, "%.3f", 1e3 * br_num(r, "time_s"));
        br_cell_num(out, "%.1f", br_num(r, "gflops"));
        br_cell_num(out, "%.1f", br_num(r, "gbs"));
        br_cell_num(out, "%.0f%%", 100 * br_num(r, "roofline_fraction"));
        br_cell_num(out, "%.2fx", br_num(r, "vs_ref"));
        br_cell_num(out, "%.1e", br_num(r, "max_rel_err"));
        fputs("</tr>\n", out);
    }
    fputs("</table>\n", out);
}

/* The table of a roofline file's results RES. */
static void br_table_roofline(FILE *out, json_t *res)
{
    size_t j;
    json_t *r;

    fputs("<table><tr><th>threads</th><th>GB/s</th><th>GFLOP/s</th><th>ridge FLOP/B</th></tr>\n", out);
    json_array_foreach(res, j, r)
    {
        fputs("<tr>", out);
        br_cell_num(out, "%.0f", br_num(r, "threads"));
        br_cell_num(out, "%.1f", br_num(r, "bandwidth_gbs"));
        br_cell_num(out, "%.1f", br_num(r, "peak_gflops"));
        br_cell_num(out, "%.1f", br_num(r, "ridge_flop_per_byte"));
        fputs("</tr>\n", out);
    }
    fputs("</table>\n", out);
}

/* The whole page: host, charts marked in DRAWN, one section per file. */
static void br_page(FILE *out, struct br_input *in, const int drawn[BR_NCHARTS])
{
    json_t *host = json_object_get(in->docs[0], "host");
    int i;

    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
          "<title>llmbench report</title>\n<style>\n"
          "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}\n"
          "table{border-collapse:collapse;margin:0.5em 0 1.5em}\n"
          "td,th{border:1px solid #ccc;padding:3px 8px}th{background:#f0f0f0}\n"
          "td.num{text-align:right;font-variant-numeric:tabular-nums}\n"
          "figure{margin:1em 0}figcaption{color:#555;font-size:90%}\n"
          "</style></head><body>\n<h1>llmbench report</h1>\n<p>",
          out);
    report_html_escape(out, br_str(host, "cpu"));
    fprintf(out, ", %.0f cores, LLC %.0f MiB, ISA ", br_num(host, "cores"), br_num(host, "llc_bytes") / (1 << 20));
    report_html_escape(out, br_str(host, "isa"));
    fputs(", ", out);
    report_html_escape(out, br_str(host, "date"));
    fputs(".  Ratios above 1 mean faster than the baseline.</p>\n", out);
    for (i = 0; i < BR_NCHARTS; i++) {
        if (!drawn[i])
            continue;
        fprintf(out, "<figure><img src=\"%s\" alt=\"", br_charts[i].file);
        report_html_escape(out, br_charts[i].title);
        fputs("\"><figcaption>", out);
        report_html_escape(out, br_charts[i].caption);
        fputs("</figcaption></figure>\n", out);
    }
    for (i = 0; i < in->n; i++) {
        json_t *doc = in->docs[i], *res = json_object_get(doc, "results"), *roof;
        const char *cmd = br_str(doc, "command");

        fputs("<h2>", out);
        report_html_escape(out, in->names[i]);
        fputs(" (", out);
        report_html_escape(out, cmd);
        fprintf(out, ", %.0f threads)</h2>\n", br_num(doc, "threads"));
        roof = json_object_get(doc, "roofline");
        if (roof != NULL)
            fprintf(out, "<p>Roofline: %.1f GB/s, %.1f GFLOP/s.</p>\n", br_num(roof, "bandwidth_gbs"),
                    br_num(roof, "peak_gflops"));
        if (strcmp(cmd, "matmul") == 0)
            br_table_matmul(out, res);
        else if (strcmp(cmd, "attention") == 0)
            br_table_attention(out, res);
        else if (strcmp(cmd, "roofline") == 0)
            br_table_roofline(out, res);
        else
            fputs("<p>(unknown command: results not shown)</p>\n", out);
    }
    fputs("</body></html>\n", out);
}

/* Write DIR/report.html and its charts from the JSON files of DIR. */
static int br_write(const char *dir, struct err *e)
{
    struct br_input in = {0};
    int drawn[BR_NCHARTS], mm, fr, rl, rc = -1;
    char path[BR_PATH_MAX], tmp[BR_PATH_MAX];
    FILE *out = NULL;

    if (br_read(dir, &in, e) != 0)
        goto err;
    if ((mm = br_write_matmul(dir, &in, e)) < 0 || (fr = br_write_fraction(dir, &in, e)) < 0 ||
        (rl = br_write_roofline(dir, &in, e)) < 0)
        goto err;
    br_draw(dir, mm, fr, rl, drawn);
    snprintf(path, sizeof(path), "%s/report.html", dir);
    snprintf(tmp, sizeof(tmp), "%s/report.html.tmp", dir);
    out = fopen(tmp, "w");
    if (out == NULL) {
        err_sys(e, errno, "%s", tmp);
        goto err;
    }
    br_page(out, &in, drawn);
    if (fclose(out) != 0) {
        out = NULL;
        err_sys(e, errno, "%s", tmp);
        unlink(tmp);
        goto err;
    }
    out = NULL;
    if (rename(tmp, path) != 0) {
        err_sys(e, errno, "%s", path);
        unlink(tmp);
        goto err;
    }
    rc = 0;
err:
    br_input_free(&in);
    return rc;
}

/* ---- the subcommand ------------------------------------------------------------- */

static void report_usage(FILE *f)
{
    fprintf(f, "usage: llmbench report DIR\n"
               "\n"
               "Write DIR/report.html, with gnuplot charts, from the llmbench JSON files in DIR,\n"
               "for example:\n"
               "  llmbench roofline --json DIR/roofline.json\n"
               "  llmbench matmul --dtype f32 --json DIR/matmul-f32.json\n"
               "  llmbench matmul --dtype q8 --json DIR/matmul-q8.json\n"
               "  llmbench attention --json DIR/attention.json\n"
               "Every DIR/*.json whose \"tool\" is \"llmbench\" is read, in name order.\n");
}

/* `llmbench report DIR`.  Returns the exit status. */
static int report_exec(int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    struct err e = {0};
    int c;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') {
            report_usage(stdout);
            return 0;
        }
        log_error("report: unknown option '%s' (try 'llmbench report --help')", argv[optind - 1]);
        return 2;
    }
    if (argc - optind != 1) {
        log_error("report: needs one DIR (try 'llmbench report --help')");
        return 2;
    }
    if (br_write(argv[optind], &e) != 0)
        return bench_fail(&e);
    printf("%s/report.html\n", argv[optind]);
    return 0;
}

const struct bench_command bench_report_entry = {
    .name = "report",
    .summary = "an HTML page with charts from the JSON files of a directory",
    .exec = report_exec,
};
