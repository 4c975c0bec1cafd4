/* cfg_bounce.c - bounce profiles: unit form and the retry schedule. */
#include "cfg_bounce.h"

#include <stdio.h>
#include <string.h>

#include "cfg.h"
#include "kv.h"

void cfg_bounce_factory(struct cfg_bounce *b)
{
    b->max_retries = 100;
    b->max_queue_lifetime = 259200;
    b->initial_retry = 60;
    b->max_retry = 3600;
    b->hard_bounce_notice = CFG_NOTICE_YES;
}

static const char *const notice_keys[] = {"default", "yes", "no"};
static const char *const notice_labels[] = {"Default", "Yes", "No"};

const char *cfg_notice_label(enum cfg_notice n)
{
    return (unsigned)n < 3 ? notice_labels[n] : "?";
}

struct decode_ctx {
    struct cfg_bounce *b;
    bool ok;
};

static void set_long(struct decode_ctx *c, const char *value, long min, long max, long *field)
{
    long v;
    if (cfg_parse_long(value, min, max, &v))
        *field = v;
    else
        c->ok = false;
}

static int decode_one(void *arg, const char *key, const char *value)
{
    struct decode_ctx *c = arg;
    if (strcmp(key, "max_retries") == 0) {
        set_long(c, value, CFG_BOUNCE_RETRIES_MIN, CFG_BOUNCE_RETRIES_MAX, &c->b->max_retries);
    } else if (strcmp(key, "max_queue_lifetime") == 0) {
        set_long(c, value, CFG_BOUNCE_LIFETIME_MIN, CFG_BOUNCE_LIFETIME_MAX,
                 &c->b->max_queue_lifetime);
    } else if (strcmp(key, "initial_retry") == 0) {
        set_long(c, value, CFG_BOUNCE_INTERVAL_MIN, CFG_BOUNCE_INTERVAL_MAX, &c->b->initial_retry);
    } else if (strcmp(key, "max_retry") == 0) {
        set_long(c, value, CFG_BOUNCE_INTERVAL_MIN, CFG_BOUNCE_INTERVAL_MAX, &c->b->max_retry);
    } else if (strcmp(key, "hard_bounce_notice") == 0) {
        int i = 0;
        while (i < 3 && strcmp(value, notice_keys[i]) != 0)
            i++;
        if (i < 3)
            c->b->hard_bounce_notice = (enum cfg_notice)i;
        else
            c->ok = false;
    }
    return 0;
}

bool cfg_bounce_decode(const char *body, struct cfg_bounce *b)
{
    cfg_bounce_factory(b);
    if (!body)
        return true;
    struct decode_ctx c = {b, true};
    kv_parse(body, decode_one, &c);
    if (b->max_retry < b->initial_retry)
        b->max_retry = b->initial_retry;
    return c.ok;
}

void cfg_bounce_encode(const struct cfg_bounce *b, struct strbuf *sb)
{
    kv_put_long(sb, "max_retries", b->max_retries);
    kv_put_long(sb, "max_queue_lifetime", b->max_queue_lifetime);
    kv_put_long(sb, "initial_retry", b->initial_retry);
    kv_put_long(sb, "max_retry", b->max_retry);
    kv_put(
        sb, "hard_bounce_notice",
        notice_keys[(unsigned)b->hard_bounce_notice < 3 ? b->hard_bounce_notice : CFG_NOTICE_YES]);
}

void cfg_bounce_effective(const struct cfg_bounce *profile, const struct cfg_bounce *def,
                          struct cfg_bounce *out)
{
    *out = *profile;
    if (out->hard_bounce_notice == CFG_NOTICE_DEFAULT)
        out->hard_bounce_notice =
            def->hard_bounce_notice == CFG_NOTICE_NO ? CFG_NOTICE_NO : CFG_NOTICE_YES;
}

enum cfg_retry cfg_bounce_next(const struct cfg_bounce *b, long attempts, long queued, long *wait)
{
    long retries_made = attempts > 1 ? attempts - 1 : 0;
    if (queued < 0)
        queued = 0;
    if (retries_made >= b->max_retries || queued >= b->max_queue_lifetime)
        return CFG_RETRY_BOUNCE;
    /* initial * 2^retries_made, capped; doubling stops at the cap so it cannot overflow. */
    long w = b->initial_retry > 0 ? b->initial_retry : 1;
    long cap = b->max_retry > w ? b->max_retry : w;
    for (long i = 0; i < retries_made && w < cap; i++)
        w = w > cap / 2 ? cap : w * 2;
    if (w > cap)
        w = cap;
    if (w > b->max_queue_lifetime - queued)
        w = b->max_queue_lifetime - queued;
    *wait = w;
    return CFG_RETRY_LATER;
}
