/* commit.c - commit, clear, rollbackconfig and showchanges (cli.md §3): the session's pending
 * changes made live, dropped, replaced by an earlier version, or shown. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cfg.h"
#include "sh.h"

bool sh_report_commit(struct sh *sh, enum db_status st, const struct db_commit_info *done,
                      const struct db_conflict *conflict, const char *err)
{
    char when[64];
    switch (st) {
    case DB_OK:
        sh_format_time(done->time, when, sizeof when);
        sh_printf(sh, "\nChanges committed: %s\n", when);
        return true;
    case DB_EMPTY:
        sh_printf(sh, "\nThere is no data to commit.\n");
        return false;
    case DB_CONFLICT:
        sh_format_time(conflict->time, when, sizeof when);
        sh_printf(sh, "\n");
        sh_error(sh,
                 "Commit failed: %s was changed by another session (committed %s by %s). Use "
                 "\"clear\" and make your changes again.",
                 conflict->unit, when, conflict->user);
        return false;
    default:
        sh_printf(sh, "\n");
        sh_error(sh, "Commit failed: %s", err);
        return false;
    }
}

enum sh_rc sh_cmd_commit(struct sh *sh, int argc, char **argv)
{
    if (!db_session_dirty(sh->session)) {
        sh_printf(sh, "\nThere is no data to commit.\n");
        return SH_OK;
    }
    char comment[256];
    if (argc > 1) {
        snprintf(comment, sizeof comment, "%s", argv[1]);
    } else {
        struct sh_question q = {.kind = SH_Q_TEXT,
                                .text = "Please enter some comments describing your changes:",
                                .allow_empty = true};
        union sh_answer a;
        enum sh_rc rc = sh_ask(sh, &q, &a);
        if (rc != SH_OK)
            return rc;
        snprintf(comment, sizeof comment, "%.255s", a.text);
    }
    bool save;
    enum sh_rc rc = sh_ask_yesno(sh, "Do you want to save the current configuration for rollback?",
                                 true, &save);
    if (rc != SH_OK)
        return rc;
    struct db_commit_info done;
    struct db_conflict conflict;
    char err[256] = "";
    enum db_status st =
        db_session_commit(sh->session, comment, save, &done, &conflict, err, sizeof err);
    sh_report_commit(sh, st, &done, &conflict, err);
    return SH_OK;
}

enum sh_rc sh_cmd_clear(struct sh *sh, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    if (!db_session_dirty(sh->session)) {
        sh_printf(sh, "\nNo changes have been made since the last commit.\n");
        return SH_OK;
    }
    bool yes;
    enum sh_rc rc = sh_ask_yesno(
        sh, "Are you sure you want to clear all changes since the last commit?", true, &yes);
    if (rc != SH_OK || !yes)
        return rc;
    db_session_clear(sh->session);
    char when[64];
    sh_format_time(time(NULL), when, sizeof when);
    sh_printf(sh, "\nChanges cleared: %s\n", when);
    return SH_OK;
}

enum sh_rc sh_cmd_rollbackconfig(struct sh *sh, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    struct db_commit_info hist[10];
    int n = 0;
    if (db_cfg_history(sh->db, hist, 10, &n) != DB_OK || n == 0) {
        sh_printf(sh, "\nThere are no saved configurations to roll back to.\n");
        return SH_OK;
    }
    sh_printf(sh, "\nPrevious Commits:\n");
    char when[64];
    for (int i = 0; i < n; i++) {
        sh_format_time(hist[i].time, when, sizeof when);
        sh_printf(sh, "%d. %s  %s  %s\n", i + 1, when, hist[i].user, hist[i].comment);
    }
    int choice;
    struct sh_question q = {
        .kind = SH_Q_LIST, .text = "Enter the number of the config to revert to.", .n_items = n};
    union sh_answer a;
    /* The list was printed above with the dates; the question only takes the number. */
    q.items = NULL;
    enum sh_rc rc = sh_ask(sh, &q, &a);
    if (rc != SH_OK)
        return rc == SH_EMPTY ? SH_OK : rc;
    choice = (int)a.number;
    bool now;
    rc = sh_ask_yesno(sh, "Do you want to commit this configuration now?", false, &now);
    if (rc != SH_OK)
        return rc;
    db_session_clear(sh->session);
    enum db_status st = db_session_revert(sh->session, hist[choice - 1].version);
    if (st != DB_OK) {
        sh_error(sh, "The configuration could not be restored.");
        return SH_OK;
    }
    if (now) {
        char comment[128];
        sh_format_time(hist[choice - 1].time, when, sizeof when);
        snprintf(comment, sizeof comment, "Rollback to %s", when);
        struct db_commit_info done;
        struct db_conflict conflict;
        char err[256] = "";
        st = db_session_commit(sh->session, comment, true, &done, &conflict, err, sizeof err);
        if (st == DB_EMPTY) {
            /* The chosen version is what is committed now: nothing to write. */
            sh_printf(sh, "\nThere is no data to commit.\n");
            return SH_OK;
        }
        sh_report_commit(sh, st, &done, &conflict, err);
    }
    return SH_OK;
}

enum sh_rc sh_cmd_showchanges(struct sh *sh, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    struct db_change *ch;
    size_t n = db_session_changes(sh->session, &ch);
    if (n == 0) {
        free(ch);
        sh_printf(sh, "\nNo changes have been made since the last commit.\n");
        return SH_OK;
    }
    sh_printf(sh, "\n");
    struct cfg_field *oldf = xcalloc(CFG_FIELDS_MAX, sizeof *oldf);
    struct cfg_field *newf = xcalloc(CFG_FIELDS_MAX, sizeof *newf);
    for (size_t i = 0; i < n; i++) {
        if (!ch[i].old_body) {
            sh_printf(sh, "+ %s %s\n", ch[i].kind, ch[i].name);
            continue;
        }
        if (!ch[i].new_body) {
            sh_printf(sh, "- %s %s\n", ch[i].kind, ch[i].name);
            continue;
        }
        int no = cfg_unit_fields(ch[i].kind, ch[i].name, ch[i].old_body, oldf);
        int nn = cfg_unit_fields(ch[i].kind, ch[i].name, ch[i].new_body, newf);
        for (int j = 0; j < nn; j++) {
            const char *before = "None";
            for (int k = 0; k < no; k++)
                if (strcmp(oldf[k].name, newf[j].name) == 0)
                    before = oldf[k].value;
            if (strcmp(before, newf[j].value) != 0)
                sh_printf(sh, "~ %s %s %s: %s -> %s\n", ch[i].kind, ch[i].name, newf[j].name,
                          before, newf[j].value);
        }
    }
    free(oldf);
    free(newf);
    free(ch);
    return SH_OK;
}
