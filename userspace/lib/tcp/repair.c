// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Checkpoint and restore of one established TCP connection: TCP_REPAIR
 * for the sequence space, options, window and queues, baton.ko for the
 * congestion and RTT state. The record is an attribute stream
 * (enum baton_tcp_attr), so a reader skips what it does not know.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <linux/sockios.h>

#include <linux/baton.h>
#include "tcp/tcp.h"

/* recv queue data is written back in pieces the kernel can charge */
#define RCVQ_CHUNK	(64 * 1024)
#define KERNEL_REC_MAX	512

struct tcp_queues {
	__u32 snd_seq, rcv_seq;
	char *sendq, *recvq;	/* one allocation each */
	int sent, unsent, inq;	/* lengths */
};

static int sockopt_u32(int fd, int opt, int val)
{
	return setsockopt(fd, SOL_TCP, opt, &val, sizeof(val)) ? -errno : 0;
}

/*
 * A queue's next sequence number, its length and, for the send queue,
 * how much of it is unsent: one moment.
 */
struct queue_size {
	__u32 seq;
	int len, unsent;
};

static int queue_size(int fd, int queue, struct queue_size *qs)
{
	socklen_t sl = sizeof(qs->seq);

	if (getsockopt(fd, SOL_TCP, TCP_QUEUE_SEQ, &qs->seq, &sl) ||
	    ioctl(fd, queue == TCP_SEND_QUEUE ? SIOCOUTQ : SIOCINQ, &qs->len))
		return -errno;
	qs->unsent = 0;
	if (queue == TCP_SEND_QUEUE && ioctl(fd, SIOCOUTQNSD, &qs->unsent))
		return -errno;
	return 0;
}

/*
 * A queue's size and bytes. Repair mode does not freeze a connection: a
 * segment may still arrive while we read, and an ACK may release data.
 * So the read is taken again until the queue held still around it.
 *
 * The send queue stays selected from its read until the caller's close():
 * while it is selected, data an ACK releases is marked sent without going
 * out, so the old socket never transmits bytes the record holds as unsent.
 * With no queue selected it would, and the restored socket would then be
 * behind what the peer has received.
 */
static int queue_dump(int fd, int queue, struct queue_size *qs, char **data)
{
	struct queue_size after;
	int tries, err;
	ssize_t n;

	err = sockopt_u32(fd, TCP_REPAIR_QUEUE, queue);
	if (err)
		return err;
	for (tries = 0; tries < 100; tries++) {
		err = queue_size(fd, queue, qs);
		if (err)
			return err;
		free(*data);
		*data = malloc(qs->len ? qs->len : 1);
		if (!*data)
			return -ENOMEM;
		n = qs->len ? recv(fd, *data, qs->len, MSG_PEEK | MSG_DONTWAIT) : 0;
		if (n < 0)
			return -errno;
		err = queue_size(fd, queue, &after);
		if (err)
			return err;
		if (n == qs->len && after.seq == qs->seq &&
		    after.len == qs->len && after.unsent == qs->unsent) {
			qs->seq -= qs->len;	/* the first byte still queued */
			return queue == TCP_SEND_QUEUE ? 0 :
			       sockopt_u32(fd, TCP_REPAIR_QUEUE, TCP_NO_QUEUE);
		}
	}
	return -EAGAIN;
}

/* The receive queue first: the send queue's read leaves it selected. */
static int queues_dump(int fd, struct tcp_queues *q)
{
	struct queue_size snd, rcv;
	int err;

	err = queue_dump(fd, TCP_RECV_QUEUE, &rcv, &q->recvq);
	if (err)
		return err;
	q->rcv_seq = rcv.seq;
	q->inq = rcv.len;
	err = queue_dump(fd, TCP_SEND_QUEUE, &snd, &q->sendq);
	if (err)
		return err;
	if (snd.unsent > snd.len)
		return -EIO;
	q->snd_seq = snd.seq;
	q->unsent = snd.unsent;
	q->sent = snd.len - snd.unsent;
	return 0;
}

static int sockaddr_size(int family)
{
	return family == AF_INET ? sizeof(struct sockaddr_in) :
				   sizeof(struct sockaddr_in6);
}

/* what bytes_put() takes for len bytes */
static size_t bytes_size(size_t len)
{
	return (len / ATTR_CHUNK + 1) * MNL_ATTR_HDRLEN + MNL_ALIGN(len);
}

/* a queue as attributes of ATTR_CHUNK bytes at most, in order */
static void bytes_put(struct nlmsghdr *nlh, __u16 type, const char *p,
		      size_t len)
{
	while (len) {
		size_t n = len < ATTR_CHUNK ? len : ATTR_CHUNK;

		mnl_attr_put(nlh, type, n, p);
		p += n;
		len -= n;
	}
}

static int record_build(struct baton_tcp *tcp, int fd,
			const struct tcp_info *ti,
			const struct sockaddr_storage *local,
			const struct sockaddr_storage *peer,
			const struct tcp_queues *q, void **rec, size_t *len)
{
	char kernel[KERNEL_REC_MAX] __attribute__((aligned(8)));
	int family = local->ss_family;
	struct tcp_repair_window win;
	__u32 mss, ts = 0;
	struct nlmsghdr *nlh;
	struct nlattr *nest;
	socklen_t sl;
	int klen;
	size_t size;
	char *buf;

	sl = sizeof(mss);
	if (getsockopt(fd, SOL_TCP, TCP_MAXSEG, &mss, &sl))
		return -errno;
	sl = sizeof(ts);
	if ((ti->tcpi_options & TCPI_OPT_TIMESTAMPS) &&
	    getsockopt(fd, SOL_TCP, TCP_TIMESTAMP, &ts, &sl))
		return -errno;
	sl = sizeof(win);
	if (getsockopt(fd, SOL_TCP, TCP_REPAIR_WINDOW, &win, &sl))
		return -errno;
	klen = baton_tcp_export(tcp, fd, kernel, sizeof(kernel));
	if (klen < 0)
		return klen;

	size = MNL_NLMSG_HDRLEN + 16 * MNL_ATTR_HDRLEN + 2 * sizeof(*local) +
	       sizeof(win) + 16 * sizeof(__u32) + klen +
	       bytes_size(q->sent) + bytes_size(q->unsent) + bytes_size(q->inq);
	buf = calloc(1, size);
	if (!buf)
		return -ENOMEM;
	nlh = mnl_nlmsg_put_header(buf);
	mnl_attr_put_u32(nlh, BATON_TCP_A_FAMILY, family);
	mnl_attr_put(nlh, BATON_TCP_A_LOCAL, sockaddr_size(family), local);
	mnl_attr_put(nlh, BATON_TCP_A_PEER, sockaddr_size(family), peer);
	mnl_attr_put_u32(nlh, BATON_TCP_A_SND_SEQ, q->snd_seq);
	mnl_attr_put_u32(nlh, BATON_TCP_A_RCV_SEQ, q->rcv_seq);
	mnl_attr_put_u32(nlh, BATON_TCP_A_MSS, mss);
	mnl_attr_put_u32(nlh, BATON_TCP_A_OPTIONS, ti->tcpi_options);
	mnl_attr_put_u32(nlh, BATON_TCP_A_SND_WSCALE, ti->tcpi_snd_wscale);
	mnl_attr_put_u32(nlh, BATON_TCP_A_RCV_WSCALE, ti->tcpi_rcv_wscale);
	if (ti->tcpi_options & TCPI_OPT_TIMESTAMPS)
		mnl_attr_put_u32(nlh, BATON_TCP_A_TIMESTAMP, ts);
	mnl_attr_put(nlh, BATON_TCP_A_WINDOW, sizeof(win), &win);
	bytes_put(nlh, BATON_TCP_A_SENDQ, q->sendq, q->sent);
	bytes_put(nlh, BATON_TCP_A_UNSENT, q->sendq + q->sent, q->unsent);
	bytes_put(nlh, BATON_TCP_A_RECVQ, q->recvq, q->inq);
	nest = mnl_attr_nest_start(nlh, BATON_TCP_A_KERNEL);
	memcpy(mnl_nlmsg_get_payload_tail(nlh), kernel, klen);
	nlh->nlmsg_len += MNL_ALIGN(klen);
	mnl_attr_nest_end(nlh, nest);

	/* the record is the attributes alone, without a message header */
	*len = mnl_nlmsg_get_payload_len(nlh);
	memmove(buf, mnl_nlmsg_get_payload(nlh), *len);
	*rec = buf;
	return 0;
}

int baton_tcp_checkpoint(struct baton_tcp *tcp, int fd, void **rec,
			 size_t *len)
{
	struct sockaddr_storage local, peer;
	socklen_t ll = sizeof(local), pl = sizeof(peer);
	struct tcp_queues q = {};
	struct tcp_info ti;
	socklen_t sl = sizeof(ti);
	int err;

	if (getsockname(fd, (struct sockaddr *)&local, &ll) ||
	    getpeername(fd, (struct sockaddr *)&peer, &pl)) {
		err = -errno;
		pr_err(&tcp->log, "checkpoint: fd %d is not a connected socket",
		       fd);
		return err;
	}
	if (local.ss_family != AF_INET && local.ss_family != AF_INET6)
		return -EAFNOSUPPORT;
	err = sockopt_u32(fd, TCP_REPAIR, TCP_REPAIR_ON);
	if (err) {
		pr_err(&tcp->log, "checkpoint: TCP_REPAIR: %s (needs CAP_NET_ADMIN)",
		       strerror(-err));
		return err;
	}
	/* the state, options and window scales, read once for the record */
	if (getsockopt(fd, SOL_TCP, TCP_INFO, &ti, &sl)) {
		err = -errno;
		goto repair_off;
	}
	if (ti.tcpi_state != TCP_ESTABLISHED) {
		pr_err(&tcp->log, "checkpoint: connection is not established (state %u)",
		       ti.tcpi_state);
		err = -EOPNOTSUPP;
		goto repair_off;
	}
	err = queues_dump(fd, &q);
	if (err) {
		pr_err(&tcp->log, "checkpoint: reading the queues: %s",
		       strerror(-err));
		goto free_queues;
	}
	err = record_build(tcp, fd, &ti, &local, &peer, &q, rec, len);
free_queues:
	free(q.sendq);
	free(q.recvq);
	if (!err)
		return 0;	/* left in repair mode: the caller closes it */
repair_off:
	/* nothing was sent while frozen: no window probe either */
	sockopt_u32(fd, TCP_REPAIR_QUEUE, TCP_NO_QUEUE);
	sockopt_u32(fd, TCP_REPAIR, TCP_REPAIR_OFF_NO_WP);
	return err;
}

static const enum mnl_attr_data_type tcp_attr_types[BATON_TCP_A_MAX + 1] = {
	[BATON_TCP_A_FAMILY]	 = MNL_TYPE_U32,
	[BATON_TCP_A_LOCAL]	 = MNL_TYPE_BINARY,
	[BATON_TCP_A_PEER]	 = MNL_TYPE_BINARY,
	[BATON_TCP_A_SND_SEQ]	 = MNL_TYPE_U32,
	[BATON_TCP_A_RCV_SEQ]	 = MNL_TYPE_U32,
	[BATON_TCP_A_MSS]	 = MNL_TYPE_U32,
	[BATON_TCP_A_OPTIONS]	 = MNL_TYPE_U32,
	[BATON_TCP_A_SND_WSCALE] = MNL_TYPE_U32,
	[BATON_TCP_A_RCV_WSCALE] = MNL_TYPE_U32,
	[BATON_TCP_A_TIMESTAMP]	 = MNL_TYPE_U32,
	[BATON_TCP_A_WINDOW]	 = MNL_TYPE_BINARY,
	[BATON_TCP_A_SENDQ]	 = MNL_TYPE_BINARY,
	[BATON_TCP_A_UNSENT]	 = MNL_TYPE_BINARY,
	[BATON_TCP_A_RECVQ]	 = MNL_TYPE_BINARY,
	[BATON_TCP_A_KERNEL]	 = MNL_TYPE_NESTED,
};

static const char *const tcp_attr_names[BATON_TCP_A_MAX + 1] = {
	[BATON_TCP_A_FAMILY] = "family",   [BATON_TCP_A_LOCAL] = "local address",
	[BATON_TCP_A_PEER] = "peer address", [BATON_TCP_A_SND_SEQ] = "send sequence",
	[BATON_TCP_A_RCV_SEQ] = "receive sequence", [BATON_TCP_A_MSS] = "MSS",
	[BATON_TCP_A_OPTIONS] = "options", [BATON_TCP_A_WINDOW] = "window",
};

struct tcp_rec {
	struct baton_tcp *tcp;
	const void *rec;
	size_t len;
	const struct nlattr *tb[BATON_TCP_A_MAX + 1];
	__u32 bytes[BATON_TCP_A_MAX + 1];	/* queues: summed over chunks */
	int err;
};

static int tcp_attr_cb(const struct nlattr *attr, void *data)
{
	struct tcp_rec *r = data;
	__u16 type = mnl_attr_get_type(attr);

	if (type == BATON_TCP_A_UNSPEC || type > BATON_TCP_A_MAX)
		return MNL_CB_OK;	/* newer than us: skipped */
	if (attr_check(attr, tcp_attr_types[type])) {
		pr_err(&r->tcp->log, "TCP checkpoint: attribute %u is malformed",
		       type);
		r->err = -EINVAL;
		return MNL_CB_ERROR;
	}
	r->tb[type] = attr;
	if (tcp_attr_types[type] == MNL_TYPE_BINARY)
		r->bytes[type] += mnl_attr_get_payload_len(attr);
	return MNL_CB_OK;
}

static int tcp_rec_parse(struct tcp_rec *r, const void *rec, size_t len)
{
	static const __u16 required[] = {
		BATON_TCP_A_FAMILY, BATON_TCP_A_LOCAL, BATON_TCP_A_PEER,
		BATON_TCP_A_SND_SEQ, BATON_TCP_A_RCV_SEQ, BATON_TCP_A_MSS,
		BATON_TCP_A_OPTIONS, BATON_TCP_A_WINDOW,
	};
	const struct sockaddr *local, *peer;
	unsigned int i;
	int family, err;

	r->rec = rec;
	r->len = len;
	err = attrs_walk(rec, len, tcp_attr_cb, r);
	if (r->err)
		return r->err;
	if (err) {
		pr_err(&r->tcp->log, "TCP checkpoint is truncated or malformed");
		return err;
	}
	for (i = 0; i < ARRAY_SIZE(required); i++) {
		if (!r->tb[required[i]]) {
			pr_err(&r->tcp->log, "TCP checkpoint has no %s",
			       tcp_attr_names[required[i]]);
			return -EINVAL;
		}
	}
	family = mnl_attr_get_u32(r->tb[BATON_TCP_A_FAMILY]);
	if (family != AF_INET && family != AF_INET6) {
		pr_err(&r->tcp->log, "TCP checkpoint: unknown family %d", family);
		return -EAFNOSUPPORT;
	}
	local = mnl_attr_get_payload(r->tb[BATON_TCP_A_LOCAL]);
	peer = mnl_attr_get_payload(r->tb[BATON_TCP_A_PEER]);
	if (mnl_attr_get_payload_len(r->tb[BATON_TCP_A_LOCAL]) != sockaddr_size(family) ||
	    mnl_attr_get_payload_len(r->tb[BATON_TCP_A_PEER]) != sockaddr_size(family) ||
	    local->sa_family != family || peer->sa_family != family) {
		pr_err(&r->tcp->log, "TCP checkpoint: addresses do not match the family");
		return -EINVAL;
	}
	if (mnl_attr_get_payload_len(r->tb[BATON_TCP_A_WINDOW]) !=
	    sizeof(struct tcp_repair_window)) {
		pr_err(&r->tcp->log, "TCP checkpoint: window has %u bytes, not %zu",
		       mnl_attr_get_payload_len(r->tb[BATON_TCP_A_WINDOW]),
		       sizeof(struct tcp_repair_window));
		return -EINVAL;
	}
	return 0;
}

static __u32 rec_u32(const struct tcp_rec *r, int type)
{
	return mnl_attr_get_u32(r->tb[type]);
}

/* writes every chunk of one queue, in order */
static int send_all(int fd, const struct tcp_rec *r, __u16 type)
{
	const struct nlattr *attr;
	const char *p;
	size_t left;
	ssize_t n;

	mnl_attr_for_each_payload(r->rec, r->len) {
		if (mnl_attr_get_type(attr) != type)
			continue;
		p = mnl_attr_get_payload(attr);
		left = mnl_attr_get_payload_len(attr);
		while (left) {
			n = send(fd, p, left < RCVQ_CHUNK ? left : RCVQ_CHUNK,
				 MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n < 0)
				return errno == EAGAIN ? -ENOBUFS : -errno;
			p += n;
			left -= n;
		}
	}
	return 0;
}

static int repair_options(int fd, const struct tcp_rec *r)
{
	__u32 opts = rec_u32(r, BATON_TCP_A_OPTIONS);
	struct tcp_repair_opt o[4];
	int n = 0;

	o[n].opt_code = TCPOPT_MAXSEG;
	o[n++].opt_val = rec_u32(r, BATON_TCP_A_MSS);
	if ((opts & TCPI_OPT_WSCALE) && r->tb[BATON_TCP_A_SND_WSCALE] &&
	    r->tb[BATON_TCP_A_RCV_WSCALE]) {
		o[n].opt_code = TCPOPT_WINDOW;
		o[n++].opt_val = rec_u32(r, BATON_TCP_A_SND_WSCALE) |
				 rec_u32(r, BATON_TCP_A_RCV_WSCALE) << 16;
	}
	if (opts & TCPI_OPT_SACK) {
		o[n].opt_code = TCPOPT_SACK_PERMITTED;
		o[n++].opt_val = 0;
	}
	if (opts & TCPI_OPT_TIMESTAMPS) {
		o[n].opt_code = TCPOPT_TIMESTAMP;
		o[n++].opt_val = 0;
	}
	if (setsockopt(fd, SOL_TCP, TCP_REPAIR_OPTIONS, o, n * sizeof(o[0])))
		return -errno;
	if (r->tb[BATON_TCP_A_TIMESTAMP] &&
	    sockopt_u32(fd, TCP_TIMESTAMP, rec_u32(r, BATON_TCP_A_TIMESTAMP)))
		return -errno;
	return 0;
}

static int repair_connect(int fd, const struct tcp_rec *r)
{
	int family = rec_u32(r, BATON_TCP_A_FAMILY);
	int err;

	err = sockopt_u32(fd, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE) ?:
	      sockopt_u32(fd, TCP_QUEUE_SEQ, rec_u32(r, BATON_TCP_A_RCV_SEQ)) ?:
	      sockopt_u32(fd, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE) ?:
	      sockopt_u32(fd, TCP_QUEUE_SEQ, rec_u32(r, BATON_TCP_A_SND_SEQ));
	if (err)
		return err;
	/* in repair mode the port is shared by force, and nothing is sent */
	if (bind(fd, mnl_attr_get_payload(r->tb[BATON_TCP_A_LOCAL]),
		 sockaddr_size(family)) ||
	    connect(fd, mnl_attr_get_payload(r->tb[BATON_TCP_A_PEER]),
		    sockaddr_size(family)))
		return -errno;
	return 0;
}

/*
 * A new socket starts with the default buffers, which autotuning had
 * grown on the old one: a queue larger than that gets a buffer of its
 * size (fixed from then on, as SO_SNDBUF and SO_RCVBUF make it).
 */
static int buffer_fit(int fd, int opt, int force, __u32 need)
{
	socklen_t sl = sizeof(int);
	int have, want;

	if (!need)
		return 0;
	if (getsockopt(fd, SOL_SOCKET, opt, &have, &sl))
		return -errno;
	/* the kernel doubles what is set, for its own overhead */
	if (need <= (__u32)have / 2)
		return 0;
	want = need + RCVQ_CHUNK;
	return setsockopt(fd, SOL_SOCKET, force, &want, sizeof(want)) ?
	       -errno : 0;
}

static int repair_queues(int fd, const struct tcp_rec *r)
{
	const struct nlattr *win = r->tb[BATON_TCP_A_WINDOW];
	int err;

	err = buffer_fit(fd, SO_SNDBUF, SO_SNDBUFFORCE,
			 r->bytes[BATON_TCP_A_SENDQ] +
			 r->bytes[BATON_TCP_A_UNSENT]) ?:
	      buffer_fit(fd, SO_RCVBUF, SO_RCVBUFFORCE,
			 r->bytes[BATON_TCP_A_RECVQ]);
	if (err)
		return err;

	/* the send queue counts as sent: it is retransmitted if need be */
	err = sockopt_u32(fd, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE) ?:
	      send_all(fd, r, BATON_TCP_A_RECVQ) ?:
	      sockopt_u32(fd, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE) ?:
	      send_all(fd, r, BATON_TCP_A_SENDQ) ?:
	      sockopt_u32(fd, TCP_REPAIR_QUEUE, TCP_NO_QUEUE);
	if (err)
		return err;
	if (setsockopt(fd, SOL_TCP, TCP_REPAIR_WINDOW,
		       mnl_attr_get_payload(win), mnl_attr_get_payload_len(win)))
		return -errno;
	return 0;
}

int baton_tcp_restore(struct baton_tcp *tcp, const void *rec, size_t len)
{
	struct tcp_rec r = { .tcp = tcp };
	const char *step;
	int fd, err;

	err = tcp_rec_parse(&r, rec, len);
	if (err)
		return err;
	fd = socket(rec_u32(&r, BATON_TCP_A_FAMILY), SOCK_STREAM | SOCK_CLOEXEC,
		    IPPROTO_TCP);
	if (fd < 0)
		return -errno;

	step = "TCP_REPAIR (needs CAP_NET_ADMIN)";
	err = sockopt_u32(fd, TCP_REPAIR, TCP_REPAIR_ON);
	if (err)
		goto close_sock;
	step = "binding and connecting in repair mode";
	err = repair_connect(fd, &r);
	if (err)
		goto close_sock;
	step = "options";
	err = repair_options(fd, &r);
	if (err)
		goto close_sock;
	step = "queues and window";
	err = repair_queues(fd, &r);
	if (err)
		goto close_sock;
	if (r.tb[BATON_TCP_A_KERNEL]) {
		step = "congestion and RTT state (baton.ko)";
		err = baton_tcp_import(tcp, fd,
				       mnl_attr_get_payload(r.tb[BATON_TCP_A_KERNEL]),
				       mnl_attr_get_payload_len(r.tb[BATON_TCP_A_KERNEL]));
		if (err < 0)
			goto close_sock;
		if (err)
			pr_info(&tcp->log, "TCP checkpoint: %d newer attributes skipped",
				err);
	}
	/* leaving repair mode sends a window probe: the peer answers */
	step = "leaving repair mode";
	err = sockopt_u32(fd, TCP_REPAIR, TCP_REPAIR_OFF);
	if (err)
		goto close_sock;
	step = "writing the unsent data";
	err = send_all(fd, &r, BATON_TCP_A_UNSENT);
	if (err)
		goto close_sock;
	return fd;

close_sock:
	pr_err(&tcp->log, "TCP restore: %s: %s", step, strerror(-err));
	/* back in repair mode, the close says nothing to the peer */
	sockopt_u32(fd, TCP_REPAIR, TCP_REPAIR_ON);
	close(fd);
	return err;
}
