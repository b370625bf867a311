/*
 * ifppctl_cli.h -- ifppctl's command dispatcher as a library function, so that the product's
 * ifppctl (agent/ifppctl.c) and the rehearsal tool under tests/ (which adds the simulator's
 * `virtual` backend) run the very same commands.
 */
#ifndef IFPP_IFPPCTL_CLI_H
#define IFPP_IFPPCTL_CLI_H

/* Runs one ifppctl command line (argv[0] is the program); returns its exit code (STATION_EXIT_*). */
int ifppctl_main(int argc, char **argv);

#endif
