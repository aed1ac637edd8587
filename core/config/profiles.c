#include "config/profiles.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/yaml.h"
#include "util/buf.h"
#include "util/fileio.h"

int dtk_profiles_is_profiles_doc(const dtk_value *doc)
{
	return doc && doc->type == DTK_V_MAP && dtk_value_map_get(doc, "profiles") &&
	       !dtk_value_map_get(doc, "name");
}

/* Loads one profiles file: 1 and the entry (expanded with env, or as
 * written when env is NULL), 0 when the file does not define name, -1 on
 * error. */
static int lookup_in(const char *path, const char *name, const dtk_env_opts *env,
		     dtk_value **out, char *errstr, size_t errstr_size)
{
	char *text = NULL;
	size_t len = 0;
	dtk_value *doc = NULL;
	int rc = -1;
	if (dtk_file_read(path, DTK_FILE_MAX_CONFIG, &text, &len, errstr, errstr_size) != 0)
		goto out;
	doc = dtk_yaml_load(text, len, path, NULL, errstr, errstr_size);
	if (!doc)
		goto out;
	const dtk_value *profiles = dtk_value_map_get(doc, "profiles");
	if (!profiles || profiles->type != DTK_V_MAP) {
		snprintf(errstr, errstr_size, "%s: a profiles file needs a top-level 'profiles:' mapping",
			 path);
		goto out;
	}
	const dtk_value *entry = dtk_value_map_get(profiles, name);
	if (!entry) {
		rc = 0;
		goto out;
	}
	if (entry->type != DTK_V_MAP) {
		snprintf(errstr, errstr_size, "%s:%u:%u: profiles.%s: must be a mapping", path,
			 entry->line, entry->col, name);
		goto out;
	}
	dtk_value *copy = dtk_value_copy(entry);
	char keypath[300], err[512];
	snprintf(keypath, sizeof(keypath), "profiles.%s", name);
	if (!copy || (env && dtk_env_expand(copy, keypath, env, err, sizeof(err)) != 0)) {
		snprintf(errstr, errstr_size, "%s:%s", path, copy ? err : " out of memory");
		dtk_value_free(&copy);
		goto out;
	}
	*out = copy;
	rc = 1;
out:
	dtk_value_free(&doc);
	free(text);
	return rc;
}

static int lookup(const char *explicit_path, const char *name, const dtk_env_opts *env,
		  dtk_value **out, char *where, size_t where_size, char *errstr, size_t errstr_size)
{
	char home_path[1024] = "";
	const char *home = getenv("HOME");
	if (home)
		snprintf(home_path, sizeof(home_path), "%s/.detectk/profiles.yaml", home);
	const char *env_path = getenv("DETECTK_PROFILES_PATH");
	const char *candidates[] = {explicit_path,	    env_path && *env_path ? env_path : NULL,
				    "detectk_profiles.yaml", home[0] ? home_path : NULL,
				    "/etc/detectk/profiles.yaml"};
	dtk_buf searched;
	dtk_buf_init(&searched, 4096);
	int rc = 0;
	for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++) {
		const char *p = candidates[i];
		if (!p)
			continue;
		if (!dtk_file_exists(p)) {
			if (i == 0) {
				snprintf(errstr, errstr_size, "profiles file %s does not exist", p);
				rc = -1;
				goto out;
			}
			continue;
		}
		dtk_buf_printf(&searched, "%s%s", searched.len ? ", " : "", p);
		rc = lookup_in(p, name, env, out, errstr, errstr_size);
		if (rc != 0) {
			if (rc == 1)
				snprintf(where, where_size, "%s", p);
			goto out;
		}
	}
	snprintf(errstr, errstr_size, "profile '%s' not found (searched: %s)", name,
		 searched.len ? dtk_buf_str(&searched)
			      : "no profiles file: give --profiles FILE or set DETECTK_PROFILES_PATH");
out:
	dtk_buf_free(&searched);
	return rc;
}

int dtk_profiles_lookup(const char *explicit_path, const char *name, const dtk_env_opts *env,
			dtk_value **out, char *where, size_t where_size, char *errstr,
			size_t errstr_size)
{
	static const dtk_env_opts defaults;
	return lookup(explicit_path, name, env ? env : &defaults, out, where, where_size, errstr,
		      errstr_size);
}

int dtk_profiles_lookup_raw(const char *explicit_path, const char *name, dtk_value **out,
			    char *where, size_t where_size, char *errstr, size_t errstr_size)
{
	return lookup(explicit_path, name, NULL, out, where, where_size, errstr, errstr_size);
}
