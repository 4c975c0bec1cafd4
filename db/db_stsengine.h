/* db_stsengine.h - binds the policy cache store (db_stscache.h) to the MTA-STS engine's store
 * interface (core/sts_engine.h), so that core never links SQLite.
 *
 * The binding holds only the handle: the caller keeps the db_stscache open while the engine
 * lives, and uses it from the engine's thread only.
 */
#ifndef STSGATE_DB_STSENGINE_H
#define STSGATE_DB_STSENGINE_H

#include "db_stscache.h"
#include "sts_engine.h"

/* Fills *out with functions over c. */
void db_stsengine_store(struct db_stscache *c, struct sts_store *out);

#endif
