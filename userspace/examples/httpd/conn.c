// SPDX-License-Identifier: GPL-2.0-only
/* Client connections: reading requests, writing responses and files. */
#include <errno.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include "httpd.h"

#define SENDFILE_CHUNK	(1 << 20)

static unsigned int wanted(const struct conn *c)
{
	unsigned int ev = 0;

	if (!c->eof && !c->closing && buf_pending(&c->base.in) < HTTPD_IN_HIGH)
		ev |= EPOLLIN;
	if (conn_busy(c))
		ev |= EPOLLOUT;
	return ev;
}

static int watch(struct httpd *h, struct conn *c)
{
	return srv_conn_watch(&h->srv, &c->base, wanted(c));
}

void httpd_conn_init(struct srv_conn *sc)
{
	conn_of(sc)->file = -1;
}

void conn_file_close(struct conn *c)
{
	if (c->file >= 0)
		close(c->file);
	c->file = -1;
	c->path[0] = '\0';
	c->off = c->end = 0;
}

void httpd_conn_release(struct srv_conn *sc)
{
	conn_file_close(conn_of(sc));
}

/*
 * Writes what the response has left: its head, then its file. 0 when it
 * is out or the socket is full; -errno when the connection is gone.
 */
static int flush(struct conn *c)
{
	struct buf *out = &c->base.out;

	while (buf_pending(out)) {
		/* the head and the start of the file in one segment */
		int more = c->file >= 0 ? MSG_MORE : 0;
		ssize_t n = send(c->base.fd, out->data + out->off,
				 buf_pending(out), MSG_NOSIGNAL | more);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n <= 0)
			return -EPIPE;
		buf_consume(out, n);
	}
	while (c->file >= 0 && c->off < c->end) {
		off_t off = c->off;
		size_t len = c->end - c->off < SENDFILE_CHUNK ?
			     c->end - c->off : SENDFILE_CHUNK;
		ssize_t n = sendfile(c->base.fd, c->file, &off, len);

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

	while (buf_pending(&c->base.in) < HTTPD_IN_HIGH) {
		ssize_t n = read(c->base.fd, tmp, sizeof(tmp));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n == 0)
			return 1;
		if (n < 0)
			return -ECONNRESET;
		if (buf_append(&c->base.in, tmp, n))
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
	return watch(h, c);
}

void httpd_conn_io(struct srv *s, struct srv_conn *sc, unsigned int events)
{
	struct conn *c = conn_of(sc);
	int err = 0;

	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		err = read_some(c);
		if (err == 1) {
			c->eof = true;
			err = 0;
		}
	}
	if (!err)
		err = serve(httpd_of(s), c);
	if (err)
		srv_conn_close(s, sc);
}

/* After a takeover or a rollback: what was read, or not written yet. */
void httpd_conn_kick(struct srv *s, struct srv_conn *sc)
{
	if (serve(httpd_of(s), conn_of(sc)))
		srv_conn_close(s, sc);
}
