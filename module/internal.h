/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _BTK_INTERNAL_H
#define _BTK_INTERNAL_H

#include <linux/types.h>
#include <net/genetlink.h>
#include <net/sock.h>
#include <linux/baton.h>

/*
 * One TCP state record: the value of each BATON_GENL_A_STATE_* attribute,
 * and a bit for each one present.
 */
struct btk_tcp_state {
	u32 present;
	u32 val[BATON_GENL_A_MAX + 1];
};

static inline bool btk_tcp_has(const struct btk_tcp_state *st, int attr)
{
	return st->present & BIT(attr);
}

static inline void btk_tcp_set(struct btk_tcp_state *st, int attr, u32 v)
{
	st->present |= BIT(attr);
	st->val[attr] = v;
}

/* the state of a locked socket; its segment size made anew */
void btk_tcp_read(struct sock *sk, struct btk_tcp_state *st);
void btk_tcp_resize(struct sock *sk);
int btk_tcp_export(struct sock *sk, struct btk_tcp_state *st,
		   struct netlink_ext_ack *extack);
int btk_tcp_import(struct sock *sk, const struct btk_tcp_state *st,
		   struct netlink_ext_ack *extack);

int btk_genl_register(void);
void btk_genl_unregister(void);
const struct genl_family *btk_genl_family(void);
int btk_genl_socket(struct net *net, struct netlink_ext_ack *extack,
		    const struct nlattr *fd_attr, struct socket **sockp);
int btk_genl_put_state(struct sk_buff *msg, const struct btk_tcp_state *st);
int btk_genl_state_parse(const struct nlattr *nest, struct btk_tcp_state *st,
			 struct netlink_ext_ack *extack);
extern const struct nla_policy btk_conn_policy[BATON_CONN_A_MAX + 1];

/* conn.c: the bulk state */
int btk_conn_export_start(struct netlink_callback *cb);
int btk_conn_export_dumpit(struct sk_buff *skb, struct netlink_callback *cb);
int btk_conn_export_done(struct netlink_callback *cb);
int btk_conn_import_doit(struct sk_buff *skb, struct genl_info *info);

/*
 * A TCP 4-tuple as the segments of its connection arrive: local is their
 * destination. IPv4 addresses are kept v4-mapped; family tells.
 */
struct btk_tuple {
	struct in6_addr local;
	struct in6_addr peer;
	__be16 lport;
	__be16 pport;
	u32 family;
};

struct btk_freeze_opts {
	u32 deadline_ms;
	u32 flow_packets;	/* 0: the module's default */
	u32 flow_bytes;
};

/* The value of each BATON_STATS_A_* attribute, and a bit for each */
struct btk_stats {
	u32 present;
	u64 val[BATON_STATS_A_MAX + 1];
};

static inline void btk_stats_set(struct btk_stats *st, int attr, u64 v)
{
	st->present |= BIT(attr);
	st->val[attr] = v;
}

int __btk_sock_tuple(struct sock *sk, struct btk_tuple *t);
int btk_sock_tuple(struct sock *sk, struct btk_tuple *t);
bool btk_frozen(struct net *net, const struct btk_tuple *t);
bool btk_sock_holds(struct sock *sk, const struct btk_tuple *t);
int btk_freeze(struct net *net, const struct btk_tuple *t, u32 n,
	       const struct btk_freeze_opts *o, u32 *id, u32 *bad,
	       struct netlink_ext_ack *extack);
/* into: the device, of any namespace, that receives the held segments;
 * NULL: delivered where they were held */
int btk_thaw(struct net *net, u32 id, struct net_device *into,
	     struct btk_stats *st, struct netlink_ext_ack *extack);
void btk_freeze_stats(struct net *net, struct btk_stats *st);
int btk_freeze_init(void);
void btk_freeze_exit(void);

#endif
