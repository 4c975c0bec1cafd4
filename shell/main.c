/* main.c - stsgate, the appliance-style shell: arguments, the data directory, the main prompt and
 * the command table.
 *
 * Exit status (cli.md §1): 0 when all went well, 1 when a command printed an error line or pending
 * changes were discarded at the end of the input, 2 when the input ended inside a command. */
#include <ctype.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cfg.h"
#include "datadir.h"
#include "db_factory.h"
#include "kv.h"
#include "sh.h"
#include "strbuf.h"

static enum sh_rc cmd_help(struct sh *sh, int argc, char **argv);
static enum sh_rc cmd_version(struct sh *sh, int argc, char **argv);
static enum sh_rc cmd_exit(struct sh *sh, int argc, char **argv);

const struct sh_command sh_commands[] = {
    {"bounceconfig", "Configure bounce profiles.", sh_cmd_bounceconfig},
    {"certconfig", "Configure certificates and certificate authorities.", sh_cmd_certconfig},
    {"clear", "Clear changes made since the last commit.", sh_cmd_clear},
    {"commit", "Commit changes.", sh_cmd_commit},
    {"daneverify", "Check a domain's DNSSEC, TLSA records and DANE TLS live, step by step.",
     sh_cmd_daneverify},
    {"delivernow", "Retry deferred mail now (needs the agent).", sh_cmd_delivernow},
    {"destconfig", "Configure destination controls (TLS, DANE, MTA STS, limits).",
     sh_cmd_destconfig},
    {"dig", "Query DNS through the configured resolvers (flags, AD bit).", sh_cmd_dig},
    {"dnsconfig", "Configure the DNS servers and their DNSSEC trust.", sh_cmd_dnsconfig},
    {"exit", "Exit the shell.", cmd_exit},
    {"help", "List the commands.", cmd_help},
    {"mtastsverify", "Check a domain's MTA-STS record, policy and MX hosts live.",
     sh_cmd_mtastsverify},
    {"q", "Exit the shell.", cmd_exit},
    {"quit", "Exit the shell.", cmd_exit},
    {"rollbackconfig", "Go back to a previously committed configuration.", sh_cmd_rollbackconfig},
    {"sethostname", "Set the name of the machine.", sh_cmd_sethostname},
    {"showchanges", "Show the changes made since the last commit.", sh_cmd_showchanges},
    {"smtproutes", "Set up permanent SMTP routes.", sh_cmd_smtproutes},
    {"status", "Show the delivery agent's state, queue counts and connections.", sh_cmd_status},
    {"tail", "Follow mail_logs until Ctrl-C: tail mail_logs.", sh_cmd_tail},
    {"tlsrpt", "TLS reports: tlsrpt report <domain> <YYYY-MM-DD>, tlsrpt send <YYYY-MM-DD>.",
     sh_cmd_tlsrpt},
    {"tlsverify", "Connect to a domain's MX hosts and show each TLS step.", sh_cmd_tlsverify},
    {"version", "Show the version.", cmd_version},
};
const size_t sh_n_commands = sizeof sh_commands / sizeof sh_commands[0];

static const char *command_words[sizeof sh_commands / sizeof sh_commands[0] + 1];

static enum sh_rc cmd_help(struct sh *sh, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    sh_printf(sh, "\n");
    for (size_t i = 0; i < sh_n_commands; i++)
        sh_printf(sh, "%-16s %s\n", sh_commands[i].name, sh_commands[i].help);
    return SH_OK;
}

static enum sh_rc cmd_version(struct sh *sh, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    sh_printf(sh, "\nstsgate version %s\n", STSGATE_VERSION);
    return SH_OK;
}

static enum sh_rc cmd_exit(struct sh *sh, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    if (db_session_dirty(sh->session)) {
        bool yes;
        enum sh_rc rc = sh_ask_yesno(
            sh, "You have uncommitted changes. Are you sure you wish to exit?", false, &yes);
        if (rc != SH_OK || !yes)
            return rc;
    }
    sh->quit = true;
    return SH_OK;
}

/* Splits a command line into words; "double quotes" keep spaces. Returns the count. */
static int split(char *line, char **argv, int max)
{
    int argc = 0;
    char *p = line;
    while (*p && argc < max) {
        while (isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        char *out = p;
        argv[argc++] = out;
        bool quoted = false;
        while (*p && (quoted || !isspace((unsigned char)*p))) {
            if (*p == '"')
                quoted = !quoted;
            else
                *out++ = *p;
            p++;
        }
        if (*p)
            p++;
        *out = '\0';
    }
    return argc;
}

/* Runs one command line. Returns SH_ABORT when the input ended inside the command. */
static enum sh_rc run_line(struct sh *sh, char *line)
{
    char *argv[16];
    int argc = split(line, argv, 16);
    if (argc == 0)
        return SH_OK;
    db_session_refresh(sh->session);
    for (size_t i = 0; i < sh_n_commands; i++) {
        if (strcasecmp(argv[0], sh_commands[i].name) == 0) {
            sh->in_command = true;
            enum sh_rc rc = sh_commands[i].run(sh, argc, argv);
            sh->in_command = false;
            return rc == SH_ABORT && sh->eof ? SH_ABORT : SH_OK;
        }
    }
    sh_error(sh, "Unknown command: %s. Type \"help\" for a list.", argv[0]);
    return SH_OK;
}

static void usage(FILE *f)
{
    fputs("usage: stsgate [--data DIR] [-c \"COMMAND LINE\"]\n"
          "       stsgate --version | --help\n",
          f);
}

static void current_user(char *out, size_t outlen)
{
    struct passwd *pw = getpwuid(getuid());
    const char *env = getenv("USER");
    snprintf(out, outlen, "%s", pw ? pw->pw_name : env && *env ? env : "admin");
}

int main(int argc, char **argv)
{
    const char *data_flag = NULL, *command = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--data") == 0 && i + 1 < argc) {
            data_flag = argv[++i];
        } else if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
            command = argv[++i];
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("stsgate %s\n", STSGATE_VERSION);
            return 0;
        } else if (strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }

    struct sh sh;
    memset(&sh, 0, sizeof sh);
    char err[512];
    if (!datadir_resolve(data_flag, sh.datadir, sizeof sh.datadir)) {
        fprintf(stderr, "stsgate: the data directory path is too long.\n");
        return 1;
    }
    if (!datadir_prepare(sh.datadir, err, sizeof err)) {
        fprintf(stderr, "stsgate: %s\n", err);
        return 1;
    }
    if (db_cfg_open(sh.datadir, db_factory_units, NULL, &sh.db, err, sizeof err) != DB_OK) {
        fprintf(stderr, "stsgate: cannot open the configuration: %s\n", err);
        return 1;
    }
    current_user(sh.user, sizeof sh.user);
    sh.session = db_session_new(sh.db, sh.user);
    for (size_t i = 0; i < sh_n_commands; i++)
        command_words[i] = sh_commands[i].name;
    sh.words = command_words;
    sh_io_open(&sh);

    int status = 0;
    if (command) {
        char *line = xstrdup(command);
        if (run_line(&sh, line) == SH_ABORT)
            status = 2;
        free(line);
    } else {
        bool after_command = false;
        while (!sh.quit) {
            char host[256], prompt[300];
            sh_hostname(&sh, host, sizeof host);
            snprintf(prompt, sizeof prompt, "%s%s> ", after_command ? "\n" : "", host);
            char *line;
            sh.words = command_words;
            enum sh_rc rc = sh_read(&sh, prompt, &line);
            if (rc != SH_OK) {
                if (sh.eof)
                    break;
                after_command = false; /* Ctrl-C at the main prompt: a fresh prompt */
                continue;
            }
            char *p = line;
            while (isspace((unsigned char)*p))
                p++;
            after_command = *p != '\0';
            if (run_line(&sh, line) == SH_ABORT) {
                free(line);
                status = 2;
                break;
            }
            free(line);
        }
    }
    if (status == 0 && (sh.had_error || (!sh.quit && db_session_dirty(sh.session))))
        status = 1;
    fflush(stdout);
    sh_io_close(&sh);
    db_session_free(sh.session);
    db_cfg_close(sh.db);
    return status;
}
