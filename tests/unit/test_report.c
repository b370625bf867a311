/*
 * test_report.c -- the day's reports on removable media (issue 15, items 1 and 2).
 *
 * Proves: a destination on the store's own filesystem, on no mount but '/', through a symlink, or
 * without room is refused and nothing is left on it; onto a mounted tmpfs (a private mount
 * namespace, as root; skipped without one) the signed Profile Loading Report verifies and ties to
 * the store's audit chain (ESBPP03), the CSV has one row per DUT session with hostile serials and
 * reasons quoted and defused, the HTML escapes them and carries its charts, a stale temporary of a
 * crashed export is removed and a symlink planted at a report's name is replaced, never followed;
 * and headless Chromium renders the HTML into a PNG that is not blank and shows the chart colours,
 * and prints it on one page.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <sqlite3.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bundle.h"
#include "export.h"
#include "fpa.h"
#include "fsutil.h"
#include "media.h"
#include "session.h"
#include "store.h"
#include "testline.h"
#include "testutil.h"
#include "tlv.h"

#define HOSTILE_SERIAL "=HYPERLINK(\"http://x\")"
#define HOSTILE_REASON "card said <script>alert(1)</script> & \"quit\""

typedef struct {
    char *dir, *media, *day;
    test_line L;
    cert *dm_root;
    bool ns; /* a private mount namespace with a tmpfs at media */
} fixture;

/* Results of a day: two real sessions (PASS), one FAIL and one in doubt with hostile text. */
static void make_results(fixture *f)
{
    store *s;
    char why[256] = "";
    assert_int_equal(store_open(f->L.db, &s, why, sizeof why), IFPP_OK);
    for (size_t i = 0; i < 2; i++) {
        fpa_slot slot;
        session_result r;
        char serial[32];
        snprintf(serial, sizeof serial, "DUT-%04zu", i);
        assert_int_equal(fpa_open("virtual", f->L.card[i], &slot, why, sizeof why), IFPP_OK);
        session_ctx c = {.st = s, .slot = &slot, .slot_name = i ? "fixture-2" : "fixture-1",
                         .dm_fpa_key = f->L.dm_fpa_key, .dm_fpa_cert = f->L.dm_fpa};
        assert_int_equal(session_provision(&c, serial, NULL, &r), IFPP_OK);
        assert_true(r.installed);
        fpa_close(&slot);
    }
    uint8_t eid[16];
    size_t n;
    uint8_t *b = tu_hex(f->L.eid[1], &n);
    assert_int_equal(n, 16);
    memcpy(eid, b, 16);
    free(b);
    store_bpp bpp;
    store_actor who = {.session = "s-fail", .slot = "fixture-2", .dut_serial = "DUT-0002", .reason = "provision"};
    assert_int_equal(bpp_reserve(s, eid, NULL, &who, &bpp), IFPP_OK);
    who.reason = "card refused: insufficient memory";
    assert_int_equal(bpp_move(s, bpp.transaction_id, bpp.transaction_id_len, BPP_RESERVED, BPP_FAILED, &who), IFPP_OK);
    store_actor bad = {.session = "s-bad", .slot = "fixture-<b>1</b>", .dut_serial = HOSTILE_SERIAL,
                       .reason = "provision"};
    assert_int_equal(bpp_reserve(s, eid, NULL, &bad, &bpp), IFPP_OK);
    bad.reason = HOSTILE_REASON;
    assert_int_equal(bpp_move(s, bpp.transaction_id, bpp.transaction_id_len, BPP_RESERVED, BPP_IN_DOUBT, &bad), IFPP_OK);
    store_close(s);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    char why[256] = "";
    test_line_opts o = {.n_cards = 2, .n_otks = {2, 3}, .profile_size = 1024, .import_vault = true};
    f->dir = tu_mkdtemp("ifpp-report");
    if (!f->dir || test_line_make(&f->L, f->dir, &o, why, sizeof why) != 0 ||
        testpki_load(f->L.pki, "dm-root", &f->dm_root, NULL) != IFPP_OK) {
        fprintf(stderr, "test line: %s\n", why);
        return -1;
    }
    f->media = tu_path(f->dir, "stick");
    mkdir(f->media, 0755);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    f->day = calloc(1, 11);
    strftime(f->day, 11, "%Y-%m-%d", &tm);
    /* a private mount namespace for this process: the tmpfs "stick" is seen by us and our children only */
    f->ns = unshare(CLONE_NEWNS) == 0 && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0;
    make_results(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->ns)
        umount2(f->media, MNT_DETACH);
    cert_free(f->dm_root);
    test_line_free(&f->L);
    tu_rmrf(f->dir);
    free(f->dir);
    free(f->media);
    free(f->day);
    free(f);
    return 0;
}

/* Mounts a fresh tmpfs of size at the stick (unmounting the last); skips without a namespace. */
static void stick(fixture *f, const char *size)
{
    char opts[64];
    if (!f->ns) {
        print_message("no private mount namespace here (not root, or no unshare): skipped\n");
        skip();
    }
    umount2(f->media, MNT_DETACH);
    snprintf(opts, sizeof opts, "size=%s,mode=0755", size);
    assert_int_equal(mount("ifpp-stick", f->media, "tmpfs", 0, opts), 0);
}

static ifpp_err export_to(fixture *f, const char *dir, export_day_summary *sum, char *why, size_t why_len)
{
    store *s;
    assert_int_equal(store_open_readonly(f->L.db, &s, why, why_len), IFPP_OK);
    ifpp_err e = export_day_to_media(s, "station-test", f->day, f->L.station_key, f->L.station, f->dm_root, dir, sum,
                                     why, why_len);
    store_close(s);
    return e;
}

static size_t entries(const char *dir)
{
    char cmd[600], out[64] = "";
    snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", dir);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(out, sizeof out, p));
    pclose(p);
    return (size_t)atol(out);
}

static void test_refused_destinations(void **state)
{
    fixture *f = *state;
    export_day_summary sum;
    char why[512] = "";
    /* on the store's filesystem: no stick was mounted there */
    char *plain = tu_path(f->dir, "not-a-stick");
    assert_int_equal(mkdir(plain, 0755), 0);
    assert_int_equal(export_to(f, plain, &sum, why, sizeof why), IFPP_E_ARG);
    print_message("store's filesystem: %s\n", why);
    assert_non_null(strstr(why, "station's own filesystem"));
    assert_int_equal(entries(plain), 0);
    /* a symlink to a directory */
    char *link = tu_path(f->dir, "link-to-stick");
    assert_int_equal(symlink(plain, link), 0);
    assert_int_equal(export_to(f, link, &sum, why, sizeof why), IFPP_E_ARG);
    assert_non_null(strstr(why, "symbolic link"));
    /* a file, and nothing */
    char *file = tu_path(f->dir, "vault.der");
    assert_int_not_equal(export_to(f, file, &sum, why, sizeof why), IFPP_OK);
    assert_non_null(strstr(why, "not a directory"));
    /* a directory on a filesystem other than the store's but on no mount other than '/' (a table saying so) */
    char *mi = tu_path(f->dir, "mountinfo");
    const char *table = "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
                        "40 27 0:50 / /media/usb\\040stick rw - vfat /dev/sdb1 rw\n";
    assert_int_equal(tu_write_file(mi, (const uint8_t *)table, strlen(table)), 0);
    int fd = -1;
    assert_int_equal(media_open_dest_at("/dev/shm", "/nonexistent/store.db", mi, &fd, why, sizeof why), IFPP_E_ARG);
    print_message("no mount: %s\n", why);
    assert_non_null(strstr(why, "no mounted filesystem but '/'"));
    /* the same directory under a mount point named with an escaped space is accepted */
    const char *table2 = "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
                         "40 27 0:50 / /dev/sh\\155 rw - tmpfs none rw\n";
    assert_int_equal(tu_write_file(mi, (const uint8_t *)table2, strlen(table2)), 0);
    assert_int_equal(media_open_dest_at("/dev/shm", "/nonexistent/store.db", mi, &fd, why, sizeof why), IFPP_OK);
    close(fd);
    free(mi);
    free(file);
    free(link);
    free(plain);
}

static void test_full_stick(void **state)
{
    fixture *f = *state;
    export_day_summary sum;
    char why[512] = "";
    stick(f, "16k");
    assert_int_equal(export_to(f, f->media, &sum, why, sizeof why), IFPP_E_IO);
    print_message("full stick: %s\n", why);
    assert_non_null(strstr(why, "bytes free"));
    assert_int_equal(entries(f->media), 0); /* never half on the stick */
}

static char *slurp(const char *dir, const char *name, size_t *n)
{
    char *p = tu_path(dir, name);
    char *b = (char *)tu_read_file(p, n);
    free(p);
    assert_non_null(b);
    char *z = realloc(b, *n + 1);
    assert_non_null(z);
    z[*n] = '\0';
    return z;
}

static size_t count_of(const char *hay, const char *needle)
{
    size_t k = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
        k++;
    return k;
}

static void test_export_to_stick(void **state)
{
    fixture *f = *state;
    export_day_summary sum;
    char why[512] = "", name[200], *p;
    size_t n;
    stick(f, "8m");
    /* what a crashed export left, and a symlink planted where the CSV goes */
    p = tu_path(f->media, MEDIA_TMP_PREFIX "0011223344-ifpp-x.csv");
    assert_int_equal(tu_write_file(p, (const uint8_t *)"half", 4), 0);
    free(p);
    char *victim = tu_path(f->dir, "victim.txt");
    assert_int_equal(tu_write_file(victim, (const uint8_t *)"keep", 4), 0);
    snprintf(name, sizeof name, "%s/ifpp-station-test-%s-duts.csv", f->media, f->day);
    assert_int_equal(symlink(victim, name), 0);

    assert_int_equal(export_to(f, f->media, &sum, why, sizeof why), IFPP_OK);
    assert_int_equal(sum.stale_removed, 1);
    assert_int_equal(entries(f->media), 3);
    assert_int_equal(sum.plr.results, 3); /* the in-doubt BPP is not final: not in the signed report */
    assert_int_equal(sum.plr.pirs, 2);
    assert_int_equal(sum.tables.rows, 4);
    assert_int_equal(sum.tables.pass, 2);
    assert_int_equal(sum.tables.fail, 1);
    assert_int_equal(sum.tables.unresolved, 1);
    /* the symlink was replaced, its target untouched */
    struct stat st;
    assert_int_equal(lstat(name, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    char *v = slurp(f->dir, "victim.txt", &n);
    assert_string_equal(v, "keep");
    free(v);
    free(victim);

    /* the signed report verifies and ties to the store (ESBPP03, audit anchor) */
    store *s;
    size_t audit_entries = 0;
    snprintf(name, sizeof name, "%s/%s", f->media, sum.plr_name);
    assert_int_equal(store_open_readonly(f->L.db, &s, why, sizeof why), IFPP_OK);
    assert_int_equal(export_audit_check(s, name, f->dm_root, &audit_entries, why, sizeof why), IFPP_OK);
    store_close(s);
    assert_true(audit_entries > 0);
    /* and offline, every PIR under the CI (the report was streamed onto the stick, issue 15 item 3's check) */
    export_verify_summary vs;
    uint8_t *plr = tu_read_file(name, &n);
    assert_non_null(plr);
    assert_int_equal(export_verify(plr, n, f->dm_root, f->L.ci, time(NULL), &vs, why, sizeof why), IFPP_OK);
    assert_int_equal(vs.records, 3);
    assert_int_equal(vs.pirs, 2);
    assert_int_equal(vs.no_result, 1);
    free(plr);

    char *csv = slurp(f->media, sum.csv_name, &n);
    print_message("CSV:\n%s", csv);
    assert_int_equal(count_of(csv, "\r\n"), 1 + 4); /* the header and one row per session */
    assert_non_null(strstr(csv, "\"DUT-0000\""));
    assert_non_null(strstr(csv, "\"PASS\""));
    assert_non_null(strstr(csv, "\"FAIL\",\"failed\",\"card refused: insufficient memory\""));
    assert_non_null(strstr(csv, "\"'=HYPERLINK(\"\"http://x\"\")\"")); /* quoted, and no formula */
    assert_non_null(strstr(csv, f->L.eid[0]));
    free(csv);

    char *html = slurp(f->media, sum.html_name, &n);
    assert_null(strstr(html, "<script"));
    assert_non_null(strstr(html, "&lt;script&gt;"));
    assert_null(strstr(html, "<b>1</b>"));
    assert_true(count_of(html, "<svg") == 6);
    assert_null(strstr(html, "src=")); /* loads nothing: opens offline */
    assert_null(strstr(html, "href="));
    free(html);
}

/* The command line: ifppctl report --to DIR, its usage rules and exit codes. */
static void test_cli(void **state)
{
    fixture *f = *state;
    char out[4096] = "";
    const char *ctl = tu_tool("IFPP_IFPPCTL", "ifpp-rehearse");
    stick(f, "8m");
    assert_int_equal(tu_sh(out, sizeof out, "'%s' --store '%s' --pki '%s' --station-id st-1 report --day %s --to '%s'",
                            ctl, f->L.db, f->L.pki, f->day, f->media), 0);
    print_message("%s", out);
    assert_non_null(strstr(out, "4 DUT row(s): 2 PASS, 1 FAIL, 1 unresolved"));
    assert_non_null(strstr(out, "ifpp-st-1-"));
    assert_int_equal(entries(f->media), 3);
    assert_int_equal(tu_sh(out, sizeof out, "'%s' --store '%s' --pki '%s' report --out x --to '%s' 2>&1", ctl, f->L.db,
                            f->L.pki, f->media), 2);
    assert_non_null(strstr(out, "one of them is required, not both"));
    assert_int_equal(tu_sh(out, sizeof out, "'%s' --store '%s' --pki '%s' report 2>&1", ctl, f->L.db, f->L.pki), 2);
    assert_int_equal(tu_sh(out, sizeof out, "'%s' --store '%s' --pki '%s' report --to '%s' 2>&1", ctl, f->L.db,
                            f->L.pki, f->dir), 3);
    assert_non_null(strstr(out, "station's own filesystem"));
}

/* PNG -> "WIDTH HEIGHT DISTINCT_COLOURS GREEN_PIXELS RED_PIXELS" (8-bit RGB/RGBA, non-interlaced), by zlib. */
static const char png_stats_py[] =
    "import sys,zlib,struct\n"
    "d=open(sys.argv[1],'rb').read()\n"
    "assert d[:8]==b'\\x89PNG\\r\\n\\x1a\\n'\n"
    "i=8;idat=b''\n"
    "while i<len(d):\n"
    " n,t=struct.unpack('>I4s',d[i:i+8]);c=d[i+8:i+8+n];i+=12+n\n"
    " if t==b'IHDR':w,h,bd,ct,_,_,il=struct.unpack('>IIBBBBB',c)\n"
    " elif t==b'IDAT':idat+=c\n"
    "assert bd==8 and ct in (2,6) and il==0\n"
    "bpp=3 if ct==2 else 4;raw=zlib.decompress(idat);st=w*bpp;prev=bytearray(st);cols={};o=0\n"
    "for y in range(h):\n"
    " f=raw[o];row=bytearray(raw[o+1:o+1+st]);o+=1+st\n"
    " for x in range(st):\n"
    "  a=row[x-bpp] if x>=bpp else 0;b=prev[x];cc=prev[x-bpp] if x>=bpp else 0\n"
    "  if f==1:row[x]=(row[x]+a)&255\n"
    "  elif f==2:row[x]=(row[x]+b)&255\n"
    "  elif f==3:row[x]=(row[x]+(a+b)//2)&255\n"
    "  elif f==4:\n"
    "   p=a+b-cc;pa=abs(p-a);pb=abs(p-b);pc=abs(p-cc)\n"
    "   row[x]=(row[x]+(a if pa<=pb and pa<=pc else b if pb<=pc else cc))&255\n"
    " for x in range(0,st,bpp):\n"
    "  k=bytes(row[x:x+3]);cols[k]=cols.get(k,0)+1\n"
    " prev=row\n"
    "print(w,h,len(cols),cols.get(bytes([0x2e,0x7d,0x32]),0),cols.get(bytes([0xc6,0x28,0x28]),0))\n";

/*
 * Done-when of issue 15: headless Chromium renders the summary offline into a PNG that is not blank
 * (many colours, the PASS green and FAIL red of the bars among them), and prints it on one page.
 */
static void test_chromium_renders(void **state)
{
    fixture *f = *state;
    export_day_summary sum;
    char why[512] = "", out[4096] = "";
    if (tu_sh(NULL, 0, "command -v chromium >/dev/null") != 0) {
        print_message("no chromium here (Debian package chromium): skipped\n");
        skip();
    }
    stick(f, "8m");
    assert_int_equal(export_to(f, f->media, &sum, why, sizeof why), IFPP_OK);
    char *png = tu_path(f->dir, "summary.png"), *pdf = tu_path(f->dir, "summary.pdf"), *py = tu_path(f->dir, "png.py");
    char *profile = tu_path(f->dir, "chromium-profile");
    assert_int_equal(tu_write_file(py, (const uint8_t *)png_stats_py, strlen(png_stats_py)), 0);
    const char *flags = "--headless --no-sandbox --disable-gpu --disable-background-networking "
                        "--disable-component-update --disable-sync --no-first-run";
    int rc = tu_sh(NULL, 0, "chromium %s --user-data-dir='%s' --screenshot='%s' --window-size=1200,1600 "
                             "'file://%s/%s' >/dev/null 2>&1", flags, profile, png, f->media, sum.html_name);
    assert_int_equal(rc, 0);
    if (getenv("IFPP_REPORT_PNG")) /* to look at it: IFPP_REPORT_PNG=/tmp/summary.png ./test_report */
        tu_sh(NULL, 0, "cp '%s' '%s'", png, getenv("IFPP_REPORT_PNG"));
    assert_int_equal(tu_sh(out, sizeof out, "python3 '%s' '%s'", py, png), 0);
    unsigned w = 0, h = 0, colours = 0, green = 0, red = 0;
    assert_int_equal(sscanf(out, "%u %u %u %u %u", &w, &h, &colours, &green, &red), 5);
    print_message("chromium screenshot %ux%u: %u distinct colours, %u PASS-green and %u FAIL-red pixels\n", w, h,
                  colours, green, red);
    assert_int_equal(w, 1200);
    assert_true(colours >= 8); /* a blank page has one */
    assert_true(green > 500);  /* the bars were drawn */
    assert_true(red > 50);
    rc = tu_sh(NULL, 0, "chromium %s --user-data-dir='%s' --no-pdf-header-footer --print-to-pdf='%s' "
                         "'file://%s/%s' >/dev/null 2>&1", flags, profile, pdf, f->media, sum.html_name);
    assert_int_equal(rc, 0);
    assert_int_equal(tu_sh(out, sizeof out, "grep -a -c '/Type /Page$\\|/Type /Page[^s]' '%s'", pdf), 0);
    print_message("printed: %s page object(s)\n", out);
    assert_int_equal(atoi(out), 1);
    free(png);
    free(pdf);
    free(py);
    free(profile);
}

/* Rows edited into odd shapes (a bare day as the time, a long UTF-8 slot name): exported whole, nothing read past them. */
static void test_odd_rows(void **state)
{
    fixture *f = *state;
    export_day_summary sum;
    char why[512] = "", sql[512], out[256] = "";
    sqlite3 *d;
    stick(f, "8m");
    assert_int_equal(sqlite3_open(f->L.db, &d), SQLITE_OK);
    snprintf(sql, sizeof sql, "UPDATE bpp SET updated_at = '%s', slot = 'fixture-' || replace(hex(zeroblob(30)), '00', "
                              "char(233)) WHERE dut_serial = 'DUT-0002'", f->day);
    assert_int_equal(sqlite3_exec(d, sql, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_changes(d), 1);
    sqlite3_close(d);
    assert_int_equal(export_to(f, f->media, &sum, why, sizeof why), IFPP_OK);
    assert_int_equal(sum.tables.rows, 4);
    size_t n;
    char *csv = slurp(f->media, sum.csv_name, &n), *html = slurp(f->media, sum.html_name, &n);
    snprintf(sql, sizeof sql, "\"%s\",\"\"", f->day); /* the bare day as finish time, no session seconds */
    assert_non_null(strstr(csv, sql));
    assert_non_null(strstr(html, "...</text>")); /* the long slot name drawn short */
    free(csv);
    free(html);
    /* and the HTML is still UTF-8 (the cut fell between characters) */
    char *p = tu_path(f->media, sum.html_name);
    assert_int_equal(tu_sh(out, sizeof out, "python3 -c \"open('%s', encoding='utf-8', errors='strict').read()\"", p),
                     0);
    free(p);
}

/* The content of a signed report at path, with its reportId (random per export) zeroed. */
static uint8_t *report_content(const cert *root, const char *path, size_t *len)
{
    size_t n;
    uint8_t *buf = tu_read_file(path, &n), *out;
    bundle_view v;
    tlv top, el;
    tlv_reader r0, r;
    char why[256] = "";
    assert_non_null(buf);
    assert_int_equal(bundle_open(buf, n, BUNDLE_LOADING_REPORT, root, time(NULL), &v, why, sizeof why), IFPP_OK);
    out = malloc(v.content_len);
    assert_non_null(out);
    memcpy(out, v.content, v.content_len);
    *len = v.content_len;
    bundle_view_free(&v);
    free(buf);
    tlv_reader_init(&r0, out, *len, TLV_DER);
    assert_int_equal(tlv_reader_next(&r0, &top), IFPP_OK);
    assert_int_equal(tlv_reader_enter(&r0, &top, &r), IFPP_OK);
    assert_int_equal(tlv_reader_expect(&r, 0x02, &el), IFPP_OK);
    assert_int_equal(tlv_reader_expect(&r, 0x04, &el), IFPP_OK);
    assert_int_equal(el.len, 16);
    memset(out + (el.value - out), 0, 16);
    return out;
}

/*
 * Issue 16.3: a day of many results, streamed both ways (report --out FILE and report --to DIR), gives the
 * same report content byte for byte, and verify streams it back from the file: every record counted.
 */
static void test_many_results_streamed(void **state)
{
    enum { CLONES = 3000 };
    fixture *f = *state;
    char why[512] = "", out[256] = "";
    stick(f, "64m");
    char *db = tu_path(f->dir, "many.db"), *file = tu_path(f->dir, "many-report.der");
    assert_int_equal(tu_sh(out, sizeof out, "cp '%s' '%s'", f->L.db, db), 0);
    /* CLONES more results of the day: copies of a PASS with their own transaction id, key and PIR binding */
    sqlite3 *d;
    sqlite3_stmt *src, *ins, *pir;
    assert_int_equal(sqlite3_open(db, &d), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(d, "SELECT b.txid, p.pir FROM bpp b JOIN pir p ON p.txid = b.txid"
                                           " WHERE b.state = 'installed' AND length(b.txid) = 16 LIMIT 1", -1, &src, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(src), SQLITE_ROW);
    uint8_t txid0[16], p0[1024];
    size_t pn = (size_t)sqlite3_column_bytes(src, 1), at = 0;
    assert_true(pn <= sizeof p0);
    memcpy(txid0, sqlite3_column_blob(src, 0), 16);
    memcpy(p0, sqlite3_column_blob(src, 1), pn);
    sqlite3_finalize(src);
    while (at + 16 <= pn && memcmp(p0 + at, txid0, 16))
        at++;
    assert_true(at + 16 <= pn);
    /* through a copy of the row, whatever columns the BPP table has */
    assert_int_equal(sqlite3_exec(d, "BEGIN; CREATE TEMP TABLE c AS SELECT * FROM bpp WHERE 0", NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(d, "INSERT INTO temp.c SELECT * FROM bpp WHERE txid = ?1", -1, &ins, NULL),
                     SQLITE_OK);
    sqlite3_bind_blob(ins, 1, txid0, 16, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(ins), SQLITE_DONE);
    sqlite3_finalize(ins);
    assert_int_equal(sqlite3_prepare_v2(d, "INSERT INTO bpp SELECT * FROM temp.c", -1, &ins, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(d, "INSERT INTO pir (txid, pir, success, received_at)"
                                           " SELECT ?1, ?2, 1, updated_at FROM temp.c", -1, &pir, NULL), SQLITE_OK);
    for (unsigned i = 0; i < CLONES; i++) {
        uint8_t t[16], k[65];
        memcpy(t, txid0, 16);
        t[0] ^= 0x80, t[14] = (uint8_t)(i >> 8), t[15] = (uint8_t)i;
        memset(k, 0, sizeof k);
        k[0] = 0x04, k[1] = 0xEE, k[63] = (uint8_t)(i >> 8), k[64] = (uint8_t)i;
        sqlite3_stmt *up;
        assert_int_equal(sqlite3_prepare_v2(d, "UPDATE temp.c SET txid = ?1, otpk = ?2, dut_serial = 'MANY-' || ?3",
                                            -1, &up, NULL), SQLITE_OK);
        sqlite3_bind_blob(up, 1, t, 16, SQLITE_STATIC);
        sqlite3_bind_blob(up, 2, k, 65, SQLITE_STATIC);
        sqlite3_bind_int(up, 3, (int)i);
        assert_int_equal(sqlite3_step(up), SQLITE_DONE);
        sqlite3_finalize(up);
        assert_int_equal(sqlite3_step(ins), SQLITE_DONE);
        sqlite3_reset(ins);
        memcpy(p0 + at, t, 16);
        sqlite3_bind_blob(pir, 1, t, 16, SQLITE_STATIC);
        sqlite3_bind_blob(pir, 2, p0, (int)pn, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(pir), SQLITE_DONE);
        sqlite3_reset(pir);
    }
    sqlite3_finalize(ins);
    sqlite3_finalize(pir);
    assert_int_equal(sqlite3_exec(d, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(d);

    store *s;
    export_summary one;
    export_day_summary day;
    assert_int_equal(store_open_readonly(db, &s, why, sizeof why), IFPP_OK);
    assert_int_equal(export_loading_report(s, "station-test", f->day, f->L.station_key, f->L.station, f->dm_root, file,
                                           &one, why, sizeof why), IFPP_OK);
    assert_int_equal(export_day_to_media(s, "station-test", f->day, f->L.station_key, f->L.station, f->dm_root,
                                         f->media, &day, why, sizeof why), IFPP_OK);
    store_close(s);
    assert_int_equal(one.results, CLONES + 3);
    assert_int_equal(one.pirs, CLONES + 2);
    assert_int_equal(day.plr.results, one.results);
    assert_int_equal(day.tables.rows, CLONES + 4);
    char *on_stick = tu_path(f->media, day.plr_name);
    size_t n1, n2;
    uint8_t *c1 = report_content(f->dm_root, file, &n1), *c2 = report_content(f->dm_root, on_stick, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(c1, c2, n1);
    free(c1);
    free(c2);
    /* verify, streamed from the file: the signature, then every record (each PIR parsed and bound to its record) */
    export_verify_summary vs;
    bool unreadable;
    assert_int_equal(export_verify_path(file, f->dm_root, NULL, time(NULL), &vs, &unreadable, why, sizeof why),
                     IFPP_OK);
    assert_int_equal(vs.type, BUNDLE_LOADING_REPORT);
    assert_int_equal(vs.records, CLONES + 3);
    assert_int_equal(vs.pirs_unchecked, CLONES + 2);
    assert_int_equal(vs.no_result, 1);
    free(on_stick);
    free(file);
    free(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused_destinations),
        cmocka_unit_test(test_full_stick),
        cmocka_unit_test(test_export_to_stick),
        cmocka_unit_test(test_cli),
        cmocka_unit_test(test_chromium_renders),
        cmocka_unit_test(test_many_results_streamed), /* on a copy of the store */
        cmocka_unit_test(test_odd_rows), /* last: it edits the store */
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
