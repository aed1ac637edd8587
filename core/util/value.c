#include "util/value.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static dtk_value *value_new(dtk_vtype type)
{
	dtk_value *v = calloc(1, sizeof(*v));
	if (v)
		v->type = type;
	return v;
}

dtk_value *dtk_value_null(void)
{
	return value_new(DTK_V_NULL);
}

dtk_value *dtk_value_bool(int b)
{
	dtk_value *v = value_new(DTK_V_BOOL);
	if (v)
		v->u.b = b ? 1 : 0;
	return v;
}

dtk_value *dtk_value_int(int64_t i)
{
	dtk_value *v = value_new(DTK_V_INT);
	if (v)
		v->u.i = i;
	return v;
}

dtk_value *dtk_value_float(double f)
{
	dtk_value *v = value_new(DTK_V_FLOAT);
	if (v)
		v->u.f = f;
	return v;
}

/* A string's text lives in the same allocation as its value, right after
 * it: one malloc and one free per string instead of two (trees of parsed
 * requests and results are mostly strings). */
static char *inline_text(const dtk_value *v)
{
	return (char *)(v + 1);
}

dtk_value *dtk_value_strn(const char *s, size_t len)
{
	if (len > SIZE_MAX - sizeof(dtk_value) - 1)
		return NULL;
	dtk_value *v = malloc(sizeof(*v) + len + 1);
	if (!v)
		return NULL;
	memset(v, 0, sizeof(*v));
	v->type = DTK_V_STR;
	v->u.str.s = inline_text(v);
	if (len)
		memcpy(v->u.str.s, s, len);
	v->u.str.s[len] = '\0';
	v->u.str.len = len;
	return v;
}

void dtk_value_str_take(dtk_value *v, char *s, size_t len)
{
	if (v->u.str.s != inline_text(v))
		free(v->u.str.s);
	v->u.str.s = s;
	v->u.str.len = len;
}

dtk_value *dtk_value_str(const char *s)
{
	return dtk_value_strn(s, strlen(s));
}

dtk_value *dtk_value_list(void)
{
	return value_new(DTK_V_LIST);
}

dtk_value *dtk_value_map(void)
{
	return value_new(DTK_V_MAP);
}

dtk_value *dtk_value_datetime(int64_t secs, int32_t usec)
{
	dtk_value *v = value_new(DTK_V_DATETIME);
	if (v) {
		v->u.dt.secs = secs;
		v->u.dt.usec = usec;
	}
	return v;
}

int dtk_value_list_push(dtk_value *list, dtk_value *item)
{
	if (!list || list->type != DTK_V_LIST || !item)
		return -1;
	if (list->u.list.n == list->u.list.cap) {
		size_t cap = list->u.list.cap ? list->u.list.cap * 2 : 4;
		dtk_value **items = realloc(list->u.list.items, cap * sizeof(*items));
		if (!items)
			return -1;
		list->u.list.items = items;
		list->u.list.cap = cap;
	}
	list->u.list.items[list->u.list.n++] = item;
	return 0;
}

static dtk_kv *map_find(const dtk_value *map, const dtk_value *key)
{
	if (key->type == DTK_V_STR) {
		/* string keys, nearly all of them, compared here without a call */
		size_t len = key->u.str.len;
		for (size_t i = 0; i < map->u.map.n; i++) {
			const dtk_value *k = map->u.map.items[i].key;
			if (k->type == DTK_V_STR && k->u.str.len == len &&
			    memcmp(k->u.str.s, key->u.str.s, len) == 0)
				return &map->u.map.items[i];
		}
		return NULL;
	}
	for (size_t i = 0; i < map->u.map.n; i++) {
		const dtk_value *k = map->u.map.items[i].key;
		if (k->type == key->type && dtk_value_equal(k, key))
			return &map->u.map.items[i];
	}
	return NULL;
}

int dtk_value_map_set_v(dtk_value *map, dtk_value *key, dtk_value *val)
{
	if (!map || map->type != DTK_V_MAP || !key || !val)
		return -1;
	dtk_kv *kv = map_find(map, key);
	if (kv) {
		dtk_value_free(&kv->val);
		kv->val = val;
		dtk_value_free(&key);
		return 0;
	}
	return dtk_value_map_push(map, key, val);
}

int dtk_value_map_push(dtk_value *map, dtk_value *key, dtk_value *val)
{
	if (!map || map->type != DTK_V_MAP || !key || !val)
		return -1;
	if (map->u.map.n == map->u.map.cap) {
		size_t cap = map->u.map.cap ? map->u.map.cap * 2 : 4;
		dtk_kv *items = realloc(map->u.map.items, cap * sizeof(*items));
		if (!items)
			return -1;
		map->u.map.items = items;
		map->u.map.cap = cap;
	}
	map->u.map.items[map->u.map.n].key = key;
	map->u.map.items[map->u.map.n].val = val;
	map->u.map.n++;
	return 0;
}

int dtk_value_map_set(dtk_value *map, const char *key, dtk_value *val)
{
	dtk_value *k = dtk_value_str(key);
	if (!k)
		return -1;
	if (dtk_value_map_set_v(map, k, val) != 0) {
		dtk_value_free(&k);
		return -1;
	}
	return 0;
}

static int map_set_new(dtk_value *map, const char *key, dtk_value *v)
{
	if (!v || dtk_value_map_set(map, key, v) != 0) {
		dtk_value_free(&v);
		return -1;
	}
	return 0;
}

int dtk_value_map_set_str(dtk_value *map, const char *key, const char *s)
{
	return map_set_new(map, key, s ? dtk_value_str(s) : dtk_value_null());
}

int dtk_value_map_set_num(dtk_value *map, const char *key, double f)
{
	return map_set_new(map, key, isnan(f) ? dtk_value_null() : dtk_value_float(f));
}

int dtk_value_map_set_int(dtk_value *map, const char *key, int64_t i)
{
	return map_set_new(map, key, dtk_value_int(i));
}

int dtk_value_map_set_bool(dtk_value *map, const char *key, int b)
{
	return map_set_new(map, key, dtk_value_bool(b));
}

dtk_value *dtk_value_map_get(const dtk_value *map, const char *key)
{
	if (!map || map->type != DTK_V_MAP)
		return NULL;
	size_t len = strlen(key);
	for (size_t i = 0; i < map->u.map.n; i++) {
		const dtk_value *k = map->u.map.items[i].key;
		if (k->type == DTK_V_STR && k->u.str.len == len &&
		    memcmp(k->u.str.s, key, len) == 0)
			return map->u.map.items[i].val;
	}
	return NULL;
}

dtk_value *dtk_value_path(const dtk_value *root, const char *dotted)
{
	char part[256];
	const dtk_value *cur = root;
	const char *p = dotted;
	while (cur && *p) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		if (n >= sizeof(part))
			return NULL;
		memcpy(part, p, n);
		part[n] = '\0';
		cur = dtk_value_map_get(cur, part);
		p += n + (dot ? 1 : 0);
	}
	return (dtk_value *)cur;
}

int dtk_value_map_del(dtk_value *map, const char *key)
{
	if (!map || map->type != DTK_V_MAP)
		return 0;
	size_t len = strlen(key);
	for (size_t i = 0; i < map->u.map.n; i++) {
		dtk_value *k = map->u.map.items[i].key;
		if (k->type == DTK_V_STR && k->u.str.len == len &&
		    memcmp(k->u.str.s, key, len) == 0) {
			dtk_value_free(&map->u.map.items[i].key);
			dtk_value_free(&map->u.map.items[i].val);
			memmove(&map->u.map.items[i], &map->u.map.items[i + 1],
				(map->u.map.n - i - 1) * sizeof(dtk_kv));
			map->u.map.n--;
			return 1;
		}
	}
	return 0;
}

dtk_value *dtk_value_copy(const dtk_value *v)
{
	if (!v)
		return NULL;
	dtk_value *c = NULL;
	switch (v->type) {
	case DTK_V_STR:
		c = dtk_value_strn(v->u.str.s, v->u.str.len);
		break;
	case DTK_V_LIST:
		c = dtk_value_list();
		for (size_t i = 0; c && i < v->u.list.n; i++) {
			dtk_value *item = dtk_value_copy(v->u.list.items[i]);
			if (!item || dtk_value_list_push(c, item) != 0) {
				dtk_value_free(&item);
				dtk_value_free(&c);
			}
		}
		break;
	case DTK_V_MAP:
		c = dtk_value_map();
		for (size_t i = 0; c && i < v->u.map.n; i++) {
			dtk_value *k = dtk_value_copy(v->u.map.items[i].key);
			dtk_value *val = dtk_value_copy(v->u.map.items[i].val);
			if (!k || !val || dtk_value_map_set_v(c, k, val) != 0) {
				dtk_value_free(&k);
				dtk_value_free(&val);
				dtk_value_free(&c);
			}
		}
		break;
	default:
		c = value_new(v->type);
		if (c)
			c->u = v->u;
		break;
	}
	if (c) {
		c->line = v->line;
		c->col = v->col;
		c->plain = v->plain;
	}
	return c;
}

void dtk_value_free(dtk_value **pv)
{
	if (!pv || !*pv)
		return;
	dtk_value *v = *pv;
	switch (v->type) {
	case DTK_V_STR:
		if (v->u.str.s != inline_text(v))
			free(v->u.str.s);
		break;
	case DTK_V_LIST:
		for (size_t i = 0; i < v->u.list.n; i++)
			dtk_value_free(&v->u.list.items[i]);
		free(v->u.list.items);
		break;
	case DTK_V_MAP:
		for (size_t i = 0; i < v->u.map.n; i++) {
			dtk_value_free(&v->u.map.items[i].key);
			dtk_value_free(&v->u.map.items[i].val);
		}
		free(v->u.map.items);
		break;
	default:
		break;
	}
	free(v);
	*pv = NULL;
}

int dtk_value_number(const dtk_value *v, double *out)
{
	if (!v)
		return 0;
	switch (v->type) {
	case DTK_V_BOOL:
		*out = v->u.b;
		return 1;
	case DTK_V_INT:
		*out = (double)v->u.i;
		return 1;
	case DTK_V_FLOAT:
		*out = v->u.f;
		return 1;
	default:
		return 0;
	}
}

/* Python's int == float: exact, so 2**53 + 1 != 2.0**53. */
static int int_equals_float(int64_t i, double f)
{
	if (!isfinite(f) || f != floor(f) || f < -9223372036854775808.0 ||
	    f >= 9223372036854775808.0)
		return 0;
	return (int64_t)f == i;
}

static int64_t int_of(const dtk_value *v)
{
	return v->type == DTK_V_BOOL ? v->u.b : v->u.i;
}

int dtk_value_equal(const dtk_value *a, const dtk_value *b)
{
	if (!a || !b)
		return a == b;
	int an = a->type == DTK_V_BOOL || a->type == DTK_V_INT || a->type == DTK_V_FLOAT;
	int bn = b->type == DTK_V_BOOL || b->type == DTK_V_INT || b->type == DTK_V_FLOAT;
	if (an && bn) {
		if (a->type == DTK_V_FLOAT && b->type == DTK_V_FLOAT)
			return a->u.f == b->u.f;
		if (a->type == DTK_V_FLOAT)
			return int_equals_float(int_of(b), a->u.f);
		if (b->type == DTK_V_FLOAT)
			return int_equals_float(int_of(a), b->u.f);
		return int_of(a) == int_of(b);
	}
	if (a->type != b->type)
		return 0;
	switch (a->type) {
	case DTK_V_NULL:
		return 1;
	case DTK_V_STR:
		return a->u.str.len == b->u.str.len &&
		       memcmp(a->u.str.s, b->u.str.s, a->u.str.len) == 0;
	case DTK_V_LIST:
		if (a->u.list.n != b->u.list.n)
			return 0;
		for (size_t i = 0; i < a->u.list.n; i++)
			if (!dtk_value_equal(a->u.list.items[i], b->u.list.items[i]))
				return 0;
		return 1;
	case DTK_V_MAP:
		if (a->u.map.n != b->u.map.n)
			return 0;
		for (size_t i = 0; i < a->u.map.n; i++) {
			size_t j = 0;
			while (j < b->u.map.n &&
			       !dtk_value_equal(a->u.map.items[i].key, b->u.map.items[j].key))
				j++;
			if (j == b->u.map.n ||
			    !dtk_value_equal(a->u.map.items[i].val, b->u.map.items[j].val))
				return 0;
		}
		return 1;
	case DTK_V_DATE:
		return a->u.dt.secs == b->u.dt.secs;
	case DTK_V_DATETIME:
		/* naive never equals aware; aware ones compare as instants */
		if (a->u.dt.has_tz != b->u.dt.has_tz || a->u.dt.usec != b->u.dt.usec)
			return 0;
		return a->u.dt.secs - 60 * (int64_t)(a->u.dt.has_tz ? a->u.dt.tz_min : 0) ==
		       b->u.dt.secs - 60 * (int64_t)(b->u.dt.has_tz ? b->u.dt.tz_min : 0);
	default:
		return 0;
	}
}

int dtk_value_truthy(const dtk_value *v)
{
	if (!v)
		return 0;
	switch (v->type) {
	case DTK_V_NULL:
		return 0;
	case DTK_V_BOOL:
		return v->u.b;
	case DTK_V_INT:
		return v->u.i != 0;
	case DTK_V_FLOAT:
		return v->u.f != 0.0;
	case DTK_V_STR:
		return v->u.str.len != 0;
	case DTK_V_LIST:
		return v->u.list.n != 0;
	case DTK_V_MAP:
		return v->u.map.n != 0;
	default:
		return 1;
	}
}

const char *dtk_value_type_name(const dtk_value *v)
{
	static const char *const names[] = {
	    [DTK_V_NULL] = "NoneType", [DTK_V_BOOL] = "bool", [DTK_V_INT] = "int",
	    [DTK_V_FLOAT] = "float",   [DTK_V_STR] = "str",   [DTK_V_LIST] = "list",
	    [DTK_V_MAP] = "dict",      [DTK_V_DATE] = "date", [DTK_V_DATETIME] = "datetime",
	};
	return v ? names[v->type] : "NoneType";
}

const char *dtk_value_cstr(const dtk_value *v)
{
	return v && v->type == DTK_V_STR ? v->u.str.s : NULL;
}
