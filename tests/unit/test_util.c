/* util/: value tree, bounded buffer, JSON codec and Python number format. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/buf.h"
#include "util/json.h"
#include "util/pyfmt.h"
#include "util/value.h"

static void check_float(double f, const char *want)
{
	char out[64];
	dtk_pyfmt_float(f, out, sizeof(out));
	assert_string_equal(out, want);
}

static void test_pyfmt_float_matches_python_repr(void **state)
{
	check_float(150.0, "150.0");
	check_float(0.1, "0.1");
	check_float(1e-05, "1e-05");
	check_float(0.0001, "0.0001");
	check_float(1e16, "1e+16");
	check_float(1234567890123456.0, "1234567890123456.0");
	check_float(-2.5, "-2.5");
	check_float(14.825999999999999, "14.825999999999999");
	check_float(1.0 / 3.0, "0.3333333333333333");
	check_float(INFINITY, "inf");
	check_float(-INFINITY, "-inf");
	check_float(1.5e300, "1.5e+300");
	check_float(-0.0, "-0.0");
}

static void test_buf_fails_cleanly_past_its_maximum(void **state)
{
	dtk_buf b;
	dtk_buf_init(&b, 8);
	assert_int_equal(dtk_buf_adds(&b, "12345678"), 0);
	assert_int_equal(dtk_buf_adds(&b, "9"), -1);
	assert_true(b.failed);
	assert_string_equal(dtk_buf_str(&b), "12345678");
	dtk_buf_free(&b);
}

static void test_json_roundtrip_keeps_int_and_float_distinct(void **state)
{
	char err[256];
	const char *text = "{\"a\": 1000, \"b\": 1000.0, \"c\": [true, null, \"x\\u00e9\"], "
			   "\"d\": -1e-05}";
	dtk_value *v = dtk_json_parse(text, strlen(text), err, sizeof(err));
	assert_non_null(v);
	assert_int_equal(dtk_value_map_get(v, "a")->type, DTK_V_INT);
	assert_int_equal(dtk_value_map_get(v, "b")->type, DTK_V_FLOAT);
	dtk_buf b;
	dtk_buf_init(&b, 0);
	dtk_json_emit(&b, v, DTK_JSON_SORT_KEYS | DTK_JSON_PY_SEPARATORS | DTK_JSON_RAW_UTF8);
	assert_string_equal(dtk_buf_str(&b),
			    "{\"a\": 1000, \"b\": 1000.0, \"c\": [true, null, \"x\xc3\xa9\"], "
			    "\"d\": -1e-05}");
	dtk_buf_reset(&b);
	dtk_json_emit(&b, dtk_value_map_get(v, "c"), 0);
	assert_string_equal(dtk_buf_str(&b), "[true,null,\"x\\u00e9\"]");
	dtk_buf_free(&b);
	dtk_value_free(&v);
	assert_null(v);
}

static void test_json_parse_error_names_line_and_column(void **state)
{
	char err[256];
	const char *text = "{\n  \"a\": [1,\n  2,, 3]}";
	dtk_value *v = dtk_json_parse(text, strlen(text), err, sizeof(err));
	assert_null(v);
	assert_non_null(strstr(err, "line 3"));
}

static void test_value_equal_follows_python_rules(void **state)
{
	dtk_value *i = dtk_value_int(3), *f = dtk_value_float(3.0), *t = dtk_value_bool(1),
		  *one = dtk_value_int(1), *s = dtk_value_str("3");
	assert_true(dtk_value_equal(i, f));
	assert_true(dtk_value_equal(t, one));
	assert_false(dtk_value_equal(i, s));
	dtk_value_free(&i);
	dtk_value_free(&f);
	dtk_value_free(&t);
	dtk_value_free(&one);
	dtk_value_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pyfmt_float_matches_python_repr),
		cmocka_unit_test(test_buf_fails_cleanly_past_its_maximum),
		cmocka_unit_test(test_json_roundtrip_keeps_int_and_float_distinct),
		cmocka_unit_test(test_json_parse_error_names_line_and_column),
		cmocka_unit_test(test_value_equal_follows_python_rules),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
