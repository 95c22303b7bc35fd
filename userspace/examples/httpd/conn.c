// SPDX-License-Identifier: GPL-2.0-only
/* Client connections: reading requests, writing responses, closing. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include "httpd.h"

#define SENDFILE_CHUNK	(1 << 20)

static unsigned int wanted(const struct conn *c)
{
	unsigned int ev = 0;

	if (!c->eof && !c->closing && buf_pending(&c->in) < HTTPD_IN_HIGH)
		ev |= EPOLLIN;
	if (conn_busy(c))
		ev |= EPOLLOUT;
	return ev;
}

static int watch(struct httpd *h, struct conn *c, int op)
{
	struct epoll_event ev = { .events = wanted(c), .data.ptr = &c->h };

	if (op == EPOLL_CTL_MOD && ev.events == c->events)
		return 0;
	if (epoll_ctl(h->ep, op, c->fd, &ev) < 0)
		return -errno;
	c->events = ev.events;
	return 0;
}

int conn_add(struct httpd *h, int fd, __u64 id, struct conn **out)
{
	struct conn *c;
	int err;

	if ((unsigned int)fd >= h->maxfd)
		return -EMFILE;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->h.kind = H_CONN;
	c->fd = fd;
	c->id = id;
	c->file = -1;
	err = watch(h, c, EPOLL_CTL_ADD);
	if (err) {
		free(c);
		return err;
	}
	h->conns[fd] = c;
	h->nconns++;
	if (out)
		*out = c;
	return 0;
}

void conn_file_close(struct conn *c)
{
	if (c->file >= 0)
		close(c->file);
	c->file = -1;
	c->path[0] = '\0';
	c->off = c->end = 0;
}

/* close(), never shutdown(): another process may share this connection */
void conn_close(struct httpd *h, struct conn *c)
{
	epoll_ctl(h->ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	h->conns[c->fd] = NULL;
	h->nconns--;
	conn_file_close(c);
	buf_free(&c->in);
	buf_free(&c->out);
	free(c);
}

void conns_close_all(struct httpd *h)
{
	unsigned int fd;

	for (fd = 0; fd < h->maxfd; fd++)
		if (h->conns[fd])
			conn_close(h, h->conns[fd]);
}

/*
 * Writes what the response has left: its head, then its file. 0 when it
 * is out or the socket is full; -errno when the connection is gone.
 */
static int flush(struct conn *c)
{
	while (buf_pending(&c->out)) {
		/* the head and the start of the file in one segment */
		int more = c->file >= 0 ? MSG_MORE : 0;
		ssize_t n = send(c->fd, c->out.data + c->out.off,
				 buf_pending(&c->out), MSG_NOSIGNAL | more);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n <= 0)
			return -EPIPE;
		buf_consume(&c->out, n);
	}
	while (c->file >= 0 && c->off < c->end) {
		off_t off = c->off;
		size_t len = c->end - c->off < SENDFILE_CHUNK ?
			     c->end - c->off : SENDFILE_CHUNK;
		ssize_t n = sendfile(c->fd, c->file, &off, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n == 0)
			return -EIO;	/* the file shrank: the length was said */
		if (n < 0)
			return -EPIPE;
		c->off += n;
#if HTTPD_VERSION >= 2
		c->body_bytes += n;
#endif
	}
	if (c->file >= 0)
		conn_file_close(c);
	return 0;
}

/* Returns 1 at the client's EOF, -errno when the connection is gone. */
static int read_some(struct conn *c)
{
	char tmp[16384];

	while (buf_pending(&c->in) < HTTPD_IN_HIGH) {
		ssize_t n = read(c->fd, tmp, sizeof(tmp));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n == 0)
			return 1;
		if (n < 0)
			return -ECONNRESET;
		if (buf_append(&c->in, tmp, n))
			return -ENOMEM;
		if ((size_t)n < sizeof(tmp))
			return 0;
	}
	return 0;
}

/* Answers whole requests, one at a time, while the socket takes them. */
static int serve(struct httpd *h, struct conn *c)
{
	int err = flush(c);

	while (!err && !conn_busy(c) && !c->closing) {
		err = http_respond(h, c);
		if (err <= 0)
			break;		/* not a whole request yet, or bad */
		err = flush(c);
	}
	if (err < 0)
		return err;
	if (!conn_busy(c) && (c->closing || c->eof))
		return -ESHUTDOWN;	/* done; a half request dies here */
	return watch(h, c, EPOLL_CTL_MOD);
}

void conn_io(struct httpd *h, struct conn *c, unsigned int events)
{
	int err = 0;

	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		err = read_some(c);
		if (err == 1) {
			c->eof = true;
			err = 0;
		}
	}
	if (!err)
		err = serve(h, c);
	if (err)
		conn_close(h, c);
}

/* After a takeover or a rollback: what was read, or not written yet. */
void conn_kick(struct httpd *h, struct conn *c)
{
	if (serve(h, c))
		conn_close(h, c);
}

int listeners_watch(struct httpd *h, bool on)
{
	unsigned int i;

	for (i = 0; i < h->nlisteners; i++) {
		struct listener *l = &h->listeners[i];
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &l->h };

		if (on && epoll_ctl(h->ep, EPOLL_CTL_ADD, l->fd, &ev) < 0 &&
		    errno != EEXIST)
			return -errno;
		if (!on)
			epoll_ctl(h->ep, EPOLL_CTL_DEL, l->fd, NULL);
	}
	h->accepting = on;
	return 0;
}
