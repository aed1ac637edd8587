/* A small Redis client over Debian's hiredis 0.14 (blocking API, no TLS,
 * no RESP3): one connection from a URL
 *
 *   redis://[[user]:password@]host[:port][/db]
 *
 * (port 6379 and db 0 by default; user-info percent-decoded; IPv6 hosts in
 * brackets), with AUTH and SELECT on every (re)connect, connect and command
 * timeouts, and one reconnect when a connection turns out broken. Every
 * message names the server by its shown form (the URL with any user-info
 * replaced by ***) and never contains the password.
 *
 * URL parsing (dtk_redis_url_parse) needs no socket. A dtk_redis is one
 * connection: use it from one thread at a time; separate handles may be
 * used by separate threads. */
#ifndef DTK_UTIL_REDIS_H
#define DTK_UTIL_REDIS_H

#include <stddef.h>
#include <stdint.h>

#define DTK_REDIS_DEFAULT_PORT 6379
#define DTK_REDIS_DEFAULT_TIMEOUT_MS 2000

typedef struct dtk_redis_url {
	char host[256];	    /* without brackets */
	int port;	    /* 1..65535 */
	int db;		    /* 0.. */
	char user[128];	    /* "" for the default user */
	char password[256]; /* "" for none */
	char shown[384];    /* redis://[***@]host:port/db: safe to print */
} dtk_redis_url;

/* Parses url into *out (no I/O). Returns 0, or -1 with errstr; the
 * message never repeats the URL's user-info. */
int dtk_redis_url_parse(const char *url, dtk_redis_url *out, char *errstr, size_t errstr_size);

/* Replaces every occurrence of secret (when non-empty) in the
 * NUL-terminated text s, in place, by "***", truncating at size. */
void dtk_redis_mask(char *s, size_t size, const char *secret);

typedef struct dtk_redis dtk_redis;

/* A handle for url without connecting: the first command connects.
 * timeout_ms bounds connecting and each command (<= 0 means
 * DTK_REDIS_DEFAULT_TIMEOUT_MS). Returns a handle owned by the caller
 * (dtk_redis_free), or NULL with errstr for a bad URL or no memory. */
dtk_redis *dtk_redis_new(const char *url, int timeout_ms, char *errstr, size_t errstr_size);
/* dtk_redis_new, then connects (AUTH, SELECT) at once: NULL with errstr
 * when the server cannot be reached or refuses the credentials. */
dtk_redis *dtk_redis_connect(const char *url, int timeout_ms, char *errstr, size_t errstr_size);
/* Closes the connection and NULLs *r. */
void dtk_redis_free(dtk_redis **r);

/* The server's shown form (borrowed, valid while r lives). */
const char *dtk_redis_shown(const dtk_redis *r);

/* What a command returned, copied out of hiredis's reply so callers need
 * no hiredis header. Owned by the caller: dtk_redis_reply_free. */
typedef enum dtk_redis_type {
	DTK_REDIS_NIL,
	DTK_REDIS_STRING, /* bulk or status string: str, len */
	DTK_REDIS_INTEGER,
	DTK_REDIS_ARRAY,
	DTK_REDIS_ERROR /* the server's error reply: str */
} dtk_redis_type;

typedef struct dtk_redis_reply {
	dtk_redis_type type;
	char *str; /* NUL-terminated; STRING and ERROR */
	size_t len;
	long long integer;
	size_t nelem;
	struct dtk_redis_reply *elem; /* ARRAY: nelem replies */
} dtk_redis_reply;

void dtk_redis_reply_free(dtk_redis_reply *reply);

/* Runs one command given as argc strings (argv[i] of argvlen[i] bytes, or
 * NUL-terminated when argvlen is NULL), connecting first when needed. A
 * connection that fails mid-command is dropped and the command is sent
 * once more on a new connection, so use it for commands that are safe to
 * repeat. Returns 0 with *out filled (a server error reply is a
 * DTK_REDIS_ERROR reply, not a failure), or -1 with errstr when Redis
 * could not be reached or the connection failed twice. */
int dtk_redis_command(dtk_redis *r, int argc, const char **argv, const size_t *argvlen,
		      dtk_redis_reply *out, char *errstr, size_t errstr_size);

/* Runs a Lua script by EVALSHA, falling back to EVAL when the server
 * does not know the script yet (NOSCRIPT). sha1 is the script's SHA-1 in
 * 40 hex digits (dtk_redis_script_sha1). keys and args are
 * NUL-terminated strings. Same return as dtk_redis_command. */
int dtk_redis_eval(dtk_redis *r, const char *script, const char *sha1, int nkeys,
		   const char *const *keys, int nargs, const char *const *args,
		   dtk_redis_reply *out, char *errstr, size_t errstr_size);

/* SHA-1 of script as 40 lowercase hex digits and a NUL in out[41].
 * Returns 0, or -1 on a libcrypto failure. */
int dtk_redis_script_sha1(const char *script, char out[41]);

#endif
