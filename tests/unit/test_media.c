/*
 * test_media.c -- agent/media.c on its own: what a destination may be and how files land on it
 * (issue 15, item 2).
 *
 * Proves: the mount table decides by path components ("/m/sub" is not under a mount at "/m/su": with the
 * component check removed the test fails) and with its octal escapes undone; only regular files with the temporary prefix are
 * removed after a crash (a directory or symlink with that name, and every other file, stay);
 * a file name that is a path, hidden or empty is refused; a written file has exactly its bytes
 * and no temporary is left; an aborted one leaves nothing; a check that fails keeps the name free.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "media.h"
#include "testutil.h"

static char *dir;

static int setup(void **state)
{
    dir = tu_mkdtemp("ifpp-media");
    return dir ? 0 : -1;
}

static int teardown(void **state)
{
    tu_rmrf(dir);
    free(dir);
    return 0;
}

static void write_table(const char *path, const char *text)
{
    assert_int_equal(tu_write_file(path, (const uint8_t *)text, strlen(text)), 0);
}

static void test_mount_table(void **state)
{
    char *mi = tu_path(dir, "mountinfo"), *sub = tu_path(dir, "sub"), why[512] = "", table[1024];
    int fd = -1;
    assert_int_equal(mkdir(sub, 0755), 0);
    /* a mount point that is a string prefix of the path but not a path component of it */
    snprintf(table, sizeof table, "1 0 8:1 / / rw - ext4 /dev/sda rw\n2 1 8:2 / %s/su rw - vfat /dev/sdb rw\n", dir);
    write_table(mi, table);
    assert_int_equal(media_open_dest_at(sub, "/nonexistent", mi, &fd, why, sizeof why), IFPP_E_ARG);
    assert_non_null(strstr(why, "no mounted filesystem but '/'"));
    /* the directory itself, its name escaped as the kernel writes it (a space: \040) */
    char *spaced = tu_path(dir, "my stick");
    assert_int_equal(mkdir(spaced, 0755), 0);
    snprintf(table, sizeof table, "1 0 8:1 / / rw - ext4 /dev/sda rw\n2 1 8:2 / %s/my\\040stick rw - vfat /dev/sdb rw\n",
             dir);
    write_table(mi, table);
    assert_int_equal(media_open_dest_at(spaced, "/nonexistent", mi, &fd, why, sizeof why), IFPP_OK);
    close(fd);
    /* but not when the store lives on the same filesystem */
    char *db = tu_path(dir, "station.db");
    write_table(db, "x");
    assert_int_equal(media_open_dest_at(spaced, db, mi, &fd, why, sizeof why), IFPP_E_ARG);
    assert_non_null(strstr(why, "station's own filesystem"));
    /* no such directory */
    char *missing = tu_path(dir, "missing");
    assert_int_equal(media_open_dest_at(missing, "/nonexistent", mi, &fd, why, sizeof why), IFPP_E_NOT_FOUND);
    free(missing);
    free(db);
    free(spaced);
    free(sub);
    free(mi);
}

static void test_clean_temps(void **state)
{
    char *d = tu_path(dir, "clean"), *p;
    size_t removed = 99;
    char why[256] = "";
    assert_int_equal(mkdir(d, 0755), 0);
    p = tu_path(d, MEDIA_TMP_PREFIX "a-report.der");
    write_table(p, "half");
    free(p);
    p = tu_path(d, MEDIA_TMP_PREFIX "dir");
    assert_int_equal(mkdir(p, 0755), 0);
    free(p);
    p = tu_path(d, MEDIA_TMP_PREFIX "link");
    assert_int_equal(symlink("/etc/hostname", p), 0);
    free(p);
    p = tu_path(d, "yesterday.csv");
    write_table(p, "keep");
    free(p);
    int fd = open(d, O_RDONLY | O_DIRECTORY);
    assert_true(fd >= 0);
    assert_int_equal(media_clean_temps(fd, &removed, why, sizeof why), IFPP_OK);
    close(fd);
    assert_int_equal(removed, 1);
    struct stat st;
    p = tu_path(d, MEDIA_TMP_PREFIX "dir");
    assert_int_equal(lstat(p, &st), 0);
    free(p);
    p = tu_path(d, MEDIA_TMP_PREFIX "link");
    assert_int_equal(lstat(p, &st), 0);
    free(p);
    p = tu_path(d, "yesterday.csv");
    assert_int_equal(lstat(p, &st), 0);
    free(p);
    free(d);
}

static ifpp_err refuse(FILE *in, size_t size, void *arg, char *why, size_t why_len)
{
    int c = fgetc(in);
    *(int *)arg = c;
    snprintf(why, why_len, "checked %zu bytes and said no", size);
    return IFPP_E_SIGNATURE;
}

static void test_files(void **state)
{
    media_file *f = calloc(1, sizeof *f);
    char why[256] = "", *d = tu_path(dir, "files");
    assert_int_equal(mkdir(d, 0755), 0);
    int fd = open(d, O_RDONLY | O_DIRECTORY);
    assert_true(fd >= 0);
    assert_int_equal(media_file_begin(f, fd, "a/b", why, sizeof why), IFPP_E_ARG);
    assert_int_equal(media_file_begin(f, fd, ".hidden", why, sizeof why), IFPP_E_ARG);
    assert_int_equal(media_file_begin(f, fd, "", why, sizeof why), IFPP_E_ARG);
    /* a file bigger than the buffer, in pieces */
    assert_int_equal(media_file_begin(f, fd, "out.txt", why, sizeof why), IFPP_OK);
    for (int i = 0; i < 20000; i++)
        media_file_printf(f, "line %05d\n", i);
    assert_int_equal(media_file_commit(f, why, sizeof why), IFPP_OK);
    size_t n;
    char *p = tu_path(d, "out.txt");
    uint8_t *got = tu_read_file(p, &n);
    assert_int_equal(n, 20000 * 11);
    assert_memory_equal(got + 11 * 12345, "line 12345\n", 11);
    free(got);
    /* aborted: nothing */
    assert_int_equal(media_file_begin(f, fd, "gone.txt", why, sizeof why), IFPP_OK);
    media_file_printf(f, "x");
    media_file_abort(f);
    /* a check that fails: the old file keeps its name and content, no temporary stays */
    int first = -1;
    assert_int_equal(media_file_begin(f, fd, "out.txt", why, sizeof why), IFPP_OK);
    media_file_printf(f, "replacement");
    assert_int_equal(media_file_commit_checked(f, refuse, &first, why, sizeof why), IFPP_E_SIGNATURE);
    assert_int_equal(first, 'r'); /* the check read the temporary */
    assert_non_null(strstr(why, "checked 11 bytes"));
    got = tu_read_file(p, &n);
    assert_int_equal(n, 20000 * 11);
    free(got);
    free(p);
    close(fd);
    char out[64] = "";
    assert_int_equal(tu_sh(out, sizeof out, "ls -A '%s'", d), 0);
    assert_string_equal(out, "out.txt\n");
    free(d);
    free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mount_table),
        cmocka_unit_test(test_clean_temps),
        cmocka_unit_test(test_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
