// SPDX-License-Identifier: GPL-2.0
/*
 * The "baton" generic netlink family: one policy for both commands, the
 * caller needs CAP_NET_ADMIN in the user namespace owning its netns, and
 * the socket must live in that netns.
 */
#include <linux/file.h>
#include <linux/net.h>
#include <net/genetlink.h>
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

static const struct nla_policy btk_genl_policy[BATON_GENL_A_MAX + 1] = {
	[BATON_GENL_A_FD]	   = NLA_POLICY_FULL_RANGE(NLA_U32, &btk_fd_range),
	[BATON_GENL_A_FLAGS]	   = NLA_POLICY_MASK(NLA_U32, 0),
	[BATON_GENL_A_CWND]	   = NLA_POLICY_FULL_RANGE(NLA_U32, &btk_cwnd_range),
	[BATON_GENL_A_SSTHRESH]	   = NLA_POLICY_FULL_RANGE(NLA_U32, &btk_ssthresh_range),
	/* CUBIC keeps it up to 100 windows: the import cuts it to one */
	[BATON_GENL_A_CWND_CNT]	   = { .type = NLA_U32 },
	/* 0 would reach tcp_cwnd_reduction()'s WARN in CWR or Recovery */
	[BATON_GENL_A_PRIOR_CWND]  = NLA_POLICY_FULL_RANGE(NLA_U32, &btk_cwnd_range),
	[BATON_GENL_A_SRTT_US]	   = NLA_POLICY_FULL_RANGE(NLA_U32, &btk_time_range),
	[BATON_GENL_A_MDEV_US]	   = NLA_POLICY_FULL_RANGE(NLA_U32, &btk_time_range),
	[BATON_GENL_A_MDEV_MAX_US] = NLA_POLICY_FULL_RANGE(NLA_U32, &btk_time_range),
	[BATON_GENL_A_RTTVAR_US]   = NLA_POLICY_FULL_RANGE(NLA_U32, &btk_time_range),
	[BATON_GENL_A_RTT_MIN_US]  = NLA_POLICY_FULL_RANGE(NLA_U32, &btk_rtt_min_range),
	[BATON_GENL_A_RTO_US]	   = NLA_POLICY_FULL_RANGE(NLA_U32, &btk_rto_range),
};

static struct genl_family btk_genl_family;

/* The caller's socket named by BATON_GENL_A_FD, with a file reference */
static int btk_genl_socket(struct genl_info *info, struct socket **sockp)
{
	struct nlattr *fd_attr = info->attrs[BATON_GENL_A_FD];
	struct socket *sock;
	struct sock *sk;
	int err;

	if (GENL_REQ_ATTR_CHECK(info, BATON_GENL_A_FD))
		return -EINVAL;

	sock = sockfd_lookup(nla_get_u32(fd_attr), &err);
	if (!sock) {
		NL_SET_ERR_MSG_ATTR(info->extack, fd_attr,
				    "not an open socket of the caller");
		return err;
	}
	sk = sock->sk;
	if (!sk || sk->sk_type != SOCK_STREAM ||
	    sk->sk_protocol != IPPROTO_TCP ||
	    (sk->sk_family != AF_INET && sk->sk_family != AF_INET6)) {
		NL_SET_ERR_MSG_ATTR(info->extack, fd_attr, "not a TCP socket");
		err = -EPROTOTYPE;
		goto put_sock;
	}
	if (!net_eq(sock_net(sk), genl_info_net(info))) {
		NL_SET_ERR_MSG_ATTR(info->extack, fd_attr,
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

/* FD as asked, then every state attribute the export found */
static int btk_genl_put_state(struct sk_buff *reply, struct genl_info *info,
			      const struct btk_tcp_state *st)
{
	int attr;

	if (nla_put_u32(reply, BATON_GENL_A_FD,
			nla_get_u32(info->attrs[BATON_GENL_A_FD])))
		return -EMSGSIZE;
	for (attr = BATON_GENL_A_STATE_FIRST;
	     attr <= BATON_GENL_A_STATE_LAST; attr++) {
		if (btk_tcp_has(st, attr) &&
		    nla_put_u32(reply, attr,
				btk_genl_clamp(attr, st->val[attr])))
			return -EMSGSIZE;
	}
	return 0;
}

static int btk_genl_tcp_export(struct sk_buff *skb, struct genl_info *info)
{
	struct btk_tcp_state st = {};
	struct socket *sock;
	struct sk_buff *reply;
	void *hdr;
	int err;

	err = btk_genl_socket(info, &sock);
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
	hdr = genlmsg_put_reply(reply, info, &btk_genl_family, 0,
				BATON_GENL_CMD_TCP_EXPORT);
	if (!hdr || btk_genl_put_state(reply, info, &st)) {
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

	err = btk_genl_socket(info, &sock);
	if (err)
		return err;
	err = btk_tcp_import(sock->sk, &st, info->extack);
	sockfd_put(sock);
	return err;
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
};

static struct genl_family btk_genl_family __ro_after_init = {
	.name		= BATON_GENL_NAME,
	.version	= BATON_GENL_VERSION,
	.maxattr	= BATON_GENL_A_MAX,
	.policy		= btk_genl_policy,
	.netnsok	= true,
	.module		= THIS_MODULE,
	.small_ops	= btk_genl_ops,
	.n_small_ops	= ARRAY_SIZE(btk_genl_ops),
};

int __init btk_genl_register(void)
{
	return genl_register_family(&btk_genl_family);
}

void btk_genl_unregister(void)
{
	genl_unregister_family(&btk_genl_family);
}
