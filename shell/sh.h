/* sh.h - the shell's shared state, its input layer and its prompt engine.
 *
 * Every dialogue is built from the question kinds below; the engine prints them exactly as
 * cli.md §1 describes, re-asks after a bad answer with the error line, and reports an abandoned
 * command (Ctrl-C, EOF) as SH_ABORT so the command returns without recording anything. */
#ifndef STSGATE_SH_H
#define STSGATE_SH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db_cfg.h"

enum sh_rc {
    SH_OK = 0,
    SH_EMPTY, /* an empty answer where there is no default: abandon the operation */
    SH_ABORT, /* Ctrl-C or end of input inside a command */
};

struct sh_edit; /* libedit state, when stdin is a terminal */

struct sh {
    char datadir[4096];
    struct db_cfg *db;
    struct db_session *session;
    char user[64];
    struct sh_edit *edit;
    bool interactive;         /* stdin is a terminal */
    bool had_error;           /* an error line was printed: exit status 1 */
    bool eof;                 /* the input has ended */
    bool quit;                /* exit was confirmed */
    bool in_command;          /* a terminal's Ctrl-D abandons the command, not the shell */
    const char *const *words; /* what Tab completes at the current prompt */
};

/* ---- input and output (io.c) ---- */

bool sh_io_open(struct sh *sh);
void sh_io_close(struct sh *sh);
/* Reads one line after printing prompt. SH_OK with *line (the caller's to free), SH_ABORT on
 * Ctrl-C (sh->eof stays false) or at end of input (sh->eof set). */
enum sh_rc sh_read(struct sh *sh, const char *prompt, char **line);
/* sh_read with care for what is typed: PRIVATE keeps the line out of the history (pasted keys),
 * SECRET also reads it without echo on a terminal (passphrases). */
enum { SH_READ_PRIVATE = 1, SH_READ_SECRET = 2 };
enum sh_rc sh_read_as(struct sh *sh, const char *prompt, unsigned how, char **line);
void sh_printf(struct sh *sh, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints one error line and remembers that the session had an error. */
void sh_error(struct sh *sh, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The interrupt flag the SIGINT handler sets; cleared by sh_read. */
bool sh_interrupted(void);

/* ---- the prompt engine (ask.c) ---- */

enum sh_qkind { SH_Q_YESNO, SH_Q_NUMBER, SH_Q_TEXT, SH_Q_LIST };

/* Checks and normalises a text answer; returns false with the error line in err. */
typedef bool (*sh_validator)(const char *in, char *out, size_t outlen, char *err, size_t errlen);

struct sh_question {
    enum sh_qkind kind;
    const char *text;         /* may hold newlines; printed after a blank line */
    bool has_default;         /* false: an empty answer is SH_EMPTY (TEXT: see allow_empty) */
    long def;                 /* YESNO (0/1), NUMBER, LIST (1-based) */
    const char *def_text;     /* TEXT */
    long min, max;            /* NUMBER */
    const char *const *items; /* LIST, n_items strings */
    int n_items;
    sh_validator validate; /* TEXT; NULL accepts anything */
    bool allow_empty;      /* TEXT: an empty answer is a valid empty value */
    bool secret;           /* TEXT: not echoed, never in the history (passphrases) */
};

union sh_answer {
    bool yes;
    long number; /* NUMBER; LIST: the 1-based choice */
    char text[1024];
};

enum sh_rc sh_ask(struct sh *sh, const struct sh_question *q, union sh_answer *a);

/* Shorthands for the common questions. */
enum sh_rc sh_ask_yesno(struct sh *sh, const char *text, bool def, bool *yes);
enum sh_rc sh_ask_number(struct sh *sh, const char *text, const long *def, long min, long max,
                         long *out);
enum sh_rc sh_ask_list(struct sh *sh, const char *text, const char *const *items, int n, int def,
                       int *choice);
enum sh_rc sh_ask_text(struct sh *sh, const char *text, const char *def, sh_validator validate,
                       char *out, size_t outlen);

/* A menu: verbs with descriptions, printed as cli.md §1 shows. */
struct sh_verb {
    const char *verb;
    const char *help;
    enum sh_rc (*run)(struct sh *sh); /* the operation (sh_menu_run) */
};
/* Asks once per bad answer until a verb is chosen (its index in *choice) or the answer is empty
 * (SH_EMPTY: leave the menu). */
enum sh_rc sh_menu(struct sh *sh, const struct sh_verb *verbs, int n, int *choice);
/* A command's menu, as every appliance menu behaves: before (may be NULL) prints the status lines
 * above it, the chosen verb's operation runs, and the menu comes back, until an empty answer
 * (SH_OK: back to the parent) or an abandon (SH_ABORT). */
enum sh_rc sh_menu_run(struct sh *sh, void (*before)(struct sh *sh), const struct sh_verb *verbs,
                       int n);
/* Prints text, then reads lines up to one holding only "." (a pasted PEM block): SH_OK with *out
 * (the lines joined with "\n", the caller's to free), or SH_ABORT. */
enum sh_rc sh_read_block(struct sh *sh, const char *text, char **out);

/* Validators shared by dialogues. */
bool sh_valid_domain(const char *in, char *out, size_t outlen, char *err, size_t errlen);

/* ---- IMPORT and EXPORT files (files.c) ---- */

/* A file name answer: absolute, or a plain name inside <data>/configuration/. */
bool sh_valid_file_name(const char *in, char *out, size_t outlen, char *err, size_t errlen);
/* A whole file of at most max bytes: true with *data (NUL-terminated after its *len bytes; the
 * caller frees it). A text file may not hold a NUL byte; a binary one (PKCS#12) may. False with
 * errno set: EFBIG past max; EINVAL for text that holds a NUL byte or cannot be read to its end,
 * EIO for a binary file that cannot. */
bool sh_read_file(const char *path, size_t max, bool text, char **data, size_t *len);
/* Writes through a temporary file renamed into place. False with errno set. */
bool sh_write_file(const char *path, const char *content, size_t len);
/* IMPORT's file question, then reads the file as sh_read_file does: SH_OK with *data (the
 * caller's to free) and *len, or with *data NULL when the file could not be read (the error line
 * is printed). */
enum sh_rc sh_import_ask_file(struct sh *sh, size_t max, bool text, char **data, size_t *len);
/* sh_import_ask_file for a text file of at most 16 MiB: SH_OK with *content or NULL. */
enum sh_rc sh_import_ask(struct sh *sh, char **content);
/* EXPORT's file question, then writes content and prints where, or the error line. */
enum sh_rc sh_export_ask(struct sh *sh, const char *content, size_t len);
/* Prints each line of text as an error line (IMPORT's "Line N: ..." list). */
void sh_print_error_lines(struct sh *sh, const char *text);

/* ---- commands (one file each) ---- */

struct sh_command {
    const char *name;
    const char *help;
    /* argv[0] is the command name. Returns SH_ABORT when the input ended or Ctrl-C abandoned it. */
    enum sh_rc (*run)(struct sh *sh, int argc, char **argv);
};

extern const struct sh_command sh_commands[];
extern const size_t sh_n_commands;

enum sh_rc sh_cmd_certconfig(struct sh *sh, int argc, char **argv);
enum sh_rc sh_cmd_destconfig(struct sh *sh, int argc, char **argv);
enum sh_rc sh_cmd_dig(struct sh *sh, int argc, char **argv);
enum sh_rc sh_cmd_tlsverify(struct sh *sh, int argc, char **argv);
enum sh_rc sh_cmd_daneverify(struct sh *sh, int argc, char **argv);
enum sh_rc sh_cmd_commit(struct sh *sh, int argc, char **argv);
enum sh_rc sh_cmd_clear(struct sh *sh, int argc, char **argv);
enum sh_rc sh_cmd_rollbackconfig(struct sh *sh, int argc, char **argv);
enum sh_rc sh_cmd_showchanges(struct sh *sh, int argc, char **argv);
enum sh_rc sh_cmd_sethostname(struct sh *sh, int argc, char **argv);
enum sh_rc sh_cmd_tlsrpt(struct sh *sh, int argc, char **argv);
/* agentctl.c */
/* Sends one control request line (agent/control.h) and prints the agent's answer, or the error
 * line when it is not running or refuses. */
enum sh_rc sh_agent_request(struct sh *sh, const char *req);
enum sh_rc sh_cmd_status(struct sh *sh, int argc, char **argv);
enum sh_rc sh_cmd_delivernow(struct sh *sh, int argc, char **argv);
enum sh_rc sh_cmd_tail(struct sh *sh, int argc, char **argv);
enum sh_rc sh_cmd_smtproutes(struct sh *sh, int argc, char **argv);
enum sh_rc sh_cmd_dnsconfig(struct sh *sh, int argc, char **argv);
enum sh_rc sh_cmd_bounceconfig(struct sh *sh, int argc, char **argv);
enum sh_rc sh_cmd_mtastsverify(struct sh *sh, int argc, char **argv);

/* The committed hostname, else the machine's (the main prompt and file questions use it). */
void sh_hostname(struct sh *sh, char *out, size_t outlen);
/* cli.md's date form: "Sun Nov 22 10:00:00 2026", local time. */
void sh_format_time(int64_t t, char *out, size_t outlen);
/* Prints the commit refusal or failure for a db_session_commit result; true when committed. */
bool sh_report_commit(struct sh *sh, enum db_status st, const struct db_commit_info *done,
                      const struct db_conflict *conflict, const char *err);

#endif
