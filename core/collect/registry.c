/* The collector table: a new collector is one file plus one line here. */
#include <stddef.h>
#include <string.h>

#include "collect/collector.h"

extern const dtk_collector_type dtk_collector_synthetic;
extern const dtk_collector_type dtk_collector_sqlite;
extern const dtk_collector_type dtk_collector_sql;
extern const dtk_collector_type dtk_collector_clickhouse;
extern const dtk_collector_type dtk_collector_http;
extern const dtk_collector_type dtk_collector_prometheus;
extern const dtk_collector_type dtk_collector_postgres;
extern const dtk_collector_type dtk_collector_mysql;

static const dtk_collector_type *const collector_types[] = {
	&dtk_collector_synthetic,
	&dtk_collector_sqlite,
	&dtk_collector_sql,
	&dtk_collector_clickhouse,
	&dtk_collector_http,
	&dtk_collector_prometheus,
	&dtk_collector_postgres,
	&dtk_collector_mysql,
	NULL,
};

const dtk_collector_type *dtk_collector_find(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; collector_types[i]; i++)
		if (strcmp(collector_types[i]->name, name) == 0)
			return collector_types[i];
	return NULL;
}

const dtk_collector_type *const *dtk_collector_types(void)
{
	return collector_types;
}
