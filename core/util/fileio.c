#include "util/fileio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int dtk_file_read(const char *path, size_t max, char **out, size_t *len, char *errstr,
		  size_t errstr_size)
{
	int rc = -1;
	char *data = NULL;
	if (errstr_size)
		errstr[0] = '\0';
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(errstr, errstr_size, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	size_t cap = 4096, n = 0;
	data = malloc(cap + 1);
	if (!data)
		goto out;
	for (;;) {
		if (n == cap) {
			if (cap >= max) {
				snprintf(errstr, errstr_size, "%s: larger than %zu bytes", path, max);
				goto out;
			}
			cap = cap * 2 > max ? max : cap * 2;
			char *d = realloc(data, cap + 1);
			if (!d)
				goto out;
			data = d;
		}
		size_t got = fread(data + n, 1, cap - n, f);
		if (got == 0)
			break;
		n += got;
	}
	if (ferror(f)) {
		snprintf(errstr, errstr_size, "%s: read error: %s", path, strerror(errno));
		goto out;
	}
	data[n] = '\0';
	*out = data;
	*len = n;
	data = NULL;
	rc = 0;
out:
	if (rc != 0 && !errstr[0])
		snprintf(errstr, errstr_size, "%s: out of memory", path);
	free(data);
	fclose(f);
	return rc;
}

int dtk_file_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

int dtk_mkdirs(const char *path, unsigned mode)
{
	char tmp[4096];
	int n = snprintf(tmp, sizeof(tmp), "%s", path);
	if (n <= 0 || (size_t)n >= sizeof(tmp))
		return -1;
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, mode) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

void dtk_dirname(const char *path, char *out, size_t outsz)
{
	const char *slash = strrchr(path, '/');
	if (!slash) {
		snprintf(out, outsz, ".");
		return;
	}
	if (slash == path) {
		snprintf(out, outsz, "/");
		return;
	}
	snprintf(out, outsz, "%.*s", (int)(slash - path), path);
}
