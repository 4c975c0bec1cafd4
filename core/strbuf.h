/* strbuf.h - a growable, always NUL-terminated byte buffer.
 *
 * Allocation failure is fatal (the process cannot do anything useful without memory), so the
 * append functions return nothing and callers never check. */
#ifndef STSGATE_STRBUF_H
#define STSGATE_STRBUF_H

#include <stdarg.h>
#include <stddef.h>

struct strbuf {
    char *buf; /* never NULL after the first append; "" before */
    size_t len;
    size_t cap;
};

#define STRBUF_INIT                                                                                \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

void sb_append(struct strbuf *sb, const char *s);
void sb_append_len(struct strbuf *sb, const char *s, size_t n);
void sb_printf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_vprintf(struct strbuf *sb, const char *fmt, va_list ap);
void sb_reset(struct strbuf *sb);
void sb_free(struct strbuf *sb);
/* The contents, "" for an empty buffer. */
const char *sb_str(const struct strbuf *sb);
/* Hands the buffer to the caller (free() it) and leaves sb empty. */
char *sb_steal(struct strbuf *sb);

/* Fatal allocation helpers shared by every module. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

#endif
