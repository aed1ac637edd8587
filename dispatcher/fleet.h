/* dtk-dispatch with --brokers: publish one check request per selected
 * config through libdtk-fleet and, with --wait, report the workers'
 * results as the in-process run reports its own. */
#ifndef DTK_DISPATCHER_FLEET_H
#define DTK_DISPATCHER_FLEET_H

#include <stddef.h>
#include <stdint.h>

#include "options.h"
#include "select.h"

/* Publishes (and awaits) the requests of items, a selection loaded in
 * deferred mode; items with a build error (a profile with a secret in
 * clear, an unreadable file) become config errors. Prints the report on
 * stdout (text, or the JSON of fleet.md with json) and diagnostics on
 * stderr. Returns the exit code of cli.md. Everything is borrowed. */
int dispatch_fleet(const dtk_opts *o, dtk_selected *items, size_t n, const char *dispatch_id,
		   int64_t requested_time, int json);

#endif
