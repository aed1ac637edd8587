/* Small, bounded file helpers. */
#ifndef DTK_UTIL_FILEIO_H
#define DTK_UTIL_FILEIO_H

#include <stddef.h>

#define DTK_FILE_MAX_CONFIG ((size_t)4 << 20)

/* Reads a whole file of at most max bytes. Returns 0 and a malloc'd,
 * NUL-terminated buffer owned by the caller, or -1 with errstr naming the
 * path. */
int dtk_file_read(const char *path, size_t max, char **out, size_t *len, char *errstr,
		  size_t errstr_size);

int dtk_file_exists(const char *path);

/* mkdir -p with mode for the directories it creates. */
int dtk_mkdirs(const char *path, unsigned mode);

/* The directory part of path ("." when none) into out. */
void dtk_dirname(const char *path, char *out, size_t outsz);

#endif
