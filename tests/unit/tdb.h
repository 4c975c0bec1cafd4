/* tdb.h - for the unit tests of the SQLite stores: what the query planner makes of a statement,
 * so that a test can require an index. Header-only (static inline), like t.h. */
#ifndef STSGATE_TDB_H
#define STSGATE_TDB_H

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

/* The EXPLAIN QUERY PLAN lines of sql on the database at path, joined with '|', into out. */
static inline void t_query_plan(const char *path, const char *sql, char *out, size_t size)
{
    sqlite3 *db;
    out[0] = '\0';
    if (sqlite3_open(path, &db) != SQLITE_OK)
        return;
    char q[1024];
    snprintf(q, sizeof q, "EXPLAIN QUERY PLAN %s", sql);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, q, -1, &st, NULL) == SQLITE_OK) {
        while (sqlite3_step(st) == SQLITE_ROW) {
            const unsigned char *d = sqlite3_column_text(st, 3);
            size_t n = strlen(out);
            snprintf(out + n, size - n, "%s|", d ? (const char *)d : "");
        }
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
}

#endif
