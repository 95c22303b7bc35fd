// SPDX-License-Identifier: GPL-2.0-only
/* Client connections: reading requests, writing replies. */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "kvd.h"

/* Returns -errno when the connection is gone. */
static int flush(struct kvd *kvd, struct kvd_conn *c)
{
	struct buf *out = &c->base.out;

	while (buf_pending(out)) {
		ssize_t n = write(c->base.fd, out->data + out->off,
				  buf_pending(out));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0)
			return -EPIPE;
		buf_consume(out, n);
	}
	if (!buf_pending(out) && c->closing)
		return -ESHUTDOWN;
	return srv_conn_watch(&kvd->srv, &c->base,
			      EPOLLIN | (buf_pending(out) ? EPOLLOUT : 0));
}

/* Runs every whole request the input holds, unless replies pile up. */
static int execute(struct kvd *kvd, struct kvd_conn *c)
{
	int n;

	while (buf_pending(&c->base.in) && !c->closing &&
	       buf_pending(&c->base.out) < KVD_OUT_HIGH) {
		n = resp_execute(kvd, c);
		if (n < 0)
			return n;
		if (n == 0)
			break;	/* a partial request: wait for the rest */
	}
	if (buf_pending(&c->base.in) > KVD_MAX_QUERY)
		return -EMSGSIZE;
	return flush(kvd, c);
}

static int read_some(struct kvd_conn *c)
{
	char tmp[65536];
	int rounds;

	for (rounds = 0; rounds < 4; rounds++) {
		ssize_t n = read(c->base.fd, tmp, sizeof(tmp));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n == 0)
			return 1;	/* the client is done sending */
		if (n < 0)
			return -ECONNRESET;
		if (buf_append(&c->base.in, tmp, n))
			return -ENOMEM;
		if ((size_t)n < sizeof(tmp))
			return 0;
	}
	return 0;
}

void kvd_conn_io(struct srv *s, struct srv_conn *sc, unsigned int events)
{
	struct kvd_conn *c = kvd_conn(sc);
	bool eof = false;
	int err = 0;

	if (events & EPOLLOUT)
		err = flush(kvd_of(s), c);
	if (!err && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) &&
	    buf_pending(&sc->out) < KVD_OUT_HIGH) {
		err = read_some(c);
		eof = err == 1;
		err = err < 0 ? err : 0;
	}
	if (!err)
		err = execute(kvd_of(s), c);	/* answer what came before EOF */
	if (err || eof)
		srv_conn_close(s, sc);
}

/* After a takeover: what the old instance had read or not yet written. */
void kvd_conn_kick(struct srv *s, struct srv_conn *sc)
{
	if (execute(kvd_of(s), kvd_conn(sc)))
		srv_conn_close(s, sc);
}
