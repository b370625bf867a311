/*
 * test_fsutil.c -- files from media and configuration are read only if they are regular files
 * (issue 8, item 9; issue 9, item 3): a FIFO, a device or a symbolic link is refused before a byte
 * is read and without blocking; a private key that group or others may read is refused as ssh
 * refuses one; an encrypted PEM key is refused without asking for a passphrase (GENS02: keys
 * come from a file or a token, never from an operator's keyboard).
 *
 * Every reader goes through fs_open_regular: the bundle importer, certificates, keys, the
 * virtual card file. On the old code the FIFO and /dev/zero cases never returned (the test hit
 * its ctest timeout), the symlink and 0644 key loaded, and the encrypted key read its passphrase
 * from stdin.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "cert.h"
#include "crypto.h"
#include "fsutil.h"
#include "testpki.h"
#include "testutil.h"

typedef struct {
    char *dir, *pki, *fifo, *link_cert, *key, *cert;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    char why[256] = "";
    *state = f; /* teardown frees it, set up or not */
    if (!f)
        return -1;
    f->dir = tu_mkdtemp("ifpp-fsutil");
    f->pki = tu_path(f->dir, "pki");
    testpki_opts o = {.out_dir = f->pki, .curve = CRYPTO_CURVE_P256, .n_eids = 1, .days = 30};
    if (testpki_make(&o, why, sizeof why) != IFPP_OK) {
        fprintf(stderr, "testpki: %s\n", why);
        return -1;
    }
    f->fifo = tu_path(f->dir, "fifo");
    f->link_cert = tu_path(f->dir, "link.cert.pem");
    f->key = tu_path(f->pki, "station.key.pem");
    f->cert = tu_path(f->pki, "ci.cert.pem");
    return mkfifo(f->fifo, 0600) == 0 && symlink(f->cert, f->link_cert) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    fx *f = *state;
    tu_rmrf(f->dir);
    free(f->dir), free(f->pki), free(f->fifo), free(f->link_cert), free(f->key), free(f->cert);
    free(f);
    return 0;
}

/* A FIFO on a stick (nobody writes to it) is refused at once, by every reader; the message names it. */
static void test_fifo_refused_without_hanging(void **state)
{
    fx *f = *state;
    uint8_t *buf = NULL;
    size_t n;
    cert *c = NULL;
    crypto_key *k = NULL;
    char why[512] = "";
    assert_int_equal(fs_read_all(f->fifo, 1024, &buf, &n), IFPP_E_IO);
    assert_int_equal(cert_load_pem(f->fifo, &c), IFPP_E_IO);
    assert_int_equal(crypto_key_load_pem(f->fifo, &k), IFPP_E_IO);
    assert_int_equal(fs_read_all_why(f->fifo, 1024, &buf, &n, why, sizeof why), IFPP_E_IO);
    assert_non_null(strstr(why, f->fifo));
    assert_non_null(strstr(why, "FIFO"));
    assert_null(c);
    assert_null(k);
}

/* A symbolic link is refused even when it points at a good certificate: media must hold the file itself. */
static void test_symlink_refused(void **state)
{
    fx *f = *state;
    cert *c = NULL;
    char why[512] = "";
    assert_int_equal(cert_load_pem(f->cert, &c), IFPP_OK); /* the target itself is fine */
    cert_free(c);
    c = NULL;
    assert_int_equal(cert_load_pem(f->link_cert, &c), IFPP_E_IO);
    assert_null(c);
    assert_int_equal(cert_load_pem_why(f->link_cert, &c, why, sizeof why), IFPP_E_IO);
    assert_non_null(strstr(why, "symbolic link"));
}

/* A device that streams without end (/dev/zero) is refused before a byte is read. */
static void test_device_refused(void **state)
{
    (void)state;
    cert *c = NULL;
    crypto_key *k = NULL;
    uint8_t *buf;
    size_t n;
    char why[512] = "";
    assert_int_equal(cert_load_pem("/dev/zero", &c), IFPP_E_IO);
    assert_int_equal(crypto_key_load_pem("/dev/zero", &k), IFPP_E_IO);
    assert_int_equal(fs_read_all_why("/dev/zero", 1024, &buf, &n, why, sizeof why), IFPP_E_IO);
    assert_non_null(strstr(why, "character device"));
    assert_int_equal(fs_read_all_why("/", 1024, &buf, &n, why, sizeof why), IFPP_E_IO);
    assert_non_null(strstr(why, "directory"));
}

/* A private key readable by group or others is refused, in ssh's words; 0600 loads; a public key may be 0644. */
static void test_open_key_refused(void **state)
{
    fx *f = *state;
    crypto_key *k = NULL;
    char why[512] = "", want[600];
    assert_int_equal(chmod(f->key, 0600), 0);
    assert_int_equal(crypto_key_load_pem(f->key, &k), IFPP_OK);
    char *pub = tu_path(f->dir, "station.pub.pem");
    assert_int_equal(crypto_key_save_public_pem(k, pub), IFPP_OK);
    crypto_key_free(k);
    k = NULL;
    assert_int_equal(chmod(pub, 0644), 0);
    assert_int_equal(crypto_key_load_pem(pub, &k), IFPP_OK);
    crypto_key_free(k);
    k = NULL;
    free(pub);

    assert_int_equal(chmod(f->key, 0644), 0);
    assert_int_equal(crypto_key_load_pem(f->key, &k), IFPP_E_ARG);
    assert_null(k);
    assert_int_equal(crypto_key_load_pem_why(f->key, &k, why, sizeof why), IFPP_E_ARG);
    snprintf(want, sizeof want, "permissions 0644 for %s are too open", f->key);
    assert_non_null(strstr(why, want));
    assert_int_equal(chmod(f->key, 0640), 0);
    assert_int_equal(crypto_key_load_pem(f->key, &k), IFPP_E_ARG);
    assert_int_equal(chmod(f->key, 0600), 0);
}

/*
 * An encrypted key is refused without a prompt. The loader runs in a child with no controlling
 * terminal and the right passphrase waiting on its stdin: the old loader (OpenSSL's default
 * callback) read it from there and loaded the key; the station must not ask at all.
 */
static void test_encrypted_key_refused_without_prompt(void **state)
{
    fx *f = *state;
    crypto_key *k = NULL;
    assert_int_equal(crypto_key_load_pem(f->key, &k), IFPP_OK);
    char *enc = tu_path(f->dir, "encrypted.key.pem");
    FILE *out = fopen(enc, "w");
    assert_non_null(out);
    /* the key's EVP_PKEY is private to crypto.c: read it back through OpenSSL from the plain PEM */
    FILE *in = fopen(f->key, "r");
    assert_non_null(in);
    EVP_PKEY *plain = PEM_read_PrivateKey(in, NULL, NULL, NULL);
    fclose(in);
    assert_non_null(plain);
    assert_int_equal(PEM_write_PrivateKey(out, plain, EVP_aes_256_cbc(), NULL, 0, NULL, (void *)"secret"), 1);
    fclose(out);
    EVP_PKEY_free(plain);
    crypto_key_free(k);
    assert_int_equal(chmod(enc, 0600), 0);

    int fds[2];
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(write(fds[1], "secret\n", 7), 7);
    close(fds[1]);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setsid(); /* no controlling terminal: a prompt could only read stdin */
        dup2(fds[0], 0);
        crypto_key *ck = NULL;
        char why[512] = "";
        ifpp_err e = crypto_key_load_pem_why(enc, &ck, why, sizeof why);
        _exit(e == IFPP_E_BAD_KEY && strstr(why, "encrypted") ? 0 : e == IFPP_OK ? 10 : 11);
    }
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    free(enc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_refused_without_hanging),
        cmocka_unit_test(test_symlink_refused),
        cmocka_unit_test(test_device_refused),
        cmocka_unit_test(test_open_key_refused),
        cmocka_unit_test(test_encrypted_key_refused_without_prompt),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
