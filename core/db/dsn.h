/* Connection strings of server databases (postgres, mysql): URL parsing
 * with percent-decoding, the pool/limit/shown keys of a dtk_db_target, and
 * masking of secrets in the texts client libraries hand back. Pure
 * functions, safe from any thread; no I/O. */
#ifndef DTK_DB_DSN_H
#define DTK_DB_DSN_H

#include <stddef.h>

#include "db/db.h"

#define DTK_DSN_MAX_PARAMS 32

/* A parsed scheme://[user[:password]@]host[:port][/database][?k=v&...].
 * Every string is decoded and owned (NULL when absent); free with
 * dtk_dsn_clear. */
typedef struct dtk_dsn {
	char *scheme; /* lower case, without a "+driver" suffix */
	char *user, *password, *host, *database;
	int port; /* 0 when absent */
	size_t nparams;
	char *keys[DTK_DSN_MAX_PARAMS], *vals[DTK_DSN_MAX_PARAMS];
} dtk_dsn;

/* Parses s. The password may hold '@' (the last '@' before the query ends
 * the user-info). Returns 0, or -1 with errstr that never quotes the
 * user-info. An IPv6 host keeps its brackets out: host is "::1". */
int dtk_dsn_parse(const char *s, dtk_dsn *d, char *errstr, size_t errstr_size);
void dtk_dsn_clear(dtk_dsn *d);

/* Decodes %XX escapes of n bytes of s into a new string (NULL when out of
 * memory or on a malformed escape); plus_space turns '+' into ' ' (query
 * strings). */
char *dtk_dsn_decode(const char *s, size_t n, int plus_space);

/* Appends s to b with every byte but [A-Za-z0-9-._~] %-escaped. Returns 0
 * or -1 (b's maximum reached). */
struct dtk_buf;
int dtk_dsn_encode(struct dtk_buf *b, const char *s);

/* Fills t->pool_key (engine://user@host:port/database), t->limit_key
 * (engine://host:port, fleet.md) and t->shown (engine://host:port/database).
 * host NULL or empty, or a socket path, counts as localhost; the host is
 * lower-cased and an IPv6 address bracketed. Returns 0 or -1 (out of
 * memory). */
int dtk_dsn_keys(dtk_db_target *t, const char *engine, const char *user, const char *host, int port,
		 const char *database);

/* Rewrites msg in place: every occurrence of secret (when non-empty) and
 * the user-info of every URL in it become ***. */
void dtk_dsn_mask(char *msg, size_t size, const char *secret);

#endif
