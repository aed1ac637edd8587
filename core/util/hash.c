#include "util/hash.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

static void to_hex(const unsigned char *md, unsigned n, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	for (unsigned i = 0; i < n && i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = '\0';
}

int dtk_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	if (EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) != 1 || n != 32)
		return -1;
	to_hex(md, n, out);
	return 0;
}

int dtk_hmac_sha256_hex(const void *key, size_t keylen, const void *data, size_t len,
			char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	if (!HMAC(EVP_sha256(), key, (int)keylen, data, len, md, &n) || n != 32)
		return -1;
	to_hex(md, n, out);
	return 0;
}

uint64_t dtk_hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3u;
	return h;
}
