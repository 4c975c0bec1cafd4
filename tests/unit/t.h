/* t.h - the unit test harness: checks that count, and the closing line ctest users read.
 *
 * Each check prints a line only when it fails, naming file and line. t_done() prints
 * "N passed, N failed" and returns the exit status, so a test can never pass by printing nothing.
 */
#ifndef STSGATE_T_H
#define STSGATE_T_H

#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static int t_passed, t_failed;

static inline int t_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Removes a directory tree a test made (its temporary data directory). */
static inline void t_rm_tree(const char *dir)
{
    nftw(dir, t_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

#define T_CHECK(cond)                                                                              \
    do {                                                                                           \
        if (cond) {                                                                                \
            t_passed++;                                                                            \
        } else {                                                                                   \
            t_failed++;                                                                            \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

#define T_EQ_INT(got, want)                                                                        \
    do {                                                                                           \
        long long t_g = (long long)(got), t_w = (long long)(want);                                 \
        if (t_g == t_w) {                                                                          \
            t_passed++;                                                                            \
        } else {                                                                                   \
            t_failed++;                                                                            \
            fprintf(stderr, "%s:%d: %s == %lld, want %lld\n", __FILE__, __LINE__, #got, t_g, t_w); \
        }                                                                                          \
    } while (0)

#define T_EQ_STR(got, want)                                                                        \
    do {                                                                                           \
        const char *t_g = (got), *t_w = (want);                                                    \
        if (t_g && t_w && strcmp(t_g, t_w) == 0) {                                                 \
            t_passed++;                                                                            \
        } else {                                                                                   \
            t_failed++;                                                                            \
            fprintf(stderr, "%s:%d: %s == \"%s\", want \"%s\"\n", __FILE__, __LINE__, #got,        \
                    t_g ? t_g : "(null)", t_w ? t_w : "(null)");                                   \
        }                                                                                          \
    } while (0)

static inline int t_done(void)
{
    printf("%d passed, %d failed\n", t_passed, t_failed);
    return t_failed == 0 && t_passed > 0 ? 0 : 1;
}

#endif
