/* datadir.h - the data directory every stsgate program shares.
 *
 * Found as --data DIR, else $STSGATE_DATA, else ~/.local/share/stsgate. Prepared the same way by
 * the shell and the agent: created when missing (with parents), set to mode 0700 whatever mode it
 * had, with logs/ and configuration/ inside. */
#ifndef STSGATE_DATADIR_H
#define STSGATE_DATADIR_H

#include <stdbool.h>
#include <stddef.h>

bool datadir_resolve(const char *flag, char *out, size_t outlen);
bool datadir_prepare(const char *path, char *err, size_t errlen);
/* A file name as cli.md §1 reads it: absolute as given, else inside <data>/configuration/. */
void datadir_config_path(const char *datadir, const char *name, char *out, size_t outlen);

#endif
