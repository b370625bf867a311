/* apdu.c -- APDU encoding, strict parsing, logical channels, STORE DATA framing; see apdu.h. */
#include "apdu.h"

#include <string.h>

ifpp_err apdu_encode(const apdu_cmd *cmd, bool allow_extended, uint8_t *out, size_t cap, size_t *n)
{
    if (!cmd || !out || !n || (cmd->nc && !cmd->data))
        return IFPP_E_ARG;
    if (cmd->nc > APDU_EXT_MAX_LC || cmd->ne > 65536)
        return IFPP_E_APDU_TOO_LONG;
    bool extended = cmd->nc > APDU_SHORT_MAX_LC || cmd->ne > 256;
    if (extended && !allow_extended)
        return IFPP_E_APDU_TOO_LONG;

    /* Header, then Lc (1 byte short; 00 + 2 bytes extended), data, Le (1 or 2 bytes). */
    size_t need = 4 + (cmd->nc ? (extended ? 3 : 1) + cmd->nc : 0) + (cmd->ne ? (extended ? 2 : 1) : 0);
    if (extended && !cmd->nc)
        need += 1; /* case 2E: 00 marker before the two Le bytes */
    if (need > cap)
        return IFPP_E_RANGE;

    size_t i = 0;
    out[i++] = cmd->cla;
    out[i++] = cmd->ins;
    out[i++] = cmd->p1;
    out[i++] = cmd->p2;
    if (extended) {
        out[i++] = 0x00; /* marks the extended form */
        if (cmd->nc) {
            out[i++] = (uint8_t)(cmd->nc >> 8);
            out[i++] = (uint8_t)cmd->nc;
            memcpy(out + i, cmd->data, cmd->nc);
            i += cmd->nc;
        }
        if (cmd->ne) {
            uint32_t le = cmd->ne == 65536 ? 0 : cmd->ne;
            out[i++] = (uint8_t)(le >> 8);
            out[i++] = (uint8_t)le;
        }
    } else {
        if (cmd->nc) {
            out[i++] = (uint8_t)cmd->nc;
            memcpy(out + i, cmd->data, cmd->nc);
            i += cmd->nc;
        }
        if (cmd->ne)
            out[i++] = (uint8_t)(cmd->ne == 256 ? 0 : cmd->ne);
    }
    *n = i;
    return IFPP_OK;
}

ifpp_err apdu_parse(const uint8_t *buf, size_t n, apdu_cmd *cmd)
{
    if (!buf || !cmd)
        return IFPP_E_ARG;
    if (n < 4)
        return IFPP_E_APDU_MALFORMED;
    memset(cmd, 0, sizeof *cmd);
    cmd->cla = buf[0];
    cmd->ins = buf[1];
    cmd->p1 = buf[2];
    cmd->p2 = buf[3];
    if (n == 4) /* case 1 */
        return IFPP_OK;
    if (n == 5) { /* case 2S */
        cmd->ne = buf[4] ? buf[4] : 256;
        return IFPP_OK;
    }
    if (buf[4] != 0) { /* short Lc */
        size_t lc = buf[4];
        if (n == 5 + lc) { /* case 3S */
        } else if (n == 6 + lc) { /* case 4S */
            cmd->ne = buf[n - 1] ? buf[n - 1] : 256;
        } else {
            return IFPP_E_APDU_MALFORMED;
        }
        cmd->data = buf + 5;
        cmd->nc = lc;
        return IFPP_OK;
    }
    /* buf[4] == 0 and n > 5: extended form. */
    if (n == 7) { /* case 2E */
        uint32_t le = (uint32_t)buf[5] << 8 | buf[6];
        cmd->ne = le ? le : 65536;
        return IFPP_OK;
    }
    if (n < 7)
        return IFPP_E_APDU_MALFORMED;
    size_t lc = (size_t)buf[5] << 8 | buf[6];
    if (lc == 0)
        return IFPP_E_APDU_MALFORMED;
    if (n == 7 + lc) { /* case 3E */
    } else if (n == 9 + lc) { /* case 4E */
        uint32_t le = (uint32_t)buf[n - 2] << 8 | buf[n - 1];
        cmd->ne = le ? le : 65536;
    } else {
        return IFPP_E_APDU_MALFORMED;
    }
    cmd->data = buf + 7;
    cmd->nc = lc;
    return IFPP_OK;
}

ifpp_err apdu_split_response(const uint8_t *resp, size_t n, size_t *data_len, uint16_t *sw)
{
    if (!resp || n < 2)
        return IFPP_E_APDU_MALFORMED;
    *data_len = n - 2;
    *sw = (uint16_t)(resp[n - 2] << 8 | resp[n - 1]);
    return IFPP_OK;
}

ifpp_err apdu_cla_for_channel(uint8_t cla, unsigned ch, uint8_t *out)
{
    if (ch > APDU_MAX_CHANNEL)
        return IFPP_E_APDU_CHANNEL;
    uint8_t proprietary = cla & 0x80, chaining = cla & 0x10;
    if (ch < 4) /* first interindustry: b2-b1 channel, b4-b3 secure messaging (none) */
        *out = (uint8_t)(proprietary | chaining | ch);
    else        /* further interindustry: b7 set, b4-b1 channel - 4 */
        *out = (uint8_t)(proprietary | 0x40 | chaining | (ch - 4));
    return IFPP_OK;
}

unsigned apdu_channel_of_cla(uint8_t cla)
{
    return (cla & 0x40) ? 4u + (cla & 0x0F) : (unsigned)(cla & 0x03);
}

size_t apdu_store_data_count(size_t n, size_t block_max)
{
    if (block_max == 0)
        return 0;
    return n == 0 ? 1 : (n + block_max - 1) / block_max;
}

ifpp_err apdu_store_data_block(const uint8_t *msg, size_t n, size_t block_max, size_t index, unsigned ch,
                               apdu_cmd *cmd)
{
    if (!msg || !cmd || n == 0 || block_max == 0 || block_max > APDU_EXT_MAX_LC)
        return IFPP_E_ARG;
    size_t count = apdu_store_data_count(n, block_max);
    if (count > 256)
        return IFPP_E_APDU_TOO_LONG;
    if (index >= count)
        return IFPP_E_RANGE;
    memset(cmd, 0, sizeof *cmd);
    ifpp_err e = apdu_cla_for_channel(0x80, ch, &cmd->cla);
    if (e != IFPP_OK)
        return e;
    cmd->ins = APDU_INS_STORE_DATA;
    cmd->p1 = index + 1 == count ? APDU_STORE_DATA_LAST : APDU_STORE_DATA_MORE;
    cmd->p2 = (uint8_t)index;
    cmd->data = msg + index * block_max;
    cmd->nc = index + 1 == count ? n - index * block_max : block_max;
    cmd->ne = 256; /* Le = 00: whatever the response holds */
    return IFPP_OK;
}

const char *apdu_sw_str(uint16_t sw)
{
    switch (sw & 0xFF00) {
    case SW_BYTES_AVAILABLE: return "response bytes available (61xx)";
    case SW_WRONG_LE: return "wrong Le, exact length given (6Cxx)";
    default: break;
    }
    switch (sw) {
    case SW_OK: return "success";
    case SW_WRONG_LENGTH: return "wrong length";
    case SW_LOGICAL_CHANNEL_UNSUPPORTED: return "logical channel not supported";
    case SW_SECURITY_NOT_SATISFIED: return "security status not satisfied";
    case SW_CONDITIONS_NOT_SATISFIED: return "conditions of use not satisfied";
    case SW_WRONG_DATA: return "incorrect data";
    case SW_FUNCTION_NOT_SUPPORTED: return "function not supported";
    case SW_FILE_NOT_FOUND: return "application or file not found";
    case SW_NOT_ENOUGH_MEMORY: return "not enough memory";
    case SW_INCORRECT_P1P2: return "incorrect P1-P2";
    case SW_REFERENCED_DATA_NOT_FOUND: return "referenced data not found";
    case SW_INS_NOT_SUPPORTED: return "instruction not supported";
    case SW_CLA_NOT_SUPPORTED: return "class not supported";
    default: return "card error";
    }
}

ifpp_err apdu_atr_extended_length(const uint8_t *atr, size_t n, bool *extended)
{
    if (!atr || !extended)
        return IFPP_E_ARG;
    *extended = false;
    if (n < 2 || (atr[0] != 0x3B && atr[0] != 0x3F))
        return IFPP_E_APDU_MALFORMED;
    size_t k = atr[1] & 0x0F, i = 2;
    uint8_t y = atr[1] >> 4;
    /* interface bytes: each TDi says which of TA/TB/TC/TD(i+1) follow */
    while (y) {
        size_t present = 0;
        for (unsigned b = 0; b < 4; b++)
            present += (y >> b) & 1u;
        if (present > n - i)
            return IFPP_E_APDU_MALFORMED;
        uint8_t td = (y & 8) ? atr[i + present - 1] : 0;
        i += present;
        y = td >> 4;
    }
    if (k > n - i)
        return IFPP_E_APDU_MALFORMED;
    const uint8_t *h = atr + i;
    if (k < 1 || h[0] != 0x80)
        return IFPP_OK; /* no compact-TLV historical bytes: no capabilities said, so short APDUs */
    for (size_t j = 1; j < k;) {
        uint8_t tag = h[j] >> 4;
        size_t len = h[j] & 0x0F;
        j++;
        if (len > k - j)
            return IFPP_E_APDU_MALFORMED;
        if (tag == 0x7 && len >= 3)
            *extended = (h[j + 2] & 0x40) != 0; /* third software function table, b7 */
        j += len;
    }
    return IFPP_OK;
}
