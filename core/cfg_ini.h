/* cfg_ini.h - the destconfig IMPORT/EXPORT file (cli.md §2.5): an INI text with a [DEFAULT]
 * section and one section per domain.
 *
 * Import is all-or-nothing: every error is reported with its line number, and a table is only
 * produced when there was none. Export writes every [DEFAULT] key and each domain's own keys, so
 * that export then import gives back the same table. */
#ifndef STSGATE_CFG_INI_H
#define STSGATE_CFG_INI_H

#include "cfg.h"
#include "strbuf.h"

struct cfg_dest_entry {
    char domain[CFG_DOMAIN_MAX + 3];
    struct cfg_dest d;
};

struct cfg_dest_table {
    struct cfg_dest def;
    struct cfg_dest_entry *v;
    size_t n, cap;
};

typedef bool (*cfg_profile_exists_fn)(void *arg, const char *name);

/* Returns the number of errors, each appended to errors as "Line N: <text>\n". profile_exists
 * (may be NULL) checks bounce profile names. */
int cfg_dest_import(const char *text, cfg_profile_exists_fn profile_exists, void *arg,
                    struct cfg_dest_table *out, struct strbuf *errors);
/* Entries are written in the order given (callers pass them sorted). */
void cfg_dest_export(const struct cfg_dest_table *t, struct strbuf *out);
void cfg_dest_table_free(struct cfg_dest_table *t);

#endif
