/* datadir.c - find and prepare the data directory. */
#include "datadir.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool datadir_resolve(const char *flag, char *out, size_t outlen)
{
    const char *env = getenv("STSGATE_DATA");
    int n;
    if (flag && *flag) {
        n = snprintf(out, outlen, "%s", flag);
    } else if (env && *env) {
        n = snprintf(out, outlen, "%s", env);
    } else {
        const char *home = getenv("HOME");
        if (!home || !*home) {
            struct passwd *pw = getpwuid(getuid());
            home = pw ? pw->pw_dir : "/";
        }
        n = snprintf(out, outlen, "%s/.local/share/stsgate", home);
    }
    return n > 0 && (size_t)n < outlen;
}

/* mkdir -p, each new level with the given mode. */
static bool mkdirs(const char *path, mode_t mode)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp)
        return false;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return false;
        *p = '/';
    }
    return mkdir(tmp, mode) == 0 || errno == EEXIST;
}

bool datadir_prepare(const char *path, char *err, size_t errlen)
{
    char sub[4096];
    if (!mkdirs(path, 0700) || chmod(path, 0700) != 0) {
        snprintf(err, errlen, "Cannot use the data directory %s: %s.", path, strerror(errno));
        return false;
    }
    static const char *const subdirs[] = {"logs", "configuration"};
    for (size_t i = 0; i < sizeof subdirs / sizeof subdirs[0]; i++) {
        snprintf(sub, sizeof sub, "%s/%s", path, subdirs[i]);
        if (mkdir(sub, 0700) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "Cannot create %s: %s.", sub, strerror(errno));
            return false;
        }
    }
    return true;
}

void datadir_config_path(const char *datadir, const char *name, char *out, size_t outlen)
{
    if (name[0] == '/')
        snprintf(out, outlen, "%s", name);
    else
        snprintf(out, outlen, "%s/configuration/%s", datadir, name);
}
