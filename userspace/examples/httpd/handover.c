// SPDX-License-Identifier: GPL-2.0-only
/* httpd's side of a baton handover: what it hands over and how it takes it. */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "httpd.h"

/* The service-wide record: one, its id unused. */
enum httpd_state_attr {
	HTTPD_S_REQUESTS = 1,	/* u64: requests answered by the service */
};

static int export_sockets(void *app, struct baton_export *exp,
			  unsigned int upgrade_flags, unsigned int flags)
{
	struct httpd *h = app;
	unsigned int i;
	int err;

	/* the last pass: new clients wait in the backlog from here */
	if (flags & BATON_EXPORT_F_FINAL)
		listeners_watch(h, false);
	for (i = 0; !(upgrade_flags & BATON_UPGRADE_F_OWN_LISTENERS) &&
		    i < h->nlisteners; i++) {
		err = baton_export_socket(exp, h->listeners[i].fd,
					  h->listeners[i].id,
					  BATON_SOCK_LISTENER);
		if (err)
			return err;
	}
	if (upgrade_flags & BATON_UPGRADE_F_DRAIN)
		return 0;
	for (i = 0; i < h->maxfd; i++) {
		struct conn *c = h->conns[i];

		if (!c)
			continue;
		err = baton_export_socket(exp, c->fd, c->id, BATON_SOCK_CONN);
		if (err)
			return err;
	}
	return 0;
}

static int save_requests(struct httpd *h, struct baton_rec_writer *w)
{
	return baton_rec_begin(w, 0) ?:
	       baton_rec_put_u64(w, HTTPD_S_REQUESTS, h->requests) ?:
	       baton_rec_end(w);
}

/* The count in phase 1, and again, as it is then, in the blackout. */
static int save_state(void *app, struct baton_rec_writer *w)
{
	return save_requests(app, w);
}

static int save_delta(void *app, struct baton_rec_writer *w)
{
	return save_requests(app, w);
}

static void deactivate(void *app)
{
	(void)app;	/* the loop waits on the baton fd alone from now on */
}

static int save_conns(void *app, struct baton_rec_writer *w)
{
	struct httpd *h = app;
	unsigned int i;
	int err;

	for (i = 0; i < h->maxfd; i++) {
		if (!h->conns[i])
			continue;
		err = conn_record_save(h->conns[i], w);
		if (err)
			return err;
	}
	return 0;
}

static void resume(void *app)
{
	struct httpd *h = app;

	listeners_watch(h, !h->draining);
	h->kick = true;		/* requests may have waited in the blackout */
}

static void terminate(void *app)
{
	struct httpd *h = app;
	unsigned int i;

	/* what is left to do must not slow the new instance down */
	setpriority(PRIO_PROCESS, 0, 19);
	sched_setscheduler(0, SCHED_IDLE, &(struct sched_param){ 0 });
	conns_close_all(h);
	for (i = 0; i < h->nlisteners; i++)
		close(h->listeners[i].fd);
	h->nlisteners = 0;
}

static void drain(void *app)
{
	struct httpd *h = app;
	unsigned int i;

	listeners_watch(h, false);
	for (i = 0; i < h->nlisteners; i++)
		close(h->listeners[i].fd);
	h->nlisteners = 0;
	h->draining = true;
}

static int adopt_socket(void *app, int fd, const struct baton_sockinfo *si)
{
	struct httpd *h = app;
	struct conn *c;
	int err;

	if (si->kind == BATON_SOCK_LISTENER) {
		struct listener *l;

		if (h->nlisteners == HTTPD_MAX_LISTENERS) {
			close(fd);
			return -ENOSPC;
		}
		l = &h->listeners[h->nlisteners++];
		l->h.kind = H_LISTENER;
		l->fd = fd;
		l->id = si->id;
		return 0;	/* watched from activation on */
	}
	err = conn_add(h, fd, si->id, &c);
	if (err) {
		close(fd);
		return err;
	}
	c->unclaimed = true;
	if (si->id >= h->next_id)
		h->next_id = si->id + 1;
	return 0;
}

static int state_attr_cb(const struct nlattr *attr, void *data)
{
	struct httpd *h = data;

	if (mnl_attr_get_type(attr) == HTTPD_S_REQUESTS) {
		if (mnl_attr_get_payload_len(attr) != sizeof(__u64))
			return MNL_CB_ERROR;
		h->requests = mnl_attr_get_u64(attr);
	}
	return MNL_CB_OK;	/* anything else is from a newer httpd */
}

static int load_state(void *app, const struct baton_rec *rec)
{
	return baton_rec_parse(rec, state_attr_cb, app);
}

static int cmp_id(const void *a, const void *b)
{
	__u64 x = (*(struct conn *const *)a)->id;
	__u64 y = (*(struct conn *const *)b)->id;

	return x < y ? -1 : x > y;
}

static struct conn *find_conn(struct httpd *h, __u64 id)
{
	unsigned int lo = 0, hi, i;

	if (!h->by_id) {
		h->by_id = malloc(sizeof(*h->by_id) * (h->nconns + 1));
		if (!h->by_id)
			return NULL;
		for (i = 0; i < h->maxfd; i++)
			if (h->conns[i])
				h->by_id[h->nby_id++] = h->conns[i];
		qsort(h->by_id, h->nby_id, sizeof(*h->by_id), cmp_id);
	}
	hi = h->nby_id;
	while (lo < hi) {
		i = (lo + hi) / 2;
		if (h->by_id[i]->id == id)
			return h->by_id[i];
		if (h->by_id[i]->id < id)
			lo = i + 1;
		else
			hi = i;
	}
	return NULL;
}

static int load_conn(void *app, const struct baton_rec *rec)
{
	struct httpd *h = app;
	struct conn *c = find_conn(h, baton_rec_id(rec));

	if (!c)
		return -ENOENT;
	c->unclaimed = false;
	return conn_record_load(h, c, rec);
}

static int activate(void *app, unsigned int flags)
{
	struct httpd *h = app;
	unsigned int i;

	free(h->by_id);
	h->by_id = NULL;
	h->nby_id = 0;
	for (i = 0; i < h->maxfd; i++) {
		struct conn *c = h->conns[i];

		if (!c)
			continue;
		/*
		 * Without a record, the old closed it in phase 1. With the
		 * old lost, none can go on exactly: its client sees the
		 * close and retries, rather than a response out of step.
		 */
		if (c->unclaimed || (flags & BATON_ACTIVATE_F_PEER_LOST))
			conn_close(h, c);
		else
			c->unclaimed = false;
	}
	h->kick = true;
	return listeners_watch(h, true);
}

const struct baton_app_ops httpd_baton_ops = {
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
};
