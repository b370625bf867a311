/*
 * agentd.h -- ifpp-agent's main as a library function, so that the product's daemon
 * (agent/ifpp_agent_main.c) and the test variant with the simulator's `virtual` backend
 * (tests/tools/ifpp_agent_rehearse_main.c) run the very same daemon.
 */
#ifndef IFPP_AGENTD_H
#define IFPP_AGENTD_H

/* Runs the daemon (or --check); returns the process's exit code (0, 1 station failure, 2 usage/configuration). */
int agentd_main(int argc, char **argv);

#endif
