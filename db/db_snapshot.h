/* db_snapshot.h - a committed configuration version from the store, decoded into a cfg_snapshot
 * (core/cfg_snapshot.h): what the agent uses for delivery and the shell's live checks
 * (tlsverify, daneverify) use to act as a delivery would. */
#ifndef STSGATE_DB_SNAPSHOT_H
#define STSGATE_DB_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "cfg_snapshot.h"
#include "db_cfg.h"

/* Loads version (0: the newest) and decodes it. NULL with err on failure. */
struct cfg_snapshot *db_cfg_snapshot(struct db_cfg *db, int64_t version, char *err, size_t errlen);

#endif
