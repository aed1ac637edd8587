/* mattermost: posts {"text", "username", "icon_url"?, "channel"?} to an
 * incoming-webhook URL (DetectK's payload). The Slack alerter (slack.c) is
 * the same channel with an emoji icon and *single* bold, so the chat
 * webhook code here serves both. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert/chat.h"
#include "util/buf.h"
#include "util/http.h"
#include "util/json.h"
#include "util/params.h"

#define CHAT_ATTEMPTS 3
#define CHAT_RETRY_DELAY_S 1.0
#define CHAT_MAX_RESPONSE (64 * 1024)

typedef struct dtk_chat_webhook {
	const char *type; /* "mattermost" or "slack", for messages */
	char *webhook_url;
	char *username;
	char *icon_url;
	char *icon_emoji; /* Slack only */
	char *channel;
	double timeout_s;
} dtk_chat_webhook;

static const char *const mattermost_params[] = {"webhook_url", "username", "icon_url",
						"channel",     "timeout",  NULL};

/* params[key] as a malloc'd string: absent or null gives a copy of def
 * (NULL stays NULL). -1 with "key: must be a string" otherwise. */
static int str_param(const dtk_value *params, const char *key, const char *def, char **out,
		     char *errstr, size_t errstr_size)
{
	const dtk_value *v = dtk_value_map_get(params, key);
	*out = NULL;
	if (v && v->type != DTK_V_NULL && v->type != DTK_V_STR) {
		snprintf(errstr, errstr_size, "%s: must be a string", key);
		return -1;
	}
	const char *s = v && v->type == DTK_V_STR ? v->u.str.s : def;
	if (s && !(*out = strdup(s))) {
		snprintf(errstr, errstr_size, "%s: out of memory", key);
		return -1;
	}
	return 0;
}

void dtk_chat_webhook_destroy(void *compiled)
{
	dtk_chat_webhook *c = compiled;
	if (!c)
		return;
	free(c->webhook_url);
	free(c->username);
	free(c->icon_url);
	free(c->icon_emoji);
	free(c->channel);
	free(c);
}

/* Compiles the params of a chat webhook; slack adds icon_emoji. Shared
 * with slack.c. */
int dtk_chat_webhook_compile(const char *type, int slack, const dtk_value *params, void **compiled,
			     char *errstr, size_t errstr_size)
{
	char uerr[256];
	dtk_chat_webhook *c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(errstr, errstr_size, "params: out of memory");
		return -1;
	}
	c->type = type;
	if (str_param(params, "webhook_url", NULL, &c->webhook_url, errstr, errstr_size) != 0 ||
	    str_param(params, "username", "DetectK", &c->username, errstr, errstr_size) != 0 ||
	    str_param(params, "icon_url", NULL, &c->icon_url, errstr, errstr_size) != 0 ||
	    str_param(params, "channel", NULL, &c->channel, errstr, errstr_size) != 0 ||
	    (slack && str_param(params, "icon_emoji", ":warning:", &c->icon_emoji, errstr,
				errstr_size) != 0) ||
	    dtk_param_number(params, "timeout", 10, &c->timeout_s, errstr, errstr_size) != 0)
		goto fail;
	if (!c->webhook_url) {
		snprintf(errstr, errstr_size, "webhook_url: required (the incoming webhook URL)");
		goto fail;
	}
	if (dtk_http_check_url(c->webhook_url, uerr, sizeof(uerr)) != 0) {
		snprintf(errstr, errstr_size, "webhook_url: %s", uerr);
		goto fail;
	}
	if (!(c->timeout_s > 0)) {
		snprintf(errstr, errstr_size, "timeout: must be a positive number of seconds");
		goto fail;
	}
	*compiled = c;
	return 0;
fail:
	dtk_chat_webhook_destroy(c);
	return -1;
}

static int mattermost_compile(const dtk_value *params, dtk_value *warnings, void **compiled,
			      char *errstr, size_t errstr_size)
{
	return dtk_chat_webhook_compile("mattermost", 0, params, compiled, errstr, errstr_size);
}

int dtk_chat_webhook_send(const void *compiled, const dtk_alert_message *msg, char *errstr,
			  size_t errstr_size)
{
	const dtk_chat_webhook *c = compiled;
	int rc = -1;
	dtk_buf body;
	dtk_buf_init(&body, 0);
	dtk_value *payload = dtk_value_map();
	if (!payload || dtk_value_map_set_str(payload, "text", msg->text) != 0 ||
	    dtk_value_map_set_str(payload, "username", c->username) != 0 ||
	    (c->icon_url && dtk_value_map_set_str(payload, "icon_url", c->icon_url) != 0) ||
	    (!c->icon_url && c->icon_emoji &&
	     dtk_value_map_set_str(payload, "icon_emoji", c->icon_emoji) != 0) ||
	    (c->channel && dtk_value_map_set_str(payload, "channel", c->channel) != 0) ||
	    dtk_json_emit(&body, payload, DTK_JSON_RAW_UTF8) != 0) {
		snprintf(errstr, errstr_size, "%s: out of memory building the payload", c->type);
		goto out;
	}
	static const char *const headers[] = {"Content-Type: application/json"};
	dtk_http_request req = {.method = "POST",
				.url = c->webhook_url,
				.headers = headers,
				.nheaders = 1,
				.body = body.data,
				.body_len = body.len,
				.timeout_s = c->timeout_s,
				.max_attempts = CHAT_ATTEMPTS,
				.retry_delay_s = CHAT_RETRY_DELAY_S,
				.deadline_ms = msg->deadline_ms,
				.max_response = CHAT_MAX_RESPONSE,
				.secrets = msg->secrets,
				.mask_url_path = 1};
	dtk_http_response resp;
	char herr[1024];
	rc = dtk_http_do(NULL, &req, &resp, herr, sizeof(herr));
	if (rc != 0)
		snprintf(errstr, errstr_size, "%s: %s", c->type, herr);
	dtk_http_response_free(&resp);
out:
	dtk_value_free(&payload);
	dtk_buf_free(&body);
	return rc;
}

const char *dtk_chat_webhook_rate_key(const void *compiled)
{
	return ((const dtk_chat_webhook *)compiled)->webhook_url;
}

const dtk_alerter_type dtk_alerter_mattermost = {
	.name = "mattermost",
	.summary = "post to a Mattermost incoming webhook",
	.compile = mattermost_compile,
	.destroy = dtk_chat_webhook_destroy,
	.send = dtk_chat_webhook_send,
	.known_params = mattermost_params,
	.rate_key = dtk_chat_webhook_rate_key,
};
