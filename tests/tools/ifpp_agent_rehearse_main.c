/*
 * ifpp_agent_rehearse_main.c -- ifpp-agent-rehearse: the product's daemon (agentd_main) with the
 * simulator's `virtual` backend registered, for the tests, the benchmark and line rehearsal. A test
 * tool: the product's ifpp-agent links none of this.
 */
#include <stdio.h>

#include "agentd.h"
#include "fpa_virtual.h"
#include "station.h"

int main(int argc, char **argv)
{
    ifpp_err e = fpa_virtual_register();
    if (e != IFPP_OK) {
        fprintf(stderr, "ifpp-agent-rehearse: cannot register the virtual backend: %s\n", err_str(e));
        return STATION_EXIT_FAILURE;
    }
    return agentd_main(argc, argv);
}
