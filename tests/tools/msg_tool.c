/* msg_tool: drives core/message.c for tests/py/test_request_schema.py.
 *
 *   msg_tool encode --metric M --config FILE [--request-id U] [--dispatch-id U]
 *            [--profiles JSON] [--execution-time SECS] [--dispatched-at-ms MS]
 *            [--deadline-ms MS] [--tags a,b] [--attempt N] [--no-store]
 *            [--no-alerts] [--reply-to TOPIC]
 *       prints the request's bytes (no newline); ids default to fresh UUIDs
 *   msg_tool sign KEY < BYTES
 *       prints the dtk-signature value
 *   msg_tool decode [--max N] [--signature S] [--keys K] [--allow-unsigned] < BYTES
 *       prints {"code", "stage", "error", "request_id", "dispatch_id",
 *       "metric", "request"}: request is the decoded request encoded again
 *       (null on failure); exits 0 when accepted, 1 when refused
 *   msg_tool rejected|expired [--now-ms MS] [--stage S] [--message M] < BYTES
 *       decodes what it can and prints the result object; rejected uses the
 *       decode error as the message when the request was refused
 *   msg_tool headers request|result [--source S] [--signature S] < BYTES
 *       prints the headers as a JSON object
 * Exit 2 on a usage error. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "message.h"
#include "util/buf.h"
#include "util/fileio.h"
#include "util/json.h"
#include "util/value.h"

#define INPUT_MAX ((size_t)64 << 20)

static int usage(const char *why)
{
	fprintf(stderr, "msg_tool: %s (see the comment at the top of msg_tool.c)\n", why);
	return 2;
}

static int num(const char *s, long long *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end)
		return -1;
	*out = v;
	return 0;
}

static int read_stdin(dtk_buf *in)
{
	char chunk[65536];
	size_t n;
	dtk_buf_init(in, INPUT_MAX);
	while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
		if (dtk_buf_add(in, chunk, n) != 0)
			return -1;
	return ferror(stdin) ? -1 : 0;
}

static const char *opt_str(int argc, char **argv, const char *name)
{
	for (int i = 2; i + 1 < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return argv[i + 1];
	return NULL;
}

static int opt_flag(int argc, char **argv, const char *name)
{
	for (int i = 2; i < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return 1;
	return 0;
}

static int opt_num(int argc, char **argv, const char *name, long long dflt, long long *out)
{
	const char *s = opt_str(argc, argv, name);
	*out = dflt;
	return s ? num(s, out) : 0;
}

static void print_value(const dtk_value *v)
{
	dtk_buf out;
	dtk_buf_init(&out, 0);
	dtk_json_emit(&out, v, DTK_JSON_RAW_UTF8);
	fwrite(out.data, 1, out.len, stdout);
	putchar('\n');
	dtk_buf_free(&out);
}

static int cmd_encode(int argc, char **argv)
{
	dtk_request req = {0};
	dtk_buf out;
	char *cfg = NULL;
	size_t cfg_len = 0;
	char err[512];
	long long exec, disp, dl, attempt;
	int rc = 1;
	const char *metric = opt_str(argc, argv, "--metric");
	const char *path = opt_str(argc, argv, "--config");
	const char *rid = opt_str(argc, argv, "--request-id");
	const char *did = opt_str(argc, argv, "--dispatch-id");
	const char *profiles = opt_str(argc, argv, "--profiles");
	const char *tags = opt_str(argc, argv, "--tags");
	const char *reply_to = opt_str(argc, argv, "--reply-to");
	dtk_buf_init(&out, 0);
	if (!metric || !path)
		return usage("encode needs --metric and --config");
	if (opt_num(argc, argv, "--execution-time", 1730557800, &exec) ||
	    opt_num(argc, argv, "--dispatched-at-ms", 1730557805123LL, &disp) ||
	    opt_num(argc, argv, "--deadline-ms", 1730557865123LL, &dl) ||
	    opt_num(argc, argv, "--attempt", 1, &attempt))
		return usage("a number option is not an integer");
	if (dtk_file_read(path, INPUT_MAX, &cfg, &cfg_len, err, sizeof(err)) != 0) {
		fprintf(stderr, "msg_tool: %s\n", err);
		goto out;
	}
	snprintf(req.request_id, sizeof(req.request_id), "%s", rid ? rid : "");
	snprintf(req.dispatch_id, sizeof(req.dispatch_id), "%s", did ? did : "");
	if ((!rid && dtk_uuid_v4(req.request_id)) || (!did && dtk_uuid_v4(req.dispatch_id)))
		goto out;
	req.metric = strdup(metric);
	req.config_yaml_len = cfg_len;
	req.config_yaml = cfg;
	cfg = NULL;
	if (profiles) {
		req.profiles = dtk_json_parse(profiles, strlen(profiles), err, sizeof(err));
		if (!req.profiles) {
			fprintf(stderr, "msg_tool: --profiles: %s\n", err);
			goto out;
		}
	}
	req.tags = dtk_value_list();
	for (const char *p = tags; p && *p;) {
		size_t n = strcspn(p, ",");
		dtk_value *t = dtk_value_strn(p, n);
		if (!t || dtk_value_list_push(req.tags, t) != 0)
			goto out;
		p += n + (p[n] == ',');
	}
	req.execution_time = exec;
	req.dispatched_at_ms = disp;
	req.deadline_ms = dl;
	req.attempt = attempt;
	req.store = !opt_flag(argc, argv, "--no-store");
	req.alerts = !opt_flag(argc, argv, "--no-alerts");
	req.reply_to = reply_to ? strdup(reply_to) : NULL;
	if (dtk_request_encode(&req, &out, err, sizeof(err)) != 0) {
		fprintf(stderr, "msg_tool: %s\n", err);
		goto out;
	}
	fwrite(out.data, 1, out.len, stdout);
	rc = 0;
out:
	dtk_request_clear(&req);
	dtk_buf_free(&out);
	free(cfg);
	return rc;
}

static int cmd_decode(int argc, char **argv, const dtk_buf *in)
{
	dtk_request req;
	dtk_buf enc;
	char err[1024], eerr[256];
	long long max;
	if (opt_num(argc, argv, "--max", 0, &max) || max < 0)
		return usage("--max is not a size");
	dtk_msg_err code =
	    dtk_request_open(in->data, in->len, (size_t)max, opt_str(argc, argv, "--signature"),
			     opt_str(argc, argv, "--keys"),
			     opt_flag(argc, argv, "--allow-unsigned"), &req, err, sizeof(err));
	dtk_value *doc = dtk_value_map();
	dtk_value_map_set_str(doc, "code", dtk_msg_err_name(code));
	dtk_value_map_set_str(doc, "stage", dtk_msg_err_stage(code));
	dtk_value_map_set_str(doc, "error", code ? err : NULL);
	dtk_value_map_set_str(doc, "request_id", req.request_id[0] ? req.request_id : NULL);
	dtk_value_map_set_str(doc, "dispatch_id", req.dispatch_id[0] ? req.dispatch_id : NULL);
	dtk_value_map_set_str(doc, "metric", req.metric);
	dtk_buf_init(&enc, 0);
	dtk_value *again = NULL;
	if (code == DTK_MSG_OK) {
		if (dtk_request_encode(&req, &enc, eerr, sizeof(eerr)) == 0)
			again = dtk_json_parse(enc.data, enc.len, eerr, sizeof(eerr));
		if (!again)
			fprintf(stderr, "msg_tool: re-encoding failed: %s\n", eerr);
	}
	if (!again || dtk_value_map_set(doc, "request", again) != 0) {
		dtk_value_free(&again);
		dtk_value_map_set_str(doc, "request", NULL);
	}
	dtk_value_map_set_str(doc, "reencoded", code == DTK_MSG_OK ? dtk_buf_str(&enc) : NULL);
	print_value(doc);
	dtk_value_free(&doc);
	dtk_buf_free(&enc);
	dtk_request_clear(&req);
	return code == DTK_MSG_OK ? 0 : 1;
}

static int cmd_result(int argc, char **argv, const dtk_buf *in, int expired)
{
	dtk_request req;
	char err[1024];
	long long now;
	if (opt_num(argc, argv, "--now-ms", 0, &now))
		return usage("--now-ms is not an integer");
	dtk_msg_err code = dtk_request_decode(in->data, in->len, 0, &req, err, sizeof(err));
	dtk_value *res;
	if (expired) {
		if (code != DTK_MSG_OK) {
			fprintf(stderr, "msg_tool: %s\n", err);
			dtk_request_clear(&req);
			return 1;
		}
		res = dtk_msg_result_expired(&req, NULL, now);
	} else {
		const char *msg = opt_str(argc, argv, "--message");
		res = dtk_msg_result_rejected(&req, opt_str(argc, argv, "--stage"),
					      code == DTK_MSG_OK ? msg : err, NULL, now);
	}
	dtk_request_clear(&req);
	if (!res)
		return 1;
	print_value(res);
	dtk_value_free(&res);
	return 0;
}

static int cmd_headers(int argc, char **argv, const dtk_buf *in)
{
	dtk_msg_headers h;
	char err[1024];
	int rc = -1;
	const char *source = opt_str(argc, argv, "--source");
	if (argc > 2 && strcmp(argv[2], "request") == 0) {
		dtk_request req;
		if (dtk_request_decode(in->data, in->len, 0, &req, err, sizeof(err)) == DTK_MSG_OK)
			rc = dtk_msg_request_headers(&req, source,
						     opt_str(argc, argv, "--signature"), &h);
		dtk_request_clear(&req);
	} else if (argc > 2 && strcmp(argv[2], "result") == 0) {
		dtk_value *res = dtk_json_parse(in->data, in->len, err, sizeof(err));
		if (res)
			rc = dtk_msg_result_headers(res, source, &h);
		dtk_value_free(&res);
	} else {
		return usage("headers request|result");
	}
	if (rc != 0)
		return 1;
	dtk_value *doc = dtk_value_map();
	for (size_t i = 0; i < h.n; i++)
		dtk_value_map_set_str(doc, h.h[i].name, h.h[i].value);
	print_value(doc);
	dtk_value_free(&doc);
	return 0;
}

int main(int argc, char **argv)
{
	dtk_buf in;
	int rc;
	if (argc < 2)
		return usage("no command");
	if (strcmp(argv[1], "encode") == 0)
		return cmd_encode(argc, argv);
	if (read_stdin(&in) != 0) {
		dtk_buf_free(&in);
		return usage("cannot read stdin");
	}
	if (strcmp(argv[1], "sign") == 0 && argc == 3) {
		char sig[DTK_MSG_SIGNATURE_SIZE];
		rc = dtk_msg_sign(in.data, in.len, argv[2], sig) == 0 ? 0 : 1;
		if (rc == 0)
			puts(sig);
	} else if (strcmp(argv[1], "decode") == 0) {
		rc = cmd_decode(argc, argv, &in);
	} else if (strcmp(argv[1], "rejected") == 0 || strcmp(argv[1], "expired") == 0) {
		rc = cmd_result(argc, argv, &in, argv[1][0] == 'e');
	} else if (strcmp(argv[1], "headers") == 0) {
		rc = cmd_headers(argc, argv, &in);
	} else {
		rc = usage("unknown command");
	}
	dtk_buf_free(&in);
	return rc;
}
