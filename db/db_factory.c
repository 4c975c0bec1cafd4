/* db_factory.c - the units of version 1 of a new data directory. */
#include "db_factory.h"

#include <stdlib.h>

#include "cfg.h"
#include "cfg_bounce.h"
#include "kv.h"
#include "strbuf.h"
#include "tlscert.h"

void db_factory_units(struct db_units *out, void *arg)
{
    struct strbuf sb = STRBUF_INIT;
    struct cfg_dest def;
    struct cfg_setup setup;
    (void)arg;

    cfg_dest_factory(&def);
    cfg_dest_write(&def, true, false, &sb);
    db_units_add(out, CFG_KIND_DEST, CFG_UNIT_DEFAULT, sb_str(&sb));

    sb_reset(&sb);
    cfg_setup_factory(&setup);
    cfg_setup_encode(&setup, &sb);
    db_units_add(out, CFG_KIND_DEST, CFG_UNIT_SETUP, sb_str(&sb));

    /* Written by bounceconfig's own encoder, so editing it back to the factory values is seen as
     * no change. */
    struct cfg_bounce bounce;
    cfg_bounce_factory(&bounce);
    sb_reset(&sb);
    cfg_bounce_encode(&bounce, &sb);
    db_units_add(out, CFG_KIND_BOUNCE, CFG_BOUNCE_DEFAULT, sb_str(&sb));

    char *cert = NULL, *key = NULL;
    if (cert_make_selfsigned("stsgate Demo", 3650, &cert, &key)) {
        sb_reset(&sb);
        kv_put(&sb, "certificate", cert);
        kv_put(&sb, "key", key);
        db_units_add(out, CFG_KIND_CERT, "Demo", sb_str(&sb));
    }
    free(cert);
    free(key);

    /* Written by the same encoder certconfig uses, so setting the factory state back is seen as
     * no change. */
    struct cert_ca_cfg ca;
    cert_ca_factory(&ca);
    sb_reset(&sb);
    cert_ca_encode(&ca, &sb);
    db_units_add(out, CFG_KIND_CERT, CFG_UNIT_CA, sb_str(&sb));
    cert_ca_free(&ca);
    sb_free(&sb);
}
