/* Detector ids as DetectK derives them (detection.md "Detector ids"). */
#include <stdio.h>
#include <string.h>

#include "detect/detector.h"
#include "util/buf.h"
#include "util/hash.h"
#include "util/json.h"

int dtk_detector_id(const char *type, const dtk_value *params, char out[9])
{
	int rc = -1;
	const dtk_detector_type *dt = dtk_detector_find(type);
	dtk_value *defaults = NULL, *kept = NULL;
	dtk_buf b;
	char err[128];

	dtk_buf_init(&b, 0);
	out[0] = '\0';
	if (!dt)
		goto out;
	if (dt->id_defaults_json) {
		defaults = dtk_json_parse(dt->id_defaults_json, strlen(dt->id_defaults_json), err,
					  sizeof(err));
		if (!defaults)
			goto out;
	}
	if (params && params->type == DTK_V_MAP) {
		if (!(kept = dtk_value_map()))
			goto out;
		for (size_t i = 0; i < params->u.map.n; i++) {
			const dtk_kv *kv = &params->u.map.items[i];
			const char *key = dtk_value_cstr(kv->key);
			const dtk_value *def = key ? dtk_value_map_get(defaults, key) : NULL;
			if (def && dtk_value_equal(kv->val, def))
				continue;
			dtk_value *k = dtk_value_copy(kv->key), *v = dtk_value_copy(kv->val);
			if (!k || !v || dtk_value_map_set_v(kept, k, v) != 0) {
				dtk_value_free(&k);
				dtk_value_free(&v);
				goto out;
			}
		}
	}
	dtk_buf_adds(&b, type);
	dtk_buf_addc(&b, ':');
	if (kept)
		dtk_json_emit(&b, kept, DTK_JSON_SORT_KEYS | DTK_JSON_PY_SEPARATORS | DTK_JSON_RAW_UTF8);
	else if (params && params->type != DTK_V_NULL)
		dtk_json_emit(&b, params, DTK_JSON_SORT_KEYS | DTK_JSON_PY_SEPARATORS | DTK_JSON_RAW_UTF8);
	else
		dtk_buf_adds(&b, "{}");
	if (b.failed)
		goto out;
	char hex[65];
	if (dtk_sha256_hex(b.data, b.len, hex) != 0)
		goto out;
	snprintf(out, 9, "%.8s", hex);
	rc = 0;
out:
	dtk_value_free(&defaults);
	dtk_value_free(&kept);
	dtk_buf_free(&b);
	return rc;
}
