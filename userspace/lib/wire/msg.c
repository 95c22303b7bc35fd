// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Control messages: one struct nlmsghdr and its attributes per SOCK_SEQPACKET
 * packet, with SCM_RIGHTS descriptors on the same packet. Every received
 * message is checked whole before anything reads it: its length and the
 * descriptors' count here, every attribute's length and type in attrs.c.
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wire/wire.h"

struct baton_msg *msg_alloc(void)
{
	struct baton_msg *m = calloc(1, sizeof(*m));

	if (m)
		msg_init(m, 0);
	return m;
}

void msg_free(struct baton_msg *m)
{
	if (!m)
		return;
	msg_close_fds(m);
	free(m);
}

void msg_init(struct baton_msg *m, __u16 type)
{
	m->nlh = mnl_nlmsg_put_header(m->buf);
	m->nlh->nlmsg_type = type;
	m->nfds = 0;
}

int msg_put(struct baton_msg *m, __u16 type, size_t len, const void *data)
{
	return mnl_attr_put_check(m->nlh, sizeof(m->buf), type, len, data) ?
	       0 : -EMSGSIZE;
}

int msg_put_u32(struct baton_msg *m, __u16 type, __u32 v)
{
	return msg_put(m, type, sizeof(v), &v);
}

int msg_put_u64(struct baton_msg *m, __u16 type, __u64 v)
{
	return msg_put(m, type, sizeof(v), &v);
}

int msg_put_str(struct baton_msg *m, __u16 type, const char *s)
{
	return msg_put(m, type, strlen(s) + 1, s);
}

struct nlattr *msg_nest_start(struct baton_msg *m, __u16 type)
{
	return mnl_attr_nest_start_check(m->nlh, sizeof(m->buf), type);
}

void msg_nest_end(struct baton_msg *m, struct nlattr *nest)
{
	mnl_attr_nest_end(m->nlh, nest);
}

int msg_add_fd(struct baton_msg *m, int fd)
{
	if (m->nfds >= BATON_MAX_FDS_PER_MSG)
		return -E2BIG;
	m->fds[m->nfds++] = fd;
	return 0;
}

void msg_close_fds(struct baton_msg *m)
{
	while (m->nfds)
		close(m->fds[--m->nfds]);
}

int msg_send(int sock, const struct baton_msg *m)
{
	char cbuf[CMSG_SPACE(sizeof(int) * BATON_MAX_FDS_PER_MSG)];
	struct iovec iov = { (void *)m->buf, m->nlh->nlmsg_len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (m->nfds) {
		struct cmsghdr *c;

		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * m->nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * m->nfds);
		memcpy(CMSG_DATA(c), m->fds, sizeof(int) * m->nfds);
	}
	do {
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN ? -ETIMEDOUT : -errno;
	return n == (ssize_t)iov.iov_len ? 0 : -EIO;
}

static int take_fds(struct baton_msg *m, struct msghdr *mh)
{
	struct cmsghdr *c;
	int err = 0;

	for (c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		unsigned int n, i;
		int *fds;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
			err = -EBADMSG;
			continue;
		}
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		fds = (int *)CMSG_DATA(c);
		for (i = 0; i < n; i++) {
			if (m->nfds < BATON_MAX_FDS_PER_MSG)
				m->fds[m->nfds++] = fds[i];
			else {
				close(fds[i]);
				err = -E2BIG;
			}
		}
	}
	return err;
}

/*
 * poll(), without sleeping until spin_until (CLOCK_MONOTONIC, 0 for not at
 * all), then asleep for up to timeout_ms; what poll() returns. In the
 * blackout each message is awaited by a process that sleeps on an idle
 * CPU, and waking it there took 60 to 100 µs on the development machine,
 * three to four times a Unix socket's round trip: the wakeups were most of
 * an idle service's blackout. A process that polls sees the message at
 * once. Each empty poll yields its CPU to whatever else may run there, and
 * a process allowed one CPU does not spin at all: the one it waits for
 * would need that CPU.
 */
int msg_poll(struct pollfd *p, nfds_t n, __u64 spin_until, int timeout_ms)
{
	__u64 end = timeout_ms > 0 ? now_ns() + timeout_ms * 1000000ULL : 0;
	cpu_set_t cpus;
	int ret;

	if (spin_until && !sched_getaffinity(0, sizeof(cpus), &cpus) &&
	    CPU_COUNT(&cpus) > 1) {
		while (now_ns() < spin_until) {
			ret = poll(p, n, 0);
			if (ret)
				return ret;
			sched_yield();
		}
	}
	for (;;) {
		__u64 t;

		if (end) {
			t = now_ns();
			timeout_ms = t >= end ? 0 : (end - t + 999999) / 1000000;
		}
		ret = poll(p, n, timeout_ms);
		/* a signal: what is left of the time, not all of it again */
		if (ret >= 0 || errno != EINTR)
			return ret;
	}
}

/*
 * Receives one message. 0 and a whole, length-checked message, or -errno:
 * -ECONNRESET when the peer has gone, -ETIMEDOUT when nothing came in time.
 * Descriptors of a rejected message are closed.
 */
int msg_recv(int sock, struct baton_msg *m, int timeout_ms)
{
	char cbuf[CMSG_SPACE(sizeof(int) * BATON_MAX_FDS_PER_MSG)];
	struct iovec iov = { m->buf, sizeof(m->buf) };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	ssize_t n;
	int err;

	msg_close_fds(m);
	if (timeout_ms >= 0) {
		struct pollfd p = { .fd = sock, .events = POLLIN };

		err = msg_poll(&p, 1, 0, timeout_ms);
		if (err < 0)
			return -errno;
		if (err == 0)
			return -ETIMEDOUT;
	}
	do {
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	/*
	 * A peer that went away leaving our messages unread makes the first
	 * read fail, though what it sent before it went is still queued:
	 * its last word, often an ERROR that says why, is read next.
	 */
	if (n < 0 && errno == ECONNRESET) {
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (n < 0)
			return -ECONNRESET;
	}
	if (n < 0)
		return errno == ECONNRESET || errno == EPIPE ? -ECONNRESET :
		       errno == EAGAIN ? -ETIMEDOUT : -errno;
	err = take_fds(m, &mh);
	if (n == 0 && !err) {
		msg_close_fds(m);
		return -ECONNRESET;
	}
	if (!err && (mh.msg_flags & MSG_CTRUNC))
		err = -ENOBUFS;
	if (!err && (mh.msg_flags & MSG_TRUNC))
		err = -EMSGSIZE;
	m->nlh = (struct nlmsghdr *)m->buf;
	if (!err && (n < (ssize_t)sizeof(struct nlmsghdr) ||
		     m->nlh->nlmsg_len != (__u32)n))
		err = -EBADMSG;
	if (err)
		msg_close_fds(m);
	return err;
}
