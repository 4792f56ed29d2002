/* path.c -- see path.h. */
#include "common/path.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#define PATH_MAX_LEN 4096

int path_mkdirs(const char *dir, struct err *e)
{
    char path[PATH_MAX_LEN];
    size_t i, n = strlen(dir);

    if (n == 0 || n >= sizeof(path))
        return err_set(e, ERR_INPUT, "bad output directory '%.64s%s'", dir, n > 64 ? "..." : "");
    memcpy(path, dir, n + 1);
    for (i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        path[i] = '\0';
        if (mkdir(path, 0777) != 0 && errno != EEXIST)
            return err_sys(e, errno, "%s", path);
        path[i] = i < n ? '/' : '\0';
    }
    return 0;
}

int path_mkdirs_for(const char *file, struct err *e)
{
    char dir[PATH_MAX_LEN];
    const char *slash = strrchr(file, '/');
    size_t n;

    if (slash == NULL || slash == file) /* "name" or "/name": nothing to make */
        return 0;
    n = (size_t)(slash - file);
    if (n >= sizeof(dir))
        return err_set(e, ERR_INPUT, "output path too long: '%.64s...'", file);
    memcpy(dir, file, n);
    dir[n] = '\0';
    return path_mkdirs(dir, e);
}
