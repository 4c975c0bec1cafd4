/* test_cfg_bounce.c - bounce profiles: the unit body, the notice resolved against Default, and
 * the retry schedule (initial doubling to the maximum, bounce when retries or time run out). */
#include <string.h>

#include "cfg_bounce.h"
#include "t.h"

static void test_unit(void)
{
    struct cfg_bounce b, back;
    cfg_bounce_factory(&b);
    T_EQ_INT(b.max_retries, 100);
    T_EQ_INT(b.max_queue_lifetime, 259200);
    T_EQ_INT(b.initial_retry, 60);
    T_EQ_INT(b.max_retry, 3600);
    T_EQ_INT(b.hard_bounce_notice, CFG_NOTICE_YES);

    struct strbuf sb = STRBUF_INIT;
    cfg_bounce_encode(&b, &sb);
    T_EQ_STR(sb_str(&sb), "max_retries=100\nmax_queue_lifetime=259200\ninitial_retry=60\n"
                          "max_retry=3600\nhard_bounce_notice=yes\n");
    b.max_retries = 5;
    b.hard_bounce_notice = CFG_NOTICE_DEFAULT;
    sb_reset(&sb);
    cfg_bounce_encode(&b, &sb);
    T_CHECK(cfg_bounce_decode(sb_str(&sb), &back));
    T_EQ_INT(back.max_retries, 5);
    T_EQ_INT(back.hard_bounce_notice, CFG_NOTICE_DEFAULT);
    sb_free(&sb);

    T_CHECK(cfg_bounce_decode(NULL, &back));
    T_EQ_INT(back.max_retries, 100);
    T_CHECK(cfg_bounce_decode("hard_bounce_notice=no\n", &back));
    T_EQ_INT(back.hard_bounce_notice, CFG_NOTICE_NO);
    T_EQ_INT(back.max_queue_lifetime, 259200);
    /* Out of range keeps the factory value; max below initial is raised to it. */
    T_CHECK(
        !cfg_bounce_decode("max_retries=-1\ninitial_retry=0\nhard_bounce_notice=maybe\n", &back));
    T_EQ_INT(back.max_retries, 100);
    T_EQ_INT(back.initial_retry, 60);
    T_EQ_INT(back.hard_bounce_notice, CFG_NOTICE_YES);
    T_CHECK(cfg_bounce_decode("initial_retry=7200\nmax_retry=60\n", &back));
    T_EQ_INT(back.max_retry, 7200);

    T_EQ_STR(cfg_notice_label(CFG_NOTICE_DEFAULT), "Default");
    T_EQ_STR(cfg_notice_label(CFG_NOTICE_YES), "Yes");
    T_EQ_STR(cfg_notice_label(CFG_NOTICE_NO), "No");
}

static void test_effective(void)
{
    struct cfg_bounce def, p, out;
    cfg_bounce_factory(&def);
    cfg_bounce_factory(&p);
    p.hard_bounce_notice = CFG_NOTICE_DEFAULT;
    def.hard_bounce_notice = CFG_NOTICE_NO;
    cfg_bounce_effective(&p, &def, &out);
    T_EQ_INT(out.hard_bounce_notice, CFG_NOTICE_NO);
    def.hard_bounce_notice = CFG_NOTICE_YES;
    cfg_bounce_effective(&p, &def, &out);
    T_EQ_INT(out.hard_bounce_notice, CFG_NOTICE_YES);
    p.hard_bounce_notice = CFG_NOTICE_NO;
    cfg_bounce_effective(&p, &def, &out);
    T_EQ_INT(out.hard_bounce_notice, CFG_NOTICE_NO);
}

static void test_schedule(void)
{
    struct cfg_bounce b;
    long wait = -1;
    cfg_bounce_factory(&b);

    /* 60, 120, 240, ..., 1920, then 3600 for good. */
    static const long want[] = {60, 120, 240, 480, 960, 1920, 3600, 3600, 3600};
    long queued = 0;
    for (int i = 0; i < (int)(sizeof want / sizeof want[0]); i++) {
        T_EQ_INT(cfg_bounce_next(&b, i + 1, queued, &wait), CFG_RETRY_LATER);
        T_EQ_INT(wait, want[i]);
        queued += wait;
    }

    /* Retries run out: 100 retries allowed means attempt 101 is the last. */
    T_EQ_INT(cfg_bounce_next(&b, 100, 1000, &wait), CFG_RETRY_LATER);
    T_EQ_INT(cfg_bounce_next(&b, 101, 1000, &wait), CFG_RETRY_BOUNCE);
    T_EQ_INT(cfg_bounce_next(&b, 5000, 1000, &wait), CFG_RETRY_BOUNCE);

    /* Time runs out: never wait past the lifetime, bounce once it has passed. */
    T_EQ_INT(cfg_bounce_next(&b, 20, 259200 - 100, &wait), CFG_RETRY_LATER);
    T_EQ_INT(wait, 100);
    T_EQ_INT(cfg_bounce_next(&b, 20, 259200, &wait), CFG_RETRY_BOUNCE);
    T_EQ_INT(cfg_bounce_next(&b, 2, 300000, &wait), CFG_RETRY_BOUNCE);

    /* No retries at all: the first failure bounces. */
    b.max_retries = 0;
    T_EQ_INT(cfg_bounce_next(&b, 1, 0, &wait), CFG_RETRY_BOUNCE);

    /* A lifetime of 0: the first failure bounces too. */
    cfg_bounce_factory(&b);
    b.max_queue_lifetime = 0;
    T_EQ_INT(cfg_bounce_next(&b, 1, 0, &wait), CFG_RETRY_BOUNCE);

    /* Initial equal to maximum: no doubling. Huge attempt counts do not overflow. */
    cfg_bounce_factory(&b);
    b.initial_retry = b.max_retry = 600;
    b.max_retries = 10000;
    b.max_queue_lifetime = 3000000;
    T_EQ_INT(cfg_bounce_next(&b, 1, 0, &wait), CFG_RETRY_LATER);
    T_EQ_INT(wait, 600);
    T_EQ_INT(cfg_bounce_next(&b, 9000, 0, &wait), CFG_RETRY_LATER);
    T_EQ_INT(wait, 600);
    b.initial_retry = 1;
    b.max_retry = 86400;
    T_EQ_INT(cfg_bounce_next(&b, 9000, 0, &wait), CFG_RETRY_LATER);
    T_EQ_INT(wait, 86400);
    T_EQ_INT(cfg_bounce_next(&b, 3, 0, &wait), CFG_RETRY_LATER);
    T_EQ_INT(wait, 4);
    /* A negative age (clock stepped back) counts as 0. */
    T_EQ_INT(cfg_bounce_next(&b, 1, -50, &wait), CFG_RETRY_LATER);
    T_EQ_INT(wait, 1);
}

int main(void)
{
    test_unit();
    test_effective();
    test_schedule();
    return t_done();
}
