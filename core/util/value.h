/* A dynamically typed value tree: what YAML and JSON documents load into
 * and what templates evaluate over.
 *
 * Ownership: a dtk_value owns its children. Containers take ownership of
 * the values appended to them. dtk_value_free(&v) frees a whole tree and
 * NULLs the caller's pointer. Not thread-safe for mutation; a tree that is
 * no longer mutated may be read from several threads. */
#ifndef DTK_UTIL_VALUE_H
#define DTK_UTIL_VALUE_H

#include <stddef.h>
#include <stdint.h>

typedef enum dtk_vtype {
	DTK_V_NULL,
	DTK_V_BOOL,
	DTK_V_INT,
	DTK_V_FLOAT,
	DTK_V_STR,
	DTK_V_LIST,
	DTK_V_MAP,
	DTK_V_DATE,	/* a calendar date: u.dt.secs is its midnight, UTC */
	DTK_V_DATETIME, /* u.dt: wall-clock seconds as written, plus zone */
} dtk_vtype;

typedef struct dtk_value dtk_value;

typedef struct dtk_kv {
	dtk_value *key;
	dtk_value *val;
} dtk_kv;

struct dtk_value {
	dtk_vtype type;
	unsigned line, col; /* 1-based source position; 0 when not from a file */
	unsigned plain : 1; /* an unquoted YAML scalar: env substitution re-types it */
	union {
		int b;
		int64_t i;
		double f;
		struct {
			/* NUL-terminated; may also hold embedded NULs. Often in the
			 * value's own allocation: never free or replace it but
			 * through dtk_value_str_take */
			char *s;
			size_t len;
		} str;
		struct {
			dtk_value **items;
			size_t n, cap;
		} list;
		struct {
			dtk_kv *items;
			size_t n, cap;
		} map;
		struct {
			int64_t secs; /* seconds since the epoch of the wall-clock time */
			int32_t usec;
			int16_t tz_min; /* offset east of UTC, minutes, when has_tz */
			unsigned has_tz : 1;
		} dt;
	} u;
};

/* Constructors return a new value owned by the caller, or NULL when out of
 * memory. */
dtk_value *dtk_value_null(void);
dtk_value *dtk_value_bool(int b);
dtk_value *dtk_value_int(int64_t i);
dtk_value *dtk_value_float(double f);
dtk_value *dtk_value_str(const char *s);
dtk_value *dtk_value_strn(const char *s, size_t len);
/* Replaces the text of string v with s (malloc'd, taken; NUL-terminated
 * at len), freeing the old text. The only way to change a string's text in
 * place: it may share its value's allocation. */
void dtk_value_str_take(dtk_value *v, char *s, size_t len);
dtk_value *dtk_value_list(void);
dtk_value *dtk_value_map(void);
dtk_value *dtk_value_datetime(int64_t secs, int32_t usec);

/* Appends; takes ownership of item on success (returns 0), leaves it with the
 * caller on failure (-1). */
int dtk_value_list_push(dtk_value *list, dtk_value *item);

/* Sets key (a string key) to val, replacing an existing equal key, whose old
 * value is freed. Takes ownership of val on success (0); on failure (-1) val
 * stays with the caller. */
int dtk_value_map_set(dtk_value *map, const char *key, dtk_value *val);

/* Appends a pair whose key the caller knows is absent (no lookup); takes
 * both on success (0), leaves them with the caller on failure (-1). */
int dtk_value_map_push(dtk_value *map, dtk_value *key, dtk_value *val);

/* As dtk_value_map_set with any value as key; takes both on success. */
int dtk_value_map_set_v(dtk_value *map, dtk_value *key, dtk_value *val);

/* Shorthands that build result objects: set key to a new string (NULL
 * gives null), a float (NAN gives null), an integer, a boolean. Return 0
 * or -1 when out of memory. */
int dtk_value_map_set_str(dtk_value *map, const char *key, const char *s);
int dtk_value_map_set_num(dtk_value *map, const char *key, double f);
int dtk_value_map_set_int(dtk_value *map, const char *key, int64_t i);
int dtk_value_map_set_bool(dtk_value *map, const char *key, int b);

/* Borrowed lookup of a string key; NULL when absent or map is not a map. */
dtk_value *dtk_value_map_get(const dtk_value *map, const char *key);

/* Borrowed lookup along a dotted path of string keys ("schedule.interval"). */
dtk_value *dtk_value_path(const dtk_value *root, const char *dotted);

/* Removes and frees key from map; returns 1 when it was there. */
int dtk_value_map_del(dtk_value *map, const char *key);

/* A deep copy owned by the caller, or NULL when out of memory. */
dtk_value *dtk_value_copy(const dtk_value *v);

/* Frees the tree and sets *v to NULL. */
void dtk_value_free(dtk_value **v);

/* Python's == between two values: 1 == 1.0 == True, str by bytes,
 * containers element-wise. */
int dtk_value_equal(const dtk_value *a, const dtk_value *b);

/* Numeric view: 1 and *out set for bool, int and float; 0 otherwise. */
int dtk_value_number(const dtk_value *v, double *out);

/* Python truthiness. */
int dtk_value_truthy(const dtk_value *v);

/* The type's name as Python spells it ("NoneType", "int", "str", ...). */
const char *dtk_value_type_name(const dtk_value *v);

/* The string when v is a string, else NULL. Borrowed. */
const char *dtk_value_cstr(const dtk_value *v);

#endif
