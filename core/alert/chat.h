/* The chat-webhook channel shared by the mattermost and slack alerters
 * (mattermost.c holds the code; slack.c is the same channel with an emoji
 * icon and *single* bold). */
#ifndef DTK_ALERT_CHAT_H
#define DTK_ALERT_CHAT_H

#include <stddef.h>

#include "alert/alerter.h"

/* Compiles a chat webhook of alerter type `type`; slack selects Slack's
 * payload (icon_emoji). Compiled form owned by the caller. */
int dtk_chat_webhook_compile(const char *type, int slack, const dtk_value *params, void **compiled,
			     char *errstr, size_t errstr_size);
void dtk_chat_webhook_destroy(void *compiled);
int dtk_chat_webhook_send(const void *compiled, const dtk_alert_message *msg, char *errstr,
			  size_t errstr_size);
/* The webhook URL (the rate-limit key); borrowed from compiled. */
const char *dtk_chat_webhook_rate_key(const void *compiled);

#endif
