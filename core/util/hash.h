/* SHA-256 and HMAC-SHA256 as lowercase hex (OpenSSL's libcrypto), and a
 * fast non-cryptographic string hash for tables. Pure. */
#ifndef DTK_UTIL_HASH_H
#define DTK_UTIL_HASH_H

#include <stddef.h>
#include <stdint.h>

/* Writes the 64 hex digits and a NUL into out[65]. Returns 0, or -1 on a
 * libcrypto failure. */
int dtk_sha256_hex(const void *data, size_t len, char out[65]);

/* HMAC-SHA256 of data under key, as 64 hex digits and a NUL. */
int dtk_hmac_sha256_hex(const void *key, size_t keylen, const void *data, size_t len,
			char out[65]);

/* FNV-1a (64 bits) of the NUL-terminated s: for hash tables, not for
 * anything an attacker may choose to collide. */
uint64_t dtk_hash_str(const char *s);

#endif
