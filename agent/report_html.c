/*
 * report_html.c -- the CSV of every DUT and the HTML summary with inline SVG charts; see
 * report_html.h. Every string from the store (serials, slots, profile types, reasons: the MES,
 * the operator and the card put them there) is escaped for where it goes: RFC 4180 quoting and a
 * leading apostrophe against spreadsheet formulas in the CSV, entities in the HTML.
 */
#define _GNU_SOURCE
#include "report_html.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hex.h"
#include "iccid.h"
#include "media.h"

#define RH_GROUPS 12 /* slots, profile types, reasons shown one by one; the rest are "other" */
#define RH_LABEL 64  /* bytes of a label kept */
#define RH_SPANS 9   /* session-time histogram buckets */

typedef struct {
    char label[RH_LABEL];
    size_t pass, fail;
} rh_group;

typedef struct {
    rh_group g[RH_GROUPS + 1]; /* the last: everything that did not fit */
    size_t n;
} rh_table;

static const int rh_span_max[RH_SPANS - 1] = {5, 10, 20, 30, 60, 120, 300, 600}; /* seconds, upper bounds */
static const char *const rh_span_label[RH_SPANS] = {"<5s", "5-10s", "10-20s", "20-30s", "30-60s",
                                                     "1-2m", "2-5m", "5-10m", ">10m"};

typedef struct {
    media_file *csv;
    report_tables_summary *sum;
    size_t hour_pass[24], hour_fail[24];
    rh_table slots, types, reasons, stock;
    size_t span[RH_SPANS], span_unknown;
    char first[32], last[32];
    size_t conn[5]; /* EUICCF05 tests: passed, failed, skipped, refused, not run */
} rh_ctx;

/* At most cap-1 bytes of src into dst, never cutting a UTF-8 character; true if something was cut. */
static bool rh_copy_label(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    bool cut = n >= cap;
    if (cut) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80) /* src[n] continues a character: cut before it */
            n--;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
    return cut;
}

/* Counts one row into a bounded table: its own group while there is room, else "other". */
static void rh_count(rh_table *t, const char *label, bool pass, size_t k)
{
    char l[RH_LABEL];
    rh_copy_label(l, sizeof l, label && *label ? label : "(none)");
    rh_group *g = NULL;
    for (size_t i = 0; i < t->n && !g; i++)
        if (!strcmp(t->g[i].label, l))
            g = &t->g[i];
    if (!g && t->n < RH_GROUPS) {
        g = &t->g[t->n++];
        snprintf(g->label, sizeof g->label, "%s", l);
    }
    if (!g) {
        g = &t->g[RH_GROUPS];
        snprintf(g->label, sizeof g->label, "other");
    }
    if (pass)
        g->pass += k;
    else
        g->fail += k;
}

/* Seconds since the epoch of the store's "YYYY-MM-DDTHH:MM:SSZ"; -1 if it is not one. */
static long long rh_seconds(const char *t)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (!t || strlen(t) != 20)
        return -1;
    const char *end = strptime(t, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return end && !*end ? (long long)timegm(&tm) : -1;
}

/* One CSV field: quoted, quotes doubled, a leading = + - @ tab or CR defused with an apostrophe. */
static void rh_csv_field(media_file *f, const char *v, bool last)
{
    media_file_write(f, "\"", 1);
    if (v && v[0] && strchr("=+-@\t\r", v[0]))
        media_file_write(f, "'", 1);
    const char *run = v ? v : ""; /* plain bytes go out as runs, one write each */
    for (const char *p = run; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c != '"' && c >= 0x20 && c != 0x7F)
            continue;
        media_file_write(f, run, (size_t)(p - run));
        run = p + 1;
        if (c == '"')
            media_file_write(f, "\"\"", 2);
        else
            media_file_printf(f, "\\x%02x", c); /* no control byte reaches a spreadsheet or a terminal */
    }
    media_file_write(f, run, strlen(run));
    media_file_write(f, last ? "\"\r\n" : "\",", last ? 3 : 2);
}

static const char *rh_verdict(const store_dut_record *r)
{
    if (r->removed)
        return "DELETED"; /* use case A.4: installed before, deleted since; the Deletion Report has its evidence */
    switch (r->state) {
    case BPP_INSTALLED: return "PASS";
    case BPP_FAILED: return "FAIL";
    case BPP_DELETED: return "NOT_USED";
    default: return "UNRESOLVED";
    }
}

/* EUICCF05: an installed profile whose required connectivity test did not pass is a failed DUT. */
static bool rh_conn_failed(const store_dut_record *r)
{
    return r->state == BPP_INSTALLED && r->conn_required && (!r->conn_test || strcmp(r->conn_test, "passed") != 0);
}

static ifpp_err rh_row(void *arg, const store_dut_record *r)
{
    rh_ctx *c = arg;
    static const char *const conn_names[4] = {"passed", "failed", "skipped", "refused"};
    size_t ck = 4;
    for (size_t i = 0; i < 4 && r->conn_test; i++)
        if (!strcmp(r->conn_test, conn_names[i]))
            ck = i;
    bool conn_fail = rh_conn_failed(r);
    char reason[300];
    snprintf(reason, sizeof reason, "%s%s", conn_fail ? "connectivity test required: " : "",
             conn_fail ? (r->conn_detail ? r->conn_detail : "not run") : r->reason ? r->reason : "");
    char eid[33], txid[33], iccid[ICCID_TEXT_LEN], secs[24] = "";
    hex_encode(r->eid, 16, eid, sizeof eid);
    hex_encode(r->txid, r->txid_len, txid, sizeof txid);
    iccid_to_text(r->iccid, iccid);
    long long a = rh_seconds(r->started_at), b = rh_seconds(r->updated_at);
    bool timed = a >= 0 && b >= a && r->state != BPP_DELETED;
    if (timed)
        snprintf(secs, sizeof secs, "%lld", b - a);
    const char *fields[] = {r->dut_serial, eid, iccid, r->profile_type, r->slot, conn_fail ? "FAIL" : rh_verdict(r),
                            bpp_state_name(r->state), r->reason || conn_fail ? reason : NULL, r->started_at,
                            r->updated_at, secs, txid, r->conn_test ? r->conn_test : "", r->conn_detail};
    size_t nf = sizeof fields / sizeof fields[0];
    for (size_t i = 0; i < nf; i++)
        rh_csv_field(c->csv, fields[i], i + 1 == nf);

    c->sum->rows++;
    bool pass = r->state == BPP_INSTALLED && !conn_fail;
    if (r->state != BPP_DELETED)
        c->conn[ck]++;
    if (pass)
        c->sum->pass++;
    else if (conn_fail)
        c->sum->fail++;
    else if (r->state == BPP_FAILED)
        c->sum->fail++;
    else if (r->removed)
        c->sum->removed++;
    else if (r->state == BPP_DELETED)
        c->sum->unused++;
    else
        c->sum->unresolved++;
    if (r->state == BPP_DELETED)
        return c->csv->err; /* not a DUT session: in the CSV, not in the charts */
    /* the hour of "YYYY-MM-DDTHH:..."; a row edited into another shape counts in no hour */
    int hour = strlen(r->updated_at) >= 13 ? (r->updated_at[11] - '0') * 10 + (r->updated_at[12] - '0') : -1;
    if (hour >= 0 && hour < 24) {
        if (pass)
            c->hour_pass[hour]++;
        else
            c->hour_fail[hour]++;
    }
    rh_count(&c->slots, r->slot, pass, 1);
    rh_count(&c->types, r->profile_type, pass, 1);
    rh_count(&c->reasons, conn_fail ? reason : r->reason, pass, 1);
    if (timed) {
        size_t k = 0;
        while (k < RH_SPANS - 1 && b - a >= rh_span_max[k])
            k++;
        c->span[k]++;
    } else {
        c->span_unknown++;
    }
    if (!c->first[0])
        snprintf(c->first, sizeof c->first, "%s", r->updated_at);
    snprintf(c->last, sizeof c->last, "%s", r->updated_at);
    return c->csv->err;
}

static ifpp_err rh_stock(void *arg, const char *type, size_t n)
{
    rh_count(&((rh_ctx *)arg)->stock, type, true, n);
    return IFPP_OK;
}

/* Text for HTML (element content and quoted attributes). */
static void rh_html_text(media_file *f, const char *v)
{
    for (const char *p = v ? v : ""; *p; p++) {
        switch (*p) {
        case '&': media_file_write(f, "&amp;", 5); break;
        case '<': media_file_write(f, "&lt;", 4); break;
        case '>': media_file_write(f, "&gt;", 4); break;
        case '"': media_file_write(f, "&quot;", 6); break;
        case '\'': media_file_write(f, "&#39;", 5); break;
        default:
            if ((unsigned char)*p < 0x20)
                media_file_write(f, "?", 1);
            else
                media_file_write(f, p, 1);
        }
    }
}

#define RH_SHORT 24 /* bytes of a label drawn beside a bar (it must not run into the bar) */

/* At most max bytes of v, whole UTF-8 characters, "..." if cut. */
static void rh_html_short(media_file *f, const char *v, size_t max)
{
    char cut[RH_LABEL + 4];
    if (max + 4 > sizeof cut)
        max = sizeof cut - 4;
    if (rh_copy_label(cut, max + 1, v ? v : ""))
        strcat(cut, "...");
    rh_html_text(f, cut);
}

#define RH_W 380 /* one chart's box, px */
#define RH_H 230

/*
 * One chart: n bars (pass green, fail red, stacked), labels under (vertical: labels left, bars
 * across). Every chart of the page is drawn by this one function.
 */
static void rh_chart(media_file *f, const char *title, size_t n, const char *const *labels, const size_t *pass,
                     const size_t *fail, bool horizontal)
{
    size_t max = 1;
    for (size_t i = 0; i < n; i++)
        if (pass[i] + (fail ? fail[i] : 0) > max)
            max = pass[i] + (fail ? fail[i] : 0);
    media_file_printf(f, "<figure><figcaption>");
    rh_html_text(f, title);
    media_file_printf(f, "</figcaption><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                         "viewBox=\"0 0 %d %d\" role=\"img\">", RH_W, RH_H, RH_W, RH_H);
    if (!n)
        media_file_printf(f, "<text x=\"10\" y=\"30\" class=\"none\">no data</text>");
    for (size_t i = 0; i < n; i++) {
        size_t p = pass[i], q = fail ? fail[i] : 0;
        if (horizontal) { /* labels left, bars right: fits long names */
            double row = (double)(RH_H - 10) / (double)n, y = 5 + row * (double)i, h = row * 0.7 > 22 ? 22 : row * 0.7;
            double wp = 200.0 * (double)p / (double)max, wq = 200.0 * (double)q / (double)max;
            media_file_printf(f, "<text x=\"2\" y=\"%.1f\" class=\"l\"><title>", y + h * 0.8);
            rh_html_text(f, labels[i]); /* the whole label on hover, a short one drawn */
            media_file_printf(f, "</title>");
            rh_html_short(f, labels[i], RH_SHORT);
            media_file_printf(f, "</text><rect x=\"140\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" class=\"p\"/>"
                                 "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" class=\"f\"/>"
                                 "<text x=\"%.1f\" y=\"%.1f\" class=\"v\">%zu</text>",
                              y, wp, h, 140 + wp, y, wq, h, 144 + wp + wq, y + h * 0.8, p + q);
        } else {
            double col = (double)(RH_W - 20) / (double)n, x = 10 + col * (double)i, w = col * 0.75;
            double hp = 170.0 * (double)p / (double)max, hq = 170.0 * (double)q / (double)max;
            media_file_printf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" class=\"p\"/>"
                                 "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" class=\"f\"/>",
                              x, 190 - hp, w, hp, x, 190 - hp - hq, w, hq);
            media_file_printf(f, "<text x=\"%.1f\" y=\"205\" class=\"l\">", x);
            rh_html_text(f, labels[i]);
            media_file_printf(f, "</text>");
            if (p + q)
                media_file_printf(f, "<text x=\"%.1f\" y=\"%.1f\" class=\"v\">%zu</text>", x, 186 - hp - hq, p + q);
        }
    }
    media_file_printf(f, "</svg></figure>\n");
}

/* A bounded table as a horizontal chart. */
static void rh_table_chart(media_file *f, const char *title, const rh_table *t, bool with_fail)
{
    const char *labels[RH_GROUPS + 1];
    size_t pass[RH_GROUPS + 1], fail[RH_GROUPS + 1], n = 0;
    for (size_t i = 0; i <= RH_GROUPS; i++) {
        const rh_group *g = &t->g[i];
        if (i < t->n || (i == RH_GROUPS && g->pass + g->fail)) {
            labels[n] = g->label;
            pass[n] = g->pass;
            fail[n++] = g->fail;
        }
    }
    rh_chart(f, title, n, labels, pass, with_fail ? fail : NULL, true);
}

static const char rh_style[] =
    "<style>body{font:12px sans-serif;margin:12px;color:#111}h1{font-size:18px;margin:0 0 4px}"
    "p{margin:2px 0}.grid{display:grid;grid-template-columns:repeat(3,%dpx);gap:8px}"
    "figure{margin:0;border:1px solid #ccc;padding:4px}figcaption{font-weight:bold;margin-bottom:2px}"
    "svg text{font:10px sans-serif}.p{fill:#2e7d32}.f{fill:#c62828}.l{fill:#333}.v{fill:#000}"
    "table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #bbb;padding:2px 8px;text-align:right}"
    "@page{size:A4 landscape;margin:8mm}@media print{body{margin:0;zoom:0.8}figure{break-inside:avoid}}"
    "</style>";

static void rh_write_html(media_file *f, const rh_ctx *c, const char *station_id, const char *day)
{
    char gen[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(gen, sizeof gen, "%Y-%m-%dT%H:%M:%SZ", &tm);
    media_file_printf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>IFPP station ");
    rh_html_text(f, station_id);
    media_file_printf(f, " %s</title>", day);
    media_file_printf(f, rh_style, RH_W + 10);
    media_file_printf(f, "</head><body><h1>Profile loading, station ");
    rh_html_text(f, station_id);
    media_file_printf(f, ", %s (UTC)</h1>\n<p>Generated %s. The signed Profile Loading Report (ESBPP03) beside this "
                         "file is the evidence; this page and the CSV are its summary.</p>\n", day, gen);
    const report_tables_summary *s = c->sum;
    media_file_printf(f, "<table><tr><th>DUT results</th><th>PASS</th><th>FAIL</th><th>unresolved</th>"
                         "<th>BPPs not used</th><th>profiles deleted (A.4)</th><th>first</th><th>last</th></tr><tr>"
                         "<td>%zu</td><td>%zu</td><td>%zu</td><td>%zu</td><td>%zu</td><td>%zu</td><td>%s</td><td>%s</td>"
                         "</tr></table>\n",
                      s->rows - s->unused - s->removed, s->pass, s->fail, s->unresolved, s->unused, s->removed,
                      c->first[0] ? c->first : "-",
                      c->last[0] ? c->last : "-");
    media_file_printf(f, "<table><tr><th>Connectivity tests (EUICCF05)</th><th>passed</th><th>failed</th>"
                         "<th>not offered</th><th>answer refused</th><th>not run</th></tr><tr><td></td><td>%zu</td>"
                         "<td>%zu</td><td>%zu</td><td>%zu</td><td>%zu</td></tr></table>\n",
                      c->conn[0], c->conn[1], c->conn[2], c->conn[3], c->conn[4]);
    media_file_printf(f, "<div class=\"grid\">\n");
    static const char *const hours[24] = {"0", "", "", "3", "", "", "6", "", "", "9", "", "", "12", "", "", "15",
                                          "", "", "18", "", "", "21", "", ""};
    rh_chart(f, "DUTs per hour (green PASS, red not PASS)", 24, hours, c->hour_pass, c->hour_fail, false);
    rh_table_chart(f, "Results by reason", &c->reasons, true);
    rh_table_chart(f, "Per slot", &c->slots, true);
    rh_table_chart(f, "Per profile type", &c->types, true);
    size_t spans[RH_SPANS + 1];
    const char *span_labels[RH_SPANS + 1];
    for (size_t i = 0; i < RH_SPANS; i++) {
        spans[i] = c->span[i];
        span_labels[i] = rh_span_label[i];
    }
    spans[RH_SPANS] = c->span_unknown;
    span_labels[RH_SPANS] = "?";
    rh_chart(f, "Session time (reserve to result)", RH_SPANS + 1, span_labels, spans, NULL, false);
    rh_table_chart(f, "Stock left: available BPPs per profile type", &c->stock, false);
    media_file_printf(f, "</div></body></html>\n");
}

typedef struct {
    rh_ctx *c;
    const char *day;
} rh_read;

static ifpp_err rh_read_all(store *s, void *arg)
{
    rh_read *r = arg;
    ifpp_err e = store_each_dut(s, r->day, rh_row, r->c);
    if (e == IFPP_OK)
        e = store_each_stock(s, rh_stock, r->c);
    return e;
}

ifpp_err report_write_tables(store *s, const char *station_id, const char *day, int dirfd, const char *csv_name,
                             const char *html_name, report_tables_summary *sum, char *why, size_t why_len)
{
    if (!s || !station_id || !day || dirfd < 0 || !csv_name || !html_name || !sum)
        return IFPP_E_ARG;
    memset(sum, 0, sizeof *sum);
    rh_ctx *c = calloc(1, sizeof *c);
    media_file *csv = calloc(1, sizeof *csv), *html = calloc(1, sizeof *html);
    ifpp_err e = IFPP_E_NOMEM;
    if (!c || !csv || !html)
        goto out;
    csv->fd = html->fd = -1;
    c->csv = csv;
    c->sum = sum;
    if ((e = media_file_begin(csv, dirfd, csv_name, why, why_len)) != IFPP_OK)
        goto out;
    if ((e = media_file_begin(html, dirfd, html_name, why, why_len)) != IFPP_OK) {
        media_file_abort(csv);
        goto out;
    }
    media_file_printf(csv, "serial,eid,iccid,profile_type,slot,verdict,state,reason,started_at,finished_at,"
                           "session_seconds,transaction_id,conn_test,conn_test_detail\r\n");
    rh_read r = {.c = c, .day = day};
    e = store_read(s, rh_read_all, &r);
    if (e != IFPP_OK) {
        if (csv->err != IFPP_OK)
            e = media_file_commit(csv, why, why_len); /* says what the medium did */
        else
            err_why(why, why_len, "cannot read the store for the CSV report: %s",
                    *store_errmsg(s) ? store_errmsg(s) : err_str(e));
        media_file_abort(csv);
        media_file_abort(html);
        goto out;
    }
    rh_write_html(html, c, station_id, day);
    if ((e = media_file_commit(csv, why, why_len)) != IFPP_OK) {
        media_file_abort(html);
        goto out;
    }
    e = media_file_commit(html, why, why_len);
out:
    free(c);
    free(csv);
    free(html);
    return e;
}
