/* Helpers the detectors share: reading params with type checks, filling
 * metadata, recording why a detector skipped. Private to core/detect. */
#ifndef DTK_DETECT_COMMON_H
#define DTK_DETECT_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "detect/detector.h"

/* Each reads params[key] (params borrowed, may be NULL): absent or null
 * leaves *out = def and returns 0; a value of the wrong type returns -1
 * with errstr "key: must be ...". */
int dtk_param_number(const dtk_value *params, const char *key, double def, double *out,
		     char *errstr, size_t errstr_size);
int dtk_param_bool(const dtk_value *params, const char *key, int def, int *out, char *errstr,
		   size_t errstr_size);
int dtk_param_int(const dtk_value *params, const char *key, int64_t def, int64_t *out,
		  char *errstr, size_t errstr_size);

/* params[key] when present and not null, else a new value from def (NULL
 * def means null). The result is owned by the caller. */
dtk_value *dtk_param_copy_or(const dtk_value *params, const char *key, dtk_value *def);

/* Sets out->skipped to the formatted reason (malloc'd). */
void dtk_detection_skip(dtk_detection *out, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Metadata setters onto out->metadata (created on first use). Running out
 * of memory leaves the key out: run() never fails. */
void dtk_meta_set(dtk_detection *out, const char *key, dtk_value *val);
void dtk_meta_num(dtk_detection *out, const char *key, double v); /* NAN -> null */
void dtk_meta_int(dtk_detection *out, const char *key, int64_t v);
void dtk_meta_str(dtk_detection *out, const char *key, const char *s); /* NULL -> null */
void dtk_meta_bool(dtk_detection *out, const char *key, int b);

#endif
