/* files.c - the files of IMPORT and EXPORT (cli.md §1, §2.5): the file name question, reading a
 * file whole (a text table, or a binary certificate file), and writing one so that a failed write
 * never leaves half a file.
 *
 * Names are read as cli.md §1 says: an absolute path as given, a relative name inside
 * <data>/configuration/ (and never outside it: no "/" or ".." in a relative name). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "datadir.h"
#include "sh.h"
#include "strbuf.h"

/* Larger than any table an administrator keeps in a text file; a bound keeps a wrong file (a
 * disk image, /dev/zero) from eating the memory. */
#define TEXT_FILE_MAX (16u << 20)

bool sh_valid_file_name(const char *in, char *out, size_t outlen, char *err, size_t errlen)
{
    if (in[0] != '/' && (strstr(in, "..") || strchr(in, '/'))) {
        snprintf(err, errlen, "That value is not valid.");
        return false;
    }
    snprintf(out, outlen, "%s", in);
    return true;
}

bool sh_read_file(const char *path, size_t max, bool text, char **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    *data = NULL;
    *len = 0;
    if (!f)
        return false;
    struct strbuf sb = STRBUF_INIT;
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        sb_append_len(&sb, buf, n);
        if (sb.len > max) {
            fclose(f);
            sb_free(&sb);
            errno = EFBIG;
            return false;
        }
    }
    bool failed = ferror(f);
    fclose(f);
    if (failed || (text && memchr(sb_str(&sb), '\0', sb.len))) {
        sb_free(&sb);
        errno = text ? EINVAL : EIO;
        return false;
    }
    *len = sb.len;
    *data = sb.buf ? sb_steal(&sb) : xstrdup("");
    return true;
}

bool sh_write_file(const char *path, const char *content, size_t len)
{
    char tmp[4300];
    if (snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return false;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return false;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, content + off, len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        off += (size_t)w;
    }
    bool ok = off == len && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (ok && rename(tmp, path) == 0)
        return true;
    int e = errno;
    unlink(tmp);
    errno = e;
    return false;
}

enum sh_rc sh_import_ask_file(struct sh *sh, size_t max, bool text, char **data, size_t *len)
{
    char host[256], question[400], name[1024], path[4200];
    *data = NULL;
    *len = 0;
    sh_hostname(sh, host, sizeof host);
    snprintf(question, sizeof question,
             "Enter the name of the file on machine \"%s\" to import:", host);
    enum sh_rc rc = sh_ask_text(sh, question, NULL, sh_valid_file_name, name, sizeof name);
    if (rc != SH_OK)
        return rc;
    datadir_config_path(sh->datadir, name, path, sizeof path);
    if (!sh_read_file(path, max, text, data, len))
        sh_error(sh, "Unable to read the file \"%s\": %s.", name, strerror(errno));
    return SH_OK;
}

enum sh_rc sh_import_ask(struct sh *sh, char **content)
{
    size_t len;
    return sh_import_ask_file(sh, TEXT_FILE_MAX, true, content, &len);
}

enum sh_rc sh_export_ask(struct sh *sh, const char *content, size_t len)
{
    char host[256], name[1024], path[4200];
    enum sh_rc rc = sh_ask_text(sh, "Enter a name for the exported file:", NULL, sh_valid_file_name,
                                name, sizeof name);
    if (rc != SH_OK)
        return rc;
    datadir_config_path(sh->datadir, name, path, sizeof path);
    if (!sh_write_file(path, content, len)) {
        sh_error(sh, "Unable to write the file \"%s\": %s.", name, strerror(errno));
        return SH_OK;
    }
    sh_hostname(sh, host, sizeof host);
    if (name[0] == '/')
        sh_printf(sh, "\nFile written on machine \"%s\" to the location \"%s\".\n", host, name);
    else
        sh_printf(sh, "\nFile written on machine \"%s\" to the location \"/configuration/%s\".\n",
                  host, name);
    return SH_OK;
}

void sh_print_error_lines(struct sh *sh, const char *text)
{
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (n > 0)
            sh_error(sh, "%.*s", (int)n, p);
        p += n + (nl ? 1 : 0);
    }
}
