/* dtk load-history: fills storage from the source over a time range. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "db/db.h"
#include "store/store.h"

static void history_usage(FILE *f)
{
	fprintf(f,
		"usage: dtk load-history CONFIG --from T [--to T] [--profiles FILE]\n\n"
		"Fills the metric's storage from its source between --from and --to (default\n"
		"now), both aligned to the interval grid. Sources whose rows carry a timestamp\n"
		"are asked for schedule.batch_load_days (30) at a time; value-only queries\n"
		"once per interval. Each batch is committed on its own, so an interrupted load\n"
		"resumes after the newest stored point; re-running is idempotent.\n");
}

static void progress(int tty, int64_t done, int64_t total, size_t rows)
{
	if (!tty)
		return;
	fprintf(stderr, "\r  %3d%%  %zu rows", total ? (int)(done * 100 / total) : 100, rows);
	fflush(stderr);
}

int cmd_load_history(int argc, char **argv)
{
	static const struct option opts[] = {
		{"from", required_argument, NULL, 'f'},
		{"to", required_argument, NULL, 'T'},
		{"profiles", required_argument, NULL, 'p'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int64_t from = 0, to = (int64_t)time(NULL);
	int has_from = 0, c, rc = DTK_EXIT_FAILED;
	const char *profiles = NULL;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (dtk_report_parse_time(optarg, &from) != 0)
				return DTK_EXIT_USAGE;
			has_from = 1;
			break;
		case 'T':
			if (dtk_report_parse_time(optarg, &to) != 0)
				return DTK_EXIT_USAGE;
			break;
		case 'p':
			profiles = optarg;
			break;
		case 'h':
			history_usage(stdout);
			return DTK_EXIT_OK;
		default:
			history_usage(stderr);
			return DTK_EXIT_USAGE;
		}
	}
	if (optind != argc - 1 || !has_from) {
		fprintf(stderr, "dtk load-history: give CONFIG and --from\n");
		history_usage(stderr);
		return DTK_EXIT_USAGE;
	}
	dtk_config_options copt = {.env_mode = DTK_ENV_STRICT, .profiles_path = profiles};
	dtk_config *cfg = NULL;
	dtk_store *store = NULL;
	dtk_db_pool *pool = dtk_db_pool_new();
	dtk_rows rows;
	char err[2048];
	dtk_rows_init(&rows);
	if (dtk_config_load(argv[optind], &copt, &cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "dtk: config error: %s\n", err);
		rc = DTK_EXIT_USAGE;
		goto out;
	}
	if (!cfg->storage.enabled) {
		fprintf(stderr, "dtk: %s: storage is disabled; nothing to load into\n", cfg->path);
		rc = DTK_EXIT_USAGE;
		goto out;
	}
	int64_t iv = cfg->schedule.interval;
	from = dtk_config_align(cfg, from);
	to = dtk_config_align(cfg, to);
	if (from >= to) {
		fprintf(stderr, "dtk: --from must be before --to (after alignment)\n");
		rc = DTK_EXIT_USAGE;
		goto out;
	}
	store = dtk_store_open(cfg->storage.type, cfg->storage.params, cfg->base_dir, pool, err,
			       sizeof(err));
	if (!store) {
		fprintf(stderr, "dtk: storage: %s\n", err);
		goto out;
	}
	const dtk_collector_type *ct = cfg->collector.impl;
	int batched = ct->has_timestamps && ct->has_timestamps(cfg->collector.compiled);
	/* resume after the newest stored point */
	int64_t last;
	int found;
	if (dtk_store_last(store, cfg->name, &last, &found, err, sizeof(err)) != 0) {
		fprintf(stderr, "dtk: storage: %s\n", err);
		goto out;
	}
	int64_t start = from;
	int64_t resume = batched ? last + iv : last;
	if (found && resume > start && resume < to) {
		start = from + (resume - from) / iv * iv;
		fprintf(stderr, "resuming after %lld (newest stored point)\n", (long long)last);
	}
	int tty = isatty(STDERR_FILENO);
	int64_t step = batched ? cfg->schedule.batch_load_days * 86400 / iv * iv : iv;
	if (step < iv)
		step = iv;
	size_t total_rows = 0;
	for (int64_t s = start; s < to; s += step) {
		int64_t e = s + step < to ? s + step : to;
		/* execution time of the whole load, so relative offsets in a
		 * source (synthetic anomalies) mean the same as in `dtk run --to` */
		dtk_collect_request req = {
			.metric_name = cfg->name,
			.execution_time = to,
			.period_start = s - cfg->schedule.delay,
			.period_finish = e - cfg->schedule.delay,
			.interval = iv,
			.interval_text = cfg->schedule.interval_text,
			.base_dir = cfg->base_dir,
			.pool = pool,
		};
		if (ct->collect(cfg->collector.compiled, &req, &rows, err, sizeof(err)) != 0) {
			char masked[2048];
			dtk_config_mask(cfg, err, masked, sizeof(masked));
			fprintf(stderr, "%sdtk: collect [%lld, %lld): %s\n", tty ? "\n" : "",
				(long long)s, (long long)e, masked);
			goto out;
		}
		if (!rows.n && !batched)
			dtk_rows_push(&rows, req.period_finish, 0, 1, NULL);
		if (rows.n && dtk_store_upsert(store, cfg->name, rows.rows, rows.n, err,
					       sizeof(err)) != 0) {
			fprintf(stderr, "%sdtk: storage: %s\n", tty ? "\n" : "", err);
			goto out;
		}
		total_rows += rows.n;
		dtk_rows_clear(&rows);
		dtk_rows_init(&rows);
		progress(tty, e - start, to - start, total_rows);
	}
	if (tty)
		fputc('\n', stderr);
	char t1[48], t2[48];
	dtk_format_time(start * 1000, 0, t1, sizeof(t1));
	dtk_format_time(to * 1000, 0, t2, sizeof(t2));
	printf("%s: loaded %zu points from %s to %s\n", cfg->name, total_rows, t1, t2);
	rc = DTK_EXIT_OK;
out:
	dtk_rows_clear(&rows);
	dtk_store_close(&store);
	dtk_db_pool_free(&pool);
	dtk_config_free(&cfg);
	return rc;
}
