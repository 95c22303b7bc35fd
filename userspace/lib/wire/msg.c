// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Control messages: one struct nlmsghdr and its attributes per SOCK_SEQPACKET
 * packet, with SCM_RIGHTS descriptors on the same packet. Every received
 * message is checked whole before anything reads it: its length, every
 * attribute's length and type, the descriptors' count.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wire/wire.h"

struct attr_policy {
	enum mnl_attr_data_type type;
};

static const struct attr_policy baton_policy[BATON_A_MAX + 1] = {
	[BATON_A_PROTO]		= { MNL_TYPE_U32 },
	[BATON_A_PROTO_MIN]	= { MNL_TYPE_U32 },
	[BATON_A_ROLE]		= { MNL_TYPE_U32 },
	[BATON_A_PID]		= { MNL_TYPE_U32 },
	[BATON_A_SERVICE]	= { MNL_TYPE_NUL_STRING },
	[BATON_A_APP]		= { MNL_TYPE_NUL_STRING },
	[BATON_A_STATE_VERSION]	= { MNL_TYPE_U32 },
	[BATON_A_STATE_COMPAT]	= { MNL_TYPE_U32 },
	[BATON_A_STATE_MIN]	= { MNL_TYPE_U32 },
	[BATON_A_ERRNO]		= { MNL_TYPE_U32 },
	[BATON_A_TEXT]		= { MNL_TYPE_NUL_STRING },
	[BATON_A_FLAGS]		= { MNL_TYPE_U32 },
	[BATON_A_SOCK]		= { MNL_TYPE_NESTED },
	[BATON_A_BLOB_KIND]	= { MNL_TYPE_U32 },
	[BATON_A_LISTENERS]	= { MNL_TYPE_U32 },
	[BATON_A_CONNS]		= { MNL_TYPE_U32 },
	[BATON_A_RECORDS]	= { MNL_TYPE_U32 },
	[BATON_A_BYTES]		= { MNL_TYPE_U64 },
	[BATON_A_TIME_NS]	= { MNL_TYPE_U64 },
};

static const char *const msg_names[] = {
	[BATON_MSG_HELLO]	  = "HELLO",
	[BATON_MSG_WELCOME]	  = "WELCOME",
	[BATON_MSG_ERROR]	  = "ERROR",
	[BATON_MSG_UPGRADE]	  = "UPGRADE",
	[BATON_MSG_UPGRADE_ACK]	  = "UPGRADE_ACK",
	[BATON_MSG_SOCKETS]	  = "SOCKETS",
	[BATON_MSG_BLOB]	  = "BLOB",
	[BATON_MSG_PHASE1_DONE]	  = "PHASE1_DONE",
	[BATON_MSG_READY]	  = "READY",
	[BATON_MSG_DEACTIVATE]	  = "DEACTIVATE",
	[BATON_MSG_PHASE2_DONE]	  = "PHASE2_DONE",
	[BATON_MSG_DEACTIVATED]	  = "DEACTIVATED",
	[BATON_MSG_ACTIVATE]	  = "ACTIVATE",
	[BATON_MSG_ACTIVE]	  = "ACTIVE",
	[BATON_MSG_RESUME]	  = "RESUME",
	[BATON_MSG_RESUMED]	  = "RESUMED",
	[BATON_MSG_PEER_LOST]	  = "PEER_LOST",
	[BATON_MSG_INFO]	  = "INFO",
	[BATON_MSG_SYNC]	  = "SYNC",
};

const char *msg_type_name(__u16 type)
{
	if (type < ARRAY_SIZE(msg_names) && msg_names[type])
		return msg_names[type];
	return "unknown message";
}

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

		do {
			err = poll(&p, 1, timeout_ms);
		} while (err < 0 && errno == EINTR);
		if (err < 0)
			return -errno;
		if (err == 0)
			return -ETIMEDOUT;
	}
	do {
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
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

/*
 * Stricter than libmnl's checks, which let a u32 be longer than four
 * bytes: a known attribute has exactly its type's length.
 */
int attr_check(const struct nlattr *attr, enum mnl_attr_data_type type)
{
	size_t len = mnl_attr_get_payload_len(attr);

	switch (type) {
	case MNL_TYPE_U32:
		return len == sizeof(__u32) ? 0 : -EINVAL;
	case MNL_TYPE_U64:
		return len == sizeof(__u64) ? 0 : -EINVAL;
	default:
		return mnl_attr_validate(attr, type) < 0 ? -EINVAL : 0;
	}
}

struct parse_ctx {
	const struct nlattr **tb;
	int err;
};

static int baton_attr_cb(const struct nlattr *attr, void *data)
{
	struct parse_ctx *ctx = data;
	__u16 type = mnl_attr_get_type(attr);
	const struct attr_policy *p;

	if (type > BATON_A_MAX || type == BATON_A_UNSPEC)
		return MNL_CB_OK;	/* newer than us: skipped */
	p = &baton_policy[type];
	if (attr_check(attr, p->type)) {
		ctx->err = -EINVAL;
		return MNL_CB_ERROR;
	}
	if (type != BATON_A_SOCK)	/* repeated; see sockets.c */
		ctx->tb[type] = attr;
	return MNL_CB_OK;
}

/* Walks every attribute and fails unless they fill the payload exactly. */
int attrs_walk(const void *payload, size_t len, mnl_attr_cb_t cb,
		      void *data)
{
	const struct nlattr *a = payload;
	size_t left = len;

	while (left >= sizeof(*a)) {
		size_t alen = a->nla_len;

		if (alen < sizeof(*a) || alen > left)
			return -EINVAL;
		if (cb(a, data) < 0)
			return -EINVAL;
		alen = MNL_ALIGN(alen);
		if (alen >= left)
			return 0;
		left -= alen;
		a = (const struct nlattr *)((const char *)a + alen);
	}
	return left ? -EINVAL : 0;
}

int msg_parse(const struct baton_msg *m, const struct nlattr **tb)
{
	struct parse_ctx ctx = { .tb = tb };
	int err;

	memset(tb, 0, sizeof(*tb) * (BATON_A_MAX + 1));
	err = attrs_walk(mnl_nlmsg_get_payload(m->nlh),
			 mnl_nlmsg_get_payload_len(m->nlh),
			 baton_attr_cb, &ctx);
	return ctx.err ? ctx.err : err;
}

__u32 attr_u32(const struct nlattr **tb, int type, __u32 def)
{
	return tb[type] ? mnl_attr_get_u32(tb[type]) : def;
}

__u64 attr_u64(const struct nlattr **tb, int type, __u64 def)
{
	return tb[type] ? mnl_attr_get_u64(tb[type]) : def;
}

const char *attr_str(const struct nlattr **tb, int type, const char *def)
{
	return tb[type] ? mnl_attr_get_str(tb[type]) : def;
}

int msg_send_error(int sock, struct baton_msg *m, int err,
		   const char *fmt, ...)
{
	char text[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	msg_close_fds(m);
	msg_init(m, BATON_MSG_ERROR);
	if (msg_put_u32(m, BATON_A_ERRNO, err < 0 ? -err : err) ||
	    msg_put_str(m, BATON_A_TEXT, text))
		return -EMSGSIZE;
	return msg_send(sock, m);
}

/* For a received ERROR: its text, and the errno it carries as -errno. */
int msg_error_text(const struct nlattr **tb, char *buf, size_t len)
{
	__u32 e = attr_u32(tb, BATON_A_ERRNO, EPROTO);

	snprintf(buf, len, "%s", attr_str(tb, BATON_A_TEXT, strerror(e)));
	return e && e < 4096 ? -(int)e : -EPROTO;
}
