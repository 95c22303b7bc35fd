// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The bulk state of baton.ko: the complete repair state of many sockets
 * in one dump, and the sockets rebuilt from it in the kernel, a request
 * for as many connections as fit in one.
 *
 * The record is the kernel's own: the BATON_GENL_A_CONN attributes of the
 * dump, one or more per connection (enum baton_conn_attr), concatenated.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <linux/genetlink.h>

#include <linux/baton.h>
#include "internal.h"
#include "tcp/ko.h"

/* reads of a connection that keeps moving, before giving up */
#define EXPORT_TRIES	3
/* the largest request tried; the socket's send buffer may allow less */
#define IMPORT_REQ_MAX	(4 << 20)
/*
 * CONN_IMPORT's reply: { CONN { INDEX, FD or ERROR } } a connection, in
 * one message that must fit what ko_call() reads at once
 */
#define IMPORT_REPLY_CONN	(3 * MNL_ATTR_HDRLEN + 2 * sizeof(__u32))
#define IMPORT_CONNS_MAX	((KO_RECV_BUF - 1024) / IMPORT_REPLY_CONN)

struct conns_buf {
	struct baton_tcp *tcp;
	char *buf;
	size_t len, cap;
	int err;
};

/* Each message of the dump: its CONN attribute, appended whole */
static int export_cb(const struct nlmsghdr *nlh, void *data)
{
	struct conns_buf *b = data;
	const struct nlattr *attr;

	mnl_attr_for_each(attr, nlh, sizeof(struct genlmsghdr)) {
		size_t size = MNL_ALIGN(attr->nla_len);

		if (mnl_attr_get_type(attr) != BATON_GENL_A_CONN)
			continue;
		if (mnl_attr_validate(attr, MNL_TYPE_NESTED) < 0) {
			pr_err(&b->tcp->log, "baton.ko sent a malformed connection");
			b->err = -EPROTO;
			return MNL_CB_ERROR;
		}
		if (b->len + size > b->cap) {
			size_t cap = (b->cap ?: 65536) * 2;
			char *p;

			while (cap < b->len + size)
				cap *= 2;
			p = realloc(b->buf, cap);
			if (!p) {
				b->err = -ENOMEM;
				return MNL_CB_ERROR;
			}
			b->buf = p;
			b->cap = cap;
		}
		memcpy(b->buf + b->len, attr, attr->nla_len);
		memset(b->buf + b->len + attr->nla_len, 0,
		       size - attr->nla_len);
		b->len += size;
	}
	return MNL_CB_OK;
}

int baton_tcp_export_conns(struct baton_tcp *tcp, const int *fds, size_t n,
			   void **rec, size_t *len)
{
	struct conns_buf b = { .tcp = tcp };
	struct nlmsghdr *nlh;
	size_t i;
	void *req;
	int err;

	if (!n)
		return -EINVAL;
	req = calloc(1, MNL_NLMSG_HDRLEN + 64 + n * MNL_ATTR_HDRLEN * 2);
	if (!req)
		return -ENOMEM;
	nlh = ko_msg(req, tcp, BATON_GENL_CMD_CONN_EXPORT);
	nlh->nlmsg_flags |= NLM_F_DUMP;
	for (i = 0; i < n; i++)
		mnl_attr_put_u32(nlh, BATON_GENL_A_FD, fds[i]);
	/* a connection that moved while it was read: once more, frozen or not */
	for (int tries = 0; tries < EXPORT_TRIES; tries++) {
		b.len = 0;
		b.err = 0;
		err = ko_call(tcp, nlh, export_cb, &b, NULL);
		err = err ?: b.err;
		if (err != -EAGAIN)
			break;
	}
	free(req);
	if (err) {
		/* those already read are in repair mode: back as they were */
		for (i = 0; i < n; i++) {
			int off = TCP_REPAIR_OFF_NO_WP;

			setsockopt(fds[i], SOL_TCP, TCP_REPAIR, &off,
				   sizeof(off));
		}
		free(b.buf);
		return err;
	}
	*rec = b.buf;
	*len = b.len;
	return 0;
}

/* The INDEX of a CONN attribute, or -1 */
static long long conn_index(const struct nlattr *conn)
{
	const struct nlattr *attr;

	mnl_attr_for_each_nested(attr, conn) {
		if (mnl_attr_get_type(attr) == BATON_CONN_A_INDEX &&
		    mnl_attr_get_payload_len(attr) == sizeof(__u32))
			return mnl_attr_get_u32(attr);
	}
	return -1;
}

/* The CONN attributes of one connection: from *off, adjacent, one INDEX */
static size_t conn_span(const char *rec, size_t len, size_t off)
{
	const struct nlattr *first = (const void *)(rec + off);
	long long index = conn_index(first);
	size_t end = off;

	while (end < len) {
		const struct nlattr *a = (const void *)(rec + end);

		if (end > off && conn_index(a) != index)
			break;
		end += MNL_ALIGN(a->nla_len);
	}
	return end - off;
}

struct import_reply {
	struct baton_tcp *tcp;
	int *fds;
	size_t n, got;
	int err;
};

static int import_attr_cb(const struct nlattr *attr, void *data)
{
	struct import_reply *r = data;
	const struct nlattr *a;
	int fd = -EPROTO;

	if (mnl_attr_get_type(attr) != BATON_GENL_A_CONN)
		return MNL_CB_OK;
	mnl_attr_for_each_nested(a, attr) {
		if (mnl_attr_get_payload_len(a) != sizeof(__u32))
			continue;
		if (mnl_attr_get_type(a) == BATON_CONN_A_FD)
			fd = mnl_attr_get_u32(a);
		else if (mnl_attr_get_type(a) == BATON_CONN_A_ERROR)
			fd = -(int)mnl_attr_get_u32(a);
	}
	if (r->got == r->n) {
		pr_err(&r->tcp->log, "baton.ko made more sockets than asked");
		if (fd >= 0)
			close(fd);
		r->err = -EPROTO;
		return MNL_CB_ERROR;
	}
	if (fd < 0)
		pr_err(&r->tcp->log,
		       "TCP restore: connection %zu was reset after leaving repair mode: %s",
		       r->got, strerror(-fd));
	r->fds[r->got++] = fd;
	return MNL_CB_OK;
}

static int import_cb(const struct nlmsghdr *nlh, void *data)
{
	return mnl_attr_parse(nlh, sizeof(struct genlmsghdr), import_attr_cb,
			      data);
}

/* The largest request the channel's socket takes */
static size_t request_max(struct baton_tcp *tcp)
{
	int fd = mnl_socket_get_fd(tcp->nl), want = IMPORT_REQ_MAX, have;
	socklen_t sl = sizeof(have);

	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &want, sizeof(want)))
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &want, sizeof(want));
	if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &have, &sl) || have < 4096)
		return 4096;
	/* what netlink_sendmsg() allows, less what we are not sure of */
	return (size_t)have - 1024;
}

/*
 * One request: the connections of rec[off, off + len), renumbered from 0,
 * their sockets' descriptors into fds.
 */
static int import_request(struct baton_tcp *tcp, const char *rec, size_t len,
			  int *fds, size_t n, __u32 flags)
{
	struct import_reply r = { .tcp = tcp, .fds = fds, .n = n };
	struct nlmsghdr *nlh;
	size_t off, k = 0;
	char *req;
	int err;

	req = malloc(MNL_NLMSG_HDRLEN + 64 + len);
	if (!req)
		return -ENOMEM;
	nlh = ko_msg(req, tcp, BATON_GENL_CMD_CONN_IMPORT);
	if (flags)
		mnl_attr_put_u32(nlh, BATON_GENL_A_FLAGS, flags);
	for (off = 0; off < len;) {
		size_t span = conn_span(rec, len, off), end = off + span;

		while (off < end) {
			const struct nlattr *a = (const void *)(rec + off);
			struct nlattr *copy = mnl_nlmsg_get_payload_tail(nlh);
			struct nlattr *attr;

			memcpy(copy, a, MNL_ALIGN(a->nla_len));
			nlh->nlmsg_len += MNL_ALIGN(a->nla_len);
			mnl_attr_for_each_nested(attr, copy) {
				if (mnl_attr_get_type(attr) == BATON_CONN_A_INDEX)
					*(__u32 *)mnl_attr_get_payload(attr) = k;
			}
			off += MNL_ALIGN(a->nla_len);
		}
		k++;
	}
	err = ko_call(tcp, nlh, import_cb, &r, NULL);
	free(req);
	if (!err && !r.err && r.got != n) {
		pr_err(&tcp->log, "baton.ko made %zu sockets of %zu", r.got, n);
		err = -EPROTO;
	}
	return err ?: r.err;
}

/* Checks the record's shape and counts its connections */
static long long conns_count(struct baton_tcp *tcp, const char *rec,
			     size_t len)
{
	long long n = 0;
	size_t off = 0;

	while (off < len) {
		const struct nlattr *a = (const void *)(rec + off);

		if (len - off < MNL_ATTR_HDRLEN || a->nla_len < MNL_ATTR_HDRLEN ||
		    a->nla_len > len - off ||
		    mnl_attr_get_type(a) != BATON_GENL_A_CONN ||
		    conn_index(a) < 0) {
			pr_err(&tcp->log,
			       "TCP connections record is truncated or malformed at byte %zu",
			       off);
			return -EINVAL;
		}
		off += conn_span(rec, len, off);
		n++;
	}
	return n;
}

size_t tcp_conn_span(const void *rec, size_t len, size_t off)
{
	return conn_span(rec, len, off);
}

int baton_tcp_import_conns(struct baton_tcp *tcp, const void *rec,
			   size_t len, int *fds, size_t n)
{
	return baton_tcp_import_conns_flags(tcp, rec, len, fds, n, 0);
}

int baton_tcp_import_conns_flags(struct baton_tcp *tcp, const void *rec,
				 size_t len, int *fds, size_t n, __u32 flags)
{
	const char *p = rec;
	size_t max = request_max(tcp), off = 0, k = 0, i;
	long long count = conns_count(tcp, rec, len);
	int err = 0;

	if (count < 0)
		return count;
	if ((size_t)count != n) {
		pr_err(&tcp->log, "TCP connections record holds %lld connections, not %zu",
		       count, n);
		return -EINVAL;
	}
	while (off < len) {
		size_t start = off, conns = 0;

		/* whole connections, as many as the request takes */
		while (off < len) {
			size_t span = conn_span(p, len, off);

			if (conns && (off + span - start + 64 > max ||
				      conns == IMPORT_CONNS_MAX))
				break;
			off += span;
			conns++;
		}
		if (off - start + 64 > max) {
			pr_err(&tcp->log,
			       "TCP restore: connection %zu takes %zu bytes, more than one request may (%zu)",
			       k, off - start, max);
			err = -EMSGSIZE;
		} else {
			err = import_request(tcp, p + start, off - start,
					     fds + k, conns, flags);
		}
		if (err) {
			for (i = k; i < n; i++)
				fds[i] = err;
			return err;
		}
		k += conns;
	}
	for (i = 0; i < n; i++)
		if (fds[i] < 0)
			return fds[i];
	return 0;
}
