/* hostname.c - the machine's name: the committed one for the prompt and file questions, and
 * the sethostname command that changes it (a pending change like any other); also the date form
 * every command prints. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cfg.h"
#include "kv.h"
#include "sh.h"
#include "strbuf.h"

void sh_format_time(int64_t t, char *out, size_t outlen)
{
    time_t tt = (time_t)t;
    struct tm tm;
    localtime_r(&tt, &tm);
    strftime(out, outlen, "%a %b %e %H:%M:%S %Y", &tm);
}

static int hostname_value(void *arg, const char *key, const char *value)
{
    if (strcmp(key, "hostname") == 0)
        snprintf(arg, 256, "%s", value);
    return 0;
}

void sh_hostname(struct sh *sh, char *out, size_t outlen)
{
    char name[256] = "";
    const char *body = db_session_get_committed(sh->session, CFG_KIND_HOSTNAME, CFG_UNIT_HOSTNAME);
    if (body)
        kv_parse(body, hostname_value, name);
    if (!name[0] && gethostname(name, sizeof name) != 0)
        snprintf(name, sizeof name, "stsgate");
    name[sizeof name - 1] = '\0';
    snprintf(out, outlen, "%s", name);
}

static bool valid_hostname(const char *in, char *out, size_t outlen, char *err, size_t errlen)
{
    if (!cfg_hostname_valid(in)) {
        snprintf(err, errlen, "That value is not valid.");
        return false;
    }
    snprintf(out, outlen, "%s", in);
    for (char *p = out; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return true;
}

enum sh_rc sh_cmd_sethostname(struct sh *sh, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    char current[256], name[256];
    const char *body = db_session_get(sh->session, CFG_KIND_HOSTNAME, CFG_UNIT_HOSTNAME);
    current[0] = '\0';
    if (body)
        kv_parse(body, hostname_value, current);
    if (!current[0])
        sh_hostname(sh, current, sizeof current);
    enum sh_rc rc =
        sh_ask_text(sh, "Enter the new hostname.", current, valid_hostname, name, sizeof name);
    if (rc != SH_OK)
        return rc == SH_EMPTY ? SH_OK : rc;
    struct strbuf sb = STRBUF_INIT;
    kv_put(&sb, "hostname", name);
    db_session_put(sh->session, CFG_KIND_HOSTNAME, CFG_UNIT_HOSTNAME, sb_str(&sb));
    sb_free(&sb);
    return SH_OK;
}
