/* db_snapshot.c - load a committed version and decode it into a snapshot. */
#include "db_snapshot.h"

#include <stdio.h>
#include <stdlib.h>

#include "strbuf.h"

struct cfg_snapshot *db_cfg_snapshot(struct db_cfg *db, int64_t version, char *err, size_t errlen)
{
    struct db_units units = {0};
    if ((version == 0 && db_cfg_latest(db, &version) != DB_OK) ||
        db_cfg_load(db, version, &units) != DB_OK) {
        snprintf(err, errlen, "%s", db_cfg_error(db));
        return NULL;
    }
    struct cfg_unit_ref *refs = xcalloc(units.n ? units.n : 1, sizeof *refs);
    for (size_t i = 0; i < units.n; i++)
        refs[i] = (struct cfg_unit_ref){units.v[i].kind, units.v[i].name, units.v[i].body};
    struct cfg_snapshot *s = cfg_snapshot_build(version, refs, units.n);
    free(refs);
    db_units_free(&units);
    if (!s)
        snprintf(err, errlen, "cannot decode configuration version %lld", (long long)version);
    return s;
}
