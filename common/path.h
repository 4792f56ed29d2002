/* path.h -- output directories, made as `mkdir -p` would. */
#ifndef LLM_PATH_H
#define LLM_PATH_H

#include "common/err.h"

/* Make DIR and every missing directory above it (mode 0777 less the umask).
 * Returns 0, or -1 with E naming the component that could not be made. */
int path_mkdirs(const char *dir, struct err *e);

/* Make the directories above FILE (nothing for a bare file name). */
int path_mkdirs_for(const char *file, struct err *e);

#endif
