/* diag.c - stsgated's diagnostics (see diag.h): thin wrappers that print what the pure MTA-STS
 * functions in core/ decide, so that scripts and tests can ask the same code the agent uses.
 */
#include "diag.h"

#include "sts_mx.h"
#include "sts_policy.h"
#include "sts_record.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#ifndef STSGATE_VERSION
#define STSGATE_VERSION "unknown"
#endif

void diag_usage(FILE *f)
{
    fputs("usage: stsgated [--data DIR] [--listen ADDR:PORT]... [--relay CIDR]... "
          "[--max-size BYTES]\n"
          "                [--max-rcpt N] [--max-conn N] [--log-level LEVEL] "
          "[--sts-fetch-timeout S]\n"
          "       stsgated check-record '<txt record>'\n"
          "       stsgated check-policy [FILE|-]\n"
          "       stsgated match-mx <pattern> <host>\n"
          "       stsgated --version | --help\n"
          "\n"
          "Diagnostics (no data directory needed; exit 0 valid or match, 1 invalid or no match,\n"
          "2 usage error):\n"
          "  check-record   check one MTA-STS TXT record: 'valid id=<id>' or 'invalid: <reason>'\n"
          "  check-policy   check an MTA-STS policy from FILE or stdin ('-' or no FILE):\n"
          "                 'valid mode=<mode> max_age=<n> mx=<p1>,...' or 'invalid: <reason>'\n"
          "  match-mx       does MX host <host> match policy pattern <pattern>: 'match' or "
          "'no match'\n",
          f);
}

static int usage_error(const char *fmt, const char *arg)
{
    fputs("stsgated: ", stderr);
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    diag_usage(stderr);
    return 2;
}

static int check_record(int argc, char **argv)
{
    if (argc != 2)
        return usage_error("%s takes exactly one argument: the TXT record text", argv[0]);
    char reason[STS_REASON_MAX];
    struct sts_record rec;
    if (sts_record_parse(argv[1], strlen(argv[1]), &rec, reason, sizeof reason) !=
        STS_RECORD_VALID) {
        printf("invalid: %s\n", reason);
        return 1;
    }
    printf("valid id=%s\n", rec.id);
    return 0;
}

/* Reads at most max bytes of f into buf; *len gets the count. One byte more than the policy cap
 * is enough to tell that a policy is too large. */
static bool read_all(FILE *f, char *buf, size_t max, size_t *len)
{
    size_t n = 0;
    while (n < max) {
        size_t got = fread(buf + n, 1, max - n, f);
        if (got == 0)
            break;
        n += got;
    }
    *len = n;
    return !ferror(f);
}

static int check_policy(int argc, char **argv)
{
    if (argc > 2)
        return usage_error("%s takes at most one argument: FILE or -", argv[0]);
    const char *path = argc == 2 ? argv[1] : "-";
    bool from_stdin = strcmp(path, "-") == 0;
    FILE *f = from_stdin ? stdin : fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "stsgated: cannot open %s: %s\n", path, strerror(errno));
        return 2;
    }

    /* Static: a policy is up to 64 KiB, and so is its parsed form. */
    static char text[STS_POLICY_MAX + 1];
    static struct sts_policy policy;
    size_t len;
    bool ok = read_all(f, text, sizeof text, &len);
    int saved = errno;
    if (!from_stdin)
        fclose(f);
    if (!ok) {
        fprintf(stderr, "stsgated: cannot read %s: %s\n", from_stdin ? "stdin" : path,
                strerror(saved));
        return 2;
    }

    char reason[STS_POLICY_REASON_MAX];
    if (sts_policy_parse(text, len, &policy, reason, sizeof reason) != STS_POLICY_VALID) {
        printf("invalid: %s\n", reason);
        return 1;
    }
    printf("valid mode=%s max_age=%u mx=", sts_mode_name(policy.mode), (unsigned)policy.max_age);
    const char *sep = "";
    for (const char *m = sts_policy_mx_first(&policy); m; m = sts_policy_mx_next(&policy, m)) {
        printf("%s%s", sep, m);
        sep = ",";
    }
    putchar('\n');
    return 0;
}

static int match_mx(int argc, char **argv)
{
    if (argc != 3)
        return usage_error("%s takes two arguments: <pattern> <host>", argv[0]);
    if (sts_mx_match(argv[1], argv[2])) {
        puts("match");
        return 0;
    }
    puts("no match");
    return 1;
}

bool diag_dispatch(int argc, char **argv, int *status)
{
    if (argc < 1)
        return false;
    const char *cmd = argv[0];
    if (strcmp(cmd, "--version") == 0) {
        printf("stsgated %s\n", STSGATE_VERSION);
        *status = 0;
    } else if (strcmp(cmd, "--help") == 0) {
        diag_usage(stdout);
        *status = 0;
    } else if (strcmp(cmd, "check-record") == 0) {
        *status = check_record(argc, argv);
    } else if (strcmp(cmd, "check-policy") == 0) {
        *status = check_policy(argc, argv);
    } else if (strcmp(cmd, "match-mx") == 0) {
        *status = match_mx(argc, argv);
    } else if (cmd[0] == '-') {
        return false; /* an option of the delivery agent */
    } else {
        *status = usage_error("unknown command '%s'", cmd);
    }
    fflush(stdout);
    return true;
}
