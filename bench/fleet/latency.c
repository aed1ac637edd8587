/* latency: bench/fleet.sh's (c), dispatch-to-result latency at a steady rate.
 *
 *   latency --brokers B --topic T --results-topic R --config-dir DIR
 *           [--rate 1000] [--seconds 15] [--drain 15] [--kafka-prop K=V]...
 *           [--samples FILE]
 *
 * Builds one request per config of DIR (*.yaml, sorted, reused in turn when
 * rate x seconds is more than there are) with libdtk-fleet's request builder,
 * storage and alerts off, signed with DTK_SIGNING_KEY when it is set, as
 * dtk-dispatch does. One request goes first, off the clock, and its result
 * is awaited (connections, the producer id, the workers' first fetch). Then
 * the requests are produced at the rate, each at its slot of a monotonic
 * clock (i / rate after the start; a late slot is produced at once, never
 * skipped), without a flush, while the same thread reads the result topic
 * (libdtk-fleet's results reader, from the offsets recorded before
 * publishing). A request's latency is the time its result was read minus
 * the time just before its produce call; dispatched_at is set at that same
 * moment, so the results' timings_ms.queued is the part before a worker
 * took it. After the last slot, results are read until all came or --drain
 * seconds passed.
 *
 * Prints one JSON object: the rate asked and achieved, how many were sent,
 * delivered and answered, the latency's p50, p90, p99, max and mean in ms,
 * the same percentiles of timings_ms.queued, and the largest lag of a
 * produce behind its slot. --samples writes one line per request, "slot
 * ms since the start, latency ms, queued ms" (latency -1: no result), to
 * see whether the slow ones come together. Exit 0 once that is printed (even with results
 * missing), 1 on a Kafka or config error, 2 on a usage error. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/config.h"
#include "dispatch.h"
#include "request.h"
#include "util/clock.h"

#define MAX_PROPS 32

typedef struct sent {
	dtk_request req;
	dtk_dispatch_msg msg;
	double sent_ms, got_ms; /* monotonic; got_ms 0 = no result yet */
	double queued_ms;	/* the result's timings_ms.queued */
} sent;

/* request id -> index into sent[], open addressing (size a power of 2) */
typedef struct id_index {
	size_t *slot; /* index + 1; 0 = empty */
	size_t mask;
} id_index;

static size_t hash_id(const char *s)
{
	size_t h = 1469598103934665603u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211u;
	return h;
}

static int index_init(id_index *x, size_t n)
{
	size_t cap = 16;
	while (cap < 2 * n)
		cap *= 2;
	x->slot = calloc(cap, sizeof(*x->slot));
	x->mask = cap - 1;
	return x->slot ? 0 : -1;
}

static void index_add(id_index *x, const sent *s, size_t i)
{
	size_t h = hash_id(s[i].req.request_id) & x->mask;
	while (x->slot[h])
		h = (h + 1) & x->mask;
	x->slot[h] = i + 1;
}

/* The index of the request with id, or (size_t)-1. */
static size_t index_find(const id_index *x, const sent *s, const char *id)
{
	for (size_t h = hash_id(id) & x->mask; x->slot[h]; h = (h + 1) & x->mask)
		if (!strcmp(s[x->slot[h] - 1].req.request_id, id))
			return x->slot[h] - 1;
	return (size_t)-1;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Nearest rank: the smallest value with at least p of them at or below. */
static double pct(const double *v, size_t n, double p)
{
	if (!n)
		return NAN;
	size_t k = (size_t)ceil(p * (double)n);
	return v[k ? k - 1 : 0];
}

/* The *.yaml files of dir, sorted; malloc'd, or NULL with *n 0. */
static char **list_configs(const char *dir, size_t *n)
{
	DIR *d = opendir(dir);
	char **out = NULL;
	size_t cap = 0;
	struct dirent *e;
	*n = 0;
	if (!d)
		return NULL;
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		if (len < 6 || strcmp(e->d_name + len - 5, ".yaml"))
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 1024;
			char **grown = realloc(out, cap * sizeof(*out));
			if (!grown)
				break;
			out = grown;
		}
		size_t plen = strlen(dir) + len + 2;
		if (!(out[*n] = malloc(plen)))
			break;
		snprintf(out[*n], plen, "%s/%s", dir, e->d_name);
		(*n)++;
	}
	closedir(d);
	if (out)
		qsort(out, *n, sizeof(*out), cmp_str);
	return out;
}

static double arg_num(const char *name, const char *s, double min)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= min)) {
		fprintf(stderr, "latency: %s '%s' is not a number >= %g\n", name, s, min);
		exit(2);
	}
	return v;
}

/* Takes one result: its receive time and queued timing, once per request. */
static void take(dtk_value *res, const id_index *ix, sent *s, long *got, long *dups, long *not_ok)
{
	size_t i = index_find(ix, s, dtk_value_cstr(dtk_value_map_get(res, "request_id")));
	if (i == (size_t)-1)
		return;
	if (s[i].got_ms) {
		(*dups)++;
		return;
	}
	s[i].got_ms = dtk_mono_ms();
	(*got)++;
	if (strcmp(dtk_value_cstr(dtk_value_map_get(res, "status")), "ok") != 0)
		(*not_ok)++;
	const dtk_value *t = dtk_value_map_get(res, "timings_ms");
	const dtk_value *q = t ? dtk_value_map_get(t, "queued") : NULL;
	if (q && q->type == DTK_V_INT)
		s[i].queued_ms = (double)q->u.i;
	else if (q && q->type == DTK_V_FLOAT)
		s[i].queued_ms = q->u.f;
}

int main(int argc, char **argv)
{
	const char *brokers = NULL, *topic = NULL, *results_topic = NULL, *dir = NULL;
	const char *samples = NULL;
	const char *props[MAX_PROPS];
	size_t nprops = 0, nfiles = 0, nloaded = 0;
	double rate = 1000, seconds = 15, drain = 15;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v) {
			fprintf(stderr, "latency: %s needs a value (see bench/fleet/latency.c)\n",
				a);
			return 2;
		}
		i++;
		if (!strcmp(a, "--brokers"))
			brokers = v;
		else if (!strcmp(a, "--topic"))
			topic = v;
		else if (!strcmp(a, "--results-topic"))
			results_topic = v;
		else if (!strcmp(a, "--config-dir"))
			dir = v;
		else if (!strcmp(a, "--rate"))
			rate = arg_num(a, v, 1);
		else if (!strcmp(a, "--seconds"))
			seconds = arg_num(a, v, 0.1);
		else if (!strcmp(a, "--drain"))
			drain = arg_num(a, v, 0);
		else if (!strcmp(a, "--samples"))
			samples = v;
		else if (!strcmp(a, "--kafka-prop") && nprops < MAX_PROPS)
			props[nprops++] = v;
		else {
			fprintf(stderr, "latency: unknown option %s (see bench/fleet/latency.c)\n",
				a);
			return 2;
		}
	}
	if (!brokers || !topic || !results_topic || !dir) {
		fprintf(stderr, "latency: --brokers, --topic, --results-topic and --config-dir are "
				"required\n");
		return 2;
	}

	int rc = 1;
	char err[2048], dispatch_id[DTK_UUID_SIZE];
	size_t total = (size_t)llround(rate * seconds) + 1; /* + the warm-up */
	if (total < 3) {
		fprintf(stderr, "latency: --rate x --seconds must be at least 2 requests\n");
		return 2;
	}
	char **files = list_configs(dir, &nfiles);
	size_t ncfg = nfiles < total ? nfiles : total;
	dtk_config **cfgs = calloc(ncfg ? ncfg : 1, sizeof(*cfgs));
	sent *s = calloc(total, sizeof(*s));
	double *lat = calloc(total, sizeof(*lat)), *queued = calloc(total, sizeof(*queued));
	id_index ix = {0};
	dtk_dispatch *d = NULL;
	dtk_dispatch_results *rd = NULL;
	dtk_value *res = NULL;
	long got = 0, dups = 0, not_ok = 0, produced = 0;
	if (!ncfg) {
		fprintf(stderr, "latency: no *.yaml in %s\n", dir);
		goto out;
	}
	if (!cfgs || !s || !lat || !queued || index_init(&ix, total) != 0 ||
	    dtk_uuid_v4(dispatch_id) != 0) {
		fprintf(stderr, "latency: out of memory\n");
		goto out;
	}
	dtk_config_options co = {.env_mode = DTK_ENV_DEFERRED};
	for (; nloaded < ncfg; nloaded++)
		if (dtk_config_load(files[nloaded], &co, &cfgs[nloaded], err, sizeof(err)) != 0) {
			fprintf(stderr, "latency: %s\n", err);
			goto out;
		}
	dtk_fleet_request_opts ro = {
	    .dispatch_id = dispatch_id,
	    .requested_time = dtk_now_ms() / 1000,
	    .dispatched_at_ms = dtk_now_ms(),
	    .reply_to = strcmp(results_topic, DTK_DISPATCH_RESULT_TOPIC) ? results_topic : NULL,
	};
	for (size_t i = 0; i < total; i++) {
		if (dtk_fleet_request_build(files[i % ncfg], cfgs[i % ncfg], &ro, &s[i].req, err,
					    sizeof(err)) != 0) {
			fprintf(stderr, "latency: %s: %s\n", files[i % ncfg], err);
			goto out;
		}
		s[i].msg.req = &s[i].req;
		index_add(&ix, s, i);
	}
	const char *key = getenv("DTK_SIGNING_KEY");
	dtk_dispatch_opts dopt = {
	    .kafka = {.brokers = brokers,
		      .props = props,
		      .nprops = nprops,
		      .client_id = "dtk-latency"},
	    .topic = topic,
	    .results_topic = results_topic,
	    .source = "/dtk-bench/latency",
	    .signing_key = key,
	};
	if (dtk_dispatch_new(&dopt, &d, err, sizeof(err)) != 0 ||
	    dtk_dispatch_check_topic(d, err, sizeof(err)) != 0 ||
	    dtk_dispatch_mark_results(d, err, sizeof(err)) != 0 ||
	    dtk_dispatch_results_open(d, dispatch_id, &rd, err, sizeof(err)) != 0) {
		fprintf(stderr, "latency: %s\n", err);
		goto out;
	}

	/* the warm-up request, s[0], off the clock */
	s[0].sent_ms = dtk_mono_ms();
	if (dtk_dispatch_produce(d, &s[0].msg) != 0) {
		fprintf(stderr, "latency: %s\n", s[0].msg.error);
		goto out;
	}
	double warm_end = s[0].sent_ms + 30000;
	while (!s[0].got_ms && dtk_mono_ms() < warm_end) {
		dtk_dispatch_poll(d, 0);
		int r = dtk_dispatch_results_poll(rd, 50, &res, err, sizeof(err));
		if (r > 0)
			take(res, &ix, s, &got, &dups, &not_ok);
		else if (r < 0)
			fprintf(stderr, "latency: %s\n", err);
		dtk_value_free(&res);
	}
	if (!s[0].got_ms) {
		fprintf(stderr,
			"latency: no result for the warm-up request within 30 s (are the "
			"workers running on %s?)\n",
			topic);
		goto out;
	}
	fprintf(stderr, "latency: warm-up result after %.1f ms; %zu requests at %.0f/s\n",
		s[0].got_ms - s[0].sent_ms, total - 1, rate);
	got = dups = not_ok = 0;

	/* the paced run: request i (1-based) is due at t0 + (i - 1) / rate */
	double t0 = dtk_mono_ms(), interval = 1000.0 / rate, max_lag = 0, last_sent = t0;
	size_t next = 1;
	double end = 0;
	for (;;) {
		double now = dtk_mono_ms();
		while (next < total && now >= t0 + (double)(next - 1) * interval) {
			double due = t0 + (double)(next - 1) * interval;
			sent *x = &s[next];
			int64_t shift = dtk_now_ms() - x->req.dispatched_at_ms;
			x->req.dispatched_at_ms += shift;
			x->req.deadline_ms += shift;
			x->sent_ms = dtk_mono_ms();
			if (x->sent_ms - due > max_lag)
				max_lag = x->sent_ms - due;
			if (dtk_dispatch_produce(d, &x->msg) == 0)
				produced++;
			else
				fprintf(stderr, "latency: %s\n", x->msg.error);
			last_sent = x->sent_ms;
			next++;
			now = dtk_mono_ms();
		}
		dtk_dispatch_poll(d, 0);
		if (next == total && !end)
			end = now + drain * 1000;
		if (end && ((size_t)got == total - 1 || now >= end))
			break;
		/* wait for a result at most until the next slot; under a
		 * millisecond (librdkafka's granularity) sleep instead, or the
		 * probe spins a core that the fleet under test needs */
		int wait = 0;
		if (next < total) {
			double left = t0 + (double)(next - 1) * interval - dtk_mono_ms();
			if (left >= 1) {
				wait = (int)left;
			} else if (left > 0) {
				struct timespec ts = {0, (long)(left * 1e6)};
				nanosleep(&ts, NULL);
			}
		} else {
			wait = 10;
		}
		/* then every result already there: one read per slot would
		 * fall behind at the very rate being measured */
		for (int r = dtk_dispatch_results_poll(rd, wait, &res, err, sizeof(err));;
		     r = dtk_dispatch_results_poll(rd, 0, &res, err, sizeof(err))) {
			if (r > 0)
				take(res, &ix, s, &got, &dups, &not_ok);
			else if (r < 0)
				fprintf(stderr, "latency: %s\n", err);
			dtk_value_free(&res);
			if (r <= 0)
				break;
		}
	}
	while (dtk_dispatch_poll(d, 100) > 0 && dtk_mono_ms() < end + 30000)
		;

	FILE *sf = samples ? fopen(samples, "w") : NULL;
	if (samples && !sf)
		fprintf(stderr, "latency: cannot write %s: %s\n", samples, strerror(errno));
	for (size_t i = 1; sf && i < total; i++)
		fprintf(sf, "%.3f %.3f %.0f\n", s[i].sent_ms - t0,
			s[i].got_ms ? s[i].got_ms - s[i].sent_ms : -1.0, s[i].queued_ms);
	if (sf)
		fclose(sf);
	size_t nlat = 0, nq = 0, delivered = 0;
	for (size_t i = 1; i < total; i++) {
		delivered += s[i].msg.error[0] == '\0';
		if (s[i].got_ms) {
			lat[nlat++] = s[i].got_ms - s[i].sent_ms;
			queued[nq++] = s[i].queued_ms;
		}
	}
	qsort(lat, nlat, sizeof(*lat), cmp_double);
	qsort(queued, nq, sizeof(*queued), cmp_double);
	double sum = 0;
	for (size_t i = 0; i < nlat; i++)
		sum += lat[i];
	double span = last_sent - t0;
	printf("{\"rate\": %.0f, \"seconds\": %.1f, \"achieved_rate\": %.1f, \"sent\": %zu, "
	       "\"produced\": %ld, \"delivered\": %zu, \"results\": %ld, \"missing\": %ld, "
	       "\"duplicates\": %ld, \"not_ok\": %ld, \"max_produce_lag_ms\": %.3f",
	       rate, seconds, span > 0 ? (double)(total - 2) * 1000.0 / span : 0.0, total - 1,
	       produced, delivered, got, (long)(total - 1) - got, dups, not_ok, max_lag);
	const struct {
		const char *name;
		double v;
	} stats[] = {
	    {"p50_ms", pct(lat, nlat, 0.50)},
	    {"p90_ms", pct(lat, nlat, 0.90)},
	    {"p99_ms", pct(lat, nlat, 0.99)},
	    {"max_ms", nlat ? lat[nlat - 1] : NAN},
	    {"mean_ms", nlat ? sum / (double)nlat : NAN},
	    {"queued_p50_ms", pct(queued, nq, 0.50)},
	    {"queued_p99_ms", pct(queued, nq, 0.99)},
	};
	for (size_t i = 0; i < sizeof(stats) / sizeof(stats[0]); i++)
		if (isnan(stats[i].v))
			printf(", \"%s\": null", stats[i].name);
		else
			printf(", \"%s\": %.3f", stats[i].name, stats[i].v);
	printf("}\n");
	rc = 0;
out:
	dtk_value_free(&res);
	dtk_dispatch_results_free(&rd);
	if (d)
		while (dtk_dispatch_poll(d, 100) > 0)
			;
	dtk_dispatch_free(&d);
	for (size_t i = 0; s && i < total; i++)
		dtk_request_clear(&s[i].req);
	for (size_t i = 0; i < nloaded; i++)
		dtk_config_free(&cfgs[i]);
	for (size_t i = 0; i < nfiles; i++)
		free(files[i]);
	free(files);
	free(cfgs);
	free(s);
	free(lat);
	free(queued);
	free(ix.slot);
	return rc;
}
