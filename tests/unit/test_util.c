/* util/: value tree, bounded buffer, JSON codec and Python number format. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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

/* The bisection over every precision that dtk_pyfmt_float used before
 * its 15/16/17-digit shortcut: the reference the shortcut must equal. */
static void reference_repr_digits(double f, char *out, size_t outsz)
{
	char tmp[40];
	int lo = 0, hi = 16;
	while (lo < hi) {
		int mid = (lo + hi) / 2;
		snprintf(tmp, sizeof(tmp), "%.*e", mid, f);
		if (strtod(tmp, NULL) == f)
			hi = mid;
		else
			lo = mid + 1;
	}
	snprintf(out, outsz, "%.*e", lo, f);
}

/* Digits and exponent of our output, normalised like %e without zeros. */
static void digits_of(const char *s, char *out, size_t outsz)
{
	size_t n = 0;
	int seen = 0, exp10 = 0, point = -1, lead = 0;
	const char *p = s;
	if (*p == '-')
		p++;
	for (; *p && *p != 'e'; p++) {
		if (*p == '.') {
			point = (int)(n + lead);
			continue;
		}
		if (*p == '0' && !seen) {
			lead++;
			continue;
		}
		seen = 1;
		if (n + 1 < outsz)
			out[n++] = *p;
	}
	int intdigits = point < 0 ? (int)n + lead : point;
	exp10 = intdigits - lead - 1;
	if (*p == 'e')
		exp10 += (int)strtol(p + 1, NULL, 10); /* %e output: always digits */
	while (n > 1 && out[n - 1] == '0')
		n--;
	snprintf(out + n, outsz - n, "e%d", exp10);
}

static void test_pyfmt_float_equals_the_bisection_on_random_doubles(void **state)
{
	(void)state;
	uint64_t x = 0x9e3779b97f4a7c15u;
	for (int i = 0; i < 300000; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		double f;
		if (i % 3 == 0) {
			uint64_t bits = x;
			memcpy(&f, &bits, sizeof(f));
		} else if (i % 3 == 1) {
			f = (double)(int64_t)(x % 2000001 - 1000000) / 1000.0; /* short decimals */
		} else {
			f = (double)(x % 100000) * pow(10.0, (double)((int)((x >> 40) % 40) - 20));
		}
		if (isnan(f) || isinf(f) || f == 0.0)
			continue;
		char ours[64], ref[40], ref_digits[40], our_digits[40];
		dtk_pyfmt_float(f, ours, sizeof(ours));
		assert_true(strtod(ours, NULL) == f);
		reference_repr_digits(fabs(f), ref, sizeof(ref));
		digits_of(ref, ref_digits, sizeof(ref_digits));
		digits_of(ours, our_digits, sizeof(our_digits));
		if (strcmp(ref_digits, our_digits) != 0)
			fail_msg("%.17g: ours %s (%s), reference %s (%s)", f, ours, our_digits, ref,
				 ref_digits);
	}
	check_float(5e-324, "5e-324");
	check_float(1e-310, "1e-310");
	check_float(2.2250738585072014e-308, "2.2250738585072014e-308");
	check_float(1.7976931348623157e308, "1.7976931348623157e+308");
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
		cmocka_unit_test(test_pyfmt_float_equals_the_bisection_on_random_doubles),
		cmocka_unit_test(test_buf_fails_cleanly_past_its_maximum),
		cmocka_unit_test(test_json_roundtrip_keeps_int_and_float_distinct),
		cmocka_unit_test(test_json_parse_error_names_line_and_column),
		cmocka_unit_test(test_value_equal_follows_python_rules),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
