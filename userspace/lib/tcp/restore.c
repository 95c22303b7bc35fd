// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Restore of one TCP connection from its checkpoint (checkpoint.c): the
 * record is checked whole before a socket is made, then the socket is
 * bound, connected and filled in repair mode, and let go.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "tcp/tcp.h"

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
	[BATON_TCP_A_PEER_FIN]	 = MNL_TYPE_U32,
};

static const char *const tcp_attr_names[BATON_TCP_A_MAX + 1] = {
	[BATON_TCP_A_FAMILY] = "family",   [BATON_TCP_A_LOCAL] = "local address",
	[BATON_TCP_A_PEER] = "peer address", [BATON_TCP_A_SND_SEQ] = "send sequence",
	[BATON_TCP_A_RCV_SEQ] = "receive sequence", [BATON_TCP_A_MSS] = "MSS",
	[BATON_TCP_A_OPTIONS] = "options", [BATON_TCP_A_WINDOW] = "window",
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

/*
 * Checks a checkpoint record whole (tcp.h): every attribute, the ones a
 * restore needs, addresses of the record's family, a whole window.
 */
int tcp_rec_parse(struct tcp_rec *r, const void *rec, size_t len)
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

/*
 * Whether fd, which bind() refused (EINVAL), is bound to local already: a
 * socket bound by hand (restored here, or by baton.ko's import) keeps its
 * address and port through a disconnect (SOCK_BINDADDR_LOCK,
 * SOCK_BINDPORT_LOCK). Asked only then: one that kept its address but not
 * its port (accepted from a listener bound to an address) shows the old
 * port too, and must be bound again.
 */
static bool bound_to(int fd, const struct nlattr *local)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) ||
	    sl != mnl_attr_get_payload_len(local))
		return false;
	return !memcmp(&ss, mnl_attr_get_payload(local), sl);
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
		 sockaddr_size(family)) &&
	    (errno != EINVAL || !bound_to(fd, r->tb[BATON_TCP_A_LOCAL])))
		return -errno;
	if (connect(fd, mnl_attr_get_payload(r->tb[BATON_TCP_A_PEER]),
		    sockaddr_size(family)))
		return -errno;
	return 0;
}

/*
 * A new socket starts with the default buffers, which autotuning had
 * grown on the old one: a queue larger than that gets a buffer of its
 * size (fixed from then on, as SO_SNDBUF and SO_RCVBUF make it), in the
 * kernel's measure, which charges each skb's own size (truesize) too.
 */
static int buffer_fit(int fd, int opt, int force, __u64 charge)
{
	socklen_t sl = sizeof(int);
	int have, want;

	if (!charge)
		return 0;
	if (getsockopt(fd, SOL_SOCKET, opt, &have, &sl))
		return -errno;
	/* the kernel doubles what is set, for its own overhead */
	if (charge <= (__u64)have / 2)
		return 0;
	if (charge > INT_MAX / 2)
		return -ENOBUFS;
	want = charge;
	return setsockopt(fd, SOL_SOCKET, force, &want, sizeof(want)) ?
	       -errno : 0;
}

/*
 * What len bytes cost written in pieces of at most seg bytes: in repair
 * mode the send queue goes in skbs of one MSS where the device does no
 * segmentation offload (GSO), and the socket's MSS is then still
 * TCP_MSS_DEFAULT (its options come later), 536 bytes.
 */
#define REPAIR_SEG_MIN	536
/* an skb's truesize beyond its bytes, for the small ones of a send queue */
#define SKB_COST_MAX	2048

static __u64 queue_charge(__u64 len, __u32 seg)
{
	return len ? len + (len / seg + 1) * SKB_COST_MAX : 0;
}

static int repair_queues(int fd, const struct tcp_rec *r)
{
	const struct nlattr *win = r->tb[BATON_TCP_A_WINDOW];
	int err;

	err = buffer_fit(fd, SO_SNDBUF, SO_SNDBUFFORCE,
			 queue_charge((__u64)r->bytes[BATON_TCP_A_SENDQ] +
				      r->bytes[BATON_TCP_A_UNSENT],
				      REPAIR_SEG_MIN)) ?:
	      buffer_fit(fd, SO_RCVBUF, SO_RCVBUFFORCE,
			 queue_charge(r->bytes[BATON_TCP_A_RECVQ], RCVQ_CHUNK));
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

int tcp_disconnect(int fd)
{
	struct sockaddr sa = { .sa_family = AF_UNSPEC };

	/* in repair mode, tcp_disconnect() sends neither FIN nor RST */
	if (sockopt_u32(fd, TCP_REPAIR, TCP_REPAIR_ON))
		return -errno;
	return connect(fd, &sa, sizeof(sa)) ? -errno : 0;
}

/*
 * The bytes never sent, as new data, all of them: the namespace's
 * tcp_notsent_lowat (or a memory limit) would stop a write short, and
 * the application's next bytes would follow a hole. The socket's own
 * limit is lifted for the while, then put back: 0 (the namespace's) on
 * a new socket, the application's own on a rollback, which rebuilds the
 * connection in the socket it holds.
 */
static int send_unsent(int fd, const struct tcp_rec *r)
{
	socklen_t sl = sizeof(int);
	int err, had;

	if (!r->bytes[BATON_TCP_A_UNSENT])
		return 0;
	if (getsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &had, &sl))
		return -errno;
	err = sockopt_u32(fd, TCP_NOTSENT_LOWAT, INT_MAX) ?:
	      send_all(fd, r, BATON_TCP_A_UNSENT);
	sockopt_u32(fd, TCP_NOTSENT_LOWAT, had);
	return err;
}

int tcp_restore_release(struct baton_tcp *tcp, int fd, const void *rec,
			size_t len)
{
	struct sockaddr reset = { .sa_family = AF_UNSPEC };
	struct tcp_rec r = { .tcp = tcp };
	int err;

	err = tcp_rec_parse(&r, rec, len);
	if (err)
		return err;
	/* leaving repair mode sends a window probe: the peer answers */
	err = sockopt_u32(fd, TCP_REPAIR, TCP_REPAIR_OFF);
	if (err) {
		pr_err(&tcp->log, "TCP restore: leaving repair mode: %s",
		       strerror(-err));
		return err;
	}
	err = send_unsent(fd, &r);
	/* its peer had closed its side: end of stream after the queue */
	if (!err && r.tb[BATON_TCP_A_PEER_FIN] &&
	    rec_u32(&r, BATON_TCP_A_PEER_FIN) && shutdown(fd, SHUT_RD))
		err = -errno;
	if (!err)
		return 0;
	/*
	 * Bytes of the stream are lost, and some that follow them may be on
	 * the wire: out of repair mode, a disconnect resets the connection,
	 * so that the peer learns of it as the application does
	 */
	connect(fd, &reset, sizeof(reset));
	pr_err(&tcp->log, "TCP restore: leaving repair mode, writing the unsent data: %s; the connection is reset",
	       strerror(-err));
	return err;
}

int tcp_restore_into(struct baton_tcp *tcp, int fd, const void *rec,
		     size_t len, bool hold)
{
	struct tcp_rec r = { .tcp = tcp };
	const struct nlattr *kernel;
	const char *step;
	socklen_t sl = sizeof(int);
	int err, soerr;

	err = tcp_rec_parse(&r, rec, len);
	if (err)
		return err;
	kernel = r.tb[BATON_TCP_A_KERNEL];
	step = "TCP_REPAIR (needs CAP_NET_ADMIN)";
	err = sockopt_u32(fd, TCP_REPAIR, TCP_REPAIR_ON);
	if (err)
		goto fail;
	step = "binding and connecting in repair mode";
	err = repair_connect(fd, &r);
	if (err)
		goto fail;
	step = "options";
	err = repair_options(fd, &r);
	if (err)
		goto disconnect;
	step = "queues and window";
	err = repair_queues(fd, &r);
	if (err)
		goto disconnect;
	if (kernel && mnl_attr_get_payload_len(kernel) && tcp_has_module(tcp)) {
		step = "congestion and RTT state (baton.ko)";
		err = baton_tcp_import(tcp, fd, mnl_attr_get_payload(kernel),
				       mnl_attr_get_payload_len(kernel));
		if (err < 0)
			goto disconnect;
		if (err)
			pr_info(&tcp->log, "TCP checkpoint: %d newer attributes skipped",
				err);
	}
	if (hold)
		return 0;	/* tcp_restore_release() lets it go */
	step = "leaving repair mode";
	err = tcp_restore_release(tcp, fd, rec, len);
	if (err)
		goto disconnect;
	/* a socket disconnected before keeps ECONNABORTED for its next read */
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
	return 0;

disconnect:
	/* back in repair mode, nothing reaches the peer */
	tcp_disconnect(fd);
fail:
	pr_err(&tcp->log, "TCP restore: %s: %s", step, strerror(-err));
	return err;
}

int baton_tcp_restore(struct baton_tcp *tcp, const void *rec, size_t len)
{
	struct tcp_rec r = { .tcp = tcp };
	int fd, err;

	err = tcp_rec_parse(&r, rec, len);
	if (err)
		return err;
	fd = socket(rec_u32(&r, BATON_TCP_A_FAMILY), SOCK_STREAM | SOCK_CLOEXEC,
		    IPPROTO_TCP);
	if (fd < 0)
		return -errno;
	err = tcp_restore_into(tcp, fd, rec, len, false);
	if (err) {
		close(fd);	/* in repair mode: silent */
		return err;
	}
	return fd;
}
