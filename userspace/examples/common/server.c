// SPDX-License-Identifier: GPL-2.0-only
/*
 * The examples' server: the table of connections by fd, the listeners,
 * accepting, and the epoll loop with its blackout wait on the baton fd.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

void srv_signals(void)
{
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
}

static void srv_log(void *ctx, enum baton_log_level level, const char *msg)
{
	const struct srv *s = ctx;
	static const char *const names[] = { "error", "warning", "info", "debug" };

	if (level == BATON_LOG_DEBUG || (s->quiet && level > BATON_LOG_ERR))
		return;
	fprintf(stderr, "%s-v%d[%d]: %s: %s\n", s->ops->name, s->ops->version,
		getpid(), names[level], msg);
}

int srv_init(struct srv *s, const struct srv_ops *ops, bool quiet)
{
	struct rlimit rl;
	int err;

	s->ops = ops;
	s->quiet = quiet;
	s->next_id = 1;
	s->baton_h.kind = SRV_H_BATON;
	getrlimit(RLIMIT_NOFILE, &rl);
	s->maxfd = rl.rlim_cur;
	s->conns = calloc(s->maxfd, sizeof(*s->conns));
	if (!s->conns)
		return -ENOMEM;
	s->ep = epoll_create1(EPOLL_CLOEXEC);
	if (s->ep < 0) {
		err = -errno;
		goto free_conns;
	}
	return 0;
free_conns:
	free(s->conns);
	s->conns = NULL;
	return err;
}

int srv_open(struct srv *s, const struct srv_opts *o)
{
	struct baton_service_opts bo = {
		.service = o->service,
		.run_dir = o->run_dir,
		.app_name = s->app_name,
		.state_version = s->ops->version,
		.state_compat = s->ops->state_compat,
		.state_min = o->state_min,
		.ops = s->ops->baton_ops,
		.app = s,
		.log = srv_log,
		.log_ctx = s,
	};

	snprintf(s->app_name, sizeof(s->app_name), "%s %d", s->ops->name,
		 s->ops->version);
	return baton_service_open(&s->svc, &bo);
}

void srv_fini(struct srv *s)
{
	srv_tracking_stop(s);
	srv_conns_close_all(s);
	srv_listeners_close(s);
	free(s->conns);
	s->conns = NULL;
	close(s->ep);
}

int srv_listener_add(struct srv *s, int fd, __u64 id)
{
	struct srv_listener *l;

	if (s->nlisteners == SRV_MAX_LISTENERS)
		return -ENOSPC;
	/*
	 * one passed to us (a socket unit's, --listen-fd) may block: an
	 * accept() after the queue emptied would stop the whole loop
	 */
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
		return -errno;
	l = &s->listeners[s->nlisteners++];
	l->h.kind = SRV_H_LISTENER;
	l->fd = fd;
	l->id = id;
	return 0;
}

void srv_listeners_close(struct srv *s)
{
	unsigned int i;

	for (i = 0; i < s->nlisteners; i++)
		close(s->listeners[i].fd);
	s->nlisteners = 0;
}

int srv_listeners_watch(struct srv *s, bool on)
{
	unsigned int i;

	for (i = 0; i < s->nlisteners; i++) {
		struct srv_listener *l = &s->listeners[i];
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &l->h };

		if (on && epoll_ctl(s->ep, EPOLL_CTL_ADD, l->fd, &ev) < 0 &&
		    errno != EEXIST)
			return -errno;
		if (!on)
			epoll_ctl(s->ep, EPOLL_CTL_DEL, l->fd, NULL);
	}
	s->accepting = on;
	return 0;
}

int srv_conn_add(struct srv *s, int fd, __u64 id, struct srv_conn **out)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct srv_conn *c;
	int err;

	if ((unsigned int)fd >= s->maxfd)
		return -EMFILE;
	c = calloc(1, s->ops->conn_size);
	if (!c)
		return -ENOMEM;
	c->h.kind = SRV_H_CONN;
	c->fd = fd;
	c->id = id;
	if (s->ops->conn_init)
		s->ops->conn_init(c);
	ev.data.ptr = &c->h;
	if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
		err = -errno;
		goto free_conn;
	}
	c->events = ev.events;
	s->conns[fd] = c;
	s->nconns++;
	if ((unsigned int)fd >= s->hifd)
		s->hifd = fd + 1;
	if (out)
		*out = c;
	return 0;
free_conn:
	free(c);
	return err;
}

/* Watches c for events, if it does not already. */
int srv_conn_watch(struct srv *s, struct srv_conn *c, unsigned int events)
{
	struct epoll_event ev = { .events = events, .data.ptr = &c->h };

	if (events == c->events)
		return 0;
	if (epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
		return -errno;
	c->events = events;
	return 0;
}

/* an array of n of size sz with room for one more: 0, or -ENOMEM */
static int grow(void **arr, unsigned int n, unsigned int *cap, size_t sz)
{
	unsigned int want = *cap ? *cap * 2 : 64;
	void *p;

	if (n < *cap)
		return 0;
	p = realloc(*arr, want * sz);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = want;
	return 0;
}

/*
 * Out of memory, a touch or a close cannot be noted: save_conns_changed()
 * then fails, and the upgrade rolls back.
 */
void srv_conn_touch(struct srv *s, struct srv_conn *c)
{
	if (!s->tracking || c->touched)
		return;
	c->touched = true;
	if (grow((void **)&s->touched, s->ntouched, &s->cap_touched,
		 sizeof(*s->touched))) {
		s->track_lost = true;
		return;
	}
	s->touched[s->ntouched++] = (struct srv_touch){ c->fd, c->id };
}

void srv_tracking_stop(struct srv *s)
{
	s->tracking = false;
	s->track_lost = false;
	free(s->touched);
	free(s->closed);
	s->touched = NULL;
	s->closed = NULL;
	s->ntouched = s->cap_touched = s->nclosed = s->cap_closed = 0;
}

/* close(), never shutdown(): another process may share this connection */
void srv_conn_close(struct srv *s, struct srv_conn *c)
{
	if (s->tracking && c->recorded) {
		if (grow((void **)&s->closed, s->nclosed, &s->cap_closed,
			 sizeof(*s->closed)))
			s->track_lost = true;
		else
			s->closed[s->nclosed++] = c->id;
	}
	epoll_ctl(s->ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	s->conns[c->fd] = NULL;
	s->nconns--;
	if (s->ops->conn_release)
		s->ops->conn_release(c);
	buf_free(&c->in);
	buf_free(&c->out);
	free(c);
}

void srv_conns_close_all(struct srv *s)
{
	unsigned int fd;

	for (fd = 0; fd < s->hifd; fd++)
		if (s->conns[fd])
			srv_conn_close(s, s->conns[fd]);
}

static void accept_all(struct srv *s, struct srv_listener *l)
{
	struct srv_conn *c;
	int one = 1;

	while (s->accepting) {
		int fd = accept4(l->fd, NULL, NULL,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;	/* EAGAIN, or a client that gave up */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (srv_conn_add(s, fd, s->next_id++, &c))
			close(fd);
		else
			srv_conn_touch(s, c);
	}
}

static void kick_all(struct srv *s)
{
	unsigned int fd;

	s->kick = false;
	for (fd = 0; fd < s->hifd; fd++)
		if (s->conns[fd]) {
			srv_conn_touch(s, s->conns[fd]);
			s->ops->conn_kick(s, s->conns[fd]);
		}
}

/*
 * The handover's event to the front of the batch: a DEACTIVATE then waits
 * for no request of it. Behind 256 requests it waited for them all, the
 * blackout's first step, 0.1 ms at 1,000 connections and 0.5 at 10,000.
 */
static void handover_first(struct epoll_event *ev, int n)
{
	struct epoll_event first;
	int i;

	for (i = 1; i < n; i++) {
		const struct srv_handle *h = ev[i].data.ptr;

		if (h->kind == SRV_H_BATON) {
			first = ev[0];
			ev[0] = ev[i];
			ev[i] = first;
			return;
		}
	}
}

/* Returns 0 when asked to stop, or when another instance has taken over. */
int srv_serve(struct srv *s)
{
	struct epoll_event ev[256], bev = { .events = EPOLLIN };
	int bfd = baton_service_fd(s->svc), err;

	bev.data.ptr = &s->baton_h;
	if (epoll_ctl(s->ep, EPOLL_CTL_ADD, bfd, &bev) < 0) {
		err = -errno;
		fprintf(stderr, "%s: epoll: %s\n", s->ops->name, strerror(-err));
		return err;
	}
	for (;;) {
		int n, i;

		/* a canary's first SIGTERM: its listener goes, its clients stay */
		if (stop && s->drain_on_stop && !s->draining) {
			stop = 0;
			srv_drain(s);
		}
		if (stop || (s->draining && s->nconns == 0))
			break;

		if (s->kick)
			kick_all(s);
		if (baton_service_paused(s->svc)) {
			/* the blackout: only the handover may move */
			n = epoll_wait(bfd, &bev, 1, -1);
			if (n > 0 && baton_service_dispatch(s->svc) == BATON_EXIT)
				return 0;
			continue;
		}
		n = epoll_wait(s->ep, ev, 256, -1);
		handover_first(ev, n);
		for (i = 0; i < n; i++) {
			struct srv_handle *h = ev[i].data.ptr;

			if (h->kind == SRV_H_BATON) {
				if (baton_service_dispatch(s->svc) == BATON_EXIT)
					return 0;
				if (baton_service_paused(s->svc))
					break;	/* the rest waits for the new */
			} else if (h->kind == SRV_H_LISTENER) {
				accept_all(s, (struct srv_listener *)h);
			} else {
				struct srv_conn *c = (struct srv_conn *)h;

				/* closed earlier in this batch? */
				if (s->conns[c->fd] == c) {
					srv_conn_touch(s, c);
					s->ops->conn_io(s, c, ev[i].events);
				}
			}
		}
	}
	return 0;
}
