/* The worker's log (fleet.md "Logs"): one JSON object per line on stderr
 * (`ts`, `level`, `msg`, then `metric`, `request_id` and any extra fields),
 * or a human line with --log-format text.
 *
 * Messages must already be masked: the log never sees config values, only
 * names, ids, statuses and error text the library masked.
 *
 * Thread safety: every function may be called from any thread, including
 * librdkafka's; each record is one write(2). */
#ifndef DTK_WORKER_WLOG_H
#define DTK_WORKER_WLOG_H

#include <stddef.h>
#include <stdint.h>

typedef enum dtk_wlog_level {
	DTK_WLOG_DEBUG,
	DTK_WLOG_INFO,
	DTK_WLOG_WARN,
	DTK_WLOG_ERROR,
} dtk_wlog_level;

/* An extra field: a string (s) or, when s is NULL, the integer i. */
typedef struct dtk_wlog_field {
	const char *k;
	const char *s;
	int64_t i;
} dtk_wlog_field;

/* Chooses the format (1 = JSON, the default; 0 = text) and the lowest
 * level written. Call once before threads start. */
void dtk_wlog_setup(int json, dtk_wlog_level min_level);

/* Writes one record. metric and request_id may be NULL (left out). */
void dtk_wlog(dtk_wlog_level level, const char *metric, const char *request_id,
	      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* As dtk_wlog with n extra fields after request_id. */
void dtk_wlog_f(dtk_wlog_level level, const char *metric, const char *request_id,
		const dtk_wlog_field *fields, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

#endif
