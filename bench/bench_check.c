/* In-process checks per second through dtk_check_run, on one thread with one
 * dtk_session: the whole pipeline (collect one point from a SQLite source
 * with the `sql` collector, upsert it, read 30 days of history, run
 * threshold, weighted zscore and weighted mad with hour_of_day seasonality,
 * build the result object) for a fixed execution time, over and over.
 *
 * The fixture (bench/fixtures/metric.yaml copied into a directory, plus):
 *   source.db       table orders(period_time TEXT, value REAL, hour_of_day
 *                   INTEGER): 4,321 10-minute points, 2024-10-03T00:00 ..
 *                   2024-11-02T00:00 UTC, a daily sine plus fixed-seed noise
 *   dtk_history.db  the first 4,320 of them (30 days), collected by the
 *                   config's own collector and stored with dtk_store_upsert
 *   state.db        the local alert-state database of the checks
 * Every check runs at 2024-11-02T00:10Z: it collects [00:00, 00:10), upserts
 * that point (re-running one time is an overwrite, so the history stays at
 * 4,320 points) and judges it against the 4,320 points before it.
 *
 * Usage: bench_check [--fixture DIR | --prepare DIR] [--config YAML]
 *                    [--seconds S] [--min-checks N] [--alerts] [--json]
 *   --prepare DIR  write the fixture into DIR (idempotent) and exit
 *   --fixture DIR  run on DIR, preparing it first when source.db is absent
 *   (neither)      prepare a temporary directory, run, remove it
 *   --config YAML  the metric config (default: bench/fixtures/metric.yaml
 *                  next to this source file)
 *   --alerts       decide alerts too (default: as `dtk run --no-alerts`)
 * Prints checks/s and the median per-stage timings_ms of the results.
 * Not part of ctest: timings are measured, never asserted. */
#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "config/config.h"
#include "store/store.h"

#define T_FIRST INT64_C(1727913600) /* 2024-10-03T00:00:00Z */
#define STEP 600
#define N_HISTORY 4320
#define N_SOURCE (N_HISTORY + 1)
#define T_CHECK (T_FIRST + (int64_t)N_SOURCE * STEP) /* 2024-11-02T00:10:00Z */
#define WARMUP 20
#define MAX_CHECKS 10000000L
#define PATH_MAX_LEN 4096

static const char *const stage_names[] = {"collect", "store", "detect", "alert", "total"};
#define N_STAGES (sizeof(stage_names) / sizeof(stage_names[0]))

/* Files the fixture consists of, removed with a temporary fixture. */
static const char *const fixture_files[] = {
	"metric.yaml",	     "source.db",	"dtk_history.db", "dtk_history.db-wal",
	"dtk_history.db-shm", "state.db",	"state.db-wal",	  "state.db-shm",
};

typedef struct bench_opts {
	const char *prepare_dir;
	const char *fixture_dir;
	const char *config;
	double seconds;
	long min_checks;
	int alerts;
	int json;
} bench_opts;

static double mono_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int path_join(char *out, size_t outsz, const char *dir, const char *name)
{
	if ((size_t)snprintf(out, outsz, "%s/%s", dir, name) >= outsz) {
		fprintf(stderr, "bench_check: path too long: %s/%s\n", dir, name);
		return -1;
	}
	return 0;
}

/* The default config: fixtures/metric.yaml beside this source file. */
static int default_config(char *out, size_t outsz)
{
	const char *file = __FILE__;
	const char *slash = strrchr(file, '/');
	int dirlen = slash ? (int)(slash - file) : 1;
	const char *dir = slash ? file : ".";
	if ((size_t)snprintf(out, outsz, "%.*s/fixtures/metric.yaml", dirlen, dir) >= outsz)
		return -1;
	return 0;
}

static int copy_file(const char *from, const char *to)
{
	int rc = -1;
	char buf[8192];
	size_t n;
	FILE *in = fopen(from, "rb");
	FILE *out = in ? fopen(to, "wb") : NULL;
	if (!in || !out) {
		fprintf(stderr, "bench_check: cannot copy %s to %s: %s\n", from, to,
			strerror(errno));
		goto out;
	}
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		if (fwrite(buf, 1, n, out) != n)
			goto out;
	rc = ferror(in) ? -1 : 0;
out:
	if (in)
		fclose(in);
	if (out && fclose(out) != 0)
		rc = -1;
	return rc;
}

/* The series: orders per 10 minutes, a daily sine plus xorshift noise. */
static double point_value(int64_t t, uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	double noise = ((double)(*s >> 11) / 9007199254740992.0 - 0.5) * 40.0;
	return 500.0 * (1.0 + 0.3 * sin(2.0 * M_PI * (double)(t % 86400) / 86400.0)) + noise;
}

static int sql_exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		fprintf(stderr, "bench_check: source.db: %s\n", msg ? msg : "error");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static int write_source(const char *path)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	uint64_t seed = UINT64_C(0x9E3779B97F4A7C15);
	int rc = -1;
	if (sqlite3_open(path, &db) != SQLITE_OK) {
		fprintf(stderr, "bench_check: cannot create %s\n", path);
		goto out;
	}
	if (sql_exec(db, "DROP TABLE IF EXISTS orders;"
			 "CREATE TABLE orders (period_time TEXT PRIMARY KEY, value REAL NOT NULL,"
			 " hour_of_day INTEGER NOT NULL);"
			 "BEGIN;") != 0)
		goto out;
	if (sqlite3_prepare_v2(db, "INSERT INTO orders VALUES (?, ?, ?)", -1, &st, NULL) !=
	    SQLITE_OK)
		goto out;
	for (int i = 0; i < N_SOURCE; i++) {
		int64_t t = T_FIRST + (int64_t)i * STEP;
		time_t tt = (time_t)t;
		struct tm tm;
		char iso[32];
		gmtime_r(&tt, &tm);
		strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%S", &tm);
		sqlite3_bind_text(st, 1, iso, -1, SQLITE_TRANSIENT);
		sqlite3_bind_double(st, 2, round(point_value(t, &seed) * 1000.0) / 1000.0);
		sqlite3_bind_int(st, 3, tm.tm_hour);
		if (sqlite3_step(st) != SQLITE_DONE)
			goto out;
		sqlite3_reset(st);
	}
	if (sql_exec(db, "COMMIT;") != 0)
		goto out;
	rc = 0;
out:
	if (rc != 0 && db)
		fprintf(stderr, "bench_check: writing %s: %s\n", path, sqlite3_errmsg(db));
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

static int load_config(const char *dir, dtk_config **cfg)
{
	char path[PATH_MAX_LEN], err[2048];
	dtk_config_options copt = {.env_mode = DTK_ENV_STRICT};
	if (path_join(path, sizeof(path), dir, "metric.yaml") != 0)
		return -1;
	if (dtk_config_load(path, &copt, cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "bench_check: config error: %s\n", err);
		return -1;
	}
	if (!(*cfg)->storage.enabled) {
		fprintf(stderr, "bench_check: %s: storage must be enabled\n", path);
		dtk_config_free(cfg);
		return -1;
	}
	return 0;
}

/* The 30 days before the checked point, read by the config's own collector
 * (as `dtk load-history` does) and upserted into its storage. */
static int fill_history(const dtk_config *cfg)
{
	char err[2048];
	dtk_rows rows;
	dtk_store *store = NULL;
	int rc = -1;
	dtk_rows_init(&rows);
	dtk_collect_request req = {
		.metric_name = cfg->name,
		.execution_time = T_FIRST + (int64_t)N_HISTORY * STEP,
		.period_start = T_FIRST,
		.period_finish = T_FIRST + (int64_t)N_HISTORY * STEP,
		.interval = cfg->schedule.interval,
		.interval_text = cfg->schedule.interval_text,
		.base_dir = cfg->base_dir,
	};
	if (cfg->collector.impl->collect(cfg->collector.compiled, &req, &rows, err, sizeof(err)) !=
	    0) {
		fprintf(stderr, "bench_check: collecting the history: %s\n", err);
		goto out;
	}
	if (rows.n != N_HISTORY) {
		fprintf(stderr, "bench_check: the source gave %zu history rows, expected %d\n",
			rows.n, N_HISTORY);
		goto out;
	}
	store = dtk_store_open(cfg->storage.type, cfg->storage.params, cfg->base_dir, NULL, err,
			       sizeof(err));
	if (!store) {
		fprintf(stderr, "bench_check: opening storage: %s\n", err);
		goto out;
	}
	if (dtk_store_upsert(store, cfg->name, rows.rows, rows.n, err, sizeof(err)) != 0) {
		fprintf(stderr, "bench_check: storing the history: %s\n", err);
		goto out;
	}
	rc = 0;
out:
	dtk_store_close(&store);
	dtk_rows_clear(&rows);
	return rc;
}

/* Writes the fixture into dir (created when missing). The working directory
 * becomes dir, so the config's relative sqlite paths resolve there. */
static int prepare(const char *dir, const char *config)
{
	char path[PATH_MAX_LEN];
	dtk_config *cfg = NULL;
	int rc = -1;
	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "bench_check: cannot create %s: %s\n", dir, strerror(errno));
		return -1;
	}
	if (path_join(path, sizeof(path), dir, "metric.yaml") != 0 || copy_file(config, path) != 0)
		return -1;
	if (chdir(dir) != 0) {
		fprintf(stderr, "bench_check: cannot enter %s: %s\n", dir, strerror(errno));
		return -1;
	}
	if (write_source("source.db") != 0 || load_config(".", &cfg) != 0)
		goto out;
	rc = fill_history(cfg);
out:
	dtk_config_free(&cfg);
	return rc;
}

static void remove_fixture(const char *dir)
{
	char path[PATH_MAX_LEN];
	for (size_t i = 0; i < sizeof(fixture_files) / sizeof(fixture_files[0]); i++)
		if (path_join(path, sizeof(path), dir, fixture_files[i]) == 0)
			unlink(path);
	rmdir(dir);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* The q-quantile (nearest rank) of v[0..n), which gets sorted. */
static double quantile(double *v, size_t n, double q)
{
	if (n == 0)
		return NAN;
	qsort(v, n, sizeof(*v), cmp_double);
	size_t k = (size_t)ceil(q * (double)n);
	return v[k ? k - 1 : 0];
}

static double result_num(const dtk_value *v, const char *path)
{
	double d = NAN;
	const dtk_value *x = dtk_value_path(v, path);
	if (!x || !dtk_value_number(x, &d))
		return NAN;
	return d;
}

/* Checks that the first result did the work: status not error, every
 * detector ran (none skipped). Prints what each detector saw. */
static int verify(const dtk_check_result *r, int quiet)
{
	const dtk_value *dets = dtk_value_map_get(r->json, "detections");
	if (strcmp(r->status, "error") == 0 || !dets || dets->type != DTK_V_LIST) {
		const dtk_value *errs = dtk_value_map_get(r->json, "errors");
		fprintf(stderr, "bench_check: the check failed (status %s)\n", r->status);
		for (size_t i = 0; errs && errs->type == DTK_V_LIST && i < errs->u.list.n; i++)
			fprintf(stderr, "  %s: %s\n",
				dtk_value_cstr(dtk_value_map_get(errs->u.list.items[i], "stage")),
				dtk_value_cstr(dtk_value_map_get(errs->u.list.items[i], "message")));
		return -1;
	}
	for (size_t i = 0; i < dets->u.list.n; i++) {
		const dtk_value *d = dets->u.list.items[i];
		const char *id = dtk_value_cstr(dtk_value_map_get(d, "detector_id"));
		const char *skipped = dtk_value_cstr(dtk_value_map_get(d, "skipped"));
		if (skipped) {
			fprintf(stderr, "bench_check: detector %s skipped: %s\n", id, skipped);
			return -1;
		}
		if (!quiet)
			printf("  detector %-16s score %8.3f  window_points %g\n", id,
			       result_num(d, "score"), result_num(d, "metadata.window_points"));
	}
	return 0;
}

static int run_bench(const char *dir, const bench_opts *o)
{
	char state[PATH_MAX_LEN];
	dtk_config *cfg = NULL;
	dtk_session *session = NULL;
	dtk_check_result *res = NULL;
	double *wall = NULL, *stage[N_STAGES] = {NULL};
	long n = 0, cap = 0;
	int rc = -1;

	if (chdir(dir) != 0) {
		fprintf(stderr, "bench_check: cannot enter %s: %s\n", dir, strerror(errno));
		return -1;
	}
	if (load_config(".", &cfg) != 0 || path_join(state, sizeof(state), ".", "state.db") != 0)
		goto out;
	if (!(session = dtk_session_new()))
		goto oom;
	dtk_check_options opt = {
		.has_time = 1,
		.requested_time = T_CHECK,
		.no_alerts = !o->alerts,
		.state_path = state,
	};

	for (int i = 0; i < WARMUP; i++) {
		if (dtk_check_run(cfg, &opt, session, &res) != 0)
			goto oom;
		if (i == 0) {
			if (!o->json)
				printf("bench_check: %s, execution time 2024-11-02T00:10:00Z, "
				       "one thread, one session\n",
				       cfg->name);
			if (verify(res, o->json) != 0)
				goto out;
		}
		dtk_check_result_free(&res);
	}

	double start = mono_s(), elapsed;
	do {
		if (n == cap) {
			long ncap = cap ? cap * 2 : 4096;
			if (ncap > MAX_CHECKS)
				break;
			double *w = realloc(wall, (size_t)ncap * sizeof(double));
			if (!w)
				goto oom;
			wall = w;
			for (size_t s = 0; s < N_STAGES; s++) {
				double *p = realloc(stage[s], (size_t)ncap * sizeof(double));
				if (!p)
					goto oom;
				stage[s] = p;
			}
			cap = ncap;
		}
		double t0 = mono_s();
		if (dtk_check_run(cfg, &opt, session, &res) != 0)
			goto oom;
		wall[n] = (mono_s() - t0) * 1e3;
		for (size_t s = 0; s < N_STAGES; s++) {
			char key[32];
			snprintf(key, sizeof(key), "timings_ms.%s", stage_names[s]);
			stage[s][n] = result_num(res->json, key);
		}
		if (strcmp(res->status, "error") == 0) {
			verify(res, 1);
			goto out;
		}
		dtk_check_result_free(&res);
		n++;
		elapsed = mono_s() - start;
	} while (elapsed < o->seconds || n < o->min_checks);

	double rate = (double)n / elapsed;
	double wall_med = quantile(wall, (size_t)n, 0.5), wall_p90 = quantile(wall, (size_t)n, 0.9);
	double med[N_STAGES];
	for (size_t s = 0; s < N_STAGES; s++)
		med[s] = quantile(stage[s], (size_t)n, 0.5);
	if (o->json) {
		printf("{\"checks\": %ld, \"seconds\": %.3f, \"checks_per_s\": %.1f, "
		       "\"wall_ms\": {\"median\": %.4f, \"p90\": %.4f}, \"timings_ms_median\": {",
		       n, elapsed, rate, wall_med, wall_p90);
		for (size_t s = 0; s < N_STAGES; s++)
			printf("%s\"%s\": %.4f", s ? ", " : "", stage_names[s], med[s]);
		printf("}, \"history_points\": %d, \"alerts\": %s}\n", N_HISTORY,
		       o->alerts ? "true" : "false");
	} else {
		printf("  checks          %ld in %.2f s\n", n, elapsed);
		printf("  checks/s        %.1f\n", rate);
		printf("  per check (ms)  median %.3f  p90 %.3f  (wall time around dtk_check_run)\n",
		       wall_med, wall_p90);
		printf("  stage medians (ms, from timings_ms):");
		for (size_t s = 0; s < N_STAGES; s++)
			printf(" %s %.3f", stage_names[s], med[s]);
		printf("\n");
	}
	rc = 0;
	goto out;
oom:
	fprintf(stderr, "bench_check: out of memory\n");
out:
	dtk_check_result_free(&res);
	free(wall);
	for (size_t s = 0; s < N_STAGES; s++)
		free(stage[s]);
	dtk_session_free(&session);
	dtk_config_free(&cfg);
	return rc;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: bench_check [--fixture DIR | --prepare DIR] [--config YAML]\n"
		   "                   [--seconds S] [--min-checks N] [--alerts] [--json]\n");
}

static int parse_args(int argc, char **argv, bench_opts *o)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		int has_val = i + 1 < argc;
		char *end = NULL;
		if (strcmp(a, "--json") == 0) {
			o->json = 1;
		} else if (strcmp(a, "--alerts") == 0) {
			o->alerts = 1;
		} else if (strcmp(a, "--prepare") == 0 && has_val) {
			o->prepare_dir = argv[++i];
		} else if (strcmp(a, "--fixture") == 0 && has_val) {
			o->fixture_dir = argv[++i];
		} else if (strcmp(a, "--config") == 0 && has_val) {
			o->config = argv[++i];
		} else if (strcmp(a, "--seconds") == 0 && has_val) {
			o->seconds = strtod(argv[++i], &end);
			if (*end || !(o->seconds > 0) || o->seconds > 3600) {
				fprintf(stderr, "bench_check: --seconds: expected 0 < S <= 3600\n");
				return -1;
			}
		} else if (strcmp(a, "--min-checks") == 0 && has_val) {
			errno = 0;
			o->min_checks = strtol(argv[++i], &end, 10);
			if (errno || *end || o->min_checks < 1 || o->min_checks > MAX_CHECKS / 2) {
				fprintf(stderr, "bench_check: --min-checks: expected 1 .. %ld\n",
					MAX_CHECKS / 2);
				return -1;
			}
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			exit(0);
		} else {
			usage(stderr);
			return -1;
		}
	}
	if (o->prepare_dir && o->fixture_dir) {
		fprintf(stderr, "bench_check: give --prepare or --fixture, not both\n");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	bench_opts o = {.seconds = 3.0, .min_checks = 100};
	char config[PATH_MAX_LEN], dir[PATH_MAX_LEN], probe[PATH_MAX_LEN];
	int rc = 1, temporary = 0;
	struct stat sb;

	if (parse_args(argc, argv, &o) != 0)
		return 2;
	if (!o.config) {
		if (default_config(config, sizeof(config)) != 0)
			return 2;
		o.config = config;
	}
	/* absolute paths: prepare and run change the working directory */
	const char *given = o.prepare_dir ? o.prepare_dir : o.fixture_dir;
	if (given) {
		if (mkdir(given, 0755) != 0 && errno != EEXIST) {
			fprintf(stderr, "bench_check: cannot create %s: %s\n", given,
				strerror(errno));
			return 1;
		}
		if (!realpath(given, dir)) {
			fprintf(stderr, "bench_check: %s: %s\n", given, strerror(errno));
			return 1;
		}
	} else {
		const char *tmp = getenv("TMPDIR");
		if ((size_t)snprintf(dir, sizeof(dir), "%s/dtk-bench-XXXXXX",
				     tmp && *tmp ? tmp : "/tmp") >= sizeof(dir) ||
		    !mkdtemp(dir)) {
			fprintf(stderr, "bench_check: cannot create a temporary directory\n");
			return 1;
		}
		temporary = 1;
	}
	if (!realpath(o.config, config)) {
		fprintf(stderr, "bench_check: config %s: %s\n", o.config, strerror(errno));
		goto out;
	}
	if (path_join(probe, sizeof(probe), dir, "source.db") != 0)
		goto out;
	if (o.prepare_dir || temporary || stat(probe, &sb) != 0) {
		if (prepare(dir, config) != 0)
			goto out;
		if (o.prepare_dir) {
			printf("bench_check: fixture ready in %s (%d history points)\n", dir,
			       N_HISTORY);
			rc = 0;
			goto out;
		}
	}
	rc = run_bench(dir, &o) == 0 ? 0 : 1;
out:
	if (temporary)
		remove_fixture(dir);
	return rc;
}
