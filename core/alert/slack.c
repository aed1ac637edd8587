/* slack: posts {"text", "username", "icon_url" or "icon_emoji",
 * "channel"?} to an incoming-webhook URL. The same chat webhook as
 * Mattermost (mattermost.c), with icon_emoji (":warning:") and default
 * messages in Slack's *single-asterisk* bold. Only the URL scheme is
 * checked: Slack-compatible receivers live on any host. */
#include <stddef.h>

#include "alert/chat.h"

static const char *const slack_params[] = {"webhook_url", "username", "icon_url", "icon_emoji",
					   "channel",	  "timeout",  NULL};

static int slack_compile(const dtk_value *params, dtk_value *warnings, void **compiled,
			 char *errstr, size_t errstr_size)
{
	return dtk_chat_webhook_compile("slack", 1, params, compiled, errstr, errstr_size);
}

const dtk_alerter_type dtk_alerter_slack = {
	.name = "slack",
	.summary = "post to a Slack incoming webhook (*bold* messages)",
	.bold_single = 1,
	.compile = slack_compile,
	.destroy = dtk_chat_webhook_destroy,
	.send = dtk_chat_webhook_send,
	.known_params = slack_params,
	.rate_key = dtk_chat_webhook_rate_key,
};
