// SPDX-License-Identifier: GPL-2.0
/*
 * The "baton" generic netlink family: one policy for every command, the
 * caller needs CAP_NET_ADMIN in the user namespace owning its netns, and
 * the sockets must live in that netns.
 */
#include <linux/file.h>
#include <linux/net.h>
#include <net/genetlink.h>
#include <net/ipv6.h>
#include <net/tcp.h>
#include "internal.h"

static struct netlink_range_validation btk_fd_range = {
	.max = INT_MAX,
};

/* the widest window: keeps tcp_snd_cwnd_set() away from its WARN_ON */
static struct netlink_range_validation btk_cwnd_range = {
	.min = 1, .max = BATON_CWND_MAX,
};

static struct netlink_range_validation btk_ssthresh_range = {
	.min = 2, .max = TCP_INFINITE_SSTHRESH,
};

static struct netlink_range_validation btk_time_range = {
	.max = BATON_TIME_MAX_US,
};

static struct netlink_range_validation btk_rtt_min_range = {
	.min = 1, .max = BATON_TIME_MAX_US,
};

static struct netlink_range_validation btk_rto_range = {
	.min = USEC_PER_MSEC, .max = BATON_TIME_MAX_US,
};

static struct netlink_range_validation btk_deadline_range = {
	.min = 1, .max = BATON_DEADLINE_MAX_MS,
};

static struct netlink_range_validation btk_flow_packets_range = {
	.min = 1, .max = BATON_FLOW_PACKETS_MAX,
};

static struct netlink_range_validation btk_flow_bytes_range = {
	.min = 1, .max = BATON_FLOW_BYTES_MAX,
};

static const struct nla_policy btk_flow_policy[BATON_FLOW_A_MAX + 1] = {
	[BATON_FLOW_A_FD]	= NLA_POLICY_FULL_RANGE(NLA_U32, &btk_fd_range),
	[BATON_FLOW_A_LOCAL]	= NLA_POLICY_RANGE(NLA_BINARY,
						   sizeof(struct sockaddr_in),
						   sizeof(struct sockaddr_in6)),
	[BATON_FLOW_A_PEER]	= NLA_POLICY_RANGE(NLA_BINARY,
						   sizeof(struct sockaddr_in),
						   sizeof(struct sockaddr_in6)),
};

/*
 * The congestion and RTT state: top-level attributes of TCP_IMPORT, and
 * the attributes of a connection's STATE nest.
 */
#define BTK_STATE_POLICY						\
	[BATON_GENL_A_CWND]	   = NLA_POLICY_FULL_RANGE(NLA_U32, &btk_cwnd_range), \
	[BATON_GENL_A_SSTHRESH]	   = NLA_POLICY_FULL_RANGE(NLA_U32, &btk_ssthresh_range), \
	/* CUBIC keeps it up to 100 windows: the import cuts it to one */ \
	[BATON_GENL_A_CWND_CNT]	   = { .type = NLA_U32 },		\
	/* 0 would reach tcp_cwnd_reduction()'s WARN in CWR or Recovery */ \
	[BATON_GENL_A_PRIOR_CWND]  = NLA_POLICY_FULL_RANGE(NLA_U32, &btk_cwnd_range), \
	[BATON_GENL_A_SRTT_US]	   = NLA_POLICY_FULL_RANGE(NLA_U32, &btk_time_range), \
	[BATON_GENL_A_MDEV_US]	   = NLA_POLICY_FULL_RANGE(NLA_U32, &btk_time_range), \
	[BATON_GENL_A_MDEV_MAX_US] = NLA_POLICY_FULL_RANGE(NLA_U32, &btk_time_range), \
	[BATON_GENL_A_RTTVAR_US]   = NLA_POLICY_FULL_RANGE(NLA_U32, &btk_time_range), \
	[BATON_GENL_A_RTT_MIN_US]  = NLA_POLICY_FULL_RANGE(NLA_U32, &btk_rtt_min_range), \
	[BATON_GENL_A_RTO_US]	   = NLA_POLICY_FULL_RANGE(NLA_U32, &btk_rto_range)

static const struct nla_policy btk_state_policy[BATON_GENL_A_STATE_LAST + 1] = {
	BTK_STATE_POLICY,
};

/* U16_MAX does not fit the policy's own s16 bounds */
static struct netlink_range_validation btk_mss_range = {
	.min = 1, .max = U16_MAX,
};

static struct netlink_range_validation btk_queue_range = {
	.max = BATON_CONN_QUEUE_MAX,
};

#define BTK_SOCKADDR_POLICY						\
	NLA_POLICY_RANGE(NLA_BINARY, sizeof(struct sockaddr_in),	\
			 sizeof(struct sockaddr_in6))

const struct nla_policy btk_conn_policy[BATON_CONN_A_MAX + 1] = {
	[BATON_CONN_A_INDEX]	  = { .type = NLA_U32 },
	/* an import ignores them: an exported record imports as it is */
	[BATON_CONN_A_FD]	  = { .type = NLA_U32 },
	[BATON_CONN_A_ERROR]	  = { .type = NLA_U32 },
	[BATON_CONN_A_LOCAL]	  = BTK_SOCKADDR_POLICY,
	[BATON_CONN_A_PEER]	  = BTK_SOCKADDR_POLICY,
	[BATON_CONN_A_SND_SEQ]	  = { .type = NLA_U32 },
	[BATON_CONN_A_RCV_SEQ]	  = { .type = NLA_U32 },
	[BATON_CONN_A_MSS]	  = NLA_POLICY_FULL_RANGE(NLA_U32, &btk_mss_range),
	[BATON_CONN_A_OPTIONS]	  = NLA_POLICY_MASK(NLA_U32, TCPI_OPT_TIMESTAMPS |
						    TCPI_OPT_SACK |
						    TCPI_OPT_WSCALE |
						    TCPI_OPT_ECN),
	[BATON_CONN_A_SND_WSCALE] = NLA_POLICY_MAX(NLA_U32, TCP_MAX_WSCALE),
	[BATON_CONN_A_RCV_WSCALE] = NLA_POLICY_MAX(NLA_U32, TCP_MAX_WSCALE),
	[BATON_CONN_A_TIMESTAMP]  = { .type = NLA_U32 },
	[BATON_CONN_A_WINDOW]	  = NLA_POLICY_EXACT_LEN(sizeof(struct tcp_repair_window)),
	[BATON_CONN_A_SENDQ_LEN]  = NLA_POLICY_FULL_RANGE(NLA_U32, &btk_queue_range),
	[BATON_CONN_A_UNSENT_LEN] = NLA_POLICY_FULL_RANGE(NLA_U32, &btk_queue_range),
	[BATON_CONN_A_RECVQ_LEN]  = NLA_POLICY_FULL_RANGE(NLA_U32, &btk_queue_range),
	[BATON_CONN_A_SENDQ]	  = { .type = NLA_BINARY, .len = BATON_CONN_CHUNK_MAX },
	[BATON_CONN_A_UNSENT]	  = { .type = NLA_BINARY, .len = BATON_CONN_CHUNK_MAX },
	[BATON_CONN_A_RECVQ]	  = { .type = NLA_BINARY, .len = BATON_CONN_CHUNK_MAX },
	[BATON_CONN_A_STATE]	  = NLA_POLICY_NESTED(btk_state_policy),
	[BATON_CONN_A_PEER_FIN]	  = { .type = NLA_FLAG },
};

static const struct nla_policy btk_genl_policy[BATON_GENL_A_MAX + 1] = {
	[BATON_GENL_A_FD]	   = NLA_POLICY_FULL_RANGE(NLA_U32, &btk_fd_range),
	[BATON_GENL_A_FLAGS]	   = NLA_POLICY_MASK(NLA_U32, BATON_IMPORT_F_ALL),
	BTK_STATE_POLICY,
	[BATON_GENL_A_FLOW]	   = NLA_POLICY_NESTED(btk_flow_policy),
	[BATON_GENL_A_FREEZE_ID]   = NLA_POLICY_MIN(NLA_U32, 1),
	[BATON_GENL_A_DEADLINE_MS] = NLA_POLICY_FULL_RANGE(NLA_U32, &btk_deadline_range),
	[BATON_GENL_A_FLOW_PACKETS] = NLA_POLICY_FULL_RANGE(NLA_U32, &btk_flow_packets_range),
	[BATON_GENL_A_FLOW_BYTES]  = NLA_POLICY_FULL_RANGE(NLA_U32, &btk_flow_bytes_range),
	[BATON_GENL_A_CONN]	   = NLA_POLICY_NESTED(btk_conn_policy),
	[BATON_GENL_A_PORT]	   = NLA_POLICY_NESTED(btk_flow_policy),
	[BATON_GENL_A_NETNS_FD]	   = NLA_POLICY_FULL_RANGE(NLA_U32, &btk_fd_range),
	[BATON_GENL_A_IFINDEX]	   = NLA_POLICY_MIN(NLA_U32, 1),
};

static struct genl_family btk_family;

const struct genl_family *btk_genl_family(void)
{
	return &btk_family;
}

/*
 * The caller's TCP socket an FD attribute names, in the namespace of the
 * request, with a file reference.
 */
int btk_genl_socket(struct net *net, struct netlink_ext_ack *extack,
		    const struct nlattr *fd_attr, struct socket **sockp)
{
	struct socket *sock;
	struct sock *sk;
	int err;

	sock = sockfd_lookup(nla_get_u32(fd_attr), &err);
	if (!sock) {
		NL_SET_ERR_MSG_ATTR(extack, fd_attr,
				    "not an open socket of the caller");
		return err;
	}
	sk = sock->sk;
	if (!sk || sk->sk_type != SOCK_STREAM ||
	    sk->sk_protocol != IPPROTO_TCP ||
	    (sk->sk_family != AF_INET && sk->sk_family != AF_INET6)) {
		NL_SET_ERR_MSG_ATTR(extack, fd_attr, "not a TCP socket");
		err = -EPROTOTYPE;
		goto put_sock;
	}
	if (!net_eq(sock_net(sk), net)) {
		NL_SET_ERR_MSG_ATTR(extack, fd_attr,
				    "socket belongs to another network namespace");
		err = -EXDEV;
		goto put_sock;
	}
	*sockp = sock;
	return 0;

put_sock:
	sockfd_put(sock);
	return err;
}

/*
 * A value within the range the policy gives its attribute: an export
 * never produces a record its import refuses.
 */
static u32 btk_genl_clamp(int attr, u32 v)
{
	const struct nla_policy *pt = &btk_genl_policy[attr];

	if (pt->validation_type != NLA_VALIDATE_RANGE_PTR)
		return v;
	return clamp_t(u64, v, pt->range->min, pt->range->max);
}

/* Every state attribute an export found, within the policy's ranges */
int btk_genl_put_state(struct sk_buff *msg, const struct btk_tcp_state *st)
{
	int attr;

	for (attr = BATON_GENL_A_STATE_FIRST;
	     attr <= BATON_GENL_A_STATE_LAST; attr++) {
		if (btk_tcp_has(st, attr) &&
		    nla_put_u32(msg, attr,
				btk_genl_clamp(attr, st->val[attr])))
			return -EMSGSIZE;
	}
	return 0;
}

/* The state attributes of a nest of a request (the policy checked them) */
int btk_genl_state_parse(const struct nlattr *nest, struct btk_tcp_state *st,
			 struct netlink_ext_ack *extack)
{
	struct nlattr *tb[BATON_GENL_A_STATE_LAST + 1];
	int attr, err;

	err = nla_parse_nested(tb, BATON_GENL_A_STATE_LAST, nest, NULL, extack);
	if (err)
		return err;
	for (attr = BATON_GENL_A_STATE_FIRST;
	     attr <= BATON_GENL_A_STATE_LAST; attr++)
		if (tb[attr])
			btk_tcp_set(st, attr, nla_get_u32(tb[attr]));
	return 0;
}

/*
 * FLAGS is CONN_IMPORT's: the policy knows its bits, so every other
 * command refuses it here, a bit set or not
 */
static int btk_genl_no_flags(struct genl_info *info)
{
	if (!info->attrs[BATON_GENL_A_FLAGS])
		return 0;
	NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[BATON_GENL_A_FLAGS],
			    "only CONN_IMPORT takes flags");
	return -EINVAL;
}

static int btk_genl_tcp_export(struct sk_buff *skb, struct genl_info *info)
{
	struct btk_tcp_state st = {};
	struct socket *sock;
	struct sk_buff *reply;
	void *hdr;
	int err;

	if (btk_genl_no_flags(info))
		return -EINVAL;
	if (GENL_REQ_ATTR_CHECK(info, BATON_GENL_A_FD))
		return -EINVAL;
	err = btk_genl_socket(genl_info_net(info), info->extack,
			      info->attrs[BATON_GENL_A_FD], &sock);
	if (err)
		return err;
	err = btk_tcp_export(sock->sk, &st, info->extack);
	if (err)
		goto put_sock;

	reply = genlmsg_new(nla_total_size(sizeof(u32)) * BATON_GENL_A_MAX,
			    GFP_KERNEL);
	if (!reply) {
		err = -ENOMEM;
		goto put_sock;
	}
	hdr = genlmsg_put_reply(reply, info, &btk_family, 0,
				BATON_GENL_CMD_TCP_EXPORT);
	if (!hdr ||
	    nla_put_u32(reply, BATON_GENL_A_FD,
			nla_get_u32(info->attrs[BATON_GENL_A_FD])) ||
	    btk_genl_put_state(reply, &st)) {
		err = -EMSGSIZE;
		goto free_reply;
	}
	genlmsg_end(reply, hdr);
	sockfd_put(sock);
	return genlmsg_reply(reply, info);

free_reply:
	nlmsg_free(reply);
put_sock:
	sockfd_put(sock);
	return err;
}

static int btk_genl_tcp_import(struct sk_buff *skb, struct genl_info *info)
{
	struct btk_tcp_state st = {};
	struct socket *sock;
	int attr, err;

	for (attr = BATON_GENL_A_STATE_FIRST;
	     attr <= BATON_GENL_A_STATE_LAST; attr++)
		if (info->attrs[attr])
			btk_tcp_set(&st, attr, nla_get_u32(info->attrs[attr]));
	if (!st.present) {
		GENL_SET_ERR_MSG(info, "no TCP state attribute to import");
		return -EINVAL;
	}
	if (btk_genl_no_flags(info))
		return -EINVAL;

	if (GENL_REQ_ATTR_CHECK(info, BATON_GENL_A_FD))
		return -EINVAL;
	err = btk_genl_socket(genl_info_net(info), info->extack,
			      info->attrs[BATON_GENL_A_FD], &sock);
	if (err)
		return err;
	err = btk_tcp_import(sock->sk, &st, info->extack);
	sockfd_put(sock);
	return err;
}

/* A tuple from a FLOW's LOCAL and PEER: one family, no wildcard */
static int btk_genl_addrs(struct genl_info *info, struct nlattr **tb,
			  struct btk_tuple *t)
{
	int a;

	memset(t, 0, sizeof(*t));
	for (a = BATON_FLOW_A_LOCAL; a <= BATON_FLOW_A_PEER; a++) {
		const struct sockaddr_in6 *sin6 = nla_data(tb[a]);
		const struct sockaddr_in *sin = nla_data(tb[a]);
		struct in6_addr *addr = a == BATON_FLOW_A_LOCAL ?
					&t->local : &t->peer;
		__be16 *port = a == BATON_FLOW_A_LOCAL ? &t->lport : &t->pport;
		u32 family;

		if (nla_len(tb[a]) == sizeof(*sin) &&
		    sin->sin_family == AF_INET) {
			family = AF_INET;
			ipv6_addr_set_v4mapped(sin->sin_addr.s_addr, addr);
			*port = sin->sin_port;
		} else if (nla_len(tb[a]) == sizeof(*sin6) &&
			   sin6->sin6_family == AF_INET6) {
			*addr = sin6->sin6_addr;
			*port = sin6->sin6_port;
			/* IPv4 segments arrive for a v4-mapped one */
			family = ipv6_addr_v4mapped(addr) ? AF_INET : AF_INET6;
		} else {
			NL_SET_ERR_MSG_ATTR(info->extack, tb[a],
					    "not a struct sockaddr_in or sockaddr_in6");
			return -EINVAL;
		}
		if (a == BATON_FLOW_A_PEER && family != t->family) {
			NL_SET_ERR_MSG_ATTR(info->extack, tb[a],
					    "addresses of two families");
			return -EAFNOSUPPORT;
		}
		t->family = family;
		if (!*port || ipv6_addr_any(addr) ||
		    (family == AF_INET && !addr->s6_addr32[3])) {
			NL_SET_ERR_MSG_ATTR(info->extack, tb[a],
					    "a wildcard address or port 0 names no connection");
			return -EINVAL;
		}
	}
	return 0;
}

/*
 * The tuple a FLOW names, which the caller must hold: FD is the
 * connection of that tuple, or a listener its segments arrive at.
 */
static int btk_genl_flow(struct genl_info *info, const struct nlattr *flow,
			 struct btk_tuple *t)
{
	struct nlattr *tb[BATON_FLOW_A_MAX + 1];
	struct socket *sock;
	int err;

	/* the family's policy checked every nest of the request */
	err = nla_parse_nested(tb, BATON_FLOW_A_MAX, flow, NULL, info->extack);
	if (err)
		return err;
	if (NL_REQ_ATTR_CHECK(info->extack, flow, tb, BATON_FLOW_A_FD))
		return -EINVAL;
	if (!tb[BATON_FLOW_A_LOCAL] != !tb[BATON_FLOW_A_PEER]) {
		NL_SET_ERR_MSG_ATTR(info->extack, flow,
				    "a flow names both its addresses, or neither");
		return -EINVAL;
	}
	if (tb[BATON_FLOW_A_LOCAL]) {
		err = btk_genl_addrs(info, tb, t);
		if (err)
			return err;
	}
	err = btk_genl_socket(genl_info_net(info), info->extack,
			      tb[BATON_FLOW_A_FD], &sock);
	if (err)
		return err;
	if (!tb[BATON_FLOW_A_LOCAL]) {
		err = btk_sock_tuple(sock->sk, t);
		if (err)
			NL_SET_ERR_MSG_ATTR(info->extack, tb[BATON_FLOW_A_FD],
					    "socket is not connected: name the flow's addresses");
	} else if (!btk_sock_holds(sock->sk, t)) {
		NL_SET_ERR_MSG_ATTR(info->extack, tb[BATON_FLOW_A_FD],
				    "socket does not hold the flow: neither its connection nor a listener on its local address");
		err = -EPERM;
	}
	sockfd_put(sock);
	return err;
}

/*
 * The keys a PORT names: its LOCAL (an address or the wildcard, and a
 * port), of a listener of the caller's, FD, that receives there; and for
 * an IPv6 wildcard on a listener that takes IPv4 too, IPv4's wildcard.
 * Returns how many (1 or 2), or -errno.
 */
static int btk_genl_port(struct genl_info *info, const struct nlattr *port,
			 struct btk_tuple *t)
{
	struct nlattr *tb[BATON_FLOW_A_MAX + 1];
	const struct sockaddr_in6 *sin6;
	const struct sockaddr_in *sin;
	struct socket *sock;
	int err, n = 1;

	err = nla_parse_nested(tb, BATON_FLOW_A_MAX, port, NULL, info->extack);
	if (err)
		return err;
	if (NL_REQ_ATTR_CHECK(info->extack, port, tb, BATON_FLOW_A_FD) ||
	    NL_REQ_ATTR_CHECK(info->extack, port, tb, BATON_FLOW_A_LOCAL))
		return -EINVAL;
	if (tb[BATON_FLOW_A_PEER]) {
		NL_SET_ERR_MSG_ATTR(info->extack, tb[BATON_FLOW_A_PEER],
				    "a port names no peer: it holds every new connection's SYN");
		return -EINVAL;
	}
	memset(t, 0, sizeof(*t));
	sin = nla_data(tb[BATON_FLOW_A_LOCAL]);
	sin6 = nla_data(tb[BATON_FLOW_A_LOCAL]);
	if (nla_len(tb[BATON_FLOW_A_LOCAL]) == sizeof(*sin) &&
	    sin->sin_family == AF_INET) {
		t->family = AF_INET;
		ipv6_addr_set_v4mapped(sin->sin_addr.s_addr, &t->local);
		t->lport = sin->sin_port;
	} else if (nla_len(tb[BATON_FLOW_A_LOCAL]) == sizeof(*sin6) &&
		   sin6->sin6_family == AF_INET6) {
		t->local = sin6->sin6_addr;
		t->lport = sin6->sin6_port;
		t->family = ipv6_addr_v4mapped(&t->local) ? AF_INET : AF_INET6;
	} else {
		NL_SET_ERR_MSG_ATTR(info->extack, tb[BATON_FLOW_A_LOCAL],
				    "not a struct sockaddr_in or sockaddr_in6");
		return -EINVAL;
	}
	if (!t->lport) {
		NL_SET_ERR_MSG_ATTR(info->extack, tb[BATON_FLOW_A_LOCAL],
				    "port 0 names no listener");
		return -EINVAL;
	}
	err = btk_genl_socket(genl_info_net(info), info->extack,
			      tb[BATON_FLOW_A_FD], &sock);
	if (err)
		return err;
	if (sock->sk->sk_state != TCP_LISTEN) {
		NL_SET_ERR_MSG_ATTR(info->extack, tb[BATON_FLOW_A_FD],
				    "not a listening socket: a port is held through its listener");
		err = -EINVAL;
	} else if (!btk_sock_holds(sock->sk, t)) {
		NL_SET_ERR_MSG_ATTR(info->extack, tb[BATON_FLOW_A_FD],
				    "the listener does not receive at this address and port");
		err = -EPERM;
	} else if (t->family == AF_INET6 && ipv6_addr_any(&t->local)) {
		t[1] = t[0];
		t[1].family = AF_INET;
		ipv6_addr_set_v4mapped(0, &t[1].local);
		n += btk_sock_holds(sock->sk, &t[1]);
	}
	sockfd_put(sock);
	return err ?: n;
}

static int btk_genl_put_stats(struct sk_buff *msg, const struct btk_stats *st)
{
	struct nlattr *nest;
	int a;

	nest = nla_nest_start(msg, BATON_GENL_A_STATS);
	if (!nest)
		return -EMSGSIZE;
	for (a = BATON_STATS_A_PAD + 1; a <= BATON_STATS_A_MAX; a++)
		if ((st->present & BIT(a)) &&
		    nla_put_u64_64bit(msg, a, st->val[a], BATON_STATS_A_PAD))
			return -EMSGSIZE;
	nla_nest_end(msg, nest);
	return 0;
}

static int btk_genl_freeze(struct sk_buff *skb, struct genl_info *info)
{
	struct btk_freeze_opts o = {};
	const struct nlattr *attr, **flows;
	struct btk_tuple *t = NULL;
	struct sk_buff *reply;
	u32 n = 0, i, id, bad;
	void *hdr;
	int rem, err;

	if (btk_genl_no_flags(info))
		return -EINVAL;
	if (!info->attrs[BATON_GENL_A_FLOW] && !info->attrs[BATON_GENL_A_PORT]) {
		GENL_SET_ERR_MSG(info, "no flow or port to freeze");
		return -EINVAL;
	}
	if (GENL_REQ_ATTR_CHECK(info, BATON_GENL_A_DEADLINE_MS)) {
		GENL_SET_ERR_MSG(info,
				 "no deadline: a freeze must end on its own");
		return -EINVAL;
	}
	o.deadline_ms = nla_get_u32(info->attrs[BATON_GENL_A_DEADLINE_MS]);
	if (info->attrs[BATON_GENL_A_FLOW_PACKETS])
		o.flow_packets = nla_get_u32(info->attrs[BATON_GENL_A_FLOW_PACKETS]);
	if (info->attrs[BATON_GENL_A_FLOW_BYTES])
		o.flow_bytes = nla_get_u32(info->attrs[BATON_GENL_A_FLOW_BYTES]);

	/* a PORT may name two keys (see btk_genl_port()) */
	nlmsg_for_each_attr(attr, info->nlhdr, GENL_HDRLEN, rem)
		if (nla_type(attr) == BATON_GENL_A_FLOW)
			n++;
		else if (nla_type(attr) == BATON_GENL_A_PORT)
			n += 2;
	flows = kvcalloc(n, sizeof(*flows), GFP_KERNEL);
	t = kvcalloc(n, sizeof(*t), GFP_KERNEL);
	reply = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!flows || !t || !reply) {
		err = -ENOMEM;
		goto free;
	}
	i = 0;
	nlmsg_for_each_attr(attr, info->nlhdr, GENL_HDRLEN, rem) {
		int keys = 1;

		if (nla_type(attr) == BATON_GENL_A_FLOW)
			err = btk_genl_flow(info, attr, &t[i]);
		else if (nla_type(attr) == BATON_GENL_A_PORT)
			err = keys = btk_genl_port(info, attr, &t[i]);
		else
			continue;
		if (err < 0)
			goto free;
		while (keys--)
			flows[i++] = attr;
	}
	n = i;
	/* the reply is made first: a freeze the caller cannot name is lost */
	hdr = genlmsg_put_reply(reply, info, &btk_family, 0,
				BATON_GENL_CMD_FREEZE);
	if (!hdr) {
		err = -EMSGSIZE;
		goto free;
	}
	err = btk_freeze(genl_info_net(info), t, n, &o, &id, &bad,
			 info->extack);
	if (err) {
		if (err == -EBUSY)
			NL_SET_BAD_ATTR(info->extack, flows[bad]);
		goto free;
	}
	/* a u32 always fits in NLMSG_GOODSIZE */
	nla_put_u32(reply, BATON_GENL_A_FREEZE_ID, id);
	genlmsg_end(reply, hdr);
	kvfree(t);
	kvfree(flows);
	return genlmsg_reply(reply, info);

free:
	nlmsg_free(reply);
	kvfree(t);
	kvfree(flows);
	return err;
}

/*
 * THAW's NETNS_FD and IFINDEX: the device, held, whose namespace the
 * caller administers; NULL with neither; an ERR_PTR with its reason.
 */
static struct net_device *btk_genl_thaw_into(struct sk_buff *skb,
					     struct genl_info *info)
{
	struct nlattr *nsattr = info->attrs[BATON_GENL_A_NETNS_FD];
	struct nlattr *ifattr = info->attrs[BATON_GENL_A_IFINDEX];
	struct net_device *dev;
	struct net *net;

	if (!nsattr && !ifattr)
		return NULL;
	if (!nsattr || !ifattr) {
		NL_SET_ERR_MSG_ATTR(info->extack, nsattr ?: ifattr,
				    "NETNS_FD and IFINDEX go together: the namespace and its device");
		return ERR_PTR(-EINVAL);
	}
	net = get_net_ns_by_fd(nla_get_u32(nsattr));
	if (IS_ERR(net)) {
		NL_SET_ERR_MSG_ATTR(info->extack, nsattr,
				    "not a network namespace's file descriptor");
		return ERR_CAST(net);
	}
	if (!netlink_ns_capable(skb, net->user_ns, CAP_NET_ADMIN)) {
		NL_SET_ERR_MSG_ATTR(info->extack, nsattr,
				    "no CAP_NET_ADMIN over that network namespace");
		dev = ERR_PTR(-EPERM);
		goto put_net;
	}
	if (net_eq(net, genl_info_net(info))) {
		NL_SET_ERR_MSG_ATTR(info->extack, nsattr,
				    "the freeze's own network namespace: thaw without NETNS_FD");
		dev = ERR_PTR(-EINVAL);
		goto put_net;
	}
	dev = dev_get_by_index(net, nla_get_u32(ifattr));
	if (!dev) {
		NL_SET_ERR_MSG_ATTR(info->extack, ifattr,
				    "no such device in that network namespace");
		dev = ERR_PTR(-ENODEV);
		goto put_net;
	}
	/* a port of a bridge or bond would take the segments for frames */
	if (!netif_running(dev)) {
		NL_SET_ERR_MSG_ATTR(info->extack, ifattr, "that device is down");
		dev_put(dev);
		dev = ERR_PTR(-ENETDOWN);
	} else if (rcu_access_pointer(dev->rx_handler)) {
		NL_SET_ERR_MSG_ATTR(info->extack, ifattr,
				    "that device is a port of another (bridge, bond, macvlan): name the one above it");
		dev_put(dev);
		dev = ERR_PTR(-EINVAL);
	}
put_net:
	put_net(net);
	return dev;
}

static int btk_genl_thaw(struct sk_buff *skb, struct genl_info *info)
{
	struct btk_stats st = {};
	struct net_device *into;
	struct sk_buff *reply;
	void *hdr;
	u32 id;
	int err;

	if (btk_genl_no_flags(info))
		return -EINVAL;
	if (GENL_REQ_ATTR_CHECK(info, BATON_GENL_A_FREEZE_ID)) {
		GENL_SET_ERR_MSG(info, "no freeze id to thaw");
		return -EINVAL;
	}
	id = nla_get_u32(info->attrs[BATON_GENL_A_FREEZE_ID]);
	into = btk_genl_thaw_into(skb, info);
	if (IS_ERR(into))
		return PTR_ERR(into);
	reply = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!reply) {
		err = -ENOMEM;
		goto put_into;
	}
	hdr = genlmsg_put_reply(reply, info, &btk_family, 0,
				BATON_GENL_CMD_THAW);
	if (!hdr) {
		err = -EMSGSIZE;
		goto free_reply;
	}
	err = btk_thaw(genl_info_net(info), id, into, &st, info->extack);
	if (err)
		goto free_reply;
	if (into)
		dev_put(into);
	if (nla_put_u32(reply, BATON_GENL_A_FREEZE_ID, id) ||
	    btk_genl_put_stats(reply, &st)) {
		nlmsg_free(reply);
		return -EMSGSIZE;	/* thawed all the same */
	}
	genlmsg_end(reply, hdr);
	return genlmsg_reply(reply, info);

free_reply:
	nlmsg_free(reply);
put_into:
	if (into)
		dev_put(into);
	return err;
}

static int btk_genl_freeze_stats(struct sk_buff *skb, struct genl_info *info)
{
	struct btk_stats st = {};
	struct sk_buff *reply;
	void *hdr;

	if (btk_genl_no_flags(info))
		return -EINVAL;
	reply = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!reply)
		return -ENOMEM;
	hdr = genlmsg_put_reply(reply, info, &btk_family, 0,
				BATON_GENL_CMD_FREEZE_STATS);
	btk_freeze_stats(genl_info_net(info), &st);
	if (!hdr || btk_genl_put_stats(reply, &st)) {
		nlmsg_free(reply);
		return -EMSGSIZE;
	}
	genlmsg_end(reply, hdr);
	return genlmsg_reply(reply, info);
}

static const struct genl_small_ops btk_genl_ops[] = {
	{
		.cmd	= BATON_GENL_CMD_TCP_EXPORT,
		.flags	= GENL_UNS_ADMIN_PERM,
		.doit	= btk_genl_tcp_export,
	},
	{
		.cmd	= BATON_GENL_CMD_TCP_IMPORT,
		.flags	= GENL_UNS_ADMIN_PERM,
		.doit	= btk_genl_tcp_import,
	},
	{
		.cmd	= BATON_GENL_CMD_FREEZE,
		.flags	= GENL_UNS_ADMIN_PERM,
		.doit	= btk_genl_freeze,
	},
	{
		.cmd	= BATON_GENL_CMD_THAW,
		.flags	= GENL_UNS_ADMIN_PERM,
		.doit	= btk_genl_thaw,
	},
	{
		.cmd	= BATON_GENL_CMD_FREEZE_STATS,
		.flags	= GENL_UNS_ADMIN_PERM,
		.doit	= btk_genl_freeze_stats,
	},
	{
		.cmd	= BATON_GENL_CMD_CONN_IMPORT,
		.flags	= GENL_UNS_ADMIN_PERM,
		.doit	= btk_conn_import_doit,
	},
};

static const struct genl_ops btk_genl_full_ops[] = {
	{
		.cmd	= BATON_GENL_CMD_CONN_EXPORT,
		.flags	= GENL_UNS_ADMIN_PERM,
		.start	= btk_conn_export_start,
		.dumpit	= btk_conn_export_dumpit,
		.done	= btk_conn_export_done,
	},
};

static struct genl_family btk_family __ro_after_init = {
	.name		= BATON_GENL_NAME,
	.version	= BATON_GENL_VERSION,
	.maxattr	= BATON_GENL_A_MAX,
	.policy		= btk_genl_policy,
	.netnsok	= true,
	/*
	 * No genl_mutex around our commands: a caller's threads import
	 * (and export) their parts side by side. Each command works on the
	 * caller's own sockets, under their locks; the freeze's table has
	 * its own mutex (freeze.c).
	 */
	.parallel_ops	= true,
	.module		= THIS_MODULE,
	.small_ops	= btk_genl_ops,
	.n_small_ops	= ARRAY_SIZE(btk_genl_ops),
	.ops		= btk_genl_full_ops,
	.n_ops		= ARRAY_SIZE(btk_genl_full_ops),
};

int __init btk_genl_register(void)
{
	return genl_register_family(&btk_family);
}

void btk_genl_unregister(void)
{
	genl_unregister_family(&btk_family);
}
