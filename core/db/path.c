/* SQLite file paths in DetectK's connection strings (db.h). */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "db/db.h"

int dtk_db_sqlite_path(const char *conn, char *out, size_t outsz, char *errstr,
			    size_t errstr_size)
{
	const char *sep = conn ? strstr(conn, "://") : NULL;
	size_t n = sep ? (size_t)(sep - conn) : 0;
	if (!sep || n < 6 || strncasecmp(conn, "sqlite", 6) != 0 || (n > 6 && conn[6] != '+') ||
	    sep[3] != '/') {
		snprintf(errstr, errstr_size,
			 "expected sqlite:///relative/path or sqlite:////absolute/path");
		return -1;
	}
	const char *path = sep + 4;
	size_t len = strcspn(path, "?");
	if (len == 0) {
		snprintf(errstr, errstr_size,
			 "sqlite:/// needs a database file (an in-memory database holds no data)");
		return -1;
	}
	if (len >= outsz) {
		snprintf(errstr, errstr_size, "sqlite path is too long");
		return -1;
	}
	memcpy(out, path, len);
	out[len] = '\0';
	return 0;
}

int dtk_db_resolve_path(const char *path, const char *base_dir, char *out, size_t outsz)
{
	struct stat sb;
	if (path[0] != '/' && base_dir && *base_dir && stat(path, &sb) != 0) {
		int n = snprintf(out, outsz, "%s/%s", base_dir, path);
		if (n >= 0 && (size_t)n < outsz && stat(out, &sb) == 0)
			return 0;
	}
	int n = snprintf(out, outsz, "%s", path);
	return n >= 0 && (size_t)n < outsz ? 0 : -1;
}
