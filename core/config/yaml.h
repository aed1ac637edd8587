/* YAML documents loaded exactly as PyYAML's safe_load types them (YAML 1.1
 * resolvers: yes/no/on/off booleans, 0777 octal, sexagesimal, dates and
 * timestamps, merge keys, last duplicate key wins), on top of libyaml's
 * parser. Parsing only: no I/O. */
#ifndef DTK_CONFIG_YAML_H
#define DTK_CONFIG_YAML_H

#include <stddef.h>

#include "util/value.h"

/* Loads the single document in text. Every node carries its 1-based line
 * and column; plain (unquoted) scalars have ->plain set. Duplicate keys
 * keep the last value and append a warning string "line L: duplicate key
 * 'k'" to warnings (a list; may be NULL). An empty document is DTK_V_NULL.
 * Returns a tree owned by the caller, or NULL with errstr
 * "FILE:LINE:COL: message" (FILE = filename, "<string>" when NULL). */
dtk_value *dtk_yaml_load(const char *text, size_t len, const char *filename,
			 dtk_value *warnings, char *errstr, size_t errstr_size);

/* The value PyYAML's resolver gives the plain scalar text (used to re-type
 * a scalar after ${VAR} substitution). Owned by the caller; NULL only when
 * out of memory. */
dtk_value *dtk_yaml_resolve_plain(const char *text, size_t len);

#endif
