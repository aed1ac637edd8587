/* The alerter table: a new alerter is one file plus one line here. */
#include <string.h>

#include "alert/alerter.h"

extern const dtk_alerter_type dtk_alerter_console;
extern const dtk_alerter_type dtk_alerter_mattermost;
extern const dtk_alerter_type dtk_alerter_slack;
extern const dtk_alerter_type dtk_alerter_webhook;
extern const dtk_alerter_type dtk_alerter_alertmanager;

static const dtk_alerter_type *const alerters[] = {
	&dtk_alerter_console,
	&dtk_alerter_mattermost,
	&dtk_alerter_slack,
	&dtk_alerter_webhook,
	&dtk_alerter_alertmanager,
	NULL,
};

const dtk_alerter_type *dtk_alerter_find(const char *name)
{
	for (size_t i = 0; alerters[i]; i++)
		if (strcmp(alerters[i]->name, name) == 0)
			return alerters[i];
	return NULL;
}

const dtk_alerter_type *const *dtk_alerter_types(void)
{
	return alerters;
}
