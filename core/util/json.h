/* JSON text to and from dtk_value trees. Parsing is separate from I/O, so
 * it serves files, HTTP bodies and Kafka messages alike. */
#ifndef DTK_UTIL_JSON_H
#define DTK_UTIL_JSON_H

#include "util/buf.h"
#include "util/value.h"

enum {
	DTK_JSON_SORT_KEYS = 1 << 0,
	/* Python json.dumps separators ", " and ": " (detector ids) instead of
	 * the compact "," and ":". */
	DTK_JSON_PY_SEPARATORS = 1 << 1,
	/* non-ASCII kept as UTF-8 (ensure_ascii=False); otherwise \uXXXX */
	DTK_JSON_RAW_UTF8 = 1 << 2,
	/* infinities as the strings "inf" / "-inf" and NaN as null (results);
	 * otherwise Python's Infinity / NaN tokens */
	DTK_JSON_INF_AS_STRING = 1 << 3,
	DTK_JSON_PRETTY = 1 << 4,
};

/* Appends v as JSON to out. Dates and datetimes become ISO 8601 strings.
 * Returns 0, or -1 when out hit its maximum. */
int dtk_json_emit(dtk_buf *out, const dtk_value *v, int flags);

/* Appends s as a JSON string literal (with quotes). */
int dtk_json_emit_str(dtk_buf *out, const char *s, size_t len, int flags);

/* Parses one JSON document (RFC 8259 plus Python's Infinity/NaN tokens).
 * Integers without fraction or exponent become DTK_V_INT when they fit in
 * 64 bits. Returns a tree owned by the caller, or NULL with a message
 * naming line and column in errstr. Nesting is limited to 200 levels. */
dtk_value *dtk_json_parse(const char *text, size_t len, char *errstr, size_t errstr_size);

#endif
