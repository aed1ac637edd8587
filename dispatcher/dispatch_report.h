/* The report of a dispatch (dispatch_report.c). */
#ifndef DTK_DISPATCHER_REPORT_H
#define DTK_DISPATCHER_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "select.h"
#include "util/value.h"

/* What became of one valid selected config. */
typedef struct dispatch_entry {
	const char *metric;
	const char *request_id; /* published requests; NULL in-process */
	int64_t execution_time;
	const char *undelivered; /* why its request was not delivered, or NULL */
	int has_position;	 /* published: partition and offset are set */
	int partition;
	int64_t offset;
	dtk_value *result; /* the result object, or NULL (missing); the report may take it */
} dispatch_entry;

/* Prints the report of items (config errors) and e (one entry per item)
 * on stdout: text, or the JSON of fleet.md with json (plus the published
 * requests and undelivered ones when any entry has a position).
 * Diagnostics go to stderr. where names the mode ("in-process", "Kafka,
 * TOPIC"). Returns the exit code of cli.md. */
int dispatch_report(const dtk_selected *items, dispatch_entry *e, size_t n,
		    const char *dispatch_id, const char *where, int waited, int64_t timeout_s,
		    int json, int fail_on_anomaly);

#endif
