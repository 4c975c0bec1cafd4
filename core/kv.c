/* kv.c - encode and decode the "key=value" lines of a configuration unit. */
#include "kv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void kv_put(struct strbuf *sb, const char *key, const char *value)
{
    sb_append(sb, key);
    sb_append_len(sb, "=", 1);
    for (const char *p = value; *p; p++) {
        if (*p == '\\')
            sb_append_len(sb, "\\\\", 2);
        else if (*p == '\n')
            sb_append_len(sb, "\\n", 2);
        else
            sb_append_len(sb, p, 1);
    }
    sb_append_len(sb, "\n", 1);
}

void kv_put_long(struct strbuf *sb, const char *key, long value)
{
    char num[32];
    snprintf(num, sizeof num, "%ld", value);
    kv_put(sb, key, num);
}

int kv_parse(const char *body, kv_fn fn, void *arg)
{
    struct strbuf key = STRBUF_INIT, value = STRBUF_INIT;
    int rc = 0;
    const char *p = body;
    while (*p && rc == 0) {
        const char *eol = strchr(p, '\n');
        const char *end = eol ? eol : p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (eq) {
            sb_reset(&key);
            sb_reset(&value);
            sb_append_len(&key, p, (size_t)(eq - p));
            for (const char *q = eq + 1; q < end; q++) {
                if (*q == '\\' && q + 1 < end) {
                    q++;
                    sb_append_len(&value, *q == 'n' ? "\n" : q, 1);
                } else {
                    sb_append_len(&value, q, 1);
                }
            }
            rc = fn(arg, sb_str(&key), sb_str(&value));
        }
        p = eol ? eol + 1 : end;
    }
    sb_free(&key);
    sb_free(&value);
    return rc;
}
