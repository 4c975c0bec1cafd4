/* test_sh_ask.c - the prompt engine: each kind of question printed exactly, a bad answer followed
 * by its error line and the same question, defaults, an empty answer with no default, the end of
 * input. Input comes from a file on stdin (the non-terminal mode), output is captured. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sh.h"
#include "strbuf.h"
#include "t.h"

static char in_path[] = "/tmp/stsgate-ask-in-XXXXXX";
static char out_path[] = "/tmp/stsgate-ask-out-XXXXXX";
static int saved_stdout;

/* Makes input the shell's stdin and starts capturing stdout. */
static void feed(struct sh *sh, const char *input)
{
    FILE *f = fopen(in_path, "w");
    fputs(input, f);
    fclose(f);
    if (!freopen(in_path, "r", stdin))
        abort();
    fflush(stdout);
    saved_stdout = dup(STDOUT_FILENO);
    FILE *o = fopen(out_path, "w");
    dup2(fileno(o), STDOUT_FILENO);
    fclose(o);
    memset(sh, 0, sizeof *sh);
}

/* Stops capturing; returns what was printed (free it). */
static char *captured(void)
{
    fflush(stdout);
    dup2(saved_stdout, STDOUT_FILENO);
    close(saved_stdout);
    FILE *f = fopen(out_path, "r");
    struct strbuf sb = STRBUF_INIT;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        sb_append_len(&sb, buf, n);
    fclose(f);
    return sb_steal(&sb);
}

static void test_yesno(void)
{
    struct sh sh;
    bool yes = false;
    feed(&sh, "maybe\nY\n");
    enum sh_rc rc = sh_ask_yesno(&sh, "Go on?", false, &yes);
    char *out = captured();
    T_EQ_INT(rc, SH_OK);
    T_CHECK(yes);
    T_CHECK(sh.had_error);
    T_EQ_STR(out, "\nGo on? [N]> \nPlease answer \"Y\" or \"N\".\n\nGo on? [N]> \n");
    free(out);

    feed(&sh, "\n");
    rc = sh_ask_yesno(&sh, "Go on?", true, &yes);
    out = captured();
    T_EQ_INT(rc, SH_OK);
    T_CHECK(yes);
    T_CHECK(!sh.had_error);
    T_EQ_STR(out, "\nGo on? [Y]> \n");
    free(out);

    feed(&sh, "no\n");
    rc = sh_ask_yesno(&sh, "Go on?", true, &yes);
    free(captured());
    T_CHECK(!yes);
}

static void test_number(void)
{
    struct sh sh;
    long v = 0, def = 500;
    feed(&sh, "1001\nabc\n\n");
    enum sh_rc rc = sh_ask_number(&sh, "How many?", &def, 1, 1000, &v);
    char *out = captured();
    T_EQ_INT(rc, SH_OK);
    T_EQ_INT(v, 500);
    T_EQ_STR(out, "\nHow many?\n[500]> \nThe value must be a number from 1 to 1000.\n\nHow "
                  "many?\n[500]> \nThe value must be a number from 1 to 1000.\n\nHow many?\n"
                  "[500]> \n");
    free(out);

    feed(&sh, " 42 \n");
    rc = sh_ask_number(&sh, "How many?", NULL, 0, 100, &v);
    out = captured();
    T_EQ_INT(rc, SH_OK);
    T_EQ_INT(v, 42);
    T_EQ_STR(out, "\nHow many?\n[]> \n");
    free(out);

    /* No default: an empty answer abandons. */
    feed(&sh, "\n");
    rc = sh_ask_number(&sh, "How many?", NULL, 0, 100, &v);
    free(captured());
    T_EQ_INT(rc, SH_EMPTY);

    /* Values at the bounds, and one past them. */
    feed(&sh, "0\n101\n100\n");
    rc = sh_ask_number(&sh, "N?", NULL, 0, 100, &v);
    T_EQ_INT(v, 0);
    rc = sh_ask_number(&sh, "N?", NULL, 0, 100, &v);
    free(captured());
    T_EQ_INT(rc, SH_OK);
    T_EQ_INT(v, 100);
}

static void test_list(void)
{
    struct sh sh;
    static const char *const items[] = {"Off", "On"};
    int c = 0;
    feed(&sh, "3\n2\n");
    enum sh_rc rc = sh_ask_list(&sh, "Use it?", items, 2, 1, &c);
    char *out = captured();
    T_EQ_INT(rc, SH_OK);
    T_EQ_INT(c, 2);
    T_EQ_STR(out, "\nUse it?\n1. Off\n2. On\n[1]> \nYou must enter a value from 1 to 2.\n\nUse "
                  "it?\n1. Off\n2. On\n[1]> \n");
    free(out);
}

static void test_text(void)
{
    struct sh sh;
    char dom[300];
    feed(&sh, "no such thing\nExample.COM.\n");
    enum sh_rc rc = sh_ask_text(&sh, "Domain?", NULL, sh_valid_domain, dom, sizeof dom);
    char *out = captured();
    T_EQ_INT(rc, SH_OK);
    T_EQ_STR(dom, "example.com");
    T_EQ_STR(out, "\nDomain?\n[]> \nNot a valid domain name.\n\nDomain?\n[]> \n");
    free(out);

    feed(&sh, "\n");
    rc = sh_ask_text(&sh, "Name?", "current", NULL, dom, sizeof dom);
    free(captured());
    T_EQ_INT(rc, SH_OK);
    T_EQ_STR(dom, "current");

    /* A text question that may be left empty. */
    struct sh_question q = {.kind = SH_Q_TEXT, .text = "Comment:", .allow_empty = true};
    union sh_answer a;
    feed(&sh, "\n");
    rc = sh_ask(&sh, &q, &a);
    out = captured();
    T_EQ_INT(rc, SH_OK);
    T_EQ_STR(a.text, "");
    T_EQ_STR(out, "\nComment:\n[]> \n");
    free(out);
}

static void test_menu(void)
{
    struct sh sh;
    static const struct sh_verb verbs[] = {{"NEW", "Create.", NULL}, {"LIST", "Show.", NULL}};
    int c = -1;
    feed(&sh, "frob\nlist\n\n");
    enum sh_rc rc = sh_menu(&sh, verbs, 2, &c);
    T_EQ_INT(rc, SH_OK);
    T_EQ_INT(c, 1);
    rc = sh_menu(&sh, verbs, 2, &c);
    char *out = captured();
    T_EQ_INT(rc, SH_EMPTY);
    const char *menu = "\nChoose the operation you want to perform:\n- NEW - Create.\n- LIST - "
                       "Show.\n[]> \n";
    struct strbuf want = STRBUF_INIT;
    sb_printf(&want, "%sThat value is not valid.\n%s%s", menu, menu, menu);
    T_EQ_STR(out, sb_str(&want));
    sb_free(&want);
    free(out);
}

static int runs_new, runs_list, shown;

static enum sh_rc run_new(struct sh *sh)
{
    (void)sh;
    runs_new++;
    return SH_OK;
}

static enum sh_rc run_list(struct sh *sh)
{
    (void)sh;
    runs_list++;
    return SH_EMPTY; /* an abandoned operation shows the menu again */
}

static void before(struct sh *sh)
{
    sh_printf(sh, "Status %d.\n", ++shown);
}

static void test_menu_run(void)
{
    struct sh sh;
    static const struct sh_verb verbs[] = {{"NEW", "Create.", run_new},
                                           {"LIST", "Show.", run_list}};
    feed(&sh, "new\nLIST\nnew\n\n");
    enum sh_rc rc = sh_menu_run(&sh, before, verbs, 2);
    char *out = captured();
    T_EQ_INT(rc, SH_OK);
    T_EQ_INT(runs_new, 2);
    T_EQ_INT(runs_list, 1);
    T_EQ_INT(shown, 4);
    T_CHECK(strstr(out, "Status 4.\n\nChoose the operation you want to perform:\n") != NULL);
    free(out);

    /* The end of input inside the menu abandons the command. */
    feed(&sh, "new\n");
    rc = sh_menu_run(&sh, NULL, verbs, 2);
    free(captured());
    T_EQ_INT(rc, SH_ABORT);
    T_EQ_INT(runs_new, 3);
}

static void test_eof(void)
{
    struct sh sh;
    bool yes;
    feed(&sh, "");
    enum sh_rc rc = sh_ask_yesno(&sh, "Go on?", false, &yes);
    free(captured());
    T_EQ_INT(rc, SH_ABORT);
    T_CHECK(sh.eof);
    /* Once ended, every question is abandoned at once. */
    rc = sh_ask_yesno(&sh, "Again?", false, &yes);
    T_EQ_INT(rc, SH_ABORT);
}

int main(void)
{
    int fd = mkstemp(in_path);
    close(fd);
    fd = mkstemp(out_path);
    close(fd);
    test_yesno();
    test_number();
    test_list();
    test_text();
    test_menu();
    test_menu_run();
    test_eof();
    unlink(in_path);
    unlink(out_path);
    return t_done();
}
