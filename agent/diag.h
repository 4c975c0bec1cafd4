/* diag.h - stsgated's diagnostics: check-record, check-policy, match-mx, --version, --help.
 *
 * Promises (docs: reference/stsgated.md "Diagnostics"): they need no data directory, print their
 * result to stdout, and return the exit status: 0 valid/match, 1 invalid/no match, 2 only for a
 * usage error (explained on stderr, with the usage text).
 */
#ifndef STSGATE_DIAG_H
#define STSGATE_DIAG_H

#include <stdbool.h>
#include <stdio.h>

/* The usage text: the full command line of stsgated. */
void diag_usage(FILE *f);

/* Runs the diagnostic named by argv[0] (argc >= 1: argv is stsgated's argv without the program
 * name) and stores its exit status in *status. Returns false, touching nothing, when argv[0] is
 * not a diagnostic but an option of the delivery agent (it begins with '-'). An unknown command
 * word is a usage error handled here. */
bool diag_dispatch(int argc, char **argv, int *status);

#endif
