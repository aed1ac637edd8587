/* template/: the Jinja subset of config.md. The byte-for-byte comparison
 * with Jinja2 itself is tests/py/test_template_diff.py; these pin the API
 * contract: errors with their line, strict mode, uses_var, bounds. */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "template/template.h"
#include "util/json.h"
#include "util/value.h"

static dtk_value *vars_json(const char *json)
{
	char err[256];
	dtk_value *v = dtk_json_parse(json, strlen(json), err, sizeof(err));
	assert_non_null(v);
	return v;
}

/* Renders text with vars; returns the output (caller frees) or NULL with
 * err filled. Compile errors fail the test unless expected by the caller. */
static char *render(const char *text, const dtk_value *vars, int flags, char *err, size_t errsz)
{
	dtk_template *t = dtk_template_compile(text, err, errsz);
	if (!t)
		return NULL;
	char *out = dtk_template_render(t, vars, flags, err, errsz);
	dtk_template_free(&t);
	assert_null(t);
	return out;
}

static void check(const char *text, const dtk_value *vars, const char *want)
{
	char err[512] = "";
	char *out = render(text, vars, 0, err, sizeof(err));
	if (!out)
		fail_msg("%s: %s", text, err);
	assert_string_equal(out, want);
	free(out);
}

/* The render or compile fails and the message contains each of wants. */
static void check_error(const char *text, const dtk_value *vars, int flags, const char *want1,
			const char *want2)
{
	char err[512] = "";
	char *out = render(text, vars, flags, err, sizeof(err));
	if (out)
		fail_msg("%s: expected an error, got '%s'", text, out);
	if (!strstr(err, want1) || (want2 && !strstr(err, want2)))
		fail_msg("%s: error '%s' lacks '%s' / '%s'", text, err, want1, want2 ? want2 : "");
}

static void test_template_prints_values_as_python_str(void **state)
{
	dtk_value *v = vars_json("{\"f\": 150.0, \"i\": 3, \"n\": null, \"t\": true, \"inf\": Infinity, "
				 "\"l\": [\"a\", 1, null], \"d\": {\"a\": 1}, \"tiny\": 1e-05}");
	dtk_value *ts = dtk_value_datetime(1730557800, 0);
	dtk_value *tsu = dtk_value_datetime(1730557800, 5);
	assert_int_equal(dtk_value_map_set(v, "ts", ts), 0);
	assert_int_equal(dtk_value_map_set(v, "tsu", tsu), 0);
	check("{{ f }}|{{ i }}|{{ n }}|{{ t }}|{{ inf }}|{{ tiny }}", v,
	      "150.0|3|None|True|inf|1e-05");
	check("{{ l }} {{ d }}", v, "['a', 1, None] {'a': 1}");
	check("{{ ts }}|{{ tsu }}|{{ ts.date() }}", v,
	      "2024-11-02 14:30:00|2024-11-02 14:30:00.000005|2024-11-02");
	check("{{ 0.1 + 0.2 }} {{ 1e16 }} {{ -0.0 }}", v, "0.30000000000000004 1e+16 -0.0");
	dtk_value_free(&v);
}

static void test_template_arithmetic_follows_python_semantics(void **state)
{
	dtk_value *v = vars_json("{\"x\": 7, \"y\": -7}");
	check("{{ x / 2 }} {{ x // 2 }} {{ y // 2 }} {{ y % 3 }} {{ x % -3 }} {{ 2 ** 10 }}", v,
	      "3.5 3 -4 2 -2 1024");
	check("{{ -7.5 // 2 }} {{ -7.5 % 2 }} {{ 2 ** -1 }} {{ -2 ** 2 }} {{ 2 ** 3 ** 2 }}", v,
	      "-4.0 0.5 0.5 4 64");
	check("{{ 'ab' ~ 1 ~ none }} {{ 'x' * 3 }} {{ [1] + [2] }}", v, "ab1None xxx [1, 2]");
	check("{{ x and 0 }} {{ 0 or 'b' }} {{ not x }} {{ 1 if x > 3 else 2 }}", v, "0 b False 1");
	check("{{ 1 in [1, 2] }} {{ 'a' not in 'abc' }} {{ 1 == 1.0 }}", v, "True False True");
	check_error("{{ x }}\n{{ x / 0 }}", v, 0, "line 2", "division by zero");
	check_error("{{ 'a' + 1 }}", v, 0, "line 1", "concatenate");
	check_error("{{ 1 < 'a' }}", v, 0, "not supported between", NULL);
	check_error("{{ 9223372036854775807 + 1 }}", v, 0, "integer overflow", NULL);
	check_error("{{ -9223372036854775807 // -1 * 9223372036854775807 }}", v, 0,
		    "integer overflow", NULL);
	dtk_value_free(&v);
}

static void test_template_filters_match_jinja(void **state)
{
	dtk_value *v = vars_json("{\"s\": \"  Привет  \", \"l\": [1, \"a\", null], \"f\": 2.675}");
	check("{{ f|round(2) }} {{ 2.5|round }} {{ 150|round(2) }} {{ 1234.5|round(-2) }}", v,
	      "2.67 2.0 150 1200.0");
	check("{{ 2.1|round(0, 'ceil') }} {{ 2.9|round(method='floor') }}", v, "3.0 2.0");
	check("{{ '42'|int }} {{ '4.7'|int }} {{ 'x'|int(-1) }} {{ '3.5'|float }} {{ -3|abs }}", v,
	      "42 4 -1 3.5 3");
	check("{{ missing|default('d') }} {{ ''|default('e', true) }} {{ ''|d('e') }}.", v,
	      "d e .");
	check("{{ s|trim|upper }} {{ s|trim|lower }} {{ s|length }} {{ l|count }}", v,
	      "ПРИВЕТ привет 10 3");
	check("{{ l|join(', ') }} {{ 'aaa'|replace('a', 'b', 2) }} {{ 'xxaxx'|trim('x') }}", v,
	      "1, a, None bba a");
	check("{{ '%.2f|%5d|%-3s|%x|%e|%%'|format(f, 42, 'a', 255, 0.5) }}", v,
	      "2.67|   42|a  |ff|5.000000e-01|%");
	check("{{ 'ß'|upper }}", v, "SS");
	dtk_value_free(&v);
}

static void test_template_datetime_methods_treat_timestamp_as_utc(void **state)
{
	dtk_value *v = dtk_value_map();
	assert_int_equal(dtk_value_map_set(v, "ts", dtk_value_datetime(1730557800, 0)), 0);
	dtk_value *tz = dtk_value_datetime(1730557800, 0);
	tz->u.dt.has_tz = 1;
	tz->u.dt.tz_min = 60;
	assert_int_equal(dtk_value_map_set(v, "tz", tz), 0);
	check("{{ ts.strftime('%d.%m.%Y %H:%M') }}|{{ ts.isoformat() }}|{{ ts.timestamp() }}", v,
	      "02.11.2024 14:30|2024-11-02T14:30:00|1730557800.0");
	check("{{ tz }}|{{ tz.timestamp() }}|{{ tz.strftime('%z') }}", v,
	      "2024-11-02 14:30:00+01:00|1730554200.0|+0100");
	check("{{ ts|datetime_format }}|{{ ts|datetime_format('%H:%M') }}|{{ 5|datetime_format }}",
	      v, "2024-11-02 14:30:00|14:30|5");
	check_error("{{ none.strftime('%H') }}", v, 0, "has no attribute 'strftime'", NULL);
	dtk_value_free(&v);
}

static void test_template_if_for_and_loop_variables(void **state)
{
	dtk_value *v = vars_json("{\"l\": [\"a\", \"b\", \"c\"], \"d\": {\"k1\": 1, \"k2\": 2}}");
	check("{% for x in l %}{{ loop.index }}{{ x }}{% if loop.first %}F{% endif %}"
	      "{% if loop.last %}L{% endif %}{{ loop.index0 }}{{ loop.length }} {% endfor %}",
	      v, "1aF03 2b13 3cL23 ");
	check("{% for k in d %}{{ k }}={{ d[k] }};{% endfor %}", v, "k1=1;k2=2;");
	check("{% for x in [] %}x{% else %}empty{% endfor %}", v, "empty");
	check("{% for x in l if x != 'b' %}{{ loop.index }}{{ x }}{% endfor %}", v, "1a2c");
	check("{% if 0 %}a{% elif l %}b{% else %}c{% endif %}", v, "b");
	check("{% if 0 %}a{% elif 0 %}b{% else %}c{% endif %}", v, "c");
	dtk_value_free(&v);
}

static void test_template_whitespace_control_and_trailing_newline(void **state)
{
	check("a  {%- if true -%}  b  {%- endif -%}  c", NULL, "abc");
	check("a {{- 'b' -}} \n c", NULL, "abc");
	check("x {#- note -#} y {# kept #}z", NULL, "xy z");
	check("{% if true %}\nline\n{% endif %}\n", NULL, "\nline\n");
	check("one\r\ntwo\n\n", NULL, "one\ntwo\n");
	check("{% raw %}{{ not evaluated }}{% endraw %}", NULL, "{{ not evaluated }}");
}

static void test_template_undefined_renders_empty_but_its_attributes_fail(void **state)
{
	dtk_value *v = vars_json("{\"m\": {\"a\": 1}}");
	check("[{{ missing }}][{{ m.b }}][{{ m['b'] }}][{{ missing is defined }}]", v,
	      "[][][][False]");
	check("{% for x in missing %}x{% endfor %}{{ missing|length }}{{ missing ~ 'z' }}", v, "0z");
	check_error("{{ missing.attr }}", v, 0, "'missing' is undefined", NULL);
	check_error("{{ m.b.c }}", v, 0, "'dict object' has no attribute 'b'", NULL);
	check_error("{{ missing + 1 }}", v, 0, "'missing' is undefined", NULL);
	dtk_value_free(&v);
}

static void test_template_strict_mode_names_the_undefined_variable(void **state)
{
	dtk_value *v = vars_json("{\"period_start\": \"2024-01-01T00:00:00\"}");
	char err[256];
	char *out = render("SELECT '{{ period_start }}'", v, DTK_TEMPLATE_STRICT, err, sizeof(err));
	assert_non_null(out);
	assert_string_equal(out, "SELECT '2024-01-01T00:00:00'");
	free(out);
	check_error("a\n{{ period_finish }}", v, DTK_TEMPLATE_STRICT, "line 2",
		    "'period_finish' is undefined");
	check_error("{% if nope %}{% endif %}", v, DTK_TEMPLATE_STRICT, "'nope' is undefined", NULL);
	out = render("{{ nope is defined }}{{ nope|default('x') }}", v, DTK_TEMPLATE_STRICT, err,
		     sizeof(err));
	assert_non_null(out);
	assert_string_equal(out, "Falsex");
	free(out);
	dtk_value_free(&v);
}

static void test_template_compile_errors_name_line_and_construct(void **state)
{
	check_error("ok\n{% set x = 1 %}", NULL, 0, "line 2", "not supported: {% set %}");
	check_error("{% macro m() %}{% endmacro %}", NULL, 0, "line 1", "{% macro %}");
	check_error("\n\n{% include 'x' %}", NULL, 0, "line 3", "{% include %}");
	check_error("{% block b %}{% endblock %}", NULL, 0, "{% block %}", NULL);
	check_error("{% extends 'x' %}", NULL, 0, "{% extends %}", NULL);
	check_error("{{ x|title }}", NULL, 0, "line 1", "not supported: filter 'title'");
	check_error("{{ x is mapping }}", NULL, 0, "not supported: test 'mapping'", NULL);
	check_error("{{ range(3) }}", NULL, 0, "not supported: function call", NULL);
	check_error("{{ x.upper() }}", NULL, 0, "not supported: method call .upper()", NULL);
	check_error("{{ (1, 2) }}", NULL, 0, "not supported: tuple", NULL);
	check_error("{% frobnicate %}", NULL, 0, "unknown tag", NULL);
	check_error("a\n{% if x %}\nb", NULL, 0, "line 3", "{% endif %}");
	check_error("{% endfor %}", NULL, 0, "unexpected {% endfor %}", NULL);
	check_error("x\n\n{{ 1 + }}", NULL, 0, "line 3", "unexpected");
	check_error("{# never closed", NULL, 0, "line 1", "comment");
	check_error("{{ 'abc }}", NULL, 0, "unterminated string", NULL);
}

static void test_template_uses_var_walks_the_ast(void **state)
{
	char err[256];
	dtk_template *t = dtk_template_compile(
		"{% for x in rows if x > lim %}{{ x|round(prec) ~ loop.index }}{% endfor %}"
		"{% if a.b['c'] %}{{ g if 0 else 'q' }}{% endif %}{# comment_var #}",
		err, sizeof(err));
	assert_non_null(t);
	assert_true(dtk_template_uses_var(t, "rows"));
	assert_true(dtk_template_uses_var(t, "lim"));
	assert_true(dtk_template_uses_var(t, "prec"));
	assert_true(dtk_template_uses_var(t, "a"));
	assert_true(dtk_template_uses_var(t, "g"));
	assert_false(dtk_template_uses_var(t, "x"));	   /* the loop's own variable */
	assert_false(dtk_template_uses_var(t, "loop"));
	assert_false(dtk_template_uses_var(t, "b"));	   /* an attribute, not a variable */
	assert_false(dtk_template_uses_var(t, "c"));
	assert_false(dtk_template_uses_var(t, "comment_var"));
	dtk_template_free(&t);
	t = dtk_template_compile("WHERE t >= '{{period_start}}' AND t < '{{ period_finish | "
				 "default(\"x\") }}'",
				 err, sizeof(err));
	assert_non_null(t);
	assert_true(dtk_template_uses_var(t, "period_start"));
	assert_true(dtk_template_uses_var(t, "period_finish"));
	assert_false(dtk_template_uses_var(t, "period"));
	dtk_template_free(&t);
}

static void test_template_has_syntax_detects_the_three_openers(void **state)
{
	assert_true(dtk_template_has_syntax("a {{ b }}"));
	assert_true(dtk_template_has_syntax("{% if %}"));
	assert_true(dtk_template_has_syntax("{# c #}"));
	assert_false(dtk_template_has_syntax("plain { text } %}"));
}

static void test_template_output_is_bounded_at_16_mib(void **state)
{
	dtk_value *v = vars_json("{\"n\": 1048576}");
	check_error("{{ 'x' * (17 * n) }}", v, 0, "exceeds", NULL);
	check_error("{% for i in 'abcdefghijklmnopqr' %}{{ 'x' * n }}{% endfor %}", v, 0, "exceeds",
		    NULL);
	check_error("{{ '%99999999d'|format(1) }}", v, 0, "too", NULL);
	/* 16 MiB exactly still renders */
	char err[256];
	char *out = render("{{ 'x' * (16 * n) }}", v, 0, err, sizeof(err));
	assert_non_null(out);
	assert_int_equal(strlen(out), (size_t)16 << 20);
	free(out);
	dtk_value_free(&v);
}

static void test_template_refuses_nesting_beyond_its_depth_limit(void **state)
{
	char text[4096];
	size_t k = 0;
	k += (size_t)snprintf(text + k, sizeof(text) - k, "{{ ");
	for (int i = 0; i < 1000; i++)
		text[k++] = '(';
	text[k++] = '1';
	for (int i = 0; i < 1000; i++)
		text[k++] = ')';
	snprintf(text + k, sizeof(text) - k, " }}");
	char err[256];
	dtk_template *t = dtk_template_compile(text, err, sizeof(err));
	assert_null(t);
	assert_non_null(strstr(err, "too deeply"));
}

typedef struct thread_arg {
	const dtk_template *t;
	const dtk_value *vars;
	int ok;
} thread_arg;

static void *render_many(void *p)
{
	thread_arg *a = p;
	char err[256];
	a->ok = 1;
	for (int i = 0; i < 200; i++) {
		char *out = dtk_template_render(a->t, a->vars, 0, err, sizeof(err));
		if (!out || strcmp(out, "1:a 2:b ПРИВЕТ 2.5") != 0)
			a->ok = 0;
		free(out);
	}
	return NULL;
}

static void test_template_renders_from_several_threads(void **state)
{
	char err[256];
	dtk_template *t = dtk_template_compile(
		"{% for x in l %}{{ loop.index }}:{{ x }} {% endfor %}{{ s|upper }} {{ f|round(1) }}",
		err, sizeof(err));
	assert_non_null(t);
	dtk_value *v = vars_json("{\"l\": [\"a\", \"b\"], \"s\": \"привет\", \"f\": 2.45}");
	pthread_t th[4];
	thread_arg args[4];
	for (int i = 0; i < 4; i++) {
		args[i] = (thread_arg){.t = t, .vars = v};
		assert_int_equal(pthread_create(&th[i], NULL, render_many, &args[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_true(args[i].ok);
	}
	dtk_value_free(&v);
	dtk_template_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_template_prints_values_as_python_str),
		cmocka_unit_test(test_template_arithmetic_follows_python_semantics),
		cmocka_unit_test(test_template_filters_match_jinja),
		cmocka_unit_test(test_template_datetime_methods_treat_timestamp_as_utc),
		cmocka_unit_test(test_template_if_for_and_loop_variables),
		cmocka_unit_test(test_template_whitespace_control_and_trailing_newline),
		cmocka_unit_test(test_template_undefined_renders_empty_but_its_attributes_fail),
		cmocka_unit_test(test_template_strict_mode_names_the_undefined_variable),
		cmocka_unit_test(test_template_compile_errors_name_line_and_construct),
		cmocka_unit_test(test_template_uses_var_walks_the_ast),
		cmocka_unit_test(test_template_has_syntax_detects_the_three_openers),
		cmocka_unit_test(test_template_output_is_bounded_at_16_mib),
		cmocka_unit_test(test_template_refuses_nesting_beyond_its_depth_limit),
		cmocka_unit_test(test_template_renders_from_several_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
