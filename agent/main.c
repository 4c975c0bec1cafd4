/* main.c - stsgated's entry point: the diagnostics, else the delivery agent.
 *
 * Kept small on purpose: the agent's run mode replaces the branch below.
 */
#include "diag.h"

#include <stdio.h>

int main(int argc, char **argv)
{
    int status;
    if (argc >= 2 && diag_dispatch(argc - 1, argv + 1, &status))
        return status;

    /* The delivery agent (no subcommand) comes with a later issue. */
    fprintf(stderr, "stsgated: the delivery agent is not built yet; only check-record, "
                    "check-policy, match-mx, --version and --help are available.\n");
    return 2;
}
