/* db_factory.h - the configuration a new data directory starts with (cli.md §3): the factory
 * DEFAULT destination entry, SETUP, the Default bounce profile, both CA lists' factory state and
 * the self-signed Demo certificate. */
#ifndef STSGATE_DB_FACTORY_H
#define STSGATE_DB_FACTORY_H

#include "db_cfg.h"

/* A db_factory_fn for db_cfg_open(). */
void db_factory_units(struct db_units *out, void *arg);

#endif
