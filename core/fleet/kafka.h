/* librdkafka plumbing shared by the fleet binaries: client configuration
 * from flags, DTK_KAFKA_PROP_<NAME> variables and settings files, topic
 * creation, and the CloudEvents headers of core/message.h as librdkafka
 * headers. Only librdkafka 2.0.2's API (Debian 12) is used.
 *
 * Thread safety: every function is reentrant; the handles passed in follow
 * librdkafka's rules. */
#ifndef DTK_FLEET_KAFKA_H
#define DTK_FLEET_KAFKA_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "message.h"

/* Where the brokers are and what the user set. Everything is borrowed. */
typedef struct dtk_kafka_settings {
	const char *brokers; /* bootstrap.servers */
	/* "name=value" from the kafka_prop list of the settings file `file`
	 * (named in messages), before the environment */
	const char *const *file_props;
	size_t nfile_props;
	const char *file;
	const char *const *props; /* "name=value" (--kafka-prop), after the environment */
	size_t nprops;
	const char *client_id; /* NULL = librdkafka's default */
} dtk_kafka_settings;

/* Puts the user's "name=value" list where its origin ranks it: a list
 * from flags ("flag") in props, after the environment; one from a settings
 * file (origin = the file's name) in file_props, before it. All borrowed. */
void dtk_kafka_settings_user_props(dtk_kafka_settings *s, const char *const *list, size_t n,
				   const char *origin);

/* A default or required property of one client. */
typedef struct dtk_kafka_prop {
	const char *name, *value;
} dtk_kafka_prop;

/* Builds a client configuration, in this order (a later value wins):
 * bootstrap.servers and client.id; `defaults` (the user may override
 * them); the file's props; every DTK_KAFKA_PROP_<NAME> variable; the
 * user's props; then `required`, which the user may only repeat with the
 * same value. A property of the other client type is accepted (librdkafka
 * logs that the client ignores it when rd_kafka_new takes the conf), so
 * one list serves a producer and a consumer. Returns a conf owned by the
 * caller (rd_kafka_new takes it on success; otherwise
 * rd_kafka_conf_destroy), or NULL with errstr naming the property and
 * where it came from (--kafka-prop, the variable, or kafka_prop in the
 * file). */
rd_kafka_conf_t *dtk_kafka_conf_new(const dtk_kafka_settings *s, const dtk_kafka_prop *defaults,
				    size_t ndefaults, const dtk_kafka_prop *required,
				    size_t nrequired, char *errstr, size_t errstr_size);

/* Reads one environment entry ("VAR=VALUE", as in environ). When it is
 * DTK_KAFKA_PROP_<NAME>=VALUE, writes the property it sets (NAME
 * lower-cased, '.' for '_') to name, points *value into entry and returns
 * 1; returns 0 for any other variable and -1 when NAME is empty or does
 * not fit in namesz. */
int dtk_kafka_env_prop(const char *entry, char *name, size_t namesz, const char **value);

/* Copies h into a new librdkafka header list owned by the caller (a
 * successful rd_kafka_producev with RD_KAFKA_V_HEADERS takes it; otherwise
 * rd_kafka_headers_destroy). NULL when out of memory. */
rd_kafka_headers_t *dtk_kafka_headers(const dtk_msg_headers *h);

/* One topic for dtk_kafka_create_topics. max_message_bytes NULL keeps the
 * broker's default. */
typedef struct dtk_kafka_topic_spec {
	const char *name;
	int partitions;
	int replication_factor;
	const char *max_message_bytes;
} dtk_kafka_topic_spec;

/* Creates the topics with one CreateTopics call on rk (any client type),
 * waiting at most timeout_ms. A topic that already exists is fine (its
 * settings are left as they are). Returns 0, or -1 with errstr naming each
 * topic that failed and why. */
int dtk_kafka_create_topics(rd_kafka_t *rk, const dtk_kafka_topic_spec *topics, size_t n,
			    int timeout_ms, char *errstr, size_t errstr_size);

/* The partition ids of topic, from a metadata request bounded by
 * timeout_ms and retried while the topic is being created (unknown topic,
 * leader not available). Returns 0 and a malloc'd array owned by the
 * caller, or -1 with errstr (a topic that stays unknown: "create it with
 * --create-topics"). */
int dtk_kafka_partitions(rd_kafka_t *rk, const char *topic, int timeout_ms, int32_t **out,
			 size_t *n, char *errstr, size_t errstr_size);

/* The high watermark (end offset) of one partition, queried with its own
 * timer of timeout_ms and retried within it on leadership changes.
 * Returns 0, or -1 with errstr. */
int dtk_kafka_end_offset(rd_kafka_t *rk, const char *topic, int32_t partition, int timeout_ms,
			 int64_t *out, char *errstr, size_t errstr_size);

#endif
