/* dtk-worker's config cache (worker/cfgcache.c): hits by key, LRU
 * eviction, and a config evicted while in use staying valid until its
 * last release (ASan in CI catches a config freed too early or never). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "cfgcache.h"

static dtk_config *parse(const char *name)
{
	char text[256], err[512];
	snprintf(text, sizeof(text),
		 "name: %s\ncollector: {type: synthetic, params: {base: 1}}\n"
		 "detector: {type: threshold, params: {threshold: 10}}\n"
		 "storage: {enabled: false}\n",
		 name);
	dtk_config *cfg = NULL;
	dtk_config_options opt = {0};
	int rc = dtk_config_parse(text, strlen(text), "m.yaml", &opt, &cfg, err, sizeof(err));
	if (rc != 0)
		fail_msg("%s", err);
	return cfg;
}

static void test_cfgcache_hits_by_key_and_keeps_the_first_of_two_puts(void **state)
{
	(void)state;
	dtk_cfgcache *c = dtk_cfgcache_new(4);
	assert_null(dtk_cfgcache_get(c, "k1"));
	dtk_config *a = parse("a");
	const dtk_config *pa = dtk_cfgcache_put(c, "k1", &a);
	assert_null(a);
	assert_string_equal(pa->name, "a");
	/* a second thread's parse of the same key: the cached one wins */
	dtk_config *b = parse("b");
	const dtk_config *pb = dtk_cfgcache_put(c, "k1", &b);
	assert_null(b);
	assert_ptr_equal(pb, pa);
	const dtk_config *g = dtk_cfgcache_get(c, "k1");
	assert_ptr_equal(g, pa);
	assert_null(dtk_cfgcache_get(c, "k2"));
	dtk_cfgcache_release(c, pa);
	dtk_cfgcache_release(c, pb);
	dtk_cfgcache_release(c, g);
	dtk_cfgcache_free(&c);
	assert_null(c);
}

static void test_cfgcache_evicts_the_least_recently_used(void **state)
{
	(void)state;
	dtk_cfgcache *c = dtk_cfgcache_new(3);
	char key[16];
	for (int i = 0; i < 3; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		dtk_config *cfg = parse(key);
		dtk_cfgcache_release(c, dtk_cfgcache_put(c, key, &cfg));
	}
	/* k0 used again: k1 is now the oldest */
	dtk_cfgcache_release(c, dtk_cfgcache_get(c, "k0"));
	dtk_config *cfg = parse("k3");
	dtk_cfgcache_release(c, dtk_cfgcache_put(c, "k3", &cfg));
	assert_null(dtk_cfgcache_get(c, "k1"));
	const char *kept[] = {"k0", "k2", "k3"};
	for (size_t i = 0; i < 3; i++) {
		const dtk_config *k = dtk_cfgcache_get(c, kept[i]);
		assert_non_null(k);
		assert_string_equal(k->name, kept[i]);
		dtk_cfgcache_release(c, k);
	}
	dtk_cfgcache_free(&c);
}

static void test_cfgcache_keeps_an_evicted_config_until_released(void **state)
{
	(void)state;
	dtk_cfgcache *c = dtk_cfgcache_new(1);
	dtk_config *a = parse("a");
	const dtk_config *held = dtk_cfgcache_put(c, "ka", &a);
	dtk_config *b = parse("b");
	const dtk_config *pb = dtk_cfgcache_put(c, "kb", &b); /* evicts ka, still held */
	assert_null(dtk_cfgcache_get(c, "ka"));
	assert_string_equal(held->name, "a"); /* still readable */
	/* the detached entry does not answer for its key: a new put caches anew */
	dtk_config *a2 = parse("a");
	const dtk_config *pa2 = dtk_cfgcache_put(c, "ka", &a2);
	assert_ptr_not_equal(pa2, held);
	dtk_cfgcache_release(c, held);
	dtk_cfgcache_release(c, pb);
	dtk_cfgcache_release(c, pa2);
	dtk_cfgcache_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cfgcache_hits_by_key_and_keeps_the_first_of_two_puts),
	    cmocka_unit_test(test_cfgcache_evicts_the_least_recently_used),
	    cmocka_unit_test(test_cfgcache_keeps_an_evicted_config_until_released),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
