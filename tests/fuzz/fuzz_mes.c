/*
 * fuzz_mes.c -- the MES request parser (agent/mes.c: mes_parse_request), the one place the daemon reads
 * a client's bytes. Any line must give IFPP_OK with every field inside its bounds, or IFPP_E_ARG with a
 * message; never a crash, a leak or a read past the line.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mes_request rq;
    char err[512];
    if (size > 65536)
        return 0; /* mes.max_line's upper bound */
    ifpp_err e = mes_parse_request((const char *)data, size, &rq, err, sizeof err);
    if (e == IFPP_OK) {
        if (strlen(rq.id) >= sizeof rq.id || strlen(rq.serial) >= sizeof rq.serial || strlen(rq.slot) >= sizeof rq.slot)
            abort();
        if (rq.op == MES_OP_PROVISION && (!rq.serial[0] || (rq.complete && rq.additional_profile)))
            abort();
    } else if (e != IFPP_E_ARG || !err[0]) {
        abort();
    }
    return 0;
}
