/*
 * fuzz_card.c -- libFuzzer target for the software eUICC's command interface: the APDUs a
 * hostile station or a garbled transport could send. The input is a sequence of APDUs, each
 * prefixed by a 2-byte length. The card must answer every one with a status word and never
 * crash, over-read or leak; it is personalised once with throw-away keys (no PKI needed: a
 * fuzzed chain never verifies).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "euicc_sim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char state_path[64];

static void remove_state(void)
{
    unlink(state_path);
}

static void personalise(void)
{
    crypto_key *ek = NULL, *otk = NULL;
    snprintf(state_path, sizeof state_path, "/tmp/ifpp-fuzz-card-%d.der", (int)getpid());
    unlink(state_path);
    crypto_key_generate(CRYPTO_CURVE_P256, &ek);
    crypto_key_generate(CRYPTO_CURVE_P256, &otk);
    static const uint8_t dummy[] = {0x30, 0x00};
    const crypto_key *otks[1] = {otk};
    euicc_sim_personalisation p = {.euicc_key = ek, .euicc_cert_der = dummy, .euicc_cert_len = 2,
                                   .eum_cert_der = dummy, .eum_cert_len = 2, .ci_cert_der = dummy,
                                   .ci_cert_len = 2, .dm_root_cert_der = dummy, .dm_root_cert_len = 2,
                                   .otks = otks, .n_otks = 1};
    memset(p.eid, 0x89, 16);
    if (euicc_sim_personalise(state_path, &p) != IFPP_OK)
        abort();
    crypto_key_free(ek);
    crypto_key_free(otk);
    atexit(remove_state);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!state_path[0])
        personalise();
    euicc_sim *card;
    if (euicc_sim_open(state_path, &card) != IFPP_OK)
        abort();
    uint8_t atr[33], resp[70000];
    size_t n;
    euicc_sim_set_t0(card, size && (data[0] & 1));
    euicc_sim_reset(card, atr, sizeof atr, &n);
    size_t off = 1;
    while (off + 2 <= size) {
        size_t len = (size_t)data[off] << 8 | data[off + 1];
        off += 2;
        if (len > size - off)
            len = size - off;
        if (euicc_sim_transmit(card, data + off, len, resp, sizeof resp, &n) == IFPP_OK && n < 2)
            abort();
        off += len;
    }
    euicc_sim_close(card);
    return 0;
}
