/* io.c - the shell's input and output.
 *
 * A terminal gets libedit: line editing, history kept in <data>/history, Tab completion of the
 * words the current prompt accepts (sh->words). Anything else is read as plain lines, and the line
 * break a terminal would have echoed is printed so that transcripts look the same. SIGINT only
 * sets a flag; a read it interrupts returns SH_ABORT. */
#include <ctype.h>
#include <errno.h>
#include <histedit.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>
#include <wchar.h>

#include "sh.h"
#include "strbuf.h"

struct sh_edit {
    struct termios saved; /* the terminal as we found it */
    EditLine *el;
    History *hist;
    HistEvent ev;
    char prompt[1024];
    char histfile[4200];
};

static volatile sig_atomic_t interrupted;

#ifdef __SANITIZE_ADDRESS__
/* libedit keeps the wcsdup()ed name and help of EL_ADDFN, which el_end() does not free; they are
 * its own, made once per process. The sanitizer build must not count them against us. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:wcsdup\n";
}
#endif

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

bool sh_interrupted(void)
{
    return interrupted != 0;
}

/* libedit's character reader, replaced so that Ctrl-C cannot be lost: a SIGINT that arrives
 * after sh_read() cleared the flag but before the read blocks would otherwise leave the read
 * waiting. SIGINT is blocked while the flag is checked and unblocked only inside ppoll(). */
static int getc_fn(EditLine *el, wchar_t *wc)
{
    mbstate_t st;
    memset(&st, 0, sizeof st);
    (void)el;
    for (;;) {
        sigset_t intr, old;
        sigemptyset(&intr);
        sigaddset(&intr, SIGINT);
        sigprocmask(SIG_BLOCK, &intr, &old);
        if (interrupted) {
            sigprocmask(SIG_SETMASK, &old, NULL);
            errno = EINTR;
            return -1;
        }
        struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
        int r = ppoll(&pfd, 1, NULL, &old);
        sigprocmask(SIG_SETMASK, &old, NULL);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        char ch;
        ssize_t n = read(STDIN_FILENO, &ch, 1);
        if (n == 0)
            return 0;
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return -1;
        }
        size_t k = mbrtowc(wc, &ch, 1, &st);
        if (k == (size_t)-2)
            continue; /* the rest of a multibyte character follows */
        if (k == (size_t)-1) {
            memset(&st, 0, sizeof st);
            *wc = (wchar_t)(unsigned char)ch;
        }
        return 1;
    }
}

static char *prompt_fn(EditLine *el)
{
    struct sh *sh;
    el_get(el, EL_CLIENTDATA, &sh);
    return sh->edit->prompt;
}

/* Tab: complete the word under the cursor from sh->words; list the candidates when several. */
static unsigned char complete_fn(EditLine *el, int ch)
{
    struct sh *sh;
    (void)ch;
    el_get(el, EL_CLIENTDATA, &sh);
    if (!sh->words)
        return CC_ERROR;
    const LineInfo *li = el_line(el);
    const char *start = li->cursor;
    while (start > li->buffer && start[-1] != ' ')
        start--;
    size_t len = (size_t)(li->cursor - start);
    const char *first = NULL;
    size_t common = 0, matches = 0;
    for (const char *const *w = sh->words; *w; w++) {
        if (strncasecmp(*w, start, len) != 0)
            continue;
        if (!first) {
            first = *w;
            common = strlen(*w);
        } else {
            size_t i = 0;
            while (i < common &&
                   tolower((unsigned char)first[i]) == tolower((unsigned char)(*w)[i]))
                i++;
            common = i;
        }
        matches++;
    }
    if (matches == 0)
        return CC_ERROR;
    if (common > len || matches == 1) {
        /* Replace what was typed with the word as the table spells it. */
        char add[256];
        snprintf(add, sizeof add, "%.*s%s", (int)common, first, matches == 1 ? " " : "");
        el_deletestr(el, (int)len);
        el_insertstr(el, add);
        return CC_REFRESH;
    }
    fputc('\n', stdout);
    for (const char *const *w = sh->words; *w; w++)
        if (strncasecmp(*w, start, len) == 0)
            fprintf(stdout, "%s  ", *w);
    fputc('\n', stdout);
    return CC_REDISPLAY;
}

bool sh_io_open(struct sh *sh)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL); /* no SA_RESTART: a blocked read must return */
    signal(SIGPIPE, SIG_IGN);

    sh->interactive = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
    if (!sh->interactive)
        return true;
    struct sh_edit *e = xcalloc(1, sizeof *e);
    tcgetattr(STDIN_FILENO, &e->saved);
    e->el = el_init("stsgate", stdin, stdout, stderr);
    e->hist = history_init();
    if (!e->el || !e->hist) {
        if (e->el)
            el_end(e->el);
        free(e);
        sh->interactive = false;
        return true;
    }
    history(e->hist, &e->ev, H_SETSIZE, 1000);
    history(e->hist, &e->ev, H_SETUNIQUE, 1);
    snprintf(e->histfile, sizeof e->histfile, "%s/history", sh->datadir);
    history(e->hist, &e->ev, H_LOAD, e->histfile);
    el_set(e->el, EL_CLIENTDATA, sh);
    el_set(e->el, EL_EDITOR, "emacs");
    el_set(e->el, EL_PROMPT, prompt_fn);
    el_set(e->el, EL_GETCFN, getc_fn);
    /* Between lines libedit puts the terminal in the kernel's line mode. Keys typed then (an
     * expect script answers as soon as it sees the prompt, before libedit has switched back)
     * would be echoed twice, and a Ctrl-D would be an end-of-line that the switch drops. Keep
     * line mode and echo off outside editing too: such keys wait, unechoed, for libedit. */
    el_set(e->el, EL_SETTY, "-x", "-icanon", "-echo", NULL);
    el_set(e->el, EL_HIST, history, e->hist);
    el_set(e->el, EL_ADDFN, "sh-complete", "Complete a command or menu verb", complete_fn);
    el_set(e->el, EL_BIND, "^I", "sh-complete", NULL);
    sh->edit = e;
    return true;
}

void sh_io_close(struct sh *sh)
{
    struct sh_edit *e = sh->edit;
    if (!e)
        return;
    history(e->hist, &e->ev, H_SAVE, e->histfile);
    history_end(e->hist);
    el_end(e->el);
    tcsetattr(STDIN_FILENO, TCSADRAIN, &e->saved);
    free(e);
    sh->edit = NULL;
}

static enum sh_rc read_plain(struct sh *sh, char **line)
{
    char *buf = NULL;
    size_t cap = 0;
    errno = 0;
    ssize_t n = getline(&buf, &cap, stdin);
    if (n < 0) {
        free(buf);
        if (errno == EINTR || interrupted) {
            clearerr(stdin);
            return SH_ABORT;
        }
        sh->eof = true;
        return SH_ABORT;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    *line = buf;
    return SH_OK;
}

/* A secret on a terminal: no echo, no line editing beyond backspace, never in the history. */
static enum sh_rc read_secret(struct sh *sh, const char *prompt, char **line)
{
    struct termios saved, t;
    bool restore = tcgetattr(STDIN_FILENO, &saved) == 0;
    if (restore) {
        t = saved;
        t.c_lflag &= ~(tcflag_t)(ECHO | ICANON);
        t.c_cc[VMIN] = 1;
        t.c_cc[VTIME] = 0;
        tcsetattr(STDIN_FILENO, TCSADRAIN, &t);
    }
    fputs(prompt, stdout);
    fflush(stdout);
    struct strbuf sb = STRBUF_INIT;
    enum sh_rc rc = SH_OK;
    for (;;) {
        wchar_t wc;
        int n = getc_fn(NULL, &wc);
        if (n <= 0 || wc == 4 /* Ctrl-D */) {
            rc = SH_ABORT;
            if (n == 0 && !sh->in_command)
                sh->eof = true;
            break;
        }
        if (wc == '\r' || wc == '\n')
            break;
        if (wc == 0x7f || wc == 0x08) {
            /* Back up one character, UTF-8 continuation bytes included. */
            while (sb.len > 0 && (sb.buf[sb.len - 1] & 0xc0) == 0x80)
                sb.len--;
            if (sb.len > 0)
                sb.len--;
            if (sb.buf)
                sb.buf[sb.len] = '\0';
            continue;
        }
        if (wc == 0x15) { /* Ctrl-U */
            sb_reset(&sb);
            continue;
        }
        char mb[MB_LEN_MAX];
        mbstate_t st;
        memset(&st, 0, sizeof st);
        size_t k = wcrtomb(mb, wc, &st);
        if (k != (size_t)-1)
            sb_append_len(&sb, mb, k);
    }
    if (restore)
        tcsetattr(STDIN_FILENO, TCSADRAIN, &saved);
    fputc('\n', stdout);
    fflush(stdout);
    if (rc != SH_OK) {
        /* Wipe what was typed before dropping it. */
        if (sb.buf)
            memset(sb.buf, 0, sb.cap);
        sb_free(&sb);
        return rc;
    }
    *line = sb_steal(&sb);
    return SH_OK;
}

enum sh_rc sh_read(struct sh *sh, const char *prompt, char **line)
{
    return sh_read_as(sh, prompt, 0, line);
}

enum sh_rc sh_read_as(struct sh *sh, const char *prompt, unsigned how, char **line)
{
    *line = NULL;
    interrupted = 0;
    if (sh->eof)
        return SH_ABORT;
    if (sh->edit && (how & SH_READ_SECRET))
        return read_secret(sh, prompt, line);
    if (!sh->edit) {
        fputs(prompt, stdout);
        fflush(stdout);
        enum sh_rc rc = read_plain(sh, line);
        /* The line break a terminal would have echoed. */
        fputc('\n', stdout);
        fflush(stdout);
        return rc;
    }
    struct sh_edit *e = sh->edit;
    /* libedit draws one line of prompt: print any lines before it ourselves. */
    const char *last = strrchr(prompt, '\n');
    if (last) {
        fwrite(prompt, 1, (size_t)(last - prompt) + 1, stdout);
        prompt = last + 1;
    }
    snprintf(e->prompt, sizeof e->prompt, "%s", prompt);
    fflush(stdout);
    int count = 0;
    const char *got = el_gets(e->el, &count);
    if (!got || count < 0 || interrupted) {
        if (interrupted || (count < 0 && errno == EINTR)) {
            fputc('\n', stdout);
            /* Ctrl-C throws away what was typed on the line: the next prompt starts empty. */
            const LineInfo *li = el_line(e->el);
            el_cursor(e->el, (int)(li->lastchar - li->cursor));
            li = el_line(e->el);
            el_deletestr(e->el, (int)(li->cursor - li->buffer));
            el_reset(e->el);
            return SH_ABORT;
        }
        fputc('\n', stdout);
        if (!sh->in_command)
            sh->eof = true;
        return SH_ABORT;
    }
    size_t n = strlen(got);
    while (n > 0 && (got[n - 1] == '\n' || got[n - 1] == '\r'))
        n--;
    *line = xstrndup(got, n);
    if (n > 0 && !(how & (SH_READ_PRIVATE | SH_READ_SECRET))) {
        history(e->hist, &e->ev, H_ENTER, *line);
        history(e->hist, &e->ev, H_SAVE, e->histfile);
    }
    return SH_OK;
}

void sh_printf(struct sh *sh, const char *fmt, ...)
{
    va_list ap;
    (void)sh;
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
}

void sh_error(struct sh *sh, const char *fmt, ...)
{
    va_list ap;
    sh->had_error = true;
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
}
