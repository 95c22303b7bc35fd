// SPDX-License-Identifier: GPL-2.0-only
/*
 * The write-heavy load (--keys, --writers): a keyspace of --keys keys of
 * --value-size bytes loaded before the run, then writers, each a
 * persistent connection with one request in flight, SETting random keys
 * of their own (key k belongs to writer k % writers) as fast as they are
 * answered. Each value names its key and its write's sequence number, so
 * that at the end every key is read back and compared with the last value
 * written to it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"

#define BATCH		1000	/* pipelined, preloading and reading back */
#define SEQ_UNKNOWN	0xffffffffu	/* its last write's fate is unknown */

struct wconn {
	int fd;
	unsigned int g;		/* the writer's index among all writers */
	unsigned int key;	/* in flight */
	__u64 sent_ns;		/* 0: none in flight */
	unsigned int have;
	char buf[16];
};

static int connect_blocking(struct in_addr addr, int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr = addr };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* a reply that never comes ends a read, not the bench */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO,
		   &(struct timeval){ .tv_sec = BENCH_READ_TIMEOUT_S },
		   sizeof(struct timeval));
	return fd;
}

/* The value of key k after its seq-th write: "k.seq." and padding */
static int value_of(char *buf, unsigned int k, unsigned int seq,
		    unsigned int size)
{
	int n = snprintf(buf, size + 1, "%08u.%08u.", k, seq);

	memset(buf + n, 'a' + (k + seq) % 26, size - n);
	return size;
}

static int set_cmd(char *p, unsigned int k, unsigned int seq,
		   unsigned int vsize)
{
	char key[16];
	int kl = snprintf(key, sizeof(key), "w:%u", k), n;

	n = sprintf(p, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%u\r\n", kl, key,
		    vsize);
	n += value_of(p + n, k, seq, vsize);
	memcpy(p + n, "\r\n", 2);
	return n + 2;
}

static int read_full(int fd, char *buf, size_t len)
{
	size_t have = 0;

	while (have < len) {
		ssize_t n = read(fd, buf + have, len - have);

		if (n <= 0)
			return n ? -errno : -ECONNRESET;
		have += n;
	}
	return 0;
}

int writes_preload(struct in_addr addr, int port, unsigned int keys,
		   unsigned int vsize)
{
	char *req = malloc((size_t)BATCH * (vsize + 64)), rep[BATCH * 5];
	unsigned int k, i, n;
	int fd = connect_blocking(addr, port), err = 0;

	if (fd < 0 || !req) {
		err = fd < 0 ? fd : -ENOMEM;
		goto free_req;
	}
	for (k = 0; !err && k < keys; k += n) {
		size_t len = 0;

		n = keys - k < BATCH ? keys - k : BATCH;
		for (i = 0; i < n; i++)
			len += set_cmd(req + len, k + i, 0, vsize);
		err = write(fd, req, len) == (ssize_t)len ? 0 : -EIO;
		err = err ?: read_full(fd, rep, n * 5);
		for (i = 0; !err && i < n; i++)
			if (memcmp(rep + i * 5, "+OK\r\n", 5))
				err = -EBADMSG;
	}
	close(fd);
free_req:
	free(req);
	return err;
}

static int send_set(const struct load_spec *s, struct wconn *c, __u32 *seq,
		    char *req)
{
	unsigned int mine = (s->keys - c->g + s->writers - 1) / s->writers;
	int len;

	c->key = c->g + s->writers * (unsigned int)(random() % mine);
	len = set_cmd(req, c->key, seq[c->key] + 1, s->value_size);
	c->have = 0;
	c->sent_ns = now_ns();
	return write(c->fd, req, len) == len ? 0 : -EIO;
}

/* A connection lost: its last write may or may not have happened. */
static void lost(struct worker_result *r, struct wconn *c, __u32 *seq)
{
	r->dropped++;
	if (c->sent_ns)
		seq[c->key] = SEQ_UNKNOWN;
	close(c->fd);
	c->fd = -1;
}

/* Every key of this worker's writers, read back and compared. */
static void read_back(const struct load_spec *s, struct worker_result *r,
		      const __u32 *seq)
{
	size_t rl = snprintf(NULL, 0, "$%u\r\n", s->value_size) +
		    s->value_size + 2;
	char *req = malloc(BATCH * 32), *rep = malloc(BATCH * rl);
	char *want = malloc(rl + 1);
	unsigned int k = s->first, i, n, keys[BATCH];
	int fd = connect_blocking(s->addr, s->port);

	while (fd >= 0 && req && rep && want && k < s->keys) {
		size_t len = 0;

		for (n = 0; n < BATCH && k < s->keys; k++) {
			char key[16];
			int kl;

			if (k % s->writers < s->first ||
			    k % s->writers >= s->first + s->count)
				continue;
			if (seq[k] == SEQ_UNKNOWN)
				continue;
			kl = snprintf(key, sizeof(key), "w:%u", k);
			len += sprintf(req + len, "*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n",
				       kl, key);
			keys[n++] = k;
		}
		if (write(fd, req, len) != (ssize_t)len ||
		    read_full(fd, rep, n * rl)) {
			r->read_wrong += n;
			break;
		}
		for (i = 0; i < n; i++) {
			int wl = sprintf(want, "$%u\r\n", s->value_size);

			wl += value_of(want + wl, keys[i], seq[keys[i]],
				       s->value_size);
			memcpy(want + wl, "\r\n", 2);
			if (memcmp(rep + i * rl, want, rl))
				r->read_wrong++;
			else
				r->read_back++;
		}
	}
	if (fd >= 0)
		close(fd);
	free(req);
	free(rep);
	free(want);
}

static void on_reply(struct worker_result *r, struct samples *smp,
		     struct shared *sh, struct wconn *c, __u32 *seq)
{
	ssize_t n = read(c->fd, c->buf + c->have, sizeof(c->buf) - c->have);
	__u64 now;

	if (n < 0 && errno == EAGAIN)
		return;
	if (n <= 0) {
		lost(r, c, seq);
		return;
	}
	c->have += n;
	if (c->have < 5)
		return;
	now = now_ns();
	if (!c->sent_ns || c->have != 5 || memcmp(c->buf, "+OK\r\n", 5)) {
		r->integrity++;
		lost(r, c, seq);
		return;
	}
	seq[c->key]++;
	r->writes++;
	r->requests++;
	samples_add(smp, c->sent_ns, now);
	plot_add(&r->plot, sh->origin_ns, c->sent_ns, now);
	c->sent_ns = 0;
}

/* Writers spec->first .. first + count - 1, until told to stop. */
int writes_run(const struct load_spec *s, struct shared *sh)
{
	struct worker_result *r = &sh->w[s->id];
	struct wconn *c = calloc(s->count, sizeof(*c));
	__u32 *seq = calloc(s->keys, sizeof(*seq));
	char *req = malloc(s->value_size + 64);
	struct samples smp = {};
	struct epoll_event ev[256];
	int ep = epoll_create1(EPOLL_CLOEXEC), err = 0;
	unsigned int i;
	__u64 end;

	srandom(s->id * 7919 + getpid());
	if (!c || !seq || !req || ep < 0) {
		err = -ENOMEM;
		goto wait;
	}
	for (i = 0; i < s->count && !err; i++) {
		struct epoll_event e = { .events = EPOLLIN, .data.u32 = i };

		c[i].g = s->first + i;
		c[i].fd = connect_blocking(s->addr, s->port);
		if (c[i].fd < 0) {
			err = c[i].fd;
			break;
		}
		epoll_ctl(ep, EPOLL_CTL_ADD, c[i].fd, &e);
		r->connected++;
	}
	while (!err && !sh->stop) {
		int n = epoll_wait(ep, ev, 256, 1), j;

		for (j = 0; j < n; j++)
			if (c[ev[j].data.u32].fd >= 0)
				on_reply(r, &smp, sh, &c[ev[j].data.u32], seq);
		for (i = 0; i < s->count; i++)
			if (c[i].fd >= 0 && !c[i].sent_ns &&
			    send_set(s, &c[i], seq, req))
				lost(r, &c[i], seq);
	}
	/*
	 * the last answers: every write has its fate known, or is counted
	 * unanswered (a read gives up after BENCH_READ_TIMEOUT_S; before,
	 * a reply that never came hung the bench)
	 */
	end = now_ns() + BENCH_DRAIN_NS;
	for (i = 0; i < s->count; i++)
		while (c[i].fd >= 0 && c[i].sent_ns && now_ns() < end)
			on_reply(r, &smp, sh, &c[i], seq);
	for (i = 0; i < s->count; i++)
		r->unanswered += c[i].fd >= 0 && c[i].sent_ns;
	if (!err)
		read_back(s, r, seq);
wait:
	while (!sh->classify)
		usleep(1000);
	samples_judge(&smp, sh, r);
	r->done = true;
	for (i = 0; c && i < s->count; i++)
		if (c[i].fd > 0)
			close(c[i].fd);
	if (ep >= 0)
		close(ep);
	free(c);
	free(seq);
	free(req);
	return err;
}
