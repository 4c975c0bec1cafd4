/* cfg_ini.c - parse and write the destconfig IMPORT/EXPORT file. */
#include "cfg_ini.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* Trims spaces and tabs (and a CR) at both ends, in place. */
static char *trim(char *s)
{
    while (is_blank(*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && is_blank(s[n - 1]))
        s[--n] = '\0';
    return s;
}

static void add_error(struct strbuf *errors, int line, const char *text, int *count)
{
    sb_printf(errors, "Line %d: %s\n", line, text);
    (*count)++;
}

static struct cfg_dest_entry *find_entry(struct cfg_dest_table *t, const char *domain)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->v[i].domain, domain) == 0)
            return &t->v[i];
    return NULL;
}

/* The rule across keys, checked once a section is complete. */
static void finish_section(struct cfg_dest *d, int line, struct strbuf *errors, int *count)
{
    char err[CFG_ERR_MAX];
    if (d && !cfg_dest_check(d, err))
        add_error(errors, line, err, count);
}

int cfg_dest_import(const char *text, cfg_profile_exists_fn profile_exists, void *arg,
                    struct cfg_dest_table *out, struct strbuf *errors)
{
    int count = 0, lineno = 0, section_line = 0;
    bool seen_default = false;
    struct cfg_dest *cur = NULL;
    bool cur_is_default = false;
    char *copy = xstrdup(text);
    char *save = NULL;
    char err[CFG_ERR_MAX];

    memset(out, 0, sizeof *out);
    cfg_dest_factory(&out->def);
    /* strtok_r would merge empty lines and lose their numbers: walk by hand. */
    for (char *line = copy; line; line = save) {
        char *nl = strchr(line, '\n');
        save = nl ? nl + 1 : NULL;
        if (nl)
            *nl = '\0';
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#' || *s == ';')
            continue;
        if (*s == '[') {
            finish_section(cur, section_line, errors, &count);
            cur = NULL;
            section_line = lineno;
            size_t n = strlen(s);
            if (n < 3 || s[n - 1] != ']') {
                add_error(errors, lineno, "That value is not valid.", &count);
                continue;
            }
            s[n - 1] = '\0';
            char *name = trim(s + 1);
            char domain[CFG_DOMAIN_MAX + 3];
            if (strcasecmp(name, "DEFAULT") == 0) {
                if (seen_default) {
                    add_error(errors, lineno, "The [DEFAULT] section appears twice.", &count);
                    continue;
                }
                seen_default = true;
                cur = &out->def;
                cur_is_default = true;
            } else if (!cfg_domain_normalize(name, domain, sizeof domain)) {
                add_error(errors, lineno, "Not a valid domain name.", &count);
            } else if (find_entry(out, domain)) {
                snprintf(err, sizeof err,
                         "The domain \"%s\" already exists in the destination control table.",
                         domain);
                add_error(errors, lineno, err, &count);
            } else {
                if (out->n == out->cap) {
                    out->cap = out->cap ? out->cap * 2 : 16;
                    out->v = xrealloc(out->v, out->cap * sizeof *out->v);
                }
                struct cfg_dest_entry *e = &out->v[out->n++];
                snprintf(e->domain, sizeof e->domain, "%s", domain);
                cfg_dest_inherit_all(&e->d);
                cur = &e->d;
                cur_is_default = false;
            }
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq) {
            add_error(errors, lineno, "That value is not valid.", &count);
            continue;
        }
        *eq = '\0';
        char *key = trim(s), *value = trim(eq + 1);
        if (!cur) {
            /* A key before any section, or inside a section that was refused. */
            if (section_line == 0)
                add_error(errors, lineno, "A setting must follow a [section] line.", &count);
            continue;
        }
        if (!cfg_dest_set_key(cur, cur_is_default, key, value, err)) {
            add_error(errors, lineno, err, &count);
            continue;
        }
        if (strcmp(key, "bounce_profile") == 0 && profile_exists && !profile_exists(arg, value)) {
            snprintf(err, sizeof err, "The bounce profile \"%s\" does not exist.", value);
            add_error(errors, lineno, err, &count);
        }
    }
    finish_section(cur, section_line, errors, &count);
    free(copy);
    if (count)
        cfg_dest_table_free(out);
    return count;
}

void cfg_dest_export(const struct cfg_dest_table *t, struct strbuf *out)
{
    sb_append(out, "# stsgate destination controls (destconfig EXPORT)\n[DEFAULT]\n");
    cfg_dest_write(&t->def, true, true, out);
    for (size_t i = 0; i < t->n; i++) {
        sb_printf(out, "\n[%s]\n", t->v[i].domain);
        cfg_dest_write(&t->v[i].d, false, true, out);
    }
}

void cfg_dest_table_free(struct cfg_dest_table *t)
{
    free(t->v);
    t->v = NULL;
    t->n = t->cap = 0;
}
