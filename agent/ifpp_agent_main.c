/* ifpp_agent_main.c -- the product's ifpp-agent: the daemon with the backends built in, nothing from tests/. */
#include "agentd.h"

int main(int argc, char **argv)
{
    return agentd_main(argc, argv);
}
