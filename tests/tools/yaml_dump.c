/* yaml_dump: loads one YAML document with dtk_yaml_load and prints a
 * canonical, type-tagged JSON dump of the tree, the same scheme that
 * tests/py/test_yaml_diff.py builds from PyYAML's safe_load:
 *
 *   {"t":"null"}  {"t":"bool","v":true}  {"t":"int","v":"511"}
 *   {"t":"float","v":"<Python repr>"}  {"t":"str","v":"..."}
 *   {"t":"date","v":"2001-12-14"}
 *   {"t":"datetime","v":"2001-12-14T21:59:43.100000","tz":-300|null}
 *   {"t":"list","v":[...]}  {"t":"map","v":[[key,value],...]}
 *
 * Usage: yaml_dump [FILE]   (stdin without FILE). Duplicate-key warnings
 * go to stderr as "warning: ..."; on a load error the message goes to
 * stderr and the exit status is 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/yaml.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/pyfmt.h"
#include "util/value.h"

#define DUMP_MAX_INPUT ((size_t)16 << 20)

static void dump(dtk_buf *out, const dtk_value *v)
{
	char tmp[64];
	switch (v->type) {
	case DTK_V_NULL:
		dtk_buf_adds(out, "{\"t\":\"null\"}");
		break;
	case DTK_V_BOOL:
		dtk_buf_printf(out, "{\"t\":\"bool\",\"v\":%s}", v->u.b ? "true" : "false");
		break;
	case DTK_V_INT:
		dtk_buf_printf(out, "{\"t\":\"int\",\"v\":\"%lld\"}", (long long)v->u.i);
		break;
	case DTK_V_FLOAT:
		dtk_pyfmt_float(v->u.f, tmp, sizeof(tmp));
		dtk_buf_printf(out, "{\"t\":\"float\",\"v\":\"%s\"}", tmp);
		break;
	case DTK_V_STR:
		dtk_buf_adds(out, "{\"t\":\"str\",\"v\":");
		dtk_json_emit_str(out, v->u.str.s, v->u.str.len, 0);
		dtk_buf_addc(out, '}');
		break;
	case DTK_V_DATE: {
		int64_t secs = v->u.dt.secs;
		int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
		int y, m, d;
		dtk_pyfmt_civil(days, &y, &m, &d);
		dtk_buf_printf(out, "{\"t\":\"date\",\"v\":\"%04d-%02d-%02d\"}", y, m, d);
		break;
	}
	case DTK_V_DATETIME:
		dtk_pyfmt_datetime(v->u.dt.secs, v->u.dt.usec, 'T', tmp, sizeof(tmp));
		if (v->u.dt.has_tz)
			dtk_buf_printf(out, "{\"t\":\"datetime\",\"v\":\"%s\",\"tz\":%d}", tmp,
				       (int)v->u.dt.tz_min);
		else
			dtk_buf_printf(out, "{\"t\":\"datetime\",\"v\":\"%s\",\"tz\":null}", tmp);
		break;
	case DTK_V_LIST:
		dtk_buf_adds(out, "{\"t\":\"list\",\"v\":[");
		for (size_t i = 0; i < v->u.list.n; i++) {
			if (i)
				dtk_buf_addc(out, ',');
			dump(out, v->u.list.items[i]);
		}
		dtk_buf_adds(out, "]}");
		break;
	case DTK_V_MAP:
		dtk_buf_adds(out, "{\"t\":\"map\",\"v\":[");
		for (size_t i = 0; i < v->u.map.n; i++) {
			if (i)
				dtk_buf_addc(out, ',');
			dtk_buf_addc(out, '[');
			dump(out, v->u.map.items[i].key);
			dtk_buf_addc(out, ',');
			dump(out, v->u.map.items[i].val);
			dtk_buf_addc(out, ']');
		}
		dtk_buf_adds(out, "]}");
		break;
	}
}

int main(int argc, char **argv)
{
	int rc = 1;
	FILE *f = stdin;
	const char *name = "<stdin>";
	dtk_buf in, out;
	char chunk[65536];
	char err[1024];
	dtk_value *warnings = dtk_value_list();
	dtk_value *doc = NULL;

	dtk_buf_init(&in, DUMP_MAX_INPUT);
	dtk_buf_init(&out, 0);
	if (argc > 2) {
		fprintf(stderr, "usage: yaml_dump [FILE]\n");
		goto out;
	}
	if (argc == 2) {
		name = argv[1];
		f = fopen(name, "rb");
		if (!f) {
			perror(name);
			goto out;
		}
	}
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (dtk_buf_add(&in, chunk, n) != 0) {
			fprintf(stderr, "%s: input larger than %zu bytes\n", name, DUMP_MAX_INPUT);
			goto out;
		}
	}
	if (ferror(f)) {
		perror(name);
		goto out;
	}
	doc = dtk_yaml_load(in.data ? in.data : "", in.len, name, warnings, err, sizeof(err));
	if (!doc) {
		fprintf(stderr, "%s\n", err);
		goto out;
	}
	for (size_t i = 0; warnings && i < warnings->u.list.n; i++)
		fprintf(stderr, "warning: %s\n", dtk_value_cstr(warnings->u.list.items[i]));
	dump(&out, doc);
	dtk_buf_addc(&out, '\n');
	if (out.failed) {
		fprintf(stderr, "%s: output too large\n", name);
		goto out;
	}
	fwrite(dtk_buf_str(&out), 1, out.len, stdout);
	rc = 0;
out:
	if (f && f != stdin)
		fclose(f);
	dtk_value_free(&doc);
	dtk_value_free(&warnings);
	dtk_buf_free(&in);
	dtk_buf_free(&out);
	return rc;
}
