/* The fleet's wire format (fleet.md): check request v1 encode and strict
 * decode, request signatures, the results a worker publishes without
 * running a check (rejected, expired) and the CloudEvents headers of both.
 *
 * Parsing is separate from I/O: nothing here knows Kafka. The Kafka layer
 * (core/fleet) copies the header arrays into librdkafka and maps error
 * codes to DLQ headers with dtk_msg_err_name / dtk_msg_err_stage.
 *
 * Thread safety: every function is reentrant; a dtk_request is owned by
 * one thread at a time. */
#ifndef DTK_MESSAGE_H
#define DTK_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/value.h"

#define DTK_MSG_REQUEST_SCHEMA "dtk.check.request/v1"
#define DTK_MSG_RESULT_SCHEMA "dtk.check.result/v1"
#define DTK_MSG_REQUEST_CE_TYPE "dtk.check.request.v1"
#define DTK_MSG_RESULT_CE_TYPE "dtk.check.result.v1"
#define DTK_MSG_SIGNATURE_HEADER "dtk-signature"
/* --max-request-bytes default (fleet.md) */
#define DTK_MSG_DEFAULT_MAX_BYTES ((size_t)1 << 20)

/* "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx" plus NUL */
#define DTK_UUID_SIZE 37
/* "sha256=" + 64 hex digits + NUL */
#define DTK_MSG_SIGNATURE_SIZE 72

/* Why a request was refused. Every code but DTK_MSG_OK and DTK_MSG_NOMEM
 * is an envelope failure: the request goes to the DLQ. */
typedef enum dtk_msg_err {
	DTK_MSG_OK = 0,
	DTK_MSG_OVERSIZE,	/* longer than the reader's maximum */
	DTK_MSG_NOT_JSON,	/* not one RFC 8259 document */
	DTK_MSG_NOT_OBJECT,	/* JSON, but not an object */
	DTK_MSG_UNKNOWN_SCHEMA, /* `schema` names another message or major version */
	DTK_MSG_MISSING_FIELD,	/* a required field is absent */
	DTK_MSG_BAD_FIELD,	/* a field has the wrong type or an invalid value */
	DTK_MSG_SHA_MISMATCH,	/* config_sha256 is not the SHA-256 of config_yaml */
	DTK_MSG_BAD_SIGNATURE,	/* dtk-signature matches none of the keys */
	DTK_MSG_UNSIGNED,	/* no dtk-signature and unsigned requests not allowed */
	DTK_MSG_NOMEM,		/* out of memory or libcrypto failed: not the message's fault */
} dtk_msg_err;

/* The code as a stable snake_case word ("missing_field") for the
 * `dtk-error` DLQ header and logs. Static. */
const char *dtk_msg_err_name(dtk_msg_err err);

/* The `dtk-error-stage` DLQ header: "envelope" (size, JSON, object),
 * "schema" (schema version, fields, config hash), "signature", or
 * "internal" for DTK_MSG_NOMEM; NULL for DTK_MSG_OK. Static. */
const char *dtk_msg_err_stage(dtk_msg_err err);

/* A check request v1. Every pointer is owned by the struct and freed by
 * dtk_request_clear. Times are UTC. */
typedef struct dtk_request {
	char request_id[DTK_UUID_SIZE];	 /* "" when unknown */
	char dispatch_id[DTK_UUID_SIZE]; /* "" when unknown */
	char *metric;			 /* the config's name */
	char *config_yaml;		 /* the config file's text, unexpanded */
	size_t config_yaml_len;
	/* decode: the verified hash; encode ignores it and hashes config_yaml */
	char config_sha256[65];
	dtk_value *profiles;	  /* object: name -> object */
	int64_t execution_time;	  /* seconds */
	int64_t dispatched_at_ms; /* milliseconds */
	int64_t deadline_ms;	  /* milliseconds */
	dtk_value *tags;	  /* list of strings */
	int64_t attempt;	  /* >= 0 */
	int store;		  /* options.store */
	int alerts;		  /* options.alerts */
	char *reply_to;		  /* options.reply_to; NULL when absent */
} dtk_request;

/* Frees what req owns and zeroes it, ready for reuse. NULL is a no-op. */
void dtk_request_clear(dtk_request *req);

/* Writes a fresh random (version 4) UUID in lowercase, from getrandom(2)
 * or /dev/urandom. Returns 0, or -1 when no randomness is available. */
int dtk_uuid_v4(char out[DTK_UUID_SIZE]);

/* 1 when s is a UUID as requests carry it: 8-4-4-4-12 lowercase hex (any
 * version; results need lowercase), else 0. */
int dtk_uuid_valid(const char *s);

/* Appends req as compact JSON (one request v1, fields in fleet.md's
 * order) to out. config_sha256 is computed here from config_yaml.
 * profiles NULL is {}, tags NULL is []. Non-ASCII text is \u-escaped,
 * so the bytes are ASCII. Returns 0, or -1 with errstr naming the field
 * when req is not a valid request (bad UUID, name, time, non-UTF-8
 * config) or out reached its maximum. req is borrowed. */
int dtk_request_encode(const dtk_request *req, dtk_buf *out, char *errstr, size_t errstr_size);

/* Decodes and strictly validates len bytes of a request. max_bytes is the
 * reader's limit (0 = DTK_MSG_DEFAULT_MAX_BYTES), checked before parsing.
 * req is caller storage; it is zeroed first. Accepted schemas:
 * "dtk.check.request/v1" and minors "dtk.check.request/v1.N". Unknown
 * fields are ignored.
 *
 * Returns DTK_MSG_OK with req filled, or another code with errstr naming
 * the field ("field 'options.store' is missing"). On failure req keeps
 * request_id, dispatch_id and metric whenever the message had valid ones
 * (so the worker can publish a `rejected` result), and possibly other
 * fields read before the failure. Either way the caller calls
 * dtk_request_clear(req). data is borrowed. */
dtk_msg_err dtk_request_decode(const void *data, size_t len, size_t max_bytes, dtk_request *req,
			       char *errstr, size_t errstr_size);

/* Writes the dtk-signature header value of len bytes under key:
 * "sha256=<lowercase hex HMAC-SHA256>". Returns 0, or -1 when key is empty
 * or libcrypto failed. */
int dtk_msg_sign(const void *data, size_t len, const char *key, char out[DTK_MSG_SIGNATURE_SIZE]);

/* Checks a request's dtk-signature header value (NULL or "" when the
 * message has none) against keys, a comma-separated list
 * (DTK_SIGNING_KEYS; blanks around entries ignored; any may match, for
 * rotation). The comparison is constant-time per key and every key is
 * tried.
 *   no header:  DTK_MSG_OK when allow_unsigned, else DTK_MSG_UNSIGNED
 *   header:     DTK_MSG_OK when a key matches, else DTK_MSG_BAD_SIGNATURE;
 *               with no key configured a signature cannot be checked: OK
 *               when allow_unsigned, else DTK_MSG_BAD_SIGNATURE
 *   libcrypto failure: DTK_MSG_NOMEM
 * errstr says which case failed. */
dtk_msg_err dtk_msg_verify(const void *data, size_t len, const char *header, const char *keys,
			   int allow_unsigned, char *errstr, size_t errstr_size);

/* What a worker does with one message's bytes before running it: the size
 * limit, the signature (dtk_msg_verify), then dtk_request_decode. On a
 * signature failure the body is still decoded so req carries the request
 * id for the `rejected` result, but the signature's code is returned.
 * Same ownership as dtk_request_decode. */
dtk_msg_err dtk_request_open(const void *data, size_t len, size_t max_bytes, const char *signature,
			     const char *keys, int allow_unsigned, dtk_request *req, char *errstr,
			     size_t errstr_size);

/* A check result v1 (schemas/check-result.v1.json) with status "rejected":
 * errors [{stage, message}], datapoint null, no detections or alerts,
 * alert {sent: false, reason: null, suppressed_by: null}, zero timings
 * except `queued`. req may be NULL or partly filled (after a failed
 * decode): unknown ids are null, an unknown or invalid metric is
 * "unknown" (set req->metric from the Kafka key first when the body had
 * none), an unknown execution time is now. stage is one of the result
 * schema's stages (NULL = "config"); message must already be masked.
 * worker is copied (NULL = null). now_ms 0 means the wall clock. Returns
 * a tree owned by the caller, or NULL when out of memory. */
dtk_value *dtk_msg_result_rejected(const dtk_request *req, const char *stage, const char *message,
				   const dtk_value *worker, int64_t now_ms);

/* As dtk_msg_result_rejected with status "expired" for a request whose
 * deadline passed before it ran: no errors, one warning naming the
 * deadline. req is borrowed and should be a decoded request. */
dtk_value *dtk_msg_result_expired(const dtk_request *req, const dtk_value *worker, int64_t now_ms);

/* 1 when the request's deadline is at or before now_ms (0 = wall clock). */
int dtk_request_expired(const dtk_request *req, int64_t now_ms);

#define DTK_MSG_MAX_HEADERS 8
#define DTK_MSG_HEADER_VALUE_SIZE 256

/* Kafka headers (CloudEvents Kafka binding, binary mode) as plain
 * name/value pairs. Names are static strings; values are NUL-terminated
 * copies. */
typedef struct dtk_msg_headers {
	size_t n;
	struct {
		const char *name;
		char value[DTK_MSG_HEADER_VALUE_SIZE];
	} h[DTK_MSG_MAX_HEADERS];
} dtk_msg_headers;

/* Headers of a request: ce_specversion 1.0, ce_type dtk.check.request.v1,
 * ce_id = request id, ce_source = source, ce_time = dispatched_at,
 * content-type application/json, and dtk-signature when signature is not
 * NULL. Returns 0, or -1 when source or signature does not fit (255
 * bytes). Everything is borrowed. */
int dtk_msg_request_headers(const dtk_request *req, const char *source, const char *signature,
			    dtk_msg_headers *out);

/* Headers of a result object: ce_type dtk.check.result.v1, ce_id = its
 * request_id (a fresh UUID when null, since CloudEvents ids are
 * mandatory), ce_time = its finished_at. Returns 0, or -1 when source does
 * not fit or the result has no finished_at. */
int dtk_msg_result_headers(const dtk_value *result, const char *source, dtk_msg_headers *out);

#endif
