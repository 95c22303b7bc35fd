// SPDX-License-Identifier: GPL-2.0-only
/* Client connections: reading requests, writing replies, closing. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "kvd.h"

static int watch(struct kvd *kvd, struct kvd_conn *c, int op, bool out)
{
	struct epoll_event ev = {
		.events = EPOLLIN | (out ? EPOLLOUT : 0),
		.data.ptr = &c->h,
	};

	if (epoll_ctl(kvd->ep, op, c->fd, &ev) < 0)
		return -errno;
	c->want_out = out;
	return 0;
}

int conn_add(struct kvd *kvd, int fd, __u64 id, struct kvd_conn **out)
{
	struct kvd_conn *c;
	int err;

	if ((unsigned int)fd >= kvd->maxfd)
		return -EMFILE;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->h.kind = H_CONN;
	c->fd = fd;
	c->id = id;
	err = watch(kvd, c, EPOLL_CTL_ADD, false);
	if (err) {
		free(c);
		return err;
	}
	kvd->conns[fd] = c;
	kvd->nconns++;
	if (out)
		*out = c;
	return 0;
}

/* close(), never shutdown(): another process may share this connection */
void conn_close(struct kvd *kvd, struct kvd_conn *c)
{
	epoll_ctl(kvd->ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	kvd->conns[c->fd] = NULL;
	kvd->nconns--;
	buf_free(&c->in);
	buf_free(&c->out);
	free(c);
}

void conns_close_all(struct kvd *kvd)
{
	unsigned int fd;

	for (fd = 0; fd < kvd->maxfd; fd++)
		if (kvd->conns[fd])
			conn_close(kvd, kvd->conns[fd]);
}

/* Returns -errno when the connection is gone. */
static int flush(struct kvd *kvd, struct kvd_conn *c)
{
	while (buf_pending(&c->out)) {
		ssize_t n = write(c->fd, c->out.data + c->out.off,
				  buf_pending(&c->out));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0)
			return -EPIPE;
		buf_consume(&c->out, n);
	}
	if (!buf_pending(&c->out) && c->closing)
		return -ESHUTDOWN;
	if (!!buf_pending(&c->out) != c->want_out)
		return watch(kvd, c, EPOLL_CTL_MOD, buf_pending(&c->out));
	return 0;
}

/* Runs every whole request the input holds, unless replies pile up. */
static int execute(struct kvd *kvd, struct kvd_conn *c)
{
	int n;

	while (buf_pending(&c->in) && !c->closing &&
	       buf_pending(&c->out) < KVD_OUT_HIGH) {
		n = resp_execute(kvd, c);
		if (n < 0)
			return n;
		if (n == 0)
			break;	/* a partial request: wait for the rest */
	}
	if (buf_pending(&c->in) > KVD_MAX_QUERY)
		return -EMSGSIZE;
	return flush(kvd, c);
}

static int read_some(struct kvd_conn *c)
{
	char tmp[65536];
	int rounds;

	for (rounds = 0; rounds < 4; rounds++) {
		ssize_t n = read(c->fd, tmp, sizeof(tmp));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n == 0)
			return 1;	/* the client is done sending */
		if (n < 0)
			return -ECONNRESET;
		if (buf_append(&c->in, tmp, n))
			return -ENOMEM;
		if ((size_t)n < sizeof(tmp))
			return 0;
	}
	return 0;
}

void conn_io(struct kvd *kvd, struct kvd_conn *c, unsigned int events)
{
	bool eof = false;
	int err = 0;

	if (events & EPOLLOUT)
		err = flush(kvd, c);
	if (!err && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) &&
	    buf_pending(&c->out) < KVD_OUT_HIGH) {
		err = read_some(c);
		eof = err == 1;
		err = err < 0 ? err : 0;
	}
	if (!err)
		err = execute(kvd, c);	/* answer what came before EOF */
	if (err || eof)
		conn_close(kvd, c);
}

/* After a takeover: what the old instance had read or not yet written. */
void conn_kick(struct kvd *kvd, struct kvd_conn *c)
{
	if (execute(kvd, c))
		conn_close(kvd, c);
}

int listeners_watch(struct kvd *kvd, bool on)
{
	unsigned int i;

	for (i = 0; i < kvd->nlisteners; i++) {
		struct kvd_listener *l = &kvd->listeners[i];
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &l->h };

		if (on && epoll_ctl(kvd->ep, EPOLL_CTL_ADD, l->fd, &ev) < 0 &&
		    errno != EEXIST)
			return -errno;
		if (!on)
			epoll_ctl(kvd->ep, EPOLL_CTL_DEL, l->fd, NULL);
	}
	kvd->accepting = on;
	return 0;
}
