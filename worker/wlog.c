/* The worker's log: see wlog.h. */
#include "wlog.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/json.h"

/* Set once before threads start, read-only afterwards. */
static int log_json = 1;
static dtk_wlog_level log_min = DTK_WLOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void dtk_wlog_setup(int json, dtk_wlog_level min_level)
{
	log_json = json;
	log_min = min_level;
}

static void add_field(dtk_buf *b, const char *k, const char *s, int64_t i)
{
	if (log_json) {
		dtk_buf_addc(b, ',');
		dtk_json_emit_str(b, k, strlen(k), 0);
		dtk_buf_addc(b, ':');
		if (s)
			dtk_json_emit_str(b, s, strlen(s), 0);
		else
			dtk_buf_printf(b, "%lld", (long long)i);
	} else if (s) {
		dtk_buf_printf(b, " %s=%s", k, s);
	} else {
		dtk_buf_printf(b, " %s=%lld", k, (long long)i);
	}
}

static void vlog(dtk_wlog_level level, const char *metric, const char *request_id,
		 const dtk_wlog_field *fields, size_t n, const char *fmt, va_list ap)
{
	if (level < log_min)
		return;
	char ts[40], msg[2048];
	dtk_format_time(dtk_now_ms(), 1, ts, sizeof(ts));
	vsnprintf(msg, sizeof(msg), fmt, ap);
	dtk_buf b;
	dtk_buf_init(&b, 1 << 16);
	if (log_json) {
		dtk_buf_printf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":", ts,
			       level_names[level]);
		dtk_json_emit_str(&b, msg, strlen(msg), 0);
	} else {
		dtk_buf_printf(&b, "%s %-5s %s", ts, level_names[level], msg);
	}
	if (metric)
		add_field(&b, "metric", metric, 0);
	if (request_id && *request_id)
		add_field(&b, "request_id", request_id, 0);
	for (size_t i = 0; i < n; i++)
		add_field(&b, fields[i].k, fields[i].s, fields[i].i);
	if (log_json)
		dtk_buf_addc(&b, '}');
	dtk_buf_addc(&b, '\n');
	if (!b.failed) {
		/* one write per record, so threads never interleave inside a line */
		ssize_t w = write(STDERR_FILENO, b.data, b.len);
		(void)w;
	}
	dtk_buf_free(&b);
}

void dtk_wlog(dtk_wlog_level level, const char *metric, const char *request_id,
	      const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(level, metric, request_id, NULL, 0, fmt, ap);
	va_end(ap);
}

void dtk_wlog_f(dtk_wlog_level level, const char *metric, const char *request_id,
		const dtk_wlog_field *fields, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(level, metric, request_id, fields, n, fmt, ap);
	va_end(ap);
}
