// SPDX-License-Identifier: GPL-2.0-only
/*
 * The handover callbacks kvd and httpd share: handing over the listeners
 * and connections, adopting them, finding an adopted connection by id for
 * its record, and what the old instance does after. The service-wide state
 * is each program's own.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "server.h"

int srv_export_sockets(void *app, struct baton_export *exp,
		       unsigned int upgrade_flags, unsigned int flags)
{
	struct srv *s = app;
	unsigned int i;
	int err;

	/* the last pass: new clients wait in the backlog from here */
	if (flags & BATON_EXPORT_F_FINAL)
		srv_listeners_watch(s, false);
	/* with its own listeners, the new one takes connections only */
	for (i = 0; !(upgrade_flags & BATON_UPGRADE_F_OWN_LISTENERS) &&
		    i < s->nlisteners; i++) {
		err = baton_export_socket(exp, s->listeners[i].fd,
					  s->listeners[i].id,
					  BATON_SOCK_LISTENER);
		if (err)
			return err;
	}
	if (upgrade_flags & BATON_UPGRADE_F_DRAIN)
		return 0;
	for (i = 0; i < s->hifd; i++) {
		struct srv_conn *c = s->conns[i];

		if (!c)
			continue;
		err = baton_export_socket(exp, c->fd, c->id, BATON_SOCK_CONN);
		if (err)
			return err;
	}
	return 0;
}

void srv_deactivate(void *app)
{
	(void)app;	/* the loop waits on the baton fd alone from now on */
}

/*
 * Every connection's record. In phase 1 (the new instance takes them
 * early), what changes from here on is noted for save_conns_changed().
 */
int srv_save_conns(void *app, struct baton_rec_writer *w)
{
	struct srv *s = app;
	unsigned int i;
	int err;

	srv_tracking_stop(s);
	for (i = 0; i < s->hifd; i++) {
		struct srv_conn *c = s->conns[i];

		if (!c)
			continue;
		err = s->ops->conn_save(c, w);
		if (err)
			return err;
		c->recorded = true;
		c->touched = false;
	}
	s->tracking = true;
	return 0;
}

/* Only what changed since srv_save_conns(): idle connections cost nothing */
int srv_save_conns_changed(void *app, struct baton_rec_writer *w)
{
	struct srv *s = app;
	unsigned int i;
	int err;

	if (!s->tracking)
		return -EPROTO;		/* srv_save_conns() did not run */
	if (s->track_lost)
		return -ENOMEM;
	for (i = 0; i < s->ntouched; i++) {
		const struct srv_touch *t = &s->touched[i];
		struct srv_conn *c = s->conns[t->fd];

		/* closed since, its fd maybe another's now */
		if (!c || c->id != t->id)
			continue;
		err = s->ops->conn_save(c, w);
		if (err)
			return err;
	}
	for (i = 0; i < s->nclosed; i++) {
		err = baton_rec_closed(w, s->closed[i]);
		if (err)
			return err;
	}
	return 0;
}

void srv_resume(void *app)
{
	struct srv *s = app;

	srv_tracking_stop(s);
	srv_listeners_watch(s, !s->draining);
	s->kick = true;		/* requests may have waited in the blackout */
}

void srv_terminate(void *app)
{
	struct srv *s = app;

	/* what is left to do must not slow the new instance down */
	setpriority(PRIO_PROCESS, 0, 19);
	sched_setscheduler(0, SCHED_IDLE, &(struct sched_param){ 0 });
	srv_tracking_stop(s);
	srv_conns_close_all(s);
	srv_listeners_close(s);
}

void srv_drain(void *app)
{
	struct srv *s = app;

	srv_listeners_watch(s, false);
	srv_listeners_close(s);
	s->draining = true;
}

/*
 * Adopted connections by id, for their records: a hash table with linear
 * probing, filled as phase 1 adopts them, so that the blackout only looks
 * up (sorting them when the first record came took 0.14 to 0.18 ms of it
 * at 1,000 connections, on a busy host).
 */
static unsigned int id_slot(const struct srv *s, __u64 id)
{
	return (id * 0x9e3779b97f4a7c15ULL) & (s->cap_by_id - 1);
}

static void id_insert(struct srv *s, struct srv_conn *c)
{
	unsigned int i = id_slot(s, c->id);

	while (s->by_id[i])
		i = (i + 1) & (s->cap_by_id - 1);
	s->by_id[i] = c;
	s->nby_id++;
}

/* 0, or -ENOMEM; at most half full */
static int index_conn(struct srv *s, struct srv_conn *c)
{
	struct srv_conn **old = s->by_id;
	unsigned int i, cap = s->cap_by_id;

	if (2 * (s->nby_id + 1) > cap) {
		s->cap_by_id = cap ? 2 * cap : 1024;
		s->by_id = calloc(s->cap_by_id, sizeof(*s->by_id));
		if (!s->by_id) {
			s->by_id = old;
			s->cap_by_id = cap;
			return -ENOMEM;
		}
		s->nby_id = 0;
		for (i = 0; i < cap; i++)
			if (old[i])
				id_insert(s, old[i]);
		free(old);
	}
	id_insert(s, c);
	return 0;
}

int srv_adopt_socket(void *app, int fd, const struct baton_sockinfo *si)
{
	struct srv *s = app;
	struct srv_conn *c;
	int err;

	if (si->kind == BATON_SOCK_LISTENER) {
		/* watched from activation on */
		err = srv_listener_add(s, fd, si->id);
		if (err)
			goto close_fd;
		return 0;
	}
	err = srv_conn_add(s, fd, si->id, &c);
	if (err)
		goto close_fd;
	err = index_conn(s, c);
	if (err)
		goto close_conn;
	c->unclaimed = true;
	s->nunclaimed++;
	if (si->id >= s->next_id)
		s->next_id = si->id + 1;
	return 0;
close_conn:
	srv_conn_close(s, c);	/* and its fd */
	return err;
close_fd:
	close(fd);
	return err;
}

static struct srv_conn *find_conn(struct srv *s, __u64 id)
{
	unsigned int i;

	if (!s->by_id)
		return NULL;
	for (i = id_slot(s, id); s->by_id[i]; i = (i + 1) & (s->cap_by_id - 1))
		if (s->by_id[i]->id == id)
			return s->by_id[i];
	return NULL;
}

/* A second record (the blackout's, after phase 1's) starts from nothing */
static void conn_reset(struct srv *s, struct srv_conn *c)
{
	if (s->ops->conn_release)
		s->ops->conn_release(c);
	buf_free(&c->in);
	buf_free(&c->out);
	memset(c + 1, 0, s->ops->conn_size - sizeof(*c));
	if (s->ops->conn_init)
		s->ops->conn_init(c);
}

int srv_load_conn(void *app, const struct baton_rec *rec)
{
	struct srv *s = app;
	struct srv_conn *c = find_conn(s, baton_rec_id(rec));

	if (!c)
		return -ENOENT;
	if (c->loaded)
		conn_reset(s, c);
	if (c->unclaimed)
		s->nunclaimed--;
	c->unclaimed = false;
	c->loaded = true;
	return s->ops->conn_load(s, c, rec);
}

/* The old closed it after its record came: as one with no record */
int srv_drop_conn(void *app, __u64 id)
{
	struct srv *s = app;
	struct srv_conn *c = find_conn(s, id);

	if (!c)
		return -ENOENT;
	if (!c->unclaimed)
		s->nunclaimed++;
	c->unclaimed = true;
	return 0;
}

int srv_activate(void *app, unsigned int flags)
{
	struct srv *s = app;
	unsigned int i;

	free(s->by_id);
	s->by_id = NULL;
	s->nby_id = s->cap_by_id = 0;
	/* every connection has its record: nothing to look at */
	for (i = 0; (s->nunclaimed || (flags & BATON_ACTIVATE_F_PEER_LOST)) &&
		    i < s->hifd; i++) {
		struct srv_conn *c = s->conns[i];

		if (!c)
			continue;
		/*
		 * Without a record, the old closed it in phase 1. With the
		 * old lost, none can go on exactly: its client sees the
		 * close and retries, rather than a stream out of step.
		 */
		if (c->unclaimed || (flags & BATON_ACTIVATE_F_PEER_LOST))
			srv_conn_close(s, c);
	}
	s->nunclaimed = 0;
	s->kick = true;
	return srv_listeners_watch(s, true);
}
