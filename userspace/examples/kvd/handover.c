// SPDX-License-Identifier: GPL-2.0-only
/* kvd's side of a baton handover: what it hands over and how it takes it. */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include "kvd.h"

/* The keyspace's records: one per key; the id is unused. */
enum kvd_state_attr {
	KVD_S_UNSPEC,
	KVD_S_KEY,		/* bytes */
	KVD_S_VAL,		/* bytes, any length */
	KVD_S_DELETED,		/* u32: in a delta, the key is gone */
};

static int export_sockets(void *app, struct baton_export *exp,
			  unsigned int upgrade_flags, unsigned int flags)
{
	struct kvd *kvd = app;
	unsigned int i;
	int err;

	/* the last pass: new clients wait in the backlog from here */
	if (flags & BATON_EXPORT_F_FINAL)
		listeners_watch(kvd, false);
	/* with its own listeners, the new one takes connections only */
	for (i = 0; !(upgrade_flags & BATON_UPGRADE_F_OWN_LISTENERS) &&
		    i < kvd->nlisteners; i++) {
		err = baton_export_socket(exp, kvd->listeners[i].fd,
					  kvd->listeners[i].id,
					  BATON_SOCK_LISTENER);
		if (err)
			return err;
	}
	if (upgrade_flags & BATON_UPGRADE_F_DRAIN)
		return 0;
	for (i = 0; i < kvd->maxfd; i++) {
		struct kvd_conn *c = kvd->conns[i];

		if (!c)
			continue;
		err = baton_export_socket(exp, c->fd, c->id, BATON_SOCK_CONN);
		if (err)
			return err;
	}
	return 0;
}

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
	struct kvd *kvd = app;
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

static void deactivate(void *app)
{
	(void)app;	/* the loop waits on the baton fd alone from now on */
}

static int save_conns(void *app, struct baton_rec_writer *w)
{
	struct kvd *kvd = app;
	unsigned int i;
	int err;

	for (i = 0; i < kvd->maxfd; i++) {
		if (!kvd->conns[i])
			continue;
		err = conn_record_save(kvd->conns[i], w);
		if (err)
			return err;
	}
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
	struct kvd *kvd = app;
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
	struct kvd *kvd = app;

	if (kvd->ks.dirty_lost)
		return -ENOMEM;
	return save_logged(kvd, w, &kvd->ks.dirty, 0);
}

static void resume(void *app)
{
	struct kvd *kvd = app;

	ks_track(&kvd->ks, false);
	kvd->snap_running = false;
	kvd->round_running = false;
	kvd->round.off = kvd->round.len = 0;
	listeners_watch(kvd, !kvd->draining);
	kvd->kick = true;	/* requests may have waited in the blackout */
}

static void terminate(void *app)
{
	struct kvd *kvd = app;
	unsigned int i;

	/* what is left to do must not slow the new instance down */
	setpriority(PRIO_PROCESS, 0, 19);
	sched_setscheduler(0, SCHED_IDLE, &(struct sched_param){ 0 });
	conns_close_all(kvd);
	for (i = 0; i < kvd->nlisteners; i++)
		close(kvd->listeners[i].fd);
	kvd->nlisteners = 0;
}

static void drain(void *app)
{
	struct kvd *kvd = app;
	unsigned int i;

	listeners_watch(kvd, false);
	for (i = 0; i < kvd->nlisteners; i++)
		close(kvd->listeners[i].fd);
	kvd->nlisteners = 0;
	kvd->draining = true;
}

static int adopt_socket(void *app, int fd, const struct baton_sockinfo *si)
{
	struct kvd *kvd = app;
	struct kvd_conn *c;
	int err;

	if (si->kind == BATON_SOCK_LISTENER) {
		struct kvd_listener *l;

		if (kvd->steer) {
			fprintf(stderr, "kvd: with --steer this instance brings its own listener: upgrade with 'batonctl upgrade --listeners own'\n");
			close(fd);
			return -EEXIST;
		}
		if (kvd->nlisteners == KVD_MAX_LISTENERS) {
			close(fd);
			return -ENOSPC;
		}
		l = &kvd->listeners[kvd->nlisteners++];
		l->h.kind = H_LISTENER;
		l->fd = fd;
		l->id = si->id;
		return 0;	/* watched from activation on */
	}
	err = conn_add(kvd, fd, si->id, &c);
	if (err) {
		close(fd);
		return err;
	}
	c->unclaimed = true;
	if (si->id >= kvd->next_id)
		kvd->next_id = si->id + 1;
	return 0;
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
	struct kvd *kvd = app;
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

static int cmp_id(const void *a, const void *b)
{
	__u64 x = (*(struct kvd_conn *const *)a)->id;
	__u64 y = (*(struct kvd_conn *const *)b)->id;

	return x < y ? -1 : x > y;
}

static struct kvd_conn *find_conn(struct kvd *kvd, __u64 id)
{
	unsigned int lo = 0, hi, i;

	if (!kvd->by_id) {
		kvd->by_id = malloc(sizeof(*kvd->by_id) * (kvd->nconns + 1));
		if (!kvd->by_id)
			return NULL;
		for (i = 0; i < kvd->maxfd; i++)
			if (kvd->conns[i])
				kvd->by_id[kvd->nby_id++] = kvd->conns[i];
		qsort(kvd->by_id, kvd->nby_id, sizeof(*kvd->by_id), cmp_id);
	}
	hi = kvd->nby_id;
	while (lo < hi) {
		i = (lo + hi) / 2;
		if (kvd->by_id[i]->id == id)
			return kvd->by_id[i];
		if (kvd->by_id[i]->id < id)
			lo = i + 1;
		else
			hi = i;
	}
	return NULL;
}

static int load_conn(void *app, const struct baton_rec *rec)
{
	struct kvd *kvd = app;
	struct kvd_conn *c = find_conn(kvd, baton_rec_id(rec));

	if (!c)
		return -ENOENT;
	c->unclaimed = false;
	return conn_record_load(c, rec);
}

static int activate(void *app, unsigned int flags)
{
	struct kvd *kvd = app;
	unsigned int i;
	int err;

	free(kvd->by_id);
	kvd->by_id = NULL;
	kvd->nby_id = 0;
	for (i = 0; i < kvd->maxfd; i++) {
		struct kvd_conn *c = kvd->conns[i];

		if (!c)
			continue;
		/*
		 * Without a record, the old closed it in phase 1. With the
		 * old lost, none can go on exactly: its client gets a close,
		 * and retries, rather than a stream out of step.
		 */
		if (c->unclaimed || (flags & BATON_ACTIVATE_F_PEER_LOST))
			conn_close(kvd, c);
		else
			c->unclaimed = false;
	}
	if (flags & BATON_ACTIVATE_F_PEER_LOST)
		fprintf(stderr, "kvd-v%d[%d]: the old instance went away: every connection closed; the keys are those of %s\n",
			KVD_VERSION, getpid(),
			flags & BATON_ACTIVATE_F_STATE_PARTIAL ?
			"part of its phase 1 snapshot" :
			"its phase 1 snapshot, without the changes since");
	err = listeners_watch(kvd, true) ?: kvd_steer_activate(kvd);
	kvd->kick = true;
	return err;
}

const struct baton_app_ops kvd_baton_ops = {
	.export_sockets	= export_sockets,
	.save_state	= save_state,
	.deactivate	= deactivate,
	.save_conns	= save_conns,
	.save_delta	= save_delta,
	.resume		= resume,
	.terminate	= terminate,
	.drain		= drain,
	.adopt_socket	= adopt_socket,
	.load_state	= load_state,
	.load_conn	= load_conn,
	.activate	= activate,
	.save_round	= save_round,
};
