/* Connection profiles (config.md "Profiles"): named connection settings
 * looked up in --profiles FILE, $DETECTK_PROFILES_PATH,
 * ./detectk_profiles.yaml, ~/.detectk/profiles.yaml and
 * /etc/detectk/profiles.yaml; the first file that defines a name wins. */
#ifndef DTK_CONFIG_PROFILES_H
#define DTK_CONFIG_PROFILES_H

#include <stddef.h>

#include "config/env.h"
#include "util/value.h"

/* Finds profile name, env-expanded with env. Returns 1 and a map owned by
 * the caller in *out (and the file it came from in where), 0 when no file
 * defines it (errstr lists the files searched), -1 on a file that fails to
 * load (errstr says which). */
int dtk_profiles_lookup(const char *explicit_path, const char *name, const dtk_env_opts *env,
			dtk_value **out, char *where, size_t where_size, char *errstr,
			size_t errstr_size);

/* As dtk_profiles_lookup, but the entry is returned as written: ${VAR}
 * placeholders are kept (what a dispatcher sends to workers, so secrets do
 * not travel). */
int dtk_profiles_lookup_raw(const char *explicit_path, const char *name, dtk_value **out,
			    char *where, size_t where_size, char *errstr, size_t errstr_size);

/* 1 when doc looks like a profiles file rather than a metric. */
int dtk_profiles_is_profiles_doc(const dtk_value *doc);

#endif
