#include "kafka.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/clock.h"

#define ENV_PREFIX "DTK_KAFKA_PROP_"

static int conf_set(rd_kafka_conf_t *conf, const char *name, const char *value,
		    const char *origin, char *errstr, size_t errstr_size)
{
	char err[512];
	if (rd_kafka_conf_set(conf, name, value, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
		snprintf(errstr, errstr_size, "Kafka property '%s' (%s): %s", name, origin, err);
		return -1;
	}
	return 0;
}

/* A required property the user also set must agree with it. */
static int check_required(const dtk_kafka_prop *required, size_t nrequired, const char *name,
			  const char *value, const char *origin, char *errstr, size_t errstr_size)
{
	for (size_t i = 0; i < nrequired; i++) {
		if (strcmp(required[i].name, name) != 0 || strcasecmp(required[i].value, value) == 0)
			continue;
		snprintf(errstr, errstr_size,
			 "Kafka property '%s' (%s) cannot be changed: this client always uses %s=%s",
			 name, origin, required[i].name, required[i].value);
		return -1;
	}
	return 0;
}

int dtk_kafka_env_prop(const char *entry, char *name, size_t namesz, const char **value)
{
	if (strncmp(entry, ENV_PREFIX, strlen(ENV_PREFIX)) != 0)
		return 0;
	const char *var = entry + strlen(ENV_PREFIX), *eq = strchr(var, '=');
	size_t n = eq ? (size_t)(eq - var) : 0;
	if (!n || n >= namesz)
		return -1;
	for (size_t i = 0; i < n; i++)
		name[i] = var[i] == '_' ? '.' : (char)tolower((unsigned char)var[i]);
	name[n] = '\0';
	*value = eq + 1;
	return 1;
}

/* DTK_KAFKA_PROP_SECURITY_PROTOCOL=SSL is security.protocol=SSL. */
static int apply_env(rd_kafka_conf_t *conf, const dtk_kafka_prop *required, size_t nrequired,
		     char *errstr, size_t errstr_size)
{
	for (char **e = environ; e && *e; e++) {
		char prop[256], origin[300];
		const char *value = NULL;
		int r = dtk_kafka_env_prop(*e, prop, sizeof(prop), &value);
		if (r == 0)
			continue;
		/* the variable's name only: its value may be a secret */
		int namelen = (int)strcspn(*e, "=");
		if (r < 0) {
			snprintf(errstr, errstr_size,
				 "environment variable %.*s: not a property (DTK_KAFKA_PROP_<NAME> "
				 "with NAME a librdkafka property, '_' for '.')",
				 namelen > 200 ? 200 : namelen, *e);
			return -1;
		}
		snprintf(origin, sizeof(origin), "from %.*s", namelen > 280 ? 280 : namelen, *e);
		if (check_required(required, nrequired, prop, value, origin, errstr, errstr_size) !=
			0 ||
		    conf_set(conf, prop, value, origin, errstr, errstr_size) != 0)
			return -1;
	}
	return 0;
}

/* 1 when name is a librdkafka property (whatever value it would take). */
static int known_property(const char *name)
{
	char err[256];
	rd_kafka_conf_t *scratch = rd_kafka_conf_new();
	rd_kafka_conf_res_t r = rd_kafka_conf_set(scratch, name, "", err, sizeof(err));
	rd_kafka_conf_destroy(scratch);
	return r != RD_KAFKA_CONF_UNKNOWN;
}

/* "name=value" list values (--kafka-prop, a file's kafka-prop), split at
 * commas like every list option: a piece that does not start with a known
 * property's "name=" continues the previous value (ssl.cipher.suites=A,B).
 * origin names the list in messages. */
static int apply_props(rd_kafka_conf_t *conf, const char *const *props, size_t nprops,
		       const char *origin, const dtk_kafka_prop *required, size_t nrequired,
		       char *errstr, size_t errstr_size)
{
	dtk_buf name, value;
	int rc = -1;
	dtk_buf_init(&name, 256);
	dtk_buf_init(&value, 64 << 10);
	for (size_t i = 0; i <= nprops; i++) {
		const char *kv = i < nprops ? props[i] : NULL, *eq = kv ? strchr(kv, '=') : NULL;
		int starts = 0;
		if (eq && eq != kv) {
			dtk_buf prefix;
			dtk_buf_init(&prefix, 256);
			dtk_buf_add(&prefix, kv, (size_t)(eq - kv));
			starts = !prefix.failed && known_property(dtk_buf_str(&prefix));
			dtk_buf_free(&prefix);
		}
		if (kv && !starts && name.len) {
			dtk_buf_printf(&value, ",%s", kv);
			continue;
		}
		if (name.len) {
			if (value.failed) {
				snprintf(errstr, errstr_size, "%s %s: value too long", origin,
					 dtk_buf_str(&name));
				goto out;
			}
			if (check_required(required, nrequired, dtk_buf_str(&name),
					   dtk_buf_str(&value), origin, errstr, errstr_size) != 0 ||
			    conf_set(conf, dtk_buf_str(&name), dtk_buf_str(&value), origin, errstr,
				     errstr_size) != 0)
				goto out;
		}
		if (!kv)
			break;
		if (!eq || eq == kv || (!starts && !name.len)) {
			/* an unknown name: librdkafka says so */
			if (eq && eq != kv) {
				dtk_buf_reset(&name);
				dtk_buf_add(&name, kv, (size_t)(eq - kv));
				conf_set(conf, dtk_buf_str(&name), eq + 1, origin, errstr,
					 errstr_size);
			} else if (!eq && known_property(kv)) {
				snprintf(errstr, errstr_size,
					 "%s '%.200s': expected NAME=VALUE (a librdkafka property)",
					 origin, kv);
			} else {
				/* not echoed: a mistyped "sasl.password:..." is a secret */
				snprintf(errstr, errstr_size,
					 "%s: an entry is not NAME=VALUE with NAME a librdkafka "
					 "property (the entry is not shown: it may hold a secret)",
					 origin);
			}
			goto out;
		}
		dtk_buf_reset(&name);
		dtk_buf_reset(&value);
		dtk_buf_add(&name, kv, (size_t)(eq - kv));
		dtk_buf_adds(&value, eq + 1);
	}
	rc = 0;
out:
	dtk_buf_free(&name);
	dtk_buf_free(&value);
	return rc;
}

void dtk_kafka_settings_user_props(dtk_kafka_settings *s, const char *const *list, size_t n,
				   const char *origin)
{
	if (!n)
		return;
	if (origin && strcmp(origin, "flag") == 0) {
		s->props = list;
		s->nprops = n;
	} else {
		s->file_props = list;
		s->nfile_props = n;
		s->file = origin;
	}
}

rd_kafka_conf_t *dtk_kafka_conf_new(const dtk_kafka_settings *s, const dtk_kafka_prop *defaults,
				    size_t ndefaults, const dtk_kafka_prop *required,
				    size_t nrequired, char *errstr, size_t errstr_size)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char file_origin[1100];
	if (!conf) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	if (conf_set(conf, "bootstrap.servers", s->brokers, "--brokers", errstr, errstr_size) != 0)
		goto fail;
	if (s->client_id &&
	    conf_set(conf, "client.id", s->client_id, "default", errstr, errstr_size) != 0)
		goto fail;
	for (size_t i = 0; i < ndefaults; i++)
		if (conf_set(conf, defaults[i].name, defaults[i].value, "default", errstr,
			     errstr_size) != 0)
			goto fail;
	/* the file's list loses to the environment, which loses to the flags */
	snprintf(file_origin, sizeof(file_origin), "kafka_prop in %.1000s",
		 s->file ? s->file : "the settings file");
	if (apply_props(conf, s->file_props, s->nfile_props, file_origin, required, nrequired,
			errstr, errstr_size) != 0 ||
	    apply_env(conf, required, nrequired, errstr, errstr_size) != 0 ||
	    apply_props(conf, s->props, s->nprops, "--kafka-prop", required, nrequired, errstr,
			errstr_size) != 0)
		goto fail;
	for (size_t i = 0; i < nrequired; i++)
		if (conf_set(conf, required[i].name, required[i].value, "required", errstr,
			     errstr_size) != 0)
			goto fail;
	return conf;
fail:
	rd_kafka_conf_destroy(conf);
	return NULL;
}

rd_kafka_headers_t *dtk_kafka_headers(const dtk_msg_headers *h)
{
	rd_kafka_headers_t *hdrs = rd_kafka_headers_new(h->n);
	if (!hdrs)
		return NULL;
	for (size_t i = 0; i < h->n; i++) {
		if (rd_kafka_header_add(hdrs, h->h[i].name, -1, h->h[i].value, -1) !=
		    RD_KAFKA_RESP_ERR_NO_ERROR) {
			rd_kafka_headers_destroy(hdrs);
			return NULL;
		}
	}
	return hdrs;
}

int dtk_kafka_create_topics(rd_kafka_t *rk, const dtk_kafka_topic_spec *topics, size_t n,
			    int timeout_ms, char *errstr, size_t errstr_size)
{
	rd_kafka_NewTopic_t **nt = calloc(n ? n : 1, sizeof(*nt));
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_AdminOptions_t *ao = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
	rd_kafka_event_t *ev = NULL;
	dtk_buf msg;
	char err[512];
	int rc = -1;
	dtk_buf_init(&msg, 8192);
	if (!nt || !q || !ao) {
		snprintf(errstr, errstr_size, "out of memory");
		goto out;
	}
	if (rd_kafka_AdminOptions_set_request_timeout(ao, timeout_ms, err, sizeof(err)) ||
	    rd_kafka_AdminOptions_set_operation_timeout(ao, timeout_ms, err, sizeof(err))) {
		snprintf(errstr, errstr_size, "creating topics: %s", err);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		nt[i] = rd_kafka_NewTopic_new(topics[i].name, topics[i].partitions,
					      topics[i].replication_factor, err, sizeof(err));
		if (!nt[i]) {
			snprintf(errstr, errstr_size, "topic %s: %s", topics[i].name, err);
			goto out;
		}
		if (topics[i].max_message_bytes &&
		    rd_kafka_NewTopic_set_config(nt[i], "max.message.bytes",
						 topics[i].max_message_bytes)) {
			snprintf(errstr, errstr_size, "topic %s: out of memory", topics[i].name);
			goto out;
		}
	}
	rd_kafka_CreateTopics(rk, nt, n, ao, q);
	/* the operation times out on its own; the margin covers the round trip */
	ev = rd_kafka_queue_poll(q, timeout_ms + 5000);
	if (!ev) {
		snprintf(errstr, errstr_size, "creating topics: no answer from the brokers within %d ms",
			 timeout_ms);
		goto out;
	}
	if (rd_kafka_event_error(ev)) {
		snprintf(errstr, errstr_size, "creating topics: %s", rd_kafka_event_error_string(ev));
		goto out;
	}
	const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
	size_t nres = 0;
	const rd_kafka_topic_result_t **tr = res ? rd_kafka_CreateTopics_result_topics(res, &nres)
						 : NULL;
	for (size_t i = 0; i < nres; i++) {
		rd_kafka_resp_err_t e = rd_kafka_topic_result_error(tr[i]);
		if (e == RD_KAFKA_RESP_ERR_NO_ERROR || e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
			continue;
		const char *es = rd_kafka_topic_result_error_string(tr[i]);
		dtk_buf_printf(&msg, "%stopic %s: %s", msg.len ? "; " : "",
			       rd_kafka_topic_result_name(tr[i]), es ? es : rd_kafka_err2str(e));
	}
	if (msg.len) {
		snprintf(errstr, errstr_size, "creating topics: %s", dtk_buf_str(&msg));
		goto out;
	}
	rc = 0;
out:
	if (ev)
		rd_kafka_event_destroy(ev);
	for (size_t i = 0; nt && i < n; i++)
		if (nt[i])
			rd_kafka_NewTopic_destroy(nt[i]);
	free(nt);
	if (ao)
		rd_kafka_AdminOptions_destroy(ao);
	if (q)
		rd_kafka_queue_destroy(q);
	dtk_buf_free(&msg);
	return rc;
}

/* Errors that go away once a new topic's leaders are elected. */
static int transient(rd_kafka_resp_err_t e)
{
	return e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
	       e == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE ||
	       e == RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION ||
	       e == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION ||
	       e == RD_KAFKA_RESP_ERR__TRANSPORT;
}

#define RETRY_PAUSE_MS 200
#define UNKNOWN_TOPIC_MS 3000

int dtk_kafka_partitions(rd_kafka_t *rk, const char *topic, int timeout_ms, int32_t **out,
			 size_t *n, char *errstr, size_t errstr_size)
{
	int64_t start = dtk_now_ms(), end = start + timeout_ms;
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
	rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR__TIMED_OUT;
	*out = NULL;
	*n = 0;
	if (!rkt) {
		snprintf(errstr, errstr_size, "topic %s: %s", topic,
			 rd_kafka_err2str(rd_kafka_last_error()));
		return -1;
	}
	for (;;) {
		int64_t left = end - dtk_now_ms();
		const struct rd_kafka_metadata *md = NULL;
		if (left <= 0)
			break;
		e = rd_kafka_metadata(rk, 0, rkt, &md, (int)left);
		if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
			e = md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
			int leaders = e == RD_KAFKA_RESP_ERR_NO_ERROR && md->topics[0].partition_cnt > 0;
			for (int i = 0; leaders && i < md->topics[0].partition_cnt; i++)
				if (md->topics[0].partitions[i].leader < 0)
					leaders = 0;
			if (leaders) {
				size_t cnt = (size_t)md->topics[0].partition_cnt;
				*out = calloc(cnt, sizeof(**out));
				if (*out) {
					for (size_t i = 0; i < cnt; i++)
						(*out)[i] = md->topics[0].partitions[i].id;
					*n = cnt;
				}
				rd_kafka_metadata_destroy(md);
				rd_kafka_topic_destroy(rkt);
				if (!*out) {
					snprintf(errstr, errstr_size, "out of memory");
					return -1;
				}
				return 0;
			}
			if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
				e = RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE;
			rd_kafka_metadata_destroy(md);
		}
		if (!transient(e) && e != RD_KAFKA_RESP_ERR__TIMED_OUT)
			break;
		/* a topic created a moment ago may be unknown for a while; one
		 * that stays unknown does not exist */
		if ((e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
		     e == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC) &&
		    dtk_now_ms() - start > UNKNOWN_TOPIC_MS)
			break;
		dtk_sleep_ms(RETRY_PAUSE_MS);
	}
	rd_kafka_topic_destroy(rkt);
	if (e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || e == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC)
		snprintf(errstr, errstr_size,
			 "topic %s does not exist (create it with --create-topics)", topic);
	else
		snprintf(errstr, errstr_size, "topic %s: no metadata within %d ms: %s", topic,
			 timeout_ms, rd_kafka_err2str(e));
	return -1;
}

int dtk_kafka_end_offset(rd_kafka_t *rk, const char *topic, int32_t partition, int timeout_ms,
			 int64_t *out, char *errstr, size_t errstr_size)
{
	int64_t end = dtk_now_ms() + timeout_ms;
	rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR__TIMED_OUT;
	for (;;) {
		int64_t left = end - dtk_now_ms(), low = 0, high = 0;
		if (left <= 0)
			break;
		e = rd_kafka_query_watermark_offsets(rk, topic, partition, &low, &high, (int)left);
		if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
			*out = high;
			return 0;
		}
		if (!transient(e))
			break;
		dtk_sleep_ms(RETRY_PAUSE_MS);
	}
	snprintf(errstr, errstr_size, "end offset of %s [%d] (within %d ms): %s", topic,
		 (int)partition, timeout_ms, rd_kafka_err2str(e));
	return -1;
}
