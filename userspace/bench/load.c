// SPDX-License-Identifier: GPL-2.0-only
/*
 * A load worker: persistent connections, each paced at `rate` requests a
 * second, cycling INCR (must go up by exactly one), SET of a checksummed
 * value and GET (must return it); or, for the connector, new connections at
 * `connect_rate`, one request each. Every request's start and end is kept
 * and judged at the end against the upgrade windows.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"

#define SLOTS		4096		/* 1 ms each */
#define CONNECT_SLOW_NS	1000000000ULL
#define RETRY_NS	10000000ULL	/* after a refused connect */

enum op { OP_INCR, OP_SET, OP_GET, NR_OPS };

struct lconn {
	int fd;
	unsigned int idx;
	__u32 gen;		/* a new key space after each reconnect */
	__u32 seq;
	__u64 counter;
	__u64 next_ns;
	__u64 sent_ns;		/* in flight since, or 0 */
	__u64 lost_ns;		/* a request lost with the connection */
	enum op op;
	__u32 stamp;		/* its latest place in the slots */
	__u64 connecting_ns;	/* a reconnect in progress since */
	unsigned int have;
	char expect[96];
	char val[64];
	char buf[192];
};

/* A slot of 1 ms: the connections due then; stale stamps are skipped. */
struct slot {
	unsigned int n, cap;
	struct {
		__u32 idx, stamp;
	} *e;
};

struct worker {
	const struct load_spec *spec;
	struct shared *sh;
	struct worker_result *r;
	struct samples samples;
	int ep;
	struct lconn *c;
	struct slot slot[SLOTS];
	__u64 last_ms;
	__u64 period_ns;
	struct sockaddr_in addr;
};

/*
 * (Re)schedules c at c->next_ns; an earlier place goes stale. A time whose
 * slot run_slots() has passed already goes in the next one it will run:
 * in its own, it would wait a whole lap of SLOTS ms.
 */
static void schedule(struct worker *w, struct lconn *c)
{
	__u64 ms = c->next_ns / 1000000;
	struct slot *s;

	if (ms < w->last_ms)
		ms = w->last_ms;
	s = &w->slot[ms % SLOTS];

	if (s->n == s->cap) {
		unsigned int cap = s->cap ? s->cap * 2 : 16;
		void *e = realloc(s->e, cap * sizeof(*s->e));

		if (!e)
			return;		/* out of memory: it falls silent */
		s->e = e;
		s->cap = cap;
	}
	s->e[s->n].idx = c - w->c;
	s->e[s->n].stamp = ++c->stamp;
	s->n++;
}

static int open_conn(struct worker *w, int *fd_out)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;

	if (fd < 0)
		return -errno;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&w->addr, sizeof(w->addr)) < 0 &&
	    errno != EINPROGRESS) {
		int err = -errno;

		close(fd);
		return err;
	}
	*fd_out = fd;
	return 0;
}

static __u32 checksum(const char *s)
{
	__u32 h = 2166136261u;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h;
}

static int send_request(struct worker *w, struct lconn *c)
{
	char req[256], key[48];
	int n;

	snprintf(key, sizeof(key), "%c:%u:%u:%u", "css"[c->op], w->spec->id,
		 c->idx, c->gen);
	switch (c->op) {
	case OP_INCR:
		n = snprintf(req, sizeof(req), "*2\r\n$4\r\nINCR\r\n$%zu\r\n%s\r\n",
			     strlen(key), key);
		snprintf(c->expect, sizeof(c->expect), ":%llu\r\n",
			 (unsigned long long)c->counter + 1);
		break;
	case OP_SET: {
		char prefix[48];

		snprintf(prefix, sizeof(prefix), "%u.%u.%u.%u", w->spec->id,
			 c->idx, c->gen, ++c->seq);
		snprintf(c->val, sizeof(c->val), "%s.%08x", prefix,
			 checksum(prefix));
		n = snprintf(req, sizeof(req),
			     "*3\r\n$3\r\nSET\r\n$%zu\r\n%s\r\n$%zu\r\n%s\r\n",
			     strlen(key), key, strlen(c->val), c->val);
		snprintf(c->expect, sizeof(c->expect), "+OK\r\n");
		break;
	}
	default:
		n = snprintf(req, sizeof(req), "*2\r\n$3\r\nGET\r\n$%zu\r\n%s\r\n",
			     strlen(key), key);
		snprintf(c->expect, sizeof(c->expect), "$%zu\r\n%s\r\n",
			 strlen(c->val), c->val);
		break;
	}
	c->have = 0;
	c->sent_ns = now_ns();
	return write(c->fd, req, n) == n ? 0 : -EIO;
}

/* A lost connection: counted, then reopened with keys of its own again. */
static void lost(struct worker *w, struct lconn *c)
{
	__u64 now = now_ns();

	w->r->dropped++;
	/* its client waits until a retry is answered: that is its latency */
	if (!c->lost_ns)
		c->lost_ns = c->sent_ns ? c->sent_ns : now;
	epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	c->sent_ns = 0;
	c->gen++;
	c->counter = 0;
	c->op = OP_INCR;
	c->next_ns = now;	/* a client reconnects at once */
	schedule(w, c);
}

static void retry_later(struct worker *w, struct lconn *c)
{
	w->r->failed_connects++;
	if (c->fd >= 0) {
		epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	c->fd = -1;
	c->connecting_ns = 0;
	c->next_ns = now_ns() + RETRY_NS;
	schedule(w, c);
}

/* A client reconnects, and gives up on a connect after a second. */
static void reconnect(struct worker *w, struct lconn *c)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT,
				  .data.u32 = c - w->c };

	if (open_conn(w, &c->fd)) {
		c->fd = -1;
		retry_later(w, c);	/* refused: nobody listens */
		return;
	}
	epoll_ctl(w->ep, EPOLL_CTL_ADD, c->fd, &ev);
	c->connecting_ns = now_ns();
	c->next_ns = c->connecting_ns + CONNECT_SLOW_NS;
	schedule(w, c);
}

static void connected(struct worker *w, struct lconn *c)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = c - w->c };
	socklen_t len = sizeof(int);
	int err = 0;

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
		retry_later(w, c);
		return;
	}
	epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &ev);
	c->connecting_ns = 0;
	c->next_ns = now_ns();
	schedule(w, c);
}

static size_t reply_len(const char *b, size_t have)
{
	const char *nl = memchr(b, '\n', have);
	long n;

	if (!nl)
		return 0;
	if (b[0] != '$')
		return nl - b + 1;
	n = atol(b + 1);
	if (n < 0)
		return nl - b + 1;
	return have >= (size_t)(nl - b + 1) + n + 2 ? (size_t)(nl - b + 1) + n + 2 : 0;
}

static void readable(struct worker *w, struct lconn *c)
{
	ssize_t n = read(c->fd, c->buf + c->have, sizeof(c->buf) - 1 - c->have);
	size_t len;
	__u64 now;

	if (n <= 0) {
		if (n < 0 && errno == EAGAIN)
			return;
		lost(w, c);
		return;
	}
	c->have += n;
	len = reply_len(c->buf, c->have);
	if (!len) {
		if (c->have == sizeof(c->buf) - 1) {
			w->r->integrity++;	/* no reply of ours is that long */
			lost(w, c);
		}
		return;
	}
	now = now_ns();
	if (!c->sent_ns || len != c->have || len != strlen(c->expect) ||
	    memcmp(c->buf, c->expect, len)) {
		/* a wrong, extra or repeated reply */
		w->r->integrity++;
		if (c->op == OP_INCR && c->buf[0] == ':')
			c->counter = strtoull(c->buf + 1, NULL, 10) - 1;
	}
	if (c->sent_ns) {
		samples_add(&w->samples, c->lost_ns ? c->lost_ns : c->sent_ns, now);
		plot_add(&w->r->plot, w->sh->origin_ns,
			 c->lost_ns ? c->lost_ns : c->sent_ns, now);
		c->lost_ns = 0;
		w->r->requests++;
		if (c->op == OP_INCR)
			c->counter++;
		c->op = (c->op + 1) % NR_OPS;
		c->sent_ns = 0;
	}
	c->have = 0;
	c->next_ns += w->period_ns;
	if (c->next_ns < now)
		c->next_ns = now;
	schedule(w, c);
}

static void run_slots(struct worker *w)
{
	__u64 now = now_ns(), now_ms = now / 1000000;

	for (; w->last_ms <= now_ms; w->last_ms++) {
		struct slot *s = &w->slot[w->last_ms % SLOTS];
		unsigned int i, end = s->n;

		for (i = 0; i < end; i++) {
			struct lconn *c = &w->c[s->e[i].idx];

			if (s->e[i].stamp != c->stamp)
				continue;	/* rescheduled since */
			if (c->next_ns / 1000000 > now_ms) {
				schedule(w, c);		/* a later lap */
			} else if (c->connecting_ns) {
				w->r->slow_connects++;	/* a second gone */
				retry_later(w, c);
			} else if (c->fd < 0) {
				reconnect(w, c);
			} else if (!c->sent_ns && send_request(w, c)) {
				lost(w, c);
			}
		}
		/* what was scheduled into this slot meanwhile stays */
		memmove(s->e, s->e + end, (s->n - end) * sizeof(*s->e));
		s->n -= end;
	}
}

static int persistent_setup(struct worker *w)
{
	unsigned int i;

	w->c = calloc(w->spec->count, sizeof(*w->c));
	if (!w->c)
		return -ENOMEM;
	for (i = 0; i < w->spec->count; i++) {
		struct lconn *c = &w->c[i];
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = i };
		int one = 1;

		c->idx = w->spec->first + i;
		c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (c->fd < 0 ||
		    connect(c->fd, (struct sockaddr *)&w->addr, sizeof(w->addr)) < 0) {
			fprintf(stderr, "baton-bench: connection %u: %s\n", c->idx,
				strerror(errno));
			return -errno;
		}
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		{
			int fl = 1;

			ioctl(c->fd, FIONBIO, &fl);
		}
		epoll_ctl(w->ep, EPOLL_CTL_ADD, c->fd, &ev);
		/* spread the first requests over one period */
		c->next_ns = now_ns() + (__u64)rand() % w->period_ns;
		schedule(w, c);
		w->r->connected++;
	}
	return 0;
}

/* Requests sent on open connections and not answered yet */
static __u64 in_flight(const struct worker *w)
{
	__u64 n = 0;
	unsigned int i;

	for (i = 0; i < w->spec->count; i++)
		n += w->c[i].fd >= 0 && !w->c[i].connecting_ns &&
		     w->c[i].sent_ns;
	return n;
}

static void persistent_loop(struct worker *w)
{
	struct epoll_event ev[512];
	__u64 end;
	int n, i;

	while (!w->sh->stop) {
		n = epoll_wait(w->ep, ev, 512, 1);
		for (i = 0; i < n; i++) {
			struct lconn *c = &w->c[ev[i].data.u32];

			if (c->fd >= 0 && c->connecting_ns)
				connected(w, c);
			else if (c->fd >= 0)
				readable(w, c);
		}
		run_slots(w);
	}
	/*
	 * The replies on their way at the stop come in, and nothing more is
	 * sent: a request never answered (its connection held for good, a
	 * segment lost with nothing to send it again) is counted, as a reset
	 * one is (dropped). Before, it went unseen.
	 */
	end = now_ns() + BENCH_DRAIN_NS;
	while (in_flight(w) && now_ns() < end) {
		n = epoll_wait(w->ep, ev, 512, 10);
		for (i = 0; i < n; i++) {
			struct lconn *c = &w->c[ev[i].data.u32];

			if (c->fd >= 0 && !c->connecting_ns)
				readable(w, c);
		}
	}
	w->r->unanswered = in_flight(w);
}

/*
 * A reset instead of TIME_WAIT: at thousands of connections a second the
 * client's ports would run out in seconds.
 */
static void close_quick(int fd)
{
	struct linger l = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
}

/* The connector: new connections, one request each, then close. */
struct pending {
	int fd;
	__u64 start;
	unsigned int have;
	bool sent;
	char buf[64];
	char key[32];
};

static void connector_loop(struct worker *w)
{
	unsigned int cap = 8192, k = 0, i;
	struct pending *p = calloc(cap, sizeof(*p));
	__u64 period = 1e9 / w->spec->connect_rate, next = now_ns();
	struct epoll_event ev[256];

	if (!p)
		return;
	for (i = 0; i < cap; i++)
		p[i].fd = -1;
	while (!w->sh->stop) {
		__u64 now = now_ns();
		int n, j;

		while (next <= now) {
			struct epoll_event e = { .events = EPOLLOUT | EPOLLIN };

			next += period;
			for (i = 0; i < cap && p[k % cap].fd >= 0; i++)
				k++;
			if (i == cap) {
				w->r->failed_connects++;	/* a backlog of 8192 */
				continue;
			}
			i = k++ % cap;
			memset(&p[i], 0, sizeof(p[i]));
			p[i].start = now;
			snprintf(p[i].key, sizeof(p[i].key), "n:%u:%u", w->spec->id, k);
			if (open_conn(w, &p[i].fd)) {
				p[i].fd = -1;
				w->r->failed_connects++;
				continue;
			}
			e.data.u32 = i;
			epoll_ctl(w->ep, EPOLL_CTL_ADD, p[i].fd, &e);
		}
		n = epoll_wait(w->ep, ev, 256, 1);
		for (j = 0; j < n; j++) {
			struct pending *q = &p[ev[j].data.u32];
			char req[96];
			ssize_t r;
			int len;

			if (q->fd < 0)
				continue;
			if (!q->sent && (ev[j].events & EPOLLOUT)) {
				struct epoll_event e = { .events = EPOLLIN, .data.u32 = ev[j].data.u32 };

				len = snprintf(req, sizeof(req), "*2\r\n$4\r\nINCR\r\n$%zu\r\n%s\r\n",
					       strlen(q->key), q->key);
				if (write(q->fd, req, len) != len)
					goto refused;	/* never connected */
				q->sent = true;
				epoll_ctl(w->ep, EPOLL_CTL_MOD, q->fd, &e);
				continue;
			}
			r = read(q->fd, q->buf + q->have, sizeof(q->buf) - 1 - q->have);
			if (r < 0 && errno == EAGAIN)
				continue;
			if (r < 0 && !q->sent)
				goto refused;
			if (r <= 0)
				goto reset;	/* cut before its reply */
			q->have += r;
			if (!memchr(q->buf, '\n', q->have))
				continue;
			now = now_ns();
			if (q->have != 4 || memcmp(q->buf, ":1\r\n", 4))
				w->r->integrity++;
			if (now - q->start > CONNECT_SLOW_NS)
				w->r->slow_connects++;
			samples_add(&w->samples, q->start, now);
			plot_add(&w->r->plot, w->sh->origin_ns, q->start, now);
			w->r->requests++;
			close_quick(q->fd);
			q->fd = -1;
			continue;
refused:
			w->r->refused++;
			goto failed;
reset:
			w->r->resets++;
failed:
			w->r->failed_connects++;
			close_quick(q->fd);
			q->fd = -1;
		}
	}
	for (i = 0; i < cap; i++)
		if (p[i].fd >= 0)
			close(p[i].fd);
	free(p);
}

int load_run(const struct load_spec *spec, struct shared *sh)
{
	struct worker w = {
		.spec = spec, .sh = sh, .r = &sh->w[spec->id],
		.period_ns = spec->rate > 0 ? 1e9 / spec->rate : 1e9,
	};
	int err = 0;

	srand(spec->id * 7919 + getpid());
	w.last_ms = now_ns() / 1000000;
	w.addr.sin_family = AF_INET;
	w.addr.sin_port = htons(spec->port);
	w.addr.sin_addr = spec->addr;
	w.ep = epoll_create1(EPOLL_CLOEXEC);
	if (w.ep < 0)
		return -errno;
	if (spec->connect_rate > 0) {
		w.r->connected = 1;	/* nothing to wait for */
		connector_loop(&w);
	} else {
		err = persistent_setup(&w);
		if (!err)
			persistent_loop(&w);
	}
	while (!sh->classify)
		usleep(1000);
	samples_judge(&w.samples, sh, w.r);
	w.r->done = true;
	return err;
}
