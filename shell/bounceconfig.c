/* bounceconfig.c - the bounceconfig command (cli.md §5): the Default bounce profile and named
 * profiles (retries, time in queue, retry intervals, hard bounce notice), which destconfig
 * entries choose by name.
 *
 * One unit per profile (core/cfg_bounce.h has the body). Default always exists and cannot be
 * deleted; a profile that a destconfig entry (DEFAULT included) names cannot be deleted either,
 * so the agent never meets an entry naming a missing profile. Every operation records at most one
 * change, at its end. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cfg.h"
#include "cfg_bounce.h"
#include "sh.h"
#include "strbuf.h"

#define ASK(call)                                                                                  \
    do {                                                                                           \
        enum sh_rc rc_ = (call);                                                                   \
        if (rc_ != SH_OK)                                                                          \
            return rc_ == SH_EMPTY ? SH_OK : rc_;                                                  \
    } while (0)

/* ---- reading the session's view ---- */

struct find_ctx {
    const char *want;
    char found[CFG_NAME_MAX + 1];
};

static int find_one(void *arg, const char *name, const char *body)
{
    struct find_ctx *c = arg;
    (void)body;
    if (strcasecmp(name, c->want) != 0)
        return 0;
    snprintf(c->found, sizeof c->found, "%s", name);
    return 1;
}

/* The stored name of a profile, matched without regard to case (so "default" and "Default", or
 * "Slow" and "slow", are never two profiles). Default always exists. */
static bool find_profile(struct sh *sh, const char *name, char out[CFG_NAME_MAX + 1])
{
    if (strcasecmp(name, CFG_BOUNCE_DEFAULT) == 0) {
        snprintf(out, CFG_NAME_MAX + 1, "%s", CFG_BOUNCE_DEFAULT);
        return true;
    }
    if (db_session_get(sh->session, CFG_KIND_BOUNCE, name)) {
        snprintf(out, CFG_NAME_MAX + 1, "%s", name);
        return true;
    }
    struct find_ctx c = {name, ""};
    if (db_session_each(sh->session, CFG_KIND_BOUNCE, find_one, &c) == 0)
        return false;
    snprintf(out, CFG_NAME_MAX + 1, "%s", c.found);
    return true;
}

static void load(struct sh *sh, const char *name, struct cfg_bounce *b)
{
    cfg_bounce_decode(db_session_get(sh->session, CFG_KIND_BOUNCE, name), b);
}

static void store(struct sh *sh, const char *name, const struct cfg_bounce *b)
{
    struct strbuf sb = STRBUF_INIT;
    cfg_bounce_encode(b, &sb);
    db_session_put(sh->session, CFG_KIND_BOUNCE, name, sb_str(&sb));
    sb_free(&sb);
}

struct list_ctx {
    struct sh *sh;
    int n;
};

static int list_one(void *arg, const char *name, const char *body)
{
    struct list_ctx *c = arg;
    (void)body;
    if (strcmp(name, CFG_BOUNCE_DEFAULT) != 0)
        sh_printf(c->sh, "%d. %s\n", ++c->n, name);
    return 0;
}

/* ---- the questions ---- */

static void trim(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    size_t i = 0;
    while (s[i] && isspace((unsigned char)s[i]))
        i++;
    memmove(s, s + i, n - i + 1);
}

/* "(Yes/No/Default) [Y]> ": the yes/no form with a third answer, which the engine's yes/no
 * question has no room for. */
static enum sh_rc ask_notice3(struct sh *sh, const char *text, enum cfg_notice def,
                              enum cfg_notice *out)
{
    char prompt[16];
    snprintf(prompt, sizeof prompt, " [%s]> ",
             def == CFG_NOTICE_YES  ? "Y"
             : def == CFG_NOTICE_NO ? "N"
                                    : "D");
    for (;;) {
        char *line;
        sh_printf(sh, "\n%s", text);
        enum sh_rc rc = sh_read(sh, prompt, &line);
        if (rc != SH_OK)
            return rc;
        trim(line);
        bool ok = true;
        if (!line[0])
            *out = def;
        else if (!strcasecmp(line, "y") || !strcasecmp(line, "yes"))
            *out = CFG_NOTICE_YES;
        else if (!strcasecmp(line, "n") || !strcasecmp(line, "no"))
            *out = CFG_NOTICE_NO;
        else if (!strcasecmp(line, "d") || !strcasecmp(line, "default"))
            *out = CFG_NOTICE_DEFAULT;
        else
            ok = false;
        free(line);
        if (ok)
            return SH_OK;
        sh_error(sh, "Please answer \"Y\", \"N\" or \"D\".");
    }
}

/* The profile's questions; cur holds the defaults. is_default: the Default profile, whose notice
 * is a plain yes/no. */
static enum sh_rc profile_dialogue(struct sh *sh, const struct cfg_bounce *cur, bool is_default,
                                   struct cfg_bounce *out)
{
    static const char notice_q[] = "Do you want a message sent for each hard bounce?";
    static const char notice_q3[] =
        "Do you want a message sent for each hard bounce? (Yes/No/Default)";
    long v, def;
    enum sh_rc rc;
    *out = *cur;
#define STEP(call)                                                                                 \
    do {                                                                                           \
        if ((rc = (call)) != SH_OK)                                                                \
            return rc;                                                                             \
    } while (0)
    def = cur->max_retries;
    STEP(sh_ask_number(sh, "Please enter the maximum number of retries.", &def,
                       CFG_BOUNCE_RETRIES_MIN, CFG_BOUNCE_RETRIES_MAX, &v));
    out->max_retries = v;
    def = cur->max_queue_lifetime;
    STEP(sh_ask_number(sh,
                       "Please enter the maximum number of seconds a message may stay in the "
                       "queue before being hard bounced.",
                       &def, CFG_BOUNCE_LIFETIME_MIN, CFG_BOUNCE_LIFETIME_MAX, &v));
    out->max_queue_lifetime = v;
    def = cur->initial_retry;
    STEP(sh_ask_number(sh,
                       "Please enter the initial number of seconds to wait before retrying a "
                       "message.",
                       &def, CFG_BOUNCE_INTERVAL_MIN, CFG_BOUNCE_INTERVAL_MAX, &v));
    out->initial_retry = v;
    /* The maximum can be no shorter than the initial wait: the range says so. */
    def = cur->max_retry > out->initial_retry ? cur->max_retry : out->initial_retry;
    STEP(sh_ask_number(sh,
                       "Please enter the maximum number of seconds to wait before retrying a "
                       "message.",
                       &def, out->initial_retry, CFG_BOUNCE_INTERVAL_MAX, &v));
    out->max_retry = v;
    if (is_default) {
        bool yes;
        STEP(sh_ask_yesno(sh, notice_q, cur->hard_bounce_notice != CFG_NOTICE_NO, &yes));
        out->hard_bounce_notice = yes ? CFG_NOTICE_YES : CFG_NOTICE_NO;
    } else {
        STEP(ask_notice3(sh, notice_q3, cur->hard_bounce_notice, &out->hard_bounce_notice));
    }
#undef STEP
    return SH_OK;
}

static bool valid_name(const char *in, char *out, size_t outlen, char *err, size_t errlen)
{
    if (!cfg_name_valid(in)) {
        snprintf(err, errlen, "That value is not valid.");
        return false;
    }
    snprintf(out, outlen, "%s", in);
    return true;
}

/* ---- operations ---- */

static enum sh_rc op_new(struct sh *sh)
{
    char name[CFG_NAME_MAX + 1], found[CFG_NAME_MAX + 1];
    struct cfg_bounce def, b;
    ASK(sh_ask_text(sh, "Please enter the name of the profile:", NULL, valid_name, name,
                    sizeof name));
    if (find_profile(sh, name, found)) {
        sh_error(sh, "The bounce profile \"%s\" already exists.", name);
        return SH_OK;
    }
    /* A new profile starts from what Default says now. */
    load(sh, CFG_BOUNCE_DEFAULT, &def);
    ASK(profile_dialogue(sh, &def, false, &b));
    store(sh, name, &b);
    return SH_OK;
}

static enum sh_rc ask_existing(struct sh *sh, const char *text, char name[CFG_NAME_MAX + 1])
{
    char in[CFG_NAME_MAX + 1];
    enum sh_rc rc = sh_ask_text(sh, text, NULL, valid_name, in, sizeof in);
    if (rc != SH_OK)
        return rc;
    if (!find_profile(sh, in, name)) {
        sh_error(sh, "The bounce profile \"%s\" was not found.", in);
        return SH_EMPTY;
    }
    return SH_OK;
}

static enum sh_rc op_edit(struct sh *sh)
{
    char name[CFG_NAME_MAX + 1];
    struct cfg_bounce cur, b;
    ASK(ask_existing(sh, "Please enter the name of the profile to edit:", name));
    load(sh, name, &cur);
    ASK(profile_dialogue(sh, &cur, strcmp(name, CFG_BOUNCE_DEFAULT) == 0, &b));
    store(sh, name, &b);
    return SH_OK;
}

struct use_ctx {
    const char *profile;
    bool used;
};

static int use_one(void *arg, const char *name, const char *body)
{
    struct use_ctx *c = arg;
    struct cfg_dest d;
    if (strcmp(name, CFG_UNIT_SETUP) == 0)
        return 0;
    cfg_dest_decode(body, strcmp(name, CFG_UNIT_DEFAULT) == 0, &d);
    c->used = strcmp(d.bounce_profile, c->profile) == 0;
    return c->used;
}

static enum sh_rc op_delete(struct sh *sh)
{
    char name[CFG_NAME_MAX + 1];
    ASK(ask_existing(sh, "Please enter the name of the profile to delete:", name));
    if (strcmp(name, CFG_BOUNCE_DEFAULT) == 0) {
        sh_error(sh, "The bounce profile \"%s\" cannot be deleted.", name);
        return SH_OK;
    }
    struct use_ctx c = {name, false};
    db_session_each(sh->session, CFG_KIND_DEST, use_one, &c);
    if (c.used) {
        sh_error(sh, "The bounce profile \"%s\" is in use by destination controls.", name);
        return SH_OK;
    }
    db_session_put(sh->session, CFG_KIND_BOUNCE, name, NULL);
    return SH_OK;
}

static const struct sh_verb verbs[] = {
    {"NEW", "Create a new bounce profile.", op_new},
    {"EDIT", "Modify a bounce profile.", op_edit},
    {"DELETE", "Remove a bounce profile.", op_delete},
};

static void status(struct sh *sh)
{
    sh_printf(sh, "\nBounce profiles:\n1. %s\n", CFG_BOUNCE_DEFAULT);
    struct list_ctx lc = {sh, 1};
    db_session_each(sh->session, CFG_KIND_BOUNCE, list_one, &lc);
}

enum sh_rc sh_cmd_bounceconfig(struct sh *sh, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return sh_menu_run(sh, status, verbs, (int)(sizeof verbs / sizeof verbs[0]));
}
