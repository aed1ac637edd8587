/* console: prints alerts on stdout or stderr, as text or one JSON line.
 * What `dtk init` and the demo configs use. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert/alerter.h"
#include "util/buf.h"
#include "util/json.h"

typedef struct console {
	int to_stderr;
	int json;
} console;

static const char *const console_params[] = {"stream", "format", NULL};

static int console_compile(const dtk_value *params, dtk_value *warnings, void **compiled,
			   char *errstr, size_t errstr_size)
{
	const dtk_value *stream = dtk_value_map_get(params, "stream");
	const dtk_value *format = dtk_value_map_get(params, "format");
	console *c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(errstr, errstr_size, "params: out of memory");
		return -1;
	}
	const char *s = dtk_value_cstr(stream), *f = dtk_value_cstr(format);
	if (stream && (!s || (strcmp(s, "stdout") != 0 && strcmp(s, "stderr") != 0))) {
		snprintf(errstr, errstr_size, "stream: must be stdout or stderr");
		free(c);
		return -1;
	}
	if (format && (!f || (strcmp(f, "text") != 0 && strcmp(f, "json") != 0))) {
		snprintf(errstr, errstr_size, "format: must be text or json");
		free(c);
		return -1;
	}
	c->to_stderr = s && strcmp(s, "stderr") == 0;
	c->json = f && strcmp(f, "json") == 0;
	*compiled = c;
	return 0;
}

static void console_destroy(void *compiled)
{
	free(compiled);
}

static int console_send(const void *compiled, const dtk_alert_message *msg, char *errstr,
			size_t errstr_size)
{
	const console *c = compiled;
	FILE *out = c->to_stderr ? stderr : stdout;
	dtk_buf b;
	dtk_buf_init(&b, 0);
	if (c->json) {
		dtk_value *line = dtk_value_map();
		dtk_value_map_set_str(line, "metric",
				      dtk_value_cstr(dtk_value_map_get(msg->vars, "metric_name")));
		dtk_value_map_set_str(line, "kind", msg->kind);
		dtk_value_map_set_str(line, "message", msg->text);
		dtk_json_emit(&b, line, DTK_JSON_RAW_UTF8 | DTK_JSON_INF_AS_STRING);
		dtk_value_free(&line);
		dtk_buf_addc(&b, '\n');
	} else {
		dtk_buf_printf(&b, "[ALERT] %s\n", msg->text);
	}
	/* one write so lines from parallel checks do not interleave */
	size_t n = fwrite(dtk_buf_str(&b), 1, b.len, out);
	fflush(out);
	int rc = n == b.len && !b.failed ? 0 : -1;
	if (rc != 0)
		snprintf(errstr, errstr_size, "console: write failed");
	dtk_buf_free(&b);
	return rc;
}

const dtk_alerter_type dtk_alerter_console = {
	.name = "console",
	.summary = "print alerts on stdout or stderr (text or JSON lines)",
	.compile = console_compile,
	.destroy = console_destroy,
	.send = console_send,
	.known_params = console_params,
};
