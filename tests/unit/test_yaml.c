/* config/yaml: PyYAML safe_load typing on top of libyaml. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/yaml.h"
#include "util/buf.h"
#include "util/pyfmt.h"
#include "util/value.h"

static dtk_value *load(const char *text)
{
	char err[512];
	dtk_value *v = dtk_yaml_load(text, strlen(text), "t.yaml", NULL, err, sizeof(err));
	if (!v)
		fail_msg("unexpected load error: %s", err);
	return v;
}

/* Loads text that must fail and returns the message (static storage). */
static const char *load_error(const char *text)
{
	static char err[512];
	dtk_value *v = dtk_yaml_load(text, strlen(text), "t.yaml", NULL, err, sizeof(err));
	if (v) {
		dtk_value_free(&v);
		fail_msg("expected an error for: %s", text);
	}
	return err;
}

/* The single value of the one-key document "v: <scalar>". */
static dtk_value *scalar(const char *yaml_scalar, dtk_value **doc)
{
	char text[256];
	snprintf(text, sizeof(text), "v: %s\n", yaml_scalar);
	*doc = load(text);
	dtk_value *v = dtk_value_map_get(*doc, "v");
	assert_non_null(v);
	return v;
}

static void check_bool(const char *s, int want)
{
	dtk_value *doc;
	dtk_value *v = scalar(s, &doc);
	assert_int_equal(v->type, DTK_V_BOOL);
	assert_int_equal(v->u.b, want);
	dtk_value_free(&doc);
}

static void check_int(const char *s, int64_t want)
{
	dtk_value *doc;
	dtk_value *v = scalar(s, &doc);
	if (v->type != DTK_V_INT)
		fail_msg("%s: type %s, want int", s, dtk_value_type_name(v));
	assert_true(v->u.i == want);
	dtk_value_free(&doc);
}

static void check_float(const char *s, const char *repr)
{
	char out[64];
	dtk_value *doc;
	dtk_value *v = scalar(s, &doc);
	if (v->type != DTK_V_FLOAT)
		fail_msg("%s: type %s, want float", s, dtk_value_type_name(v));
	dtk_pyfmt_float(v->u.f, out, sizeof(out));
	assert_string_equal(out, repr);
	dtk_value_free(&doc);
}

static void check_str(const char *s, const char *want)
{
	dtk_value *doc;
	dtk_value *v = scalar(s, &doc);
	if (v->type != DTK_V_STR)
		fail_msg("%s: type %s, want str", s, dtk_value_type_name(v));
	assert_string_equal(v->u.str.s, want);
	dtk_value_free(&doc);
}

static void check_null(const char *s)
{
	dtk_value *doc;
	dtk_value *v = scalar(s, &doc);
	assert_int_equal(v->type, DTK_V_NULL);
	dtk_value_free(&doc);
}

static void test_yaml_yes_and_on_are_booleans(void **state)
{
	check_bool("yes", 1);
	check_bool("Yes", 1);
	check_bool("YES", 1);
	check_bool("on", 1);
	check_bool("On", 1);
	check_bool("ON", 1);
	check_bool("true", 1);
	check_bool("True", 1);
	check_bool("no", 0);
	check_bool("NO", 0);
	check_bool("off", 0);
	check_bool("Off", 0);
	check_bool("FALSE", 0);
}

static void test_yaml_y_n_and_odd_case_booleans_stay_strings(void **state)
{
	check_str("y", "y");
	check_str("n", "n");
	check_str("Y", "Y");
	check_str("yEs", "yEs");
	check_str("tRUE", "tRUE");
}

static void test_yaml_leading_zero_is_octal_and_0o_is_a_string(void **state)
{
	check_int("0777", 511);
	check_int("-0777", -511);
	check_str("0o777", "0o777");
	check_str("08", "08");
	check_int("0", 0);
	check_int("-0", 0);
}

static void test_yaml_binary_hex_underscores_and_signs_are_ints(void **state)
{
	check_int("0b1010", 10);
	check_int("-0b1010", -10);
	check_int("0x1F", 31);
	check_int("-0xAb", -171);
	check_int("1_000", 1000);
	check_int("+12", 12);
	check_str("0X1F", "0X1F");
}

static void test_yaml_int64_limits_load_and_beyond_is_an_error(void **state)
{
	check_int("9223372036854775807", INT64_MAX);
	check_int("-9223372036854775808", INT64_MIN);
	const char *err = load_error("v: 9223372036854775808\n");
	assert_non_null(strstr(err, "does not fit in 64 bits"));
	assert_non_null(strstr(err, "t.yaml:1:4:"));
}

static void test_yaml_float_needs_a_dot_so_1e3_is_a_string(void **state)
{
	check_str("1e3", "1e3");
	check_str("1.0e3", "1.0e3"); /* the exponent needs a sign too */
	check_float("1.0e+3", "1000.0");
	check_float("1.0E-3", "0.001");
	check_float("1.", "1.0");
	check_float(".5", "0.5");
	check_str("-.5", "-.5");
	check_float("1_000.5", "1000.5");
}

static void test_yaml_int_and_float_stay_distinct(void **state)
{
	dtk_value *doc = load("a: 1000\nb: 1000.0\n");
	assert_int_equal(dtk_value_map_get(doc, "a")->type, DTK_V_INT);
	assert_int_equal(dtk_value_map_get(doc, "b")->type, DTK_V_FLOAT);
	dtk_value_free(&doc);
}

static void test_yaml_inf_and_nan_spellings(void **state)
{
	check_float(".inf", "inf");
	check_float(".Inf", "inf");
	check_float("-.inf", "-inf");
	check_float("+.INF", "inf");
	check_float(".nan", "nan");
	check_float(".NaN", "nan");
	check_str("-.nan", "-.nan");
	check_str("inf", "inf");
	check_str(".iNF", ".iNF");
}

static void test_yaml_sexagesimal_ints_and_floats(void **state)
{
	check_int("190:20:30", 685230);
	check_int("-1:30", -90);
	check_int("1_0:30", 630);
	check_str("0:30", "0:30");
	check_str("1:70", "1:70");
	check_float("190:20:30.15", "685230.15");
	check_float("0:30.5", "30.5");
}

static void test_yaml_null_spellings_and_empty_values_are_null(void **state)
{
	check_null("~");
	check_null("null");
	check_null("Null");
	check_null("NULL");
	check_null("");
	check_str("nULL", "nULL");
	dtk_value *doc = load("a:\nb: ~\n");
	assert_int_equal(dtk_value_map_get(doc, "a")->type, DTK_V_NULL);
	dtk_value_free(&doc);
}

static void test_yaml_quoted_scalars_are_strings_and_not_plain(void **state)
{
	dtk_value *doc = load("a: '123'\nb: \"yes\"\nc: 123\nd: |\n  7\ne: word\n");
	dtk_value *a = dtk_value_map_get(doc, "a");
	dtk_value *b = dtk_value_map_get(doc, "b");
	dtk_value *c = dtk_value_map_get(doc, "c");
	dtk_value *d = dtk_value_map_get(doc, "d");
	dtk_value *e = dtk_value_map_get(doc, "e");
	assert_int_equal(a->type, DTK_V_STR);
	assert_string_equal(a->u.str.s, "123");
	assert_false(a->plain);
	assert_int_equal(b->type, DTK_V_STR);
	assert_false(b->plain);
	assert_int_equal(c->type, DTK_V_INT);
	assert_true(c->plain);
	assert_int_equal(d->type, DTK_V_STR);
	assert_string_equal(d->u.str.s, "7\n");
	assert_false(d->plain);
	assert_true(e->plain);
	dtk_value_free(&doc);
}

static void test_yaml_date_is_date_and_timestamp_is_datetime(void **state)
{
	dtk_value *doc = load("d: 2001-12-14\n"
			      "naive: 2001-12-14 21:59:43.10\n"
			      "aware: 2001-12-14t21:59:43.10-05:00\n"
			      "utc: 2001-12-15T02:59:43Z\n"
			      "long: 2001-12-14T21:59:43.1234567 +1\n"
			      "short: 2001-1-5\n");
	dtk_value *d = dtk_value_map_get(doc, "d");
	assert_int_equal(d->type, DTK_V_DATE);
	assert_true(d->u.dt.secs == dtk_pyfmt_days(2001, 12, 14) * 86400);

	dtk_value *naive = dtk_value_map_get(doc, "naive");
	assert_int_equal(naive->type, DTK_V_DATETIME);
	assert_false(naive->u.dt.has_tz);
	assert_int_equal(naive->u.dt.usec, 100000);
	assert_true(naive->u.dt.secs == dtk_pyfmt_days(2001, 12, 14) * 86400 + 21 * 3600 +
						59 * 60 + 43);

	dtk_value *aware = dtk_value_map_get(doc, "aware");
	assert_true(aware->u.dt.has_tz);
	assert_int_equal(aware->u.dt.tz_min, -300);
	/* wall clock as written, not shifted to UTC */
	assert_true(aware->u.dt.secs == naive->u.dt.secs);

	dtk_value *utc = dtk_value_map_get(doc, "utc");
	assert_true(utc->u.dt.has_tz);
	assert_int_equal(utc->u.dt.tz_min, 0);

	dtk_value *lng = dtk_value_map_get(doc, "long");
	assert_int_equal(lng->u.dt.usec, 123456); /* truncated, not rounded */
	assert_int_equal(lng->u.dt.tz_min, 60);

	/* a date alone needs two-digit month and day */
	assert_int_equal(dtk_value_map_get(doc, "short")->type, DTK_V_STR);
	dtk_value_free(&doc);
}

static void test_yaml_impossible_date_is_an_error(void **state)
{
	assert_non_null(strstr(load_error("v: 2001-02-30\n"), "out of range"));
	assert_non_null(strstr(load_error("v: 2001-12-14 12:00:00 +24:00\n"), "24 hours"));
	assert_non_null(strstr(load_error("v: 0000-01-01\n"), "out of range"));
}

static void test_yaml_merge_key_explicit_keys_win(void **state)
{
	dtk_value *doc = load("base: &b {a: 1, b: 2}\nchild:\n  <<: *b\n  b: 3\n  c: 4\n");
	dtk_value *child = dtk_value_map_get(doc, "child");
	assert_int_equal(child->u.map.n, 3);
	assert_string_equal(child->u.map.items[0].key->u.str.s, "a");
	assert_string_equal(child->u.map.items[1].key->u.str.s, "b");
	assert_string_equal(child->u.map.items[2].key->u.str.s, "c");
	assert_int_equal(dtk_value_map_get(child, "a")->u.i, 1);
	assert_int_equal(dtk_value_map_get(child, "b")->u.i, 3);
	assert_null(dtk_value_map_get(child, "<<"));
	dtk_value_free(&doc);
}

static void test_yaml_merge_list_earlier_maps_win(void **state)
{
	dtk_value *doc = load("A: &A {x: 1, y: 2}\nB: &B {y: 3, z: 4}\nC:\n  <<: [*A, *B]\n");
	dtk_value *c = dtk_value_map_get(doc, "C");
	assert_int_equal(dtk_value_map_get(c, "y")->u.i, 2);
	/* PyYAML inserts the later mapping's keys first */
	assert_string_equal(c->u.map.items[0].key->u.str.s, "y");
	assert_string_equal(c->u.map.items[1].key->u.str.s, "z");
	assert_string_equal(c->u.map.items[2].key->u.str.s, "x");
	dtk_value_free(&doc);
}

static void test_yaml_merge_of_a_scalar_is_an_error(void **state)
{
	const char *err = load_error("a: &a 1\nb:\n  <<: *a\n");
	assert_non_null(strstr(err, "expected a mapping or list of mappings for merging"));
}

static void test_yaml_alias_is_a_deep_copy(void **state)
{
	dtk_value *doc = load("x: &d {k: [1, 2]}\ny: *d\n");
	dtk_value *x = dtk_value_map_get(doc, "x");
	dtk_value *y = dtk_value_map_get(doc, "y");
	assert_true(x != y);
	assert_true(dtk_value_equal(x, y));
	assert_true(dtk_value_map_get(x, "k") != dtk_value_map_get(y, "k"));
	dtk_value_free(&doc);
}

static void test_yaml_duplicate_key_last_wins_and_warns(void **state)
{
	char err[256];
	const char *text = "a: 1\nb: 2\na: 3\n";
	dtk_value *warnings = dtk_value_list();
	dtk_value *doc = dtk_yaml_load(text, strlen(text), "t.yaml", warnings, err, sizeof(err));
	assert_non_null(doc);
	assert_int_equal(doc->u.map.n, 2);
	assert_string_equal(doc->u.map.items[0].key->u.str.s, "a");
	assert_int_equal(dtk_value_map_get(doc, "a")->u.i, 3);
	assert_int_equal(warnings->u.list.n, 1);
	assert_string_equal(dtk_value_cstr(warnings->u.list.items[0]), "line 3: duplicate key 'a'");
	dtk_value_free(&doc);
	dtk_value_free(&warnings);
}

static void test_yaml_duplicate_in_merged_map_warns_once(void **state)
{
	char err[256];
	const char *text = "base: &b {inner: {k: 1, k: 2}}\nx: {<<: *b}\ny: {<<: *b}\n";
	dtk_value *warnings = dtk_value_list();
	dtk_value *doc = dtk_yaml_load(text, strlen(text), NULL, warnings, err, sizeof(err));
	assert_non_null(doc);
	assert_int_equal(warnings->u.list.n, 1);
	assert_string_equal(dtk_value_cstr(warnings->u.list.items[0]), "line 1: duplicate key 'k'");
	dtk_value_free(&doc);
	dtk_value_free(&warnings);
}

static void test_yaml_merged_key_overridden_is_not_a_duplicate(void **state)
{
	char err[256];
	const char *text = "a: &a {x: 1}\nb:\n  <<: *a\n  x: 2\n";
	dtk_value *warnings = dtk_value_list();
	dtk_value *doc = dtk_yaml_load(text, strlen(text), NULL, warnings, err, sizeof(err));
	assert_non_null(doc);
	assert_int_equal(warnings->u.list.n, 0);
	dtk_value_free(&doc);
	dtk_value_free(&warnings);
}

static void test_yaml_keys_keep_their_yaml_types(void **state)
{
	dtk_value *doc = load("no: 1\n1: a\n~: n\n1.5: f\n'2': s\n");
	assert_int_equal(doc->u.map.n, 5);
	assert_int_equal(doc->u.map.items[0].key->type, DTK_V_BOOL);
	assert_int_equal(doc->u.map.items[1].key->type, DTK_V_INT);
	assert_int_equal(doc->u.map.items[2].key->type, DTK_V_NULL);
	assert_int_equal(doc->u.map.items[3].key->type, DTK_V_FLOAT);
	assert_int_equal(doc->u.map.items[4].key->type, DTK_V_STR);
	dtk_value_free(&doc);
}

static void test_yaml_equal_keys_of_different_types_collide_as_in_python(void **state)
{
	dtk_value *doc = load("{1: a, 1.0: b, yes: c}\n");
	assert_int_equal(doc->u.map.n, 1);
	assert_int_equal(doc->u.map.items[0].key->type, DTK_V_INT); /* first key kept */
	assert_string_equal(doc->u.map.items[0].val->u.str.s, "c");
	dtk_value_free(&doc);
}

static void test_yaml_list_key_is_unhashable(void **state)
{
	assert_non_null(strstr(load_error("? [a]\n: 1\n"), "unhashable key"));
}

static void test_yaml_explicit_tags_override_resolution(void **state)
{
	dtk_value *doc = load("a: !!str 123\nb: !!int '42'\nc: !!float '3'\nd: !!bool 'on'\n"
			      "e: !!null x\nf: !!map {k: 1}\ng: !!seq [1]\nh: ! 12\n");
	assert_int_equal(dtk_value_map_get(doc, "a")->type, DTK_V_STR);
	assert_int_equal(dtk_value_map_get(doc, "b")->u.i, 42);
	assert_true(dtk_value_map_get(doc, "c")->u.f == 3.0);
	assert_int_equal(dtk_value_map_get(doc, "d")->u.b, 1);
	assert_int_equal(dtk_value_map_get(doc, "e")->type, DTK_V_NULL);
	assert_int_equal(dtk_value_map_get(doc, "f")->type, DTK_V_MAP);
	assert_int_equal(dtk_value_map_get(doc, "g")->type, DTK_V_LIST);
	assert_int_equal(dtk_value_map_get(doc, "h")->type, DTK_V_INT);
	dtk_value_free(&doc);
}

static void test_yaml_unknown_tag_is_an_error(void **state)
{
	const char *err = load_error("a: !custom 1\n");
	assert_non_null(strstr(err, "could not determine a constructor for the tag '!custom'"));
	assert_non_null(strstr(load_error("a: !!int abc\n"), "invalid integer 'abc'"));
	assert_non_null(strstr(load_error("a: !!seq {x: 1}\n"), "expected a sequence node"));
	assert_non_null(strstr(load_error("a: =\n"), "tag:yaml.org,2002:value"));
}

static void test_yaml_multiple_documents_are_an_error(void **state)
{
	const char *err = load_error("a: 1\n---\nb: 2\n");
	assert_non_null(strstr(err, "expected a single document"));
	assert_non_null(strstr(err, "t.yaml:2:1:"));
}

static void test_yaml_empty_or_comment_only_document_is_null(void **state)
{
	dtk_value *doc = load("");
	assert_int_equal(doc->type, DTK_V_NULL);
	dtk_value_free(&doc);
	doc = load("# only a comment\n");
	assert_int_equal(doc->type, DTK_V_NULL);
	dtk_value_free(&doc);
	doc = load("---\n");
	assert_int_equal(doc->type, DTK_V_NULL);
	dtk_value_free(&doc);
}

static void test_yaml_error_names_file_line_column(void **state)
{
	char err[512];
	const char *text = "a: 1\nb: [1, 2\n";
	dtk_value *v = dtk_yaml_load(text, strlen(text), "conf/m.yaml", NULL, err, sizeof(err));
	assert_null(v);
	assert_true(strncmp(err, "conf/m.yaml:3:1: ", 17) == 0);
	assert_non_null(strstr(err, "did not find expected ',' or ']'"));

	text = "a:\n  b: 1\n c: 2\n";
	v = dtk_yaml_load(text, strlen(text), NULL, NULL, err, sizeof(err));
	assert_null(v);
	assert_true(strncmp(err, "<string>:3:2: ", 14) == 0);
}

static void test_yaml_nodes_carry_line_and_column(void **state)
{
	dtk_value *doc = load("top:\n  list:\n    - x\n    - {k: v}\n");
	dtk_value *top = dtk_value_map_get(doc, "top");
	assert_int_equal(top->line, 2);
	assert_int_equal(top->col, 3);
	assert_int_equal(doc->u.map.items[0].key->line, 1);
	assert_int_equal(doc->u.map.items[0].key->col, 1);
	dtk_value *list = dtk_value_map_get(top, "list");
	assert_int_equal(list->u.list.items[0]->line, 3);
	assert_int_equal(list->u.list.items[0]->col, 7);
	dtk_value *flow = list->u.list.items[1];
	assert_int_equal(flow->line, 4);
	assert_int_equal(flow->col, 7);
	assert_int_equal(dtk_value_map_get(flow, "k")->col, 11);
	dtk_value_free(&doc);
}

static void test_yaml_nesting_deeper_than_limit_is_an_error(void **state)
{
	char text[1024];
	size_t n = 0;
	for (int i = 0; i < 300; i++)
		text[n++] = '[';
	for (int i = 0; i < 300; i++)
		text[n++] = ']';
	text[n] = '\0';
	assert_non_null(strstr(load_error(text), "nesting deeper than 200 levels"));

	/* exactly at the limit, with a scalar inside the innermost list */
	n = 0;
	for (int i = 0; i < 200; i++)
		text[n++] = '[';
	text[n++] = '1';
	for (int i = 0; i < 200; i++)
		text[n++] = ']';
	text[n] = '\0';
	dtk_value *doc = load(text);
	dtk_value_free(&doc);

	/* aliases cannot build what the parser would refuse */
	dtk_buf b;
	dtk_buf_init(&b, 0);
	dtk_buf_adds(&b, "a: &a ");
	for (int i = 0; i < 150; i++)
		dtk_buf_addc(&b, '[');
	for (int i = 0; i < 150; i++)
		dtk_buf_addc(&b, ']');
	dtk_buf_adds(&b, "\nb: ");
	for (int i = 0; i < 100; i++)
		dtk_buf_addc(&b, '[');
	dtk_buf_adds(&b, "*a");
	for (int i = 0; i < 100; i++)
		dtk_buf_addc(&b, ']');
	dtk_buf_addc(&b, '\n');
	assert_non_null(strstr(load_error(dtk_buf_str(&b)), "deeper than 200 levels through aliases"));
	dtk_buf_free(&b);
}

static void test_yaml_billion_laughs_is_refused(void **state)
{
	dtk_buf b;
	dtk_buf_init(&b, 0);
	dtk_buf_adds(&b, "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
	for (char c = 'b'; c <= 'i'; c++) {
		dtk_buf_printf(&b, "%c: &%c [", c, c);
		for (int i = 0; i < 10; i++)
			dtk_buf_printf(&b, "%s*%c", i ? ", " : "", c - 1);
		dtk_buf_adds(&b, "]\n");
	}
	const char *err = load_error(dtk_buf_str(&b));
	assert_non_null(strstr(err, "billion laughs"));
	dtk_buf_free(&b);
}

static void test_yaml_recursive_alias_is_an_error(void **state)
{
	assert_non_null(strstr(load_error("a: &a [1, *a]\n"), "recursive alias"));
	assert_non_null(strstr(load_error("a: *nope\n"), "found undefined alias 'nope'"));
	assert_non_null(strstr(load_error("a: &x 1\nb: &x 2\n"), "found duplicate anchor 'x'"));
}

static void test_yaml_tab_as_separator_is_an_error_as_in_pyyaml(void **state)
{
	const char *err = load_error("a:\tb\n");
	assert_non_null(strstr(err, "t.yaml:1:3:"));
	assert_non_null(strstr(err, "'\\t'"));
	dtk_value *doc = load("a: 'x\ty' # tab\tin comment\nb: |\n  c\td\n");
	assert_string_equal(dtk_value_map_get(doc, "a")->u.str.s, "x\ty");
	assert_string_equal(dtk_value_map_get(doc, "b")->u.str.s, "c\td\n");
	dtk_value_free(&doc);
}

static void test_yaml_block_scalars_follow_chomping(void **state)
{
	dtk_value *doc = load("clip: |\n  t\n\nstrip: |-\n  t\n\nkeep: |+\n  t\n\n"
			      "fold: >\n  a\n  b\n\n  c\n");
	assert_string_equal(dtk_value_map_get(doc, "clip")->u.str.s, "t\n");
	assert_string_equal(dtk_value_map_get(doc, "strip")->u.str.s, "t");
	assert_string_equal(dtk_value_map_get(doc, "keep")->u.str.s, "t\n\n");
	assert_string_equal(dtk_value_map_get(doc, "fold")->u.str.s, "a b\nc\n");
	dtk_value_free(&doc);
}

static void test_yaml_resolve_plain_retypes_text(void **state)
{
	struct {
		const char *text;
		dtk_vtype type;
	} cases[] = {
		{"9000", DTK_V_INT},	{"1.5", DTK_V_FLOAT}, {"yes", DTK_V_BOOL},
		{"", DTK_V_NULL},	{"1e3", DTK_V_STR},   {"2024-01-02", DTK_V_DATE},
		{"0777", DTK_V_INT},	{"host:1", DTK_V_STR},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		dtk_value *v = dtk_yaml_resolve_plain(cases[i].text, strlen(cases[i].text));
		assert_non_null(v);
		if (v->type != cases[i].type)
			fail_msg("%s: type %s", cases[i].text, dtk_value_type_name(v));
		assert_true(v->plain);
		dtk_value_free(&v);
	}
	dtk_value *v = dtk_yaml_resolve_plain("0777", 4);
	assert_int_equal(v->u.i, 511);
	dtk_value_free(&v);
	/* only len bytes count */
	v = dtk_yaml_resolve_plain("12abc", 2);
	assert_int_equal(v->type, DTK_V_INT);
	assert_int_equal(v->u.i, 12);
	dtk_value_free(&v);
}

static void test_yaml_resolve_plain_keeps_unconstructible_text_as_string(void **state)
{
	const char *texts[] = {"2024-02-30", "=", "<<", "0b_", "99999999999999999999"};
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		dtk_value *v = dtk_yaml_resolve_plain(texts[i], strlen(texts[i]));
		assert_non_null(v);
		assert_int_equal(v->type, DTK_V_STR);
		assert_string_equal(v->u.str.s, texts[i]);
		dtk_value_free(&v);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_yaml_yes_and_on_are_booleans),
		cmocka_unit_test(test_yaml_y_n_and_odd_case_booleans_stay_strings),
		cmocka_unit_test(test_yaml_leading_zero_is_octal_and_0o_is_a_string),
		cmocka_unit_test(test_yaml_binary_hex_underscores_and_signs_are_ints),
		cmocka_unit_test(test_yaml_int64_limits_load_and_beyond_is_an_error),
		cmocka_unit_test(test_yaml_float_needs_a_dot_so_1e3_is_a_string),
		cmocka_unit_test(test_yaml_int_and_float_stay_distinct),
		cmocka_unit_test(test_yaml_inf_and_nan_spellings),
		cmocka_unit_test(test_yaml_sexagesimal_ints_and_floats),
		cmocka_unit_test(test_yaml_null_spellings_and_empty_values_are_null),
		cmocka_unit_test(test_yaml_quoted_scalars_are_strings_and_not_plain),
		cmocka_unit_test(test_yaml_date_is_date_and_timestamp_is_datetime),
		cmocka_unit_test(test_yaml_impossible_date_is_an_error),
		cmocka_unit_test(test_yaml_merge_key_explicit_keys_win),
		cmocka_unit_test(test_yaml_merge_list_earlier_maps_win),
		cmocka_unit_test(test_yaml_merge_of_a_scalar_is_an_error),
		cmocka_unit_test(test_yaml_alias_is_a_deep_copy),
		cmocka_unit_test(test_yaml_duplicate_key_last_wins_and_warns),
		cmocka_unit_test(test_yaml_duplicate_in_merged_map_warns_once),
		cmocka_unit_test(test_yaml_merged_key_overridden_is_not_a_duplicate),
		cmocka_unit_test(test_yaml_keys_keep_their_yaml_types),
		cmocka_unit_test(test_yaml_equal_keys_of_different_types_collide_as_in_python),
		cmocka_unit_test(test_yaml_list_key_is_unhashable),
		cmocka_unit_test(test_yaml_explicit_tags_override_resolution),
		cmocka_unit_test(test_yaml_unknown_tag_is_an_error),
		cmocka_unit_test(test_yaml_multiple_documents_are_an_error),
		cmocka_unit_test(test_yaml_empty_or_comment_only_document_is_null),
		cmocka_unit_test(test_yaml_error_names_file_line_column),
		cmocka_unit_test(test_yaml_nodes_carry_line_and_column),
		cmocka_unit_test(test_yaml_nesting_deeper_than_limit_is_an_error),
		cmocka_unit_test(test_yaml_billion_laughs_is_refused),
		cmocka_unit_test(test_yaml_recursive_alias_is_an_error),
		cmocka_unit_test(test_yaml_tab_as_separator_is_an_error_as_in_pyyaml),
		cmocka_unit_test(test_yaml_block_scalars_follow_chomping),
		cmocka_unit_test(test_yaml_resolve_plain_retypes_text),
		cmocka_unit_test(test_yaml_resolve_plain_keeps_unconstructible_text_as_string),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
