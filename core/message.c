/* Check request v1 codec, signatures, rejected/expired results and
 * CloudEvents headers (fleet.md; docs/internals/message.md). */
#include "message.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "check.h"
#include "util/clock.h"
#include "util/hash.h"
#include "util/json.h"
#include "util/pyfmt.h"

/* years 0001..9999: what four-digit RFC 3339 years can say */
#define MIN_TIME_MS (-62135596800000LL)
#define MAX_TIME_MS (253402300799999LL)
/* Kafka's own limit on topic names */
#define MAX_TOPIC_LEN 249

const char *dtk_msg_err_name(dtk_msg_err err)
{
	switch (err) {
	case DTK_MSG_OK:
		return "ok";
	case DTK_MSG_OVERSIZE:
		return "oversize";
	case DTK_MSG_NOT_JSON:
		return "not_json";
	case DTK_MSG_NOT_OBJECT:
		return "not_object";
	case DTK_MSG_UNKNOWN_SCHEMA:
		return "unknown_schema";
	case DTK_MSG_MISSING_FIELD:
		return "missing_field";
	case DTK_MSG_BAD_FIELD:
		return "bad_field";
	case DTK_MSG_SHA_MISMATCH:
		return "sha_mismatch";
	case DTK_MSG_BAD_SIGNATURE:
		return "bad_signature";
	case DTK_MSG_UNSIGNED:
		return "unsigned";
	case DTK_MSG_NOMEM:
		return "internal";
	}
	return "unknown";
}

const char *dtk_msg_err_stage(dtk_msg_err err)
{
	switch (err) {
	case DTK_MSG_OK:
		return NULL;
	case DTK_MSG_OVERSIZE:
	case DTK_MSG_NOT_JSON:
	case DTK_MSG_NOT_OBJECT:
		return "envelope";
	case DTK_MSG_UNKNOWN_SCHEMA:
	case DTK_MSG_MISSING_FIELD:
	case DTK_MSG_BAD_FIELD:
	case DTK_MSG_SHA_MISMATCH:
		return "schema";
	case DTK_MSG_BAD_SIGNATURE:
	case DTK_MSG_UNSIGNED:
		return "signature";
	case DTK_MSG_NOMEM:
		return "internal";
	}
	return "internal";
}

void dtk_request_clear(dtk_request *req)
{
	if (!req)
		return;
	free(req->metric);
	free(req->config_yaml);
	dtk_value_free(&req->profiles);
	dtk_value_free(&req->tags);
	free(req->reply_to);
	memset(req, 0, sizeof(*req));
}

/* Keeps what a `rejected` result can use from a refused message. */
static void keep_identity(dtk_request *req)
{
	dtk_request kept = {0};
	memcpy(kept.request_id, req->request_id, sizeof(kept.request_id));
	memcpy(kept.dispatch_id, req->dispatch_id, sizeof(kept.dispatch_id));
	kept.metric = req->metric;
	req->metric = NULL;
	dtk_request_clear(req);
	*req = kept;
}

/* ---- UUIDs, names, times ---------------------------------------------- */

static int random_bytes(unsigned char *p, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = getrandom(p + got, n - got, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	if (got == n)
		return 0;
	/* kernels without getrandom(2) */
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	got = 0;
	while (got < n) {
		ssize_t r = read(fd, p + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	return got == n ? 0 : -1;
}

int dtk_uuid_v4(char out[DTK_UUID_SIZE])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[16];
	if (random_bytes(b, sizeof(b)) != 0) {
		out[0] = '\0';
		return -1;
	}
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	size_t o = 0;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[b[i] >> 4];
		out[o++] = hex[b[i] & 15];
	}
	out[o] = '\0';
	return 0;
}

static int is_lower_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

int dtk_uuid_valid(const char *s)
{
	if (!s)
		return 0;
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (!is_lower_hex(s[i])) {
			return 0;
		}
	}
	return s[36] == '\0';
}

/* config.md's `name`: ^[A-Za-z0-9_-]+$ */
static int valid_name(const char *s)
{
	if (!s || !*s)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
			return 0;
	return 1;
}

/* A Kafka topic name: [A-Za-z0-9._-], 1 to 249 characters. */
static int valid_topic(const char *s)
{
	size_t n = 0;
	if (!s)
		return 0;
	for (; s[n]; n++)
		if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') ||
		      (s[n] >= '0' && s[n] <= '9') || s[n] == '.' || s[n] == '_' || s[n] == '-'))
			return 0;
	return n >= 1 && n <= MAX_TOPIC_LEN;
}

static int digits(const char *s, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

/* RFC 3339 in UTC as the fleet writes it: YYYY-MM-DDTHH:MM:SS, an optional
 * fraction of 1 to 9 digits (kept to the millisecond), then Z. Offsets are
 * refused: the fields are UTC by contract, and the schema says the same. */
static int parse_time(const char *s, size_t len, int64_t *out_ms)
{
	int y, mo, d, h, mi, sec, ms = 0;
	if (len < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':')
		return -1;
	if (digits(s, 4, &y) || digits(s + 5, 2, &mo) || digits(s + 8, 2, &d) ||
	    digits(s + 11, 2, &h) || digits(s + 14, 2, &mi) || digits(s + 17, 2, &sec))
		return -1;
	size_t i = 19;
	if (s[i] == '.') {
		size_t start = ++i;
		while (i < len && s[i] >= '0' && s[i] <= '9')
			i++;
		size_t nfrac = i - start;
		if (nfrac < 1 || nfrac > 9)
			return -1;
		for (size_t k = 0; k < 3; k++)
			ms = ms * 10 + (k < nfrac ? s[start + k] - '0' : 0);
	}
	if (i + 1 != len || s[i] != 'Z')
		return -1;
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] + (mo == 2 && leap) ||
	    h > 23 || mi > 59 || sec > 59)
		return -1;
	int64_t days = dtk_pyfmt_days(y, mo, d);
	*out_ms = ((days * 24 + h) * 60 + mi) * 60000LL + sec * 1000LL + ms;
	return 0;
}

static int time_in_range(int64_t t_ms)
{
	return t_ms >= MIN_TIME_MS && t_ms <= MAX_TIME_MS;
}

/* Well-formed UTF-8 (no overlongs, surrogates or code points past
 * U+10FFFF): the text must survive JSON's \u escapes byte for byte. */
static int valid_utf8(const unsigned char *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		unsigned c = s[i];
		size_t n;
		unsigned cp, min;
		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			n = 1, cp = c & 0x1f, min = 0x80;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2, cp = c & 0x0f, min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3, cp = c & 0x07, min = 0x10000;
		} else {
			return 0;
		}
		if (n >= len - i)
			return 0; /* truncated sequence */
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += n + 1;
	}
	return 1;
}

/* A short printable quotation of outside text for error messages. */
static void quote(const char *s, size_t len, char *out, size_t outsz)
{
	size_t o = 0, max = 40;
	if (outsz == 0)
		return;
	for (size_t i = 0; i < len && i < max && o + 1 < outsz; i++) {
		unsigned char c = (unsigned char)s[i];
		out[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	out[o] = '\0';
	if (len > max && o + 4 < outsz)
		snprintf(out + o, outsz - o, "...");
}

/* RFC 8259 has no Infinity or NaN (dtk_json_parse takes Python's tokens). */
static int all_finite(const dtk_value *v)
{
	if (v->type == DTK_V_FLOAT)
		return isfinite(v->u.f);
	if (v->type == DTK_V_LIST) {
		for (size_t i = 0; i < v->u.list.n; i++)
			if (!all_finite(v->u.list.items[i]))
				return 0;
	} else if (v->type == DTK_V_MAP) {
		for (size_t i = 0; i < v->u.map.n; i++)
			if (!all_finite(v->u.map.items[i].val))
				return 0;
	}
	return 1;
}

/* ---- encode ----------------------------------------------------------- */

/* ,"key": */
static void emit_key(dtk_buf *out, const char *key)
{
	dtk_buf_addc(out, ',');
	dtk_json_emit_str(out, key, strlen(key), 0);
	dtk_buf_addc(out, ':');
}

static void emit_cstr(dtk_buf *out, const char *key, const char *s)
{
	emit_key(out, key);
	dtk_json_emit_str(out, s, strlen(s), 0);
}

static void emit_time(dtk_buf *out, const char *key, int64_t t_ms, int with_ms)
{
	char t[48];
	dtk_format_time(t_ms, with_ms, t, sizeof(t));
	emit_cstr(out, key, t);
}

static int encode_check(const dtk_request *req, char *err, size_t errsz)
{
	if (!dtk_uuid_valid(req->request_id)) {
		snprintf(err, errsz, "field 'request_id' must be a lowercase UUID");
		return -1;
	}
	if (!dtk_uuid_valid(req->dispatch_id)) {
		snprintf(err, errsz, "field 'dispatch_id' must be a lowercase UUID");
		return -1;
	}
	if (!valid_name(req->metric)) {
		snprintf(err, errsz, "field 'metric' must match ^[A-Za-z0-9_-]+$");
		return -1;
	}
	if (!req->config_yaml ||
	    !valid_utf8((const unsigned char *)req->config_yaml, req->config_yaml_len)) {
		snprintf(err, errsz, "field 'config_yaml' must be UTF-8 text");
		return -1;
	}
	if (req->profiles && (req->profiles->type != DTK_V_MAP || !all_finite(req->profiles))) {
		snprintf(err, errsz, "field 'profiles' must be an object without Infinity or NaN");
		return -1;
	}
	for (size_t i = 0; req->profiles && i < req->profiles->u.map.n; i++)
		if (req->profiles->u.map.items[i].key->type != DTK_V_STR ||
		    req->profiles->u.map.items[i].val->type != DTK_V_MAP) {
			snprintf(err, errsz, "field 'profiles' must map names to objects");
			return -1;
		}
	if (req->tags && req->tags->type != DTK_V_LIST) {
		snprintf(err, errsz, "field 'tags' must be a list of strings");
		return -1;
	}
	for (size_t i = 0; req->tags && i < req->tags->u.list.n; i++)
		if (req->tags->u.list.items[i]->type != DTK_V_STR) {
			snprintf(err, errsz, "field 'tags' must be a list of strings");
			return -1;
		}
	if (req->execution_time < MIN_TIME_MS / 1000 || req->execution_time > MAX_TIME_MS / 1000 ||
	    !time_in_range(req->dispatched_at_ms) || !time_in_range(req->deadline_ms)) {
		snprintf(err, errsz, "times must lie in the years 0001 to 9999");
		return -1;
	}
	if (req->attempt < 0) {
		snprintf(err, errsz, "field 'attempt' must not be negative");
		return -1;
	}
	if (req->reply_to && !valid_topic(req->reply_to)) {
		snprintf(err, errsz, "field 'options.reply_to' must be a Kafka topic name");
		return -1;
	}
	return 0;
}

int dtk_request_encode(const dtk_request *req, dtk_buf *out, char *errstr, size_t errstr_size)
{
	char sha[65];
	if (encode_check(req, errstr, errstr_size) != 0)
		return -1;
	if (dtk_sha256_hex(req->config_yaml, req->config_yaml_len, sha) != 0) {
		snprintf(errstr, errstr_size, "SHA-256 of config_yaml failed (libcrypto)");
		return -1;
	}
	dtk_buf_adds(out, "{\"schema\":\"" DTK_MSG_REQUEST_SCHEMA "\"");
	emit_cstr(out, "request_id", req->request_id);
	emit_cstr(out, "dispatch_id", req->dispatch_id);
	emit_cstr(out, "metric", req->metric);
	emit_key(out, "config_yaml");
	dtk_json_emit_str(out, req->config_yaml, req->config_yaml_len, 0);
	emit_cstr(out, "config_sha256", sha);
	emit_key(out, "profiles");
	if (req->profiles)
		dtk_json_emit(out, req->profiles, 0);
	else
		dtk_buf_adds(out, "{}");
	emit_time(out, "execution_time", req->execution_time * 1000, 0);
	emit_time(out, "dispatched_at", req->dispatched_at_ms, 1);
	emit_time(out, "deadline", req->deadline_ms, 1);
	emit_key(out, "tags");
	if (req->tags)
		dtk_json_emit(out, req->tags, 0);
	else
		dtk_buf_adds(out, "[]");
	emit_key(out, "attempt");
	dtk_buf_printf(out, "%lld", (long long)req->attempt);
	emit_key(out, "options");
	dtk_buf_printf(out, "{\"store\":%s,\"alerts\":%s", req->store ? "true" : "false",
		       req->alerts ? "true" : "false");
	if (req->reply_to)
		emit_cstr(out, "reply_to", req->reply_to);
	dtk_buf_adds(out, "}}");
	if (out->failed) {
		snprintf(errstr, errstr_size, "request does not fit in %zu bytes",
			 out->max ? out->max : DTK_BUF_DEFAULT_MAX);
		return -1;
	}
	return 0;
}

/* ---- decode ----------------------------------------------------------- */

/* JSON's names for a value's type, for error messages. */
static const char *json_type(const dtk_value *v)
{
	switch (v->type) {
	case DTK_V_NULL:
		return "null";
	case DTK_V_BOOL:
		return "a boolean";
	case DTK_V_INT:
		return "an integer";
	case DTK_V_FLOAT:
		return "a number";
	case DTK_V_STR:
		return "a string";
	case DTK_V_LIST:
		return "an array";
	case DTK_V_MAP:
		return "an object";
	default:
		return "a date";
	}
}

static dtk_msg_err missing(const char *field, char *err, size_t errsz)
{
	snprintf(err, errsz, "field '%s' is missing", field);
	return DTK_MSG_MISSING_FIELD;
}

static dtk_msg_err mistyped(const char *field, const char *want, const dtk_value *v, char *err,
			    size_t errsz)
{
	snprintf(err, errsz, "field '%s' must be %s, not %s", field, want, json_type(v));
	return DTK_MSG_BAD_FIELD;
}

static dtk_msg_err invalid(const char *field, const char *want, const dtk_value *v, char *err,
			   size_t errsz)
{
	char q[48];
	quote(v->u.str.s, v->u.str.len, q, sizeof(q));
	snprintf(err, errsz, "field '%s' must be %s, got \"%s\"", field, want, q);
	return DTK_MSG_BAD_FIELD;
}

/* The string at key of obj, present, a string and free of NUL bytes (the
 * fields are used as C strings). path names the field in messages. */
static dtk_msg_err get_str(const dtk_value *obj, const char *key, const char *path,
			   const dtk_value **out, char *err, size_t errsz)
{
	const dtk_value *v = dtk_value_map_get(obj, key);
	if (!v)
		return missing(path, err, errsz);
	if (v->type != DTK_V_STR)
		return mistyped(path, "a string", v, err, errsz);
	if (strlen(v->u.str.s) != v->u.str.len) {
		snprintf(err, errsz, "field '%s' contains a NUL character", path);
		return DTK_MSG_BAD_FIELD;
	}
	*out = v;
	return DTK_MSG_OK;
}

static dtk_msg_err read_uuid(const dtk_value *root, const char *key, char out[DTK_UUID_SIZE],
			     char *err, size_t errsz)
{
	const dtk_value *v;
	dtk_msg_err rc = get_str(root, key, key, &v, err, errsz);
	if (rc != DTK_MSG_OK)
		return rc;
	if (!dtk_uuid_valid(v->u.str.s))
		return invalid(key, "a lowercase UUID (8-4-4-4-12 hex digits)", v, err, errsz);
	memcpy(out, v->u.str.s, DTK_UUID_SIZE);
	return DTK_MSG_OK;
}

static dtk_msg_err read_metric(const dtk_value *root, char **out, char *err, size_t errsz)
{
	const dtk_value *v;
	dtk_msg_err rc = get_str(root, "metric", "metric", &v, err, errsz);
	if (rc != DTK_MSG_OK)
		return rc;
	if (!valid_name(v->u.str.s))
		return invalid("metric", "a config name (^[A-Za-z0-9_-]+$)", v, err, errsz);
	char *s = strdup(v->u.str.s);
	if (!s)
		return DTK_MSG_NOMEM;
	free(*out);
	*out = s;
	return DTK_MSG_OK;
}

static dtk_msg_err read_time(const dtk_value *root, const char *key, int with_ms, int64_t *out,
			     char *err, size_t errsz)
{
	const dtk_value *v;
	int64_t ms;
	dtk_msg_err rc = get_str(root, key, key, &v, err, errsz);
	if (rc != DTK_MSG_OK)
		return rc;
	if (parse_time(v->u.str.s, v->u.str.len, &ms) != 0)
		return invalid(key, "an RFC 3339 UTC time (2024-11-02T14:30:00Z)", v, err, errsz);
	*out = with_ms ? ms : (ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000));
	return DTK_MSG_OK;
}

static dtk_msg_err read_bool(const dtk_value *obj, const char *key, const char *path, int *out,
			     char *err, size_t errsz)
{
	const dtk_value *v = dtk_value_map_get(obj, key);
	if (!v)
		return missing(path, err, errsz);
	if (v->type != DTK_V_BOOL)
		return mistyped(path, "a boolean", v, err, errsz);
	*out = v->u.b != 0;
	return DTK_MSG_OK;
}

static dtk_msg_err check_schema(const dtk_value *root, char *err, size_t errsz)
{
	static const char minor[] = DTK_MSG_REQUEST_SCHEMA ".";
	const dtk_value *v;
	dtk_msg_err rc = get_str(root, "schema", "schema", &v, err, errsz);
	if (rc != DTK_MSG_OK)
		return rc;
	const char *s = v->u.str.s;
	if (strcmp(s, DTK_MSG_REQUEST_SCHEMA) == 0)
		return DTK_MSG_OK;
	if (strncmp(s, minor, sizeof(minor) - 1) == 0) {
		const char *p = s + sizeof(minor) - 1;
		size_t n = strspn(p, "0123456789");
		if (n > 0 && p[n] == '\0')
			return DTK_MSG_OK; /* a minor version only adds fields */
	}
	char q[48];
	quote(s, v->u.str.len, q, sizeof(q));
	snprintf(err, errsz,
		 "schema \"%s\" is not %s: this worker reads request v1 and its minor versions", q,
		 DTK_MSG_REQUEST_SCHEMA);
	return DTK_MSG_UNKNOWN_SCHEMA;
}

static dtk_msg_err read_config(const dtk_value *root, dtk_request *req, char *err, size_t errsz)
{
	const dtk_value *yaml, *sha;
	char want[65];
	dtk_msg_err rc = get_str(root, "config_yaml", "config_yaml", &yaml, err, errsz);
	if (rc == DTK_MSG_OK)
		rc = get_str(root, "config_sha256", "config_sha256", &sha, err, errsz);
	if (rc != DTK_MSG_OK)
		return rc;
	int hex = sha->u.str.len == 64;
	for (size_t i = 0; hex && i < 64; i++)
		hex = is_lower_hex(sha->u.str.s[i]);
	if (!hex)
		return invalid("config_sha256", "64 lowercase hex digits", sha, err, errsz);
	if (dtk_sha256_hex(yaml->u.str.s, yaml->u.str.len, want) != 0)
		return DTK_MSG_NOMEM;
	if (memcmp(want, sha->u.str.s, 64) != 0) {
		snprintf(
		    err, errsz,
		    "field 'config_sha256' is not the SHA-256 of config_yaml (%zu bytes hash to "
		    "%s): the request was altered or truncated",
		    yaml->u.str.len, want);
		return DTK_MSG_SHA_MISMATCH;
	}
	req->config_yaml = malloc(yaml->u.str.len + 1);
	if (!req->config_yaml)
		return DTK_MSG_NOMEM;
	memcpy(req->config_yaml, yaml->u.str.s, yaml->u.str.len + 1);
	req->config_yaml_len = yaml->u.str.len;
	memcpy(req->config_sha256, want, sizeof(want));
	return DTK_MSG_OK;
}

static dtk_msg_err read_profiles(const dtk_value *root, dtk_request *req, char *err, size_t errsz)
{
	const dtk_value *v = dtk_value_map_get(root, "profiles");
	if (!v)
		return missing("profiles", err, errsz);
	if (v->type != DTK_V_MAP)
		return mistyped("profiles", "an object", v, err, errsz);
	for (size_t i = 0; i < v->u.map.n; i++) {
		const dtk_kv *kv = &v->u.map.items[i];
		if (kv->val->type != DTK_V_MAP) {
			char path[128];
			snprintf(path, sizeof(path), "profiles.%s", kv->key->u.str.s);
			return mistyped(path, "an object", kv->val, err, errsz);
		}
	}
	req->profiles = dtk_value_copy(v);
	return req->profiles ? DTK_MSG_OK : DTK_MSG_NOMEM;
}

static dtk_msg_err read_tags(const dtk_value *root, dtk_request *req, char *err, size_t errsz)
{
	const dtk_value *v = dtk_value_map_get(root, "tags");
	if (!v)
		return missing("tags", err, errsz);
	if (v->type != DTK_V_LIST)
		return mistyped("tags", "an array of strings", v, err, errsz);
	for (size_t i = 0; i < v->u.list.n; i++)
		if (v->u.list.items[i]->type != DTK_V_STR) {
			char path[32];
			snprintf(path, sizeof(path), "tags[%zu]", i);
			return mistyped(path, "a string", v->u.list.items[i], err, errsz);
		}
	req->tags = dtk_value_copy(v);
	return req->tags ? DTK_MSG_OK : DTK_MSG_NOMEM;
}

static dtk_msg_err read_options(const dtk_value *root, dtk_request *req, char *err, size_t errsz)
{
	const dtk_value *opt = dtk_value_map_get(root, "options");
	if (!opt)
		return missing("options", err, errsz);
	if (opt->type != DTK_V_MAP)
		return mistyped("options", "an object", opt, err, errsz);
	dtk_msg_err rc = read_bool(opt, "store", "options.store", &req->store, err, errsz);
	if (rc == DTK_MSG_OK)
		rc = read_bool(opt, "alerts", "options.alerts", &req->alerts, err, errsz);
	if (rc != DTK_MSG_OK)
		return rc;
	const dtk_value *rt = dtk_value_map_get(opt, "reply_to");
	if (!rt || rt->type == DTK_V_NULL)
		return DTK_MSG_OK;
	rc = get_str(opt, "reply_to", "options.reply_to", &rt, err, errsz);
	if (rc != DTK_MSG_OK)
		return rc;
	if (!valid_topic(rt->u.str.s))
		return invalid("options.reply_to", "a Kafka topic name ([A-Za-z0-9._-], 1 to 249)",
			       rt, err, errsz);
	req->reply_to = strdup(rt->u.str.s);
	return req->reply_to ? DTK_MSG_OK : DTK_MSG_NOMEM;
}

static dtk_msg_err too_big(size_t len, size_t max, char *err, size_t errsz)
{
	snprintf(err, errsz, "request is %zu bytes, over the %zu-byte limit (--max-request-bytes)",
		 len, max);
	return DTK_MSG_OVERSIZE;
}

dtk_msg_err dtk_request_decode(const void *data, size_t len, size_t max_bytes, dtk_request *req,
			       char *errstr, size_t errstr_size)
{
	dtk_value *root = NULL;
	dtk_msg_err rc;
	char perr[256];
	memset(req, 0, sizeof(*req));
	if (errstr_size)
		errstr[0] = '\0';
	if (max_bytes == 0)
		max_bytes = DTK_MSG_DEFAULT_MAX_BYTES;
	if (len > max_bytes)
		return too_big(len, max_bytes, errstr, errstr_size);

	root = dtk_json_parse(data, len, perr, sizeof(perr));
	if (!root) {
		snprintf(errstr, errstr_size, "request is not JSON: %s", perr);
		return DTK_MSG_NOT_JSON;
	}
	if (!all_finite(root)) {
		snprintf(errstr, errstr_size,
			 "request is not JSON: Infinity and NaN are not numbers");
		rc = DTK_MSG_NOT_JSON;
		goto out;
	}
	if (root->type != DTK_V_MAP) {
		snprintf(errstr, errstr_size, "request is %s, not a JSON object", json_type(root));
		rc = DTK_MSG_NOT_OBJECT;
		goto out;
	}

	/* what a `rejected` result can carry, read before anything may fail */
	read_uuid(root, "request_id", req->request_id, NULL, 0);
	read_uuid(root, "dispatch_id", req->dispatch_id, NULL, 0);
	if (read_metric(root, &req->metric, NULL, 0) == DTK_MSG_NOMEM) {
		rc = DTK_MSG_NOMEM;
		goto out;
	}

	if ((rc = check_schema(root, errstr, errstr_size)) != DTK_MSG_OK ||
	    (rc = read_uuid(root, "request_id", req->request_id, errstr, errstr_size)) ||
	    (rc = read_uuid(root, "dispatch_id", req->dispatch_id, errstr, errstr_size)) ||
	    (rc = read_metric(root, &req->metric, errstr, errstr_size)) ||
	    (rc = read_config(root, req, errstr, errstr_size)) ||
	    (rc = read_profiles(root, req, errstr, errstr_size)) ||
	    (rc =
		 read_time(root, "execution_time", 0, &req->execution_time, errstr, errstr_size)) ||
	    (rc = read_time(root, "dispatched_at", 1, &req->dispatched_at_ms, errstr,
			    errstr_size)) ||
	    (rc = read_time(root, "deadline", 1, &req->deadline_ms, errstr, errstr_size)) ||
	    (rc = read_tags(root, req, errstr, errstr_size)))
		goto out;

	const dtk_value *attempt = dtk_value_map_get(root, "attempt");
	if (!attempt) {
		rc = missing("attempt", errstr, errstr_size);
		goto out;
	}
	if (attempt->type != DTK_V_INT) {
		rc = mistyped("attempt", "an integer", attempt, errstr, errstr_size);
		goto out;
	}
	if (attempt->u.i < 0) {
		snprintf(errstr, errstr_size, "field 'attempt' must not be negative, got %lld",
			 (long long)attempt->u.i);
		rc = DTK_MSG_BAD_FIELD;
		goto out;
	}
	req->attempt = attempt->u.i;
	rc = read_options(root, req, errstr, errstr_size);
out:
	if (rc == DTK_MSG_NOMEM)
		snprintf(errstr, errstr_size, "out of memory decoding the request");
	if (rc != DTK_MSG_OK)
		keep_identity(req);
	dtk_value_free(&root);
	return rc;
}

/* ---- signatures ------------------------------------------------------- */

int dtk_msg_sign(const void *data, size_t len, const char *key, char out[DTK_MSG_SIGNATURE_SIZE])
{
	char hex[65];
	out[0] = '\0';
	if (!key || !*key || dtk_hmac_sha256_hex(key, strlen(key), data, len, hex) != 0)
		return -1;
	snprintf(out, DTK_MSG_SIGNATURE_SIZE, "sha256=%s", hex);
	return 0;
}

dtk_msg_err dtk_msg_verify(const void *data, size_t len, const char *header, const char *keys,
			   int allow_unsigned, char *errstr, size_t errstr_size)
{
	if (errstr_size)
		errstr[0] = '\0';
	if (!header || !*header) {
		if (allow_unsigned)
			return DTK_MSG_OK;
		snprintf(errstr, errstr_size,
			 "request has no dtk-signature header (start the worker with "
			 "--allow-unsigned to run unsigned requests)");
		return DTK_MSG_UNSIGNED;
	}
	size_t hlen = strlen(header);
	int nkeys = 0, match = 0;
	const char *p = keys ? keys : "";
	while (*p) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		const char *k = p;
		size_t klen = n;
		while (klen && (*k == ' ' || *k == '\t'))
			k++, klen--;
		while (klen && (k[klen - 1] == ' ' || k[klen - 1] == '\t'))
			klen--;
		p += n + (end ? 1 : 0);
		if (!klen)
			continue;
		char hex[65], want[DTK_MSG_SIGNATURE_SIZE];
		if (dtk_hmac_sha256_hex(k, klen, data, len, hex) != 0) {
			snprintf(errstr, errstr_size, "HMAC-SHA256 failed (libcrypto)");
			return DTK_MSG_NOMEM;
		}
		snprintf(want, sizeof(want), "sha256=%s", hex);
		nkeys++;
		/* every key is tried: the time taken does not say which matched */
		if (hlen == DTK_MSG_SIGNATURE_SIZE - 1 &&
		    CRYPTO_memcmp(want, header, DTK_MSG_SIGNATURE_SIZE - 1) == 0)
			match = 1;
	}
	if (match)
		return DTK_MSG_OK;
	if (nkeys == 0) {
		if (allow_unsigned)
			return DTK_MSG_OK;
		snprintf(errstr, errstr_size,
			 "request is signed but no signing key is configured (DTK_SIGNING_KEYS)");
		return DTK_MSG_BAD_SIGNATURE;
	}
	if (hlen != DTK_MSG_SIGNATURE_SIZE - 1 || strncmp(header, "sha256=", 7) != 0)
		snprintf(errstr, errstr_size,
			 "dtk-signature is not sha256=<64 lowercase hex digits>");
	else
		snprintf(errstr, errstr_size,
			 "dtk-signature matches none of the %d configured signing key%s", nkeys,
			 nkeys == 1 ? "" : "s");
	return DTK_MSG_BAD_SIGNATURE;
}

dtk_msg_err dtk_request_open(const void *data, size_t len, size_t max_bytes, const char *signature,
			     const char *keys, int allow_unsigned, dtk_request *req, char *errstr,
			     size_t errstr_size)
{
	size_t max = max_bytes ? max_bytes : DTK_MSG_DEFAULT_MAX_BYTES;
	memset(req, 0, sizeof(*req));
	if (len > max) /* before hashing a message of any size */
		return too_big(len, max, errstr, errstr_size);
	dtk_msg_err sig =
	    dtk_msg_verify(data, len, signature, keys, allow_unsigned, errstr, errstr_size);
	if (sig == DTK_MSG_OK)
		return dtk_request_decode(data, len, max, req, errstr, errstr_size);
	if (sig != DTK_MSG_NOMEM && dtk_request_decode(data, len, max, req, NULL, 0) == DTK_MSG_OK)
		keep_identity(req);
	return sig;
}

/* ---- results ---------------------------------------------------------- */

static int set_owned(dtk_value *map, const char *key, dtk_value *v)
{
	if (!v || dtk_value_map_set(map, key, v) != 0) {
		dtk_value_free(&v);
		return -1;
	}
	return 0;
}

static int set_time(dtk_value *map, const char *key, int64_t t_ms, int with_ms)
{
	char t[48];
	dtk_format_time(t_ms, with_ms, t, sizeof(t));
	return dtk_value_map_set_str(map, key, t);
}

static int known_stage(const char *stage)
{
	static const char *const stages[] = {"config", "collect", "store",
					     "detect", "alert",	  "limiter"};
	for (size_t i = 0; stage && i < sizeof(stages) / sizeof(stages[0]); i++)
		if (strcmp(stage, stages[i]) == 0)
			return 1;
	return 0;
}

/* A result v1 for a check that did not run. Zero, empty and NULL fields
 * of req are unknown. errors and warnings are taken (NULL = []). */
static dtk_value *result_without_run(const dtk_request *req, const char *status, dtk_value *errors,
				     dtk_value *warnings, const dtk_value *worker, int64_t now_ms)
{
	static const char *const timings[] = {"queued", "limiter_wait", "collect", "store",
					      "detect", "alert",	"total"};
	dtk_value *json = dtk_value_map(), *alert = dtk_value_map(), *tm = dtk_value_map();
	if (!json || !alert || !tm) {
		dtk_value_free(&json);
		dtk_value_free(&alert);
		dtk_value_free(&tm);
		dtk_value_free(&errors);
		dtk_value_free(&warnings);
		return NULL;
	}
	if (now_ms == 0)
		now_ms = dtk_now_ms();
	const char *rid = req && req->request_id[0] ? req->request_id : NULL;
	const char *did = req && req->dispatch_id[0] ? req->dispatch_id : NULL;
	const char *metric = req && valid_name(req->metric) ? req->metric : "unknown";
	/* execution times are whole seconds: now rounds down */
	int64_t exec_ms = req && req->execution_time ? req->execution_time * 1000
						     : now_ms - (now_ms % 1000 + 1000) % 1000;
	int64_t queued = req && req->dispatched_at_ms && now_ms > req->dispatched_at_ms
			     ? now_ms - req->dispatched_at_ms
			     : 0;
	int fail = 0;
	/* every call runs, so each value is either taken or freed */
	fail |= dtk_value_map_set_str(json, "schema", DTK_MSG_RESULT_SCHEMA);
	fail |= dtk_value_map_set_str(json, "request_id", rid);
	fail |= dtk_value_map_set_str(json, "dispatch_id", did);
	fail |= dtk_value_map_set_str(json, "metric", metric);
	fail |= dtk_value_map_set_str(json, "status", status);
	fail |= set_time(json, "execution_time", exec_ms, 0);
	fail |= set_time(json, "requested_time", exec_ms, 0);
	fail |= set_time(json, "started_at", now_ms, 1);
	fail |= set_owned(json, "datapoint", dtk_value_null());
	fail |= set_owned(json, "detections", dtk_value_list());
	fail |= dtk_value_map_set_bool(alert, "sent", 0);
	fail |= dtk_value_map_set_str(alert, "reason", NULL);
	fail |= dtk_value_map_set_str(alert, "suppressed_by", NULL);
	fail |= set_owned(json, "alert", alert);
	fail |= set_owned(json, "alerts", dtk_value_list());
	fail |= set_owned(json, "errors", errors ? errors : dtk_value_list());
	fail |= set_owned(json, "warnings", warnings ? warnings : dtk_value_list());
	fail |= set_owned(json, "tags",
			  req && req->tags ? dtk_value_copy(req->tags) : dtk_value_list());
	fail |= set_owned(json, "metadata", dtk_value_map());
	fail |= set_owned(json, "worker", worker ? dtk_value_copy(worker) : dtk_value_null());
	for (size_t i = 0; i < sizeof(timings) / sizeof(timings[0]); i++)
		fail |= dtk_value_map_set_int(tm, timings[i], i == 0 ? queued : 0);
	fail |= set_owned(json, "timings_ms", tm);
	fail |= set_time(json, "finished_at", now_ms, 1);
	if (fail)
		dtk_value_free(&json);
	return json;
}

dtk_value *dtk_msg_result_rejected(const dtk_request *req, const char *stage, const char *message,
				   const dtk_value *worker, int64_t now_ms)
{
	dtk_value *errors = dtk_value_list(), *e = dtk_value_map();
	if (!errors || !e ||
	    dtk_value_map_set_str(e, "stage", known_stage(stage) ? stage : "config") ||
	    dtk_value_map_set_str(e, "message", message ? message : "request rejected") ||
	    dtk_value_list_push(errors, e) != 0) {
		dtk_value_free(&e);
		dtk_value_free(&errors);
		return NULL;
	}
	return result_without_run(req, "rejected", errors, NULL, worker, now_ms);
}

dtk_value *dtk_msg_result_expired(const dtk_request *req, const dtk_value *worker, int64_t now_ms)
{
	char deadline[48], now[48], text[160];
	if (now_ms == 0)
		now_ms = dtk_now_ms();
	dtk_format_time(req ? req->deadline_ms : 0, 1, deadline, sizeof(deadline));
	dtk_format_time(now_ms, 1, now, sizeof(now));
	snprintf(text, sizeof(text), "not run: the request's deadline %s had passed at %s",
		 deadline, now);
	dtk_value *warnings = dtk_value_list(), *w = dtk_value_str(text);
	if (!warnings || !w || dtk_value_list_push(warnings, w) != 0) {
		dtk_value_free(&w);
		dtk_value_free(&warnings);
		return NULL;
	}
	return result_without_run(req, "expired", NULL, warnings, worker, now_ms);
}

int dtk_request_expired(const dtk_request *req, int64_t now_ms)
{
	return req->deadline_ms <= (now_ms ? now_ms : dtk_now_ms());
}

/* ---- headers ---------------------------------------------------------- */

static int add_header(dtk_msg_headers *out, const char *name, const char *value)
{
	if (out->n == DTK_MSG_MAX_HEADERS)
		return -1;
	int n = snprintf(out->h[out->n].value, sizeof(out->h[out->n].value), "%s", value);
	if (n < 0 || (size_t)n >= sizeof(out->h[out->n].value))
		return -1;
	out->h[out->n++].name = name;
	return 0;
}

static int ce_headers(dtk_msg_headers *out, const char *type, const char *id, const char *source,
		      const char *time)
{
	out->n = 0;
	if (add_header(out, "ce_specversion", "1.0") || add_header(out, "ce_type", type) ||
	    add_header(out, "ce_id", id) || add_header(out, "ce_source", source ? source : "") ||
	    add_header(out, "ce_time", time) || add_header(out, "content-type", "application/json"))
		return -1;
	return 0;
}

int dtk_msg_request_headers(const dtk_request *req, const char *source, const char *signature,
			    dtk_msg_headers *out)
{
	char t[48];
	if (!req->request_id[0])
		return -1;
	dtk_format_time(req->dispatched_at_ms, 1, t, sizeof(t));
	if (ce_headers(out, DTK_MSG_REQUEST_CE_TYPE, req->request_id, source, t) != 0)
		return -1;
	return signature ? add_header(out, DTK_MSG_SIGNATURE_HEADER, signature) : 0;
}

int dtk_msg_result_headers(const dtk_value *result, const char *source, dtk_msg_headers *out)
{
	char fresh[DTK_UUID_SIZE];
	const char *id = dtk_value_cstr(dtk_value_map_get(result, "request_id"));
	const char *t = dtk_value_cstr(dtk_value_map_get(result, "finished_at"));
	if (!t)
		return -1;
	if (!id) {
		if (dtk_uuid_v4(fresh) != 0)
			return -1;
		id = fresh;
	}
	return ce_headers(out, DTK_MSG_RESULT_CE_TYPE, id, source, t);
}
