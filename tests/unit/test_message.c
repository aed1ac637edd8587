/* core/message.c: the check request v1 codec, signatures, rejected/expired
 * results and CloudEvents headers (fleet.md). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "message.h"
#include "util/buf.h"
#include "util/fileio.h"
#include "util/json.h"
#include "util/value.h"

#define RID "0b7e1e52-9d5b-4e40-8c1e-0e4b5c7d2a11"
#define DID "5f0c2a9e-3b7d-4c1a-9e8f-1a2b3c4d5e6f"
#define CONFIG "name: cpu_load\n# caf\xc3\xa9 \xf0\x9f\x98\x80 \"quoted\" \\ tab\t\ncollector: {}\n"
#define EXEC 1730557800LL	   /* 2024-11-02T14:30:00Z */
#define DISPATCHED 1730557805123LL /* 2024-11-02T14:30:05.123Z */
#define DEADLINE 1730557865123LL
#define CONFIG_SHA "08ee7feb014358d97a627436439779bda1b75c46d80923feefc6f8d93dce74af"

static void base_request(dtk_request *req)
{
	char err[256];
	memset(req, 0, sizeof(*req));
	memcpy(req->request_id, RID, sizeof(RID));
	memcpy(req->dispatch_id, DID, sizeof(DID));
	req->metric = strdup("cpu_load");
	req->config_yaml = strdup(CONFIG);
	req->config_yaml_len = strlen(CONFIG);
	const char *profiles = "{\"ch\": {\"type\": \"clickhouse\", \"password\": \"${CH_PASS}\"}}";
	req->profiles = dtk_json_parse(profiles, strlen(profiles), err, sizeof(err));
	assert_non_null(req->profiles);
	req->tags = dtk_value_list();
	assert_int_equal(dtk_value_list_push(req->tags, dtk_value_str("critical")), 0);
	req->execution_time = EXEC;
	req->dispatched_at_ms = DISPATCHED;
	req->deadline_ms = DEADLINE;
	req->attempt = 1;
	req->store = 1;
	req->alerts = 0;
	req->reply_to = strdup("team.results");
}

/* The base request's bytes; the caller frees them. */
static char *base_bytes(void)
{
	dtk_request req;
	dtk_buf out;
	char err[256];
	base_request(&req);
	dtk_buf_init(&out, 0);
	assert_int_equal(dtk_request_encode(&req, &out, err, sizeof(err)), 0);
	dtk_request_clear(&req);
	return dtk_buf_take(&out);
}

/* Decodes the base request with path (dotted) removed (json NULL) or set
 * to the JSON text json. Returns the code; req and err are filled. */
static dtk_msg_err decode_mutated(const char *path, const char *json, dtk_request *req, char *err,
				  size_t errsz)
{
	char perr[256], parent_path[64];
	char *bytes = base_bytes();
	dtk_value *doc = dtk_json_parse(bytes, strlen(bytes), perr, sizeof(perr));
	assert_non_null(doc);
	free(bytes);
	dtk_value *parent = doc;
	const char *key = path;
	const char *dot = strrchr(path, '.');
	if (dot) {
		snprintf(parent_path, sizeof(parent_path), "%.*s", (int)(dot - path), path);
		parent = dtk_value_path(doc, parent_path);
		key = dot + 1;
	}
	assert_non_null(parent);
	if (json) {
		dtk_value *v = dtk_json_parse(json, strlen(json), perr, sizeof(perr));
		assert_non_null(v);
		assert_int_equal(dtk_value_map_set(parent, key, v), 0);
	} else {
		assert_int_equal(dtk_value_map_del(parent, key), 1);
	}
	dtk_buf out;
	dtk_buf_init(&out, 0);
	assert_int_equal(dtk_json_emit(&out, doc, 0), 0);
	dtk_msg_err rc = dtk_request_decode(out.data, out.len, 0, req, err, errsz);
	dtk_buf_free(&out);
	dtk_value_free(&doc);
	return rc;
}

static void test_uuid_v4_is_version_4_variant_1_and_fresh_each_time(void **state)
{
	char a[DTK_UUID_SIZE], b[DTK_UUID_SIZE];
	assert_int_equal(dtk_uuid_v4(a), 0);
	assert_int_equal(dtk_uuid_v4(b), 0);
	assert_true(dtk_uuid_valid(a));
	assert_int_equal(strlen(a), 36);
	assert_int_equal(a[14], '4');
	assert_non_null(strchr("89ab", a[19]));
	assert_string_not_equal(a, b);
}

static void test_uuid_valid_wants_lowercase_8_4_4_4_12(void **state)
{
	assert_true(dtk_uuid_valid(RID));
	assert_false(dtk_uuid_valid("0B7E1E52-9D5B-4E40-8C1E-0E4B5C7D2A11"));
	assert_false(dtk_uuid_valid("0b7e1e529d5b4e408c1e0e4b5c7d2a11"));
	assert_false(dtk_uuid_valid(RID "0"));
	assert_false(dtk_uuid_valid("0b7e1e52-9d5b-4e40-8c1e-0e4b5c7d2a1"));
	assert_false(dtk_uuid_valid("0b7e1e52-9d5b-4e40-8c1e-0e4b5c7d2a1g"));
	assert_false(dtk_uuid_valid(""));
	assert_false(dtk_uuid_valid(NULL));
}

static void test_round_trip_keeps_every_field_and_the_bytes(void **state)
{
	dtk_request req;
	dtk_buf again;
	char err[512];
	char *bytes = base_bytes();
	assert_non_null(strstr(bytes, "\"config_sha256\":\"" CONFIG_SHA "\""));
	for (const char *p = bytes; *p; p++)
		assert_true((unsigned char)*p < 0x80); /* non-ASCII travels \u-escaped */
	assert_int_equal(dtk_request_decode(bytes, strlen(bytes), 0, &req, err, sizeof(err)),
			 DTK_MSG_OK);
	assert_string_equal(req.request_id, RID);
	assert_string_equal(req.dispatch_id, DID);
	assert_string_equal(req.metric, "cpu_load");
	assert_int_equal(req.config_yaml_len, strlen(CONFIG));
	assert_memory_equal(req.config_yaml, CONFIG, strlen(CONFIG));
	assert_string_equal(req.config_sha256, CONFIG_SHA);
	assert_string_equal(dtk_value_cstr(dtk_value_path(req.profiles, "ch.password")),
			    "${CH_PASS}");
	assert_int_equal(req.tags->u.list.n, 1);
	assert_string_equal(dtk_value_cstr(req.tags->u.list.items[0]), "critical");
	assert_int_equal(req.execution_time, EXEC);
	assert_int_equal(req.dispatched_at_ms, DISPATCHED);
	assert_int_equal(req.deadline_ms, DEADLINE);
	assert_int_equal(req.attempt, 1);
	assert_int_equal(req.store, 1);
	assert_int_equal(req.alerts, 0);
	assert_string_equal(req.reply_to, "team.results");
	dtk_buf_init(&again, 0);
	assert_int_equal(dtk_request_encode(&req, &again, err, sizeof(err)), 0);
	assert_string_equal(dtk_buf_str(&again), bytes);
	dtk_buf_free(&again);
	dtk_request_clear(&req);
	free(bytes);
}

static void test_encode_writes_the_fleet_md_fields_with_utc_times(void **state)
{
	char *bytes = base_bytes();
	assert_non_null(strstr(bytes, "{\"schema\":\"dtk.check.request/v1\",\"request_id\":\"" RID
				      "\",\"dispatch_id\":\"" DID "\",\"metric\":\"cpu_load\","));
	assert_non_null(strstr(bytes, "\"execution_time\":\"2024-11-02T14:30:00Z\","
				      "\"dispatched_at\":\"2024-11-02T14:30:05.123Z\","
				      "\"deadline\":\"2024-11-02T14:31:05.123Z\","
				      "\"tags\":[\"critical\"],\"attempt\":1,"
				      "\"options\":{\"store\":true,\"alerts\":false,"
				      "\"reply_to\":\"team.results\"}}"));
	free(bytes);
}

static void test_encode_without_reply_to_omits_it_and_decode_reads_null(void **state)
{
	dtk_request req, back;
	dtk_buf out;
	char err[256];
	base_request(&req);
	free(req.reply_to);
	req.reply_to = NULL;
	dtk_value_free(&req.tags);
	dtk_value_free(&req.profiles);
	dtk_buf_init(&out, 0);
	assert_int_equal(dtk_request_encode(&req, &out, err, sizeof(err)), 0);
	assert_null(strstr(out.data, "reply_to"));
	assert_non_null(strstr(out.data, "\"profiles\":{}"));
	assert_non_null(strstr(out.data, "\"tags\":[]"));
	assert_int_equal(dtk_request_decode(out.data, out.len, 0, &back, err, sizeof(err)),
			 DTK_MSG_OK);
	assert_null(back.reply_to);
	dtk_request_clear(&back);
	dtk_request_clear(&req);
	dtk_buf_free(&out);
}

static void test_encode_refuses_what_decode_would_refuse(void **state)
{
	dtk_request req;
	dtk_buf out;
	char err[256];
	dtk_buf_init(&out, 0);

	base_request(&req);
	req.request_id[0] = 'X';
	assert_int_equal(dtk_request_encode(&req, &out, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "request_id"));
	dtk_request_clear(&req);

	base_request(&req);
	free(req.metric);
	req.metric = strdup("cpu load");
	assert_int_equal(dtk_request_encode(&req, &out, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "metric"));
	dtk_request_clear(&req);

	base_request(&req);
	req.config_yaml[3] = (char)0xff; /* not UTF-8: could not travel byte for byte */
	assert_int_equal(dtk_request_encode(&req, &out, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "config_yaml"));
	dtk_request_clear(&req);

	base_request(&req);
	free(req.reply_to);
	req.reply_to = strdup("no spaces allowed");
	assert_int_equal(dtk_request_encode(&req, &out, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "options.reply_to"));
	dtk_request_clear(&req);

	base_request(&req);
	dtk_value_map_set_num(dtk_value_map_get(req.profiles, "ch"), "port", INFINITY);
	assert_int_equal(dtk_request_encode(&req, &out, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "profiles"));
	dtk_request_clear(&req);

	base_request(&req);
	req.deadline_ms = 253402300800000LL; /* year 10000 */
	assert_int_equal(dtk_request_encode(&req, &out, err, sizeof(err)), -1);
	dtk_request_clear(&req);

	dtk_buf_free(&out);
}

static void test_oversize_is_refused_before_parsing(void **state)
{
	dtk_request req;
	char err[256];
	char *bytes = base_bytes();
	size_t len = strlen(bytes);
	assert_int_equal(dtk_request_decode(bytes, len, len, &req, err, sizeof(err)), DTK_MSG_OK);
	dtk_request_clear(&req);
	assert_int_equal(dtk_request_decode(bytes, len, len - 1, &req, err, sizeof(err)),
			 DTK_MSG_OVERSIZE);
	assert_non_null(strstr(err, "--max-request-bytes"));
	assert_string_equal(req.request_id, ""); /* not parsed at all */
	dtk_request_clear(&req);
	free(bytes);

	/* the default limit is 1 MiB */
	size_t big = DTK_MSG_DEFAULT_MAX_BYTES + 1;
	char *junk = calloc(1, big);
	assert_int_equal(dtk_request_decode(junk, big, 0, &req, err, sizeof(err)),
			 DTK_MSG_OVERSIZE);
	free(junk);
}

static void expect_code(const char *text, dtk_msg_err want, const char *needle)
{
	dtk_request req;
	char err[512];
	dtk_msg_err got = dtk_request_decode(text, strlen(text), 0, &req, err, sizeof(err));
	if (got != want)
		fail_msg("%s: got %s (%s), want %s", text, dtk_msg_err_name(got), err,
			 dtk_msg_err_name(want));
	if (needle && !strstr(err, needle))
		fail_msg("%s: error \"%s\" does not contain \"%s\"", text, err, needle);
	dtk_request_clear(&req);
}

static void test_not_json_and_not_object_are_distinct_envelope_failures(void **state)
{
	expect_code("", DTK_MSG_NOT_JSON, "not JSON");
	expect_code("nope", DTK_MSG_NOT_JSON, "not JSON");
	expect_code("{\"schema\": ", DTK_MSG_NOT_JSON, "not JSON");
	expect_code("{} {}", DTK_MSG_NOT_JSON, "not JSON");
	expect_code("{\"x\": NaN}", DTK_MSG_NOT_JSON, "NaN");
	expect_code("{\"x\": -Infinity}", DTK_MSG_NOT_JSON, "Infinity");
	expect_code("[1, 2]", DTK_MSG_NOT_OBJECT, "an array");
	expect_code("\"dtk.check.request/v1\"", DTK_MSG_NOT_OBJECT, "a string");
	expect_code("null", DTK_MSG_NOT_OBJECT, "null");
	expect_code("42", DTK_MSG_NOT_OBJECT, "integer");
	assert_string_equal(dtk_msg_err_stage(DTK_MSG_NOT_JSON), "envelope");
	assert_string_equal(dtk_msg_err_stage(DTK_MSG_NOT_OBJECT), "envelope");
	assert_string_equal(dtk_msg_err_stage(DTK_MSG_OVERSIZE), "envelope");
}

static void test_unknown_major_schema_is_refused_and_v1_minors_are_read(void **state)
{
	static const struct {
		const char *schema;
		dtk_msg_err want;
	} cases[] = {
	    {"\"dtk.check.request/v1\"", DTK_MSG_OK},
	    {"\"dtk.check.request/v1.3\"", DTK_MSG_OK},
	    {"\"dtk.check.request/v1.12\"", DTK_MSG_OK},
	    {"\"dtk.check.request/v2\"", DTK_MSG_UNKNOWN_SCHEMA},
	    {"\"dtk.check.request/v10\"", DTK_MSG_UNKNOWN_SCHEMA},
	    {"\"dtk.check.request/v1.\"", DTK_MSG_UNKNOWN_SCHEMA},
	    {"\"dtk.check.request/v1.x\"", DTK_MSG_UNKNOWN_SCHEMA},
	    {"\"dtk.check.request/v1 \"", DTK_MSG_UNKNOWN_SCHEMA},
	    {"\"dtk.check.result/v1\"", DTK_MSG_UNKNOWN_SCHEMA},
	    {"\"\"", DTK_MSG_UNKNOWN_SCHEMA},
	    {"\"dtk.check.request/v1\\u0000\"", DTK_MSG_BAD_FIELD},
	    {"1", DTK_MSG_BAD_FIELD},
	    {"null", DTK_MSG_BAD_FIELD},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		dtk_request req;
		char err[512];
		dtk_msg_err got = decode_mutated("schema", cases[i].schema, &req, err, sizeof(err));
		if (got != cases[i].want)
			fail_msg("schema %s: got %s (%s)", cases[i].schema, dtk_msg_err_name(got),
				 err);
		if (got != DTK_MSG_OK)
			assert_non_null(strstr(err, "schema"));
		/* the id is read even from a message this worker cannot run */
		assert_string_equal(req.request_id, RID);
		dtk_request_clear(&req);
	}
	assert_string_equal(dtk_msg_err_stage(DTK_MSG_UNKNOWN_SCHEMA), "schema");
}

static void test_every_required_field_missing_is_named(void **state)
{
	static const char *const fields[] = {
	    "schema",	     "request_id", "dispatch_id",    "metric",	      "config_yaml",
	    "config_sha256", "profiles",   "execution_time", "dispatched_at", "deadline",
	    "tags",	     "attempt",	   "options",	     "options.store", "options.alerts",
	};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		dtk_request req;
		char err[512], want[64];
		dtk_msg_err got = decode_mutated(fields[i], NULL, &req, err, sizeof(err));
		if (got != DTK_MSG_MISSING_FIELD)
			fail_msg("without %s: got %s (%s)", fields[i], dtk_msg_err_name(got), err);
		snprintf(want, sizeof(want), "field '%s' is missing", fields[i]);
		assert_string_equal(err, want);
		if (strcmp(fields[i], "request_id") != 0)
			assert_string_equal(req.request_id, RID);
		else
			assert_string_equal(req.request_id, "");
		/* only the identity survives a refusal */
		assert_null(req.config_yaml);
		assert_null(req.profiles);
		dtk_request_clear(&req);
	}
	/* reply_to is optional */
	dtk_request req;
	char err[512];
	assert_int_equal(decode_mutated("options.reply_to", NULL, &req, err, sizeof(err)),
			 DTK_MSG_OK);
	assert_null(req.reply_to);
	dtk_request_clear(&req);
}

static void test_every_mistyped_or_invalid_field_is_named(void **state)
{
	static const struct {
		const char *path, *json, *field;
	} cases[] = {
	    {"request_id", "\"abc\"", "'request_id'"},
	    {"request_id", "\"0B7E1E52-9D5B-4E40-8C1E-0E4B5C7D2A11\"", "'request_id'"},
	    {"request_id", "5", "'request_id'"},
	    {"dispatch_id", "null", "'dispatch_id'"},
	    {"dispatch_id", "\"" RID " \"", "'dispatch_id'"},
	    {"metric", "\"cpu load\"", "'metric'"},
	    {"metric", "\"\"", "'metric'"},
	    {"metric", "3", "'metric'"},
	    {"config_yaml", "1", "'config_yaml'"},
	    {"config_yaml", "\"a\\u0000b\"", "'config_yaml'"},
	    {"config_sha256", "\"xyz\"", "'config_sha256'"},
	    {"config_sha256",
	     "\"08EE7FEB014358D97A627436439779BDA1B75C46D80923FEEFC6F8D93DCE74AF\"",
	     "'config_sha256'"},
	    {"config_sha256", "null", "'config_sha256'"},
	    {"profiles", "[]", "'profiles'"},
	    {"profiles", "{\"ch\": \"clickhouse\"}", "'profiles.ch'"},
	    {"execution_time", "\"2024-11-02 14:30:00\"", "'execution_time'"},
	    {"execution_time", "\"2024-11-02T14:30:00+01:00\"", "'execution_time'"},
	    {"execution_time", "\"2024-11-02T14:30:00\"", "'execution_time'"},
	    {"execution_time", "\"2024-02-30T00:00:00Z\"", "'execution_time'"},
	    {"execution_time", "\"2023-02-29T00:00:00Z\"", "'execution_time'"},
	    {"execution_time", "1730557800", "'execution_time'"},
	    {"dispatched_at", "\"2024-11-02T24:00:00.000Z\"", "'dispatched_at'"},
	    {"dispatched_at", "\"2024-11-02T14:30:05.Z\"", "'dispatched_at'"},
	    {"dispatched_at", "\"2024-11-02T14:30:05.1234567890Z\"", "'dispatched_at'"},
	    {"deadline", "\"2024-11-02T14:61:00.000Z\"", "'deadline'"},
	    {"deadline", "\"tomorrow\"", "'deadline'"},
	    {"tags", "\"critical\"", "'tags'"},
	    {"tags", "[\"a\", 1]", "'tags[1]'"},
	    {"attempt", "1.0", "'attempt'"},
	    {"attempt", "\"1\"", "'attempt'"},
	    {"attempt", "true", "'attempt'"},
	    {"attempt", "-1", "'attempt'"},
	    {"options", "[]", "'options'"},
	    {"options.store", "\"yes\"", "'options.store'"},
	    {"options.store", "1", "'options.store'"},
	    {"options.alerts", "null", "'options.alerts'"},
	    {"options.reply_to", "\"two words\"", "'options.reply_to'"},
	    {"options.reply_to", "\"\"", "'options.reply_to'"},
	    {"options.reply_to", "5", "'options.reply_to'"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		dtk_request req;
		char err[512];
		dtk_msg_err got =
		    decode_mutated(cases[i].path, cases[i].json, &req, err, sizeof(err));
		if (got != DTK_MSG_BAD_FIELD)
			fail_msg("%s = %s: got %s (%s)", cases[i].path, cases[i].json,
				 dtk_msg_err_name(got), err);
		if (!strstr(err, cases[i].field))
			fail_msg("%s = %s: \"%s\" does not name %s", cases[i].path, cases[i].json,
				 err, cases[i].field);
		dtk_request_clear(&req);
	}
	assert_string_equal(dtk_msg_err_stage(DTK_MSG_BAD_FIELD), "schema");
}

static void test_times_take_fractions_to_the_millisecond(void **state)
{
	dtk_request req;
	char err[512];
	assert_int_equal(
	    decode_mutated("dispatched_at", "\"2024-11-02T14:30:05.1Z\"", &req, err, sizeof(err)),
	    DTK_MSG_OK);
	assert_int_equal(req.dispatched_at_ms, DISPATCHED - 23);
	dtk_request_clear(&req);
	assert_int_equal(decode_mutated("deadline", "\"2024-11-02T14:31:05.123999999Z\"", &req, err,
					sizeof(err)),
			 DTK_MSG_OK);
	assert_int_equal(req.deadline_ms, DEADLINE);
	dtk_request_clear(&req);
	assert_int_equal(
	    decode_mutated("deadline", "\"2024-11-02T14:31:05Z\"", &req, err, sizeof(err)),
	    DTK_MSG_OK);
	assert_int_equal(req.deadline_ms, DEADLINE - 123);
	dtk_request_clear(&req);
	/* execution times are seconds: a fraction is dropped */
	assert_int_equal(decode_mutated("execution_time", "\"2024-11-02T14:30:00.999Z\"", &req, err,
					sizeof(err)),
			 DTK_MSG_OK);
	assert_int_equal(req.execution_time, EXEC);
	dtk_request_clear(&req);
	assert_int_equal(
	    decode_mutated("execution_time", "\"2024-02-29T00:00:00Z\"", &req, err, sizeof(err)),
	    DTK_MSG_OK);
	assert_int_equal(req.execution_time, 1709164800);
	dtk_request_clear(&req);
}

static void test_config_sha256_not_matching_config_yaml_is_its_own_code(void **state)
{
	dtk_request req;
	char err[512];
	assert_int_equal(
	    decode_mutated("config_yaml", "\"name: cpu_load\\n\"", &req, err, sizeof(err)),
	    DTK_MSG_SHA_MISMATCH);
	assert_non_null(strstr(err, "config_sha256"));
	assert_string_equal(req.request_id, RID);
	assert_null(req.config_yaml);
	dtk_request_clear(&req);
	assert_int_equal(
	    decode_mutated("config_sha256",
			   "\"18ee7feb014358d97a627436439779bda1b75c46d80923feefc6f8d93dce74af\"",
			   &req, err, sizeof(err)),
	    DTK_MSG_SHA_MISMATCH);
	dtk_request_clear(&req);
	assert_string_equal(dtk_msg_err_stage(DTK_MSG_SHA_MISMATCH), "schema");
}

static void test_unknown_fields_are_ignored(void **state)
{
	dtk_request req;
	char err[512];
	assert_int_equal(
	    decode_mutated("priority", "{\"level\": [1, 2.5]}", &req, err, sizeof(err)),
	    DTK_MSG_OK);
	dtk_request_clear(&req);
	assert_int_equal(decode_mutated("options.shadow", "true", &req, err, sizeof(err)),
			 DTK_MSG_OK);
	dtk_request_clear(&req);
	assert_int_equal(decode_mutated("options.reply_to", "null", &req, err, sizeof(err)),
			 DTK_MSG_OK);
	assert_null(req.reply_to);
	dtk_request_clear(&req);
}

static void test_identity_survives_a_refusal_only_when_valid(void **state)
{
	dtk_request req;
	char err[512];
	assert_int_equal(decode_mutated("metric", "\"bad name\"", &req, err, sizeof(err)),
			 DTK_MSG_BAD_FIELD);
	assert_string_equal(req.request_id, RID);
	assert_string_equal(req.dispatch_id, DID);
	assert_null(req.metric);
	dtk_request_clear(&req);
	assert_int_equal(decode_mutated("request_id", "\"not-a-uuid\"", &req, err, sizeof(err)),
			 DTK_MSG_BAD_FIELD);
	assert_string_equal(req.request_id, "");
	assert_string_equal(req.metric, "cpu_load");
	dtk_request_clear(&req);
}

static void test_sign_is_lowercase_hex_hmac_sha256_of_the_bytes(void **state)
{
	char sig[DTK_MSG_SIGNATURE_SIZE];
	const char *msg = "The quick brown fox jumps over the lazy dog";
	assert_int_equal(dtk_msg_sign(msg, strlen(msg), "key", sig), 0);
	assert_string_equal(
	    sig, "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8");
	assert_int_equal(dtk_msg_sign(msg, strlen(msg), "", sig), -1);
	assert_int_equal(dtk_msg_sign(msg, strlen(msg), NULL, sig), -1);
}

static void test_verify_ok_bad_and_unsigned(void **state)
{
	char sig[DTK_MSG_SIGNATURE_SIZE], err[256];
	char *bytes = base_bytes();
	size_t len = strlen(bytes);
	assert_int_equal(dtk_msg_sign(bytes, len, "s3cret", sig), 0);

	assert_int_equal(dtk_msg_verify(bytes, len, sig, "s3cret", 0, err, sizeof(err)),
			 DTK_MSG_OK);
	assert_int_equal(dtk_msg_verify(bytes, len, sig, "other", 0, err, sizeof(err)),
			 DTK_MSG_BAD_SIGNATURE);
	assert_non_null(strstr(err, "none of the 1 configured signing key"));
	/* one changed byte of the value */
	char kept = bytes[len - 3];
	bytes[len - 3] = kept == 'e' ? 'E' : 'e';
	assert_int_equal(dtk_msg_verify(bytes, len, sig, "s3cret", 0, err, sizeof(err)),
			 DTK_MSG_BAD_SIGNATURE);
	bytes[len - 3] = kept;
	assert_int_equal(dtk_msg_verify(bytes, len, sig, "s3cret", 0, err, sizeof(err)),
			 DTK_MSG_OK);

	/* the header is compared exactly: lowercase hex behind sha256= */
	char upper[DTK_MSG_SIGNATURE_SIZE];
	memcpy(upper, sig, sizeof(upper));
	for (char *p = upper + 7; *p; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	assert_int_equal(dtk_msg_verify(bytes, len, upper, "s3cret", 0, err, sizeof(err)),
			 DTK_MSG_BAD_SIGNATURE);
	assert_int_equal(dtk_msg_verify(bytes, len, sig + 7, "s3cret", 0, err, sizeof(err)),
			 DTK_MSG_BAD_SIGNATURE);
	assert_non_null(strstr(err, "sha256=<64 lowercase hex digits>"));

	/* unsigned */
	assert_int_equal(dtk_msg_verify(bytes, len, NULL, "s3cret", 0, err, sizeof(err)),
			 DTK_MSG_UNSIGNED);
	assert_non_null(strstr(err, "--allow-unsigned"));
	assert_int_equal(dtk_msg_verify(bytes, len, "", "s3cret", 0, err, sizeof(err)),
			 DTK_MSG_UNSIGNED);
	assert_int_equal(dtk_msg_verify(bytes, len, NULL, "s3cret", 1, err, sizeof(err)),
			 DTK_MSG_OK);
	/* allowing unsigned requests does not allow wrongly signed ones */
	assert_int_equal(dtk_msg_verify(bytes, len, sig, "other", 1, err, sizeof(err)),
			 DTK_MSG_BAD_SIGNATURE);
	/* no key to check against */
	assert_int_equal(dtk_msg_verify(bytes, len, sig, NULL, 0, err, sizeof(err)),
			 DTK_MSG_BAD_SIGNATURE);
	assert_non_null(strstr(err, "DTK_SIGNING_KEYS"));
	assert_int_equal(dtk_msg_verify(bytes, len, sig, " , ", 1, err, sizeof(err)), DTK_MSG_OK);
	assert_string_equal(dtk_msg_err_stage(DTK_MSG_BAD_SIGNATURE), "signature");
	assert_string_equal(dtk_msg_err_stage(DTK_MSG_UNSIGNED), "signature");
	free(bytes);
}

static void test_verify_accepts_any_key_of_a_rotation_list(void **state)
{
	char old_sig[DTK_MSG_SIGNATURE_SIZE], new_sig[DTK_MSG_SIGNATURE_SIZE], err[256];
	const char *v = "{\"schema\":\"x\"}";
	assert_int_equal(dtk_msg_sign(v, strlen(v), "old-key", old_sig), 0);
	assert_int_equal(dtk_msg_sign(v, strlen(v), "new-key", new_sig), 0);
	assert_string_not_equal(old_sig, new_sig);
	const char *keys = "new-key, old-key";
	assert_int_equal(dtk_msg_verify(v, strlen(v), old_sig, keys, 0, err, sizeof(err)),
			 DTK_MSG_OK);
	assert_int_equal(dtk_msg_verify(v, strlen(v), new_sig, keys, 0, err, sizeof(err)),
			 DTK_MSG_OK);
	assert_int_equal(
	    dtk_msg_verify(v, strlen(v), old_sig, " ,,\tnew-key ,", 0, err, sizeof(err)),
	    DTK_MSG_BAD_SIGNATURE);
	assert_non_null(strstr(err, "none of the 1 configured"));
	assert_int_equal(
	    dtk_msg_verify(v, strlen(v), new_sig, " ,,\tnew-key ,", 0, err, sizeof(err)),
	    DTK_MSG_OK);
	/* a key is the whole entry, not a prefix */
	assert_int_equal(dtk_msg_verify(v, strlen(v), new_sig, "new-keys,new", 0, err, sizeof(err)),
			 DTK_MSG_BAD_SIGNATURE);
}

static void test_open_checks_size_then_signature_then_body(void **state)
{
	dtk_request req;
	char sig[DTK_MSG_SIGNATURE_SIZE], err[512];
	char *bytes = base_bytes();
	size_t len = strlen(bytes);
	assert_int_equal(dtk_msg_sign(bytes, len, "k", sig), 0);

	assert_int_equal(dtk_request_open(bytes, len, 0, sig, "k", 0, &req, err, sizeof(err)),
			 DTK_MSG_OK);
	assert_string_equal(req.metric, "cpu_load");
	assert_non_null(req.config_yaml);
	dtk_request_clear(&req);

	assert_int_equal(dtk_request_open(bytes, len, 16, sig, "k", 0, &req, err, sizeof(err)),
			 DTK_MSG_OVERSIZE);
	dtk_request_clear(&req);

	/* a refused signature still yields the id for the rejected result,
	 * and nothing a worker could run */
	assert_int_equal(dtk_request_open(bytes, len, 0, sig, "wrong", 0, &req, err, sizeof(err)),
			 DTK_MSG_BAD_SIGNATURE);
	assert_string_equal(req.request_id, RID);
	assert_string_equal(req.metric, "cpu_load");
	assert_null(req.config_yaml);
	assert_null(req.profiles);
	dtk_request_clear(&req);
	assert_int_equal(dtk_request_open(bytes, len, 0, NULL, "k", 0, &req, err, sizeof(err)),
			 DTK_MSG_UNSIGNED);
	assert_string_equal(req.request_id, RID);
	dtk_request_clear(&req);
	assert_int_equal(dtk_request_open("[]", 2, 0, NULL, "k", 0, &req, err, sizeof(err)),
			 DTK_MSG_UNSIGNED);
	assert_string_equal(req.request_id, "");
	dtk_request_clear(&req);
	/* signed but broken: the body's own code */
	assert_int_equal(dtk_msg_sign("[]", 2, "k", sig), 0);
	assert_int_equal(dtk_request_open("[]", 2, 0, sig, "k", 0, &req, err, sizeof(err)),
			 DTK_MSG_NOT_OBJECT);
	dtk_request_clear(&req);
	free(bytes);
}

/* The result schema's "required" list (schemas/check-result.v1.json). */
static dtk_value *result_schema(void)
{
	char path[1024], err[256], *text = NULL;
	size_t len;
	const char *src = getenv("DTK_SOURCE_DIR");
	snprintf(path, sizeof(path), "%s/schemas/check-result.v1.json", src ? src : ".");
	assert_int_equal(dtk_file_read(path, 1 << 20, &text, &len, err, sizeof(err)), 0);
	dtk_value *schema = dtk_json_parse(text, len, err, sizeof(err));
	free(text);
	assert_non_null(schema);
	return schema;
}

static void assert_has_required(const dtk_value *obj, const dtk_value *schema_node)
{
	const dtk_value *req = dtk_value_map_get(schema_node, "required");
	assert_non_null(req);
	for (size_t i = 0; i < req->u.list.n; i++) {
		const char *k = dtk_value_cstr(req->u.list.items[i]);
		if (!dtk_value_map_get(obj, k))
			fail_msg("result lacks required field '%s'", k);
	}
}

static void assert_result_shape(const dtk_value *res, const char *status)
{
	dtk_value *schema = result_schema();
	assert_has_required(res, schema);
	assert_has_required(dtk_value_map_get(res, "alert"),
			    dtk_value_path(schema, "properties.alert"));
	assert_has_required(dtk_value_map_get(res, "timings_ms"),
			    dtk_value_path(schema, "properties.timings_ms"));
	dtk_value_free(&schema);
	assert_string_equal(dtk_value_cstr(dtk_value_map_get(res, "schema")),
			    "dtk.check.result/v1");
	assert_string_equal(dtk_value_cstr(dtk_value_map_get(res, "status")), status);
	assert_int_equal(dtk_value_map_get(res, "datapoint")->type, DTK_V_NULL);
	assert_int_equal(dtk_value_map_get(res, "detections")->u.list.n, 0);
	assert_int_equal(dtk_value_map_get(res, "alerts")->u.list.n, 0);
	assert_int_equal(dtk_value_path(res, "alert.sent")->type, DTK_V_BOOL);
	assert_false(dtk_value_path(res, "alert.sent")->u.b);
	assert_int_equal(dtk_value_path(res, "alert.reason")->type, DTK_V_NULL);
	assert_int_equal(dtk_value_path(res, "alert.suppressed_by")->type, DTK_V_NULL);
	assert_int_equal(dtk_value_map_get(res, "metadata")->type, DTK_V_MAP);
	assert_int_equal(dtk_value_path(res, "timings_ms.total")->u.i, 0);
}

static void test_rejected_result_has_every_required_field(void **state)
{
	dtk_request req;
	char err[512];
	/* a request whose config did not load on the worker */
	char *bytes = base_bytes();
	assert_int_equal(dtk_request_decode(bytes, strlen(bytes), 0, &req, err, sizeof(err)),
			 DTK_MSG_OK);
	free(bytes);
	dtk_value *worker = dtk_value_map();
	dtk_value_map_set_str(worker, "id", "w1");
	dtk_value_map_set_str(worker, "host", "h1");
	dtk_value_map_set_str(worker, "version", "0.1.0");
	dtk_value *res = dtk_msg_result_rejected(&req, "config", "start the worker with --storage",
						 worker, DISPATCHED + 2000);
	assert_non_null(res);
	assert_result_shape(res, "rejected");
	assert_string_equal(dtk_value_cstr(dtk_value_map_get(res, "request_id")), RID);
	assert_string_equal(dtk_value_cstr(dtk_value_map_get(res, "dispatch_id")), DID);
	assert_string_equal(dtk_value_cstr(dtk_value_map_get(res, "metric")), "cpu_load");
	assert_string_equal(dtk_value_cstr(dtk_value_map_get(res, "execution_time")),
			    "2024-11-02T14:30:00Z");
	assert_string_equal(dtk_value_cstr(dtk_value_map_get(res, "requested_time")),
			    "2024-11-02T14:30:00Z");
	assert_string_equal(dtk_value_cstr(dtk_value_map_get(res, "started_at")),
			    "2024-11-02T14:30:07.123Z");
	assert_string_equal(dtk_value_cstr(dtk_value_map_get(res, "finished_at")),
			    "2024-11-02T14:30:07.123Z");
	const dtk_value *errors = dtk_value_map_get(res, "errors");
	assert_int_equal(errors->u.list.n, 1);
	assert_string_equal(dtk_value_cstr(dtk_value_map_get(errors->u.list.items[0], "stage")),
			    "config");
	assert_string_equal(dtk_value_cstr(dtk_value_map_get(errors->u.list.items[0], "message")),
			    "start the worker with --storage");
	assert_string_equal(dtk_value_cstr(dtk_value_path(res, "worker.id")), "w1");
	assert_string_equal(dtk_value_cstr(dtk_value_map_get(res, "tags")->u.list.items[0]),
			    "critical");
	assert_int_equal(dtk_value_path(res, "timings_ms.queued")->u.i, 2000);
	dtk_value_free(&res);
	dtk_value_free(&worker);
	dtk_request_clear(&req);

	/* nothing known: ids null, metric "unknown", times now */
	res = dtk_msg_result_rejected(NULL, "nonsense", "request is not JSON", NULL, DISPATCHED);
	assert_non_null(res);
	assert_result_shape(res, "rejected");
	assert_int_equal(dtk_value_map_get(res, "request_id")->type, DTK_V_NULL);
	assert_int_equal(dtk_value_map_get(res, "dispatch_id")->type, DTK_V_NULL);
	assert_int_equal(dtk_value_map_get(res, "worker")->type, DTK_V_NULL);
	assert_string_equal(dtk_value_cstr(dtk_value_map_get(res, "metric")), "unknown");
	assert_string_equal(dtk_value_cstr(dtk_value_map_get(res, "execution_time")),
			    "2024-11-02T14:30:05Z");
	assert_string_equal(
	    dtk_value_cstr(dtk_value_path(res, "errors")->u.list.items[0]->u.map.items[0].val),
	    "config");
	dtk_value_free(&res);

	/* a refused message: what decode kept */
	assert_int_equal(decode_mutated("attempt", NULL, &req, err, sizeof(err)),
			 DTK_MSG_MISSING_FIELD);
	res = dtk_msg_result_rejected(&req, NULL, err, NULL, DISPATCHED);
	assert_result_shape(res, "rejected");
	assert_string_equal(dtk_value_cstr(dtk_value_map_get(res, "request_id")), RID);
	assert_string_equal(dtk_value_cstr(dtk_value_map_get(res, "metric")), "cpu_load");
	assert_int_equal(dtk_value_map_get(res, "tags")->u.list.n, 0);
	dtk_value_free(&res);
	dtk_request_clear(&req);
}

static void test_expired_result_names_the_deadline(void **state)
{
	dtk_request req;
	char err[512];
	char *bytes = base_bytes();
	assert_int_equal(dtk_request_decode(bytes, strlen(bytes), 0, &req, err, sizeof(err)),
			 DTK_MSG_OK);
	free(bytes);
	assert_false(dtk_request_expired(&req, DEADLINE - 1));
	assert_true(dtk_request_expired(&req, DEADLINE));
	dtk_value *res = dtk_msg_result_expired(&req, NULL, DEADLINE + 877);
	assert_non_null(res);
	assert_result_shape(res, "expired");
	assert_int_equal(dtk_value_map_get(res, "errors")->u.list.n, 0);
	const dtk_value *w = dtk_value_map_get(res, "warnings");
	assert_int_equal(w->u.list.n, 1);
	assert_non_null(strstr(dtk_value_cstr(w->u.list.items[0]), "2024-11-02T14:31:05.123Z"));
	assert_int_equal(dtk_value_path(res, "timings_ms.queued")->u.i, 60877);
	assert_string_equal(dtk_value_cstr(dtk_value_map_get(res, "request_id")), RID);
	dtk_value_free(&res);
	dtk_request_clear(&req);
}

static const char *header(const dtk_msg_headers *h, const char *name)
{
	for (size_t i = 0; i < h->n; i++)
		if (strcmp(h->h[i].name, name) == 0)
			return h->h[i].value;
	return NULL;
}

static void test_cloudevents_headers_of_a_request_and_a_result(void **state)
{
	dtk_request req;
	dtk_msg_headers h;
	char err[512], sig[DTK_MSG_SIGNATURE_SIZE];
	char *bytes = base_bytes();
	assert_int_equal(dtk_request_decode(bytes, strlen(bytes), 0, &req, err, sizeof(err)),
			 DTK_MSG_OK);
	assert_int_equal(dtk_msg_sign(bytes, strlen(bytes), "k", sig), 0);
	free(bytes);

	assert_int_equal(dtk_msg_request_headers(&req, "//dtk-dispatch/host1", sig, &h), 0);
	assert_int_equal(h.n, 7);
	assert_string_equal(header(&h, "ce_specversion"), "1.0");
	assert_string_equal(header(&h, "ce_type"), "dtk.check.request.v1");
	assert_string_equal(header(&h, "ce_id"), RID);
	assert_string_equal(header(&h, "ce_source"), "//dtk-dispatch/host1");
	assert_string_equal(header(&h, "ce_time"), "2024-11-02T14:30:05.123Z");
	assert_string_equal(header(&h, "content-type"), "application/json");
	assert_string_equal(header(&h, "dtk-signature"), sig);
	assert_int_equal(dtk_msg_request_headers(&req, "s", NULL, &h), 0);
	assert_int_equal(h.n, 6);
	assert_null(header(&h, "dtk-signature"));
	char long_source[300];
	memset(long_source, 'x', sizeof(long_source) - 1);
	long_source[sizeof(long_source) - 1] = '\0';
	assert_int_equal(dtk_msg_request_headers(&req, long_source, NULL, &h), -1);

	dtk_value *res = dtk_msg_result_expired(&req, NULL, DEADLINE + 1);
	assert_int_equal(dtk_msg_result_headers(res, "//dtk-worker/w1", &h), 0);
	assert_int_equal(h.n, 6);
	assert_string_equal(header(&h, "ce_type"), "dtk.check.result.v1");
	assert_string_equal(header(&h, "ce_id"), RID);
	assert_string_equal(header(&h, "ce_time"), "2024-11-02T14:31:05.124Z");
	assert_string_equal(header(&h, "content-type"), "application/json");
	dtk_value_free(&res);

	/* no request id: CloudEvents still needs one */
	res = dtk_msg_result_rejected(NULL, "config", "x", NULL, DEADLINE);
	assert_int_equal(dtk_msg_result_headers(res, "//dtk-worker/w1", &h), 0);
	assert_true(dtk_uuid_valid(header(&h, "ce_id")));
	dtk_value_free(&res);
	dtk_request_clear(&req);
}

static void test_error_codes_have_distinct_names(void **state)
{
	for (int a = DTK_MSG_OK; a <= DTK_MSG_NOMEM; a++)
		for (int b = a + 1; b <= DTK_MSG_NOMEM; b++)
			assert_string_not_equal(dtk_msg_err_name((dtk_msg_err)a),
						dtk_msg_err_name((dtk_msg_err)b));
	assert_null(dtk_msg_err_stage(DTK_MSG_OK));
	assert_string_equal(dtk_msg_err_name(DTK_MSG_MISSING_FIELD), "missing_field");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_uuid_v4_is_version_4_variant_1_and_fresh_each_time),
	    cmocka_unit_test(test_uuid_valid_wants_lowercase_8_4_4_4_12),
	    cmocka_unit_test(test_round_trip_keeps_every_field_and_the_bytes),
	    cmocka_unit_test(test_encode_writes_the_fleet_md_fields_with_utc_times),
	    cmocka_unit_test(test_encode_without_reply_to_omits_it_and_decode_reads_null),
	    cmocka_unit_test(test_encode_refuses_what_decode_would_refuse),
	    cmocka_unit_test(test_oversize_is_refused_before_parsing),
	    cmocka_unit_test(test_not_json_and_not_object_are_distinct_envelope_failures),
	    cmocka_unit_test(test_unknown_major_schema_is_refused_and_v1_minors_are_read),
	    cmocka_unit_test(test_every_required_field_missing_is_named),
	    cmocka_unit_test(test_every_mistyped_or_invalid_field_is_named),
	    cmocka_unit_test(test_times_take_fractions_to_the_millisecond),
	    cmocka_unit_test(test_config_sha256_not_matching_config_yaml_is_its_own_code),
	    cmocka_unit_test(test_unknown_fields_are_ignored),
	    cmocka_unit_test(test_identity_survives_a_refusal_only_when_valid),
	    cmocka_unit_test(test_sign_is_lowercase_hex_hmac_sha256_of_the_bytes),
	    cmocka_unit_test(test_verify_ok_bad_and_unsigned),
	    cmocka_unit_test(test_verify_accepts_any_key_of_a_rotation_list),
	    cmocka_unit_test(test_open_checks_size_then_signature_then_body),
	    cmocka_unit_test(test_rejected_result_has_every_required_field),
	    cmocka_unit_test(test_expired_result_names_the_deadline),
	    cmocka_unit_test(test_cloudevents_headers_of_a_request_and_a_result),
	    cmocka_unit_test(test_error_codes_have_distinct_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
