// SPDX-License-Identifier: GPL-2.0
/*
 * Bulk state: the complete repair state of many of the caller's TCP
 * sockets in one dump, and sockets built from such records in one
 * request, the repair sequence replayed in the kernel (setsockopt with
 * kernel pointers, kernel_bind(), kernel_connect(), kernel_sendmsg())
 * rather than a system call for each step of each connection.
 */
#include <linux/file.h>
#include <linux/net.h>
#include <linux/uio.h>
#include <net/genetlink.h>
#include <net/inet_connection_sock.h>
#include <net/ipv6.h>
#include <net/tcp.h>
#include "internal.h"

#define BTK_CONN_OPTIONS	(TCPI_OPT_TIMESTAMPS | TCPI_OPT_SACK | \
				 TCPI_OPT_WSCALE | TCPI_OPT_ECN)

/* the queues of a connection, in the order a restore writes them */
enum btk_queue {
	BTK_Q_RECV,
	BTK_Q_SENT,
	BTK_Q_UNSENT,
	BTK_NR_QUEUES
};

static const int btk_queue_attr[BTK_NR_QUEUES] = {
	[BTK_Q_RECV]	= BATON_CONN_A_RECVQ,
	[BTK_Q_SENT]	= BATON_CONN_A_SENDQ,
	[BTK_Q_UNSENT]	= BATON_CONN_A_UNSENT,
};

static const int btk_queue_len_attr[BTK_NR_QUEUES] = {
	[BTK_Q_RECV]	= BATON_CONN_A_RECVQ_LEN,
	[BTK_Q_SENT]	= BATON_CONN_A_SENDQ_LEN,
	[BTK_Q_UNSENT]	= BATON_CONN_A_UNSENT_LEN,
};

/* One socket's state at the moment of its export */
struct btk_conn {
	union {
		struct sockaddr_in v4;
		struct sockaddr_in6 v6;
	} local, peer;
	int addrlen;
	u32 snd_una, snd_nxt, write_seq, copied_seq, rcv_nxt;
	bool peer_fin;		/* CLOSE_WAIT: rcv_nxt counts the peer's FIN */
	bool fin_unread;	/* and copied_seq not yet: no EOF read */
	u32 mss, options, snd_wscale, rcv_wscale, tsval;
	struct tcp_repair_window win;
	struct btk_tcp_state st;
};

/* The first byte of each queue and its length */
static void btk_conn_queue(const struct btk_conn *c, enum btk_queue q,
			   u32 *seq, u32 *len)
{
	switch (q) {
	case BTK_Q_RECV:
		/* the FIN takes a sequence number, not a byte */
		*seq = c->copied_seq;
		*len = c->rcv_nxt - c->copied_seq - c->fin_unread;
		break;
	case BTK_Q_SENT:
		*seq = c->snd_una;
		*len = c->snd_nxt - c->snd_una;
		break;
	default:
		*seq = c->snd_nxt;
		*len = c->write_seq - c->snd_nxt;
		break;
	}
}

static bool btk_conn_exportable(struct sock *sk,
				struct netlink_ext_ack *extack)
{
	if (sk->sk_state != TCP_ESTABLISHED && sk->sk_state != TCP_CLOSE_WAIT) {
		NL_SET_ERR_MSG(extack,
			       "socket is not an established connection, nor one its peer closed");
		return false;
	}
	if (inet_csk(sk)->icsk_ulp_ops) {
		NL_SET_ERR_MSG(extack,
			       "socket has an upper layer protocol: its queues are not plain bytes");
		return false;
	}
	return true;
}

static int btk_sockopt(struct socket *sock, int opt, const void *val,
		       unsigned int len)
{
	return sock->ops->setsockopt(sock, SOL_TCP, opt,
				     KERNEL_SOCKPTR((void *)val), len);
}

static int btk_sockopt_int(struct socket *sock, int opt, int val)
{
	return btk_sockopt(sock, opt, &val, sizeof(val));
}

static void btk_conn_addrs(struct sock *sk, struct btk_conn *c)
{
	const struct inet_sock *inet = inet_sk(sk);

#if IS_ENABLED(CONFIG_IPV6)
	if (sk->sk_family == AF_INET6) {
		c->local.v6 = (struct sockaddr_in6) {
			.sin6_family	= AF_INET6,
			.sin6_port	= inet->inet_sport,
			.sin6_addr	= sk->sk_v6_rcv_saddr,
			.sin6_scope_id	= ipv6_iface_scope_id(&sk->sk_v6_rcv_saddr,
							      sk->sk_bound_dev_if),
		};
		c->peer.v6 = (struct sockaddr_in6) {
			.sin6_family	= AF_INET6,
			.sin6_port	= inet->inet_dport,
			.sin6_addr	= sk->sk_v6_daddr,
			.sin6_scope_id	= ipv6_iface_scope_id(&sk->sk_v6_daddr,
							      sk->sk_bound_dev_if),
		};
		c->addrlen = sizeof(struct sockaddr_in6);
		return;
	}
#endif
	c->local.v4 = (struct sockaddr_in) {
		.sin_family	 = AF_INET,
		.sin_port	 = inet->inet_sport,
		.sin_addr.s_addr = inet->inet_rcv_saddr ?: inet->inet_saddr,
	};
	c->peer.v4 = (struct sockaddr_in) {
		.sin_family	 = AF_INET,
		.sin_port	 = inet->inet_dport,
		.sin_addr.s_addr = inet->inet_daddr,
	};
	c->addrlen = sizeof(struct sockaddr_in);
}

/*
 * Puts a locked socket in repair mode with its send queue selected, as
 * TCP_REPAIR and TCP_REPAIR_QUEUE would (an ACK then marks data sent
 * without sending it: nothing the record holds as unsent leaves), and
 * reads its state.
 */
static int btk_conn_snap(struct sock *sk, struct btk_conn *c,
			 struct netlink_ext_ack *extack)
{
	struct tcp_sock *tp = tcp_sk(sk);

	if (!btk_conn_exportable(sk, extack))
		return -ENOTCONN;
	/*
	 * What TCP_REPAIR and TCP_REPAIR_QUEUE would set, without two more
	 * rounds of the socket lock: they ask for CAP_NET_ADMIN over the
	 * socket's namespace, which the family's GENL_UNS_ADMIN_PERM checked
	 * (the socket is in the request's namespace).
	 */
	tp->repair = 1;
	sk->sk_reuse = SK_FORCE_REUSE;
	tp->repair_queue = TCP_SEND_QUEUE;
	memset(c, 0, sizeof(*c));
	btk_conn_addrs(sk, c);
	c->snd_una = tp->snd_una;
	c->snd_nxt = tp->snd_nxt;
	c->write_seq = tp->write_seq;
	c->copied_seq = tp->copied_seq;
	c->rcv_nxt = tp->rcv_nxt;
	c->peer_fin = sk->sk_state == TCP_CLOSE_WAIT;
	/* an application that read end of stream has copied the FIN too */
	c->fin_unread = c->peer_fin && c->copied_seq != c->rcv_nxt;
	/* what TCP_MAXSEG reads in repair mode, and TCPOPT_MAXSEG sets */
	c->mss = tp->rx_opt.mss_clamp;
	if (tp->rx_opt.tstamp_ok)
		c->options |= TCPI_OPT_TIMESTAMPS;
	if (tcp_is_sack(tp))
		c->options |= TCPI_OPT_SACK;
	if (tp->rx_opt.wscale_ok)
		c->options |= TCPI_OPT_WSCALE;
	if (tp->ecn_flags & TCP_ECN_OK)
		c->options |= TCPI_OPT_ECN;
	c->snd_wscale = tp->rx_opt.snd_wscale;
	c->rcv_wscale = tp->rx_opt.rcv_wscale;
	c->tsval = tcp_time_stamp_raw() + tp->tsoffset;
	c->win = (struct tcp_repair_window) {
		.snd_wl1	= tp->snd_wl1,
		.snd_wnd	= tp->snd_wnd,
		.max_window	= tp->max_window,
		.rcv_wnd	= tp->rcv_wnd,
		.rcv_wup	= tp->rcv_wup,
	};
	btk_tcp_read(sk, &c->st);
	return 0;
}

/* What skb holds of the bytes from seq + *done on, copied; advances *done */
static int btk_skb_take(const struct sk_buff *skb, u32 seq, u8 *to, u32 len,
			u32 *done)
{
	u32 start = TCP_SKB_CB(skb)->seq, end = start + skb->len;
	u32 from = seq + *done, n;
	int err;

	if (*done == len || before(from, start) || !before(from, end))
		return 0;
	n = min(end - from, len - *done);
	err = skb_copy_bits(skb, from - start, to + *done, n);
	if (!err)
		*done += n;
	return err;
}

/* Copies len bytes of a queue from sequence number seq; socket locked */
static int btk_queue_copy(struct sock *sk, enum btk_queue q, u32 seq,
			  void *to, u32 len)
{
	struct sk_buff *skb;
	u32 done = 0;
	int err = 0;

	if (q == BTK_Q_RECV) {
		skb_queue_walk(&sk->sk_receive_queue, skb)
			err = err ?: btk_skb_take(skb, seq, to, len, &done);
	} else {
		skb_rbtree_walk(skb, &sk->tcp_rtx_queue)
			err = err ?: btk_skb_take(skb, seq, to, len, &done);
		skb_queue_walk(&sk->sk_write_queue, skb)
			err = err ?: btk_skb_take(skb, seq, to, len, &done);
	}
	if (err)
		return err;
	return done == len ? 0 : -EAGAIN;
}

/* The sockets of one export, and where it stands */
struct btk_dump {
	u32 n;			/* sockets */
	u32 i;			/* the one being written */
	bool taken;		/* the sockets are ours */
	bool started;		/* its first part is out, its state read */
	u32 off[BTK_NR_QUEUES];	/* bytes of each queue out */
	struct btk_conn c;	/* its state */
	struct {
		struct socket *sock;
		u32 fd;
	} s[];
};

static struct btk_dump **btk_dump_ctx(struct netlink_callback *cb)
{
	BUILD_BUG_ON(sizeof(struct btk_dump *) > sizeof(cb->ctx));
	return (struct btk_dump **)cb->ctx;
}

/*
 * The descriptors of the request. The sockets are taken (with file
 * references) by the first dumpit, which runs in the caller's sendmsg()
 * too, and has an extended ack where start has none.
 */
int btk_conn_export_start(struct netlink_callback *cb)
{
	const struct nlattr *attr;
	struct btk_dump *d;
	u32 n = 0;
	int rem;

	nlmsg_for_each_attr(attr, cb->nlh, GENL_HDRLEN, rem) {
		if (nla_type(attr) == BATON_GENL_A_FLAGS) {
			NL_SET_ERR_MSG_ATTR(cb->extack, attr,
					    "only CONN_IMPORT takes flags");
			return -EINVAL;
		}
		if (nla_type(attr) == BATON_GENL_A_FD)
			n++;
	}
	d = kvzalloc(struct_size(d, s, n), GFP_KERNEL);
	if (!d)
		return -ENOMEM;
	nlmsg_for_each_attr(attr, cb->nlh, GENL_HDRLEN, rem)
		if (nla_type(attr) == BATON_GENL_A_FD)
			d->s[d->n++].fd = nla_get_u32(attr);
	*btk_dump_ctx(cb) = d;
	return 0;
}

static int btk_conn_export_take(struct netlink_callback *cb,
				struct btk_dump *d)
{
	struct net *net = sock_net(cb->skb->sk);
	const struct nlattr *attr;
	u32 i = 0;
	int rem, err;

	if (!d->n) {
		NL_SET_ERR_MSG(cb->extack, "no socket to export");
		return -EINVAL;
	}
	nlmsg_for_each_attr(attr, cb->nlh, GENL_HDRLEN, rem) {
		struct socket *sock;

		if (nla_type(attr) != BATON_GENL_A_FD)
			continue;
		err = btk_genl_socket(net, cb->extack, attr, &sock);
		if (err)
			return err;
		d->s[i++].sock = sock;
		if (!btk_conn_exportable(sock->sk, cb->extack))
			return -ENOTCONN;
	}
	d->taken = true;
	return 0;
}

int btk_conn_export_done(struct netlink_callback *cb)
{
	struct btk_dump *d = *btk_dump_ctx(cb);
	u32 i;

	if (!d)
		return 0;
	for (i = 0; i < d->n; i++)
		if (d->s[i].sock)
			sockfd_put(d->s[i].sock);
	kvfree(d);
	return 0;
}

static int btk_put_addr(struct sk_buff *skb, int attr, const void *addr,
			int len)
{
	return nla_put(skb, attr, len, addr);
}

/* The scalars of the connection's first part */
static int btk_conn_put_scalars(struct sk_buff *skb, const struct btk_conn *c)
{
	struct nlattr *state;
	u32 seq, len;
	int q;

	if (btk_put_addr(skb, BATON_CONN_A_LOCAL, &c->local, c->addrlen) ||
	    btk_put_addr(skb, BATON_CONN_A_PEER, &c->peer, c->addrlen) ||
	    nla_put_u32(skb, BATON_CONN_A_SND_SEQ, c->snd_una) ||
	    /*
	     * with a FIN not read, the data start one later: the import's
	     * rcv_nxt comes out right (one read has it after the FIN)
	     */
	    nla_put_u32(skb, BATON_CONN_A_RCV_SEQ,
			c->copied_seq + c->fin_unread) ||
	    (c->peer_fin && nla_put_flag(skb, BATON_CONN_A_PEER_FIN)) ||
	    nla_put_u32(skb, BATON_CONN_A_MSS, c->mss) ||
	    nla_put_u32(skb, BATON_CONN_A_OPTIONS, c->options) ||
	    nla_put_u32(skb, BATON_CONN_A_SND_WSCALE, c->snd_wscale) ||
	    nla_put_u32(skb, BATON_CONN_A_RCV_WSCALE, c->rcv_wscale) ||
	    nla_put_u32(skb, BATON_CONN_A_TIMESTAMP, c->tsval) ||
	    nla_put(skb, BATON_CONN_A_WINDOW, sizeof(c->win), &c->win))
		return -EMSGSIZE;
	for (q = 0; q < BTK_NR_QUEUES; q++) {
		btk_conn_queue(c, q, &seq, &len);
		if (nla_put_u32(skb, btk_queue_len_attr[q], len))
			return -EMSGSIZE;
	}
	state = nla_nest_start(skb, BATON_CONN_A_STATE);
	if (!state || btk_genl_put_state(skb, &c->st))
		return -EMSGSIZE;
	nla_nest_end(skb, state);
	return 0;
}

/*
 * Queue bytes into the message while they fit, reading them by sequence
 * number, the socket locked: if it moved since the snapshot (an ACK,
 * data read or received between two messages), the export fails rather
 * than mix two moments. A frozen connection does not move.
 */
static int btk_conn_put_bytes(struct sk_buff *skb, struct btk_dump *d,
			      struct netlink_ext_ack *extack)
{
	struct sock *sk = d->s[d->i].sock->sk;
	const struct tcp_sock *tp = tcp_sk(sk);
	const struct btk_conn *c = &d->c;
	int q, err;
	u32 seq, len;

	if (tp->snd_una != c->snd_una || tp->write_seq != c->write_seq ||
	    tp->copied_seq != c->copied_seq || tp->rcv_nxt != c->rcv_nxt) {
		NL_SET_ERR_MSG(extack,
			       "socket moved during its export: freeze its connection first");
		return -EAGAIN;
	}
	for (q = 0; q < BTK_NR_QUEUES; q++) {
		btk_conn_queue(c, q, &seq, &len);
		while (d->off[q] < len) {
			int room = skb_tailroom(skb) - 2 * NLA_HDRLEN -
				   NLMSG_ALIGNTO;
			u32 n = min3(len - d->off[q], (u32)BATON_CONN_CHUNK_MAX,
				     (u32)max(room, 0));
			struct nlattr *attr;

			/* a chunk worth a message, or the next message */
			if (n < len - d->off[q] && n < 1024)
				return -EMSGSIZE;
			attr = nla_reserve(skb, btk_queue_attr[q], n);
			if (!attr)
				return -EMSGSIZE;
			err = btk_queue_copy(sk, q, seq + d->off[q],
					     nla_data(attr), n);
			if (err) {
				NL_SET_ERR_MSG(extack,
					       "socket's queue shorter than its sequence numbers");
				return err;
			}
			d->off[q] += n;
		}
	}
	return 0;
}

/*
 * One message of the current socket, under its lock: its first part
 * (its state, read now, and what bytes fit) or the next. 0 once the
 * socket is all out, -EMSGSIZE when the message is full (kept if it
 * holds anything; the next continues).
 */
static int btk_conn_put_part(struct sk_buff *skb, struct netlink_callback *cb,
			     struct btk_dump *d)
{
	struct sock *sk = d->s[d->i].sock->sk;
	bool first = !d->started;
	struct nlattr *conn;
	int err, before;
	void *hdr;

	lock_sock(sk);
	if (!d->started) {
		err = btk_conn_snap(sk, &d->c, cb->extack);
		if (err)
			goto unlock;
		memset(d->off, 0, sizeof(d->off));
	}
	err = -EMSGSIZE;
	hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid, cb->nlh->nlmsg_seq,
			  btk_genl_family(), NLM_F_MULTI,
			  BATON_GENL_CMD_CONN_EXPORT);
	if (!hdr)
		goto unlock;
	conn = nla_nest_start(skb, BATON_GENL_A_CONN);
	if (!conn || nla_put_u32(skb, BATON_CONN_A_INDEX, d->i))
		goto cancel;
	if (!d->started) {
		if (nla_put_u32(skb, BATON_CONN_A_FD, d->s[d->i].fd) ||
		    btk_conn_put_scalars(skb, &d->c))
			goto cancel;
		d->started = true;
	}
	before = skb->len;
	err = btk_conn_put_bytes(skb, d, cb->extack);
	if (err && err != -EMSGSIZE)
		goto cancel;
	/*
	 * A continuation that carries nothing is not worth a message. Not a
	 * first part: its scalars are taken (d->started), and the nest's
	 * length is not set before nla_nest_end(), so it cannot tell.
	 */
	if (err && skb->len == before && !first)
		goto cancel;
	nla_nest_end(skb, conn);
	genlmsg_end(skb, hdr);
	goto unlock;

cancel:
	genlmsg_cancel(skb, hdr);
unlock:
	release_sock(sk);
	return err;
}

int btk_conn_export_dumpit(struct sk_buff *skb, struct netlink_callback *cb)
{
	struct btk_dump *d = *btk_dump_ctx(cb);
	int err;

	if (!d->taken) {
		err = btk_conn_export_take(cb, d);
		if (err)
			return err;
	}
	while (d->i < d->n) {
		err = btk_conn_put_part(skb, cb, d);
		if (err == -EMSGSIZE) {
			if (skb->len)
				return skb->len;
			NL_SET_ERR_MSG(cb->extack,
				       "a connection's state does not fit in a message");
			return err;
		}
		if (err)
			return err;
		d->i++;
		d->started = false;
	}
	return 0;
}

/* One connection of an import: its parts in the request, its socket */
struct btk_conn_in {
	const struct nlattr *first;	/* its first CONN nest */
	struct nlattr *tb[BATON_CONN_A_MAX + 1];
	u32 index;
	u32 len[BTK_NR_QUEUES];		/* announced */
	u32 nvec[BTK_NR_QUEUES];
	struct kvec *vec[BTK_NR_QUEUES];
	struct btk_tcp_state st;
	struct file *file;		/* its socket's */
	int fd;
	int err;			/* after it left repair mode */
};

struct btk_import {
	u32 n;
	struct kvec *vec;		/* the chunks, in the request */
	struct btk_conn_in c[];
};

static void btk_import_free(struct btk_import *im)
{
	u32 i;

	for (i = 0; i < im->n; i++) {
		struct btk_conn_in *ci = &im->c[i];

		if (ci->file)
			fput(ci->file);	/* in repair mode: silent */
		if (ci->fd >= 0)
			put_unused_fd(ci->fd);
	}
	kvfree(im->vec);
	kvfree(im);
}

static int btk_queue_of(int attr)
{
	int q;

	for (q = 0; q < BTK_NR_QUEUES; q++)
		if (btk_queue_attr[q] == attr)
			return q;
	return -1;
}

/*
 * Walks the request's CONN nests, connection by connection (adjacent
 * nests of one INDEX), calling fn on each nest with its connection.
 */
static int btk_import_walk(struct genl_info *info, struct btk_import *im,
			   int (*fn)(struct genl_info *info,
				     struct btk_import *im, u32 i,
				     const struct nlattr *nest, bool first))
{
	const struct nlattr *attr;
	u32 n = 0, index = 0;
	int rem, err;

	nlmsg_for_each_attr(attr, info->nlhdr, GENL_HDRLEN, rem) {
		const struct nlattr *ia;
		bool first;

		if (nla_type(attr) != BATON_GENL_A_CONN)
			continue;
		ia = nla_find_nested(attr, BATON_CONN_A_INDEX);
		if (!ia) {
			NL_SET_ERR_ATTR_MISS(info->extack, attr,
					     BATON_CONN_A_INDEX);
			NL_SET_ERR_MSG(info->extack, "a connection without its index");
			return -EINVAL;
		}
		first = !n || nla_get_u32(ia) != index;
		if (first && n && nla_get_u32(ia) < index) {
			NL_SET_ERR_MSG_ATTR(info->extack, ia,
					    "connections out of order, or one in parts apart");
			return -EINVAL;
		}
		index = nla_get_u32(ia);
		if (first)
			n++;
		err = fn(info, im, n - 1, attr, first);
		if (err)
			return err;
	}
	return n;
}

static int btk_import_count(struct genl_info *info, struct btk_import *im,
			    u32 i, const struct nlattr *nest, bool first)
{
	return 0;
}

/* The first part parsed; chunks counted, and nothing else in the rest */
static int btk_import_parse(struct genl_info *info, struct btk_import *im,
			    u32 i, const struct nlattr *nest, bool first)
{
	struct btk_conn_in *ci = &im->c[i];
	const struct nlattr *a;
	int rem, q, err;

	if (first) {
		ci->first = nest;
		/* the family's policy checked every nest of the request */
		err = nla_parse_nested(ci->tb, BATON_CONN_A_MAX, nest, NULL,
				       info->extack);
		if (err)
			return err;
		ci->index = nla_get_u32(ci->tb[BATON_CONN_A_INDEX]);
	}
	nla_for_each_nested(a, nest, rem) {
		q = btk_queue_of(nla_type(a));
		if (q >= 0) {
			ci->nvec[q]++;
			continue;
		}
		if (!first && nla_type(a) != BATON_CONN_A_INDEX) {
			NL_SET_ERR_MSG_ATTR(info->extack, a,
					    "a connection's scalars belong in its first part");
			return -EINVAL;
		}
	}
	return 0;
}

static int btk_import_chunks(struct genl_info *info, struct btk_import *im,
			     u32 i, const struct nlattr *nest, bool first)
{
	struct btk_conn_in *ci = &im->c[i];
	const struct nlattr *a;
	int rem, q;

	nla_for_each_nested(a, nest, rem) {
		struct kvec *v;

		q = btk_queue_of(nla_type(a));
		if (q < 0)
			continue;
		v = &ci->vec[q][ci->nvec[q]++];
		v->iov_base = nla_data(a);
		v->iov_len = nla_len(a);
		ci->len[q] += nla_len(a);
	}
	return 0;
}

static const int btk_conn_required[] = {
	BATON_CONN_A_LOCAL, BATON_CONN_A_PEER, BATON_CONN_A_SND_SEQ,
	BATON_CONN_A_RCV_SEQ, BATON_CONN_A_MSS, BATON_CONN_A_OPTIONS,
	BATON_CONN_A_WINDOW, BATON_CONN_A_SENDQ_LEN, BATON_CONN_A_UNSENT_LEN,
	BATON_CONN_A_RECVQ_LEN,
};

/* What the policy cannot check of a connection: before any socket */
static int btk_import_check(struct genl_info *info, struct btk_conn_in *ci)
{
	struct netlink_ext_ack *extack = info->extack;
	const struct sockaddr *local, *peer;
	u32 opts;
	int k, q;

	for (k = 0; k < ARRAY_SIZE(btk_conn_required); k++) {
		if (!ci->tb[btk_conn_required[k]]) {
			NL_SET_ERR_ATTR_MISS(extack, ci->first,
					     btk_conn_required[k]);
			NL_SET_ERR_MSG(extack,
				       "a connection's first part lacks a scalar");
			return -EINVAL;
		}
	}
	local = nla_data(ci->tb[BATON_CONN_A_LOCAL]);
	peer = nla_data(ci->tb[BATON_CONN_A_PEER]);
	if (nla_len(ci->tb[BATON_CONN_A_LOCAL]) !=
	    nla_len(ci->tb[BATON_CONN_A_PEER]) ||
	    local->sa_family != peer->sa_family ||
	    (local->sa_family == AF_INET ? sizeof(struct sockaddr_in) :
	     sizeof(struct sockaddr_in6)) !=
	    nla_len(ci->tb[BATON_CONN_A_LOCAL]) ||
	    (local->sa_family != AF_INET && local->sa_family != AF_INET6)) {
		NL_SET_ERR_MSG_ATTR(extack, ci->tb[BATON_CONN_A_PEER],
				    "addresses are not two sockaddr_in or sockaddr_in6");
		return -EINVAL;
	}
	opts = nla_get_u32(ci->tb[BATON_CONN_A_OPTIONS]);
	if (((opts & TCPI_OPT_WSCALE) &&
	     (!ci->tb[BATON_CONN_A_SND_WSCALE] ||
	      !ci->tb[BATON_CONN_A_RCV_WSCALE])) ||
	    ((opts & TCPI_OPT_TIMESTAMPS) && !ci->tb[BATON_CONN_A_TIMESTAMP])) {
		NL_SET_ERR_MSG_ATTR(extack, ci->tb[BATON_CONN_A_OPTIONS],
				    "window scale or timestamp option without its value");
		return -EINVAL;
	}
	for (q = 0; q < BTK_NR_QUEUES; q++) {
		if (ci->len[q] != nla_get_u32(ci->tb[btk_queue_len_attr[q]])) {
			NL_SET_ERR_MSG_ATTR(extack,
					    ci->tb[btk_queue_len_attr[q]],
					    "a queue's bytes do not add up to its length");
			return -EINVAL;
		}
	}
	if (ci->tb[BATON_CONN_A_STATE])
		return btk_genl_state_parse(ci->tb[BATON_CONN_A_STATE], &ci->st,
					    extack);
	return 0;
}

/*
 * What a queue of len bytes costs a socket in the kernel's measure, which
 * charges each skb's own size (truesize) too, written in pieces of at
 * most seg bytes: in repair mode the send queue goes in skbs of one MSS
 * where the device does no segmentation offload, and the MSS is then
 * still TCP_MSS_DEFAULT (the options come later).
 */
/*
 * An skb's truesize beyond its bytes, for the small ones a send queue is
 * rebuilt in; the receive queue's chunks cost more each (their linear
 * part), but are few, and the kernel's doubling of the buffer covers them
 */
#define BTK_SKB_COST	2048

static u64 btk_queue_charge(u64 len, u32 seg)
{
	return len ? len + (div_u64(len, seg) + 1) * BTK_SKB_COST : 0;
}

/* Room for the queues a new socket's default buffers would refuse */
static void btk_conn_buffers(struct sock *sk, const struct btk_conn_in *ci)
{
	u64 snd = btk_queue_charge((u64)ci->len[BTK_Q_SENT] +
				   ci->len[BTK_Q_UNSENT], TCP_MSS_DEFAULT);
	u64 rcv = btk_queue_charge(ci->len[BTK_Q_RECV], BATON_CONN_CHUNK_MAX);

	if (snd > READ_ONCE(sk->sk_sndbuf) / 2) {
		/* as SO_SNDBUF does */
		lock_sock(sk);
		sk->sk_userlocks |= SOCK_SNDBUF_LOCK;
		WRITE_ONCE(sk->sk_sndbuf,
			   max_t(int, min_t(u64, snd, INT_MAX / 2) * 2,
				 SOCK_MIN_SNDBUF));
		release_sock(sk);
	}
	if (rcv > READ_ONCE(sk->sk_rcvbuf) / 2)
		sock_set_rcvbuf(sk, min_t(u64, rcv, INT_MAX / 2));
}

/*
 * A queue's bytes into the selected queue; the receive queue in chunks
 * (tcp_send_rcvq() makes one skb of each), never waiting for memory.
 */
static int btk_conn_write(struct socket *sock, const struct btk_conn_in *ci,
			  enum btk_queue q)
{
	u32 k;
	int n;

	for (k = 0; k < ci->nvec[q]; k++) {
		struct kvec v = ci->vec[q][k];

		while (v.iov_len) {
			struct msghdr msg = {
				.msg_flags = MSG_DONTWAIT | MSG_NOSIGNAL,
			};

			n = kernel_sendmsg(sock, &msg, &v, 1, v.iov_len);
			if (n < 0)
				return n == -EAGAIN ? -ENOBUFS : n;
			if (!n)
				return -ENOBUFS;
			v.iov_base += n;
			v.iov_len -= n;
		}
	}
	return 0;
}

/*
 * What TCP_REPAIR, TCP_REPAIR_QUEUE and TCP_QUEUE_SEQ set on a new socket
 * (unconnected, nothing queued), under one round of its lock rather than
 * five: repair mode, the port shared by force, the sequence numbers of
 * both queues, the receive queue selected for its bytes. TCP_REPAIR asks
 * for CAP_NET_ADMIN over the socket's namespace, the request's, which
 * the family's GENL_UNS_ADMIN_PERM checked.
 */
static void btk_conn_repair(struct sock *sk, u32 snd_seq, u32 rcv_seq)
{
	struct tcp_sock *tp = tcp_sk(sk);

	lock_sock(sk);
	tp->repair = 1;
	sk->sk_reuse = SK_FORCE_REUSE;
	WRITE_ONCE(tp->write_seq, snd_seq);
	WRITE_ONCE(tp->rcv_nxt, rcv_seq);
	WRITE_ONCE(tp->copied_seq, rcv_seq);
	tp->repair_queue = TCP_RECV_QUEUE;
	release_sock(sk);
}

/*
 * A socket of the caller in repair mode, with the connection's sequence
 * numbers, addresses, options, window, congestion state and queues: what
 * baton_tcp_restore() does with system calls, without them. Nothing
 * reaches the peer; a failure leaves a socket whose close is silent.
 */
static int btk_conn_build(struct net *net, struct btk_conn_in *ci,
			  u32 flags, struct netlink_ext_ack *extack)
{
	struct nlattr **tb = ci->tb;
	struct sockaddr *local = nla_data(tb[BATON_CONN_A_LOCAL]);
	struct sockaddr *peer = nla_data(tb[BATON_CONN_A_PEER]);
	int addrlen = nla_len(tb[BATON_CONN_A_LOCAL]);
	u32 opts = nla_get_u32(tb[BATON_CONN_A_OPTIONS]);
	struct tcp_repair_opt o[4];
	struct socket *sock;
	int n = 0, err;

	err = __sock_create(net, local->sa_family, SOCK_STREAM, IPPROTO_TCP,
			    &sock, 0);
	if (err) {
		NL_SET_ERR_MSG(extack, "cannot create a socket");
		return err;
	}
	ci->file = sock_alloc_file(sock, 0, NULL);
	if (IS_ERR(ci->file)) {
		err = PTR_ERR(ci->file);
		ci->file = NULL;	/* the socket went with it */
		NL_SET_ERR_MSG(extack, "cannot make a file of the socket");
		return err;
	}

	/*
	 * With the peer's FIN, RCV_SEQ counts it: the bytes start one
	 * before, and the FIN takes its number once they are queued
	 */
	btk_conn_repair(sock->sk, nla_get_u32(tb[BATON_CONN_A_SND_SEQ]),
			nla_get_u32(tb[BATON_CONN_A_RCV_SEQ]) -
			!!tb[BATON_CONN_A_PEER_FIN]);
	/*
	 * An address on its way to this namespace: bound, and routed from,
	 * until the connect, as IP_TRANSPARENT lets (IP_FREEBIND binds but
	 * IPv4 would not route from it)
	 */
	if (flags & BATON_IMPORT_F_NONLOCAL)
		inet_sk(sock->sk)->transparent = 1;
	/* in repair mode the port is shared by force, and nothing is sent */
	err = kernel_bind(sock, local, addrlen);
	if (err) {
		NL_SET_ERR_MSG_ATTR(extack, tb[BATON_CONN_A_LOCAL],
				    "cannot bind to the local address");
		return err;
	}
	err = kernel_connect(sock, peer, addrlen, 0);
	lock_sock(sock->sk);
	inet_sk(sock->sk)->transparent = 0;	/* routed: an ordinary socket */
	release_sock(sock->sk);
	if (err) {
		NL_SET_ERR_MSG_ATTR(extack, tb[BATON_CONN_A_PEER],
				    "cannot connect to the peer in repair mode");
		return err;
	}

	o[n].opt_code = TCPOPT_MSS;
	o[n++].opt_val = nla_get_u32(tb[BATON_CONN_A_MSS]);
	if (opts & TCPI_OPT_WSCALE) {
		o[n].opt_code = TCPOPT_WINDOW;
		o[n++].opt_val = nla_get_u32(tb[BATON_CONN_A_SND_WSCALE]) |
				 nla_get_u32(tb[BATON_CONN_A_RCV_WSCALE]) << 16;
	}
	if (opts & TCPI_OPT_SACK) {
		o[n].opt_code = TCPOPT_SACK_PERM;
		o[n++].opt_val = 0;
	}
	if (opts & TCPI_OPT_TIMESTAMPS) {
		o[n].opt_code = TCPOPT_TIMESTAMP;
		o[n++].opt_val = 0;
	}
	err = btk_sockopt(sock, TCP_REPAIR_OPTIONS, o, n * sizeof(o[0]));
	if (!err && (opts & TCPI_OPT_TIMESTAMPS))
		err = btk_sockopt_int(sock, TCP_TIMESTAMP,
				      nla_get_u32(tb[BATON_CONN_A_TIMESTAMP]));
	if (err) {
		NL_SET_ERR_MSG_ATTR(extack, tb[BATON_CONN_A_OPTIONS],
				    "the socket refuses the options");
		return err;
	}
	if (opts & TCPI_OPT_ECN) {
		lock_sock(sock->sk);
		tcp_sk(sock->sk)->ecn_flags = TCP_ECN_OK;
		release_sock(sock->sk);
	}
	btk_conn_buffers(sock->sk, ci);

	/*
	 * Before the send queue: its timer is armed with the imported RTO,
	 * its loss probe with the imported RTT.
	 */
	if (ci->st.present) {
		err = btk_tcp_import(sock->sk, &ci->st, extack);
		if (err)
			return err;
	}
	/*
	 * The receive queue is selected; the send queue counts as sent (it
	 * is retransmitted if need be). An empty queue costs nothing, and
	 * the queue left selected means nothing once out of repair mode.
	 */
	err = btk_conn_write(sock, ci, BTK_Q_RECV);
	if (!err && tb[BATON_CONN_A_PEER_FIN]) {
		lock_sock(sock->sk);
		WRITE_ONCE(tcp_sk(sock->sk)->rcv_nxt,
			   tcp_sk(sock->sk)->rcv_nxt + 1);
		release_sock(sock->sk);
	}
	if (!err && ci->len[BTK_Q_SENT])
		err = btk_sockopt_int(sock, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE) ?:
		      btk_conn_write(sock, ci, BTK_Q_SENT);
	if (err) {
		NL_SET_ERR_MSG(extack, "cannot queue the connection's bytes");
		return err;
	}
	err = btk_sockopt(sock, TCP_REPAIR_WINDOW,
			  nla_data(tb[BATON_CONN_A_WINDOW]),
			  nla_len(tb[BATON_CONN_A_WINDOW]));
	if (err) {
		NL_SET_ERR_MSG_ATTR(extack, tb[BATON_CONN_A_WINDOW],
				    "the socket refuses the window");
		return err;
	}
	lock_sock(sock->sk);
	btk_tcp_resize(sock->sk);
	release_sock(sock->sk);
	return 0;
}

/*
 * What tcp_fin() leaves of the FIN a connection's peer sent, which its
 * sequence number already counts: end of stream after the receive queue,
 * and CLOSE_WAIT, so that a close() ends it as one would have
 */
static void btk_conn_peer_fin(struct sock *sk)
{
	lock_sock(sk);
	sk->sk_shutdown |= RCV_SHUTDOWN;
	sock_set_flag(sk, SOCK_DONE);
	if (sk->sk_state == TCP_ESTABLISHED)
		tcp_set_state(sk, TCP_CLOSE_WAIT);
	release_sock(sk);
	sk->sk_state_change(sk);
}

/*
 * The bytes never sent, whole: past the namespace's tcp_notsent_lowat a
 * write stops short, and the application's next bytes would follow a
 * hole. The socket's own limit is lifted for the while, then 0 again
 * (the namespace's), as a new socket has it.
 */
static int btk_conn_unsent(struct socket *sock, const struct btk_conn_in *ci)
{
	struct tcp_sock *tp = tcp_sk(sock->sk);
	int err;

	if (!ci->len[BTK_Q_UNSENT])
		return 0;
	lock_sock(sock->sk);
	WRITE_ONCE(tp->notsent_lowat, UINT_MAX);
	release_sock(sock->sk);
	err = btk_conn_write(sock, ci, BTK_Q_UNSENT);
	lock_sock(sock->sk);
	WRITE_ONCE(tp->notsent_lowat, 0);
	release_sock(sock->sk);
	return err;
}

/*
 * Out of repair mode, then the bytes never sent go as new data. If they
 * cannot, the connection has lost them: it is reset, so that the peer
 * learns. Leaving repair mode sends a window probe, for the peer to say
 * where it stands, unless the connection is frozen: then what the peer
 * sent meanwhile is held and will say it, and the answer to a probe
 * would only be held too. A peer that had closed its side is
 * remembered last. With BATON_IMPORT_F_REPAIR the socket then goes back
 * into repair mode, so that until the caller lets it go, its close (the
 * caller's death) says nothing; one whose bytes could not be queued is
 * then not reset but closed so, silently, for the caller to give up on
 * them all.
 */
static void btk_conn_finish(struct btk_conn_in *ci, u32 flags)
{
	struct socket *sock = ci->file->private_data;
	struct btk_tuple t;
	bool probe;
	int err;

	/* no one else has the socket yet: its addresses hold still */
	probe = __btk_sock_tuple(sock->sk, &t) ||
		!btk_frozen(sock_net(sock->sk), &t);
	ci->err = btk_sockopt_int(sock, TCP_REPAIR, probe ? TCP_REPAIR_OFF :
				  TCP_REPAIR_OFF_NO_WP) ?:
		  btk_conn_unsent(sock, ci);
	if (!ci->err && ci->tb[BATON_CONN_A_PEER_FIN])
		btk_conn_peer_fin(sock->sk);
	if (flags & BATON_IMPORT_F_REPAIR) {
		err = btk_sockopt_int(sock, TCP_REPAIR, TCP_REPAIR_ON);
		if (!err)
			return;
		ci->err = ci->err ?: err;
	}
	if (ci->err)
		tcp_abort(sock->sk, ECONNABORTED);
}

static int btk_import_reply(struct sk_buff *reply, struct btk_import *im)
{
	struct nlattr *conn;
	u32 i;

	for (i = 0; i < im->n; i++) {
		struct btk_conn_in *ci = &im->c[i];

		conn = nla_nest_start(reply, BATON_GENL_A_CONN);
		if (!conn || nla_put_u32(reply, BATON_CONN_A_INDEX, ci->index) ||
		    (ci->err ? nla_put_u32(reply, BATON_CONN_A_ERROR, -ci->err) :
		     nla_put_u32(reply, BATON_CONN_A_FD, ci->fd)))
			return -EMSGSIZE;
		nla_nest_end(reply, conn);
	}
	return 0;
}

/* The size of the reply: an INDEX and an FD or ERROR per connection */
#define BTK_IMPORT_REPLY_CONN	(nla_total_size(0) + 2 * nla_total_size(4))

int btk_conn_import_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct net *net = genl_info_net(info);
	struct sk_buff *reply = NULL;
	unsigned long chunks = 0;
	struct btk_import *im;
	int n, q, err;
	u32 i, flags = 0;
	void *hdr;

	if (info->attrs[BATON_GENL_A_FLAGS])
		flags = nla_get_u32(info->attrs[BATON_GENL_A_FLAGS]);
	n = btk_import_walk(info, NULL, btk_import_count);
	if (n < 0)
		return n;
	if (!n) {
		NL_SET_ERR_ATTR_MISS(info->extack, NULL, BATON_GENL_A_CONN);
		GENL_SET_ERR_MSG(info, "no connection to import");
		return -EINVAL;
	}
	im = kvzalloc(struct_size(im, c, n), GFP_KERNEL);
	if (!im)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		im->c[i].fd = -1;
	im->n = n;
	err = btk_import_walk(info, im, btk_import_parse);
	if (err < 0)
		goto free;
	/* one array for every chunk of every connection */
	for (i = 0; i < n; i++)
		for (q = 0; q < BTK_NR_QUEUES; q++)
			chunks += im->c[i].nvec[q];
	im->vec = kvcalloc(max(chunks, 1UL), sizeof(struct kvec), GFP_KERNEL);
	if (!im->vec) {
		err = -ENOMEM;
		goto free;
	}
	for (i = 0, chunks = 0; i < n; i++) {
		for (q = 0; q < BTK_NR_QUEUES; q++) {
			struct btk_conn_in *ci = &im->c[i];

			ci->vec[q] = im->vec + chunks;
			chunks += ci->nvec[q];
			ci->nvec[q] = 0;
		}
	}
	btk_import_walk(info, im, btk_import_chunks);
	for (i = 0; i < n; i++) {
		err = btk_import_check(info, &im->c[i]);
		if (err)
			goto bad_conn;
	}

	reply = genlmsg_new(GENL_HDRLEN + n * BTK_IMPORT_REPLY_CONN,
			    GFP_KERNEL);
	if (!reply) {
		err = -ENOMEM;
		goto free;
	}
	for (i = 0; i < n; i++) {
		err = get_unused_fd_flags(O_CLOEXEC);
		if (err < 0) {
			GENL_SET_ERR_MSG(info, "no descriptor left for a connection");
			goto bad_conn;
		}
		im->c[i].fd = err;
	}
	/* all in repair mode first: until then, any failure is silent */
	for (i = 0; i < n; i++) {
		err = btk_conn_build(net, &im->c[i], flags, info->extack);
		if (err)
			goto bad_conn;
	}
	for (i = 0; i < n; i++)
		btk_conn_finish(&im->c[i], flags);

	hdr = genlmsg_put_reply(reply, info, btk_genl_family(), 0,
				BATON_GENL_CMD_CONN_IMPORT);
	if (!hdr || btk_import_reply(reply, im)) {
		err = -EMSGSIZE;	/* cannot be: it was sized for them */
		goto free;
	}
	genlmsg_end(reply, hdr);
	for (i = 0; i < n; i++) {
		struct btk_conn_in *ci = &im->c[i];

		if (ci->err)
			continue;
		fd_install(ci->fd, ci->file);
		ci->fd = -1;
		ci->file = NULL;
	}
	btk_import_free(im);
	return genlmsg_reply(reply, info);

bad_conn:
	/* the connection at fault, by its first part */
	if (i < n && !info->extack->bad_attr)
		NL_SET_BAD_ATTR(info->extack, im->c[i].first);
free:
	nlmsg_free(reply);
	btk_import_free(im);
	return err;
}
