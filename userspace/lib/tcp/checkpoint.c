// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Checkpoint of one established TCP connection: TCP_REPAIR for the
 * sequence space, options, window and queues, baton.ko for the congestion
 * and RTT state. The record is an attribute stream (enum baton_tcp_attr),
 * so a reader skips what it does not know; restore.c reads it back.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <linux/sockios.h>

#include "tcp/tcp.h"

#define KERNEL_REC_MAX	512

struct tcp_queues {
	__u32 snd_seq, rcv_seq;
	char *sendq, *recvq;	/* one allocation each */
	int sent, unsent, inq;	/* lengths */
};

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
