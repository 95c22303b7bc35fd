// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * One connection of baton.ko's bulk record (CONN_EXPORT: CONN nests of one
 * INDEX) rewritten as a checkpoint record of checkpoint.c, which
 * tcp_restore_into() rebuilds in a socket the caller already has: the
 * handover's rollback puts a connection back into the very socket the
 * application holds, where the module's import would make a new one.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <linux/baton.h>
#include "tcp/tcp.h"

struct conv {
	struct tcp_ckpt c;
	char *sendq, *recvq;		/* sent then unsent; received */
	size_t sendq_cap, sendq_got, unsent_got, recvq_got;
	__u32 sendq_len, unsent_len, recvq_len;
	bool have[BATON_CONN_A_MAX + 1];
	int err;
};

static int conn_u32(const struct nlattr *a, __u32 *v)
{
	if (mnl_attr_get_payload_len(a) != sizeof(__u32))
		return -EINVAL;
	*v = mnl_attr_get_u32(a);
	return 0;
}

static int conn_addr(const struct nlattr *a, struct sockaddr_storage *ss)
{
	size_t n = mnl_attr_get_payload_len(a);

	if (n != sizeof(struct sockaddr_in) && n != sizeof(struct sockaddr_in6))
		return -EINVAL;
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, mnl_attr_get_payload(a), n);
	return 0;
}

/* a queue's chunk, where its length (read first, in the first part) says */
static int chunk(char *buf, size_t *got, __u32 len, const struct nlattr *a)
{
	size_t n = mnl_attr_get_payload_len(a);

	if (!buf || *got + n > len)
		return -EINVAL;
	memcpy(buf + *got, mnl_attr_get_payload(a), n);
	*got += n;
	return 0;
}

/*
 * A queue's length: the first part's sizes the queues (conv_alloc()), and
 * a later part that says another would have its chunks overrun them
 */
static int conv_len(struct conv *v, const struct nlattr *a, __u32 *len)
{
	__u32 n;
	int err = conn_u32(a, &n);

	if (err)
		return err;
	if ((v->sendq || v->recvq) && n != *len)
		return -EINVAL;
	*len = n;
	return 0;
}

static int conv_attr(struct conv *v, const struct nlattr *a)
{
	struct tcp_ckpt *c = &v->c;
	__u16 type = mnl_attr_get_type(a);

	if (type > BATON_CONN_A_MAX)
		return 0;	/* newer than us */
	v->have[type] = true;
	switch (type) {
	case BATON_CONN_A_LOCAL:
		return conn_addr(a, &c->local);
	case BATON_CONN_A_PEER:
		return conn_addr(a, &c->peer);
	case BATON_CONN_A_SND_SEQ:
		return conn_u32(a, &c->snd_seq);
	case BATON_CONN_A_RCV_SEQ:
		return conn_u32(a, &c->rcv_seq);
	case BATON_CONN_A_MSS:
		return conn_u32(a, &c->mss);
	case BATON_CONN_A_OPTIONS:
		return conn_u32(a, &c->options);
	case BATON_CONN_A_SND_WSCALE:
		return conn_u32(a, &c->snd_wscale);
	case BATON_CONN_A_RCV_WSCALE:
		return conn_u32(a, &c->rcv_wscale);
	case BATON_CONN_A_TIMESTAMP:
		return conn_u32(a, &c->timestamp);
	case BATON_CONN_A_WINDOW:
		if (mnl_attr_get_payload_len(a) != sizeof(c->win))
			return -EINVAL;
		memcpy(&c->win, mnl_attr_get_payload(a), sizeof(c->win));
		return 0;
	case BATON_CONN_A_SENDQ_LEN:
		return conv_len(v, a, &v->sendq_len);
	case BATON_CONN_A_UNSENT_LEN:
		return conv_len(v, a, &v->unsent_len);
	case BATON_CONN_A_RECVQ_LEN:
		return conv_len(v, a, &v->recvq_len);
	case BATON_CONN_A_SENDQ:
		return chunk(v->sendq, &v->sendq_got, v->sendq_len, a);
	case BATON_CONN_A_UNSENT:
		if (v->sendq_got != v->sendq_len)
			return -EINVAL;	/* sent bytes come first */
		return chunk(v->sendq + v->sendq_len, &v->unsent_got,
			     v->unsent_len, a);
	case BATON_CONN_A_RECVQ:
		return chunk(v->recvq, &v->recvq_got, v->recvq_len, a);
	case BATON_CONN_A_PEER_FIN:
		c->peer_fin = true;
		return 0;
	case BATON_CONN_A_STATE:
		if (mnl_attr_get_payload_len(a) > KERNEL_REC_MAX)
			return -EINVAL;
		c->kernel = mnl_attr_get_payload(a);
		c->klen = mnl_attr_get_payload_len(a);
		return 0;
	default:
		return 0;
	}
}

/* The queues' room, once the first part said their lengths */
static int conv_alloc(struct conv *v)
{
	if (v->sendq || v->recvq)
		return 0;
	v->sendq = malloc((size_t)v->sendq_len + v->unsent_len + 1);
	v->recvq = malloc((size_t)v->recvq_len + 1);
	return v->sendq && v->recvq ? 0 : -ENOMEM;
}

int tcp_conn_check(const void *conn, size_t len, struct sockaddr_storage *local,
		   socklen_t *local_len, struct sockaddr_storage *peer,
		   socklen_t *peer_len)
{
	const struct nlattr *part, *a;
	long long index = -1;
	size_t off = 0;
	bool first;

	*local_len = *peer_len = 0;
	while (off < len) {
		part = (const void *)((const char *)conn + off);
		if (len - off < MNL_ATTR_HDRLEN ||
		    part->nla_len < MNL_ATTR_HDRLEN || part->nla_len > len - off ||
		    mnl_attr_get_type(part) != BATON_GENL_A_CONN)
			return -EINVAL;
		/* one connection's parts, all: none of another's */
		if (!off)
			index = tcp_conn_index(part);
		if (index < 0 || tcp_conn_index(part) != index)
			return -EINVAL;
		first = !off;
		off += MNL_ALIGN(part->nla_len);
		if (!first)
			continue;	/* the scalars are the first part's */
		mnl_attr_for_each_nested(a, part) {
			socklen_t n = mnl_attr_get_payload_len(a);

			if (mnl_attr_get_type(a) == BATON_CONN_A_LOCAL &&
			    !conn_addr(a, local))
				*local_len = n;
			else if (mnl_attr_get_type(a) == BATON_CONN_A_PEER &&
				 !conn_addr(a, peer))
				*peer_len = n;
		}
	}
	/* no addresses first: a continuation, its scalars lost */
	if (off != len || !*local_len || !*peer_len ||
	    local->ss_family != peer->ss_family)
		return -EINVAL;
	return 0;
}

/* tcp_conn_check(), its addresses those given: 0, -EINVAL, -EADDRNOTAVAIL */
static int tcp_conn_same(const void *conn, size_t len,
			 const struct sockaddr_storage *local,
			 socklen_t local_len,
			 const struct sockaddr_storage *peer,
			 socklen_t peer_len)
{
	struct sockaddr_storage l, p;
	socklen_t ll, pl;

	if (tcp_conn_check(conn, len, &l, &ll, &p, &pl))
		return -EINVAL;
	if (ll != local_len || pl != peer_len || memcmp(&l, local, ll) ||
	    memcmp(&p, peer, pl))
		return -EADDRNOTAVAIL;
	return 0;
}

/* Each part's INDEX made index: checked whole by tcp_conn_check() */
static void conn_renumber(void *conn, size_t len, __u32 index)
{
	struct nlattr *part, *a;
	size_t off;

	for (off = 0; off < len; off += MNL_ALIGN(part->nla_len)) {
		part = (void *)((char *)conn + off);
		mnl_attr_for_each_nested(a, part)
			if (mnl_attr_get_type(a) == BATON_CONN_A_INDEX &&
			    mnl_attr_get_payload_len(a) == sizeof(index))
				memcpy(mnl_attr_get_payload(a), &index,
				       sizeof(index));
	}
}

int tcp_ckpt_parse(const struct baton_rec *rec, struct ckpt_rec *c,
		   struct ckpt_data *d)
{
	int err = ckpt_parse(rec, c, d);

	if (err || c->format != BATON_CKPT_MODULE)
		return err;
	/* the addresses twice: the record's (the application's), baton.ko's */
	err = tcp_conn_same(d->buf + c->off, c->len, &c->local, c->local_len,
			    &c->peer, c->peer_len);
	if (err) {
		/* d as it was: refused, the record is none of it */
		d->len = c->off;
		d->records--;
		return err;
	}
	conn_renumber(d->buf + c->off, c->len, d->records - 1);
	return 0;
}

void tcp_conn_queues(const void *conn, size_t len, __u32 *sendq,
		     __u32 *unsent, __u32 *recvq)
{
	const struct nlattr *part, *a;
	size_t off = 0;

	*sendq = *unsent = *recvq = 0;
	while (len - off >= MNL_ATTR_HDRLEN) {
		part = (const void *)((const char *)conn + off);
		if (part->nla_len < MNL_ATTR_HDRLEN || part->nla_len > len - off)
			return;
		mnl_attr_for_each_nested(a, part) {
			__u32 v;

			if (conn_u32(a, &v))
				continue;
			switch (mnl_attr_get_type(a)) {
			case BATON_CONN_A_SENDQ_LEN:
				*sendq = v;
				break;
			case BATON_CONN_A_UNSENT_LEN:
				*unsent = v;
				break;
			case BATON_CONN_A_RECVQ_LEN:
				*recvq = v;
				break;
			}
		}
		off += MNL_ALIGN(part->nla_len);
	}
}

int tcp_conn_to_rec(struct baton_tcp *tcp, const void *conn, size_t len,
		    void **rec, size_t *rec_len)
{
	struct conv v = {};
	const char *p = conn;
	size_t off = 0;
	int err = 0;

	while (!err && off < len) {
		const struct nlattr *part = (const void *)(p + off), *a;

		if (len - off < MNL_ATTR_HDRLEN || part->nla_len < MNL_ATTR_HDRLEN ||
		    part->nla_len > len - off) {
			err = -EINVAL;
			break;
		}
		/* lengths first: they size the queues the chunks fill */
		mnl_attr_for_each_nested(a, part)
			if (!err && (mnl_attr_get_type(a) == BATON_CONN_A_SENDQ_LEN ||
				     mnl_attr_get_type(a) == BATON_CONN_A_UNSENT_LEN ||
				     mnl_attr_get_type(a) == BATON_CONN_A_RECVQ_LEN))
				err = conv_attr(&v, a);
		err = err ?: conv_alloc(&v);
		mnl_attr_for_each_nested(a, part)
			if (!err)
				err = conv_attr(&v, a);
		off += MNL_ALIGN(part->nla_len);
	}
	if (!err && (!v.have[BATON_CONN_A_LOCAL] || !v.have[BATON_CONN_A_PEER] ||
		     !v.have[BATON_CONN_A_SND_SEQ] || !v.have[BATON_CONN_A_RCV_SEQ] ||
		     !v.have[BATON_CONN_A_MSS] || !v.have[BATON_CONN_A_WINDOW] ||
		     v.sendq_got != v.sendq_len || v.unsent_got != v.unsent_len ||
		     v.recvq_got != v.recvq_len ||
		     v.c.local.ss_family != v.c.peer.ss_family))
		err = -EINVAL;
	if (err) {
		pr_err(&tcp->log, "baton.ko's record of a connection is malformed or incomplete");
		goto free_queues;
	}
	v.c.family = v.c.local.ss_family;
	v.c.sendq = v.sendq;
	v.c.sent = v.sendq_len;
	v.c.unsent = v.unsent_len;
	v.c.recvq = v.recvq;
	v.c.inq = v.recvq_len;
	err = tcp_rec_build(&v.c, rec, rec_len);
free_queues:
	free(v.sendq);
	free(v.recvq);
	return err;
}
