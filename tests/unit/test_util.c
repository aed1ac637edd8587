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

/* f's repr round-trips and has the reference's digits. */
static void check_against_bisection(double f)
{
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
		check_against_bisection(f);
	}
	check_float(5e-324, "5e-324");
	check_float(1e-310, "1e-310");
	check_float(2.2250738585072014e-308, "2.2250738585072014e-308");
	check_float(1.7976931348623157e308, "1.7976931348623157e+308");
}

/* Integral doubles take a shortcut without printf: it must give the
 * reference's digits, around 2^53 too, where it stops. */
static void test_pyfmt_float_integral_values_equal_the_bisection(void **state)
{
	(void)state;
	uint64_t x = 0x2545f4914f6cdd1du;
	for (int i = 0; i < 200000; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		double f;
		switch (i % 4) {
		case 0:
			f = (double)(x >> 11); /* any 53-bit integer */
			break;
		case 1:
			f = 9007199254740992.0 + (double)(int)(x % 64) - 32.0; /* near 2^53 */
			break;
		case 2:
			f = (double)(x % 1000) * pow(10.0, (double)(x >> 60)); /* trailing zeros */
			break;
		default:
			f = -(double)(x % 100000);
			break;
		}
		if (f == 0.0)
			continue;
		check_against_bisection(f);
	}
	check_float(9007199254740991.0, "9007199254740991.0");
	check_float(9007199254740992.0, "9007199254740992.0");
	check_float(1e15, "1000000000000000.0");
	check_float(-7.0, "-7.0");
}

/* The digits written without printf equal printf's, across years 1..9999,
 * and years past 9999 still print. */
static void test_pyfmt_datetime_equals_printf(void **state)
{
	(void)state;
	uint64_t x = 0x853c49e6748fea9bu;
	for (int i = 0; i < 100000; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		/* 0001-01-01 .. 9999-12-31 */
		int64_t secs = -62135596800 + (int64_t)(x % 315537897600u);
		int32_t usec = i % 2 ? (int32_t)(x >> 40) % 1000000 : 0;
		char ours[64], want[64];
		dtk_pyfmt_datetime(secs, usec, i % 3 ? 'T' : ' ', ours, sizeof(ours));
		int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
		int64_t rem = secs - days * 86400;
		int y, m, d;
		dtk_pyfmt_civil(days, &y, &m, &d);
		snprintf(want, sizeof(want), "%04d-%02d-%02d%c%02d:%02d:%02d", y, m, d,
			 i % 3 ? 'T' : ' ', (int)(rem / 3600), (int)(rem / 60 % 60),
			 (int)(rem % 60));
		if (usec)
			snprintf(want + strlen(want), sizeof(want) - strlen(want), ".%06d",
				 (int)usec);
		assert_string_equal(ours, want);
	}
	char out[64];
	dtk_pyfmt_datetime(0, 5, 'T', out, sizeof(out));
	assert_string_equal(out, "1970-01-01T00:00:00.000005");
	dtk_pyfmt_datetime(253402300800, 0, 'T', out, sizeof(out)); /* year 10000 */
	assert_string_equal(out, "10000-01-01T00:00:00");
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

	/* the same limit through the single-byte and printf paths, which
	 * write straight into the room there is */
	dtk_buf_init(&b, 8);
	assert_int_equal(dtk_buf_adds(&b, "1234567"), 0);
	assert_int_equal(dtk_buf_addc(&b, '8'), 0);
	assert_int_equal(dtk_buf_addc(&b, '9'), -1);
	assert_string_equal(dtk_buf_str(&b), "12345678");
	dtk_buf_free(&b);
	dtk_buf_init(&b, 8);
	assert_int_equal(dtk_buf_printf(&b, "%d", 1234), 0);
	assert_int_equal(dtk_buf_printf(&b, "%s", "5678"), 0);
	assert_int_equal(dtk_buf_printf(&b, "%d", 9), -1);
	assert_string_equal(dtk_buf_str(&b), "12345678");
	dtk_buf_free(&b);
}

static void test_buf_printf_grows_past_the_room_it_has(void **state)
{
	(void)state;
	dtk_buf b;
	dtk_buf_init(&b, 0);
	char want[400];
	size_t n = 0;
	for (int i = 0; i < 30; i++) {
		assert_int_equal(dtk_buf_printf(&b, "%d:%s;", i, i % 7 ? "x" : "a longer piece"),
				 0);
		n += (size_t)snprintf(want + n, sizeof(want) - n, "%d:%s;", i,
				      i % 7 ? "x" : "a longer piece");
	}
	assert_string_equal(dtk_buf_str(&b), want);
	assert_int_equal(b.len, n);
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

static void test_json_emit_str_escapes_between_plain_runs(void **state)
{
	(void)state;
	/* quote, backslash, controls, 2-, 3- and 4-byte UTF-8, a lone
	 * continuation byte and a truncated sequence at the end */
	const char s[] = "ab\"c\\d\n\x01"
			 "e\tf\xc3\xa9g\xe2\x82\xach\xf0\x9f\x98\x80i\x80j\x7f\xc3";
	dtk_buf b;
	dtk_buf_init(&b, 0);
	dtk_json_emit_str(&b, s, sizeof(s) - 1, 0);
	assert_string_equal(dtk_buf_str(&b), "\"ab\\\"c\\\\d\\n\\u0001e\\tf\\u00e9g\\u20ach"
					     "\\ud83d\\ude00i\\ufffdj\x7f\\ufffd\"");
	dtk_buf_reset(&b);
	dtk_json_emit_str(&b, s, sizeof(s) - 1, DTK_JSON_RAW_UTF8);
	assert_string_equal(dtk_buf_str(&b), "\"ab\\\"c\\\\d\\n\\u0001e\\tf\xc3\xa9g\xe2\x82\xach"
					     "\xf0\x9f\x98\x80i\x80j\x7f\xc3\"");
	dtk_buf_reset(&b);
	dtk_json_emit_str(&b, "", 0, 0);
	assert_string_equal(dtk_buf_str(&b), "\"\"");
	dtk_buf_free(&b);
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
		cmocka_unit_test(test_pyfmt_float_integral_values_equal_the_bisection),
		cmocka_unit_test(test_pyfmt_datetime_equals_printf),
		cmocka_unit_test(test_buf_fails_cleanly_past_its_maximum),
		cmocka_unit_test(test_buf_printf_grows_past_the_room_it_has),
		cmocka_unit_test(test_json_roundtrip_keeps_int_and_float_distinct),
		cmocka_unit_test(test_json_emit_str_escapes_between_plain_runs),
		cmocka_unit_test(test_json_parse_error_names_line_and_column),
		cmocka_unit_test(test_value_equal_follows_python_rules),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
