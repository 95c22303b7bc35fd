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
#include "tcp/xmit.h"


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

/*
 * The receive queue first: the send queue's read leaves it selected.
 *
 * An ACK that arrives once the send queue is selected marks every unsent
 * byte sent without transmitting it. The record would then hold them as
 * in flight, and the restored socket would send them only after a
 * retransmission timeout, segment by segment (seconds for a large queue
 * behind a small window). When the socket transmitted nothing at all
 * meanwhile, the unsent bytes before the selection are still exactly what
 * the peer has not seen, and the record keeps them unsent. When it did
 * transmit, the split cannot be told apart, and the record keeps what the
 * socket says: retransmission recovers it, slowly.
 */
static int queues_dump(struct baton_tcp *tcp, int fd, struct tcp_queues *q)
{
	__u64 sent_before, sent_after;
	struct queue_size snd, rcv;
	__u32 unsent_before, unsent_after;
	bool marks;
	int err;

	err = queue_dump(fd, TCP_RECV_QUEUE, &rcv, &q->recvq);
	if (err)
		return err;
	q->rcv_seq = rcv.seq;
	q->inq = rcv.len;
	/* without the counters (before 4.19), the socket's split stands */
	marks = !tcp_xmit_marks(fd, &sent_before, &unsent_before);
	err = queue_dump(fd, TCP_SEND_QUEUE, &snd, &q->sendq);
	if (err)
		return err;
	if (snd.unsent > snd.len)
		return -EIO;
	if (marks && (__u32)snd.unsent < unsent_before &&
	    !tcp_xmit_marks(fd, &sent_after, &unsent_after)) {
		if (sent_after == sent_before && unsent_before <= (__u32)snd.len) {
			pr_debug(&tcp->log,
				 "checkpoint: an ACK marked %u bytes sent while the send queue was read; none was transmitted: kept unsent",
				 unsent_before - snd.unsent);
			snd.unsent = unsent_before;
		}
	}
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

/*
 * The record of c (tcp.h): the attributes alone, without a message header,
 * in one allocation the caller frees.
 */
int tcp_rec_build(const struct tcp_ckpt *c, void **rec, size_t *len)
{
	struct nlmsghdr *nlh;
	struct nlattr *nest;
	size_t size;
	char *buf;

	if ((c->family != AF_INET && c->family != AF_INET6) ||
	    c->klen > KERNEL_REC_MAX)
		return -EINVAL;
	size = MNL_NLMSG_HDRLEN + 16 * MNL_ATTR_HDRLEN + 2 * sizeof(c->local) +
	       sizeof(c->win) + 16 * sizeof(__u32) + MNL_ALIGN(c->klen) +
	       bytes_size(c->sent) + bytes_size(c->unsent) + bytes_size(c->inq);
	buf = calloc(1, size);
	if (!buf)
		return -ENOMEM;
	nlh = mnl_nlmsg_put_header(buf);
	mnl_attr_put_u32(nlh, BATON_TCP_A_FAMILY, c->family);
	mnl_attr_put(nlh, BATON_TCP_A_LOCAL, sockaddr_size(c->family), &c->local);
	mnl_attr_put(nlh, BATON_TCP_A_PEER, sockaddr_size(c->family), &c->peer);
	mnl_attr_put_u32(nlh, BATON_TCP_A_SND_SEQ, c->snd_seq);
	mnl_attr_put_u32(nlh, BATON_TCP_A_RCV_SEQ, c->rcv_seq);
	mnl_attr_put_u32(nlh, BATON_TCP_A_MSS, c->mss);
	mnl_attr_put_u32(nlh, BATON_TCP_A_OPTIONS, c->options);
	mnl_attr_put_u32(nlh, BATON_TCP_A_SND_WSCALE, c->snd_wscale);
	mnl_attr_put_u32(nlh, BATON_TCP_A_RCV_WSCALE, c->rcv_wscale);
	if (c->options & TCPI_OPT_TIMESTAMPS)
		mnl_attr_put_u32(nlh, BATON_TCP_A_TIMESTAMP, c->timestamp);
	mnl_attr_put(nlh, BATON_TCP_A_WINDOW, sizeof(c->win), &c->win);
	if (c->peer_fin)
		mnl_attr_put_u32(nlh, BATON_TCP_A_PEER_FIN, 1);
	bytes_put(nlh, BATON_TCP_A_SENDQ, c->sendq, c->sent);
	bytes_put(nlh, BATON_TCP_A_UNSENT, c->unsent ? c->sendq + c->sent : NULL,
		  c->unsent);
	bytes_put(nlh, BATON_TCP_A_RECVQ, c->recvq, c->inq);
	nest = mnl_attr_nest_start(nlh, BATON_TCP_A_KERNEL);
	if (c->klen)
		memcpy(mnl_nlmsg_get_payload_tail(nlh), c->kernel, c->klen);
	nlh->nlmsg_len += MNL_ALIGN(c->klen);
	mnl_attr_nest_end(nlh, nest);

	*len = mnl_nlmsg_get_payload_len(nlh);
	memmove(buf, mnl_nlmsg_get_payload(nlh), *len);
	*rec = buf;
	return 0;
}

/* What the socket says of itself, and baton.ko of its state, as a record */
static int record_build(struct baton_tcp *tcp, int fd,
			const struct tcp_info *ti,
			const struct sockaddr_storage *local,
			const struct sockaddr_storage *peer,
			const struct tcp_queues *q, void **rec, size_t *len)
{
	char kernel[KERNEL_REC_MAX] __attribute__((aligned(8)));
	struct tcp_ckpt c = {
		.family = local->ss_family,
		.snd_seq = q->snd_seq, .rcv_seq = q->rcv_seq,
		.options = ti->tcpi_options,
		.snd_wscale = ti->tcpi_snd_wscale,
		.rcv_wscale = ti->tcpi_rcv_wscale,
		.sendq = q->sendq, .sent = q->sent, .unsent = q->unsent,
		.recvq = q->recvq, .inq = q->inq,
		.peer_fin = ti->tcpi_state == TCP_CLOSE_WAIT,
		.kernel = kernel,
	};
	socklen_t sl;
	int klen;

	memcpy(&c.local, local, sizeof(c.local));
	memcpy(&c.peer, peer, sizeof(c.peer));
	sl = sizeof(c.mss);
	if (getsockopt(fd, SOL_TCP, TCP_MAXSEG, &c.mss, &sl))
		return -errno;
	sl = sizeof(c.timestamp);
	if ((ti->tcpi_options & TCPI_OPT_TIMESTAMPS) &&
	    getsockopt(fd, SOL_TCP, TCP_TIMESTAMP, &c.timestamp, &sl))
		return -errno;
	sl = sizeof(c.win);
	if (getsockopt(fd, SOL_TCP, TCP_REPAIR_WINDOW, &c.win, &sl))
		return -errno;
	if (tcp_has_module(tcp)) {
		klen = baton_tcp_export(tcp, fd, kernel, sizeof(kernel));
		if (klen < 0)
			return klen;
		c.klen = klen;
	}
	return tcp_rec_build(&c, rec, len);
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
	/* CLOSE_WAIT: its peer closed its side, the FIN counted in rcv_seq */
	if (ti.tcpi_state != TCP_ESTABLISHED && ti.tcpi_state != TCP_CLOSE_WAIT) {
		pr_err(&tcp->log, "checkpoint: connection is neither established nor closed by its peer alone (state %u)",
		       ti.tcpi_state);
		err = -EOPNOTSUPP;
		goto repair_off;
	}
	err = queues_dump(tcp, fd, &q);
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
