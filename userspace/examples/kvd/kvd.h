/* SPDX-License-Identifier: GPL-2.0-only */
/* kvd: a small RESP2 key-value server, baton's demo service. */
#ifndef KVD_H
#define KVD_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "baton.h"
#include "baton_steer.h"
#include "../common/server.h"

#ifndef KVD_VERSION
#error "build with -DKVD_VERSION=1 or 2"
#endif

#define KVD_MAX_QUERY		(16 << 20)	/* a larger request is refused */
#define KVD_OUT_HIGH		(4 << 20)	/* stop reading above this */
#define KVD_SNAPSHOT_PART	1024		/* keys per part of phase 1 */

struct kvd_conn {
	struct srv_conn base;
#if KVD_VERSION == 1
	char name[64];
#else
	char client_name[64];	/* "name" in v1 */
	__u64 cmds;		/* new in v2: commands served here */
#endif
	bool closing;		/* QUIT: close once the reply is out */
};

static inline struct kvd_conn *kvd_conn(struct srv_conn *c)
{
	return srv_entry(c, struct kvd_conn, base);
}

/* keyspace.c */
struct kv_entry {
	struct kv_entry *next;
	char *key, *val;
	size_t klen, vlen;
	unsigned int dirty_gen;	/* in the log of this generation */
};

struct keyspace {
	struct kv_entry **tab;
	size_t size, count;
	bool tracking;		/* between phase 1 and 2: log the changes */
	bool dirty_lost;	/* out of memory while logging: no delta */
	struct buf dirty;	/* changed keys: u32 length, then bytes */
	unsigned int gen;	/* of the log: one a round */
};

int ks_init(struct keyspace *ks);
void ks_free(struct keyspace *ks);
struct kv_entry *ks_get(struct keyspace *ks, const char *k, size_t kl);
int ks_set(struct keyspace *ks, const char *k, size_t kl, const char *v,
	   size_t vl);
bool ks_del(struct keyspace *ks, const char *k, size_t kl);
void ks_track(struct keyspace *ks, bool on);
void ks_take_dirty(struct keyspace *ks, struct buf *round);

struct kvd {
	struct srv srv;
	struct keyspace ks;
	size_t snap_cursor;		/* next bucket of a phase 1 snapshot */
	bool snap_running;
	struct buf round;		/* a round's changed keys; off: sent */
	bool round_running;
	long start_time;
	__u64 total_cmds;
	const char *service;
	struct baton_steer *steer;	/* --steer: our listener's group */
	unsigned int steer_gen;
	/* --fail-ping-after MS: PING fails from MS after serving began */
	long long fail_ping_ms;		/* -1: never */
	/* --activate-delay MS: a slow activation, the lock held */
	long long activate_delay_ms;
	__u64 serving_ns;		/* CLOCK_MONOTONIC; 0: not serving yet */
};

__u64 kvd_now_ns(void);

/* steer.c */
int kvd_steer_join(struct kvd *kvd, const char *group, unsigned int gen,
		   bool canary);
int kvd_steer_activate(struct kvd *kvd);
void kvd_steer_close(struct kvd *kvd);

static inline struct kvd *kvd_of(struct srv *s)
{
	return srv_entry(s, struct kvd, srv);
}

/* conn.c: a connection's requests and replies, for struct srv_ops */
void kvd_conn_io(struct srv *s, struct srv_conn *sc, unsigned int events);
void kvd_conn_kick(struct srv *s, struct srv_conn *sc);

/* commands.c */
int resp_execute(struct kvd *kvd, struct kvd_conn *c);

/* handover.c */
extern const struct baton_app_ops kvd_baton_ops;
int kvd_conn_save(const struct srv_conn *c, struct baton_rec_writer *w);
int kvd_conn_load(struct srv *s, struct srv_conn *c,
		  const struct baton_rec *rec);

/* conn_record.c: the fields every version writes the same way */
int conn_record_save_common(const struct kvd_conn *c,
			    struct baton_rec_writer *w);
/* 1 if the attribute was one of them, 0 if not, -errno if malformed */
int conn_record_load_common(struct kvd_conn *c, const struct nlattr *attr);

/* state_v1.c / state_v2.c: this version's per-connection record */
int conn_record_save(const struct kvd_conn *c, struct baton_rec_writer *w);
int conn_record_load(struct kvd_conn *c, const struct baton_rec *rec);

#endif /* KVD_H */
