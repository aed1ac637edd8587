/* Alert state: a small key/value store with expiry (cooldowns,
 * consecutive counts, missing counters, alert claims). Keys follow
 * fleet.md (`dtk:state:...`). Two backends behind the same functions: the
 * table dtk_alert_state of $DTK_STATE_DIR/dtk.db (dtk_state_open), or
 * Redis when one is configured (dtk_state_open_redis), which shares the
 * state between workers.
 *
 * A dtk_state is one connection: use it from one thread at a time. */
#ifndef DTK_STORE_STATE_H
#define DTK_STORE_STATE_H

#include <stddef.h>
#include <stdint.h>

typedef struct dtk_state dtk_state;

/* Opens the local state database at path (NULL = $DTK_STATE_DIR/dtk.db),
 * creating it. Returns a handle owned by the caller, or NULL with errstr. */
dtk_state *dtk_state_open(const char *path, char *errstr, size_t errstr_size);
/* Opens alert state in the Redis at url (redis://[:password@]host:port/db,
 * util/redis.h) and connects at once. Keys are stored as given; expiry is
 * Redis's own (SET ... PX), so the `now` arguments below are ignored.
 * Returns a handle owned by the caller, or NULL with errstr naming Redis
 * (never the password). */
dtk_state *dtk_state_open_redis(const char *url, char *errstr, size_t errstr_size);
void dtk_state_close(dtk_state **st);

/* Reads key at time now (seconds). Returns 1 and a malloc'd value in *out
 * when present and unexpired, 0 when absent, -1 on error. */
int dtk_state_get(dtk_state *st, const char *key, int64_t now, char **out, char *errstr,
		  size_t errstr_size);
/* Sets key; ttl_seconds <= 0 means no expiry. */
int dtk_state_set(dtk_state *st, const char *key, const char *value, int64_t now,
		  int64_t ttl_seconds, char *errstr, size_t errstr_size);
/* Sets key only when absent or expired: 1 when set, 0 when held, -1 on error. */
int dtk_state_set_nx(dtk_state *st, const char *key, const char *value, int64_t now,
		     int64_t ttl_seconds, char *errstr, size_t errstr_size);
int dtk_state_del(dtk_state *st, const char *key, char *errstr, size_t errstr_size);

/* The alert claim protocol of fleet.md, on either backend: before sending
 * an alert a worker claims dtk:state:alert:{metric}:{alerter}:{time};
 * after a successful send it marks the key sent. */
#define DTK_CLAIM_LEASE_MS INT64_C(60000)
#define DTK_CLAIM_SENT_TTL_S INT64_C(604800) /* 7 days */

typedef enum dtk_claim {
	DTK_CLAIM_ERROR = -1,
	DTK_CLAIM_CLAIMED = 0,	 /* no one held it: send, then mark it sent */
	DTK_CLAIM_RECLAIMED = 1, /* another held it, and its lease lapsed while we
				    waited (the claimer died): send */
	DTK_CLAIM_SENT = 2,	 /* already sent: skip (suppressed_by: duplicate) */
	DTK_CLAIM_HELD = 3	 /* another still holds a live claim after wait_ms */
} dtk_claim;

/* Claims key for owner (non-empty, not "sent"; e.g. worker-id:request-id)
 * with a lease of lease_ms (SET NX PX). While another owner's live claim
 * holds it, polls with backoff for at most wait_ms (0: not at all) until
 * the key is marked sent or the claim lapses. A claim that already holds
 * owner's name counts as claimed (a retried call). errstr is set only for
 * DTK_CLAIM_ERROR. */
dtk_claim dtk_state_claim(dtk_state *st, const char *key, const char *owner, int64_t lease_ms,
			  int64_t wait_ms, char *errstr, size_t errstr_size);
/* Marks key sent for DTK_CLAIM_SENT_TTL_S, whoever holds the claim.
 * Returns 0, or -1 with errstr. */
int dtk_state_mark_sent(dtk_state *st, const char *key, char *errstr, size_t errstr_size);
/* Gives up owner's claim after a failed send (deletes key only while it
 * still holds owner, atomically), so a re-delivered check need not wait
 * for the lease. Returns 1 when deleted, 0 when owner no longer held it,
 * -1 with errstr. */
int dtk_state_unclaim(dtk_state *st, const char *key, const char *owner, char *errstr,
		      size_t errstr_size);

#endif
