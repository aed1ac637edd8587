/* core/select.c: a selection of hundreds of configs (loaded on several
 * threads) keeps path order, the tag filter, config errors and duplicate
 * names exactly as one thread would. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "select.h"

#define NCONFIGS 300

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* config i repeats the name of config i - 1 */
static int twin(int i)
{
	return i % 60 == 58;
}

static void test_select_of_many_configs_keeps_order_filter_errors_and_duplicates(void **state)
{
	(void)state;
	char dir[] = "/tmp/dtk-test-select-XXXXXX";
	assert_non_null(mkdtemp(dir));
	for (int i = 0; i < NCONFIGS; i++) {
		char name[32], text[512];
		snprintf(name, sizeof(name), "m%03d.yaml", i);
		if (i % 50 == 11) {
			snprintf(text, sizeof(text), "name: m%03d\ncollector: [not, a, map\n", i);
		} else {
			/* every 60th repeats the name (and tags) of the one before */
			int n = twin(i) ? i - 1 : i;
			snprintf(text, sizeof(text),
				 "name: m%03d\ntags: [%s]\n"
				 "collector: {type: synthetic, params: {base: 1}}\n"
				 "detector: {type: threshold, params: {threshold: 10}}\n"
				 "storage: {enabled: false}\n",
				 n, n % 3 == 0 ? "a" : "b");
		}
		write_file(dir, name, text);
	}
	const char *tags[] = {"a"};
	dtk_select_opts o = {.filter = {.tags = tags, .ntags = 1}};
	dtk_selected *items = NULL;
	size_t n = 0;
	char err[512];
	assert_int_equal(dtk_select_configs(dir, &o, &items, &n, err, sizeof(err)), 0);
	/* expected: tag a (the name index % 3 == 0) or a load error, in path
	 * order; a config whose name another selected config shares is an error */
	size_t k = 0, dups = 0;
	for (int i = 0; i < NCONFIGS; i++) {
		int broken = i % 50 == 11;
		int name = twin(i) ? i - 1 : i;
		if (!broken && name % 3 != 0)
			continue;
		assert_true(k < n);
		char want[32];
		snprintf(want, sizeof(want), "m%03d.yaml", i);
		const char *base = strrchr(items[k].path, '/');
		assert_non_null(base);
		assert_string_equal(base + 1, want);
		/* both of a selected twin pair are errors */
		int dup = !broken && (twin(i) || twin(i + 1));
		if (broken) {
			assert_non_null(items[k].error);
		} else if (dup) {
			assert_non_null(items[k].error);
			assert_non_null(strstr(items[k].error, "duplicate metric name"));
			dups++;
		} else {
			assert_null(items[k].error);
			assert_string_equal(items[k].deferred->name, items[k].name);
		}
		k++;
	}
	assert_int_equal(k, n);
	assert_int_equal(dups, 10); /* five pairs: files 57/58, 117/118, ... */
	dtk_select_release(&items, n);
	assert_null(items);
	for (int i = 0; i < NCONFIGS; i++) {
		char path[512];
		snprintf(path, sizeof(path), "%s/m%03d.yaml", dir, i);
		unlink(path);
	}
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_select_of_many_configs_keeps_order_filter_errors_and_duplicates),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
