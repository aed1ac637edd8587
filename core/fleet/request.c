#include "request.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/env.h"
#include "config/profiles.h"
#include "util/fileio.h"

/* Keys whose literal value would put a secret on the wire. `limit_key`
 * names a connection-limit bucket (fleet.md), not a credential. */
static int secret_key(const char *k)
{
	char low[128];
	size_t n = 0;
	for (; k[n] && n < sizeof(low) - 1; n++)
		low[n] = (char)tolower((unsigned char)k[n]);
	low[n] = '\0';
	if (strcmp(low, "limit_key") == 0)
		return 0;
	return strstr(low, "pass") || strstr(low, "secret") || strstr(low, "token") ||
	       strstr(low, "key");
}

static int check_value(const char *profile, const char *keypath, const dtk_value *v,
		       int under_secret, char *errstr, size_t errstr_size)
{
	char kp[512];
	switch (v->type) {
	case DTK_V_MAP:
		for (size_t i = 0; i < v->u.map.n; i++) {
			const char *k = dtk_value_cstr(v->u.map.items[i].key);
			if (!k)
				continue;
			snprintf(kp, sizeof(kp), "%s%s%s", keypath, *keypath ? "." : "", k);
			if (check_value(profile, kp, v->u.map.items[i].val,
					under_secret || secret_key(k), errstr, errstr_size) != 0)
				return -1;
		}
		return 0;
	case DTK_V_LIST:
		for (size_t i = 0; i < v->u.list.n; i++) {
			snprintf(kp, sizeof(kp), "%s[%zu]", keypath, i);
			if (check_value(profile, kp, v->u.list.items[i], under_secret, errstr,
					errstr_size) != 0)
				return -1;
		}
		return 0;
	case DTK_V_NULL:
		return 0;
	case DTK_V_STR:
		if (!under_secret || v->u.str.len == 0 || dtk_env_has_placeholder(v->u.str.s))
			return 0;
		break;
	default:
		if (!under_secret)
			return 0;
		break;
	}
	snprintf(errstr, errstr_size,
		 "profile '%s': '%s' is written in clear; requests travel through Kafka, so "
		 "write it as ${VARIABLE} and set the variable on the workers",
		 profile, keypath);
	return -1;
}

int dtk_fleet_profile_check(const char *name, const dtk_value *entry, char *errstr,
			    size_t errstr_size)
{
	return check_value(name, "", entry, 0, errstr, errstr_size);
}

/* Adds profile `name` (as written) to profiles unless it is there. */
static int add_profile(dtk_value *profiles, const char *name, const char *profiles_path,
		       char *errstr, size_t errstr_size)
{
	char where[1024], err[1024];
	dtk_value *entry = NULL;
	if (dtk_value_map_get(profiles, name))
		return 0;
	int rc = dtk_profiles_lookup_raw(profiles_path, name, &entry, where, sizeof(where), err,
					 sizeof(err));
	if (rc != 1) {
		snprintf(errstr, errstr_size, "%s", err);
		return -1;
	}
	if (dtk_fleet_profile_check(name, entry, err, sizeof(err)) != 0) {
		snprintf(errstr, errstr_size, "%s (in %s)", err, where);
		dtk_value_free(&entry);
		return -1;
	}
	if (dtk_value_map_set(profiles, name, entry) != 0) {
		dtk_value_free(&entry);
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	return 0;
}

static const char *profile_of(const dtk_value *block)
{
	return block && block->type == DTK_V_MAP
		       ? dtk_value_cstr(dtk_value_map_get(block, "profile"))
		       : NULL;
}

/* The profiles a config names: collector, storage and every alerter. */
static int collect_profiles(const dtk_config *cfg, const char *profiles_path,
			    dtk_value *profiles, char *errstr, size_t errstr_size)
{
	const dtk_value *root = cfg->root;
	const char *names[2] = {profile_of(dtk_value_map_get(root, "collector")),
				profile_of(dtk_value_map_get(root, "storage"))};
	for (size_t i = 0; i < 2; i++)
		if (names[i] && add_profile(profiles, names[i], profiles_path, errstr,
					    errstr_size) != 0)
			return -1;
	const dtk_value *many = dtk_value_map_get(root, "alerters");
	const dtk_value *one = dtk_value_map_get(root, "alerter");
	if (many && many->type == DTK_V_LIST) {
		for (size_t i = 0; i < many->u.list.n; i++) {
			const char *p = profile_of(many->u.list.items[i]);
			if (p && add_profile(profiles, p, profiles_path, errstr, errstr_size) != 0)
				return -1;
		}
	} else if (profile_of(one) &&
		   add_profile(profiles, profile_of(one), profiles_path, errstr, errstr_size) != 0) {
		return -1;
	}
	return 0;
}

int dtk_fleet_request_build(const char *path, const dtk_config *cfg,
			    const dtk_fleet_request_opts *o, dtk_request *req, char *errstr,
			    size_t errstr_size)
{
	char err[1024];
	memset(req, 0, sizeof(*req));
	if (dtk_uuid_v4(req->request_id) != 0) {
		snprintf(errstr, errstr_size, "cannot make a request id: no randomness available");
		return -1;
	}
	snprintf(req->dispatch_id, sizeof(req->dispatch_id), "%s", o->dispatch_id);
	req->metric = strdup(cfg->name);
	req->profiles = dtk_value_map();
	req->tags = dtk_value_list();
	if (!req->metric || !req->profiles || !req->tags)
		goto nomem;
	if (dtk_file_read(path, DTK_FILE_MAX_CONFIG, &req->config_yaml, &req->config_yaml_len, err,
			  sizeof(err)) != 0) {
		snprintf(errstr, errstr_size, "%s", err);
		return -1;
	}
	if (collect_profiles(cfg, o->profiles_path, req->profiles, errstr, errstr_size) != 0)
		return -1;
	for (size_t i = 0; i < cfg->ntags; i++) {
		dtk_value *t = dtk_value_str(cfg->tags[i]);
		if (!t || dtk_value_list_push(req->tags, t) != 0) {
			dtk_value_free(&t);
			goto nomem;
		}
	}
	req->execution_time =
		o->no_align ? o->requested_time : dtk_config_align(cfg, o->requested_time);
	req->dispatched_at_ms = o->dispatched_at_ms;
	req->deadline_ms = o->dispatched_at_ms + cfg->schedule.timeout * 1000;
	req->attempt = 0;
	req->store = o->store;
	req->alerts = o->alerts;
	if (o->reply_to && !(req->reply_to = strdup(o->reply_to)))
		goto nomem;
	return 0;
nomem:
	snprintf(errstr, errstr_size, "out of memory");
	return -1;
}
