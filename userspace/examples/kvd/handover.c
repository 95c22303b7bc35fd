// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvd's side of a baton handover: the keyspace, in parts and rounds and a
 * delta, and the connection record's glue; the rest of the callbacks are
 * the examples' common ones (../common/handover.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kvd.h"

/* The keyspace's records: one per key; the id is unused. */
enum kvd_state_attr {
	KVD_S_UNSPEC,
	KVD_S_KEY,		/* bytes */
	KVD_S_VAL,		/* bytes, any length */
	KVD_S_DELETED,		/* u32: in a delta, the key is gone */
};

static int save_key(struct baton_rec_writer *w, const char *k, size_t kl,
		    const struct kv_entry *e)
{
	int err = baton_rec_begin(w, 0) ?:
		  baton_rec_put_bytes(w, KVD_S_KEY, k, kl);

	if (!err && e)
		err = baton_rec_put_bytes(w, KVD_S_VAL, e->val, e->vlen);
	if (!err && !e)
		err = baton_rec_put_u32(w, KVD_S_DELETED, 1);
	return err ?: baton_rec_end(w);
}

/*
 * The keyspace in parts of about KVD_SNAPSHOT_PART keys, serving in
 * between: whatever changes from the first part on is in the delta.
 */
static int save_state(void *app, struct baton_rec_writer *w)
{
	struct kvd *kvd = kvd_of(app);
	unsigned int n = 0;
	int err;

	if (!kvd->snap_running) {
		ks_track(&kvd->ks, true);
		kvd->snap_cursor = 0;
		kvd->snap_running = true;
	}
	for (; kvd->snap_cursor < kvd->ks.size; kvd->snap_cursor++) {
		struct kv_entry *e;

		if (n >= KVD_SNAPSHOT_PART)
			return 1;
		for (e = kvd->ks.tab[kvd->snap_cursor]; e; e = e->next, n++) {
			err = save_key(w, e->key, e->klen, e);
			if (err)
				return err;
		}
	}
	kvd->snap_running = false;
	return 0;
}

/*
 * The keys logged in d from d->off on, each with its value now (or as
 * deleted); at most max of them, or all if max is 0. 1 if some are left.
 */
static int save_logged(struct kvd *kvd, struct baton_rec_writer *w,
		       struct buf *d, unsigned int max)
{
	unsigned int n = 0;
	int err;

	while (d->off < d->len) {
		const char *k;
		__u32 kl;

		if (max && n++ == max)
			return 1;
		memcpy(&kl, d->data + d->off, sizeof(kl));
		k = d->data + d->off + sizeof(kl);
		err = save_key(w, k, kl, ks_get(&kvd->ks, k, kl));
		if (err)
			return err;
		d->off += sizeof(kl) + kl;
	}
	return 0;
}

/*
 * A round of phase 1: the keys changed since the last round (or the
 * snapshot) began, in parts, serving in between. Each key goes with its
 * value at the time it is written; a later change is in the next round.
 */
static int save_round(void *app, struct baton_rec_writer *w)
{
	struct kvd *kvd = kvd_of(app);
	int ret;

	if (kvd->ks.dirty_lost)
		return -ENOMEM;
	if (!kvd->round_running) {
		ks_take_dirty(&kvd->ks, &kvd->round);
		kvd->round_running = true;
	}
	ret = save_logged(kvd, w, &kvd->round, KVD_SNAPSHOT_PART);
	if (ret == 0)
		kvd->round_running = false;
	return ret;
}

/* The blackout: the keys changed since the last round began. */
static int save_delta(void *app, struct baton_rec_writer *w)
{
	struct kvd *kvd = kvd_of(app);

	if (kvd->ks.dirty_lost)
		return -ENOMEM;
	return save_logged(kvd, w, &kvd->ks.dirty, 0);
}

static void resume(void *app)
{
	struct kvd *kvd = kvd_of(app);

	ks_track(&kvd->ks, false);
	kvd->snap_running = false;
	kvd->round_running = false;
	kvd->round.off = kvd->round.len = 0;
	srv_resume(app);
}

static int adopt_socket(void *app, int fd, const struct baton_sockinfo *si)
{
	if (si->kind == BATON_SOCK_LISTENER && kvd_of(app)->steer) {
		fprintf(stderr, "kvd: with --steer this instance brings its own listener: upgrade with 'batonctl upgrade --listeners own'\n");
		close(fd);
		return -EEXIST;
	}
	return srv_adopt_socket(app, fd, si);
}

struct key_rec {
	struct buf key, val;
	bool deleted, has_val;
};

static int state_attr_cb(const struct nlattr *attr, void *data)
{
	struct key_rec *r = data;

	switch (mnl_attr_get_type(attr)) {
	case KVD_S_KEY:
		if (buf_append(&r->key, mnl_attr_get_payload(attr),
			       mnl_attr_get_payload_len(attr)))
			return MNL_CB_ERROR;
		break;
	case KVD_S_VAL:
		r->has_val = true;
		if (buf_append(&r->val, mnl_attr_get_payload(attr),
			       mnl_attr_get_payload_len(attr)))
			return MNL_CB_ERROR;
		break;
	case KVD_S_DELETED:
		if (mnl_attr_validate(attr, MNL_TYPE_U32) < 0)
			return MNL_CB_ERROR;
		r->deleted = mnl_attr_get_u32(attr);
		break;
	}
	return MNL_CB_OK;
}

static int load_state(void *app, const struct baton_rec *rec)
{
	struct kvd *kvd = kvd_of(app);
	struct key_rec r = {};
	int err;

	err = baton_rec_parse(rec, state_attr_cb, &r);
	if (!err && !r.key.len)
		err = -EINVAL;
	if (!err && r.deleted)
		ks_del(&kvd->ks, r.key.data, r.key.len);
	else if (!err)
		err = ks_set(&kvd->ks, r.key.data, r.key.len,
			     r.val.data ? r.val.data : "", r.val.len);
	buf_free(&r.key);
	buf_free(&r.val);
	return err;
}

int kvd_conn_save(const struct srv_conn *c, struct baton_rec_writer *w)
{
	return conn_record_save(srv_entry(c, const struct kvd_conn, base), w);
}

int kvd_conn_load(struct srv *s, struct srv_conn *c,
		  const struct baton_rec *rec)
{
	(void)s;
	return conn_record_load(kvd_conn(c), rec);
}

static int activate(void *app, unsigned int flags)
{
	struct kvd *kvd = kvd_of(app);
	int err;

	if (kvd->activate_delay_ms > 0)
		nanosleep(&(struct timespec){
				.tv_sec = kvd->activate_delay_ms / 1000,
				.tv_nsec = kvd->activate_delay_ms % 1000 * 1000000,
			  }, NULL);
	err = srv_activate(app, flags);

	if (flags & BATON_ACTIVATE_F_PEER_LOST)
		fprintf(stderr, "kvd-v%d[%d]: the old instance went away: every connection closed; the keys are those of %s\n",
			KVD_VERSION, getpid(),
			flags & BATON_ACTIVATE_F_STATE_PARTIAL ?
			"part of its phase 1 snapshot" :
			"its phase 1 snapshot, without the changes since");
	kvd->serving_ns = kvd_now_ns();
	return err ?: kvd_steer_activate(kvd);
}

const struct baton_app_ops kvd_baton_ops = {
	.export_sockets	= srv_export_sockets,
	.save_state	= save_state,
	.deactivate	= srv_deactivate,
	.save_conns	= srv_save_conns,
	.save_conns_changed = srv_save_conns_changed,
	.save_delta	= save_delta,
	.resume		= resume,
	.terminate	= srv_terminate,
	.drain		= srv_drain,
	.adopt_socket	= adopt_socket,
	.load_state	= load_state,
	.load_conn	= srv_load_conn,
	.drop_conn	= srv_drop_conn,
	.activate	= activate,
	.save_round	= save_round,
};
