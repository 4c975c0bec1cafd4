/* cfg_snapshot.c - a decoded, immutable, reference-counted configuration version. */
#include "cfg_snapshot.h"

#include <stdlib.h>
#include <string.h>

#include "kv.h"
#include "strbuf.h"

struct unit {
    char *kind;
    char *name;
    char *body;
    struct cfg_dest dest; /* decoded, for destconfig entries */
};

struct cfg_snapshot {
    unsigned refs;
    int64_t version;
    struct unit *v;
    size_t n;
    struct cfg_dest def;
    struct cfg_setup setup;
    char hostname[256];
};

static int unit_cmp(const void *a, const void *b)
{
    const struct unit *x = a, *y = b;
    int c = strcmp(x->kind, y->kind);
    return c ? c : strcmp(x->name, y->name);
}

static const struct unit *find(const struct cfg_snapshot *s, const char *kind, const char *name)
{
    struct unit key = {.kind = (char *)kind, .name = (char *)name};
    return bsearch(&key, s->v, s->n, sizeof *s->v, unit_cmp);
}

static int hostname_one(void *arg, const char *key, const char *value)
{
    if (strcmp(key, "hostname") == 0)
        strncpy(arg, value, 255);
    return 0;
}

struct cfg_snapshot *cfg_snapshot_build(int64_t version, const struct cfg_unit_ref *units, size_t n)
{
    struct cfg_snapshot *s = xcalloc(1, sizeof *s);
    s->refs = 1;
    s->version = version;
    s->v = xcalloc(n ? n : 1, sizeof *s->v);
    s->n = n;
    for (size_t i = 0; i < n; i++) {
        s->v[i].kind = xstrdup(units[i].kind);
        s->v[i].name = xstrdup(units[i].name);
        s->v[i].body = xstrdup(units[i].body);
    }
    qsort(s->v, s->n, sizeof *s->v, unit_cmp);

    const struct unit *u = find(s, CFG_KIND_DEST, CFG_UNIT_DEFAULT);
    if (u)
        cfg_dest_decode(u->body, true, &s->def);
    else
        cfg_dest_factory(&s->def);
    u = find(s, CFG_KIND_DEST, CFG_UNIT_SETUP);
    if (u)
        cfg_setup_decode(u->body, &s->setup);
    else
        cfg_setup_factory(&s->setup);
    u = find(s, CFG_KIND_HOSTNAME, CFG_UNIT_HOSTNAME);
    if (u)
        kv_parse(u->body, hostname_one, s->hostname);
    for (size_t i = 0; i < s->n; i++) {
        struct unit *x = &s->v[i];
        if (strcmp(x->kind, CFG_KIND_DEST) == 0 && strcmp(x->name, CFG_UNIT_DEFAULT) != 0 &&
            strcmp(x->name, CFG_UNIT_SETUP) != 0) {
            struct cfg_dest own;
            cfg_dest_decode(x->body, false, &own);
            cfg_dest_effective(&own, &s->def, &x->dest);
        }
    }
    return s;
}

struct cfg_snapshot *cfg_snapshot_ref(struct cfg_snapshot *s)
{
    s->refs++;
    return s;
}

void cfg_snapshot_unref(struct cfg_snapshot *s)
{
    if (!s || --s->refs > 0)
        return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i].kind);
        free(s->v[i].name);
        free(s->v[i].body);
    }
    free(s->v);
    free(s);
}

int64_t cfg_snapshot_version(const struct cfg_snapshot *s)
{
    return s->version;
}

const char *cfg_snapshot_hostname(const struct cfg_snapshot *s)
{
    return s->hostname;
}

const struct cfg_setup *cfg_snapshot_setup(const struct cfg_snapshot *s)
{
    return &s->setup;
}

const struct cfg_dest *cfg_snapshot_default(const struct cfg_snapshot *s)
{
    return &s->def;
}

void cfg_snapshot_dest(const struct cfg_snapshot *s, const char *domain, struct cfg_dest *out,
                       const char **entry)
{
    const struct unit *u = find(s, CFG_KIND_DEST, domain);
    /* Longest wildcard first: ".b.example.com" is tried before ".example.com". */
    for (const char *p = strchr(domain, '.'); !u && p; p = strchr(p + 1, '.'))
        u = find(s, CFG_KIND_DEST, p);
    if (u && strcmp(u->name, CFG_UNIT_DEFAULT) != 0 && strcmp(u->name, CFG_UNIT_SETUP) != 0) {
        *out = u->dest;
        if (entry)
            *entry = u->name;
        return;
    }
    cfg_dest_effective(&s->def, &s->def, out);
    if (entry)
        *entry = CFG_UNIT_DEFAULT;
}

const char *cfg_snapshot_unit(const struct cfg_snapshot *s, const char *kind, const char *name)
{
    const struct unit *u = find(s, kind, name);
    return u ? u->body : NULL;
}

int cfg_snapshot_each(const struct cfg_snapshot *s, const char *kind,
                      int (*fn)(void *arg, const char *name, const char *body), void *arg)
{
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->v[i].kind, kind) != 0)
            continue;
        int rc = fn(arg, s->v[i].name, s->v[i].body);
        if (rc)
            return rc;
    }
    return 0;
}
