/* ask.c - the prompt engine: asks a question described as data, checks the answer, prints the
 * appliance's error line and asks again until the answer is good, empty or abandoned. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "sh.h"
#include "strbuf.h"

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

static void print_question(struct sh *sh, const struct sh_question *q, char *prompt, size_t plen)
{
    sh_printf(sh, "\n%s", q->text);
    switch (q->kind) {
    case SH_Q_YESNO:
        snprintf(prompt, plen, " [%s]> ", q->def ? "Y" : "N");
        return;
    case SH_Q_LIST:
        sh_printf(sh, "\n");
        for (int i = 0; q->items && i < q->n_items; i++)
            sh_printf(sh, "%d. %s\n", i + 1, q->items[i]);
        break;
    case SH_Q_NUMBER:
    case SH_Q_TEXT:
        sh_printf(sh, "\n");
        break;
    }
    if (!q->has_default)
        snprintf(prompt, plen, "[]> ");
    else if (q->kind == SH_Q_TEXT)
        snprintf(prompt, plen, "[%s]> ", q->def_text ? q->def_text : "");
    else
        snprintf(prompt, plen, "[%ld]> ", q->def);
}

/* Checks one non-empty answer; returns false with the error line printed. */
static bool check(struct sh *sh, const struct sh_question *q, const char *in, union sh_answer *a)
{
    long v;
    char err[256];
    switch (q->kind) {
    case SH_Q_YESNO:
        if (!strcasecmp(in, "y") || !strcasecmp(in, "yes")) {
            a->yes = true;
            return true;
        }
        if (!strcasecmp(in, "n") || !strcasecmp(in, "no")) {
            a->yes = false;
            return true;
        }
        sh_error(sh, "Please answer \"Y\" or \"N\".");
        return false;
    case SH_Q_NUMBER:
        if (!cfg_parse_long(in, q->min, q->max, &v)) {
            sh_error(sh, "The value must be a number from %ld to %ld.", q->min, q->max);
            return false;
        }
        a->number = v;
        return true;
    case SH_Q_LIST:
        if (!cfg_parse_long(in, 1, q->n_items, &v)) {
            sh_error(sh, "You must enter a value from 1 to %d.", q->n_items);
            return false;
        }
        a->number = v;
        return true;
    case SH_Q_TEXT:
        if (q->validate) {
            err[0] = '\0';
            if (!q->validate(in, a->text, sizeof a->text, err, sizeof err)) {
                sh_error(sh, "%s", err[0] ? err : "That value is not valid.");
                return false;
            }
        } else if (snprintf(a->text, sizeof a->text, "%s", in) >= (int)sizeof a->text) {
            sh_error(sh, "That value is not valid.");
            return false;
        }
        return true;
    }
    return false;
}

static void take_default(const struct sh_question *q, union sh_answer *a)
{
    switch (q->kind) {
    case SH_Q_YESNO:
        a->yes = q->def != 0;
        break;
    case SH_Q_NUMBER:
    case SH_Q_LIST:
        a->number = q->def;
        break;
    case SH_Q_TEXT:
        snprintf(a->text, sizeof a->text, "%s", q->has_default && q->def_text ? q->def_text : "");
        break;
    }
}

enum sh_rc sh_ask(struct sh *sh, const struct sh_question *q, union sh_answer *a)
{
    char prompt[128];
    if (sh->eof)
        return SH_ABORT;
    for (;;) {
        print_question(sh, q, prompt, sizeof prompt);
        char *line;
        enum sh_rc rc = sh_read_as(sh, prompt, q->secret ? SH_READ_SECRET : 0, &line);
        if (rc != SH_OK)
            return rc;
        trim(line);
        if (!line[0]) {
            free(line);
            if (q->has_default || (q->kind == SH_Q_TEXT && q->allow_empty)) {
                take_default(q, a);
                return SH_OK;
            }
            return SH_EMPTY;
        }
        bool ok = check(sh, q, line, a);
        free(line);
        if (ok)
            return SH_OK;
    }
}

enum sh_rc sh_ask_yesno(struct sh *sh, const char *text, bool def, bool *yes)
{
    struct sh_question q = {.kind = SH_Q_YESNO, .text = text, .has_default = true, .def = def};
    union sh_answer a;
    enum sh_rc rc = sh_ask(sh, &q, &a);
    if (rc == SH_OK)
        *yes = a.yes;
    return rc;
}

enum sh_rc sh_ask_number(struct sh *sh, const char *text, const long *def, long min, long max,
                         long *out)
{
    struct sh_question q = {.kind = SH_Q_NUMBER,
                            .text = text,
                            .has_default = def != NULL,
                            .def = def ? *def : 0,
                            .min = min,
                            .max = max};
    union sh_answer a;
    enum sh_rc rc = sh_ask(sh, &q, &a);
    if (rc == SH_OK)
        *out = a.number;
    return rc;
}

enum sh_rc sh_ask_list(struct sh *sh, const char *text, const char *const *items, int n, int def,
                       int *choice)
{
    struct sh_question q = {.kind = SH_Q_LIST,
                            .text = text,
                            .has_default = def >= 1,
                            .def = def,
                            .items = items,
                            .n_items = n};
    union sh_answer a;
    enum sh_rc rc = sh_ask(sh, &q, &a);
    if (rc == SH_OK)
        *choice = (int)a.number;
    return rc;
}

enum sh_rc sh_ask_text(struct sh *sh, const char *text, const char *def, sh_validator validate,
                       char *out, size_t outlen)
{
    struct sh_question q = {.kind = SH_Q_TEXT,
                            .text = text,
                            .has_default = def && *def,
                            .def_text = def,
                            .validate = validate};
    union sh_answer a;
    enum sh_rc rc = sh_ask(sh, &q, &a);
    if (rc == SH_OK)
        snprintf(out, outlen, "%s", a.text);
    return rc;
}

enum sh_rc sh_menu(struct sh *sh, const struct sh_verb *verbs, int n, int *choice)
{
    const char *words[32];
    int nw = 0;
    for (int i = 0; i < n && nw < 31; i++)
        words[nw++] = verbs[i].verb;
    words[nw] = NULL;
    for (;;) {
        sh_printf(sh, "\nChoose the operation you want to perform:\n");
        for (int i = 0; i < n; i++)
            sh_printf(sh, "- %s - %s\n", verbs[i].verb, verbs[i].help);
        char *line;
        const char *const *saved = sh->words;
        sh->words = words;
        enum sh_rc rc = sh_read(sh, "[]> ", &line);
        sh->words = saved;
        if (rc != SH_OK)
            return rc;
        trim(line);
        if (!line[0]) {
            free(line);
            return SH_EMPTY;
        }
        for (int i = 0; i < n; i++) {
            if (strcasecmp(line, verbs[i].verb) == 0) {
                free(line);
                *choice = i;
                return SH_OK;
            }
        }
        free(line);
        sh_error(sh, "That value is not valid.");
    }
}

enum sh_rc sh_menu_run(struct sh *sh, void (*before)(struct sh *sh), const struct sh_verb *verbs,
                       int n)
{
    for (;;) {
        if (before)
            before(sh);
        int choice;
        enum sh_rc rc = sh_menu(sh, verbs, n, &choice);
        if (rc == SH_EMPTY)
            return SH_OK;
        if (rc != SH_OK)
            return rc;
        /* SH_EMPTY from an operation: it was abandoned or refused; show the menu again. */
        if (verbs[choice].run(sh) == SH_ABORT)
            return SH_ABORT;
    }
}

bool sh_valid_domain(const char *in, char *out, size_t outlen, char *err, size_t errlen)
{
    if (cfg_domain_normalize(in, out, outlen))
        return true;
    snprintf(err, errlen, "Not a valid domain name.");
    return false;
}

/* The longest block sh_read_block keeps: a certificate with a long chain fits many times over. */
#define BLOCK_MAX (1u << 20)

enum sh_rc sh_read_block(struct sh *sh, const char *text, char **out)
{
    struct strbuf sb = STRBUF_INIT;
    bool too_long = false;
    *out = NULL;
    sh_printf(sh, "\n%s\n", text);
    for (;;) {
        char *line;
        enum sh_rc rc = sh_read_as(sh, "", SH_READ_PRIVATE, &line);
        if (rc != SH_OK) {
            sb_free(&sb);
            return rc;
        }
        /* Pasted text may carry CRs and trailing blanks; the end mark is "." alone. */
        size_t n = strlen(line);
        while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
            line[--n] = '\0';
        if (strcmp(line, ".") == 0) {
            free(line);
            break;
        }
        if (sb.len + n + 1 > BLOCK_MAX) {
            too_long = true;
        } else {
            sb_append_len(&sb, line, n);
            sb_append_len(&sb, "\n", 1);
        }
        free(line);
    }
    /* Too long to be a certificate or a key: what is returned will not parse. */
    if (too_long)
        sb_reset(&sb);
    *out = sb.buf ? sb_steal(&sb) : xstrdup("");
    return SH_OK;
}
