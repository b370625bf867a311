/*
 * ifppctl.c -- the station's command line, as shipped: the dispatcher is agent/ifppctl_cli.c
 * (`ifppctl --help`, `ifppctl COMMAND --help`); this binary links no test code and knows only
 * the backends built in (drivers/fpa.c).
 */
#include "ifppctl_cli.h"

int main(int argc, char **argv)
{
    return ifppctl_main(argc, argv);
}
