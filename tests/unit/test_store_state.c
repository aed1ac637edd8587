/* store/state.c: get/set/del, expiry on read, set_nx claims. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store/state.h"

static char tmpdir[256];

static int setup(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/dtk-state-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	setenv("DTK_STATE_DIR", tmpdir, 1);
	return 0;
}

static int teardown(void **state)
{
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static dtk_state *open_state(void)
{
	char err[512] = "";
	dtk_state *st = dtk_state_open(NULL, err, sizeof(err));
	if (!st)
		fail_msg("open: %s", err);
	return st;
}

static void test_state_set_then_get_returns_the_value(void **state)
{
	dtk_state *st = open_state();
	char err[512], *v = NULL;
	assert_int_equal(dtk_state_get(st, "dtk:state:a", 100, &v, err, sizeof(err)), 0);
	assert_null(v);
	assert_int_equal(dtk_state_set(st, "dtk:state:a", "1", 100, 0, err, sizeof(err)), 0);
	assert_int_equal(dtk_state_set(st, "dtk:state:a", "2", 100, 0, err, sizeof(err)), 0);
	assert_int_equal(dtk_state_get(st, "dtk:state:a", 1000000, &v, err, sizeof(err)), 1);
	assert_string_equal(v, "2");
	free(v);
	assert_int_equal(dtk_state_del(st, "dtk:state:a", err, sizeof(err)), 0);
	assert_int_equal(dtk_state_get(st, "dtk:state:a", 100, &v, err, sizeof(err)), 0);
	dtk_state_close(&st);
	assert_null(st);
}

static void test_state_expired_key_reads_as_absent(void **state)
{
	dtk_state *st = open_state();
	char err[512], *v = NULL;
	assert_int_equal(dtk_state_set(st, "dtk:state:cool", "x", 1000, 60, err, sizeof(err)), 0);
	assert_int_equal(dtk_state_get(st, "dtk:state:cool", 1059, &v, err, sizeof(err)), 1);
	free(v);
	v = NULL;
	assert_int_equal(dtk_state_get(st, "dtk:state:cool", 1060, &v, err, sizeof(err)), 0);
	assert_null(v);
	dtk_state_close(&st);
}

static void test_state_set_nx_is_held_until_expiry(void **state)
{
	dtk_state *a = open_state(), *b = open_state();
	char err[512], *v = NULL;
	assert_int_equal(dtk_state_set_nx(a, "dtk:claim", "a", 1000, 30, err, sizeof(err)), 1);
	/* held: another connection cannot claim it, and the value is kept */
	assert_int_equal(dtk_state_set_nx(b, "dtk:claim", "b", 1029, 30, err, sizeof(err)), 0);
	assert_int_equal(dtk_state_get(b, "dtk:claim", 1029, &v, err, sizeof(err)), 1);
	assert_string_equal(v, "a");
	free(v);
	/* expired: the next claim wins */
	assert_int_equal(dtk_state_set_nx(b, "dtk:claim", "b", 1030, 30, err, sizeof(err)), 1);
	assert_int_equal(dtk_state_get(a, "dtk:claim", 1031, &v, err, sizeof(err)), 1);
	assert_string_equal(v, "b");
	free(v);
	/* a key without expiry is held forever */
	assert_int_equal(dtk_state_set_nx(a, "dtk:forever", "a", 1000, 0, err, sizeof(err)), 1);
	assert_int_equal(dtk_state_set_nx(b, "dtk:forever", "b", 999999999, 5, err, sizeof(err)),
			 0);
	dtk_state_close(&a);
	dtk_state_close(&b);
}

static void test_state_explicit_path_is_created(void **state)
{
	char path[400], err[512];
	snprintf(path, sizeof(path), "%s/sub/dir/alerts.db", tmpdir);
	dtk_state *st = dtk_state_open(path, err, sizeof(err));
	if (!st)
		fail_msg("open: %s", err);
	assert_int_equal(dtk_state_set(st, "k", "v", 0, 0, err, sizeof(err)), 0);
	dtk_state_close(&st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_state_set_then_get_returns_the_value),
		cmocka_unit_test(test_state_expired_key_reads_as_absent),
		cmocka_unit_test(test_state_set_nx_is_held_until_expiry),
		cmocka_unit_test(test_state_explicit_path_is_created),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
