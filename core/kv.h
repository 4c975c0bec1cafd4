/* kv.h - the text form of one configuration unit: "key=value" lines.
 *
 * Values may hold any byte but NUL: backslash and newline are escaped ("\\", "\n") so that a PEM
 * block fits on one line. The store keeps units in this form; the model turns them into structs. */
#ifndef STSGATE_KV_H
#define STSGATE_KV_H

#include "strbuf.h"

/* Called once per line; a non-zero return stops the walk and is returned by kv_parse. */
typedef int (*kv_fn)(void *arg, const char *key, const char *value);

int kv_parse(const char *body, kv_fn fn, void *arg);
void kv_put(struct strbuf *sb, const char *key, const char *value);
void kv_put_long(struct strbuf *sb, const char *key, long value);

#endif
