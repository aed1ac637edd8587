/* Helpers the detectors share: reading params with type checks, filling
 * metadata, recording why a detector skipped. Private to core/detect. */
#ifndef DTK_DETECT_COMMON_H
#define DTK_DETECT_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "detect/detector.h"
#include "util/params.h"

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
