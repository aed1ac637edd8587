/* A small C API for foreign-function callers (the Python bindings in
 * integrations/python over ctypes): plain C strings in, JSON text out, so
 * callers never mirror DetectK's C structs.
 *
 * Every returned string is allocated by libdtk; release it with dtk_free.
 * Thread safety: as dtk_config_load and dtk_check_run. */
#ifndef DTK_CAPI_H
#define DTK_CAPI_H

#include <stddef.h>
#include <stdint.h>

/* Loads the config at path (strict mode, as `dtk run`) and runs one check
 * at t (UTC seconds, aligned to the interval grid as `dtk run -t`) when
 * has_t, else now. Returns the check result v1 object as JSON text, exactly
 * as `dtk run --output json` prints it (without the newline); a failing
 * check is a result with status "error". Returns NULL with errstr
 * "PATH:LINE:COL: key.path: message" when the config does not load, or
 * "out of memory". */
char *dtk_check_run_json(const char *path, int64_t t, int has_t, char *errstr,
			 size_t errstr_size);

/* Loads the config at path (strict when strict, else with ${VAR}s left
 * unexpanded and components not built) and returns its summary as JSON
 * text: {"path", "name", "description", "tags", "timezone",
 * "collector": {"type"}, "detectors": [{"id", "type"}],
 * "schedule": {"interval", "interval_seconds", "timeout", "delay"},
 * "warnings"}. NULL with errstr as dtk_check_run_json. */
char *dtk_config_info_json(const char *path, int strict, char *errstr, size_t errstr_size);

/* Frees a string returned above; NULL is fine. */
void dtk_free(void *p);

#endif
