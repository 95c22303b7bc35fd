// SPDX-License-Identifier: GPL-2.0
/*
 * The freeze: every segment that arrives for a frozen TCP 4-tuple, and
 * every SYN for a frozen port (a listener's address or the wildcard, and
 * its port: a key with no peer), is held at LOCAL_IN (IPv4 and IPv6),
 * with what nf_queue keeps of it, until the thaw passes it on through the
 * hooks after ours, in order, to whatever socket then owns the tuple; or,
 * for connections rebuilt in another namespace, has it received there
 * at a device the caller names.
 * Bounded per flow and per network namespace; a deadline thaws a freeze
 * nobody thawed.
 *
 * Per netns: an idr of freezes, a hash of their flows, and the hooks,
 * registered on the first freeze and kept until the netns exits (or the
 * module goes), so that a namespace that never froze pays nothing and one
 * with nothing frozen pays one atomic read per segment.
 *
 * Locking: btk_net.lock (a mutex) serializes freezes, thaws, the table's
 * writers and the hooks' registration; the hook reads the table under
 * RCU; each flow's held list has its own spinlock, taken by the hook in
 * softirq and by the thaw with BHs off.
 */
#include <linux/hash.h>
#include <linux/idr.h>
#include <linux/jhash.h>
#include <linux/moduleparam.h>
#include <linux/netdevice.h>
#include <linux/netfilter.h>
#include <linux/netfilter_bridge.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6.h>
#include <linux/random.h>
#include <linux/workqueue.h>
#include <net/inet_sock.h>
#include <net/ipv6.h>
#include <net/netfilter/nf_queue.h>
#include <net/netns/generic.h>
#include <net/tcp.h>
#include "internal.h"

static unsigned int btk_flow_packets __read_mostly = 1024;
module_param_named(flow_packets, btk_flow_packets, uint, 0644);
MODULE_PARM_DESC(flow_packets, "segments held per frozen flow, unless the freeze asks");

static unsigned int btk_flow_bytes __read_mostly = 4 << 20;
module_param_named(flow_bytes, btk_flow_bytes, uint, 0644);
MODULE_PARM_DESC(flow_bytes, "memory (truesize) held per frozen flow, unless the freeze asks");

static unsigned int btk_netns_packets __read_mostly = 65536;
module_param_named(netns_packets, btk_netns_packets, uint, 0644);
MODULE_PARM_DESC(netns_packets, "segments held per network namespace");

static unsigned long btk_netns_bytes __read_mostly = 64 << 20;
module_param_named(netns_bytes, btk_netns_bytes, ulong, 0644);
MODULE_PARM_DESC(netns_bytes, "memory (truesize) held per network namespace");

static unsigned int btk_netns_flows __read_mostly = 65536;
module_param_named(netns_flows, btk_netns_flows, uint, 0644);
MODULE_PARM_DESC(netns_flows, "flows frozen at once per network namespace");

#define BTK_TABLE_BITS		12
/* a thaw delivers what arrives while it delivers, up to this many rounds */
#define BTK_DRAIN_ROUNDS	16

enum btk_counter {
	BTK_DELIVERED_PACKETS,
	BTK_DELIVERED_BYTES,
	BTK_OVERFLOW_PACKETS,
	BTK_OVERFLOW_BYTES,
	BTK_DROPPED_PACKETS,
	BTK_DROPPED_BYTES,
	BTK_EXPIRED,
	BTK_NR_COUNTERS
};

/* the stats attribute of each counter */
static const int btk_counter_attr[BTK_NR_COUNTERS] = {
	[BTK_DELIVERED_PACKETS]	= BATON_STATS_A_DELIVERED_PACKETS,
	[BTK_DELIVERED_BYTES]	= BATON_STATS_A_DELIVERED_BYTES,
	[BTK_OVERFLOW_PACKETS]	= BATON_STATS_A_OVERFLOW_PACKETS,
	[BTK_OVERFLOW_BYTES]	= BATON_STATS_A_OVERFLOW_BYTES,
	[BTK_DROPPED_PACKETS]	= BATON_STATS_A_DROPPED_PACKETS,
	[BTK_DROPPED_BYTES]	= BATON_STATS_A_DROPPED_BYTES,
	[BTK_EXPIRED]		= BATON_STATS_A_EXPIRED,
};

struct btk_counters {
	atomic64_t val[BTK_NR_COUNTERS];
};

struct btk_net {
	struct mutex lock;		/* see the top of this file */
	struct idr freezes;
	struct hlist_head *table;	/* NULL until the first freeze */
	bool hooked;
	atomic_t nflows;		/* the hook's fast path */
	atomic_t held_packets;
	atomic_long_t held_bytes;
	struct btk_counters cnt;
};

struct btk_freeze;

struct btk_flow {
	struct hlist_node node;		/* in btk_net.table */
	struct btk_tuple key;
	struct btk_freeze *freeze;
	spinlock_t lock;		/* the fields below */
	struct list_head held;		/* struct nf_queue_entry, in order */
	u32 packets;
	u32 bytes;
	bool thawed;			/* the hook lets segments pass */
};

struct btk_freeze {
	u32 id;
	struct net *net;		/* no reference: pre_exit thaws us */
	struct delayed_work expire;
	u32 cap_packets, cap_bytes;
	struct btk_counters cnt;
	struct rcu_head rcu;
	u32 nflows;
	struct btk_flow flows[];
};

static unsigned int btk_net_id __read_mostly;
static u32 btk_hash_seed __read_mostly;
/* the deadlines; drained before a netns' state or the module goes */
static struct workqueue_struct *btk_wq;

static struct btk_net *btk_net(const struct net *net)
{
	return net_generic(net, btk_net_id);
}

static void btk_count(struct btk_net *bn, struct btk_freeze *fz,
		      enum btk_counter c, u64 v)
{
	atomic64_add(v, &bn->cnt.val[c]);
	if (fz)
		atomic64_add(v, &fz->cnt.val[c]);
}

static struct hlist_head *btk_bucket(struct btk_net *bn,
				     const struct btk_tuple *t)
{
	u32 h = jhash2((const u32 *)t, sizeof(*t) / sizeof(u32),
		       btk_hash_seed);

	return &bn->table[hash_32(h, BTK_TABLE_BITS)];
}

/* Under RCU (the hook) or btk_net.lock */
static struct btk_flow *btk_flow_find(struct btk_net *bn,
				      const struct btk_tuple *t)
{
	struct btk_flow *flow;

	hlist_for_each_entry_rcu(flow, btk_bucket(bn, t), node,
				 lockdep_is_held(&bn->lock))
		if (!memcmp(&flow->key, t, sizeof(*t)))
			return flow;
	return NULL;
}

/*
 * The tuple of a socket's connection; -ENOTCONN if it has none. The
 * caller locks the socket, or is the only one to have it.
 */
int __btk_sock_tuple(struct sock *sk, struct btk_tuple *t)
{
	const struct inet_sock *inet = inet_sk(sk);

	memset(t, 0, sizeof(*t));
	if ((1 << sk->sk_state) & (TCPF_LISTEN | TCPF_CLOSE))
		return -ENOTCONN;
	t->lport = inet->inet_sport;
	t->pport = inet->inet_dport;
#if IS_ENABLED(CONFIG_IPV6)
	if (sk->sk_family == AF_INET6 &&
	    !ipv6_addr_v4mapped(&sk->sk_v6_daddr)) {
		t->family = AF_INET6;
		t->local = sk->sk_v6_rcv_saddr;
		t->peer = sk->sk_v6_daddr;
		return 0;
	}
#endif
	/* IPv4, on an IPv4 socket or a v4-mapped IPv6 one */
	t->family = AF_INET;
	ipv6_addr_set_v4mapped(inet->inet_rcv_saddr, &t->local);
	ipv6_addr_set_v4mapped(inet->inet_daddr, &t->peer);
	return 0;
}

int btk_sock_tuple(struct sock *sk, struct btk_tuple *t)
{
	int err;

	lock_sock(sk);
	err = __btk_sock_tuple(sk, t);
	release_sock(sk);
	return err;
}

/*
 * Whether a socket holds a tuple: it is that connection, or a listener
 * its segments arrive at (its port, its address or a wildcard one).
 */
bool btk_sock_holds(struct sock *sk, const struct btk_tuple *t)
{
	struct btk_tuple own;
	bool holds = false;

	if (sk->sk_state != TCP_LISTEN)
		return !btk_sock_tuple(sk, &own) && !memcmp(&own, t, sizeof(own));
	lock_sock(sk);
	if (sk->sk_state != TCP_LISTEN || inet_sk(sk)->inet_sport != t->lport)
		goto unlock;
#if IS_ENABLED(CONFIG_IPV6)
	if (sk->sk_family == AF_INET6) {
		if (t->family == AF_INET && ipv6_only_sock(sk))
			goto unlock;
		holds = ipv6_addr_any(&sk->sk_v6_rcv_saddr) ||
			ipv6_addr_equal(&sk->sk_v6_rcv_saddr, &t->local);
		goto unlock;
	}
#endif
	holds = t->family == AF_INET &&
		(!inet_sk(sk)->inet_rcv_saddr ||
		 inet_sk(sk)->inet_rcv_saddr == t->local.s6_addr32[3]);
unlock:
	release_sock(sk);
	return holds;
}

/* Whether a tuple is frozen (or being thawed) in a namespace now */
bool btk_frozen(struct net *net, const struct btk_tuple *t)
{
	struct btk_net *bn = btk_net(net);
	bool frozen = false;

	if (!atomic_read(&bn->nflows))
		return false;
	rcu_read_lock();
	if (READ_ONCE(bn->table))
		frozen = btk_flow_find(bn, t);
	rcu_read_unlock();
	return frozen;
}

/*
 * The tuple a segment arriving at this host belongs to, and whether it
 * opens a connection (SYN without ACK); -ENOENT: not TCP
 */
static int btk_skb_tuple(struct sk_buff *skb, u8 pf, struct btk_tuple *t,
			 bool *syn)
{
	struct tcphdr _th;
	const struct tcphdr *th;
	int thoff;

	memset(t, 0, sizeof(*t));
	if (pf == NFPROTO_IPV4) {
		const struct iphdr *iph = ip_hdr(skb);

		if (iph->protocol != IPPROTO_TCP)
			return -ENOENT;
		t->family = AF_INET;
		ipv6_addr_set_v4mapped(iph->daddr, &t->local);
		ipv6_addr_set_v4mapped(iph->saddr, &t->peer);
		thoff = ip_hdrlen(skb);
	} else {
		const struct ipv6hdr *ip6h = ipv6_hdr(skb);
		u8 nexthdr = ip6h->nexthdr;
		__be16 frag_off;

		thoff = ipv6_skip_exthdr(skb, sizeof(*ip6h), &nexthdr,
					 &frag_off);
		/* a later fragment waits for the first, which is held */
		if (thoff < 0 || nexthdr != IPPROTO_TCP ||
		    (frag_off & htons(~0x7)))
			return -ENOENT;
		t->family = AF_INET6;
		t->local = ip6h->daddr;
		t->peer = ip6h->saddr;
	}
	th = skb_header_pointer(skb, thoff, sizeof(_th), &_th);
	if (!th)
		return -ENOENT;
	t->lport = th->dest;
	t->pport = th->source;
	*syn = th->syn && !th->ack;
	return 0;
}

/*
 * The port a SYN arrives at, frozen (a PORT of a freeze): its address's,
 * or the wildcard's of its family. A port's key has no peer.
 */
static struct btk_flow *btk_port_find(struct btk_net *bn,
				      const struct btk_tuple *t)
{
	struct btk_tuple port = {
		.family = t->family, .local = t->local, .lport = t->lport,
	};
	struct btk_flow *flow;

	flow = btk_flow_find(bn, &port);
	if (flow)
		return flow;
	if (t->family == AF_INET)
		ipv6_addr_set_v4mapped(0, &port.local);
	else
		port.local = in6addr_any;
	return btk_flow_find(bn, &port);
}

/*
 * What nf_queue keeps of a segment it holds: the hook state, references
 * on the devices, a refcounted dst. The socket early demux attached is
 * let go, so that the thaw finds the tuple's owner of that moment.
 */
static struct nf_queue_entry *btk_entry_make(struct sk_buff *skb,
					     const struct nf_hook_state *state)
{
	struct nf_queue_entry *e;

	if (skb_sk_is_prefetched(skb)) {
		struct sock *sk = skb->sk;

		/* steered by a program: it stays steered */
		if (!sk_is_refcounted(sk)) {
			if (!refcount_inc_not_zero(&sk->sk_refcnt))
				return NULL;
			skb->destructor = sock_edemux;
		}
	} else {
		skb_orphan(skb);
	}
	e = kmalloc(sizeof(*e), GFP_ATOMIC);
	if (!e)
		return NULL;
	if (skb_dst(skb) && !skb_dst_force(skb))
		goto free_entry;
	*e = (struct nf_queue_entry) {
		.skb	 = skb,
		.skb_dev = skb->dev,
		.state	 = *state,
		.size	 = sizeof(*e),
	};
#if IS_ENABLED(CONFIG_BRIDGE_NETFILTER)
	if (nf_bridge_info_exists(skb)) {
		e->physin = nf_bridge_get_physindev(skb, state->net);
		e->physout = nf_bridge_get_physoutdev(skb);
	}
#endif
	if (!nf_queue_entry_get_refs(e))
		goto free_entry;
	return e;

free_entry:
	kfree(e);
	return NULL;
}

static unsigned int btk_freeze_hook(void *priv, struct sk_buff *skb,
				    const struct nf_hook_state *state)
{
	struct btk_net *bn = btk_net(state->net);
	struct nf_queue_entry *e;
	struct btk_freeze *fz;
	struct btk_flow *flow;
	struct btk_tuple t;
	bool syn;
	u32 size;

	if (likely(!atomic_read(&bn->nflows)))
		return NF_ACCEPT;
	if (btk_skb_tuple(skb, state->pf, &t, &syn))
		return NF_ACCEPT;
	flow = btk_flow_find(bn, &t);
	if (!flow && syn)
		flow = btk_port_find(bn, &t);
	if (!flow)
		return NF_ACCEPT;

	fz = flow->freeze;
	size = skb->truesize;
	spin_lock_bh(&flow->lock);
	if (flow->thawed) {
		spin_unlock_bh(&flow->lock);
		return NF_ACCEPT;
	}
	if (flow->packets >= fz->cap_packets ||
	    flow->bytes + size > fz->cap_bytes)
		goto overflow;
	/* each cap undoes only what it added */
	if (atomic_inc_return(&bn->held_packets) > btk_netns_packets) {
		atomic_dec(&bn->held_packets);
		goto overflow;
	}
	if (atomic_long_add_return(size, &bn->held_bytes) > btk_netns_bytes) {
		atomic_dec(&bn->held_packets);
		atomic_long_sub(size, &bn->held_bytes);
		goto overflow;
	}
	e = btk_entry_make(skb, state);
	if (!e) {
		atomic_dec(&bn->held_packets);
		atomic_long_sub(size, &bn->held_bytes);
		spin_unlock_bh(&flow->lock);
		btk_count(bn, fz, BTK_DROPPED_PACKETS, 1);
		btk_count(bn, fz, BTK_DROPPED_BYTES, size);
		return NF_DROP;
	}
	list_add_tail(&e->list, &flow->held);
	flow->packets++;
	flow->bytes += size;
	spin_unlock_bh(&flow->lock);
	return NF_STOLEN;

overflow:
	spin_unlock_bh(&flow->lock);
	btk_count(bn, fz, BTK_OVERFLOW_PACKETS, 1);
	btk_count(bn, fz, BTK_OVERFLOW_BYTES, size);
	return NF_DROP;
}

static const struct nf_hook_ops btk_hook_ops[] = {
	{
		.hook		= btk_freeze_hook,
		.pf		= NFPROTO_IPV4,
		.hooknum	= NF_INET_LOCAL_IN,
		/* after the filters: what they drop is not held */
		.priority	= NF_IP_PRI_LAST - 1,
	},
#if IS_ENABLED(CONFIG_IPV6)
	{
		.hook		= btk_freeze_hook,
		.pf		= NFPROTO_IPV6,
		.hooknum	= NF_INET_LOCAL_IN,
		.priority	= NF_IP6_PRI_LAST - 1,
	},
#endif
};

/*
 * The netns' LOCAL_IN hooks now, under RCU, and where ours is among them
 * (*i), or NULL. One read: the array may be replaced at any time (a table
 * added or removed, in any user namespace's netns), and an index found
 * in one array is nothing in the next.
 */
static struct nf_hook_entries *btk_hooks(const struct nf_hook_state *state,
					 int *i)
{
	struct nf_hook_entries *hooks = NULL;

	if (state->pf == NFPROTO_IPV4)
		hooks = rcu_dereference(state->net->nf.hooks_ipv4[state->hook]);
#if IS_ENABLED(CONFIG_IPV6)
	else if (state->pf == NFPROTO_IPV6)
		hooks = rcu_dereference(state->net->nf.hooks_ipv6[state->hook]);
#endif
	if (!hooks)
		return NULL;
	for (*i = 0; *i < hooks->num_hook_entries; ++*i)
		if (hooks->hooks[*i].hook == btk_freeze_hook)
			return hooks;
	return NULL;
}

/*
 * A held segment on its way: through the hooks after ours in the array
 * read once (conntrack's confirmation), then up to its socket with BHs
 * off, as nf_reinject() would, which reads the array again and WARNs if
 * it shrank meanwhile
 */
static void btk_deliver(struct nf_queue_entry *e,
			struct nf_hook_entries *hooks, int i)
{
	struct sk_buff *skb = e->skb;

	if (nf_hook_slow(skb, &e->state, hooks, i + 1) == 1) {
		local_bh_disable();
		e->state.okfn(e->state.net, e->state.sk, skb);
		local_bh_enable();
	}
	nf_queue_entry_free(e);
}

/*
 * A held segment received again at dev, of another namespace: out of its
 * queue entry, scrubbed of what belonged to the first namespace (route,
 * conntrack, mark, a socket a program chose), then through dev's receive
 * path, at once and in order (BHs off, as in a NAPI poll).
 */
static void btk_enter(struct nf_queue_entry *e, struct net_device *dev)
{
	struct sk_buff *skb = e->skb;

	nf_queue_entry_free(e);
	skb_orphan(skb);
	skb_scrub_packet(skb, true);
	skb->dev = dev;
	skb->queue_mapping = 0;		/* the first device's: RPS would warn */
	/* delivery rewrote IP options (record route, timestamp) in place */
	if (skb->protocol == htons(ETH_P_IP))
		ip_send_check(ip_hdr(skb));
	local_bh_disable();
	netif_receive_skb(skb);
	local_bh_enable();
}

/*
 * Delivers (or drops) held segments, in order, under RCU: from the hook
 * after ours (btk_deliver()); with into, received at that device instead
 * (btk_enter()).
 */
static void btk_release(struct btk_net *bn, struct btk_freeze *fz,
			struct list_head *list, bool deliver,
			struct net_device *into)
{
	struct nf_queue_entry *e, *next;
	struct nf_hook_entries *hooks;
	u32 size;
	int i;

	list_for_each_entry_safe(e, next, list, list) {
		list_del(&e->list);
		size = e->skb->truesize;
		atomic_dec(&bn->held_packets);
		atomic_long_sub(size, &bn->held_bytes);
		if (deliver && into) {
			btk_count(bn, fz, BTK_DELIVERED_PACKETS, 1);
			btk_count(bn, fz, BTK_DELIVERED_BYTES, size);
			btk_enter(e, into);
			continue;
		}
		rcu_read_lock();
		hooks = deliver ? btk_hooks(&e->state, &i) : NULL;
		if (hooks) {
			btk_count(bn, fz, BTK_DELIVERED_PACKETS, 1);
			btk_count(bn, fz, BTK_DELIVERED_BYTES, size);
			btk_deliver(e, hooks, i);
		} else {
			btk_count(bn, fz, BTK_DROPPED_PACKETS, 1);
			btk_count(bn, fz, BTK_DROPPED_BYTES, size);
			kfree_skb(e->skb);
			nf_queue_entry_free(e);
		}
		rcu_read_unlock();
	}
}

/*
 * Empties a flow's held list, then lets segments pass. What arrives while
 * it delivers (the replies its delivery causes) is held and delivered in
 * the next round, so nothing overtakes a held segment; a sender that never
 * stops gets BTK_DRAIN_ROUNDS, after which its last round may be overtaken.
 */
static void btk_flow_thaw(struct btk_net *bn, struct btk_flow *flow,
			  bool deliver, struct net_device *into)
{
	int round;

	for (round = 0;; round++) {
		LIST_HEAD(batch);
		bool last;

		spin_lock_bh(&flow->lock);
		last = list_empty(&flow->held) || round == BTK_DRAIN_ROUNDS;
		list_splice_init(&flow->held, &batch);
		flow->packets = 0;
		flow->bytes = 0;
		if (last)
			flow->thawed = true;
		spin_unlock_bh(&flow->lock);
		btk_release(bn, flow->freeze, &batch, deliver, into);
		if (last)
			break;
	}
}

/*
 * A freeze out of the idr, its deadline cancelled: thawed flow by flow,
 * out of the table, freed once no hook can be looking at its flows.
 */
static void btk_freeze_end(struct btk_net *bn, struct btk_freeze *fz,
			   bool deliver, struct net_device *into)
{
	u32 i;

	for (i = 0; i < fz->nflows; i++)
		btk_flow_thaw(bn, &fz->flows[i], deliver, into);
	mutex_lock(&bn->lock);
	for (i = 0; i < fz->nflows; i++)
		hlist_del_rcu(&fz->flows[i].node);
	atomic_sub(fz->nflows, &bn->nflows);
	mutex_unlock(&bn->lock);
}

static void btk_freeze_free(struct btk_freeze *fz)
{
	kvfree_rcu(fz, rcu);
}

static void btk_freeze_expire(struct work_struct *work)
{
	struct btk_freeze *fz = container_of(to_delayed_work(work),
					     struct btk_freeze, expire);
	struct btk_net *bn = btk_net(fz->net);
	bool mine;

	mutex_lock(&bn->lock);
	/* a thaw that took it first waits for us, then frees it */
	mine = idr_find(&bn->freezes, fz->id) == fz;
	if (mine)
		idr_remove(&bn->freezes, fz->id);
	mutex_unlock(&bn->lock);
	if (!mine)
		return;
	btk_count(bn, NULL, BTK_EXPIRED, 1);
	btk_freeze_end(bn, fz, true, NULL);
	btk_freeze_free(fz);
}

/* The hooks and the table, on the netns' first freeze */
static int btk_net_arm(struct net *net, struct btk_net *bn,
		       struct netlink_ext_ack *extack)
{
	int err;

	lockdep_assert_held(&bn->lock);
	if (bn->hooked)
		return 0;
	if (!bn->table) {
		struct hlist_head *table;

		table = kvcalloc(1 << BTK_TABLE_BITS, sizeof(*table), GFP_KERNEL);
		if (!table)
			return -ENOMEM;
		WRITE_ONCE(bn->table, table);
	}
	err = nf_register_net_hooks(net, btk_hook_ops,
				    ARRAY_SIZE(btk_hook_ops));
	if (err) {
		NL_SET_ERR_MSG(extack, "cannot register the netfilter hooks");
		return err;
	}
	bn->hooked = true;
	return 0;
}

int btk_freeze(struct net *net, const struct btk_tuple *t, u32 n,
	       const struct btk_freeze_opts *o, u32 *id, u32 *bad,
	       struct netlink_ext_ack *extack)
{
	struct btk_net *bn = btk_net(net);
	struct btk_freeze *fz;
	struct btk_flow *old;
	u32 i;
	int err;

	fz = kvzalloc(struct_size(fz, flows, n), GFP_KERNEL);
	if (!fz)
		return -ENOMEM;
	fz->net = net;
	fz->cap_packets = o->flow_packets ?: READ_ONCE(btk_flow_packets);
	fz->cap_bytes = o->flow_bytes ?: READ_ONCE(btk_flow_bytes);
	INIT_DELAYED_WORK(&fz->expire, btk_freeze_expire);

	mutex_lock(&bn->lock);
	err = btk_net_arm(net, bn, extack);
	if (err)
		goto unlock;
	if (atomic_read(&bn->nflows) + n > READ_ONCE(btk_netns_flows)) {
		NL_SET_ERR_MSG(extack,
			       "too many flows frozen in this network namespace (module parameter netns_flows)");
		err = -ENOSPC;
		goto unlock;
	}
	/* counted first: the hook looks for a flow once there is one */
	atomic_add(n, &bn->nflows);
	for (i = 0; i < n; i++) {
		struct btk_flow *flow = &fz->flows[i];

		old = btk_flow_find(bn, &t[i]);
		if (old) {
			bool port = !t[i].pport;	/* a port's key */

			if (old->freeze == fz && port)
				NL_SET_ERR_MSG(extack,
					       "port named twice in this freeze");
			else if (old->freeze == fz)
				NL_SET_ERR_MSG(extack,
					       "flow named twice in this freeze");
			else if (port)
				NL_SET_ERR_MSG(extack, "port frozen already");
			else
				NL_SET_ERR_MSG(extack, "flow frozen already");
			*bad = i;
			err = -EBUSY;
			break;
		}
		flow->key = t[i];
		flow->freeze = fz;
		spin_lock_init(&flow->lock);
		INIT_LIST_HEAD(&flow->held);
		hlist_add_head_rcu(&flow->node, btk_bucket(bn, &t[i]));
		fz->nflows++;
	}
	if (!err) {
		err = idr_alloc_cyclic(&bn->freezes, fz, 1, INT_MAX,
				       GFP_KERNEL);
		if (err > 0) {
			fz->id = err;
			err = 0;
		}
	}
	if (err) {
		atomic_sub(n - fz->nflows, &bn->nflows);
		mutex_unlock(&bn->lock);
		/* what arrived meanwhile goes on as if nothing happened */
		btk_freeze_end(bn, fz, true, NULL);
		btk_freeze_free(fz);
		return err;
	}
	*id = fz->id;
	queue_delayed_work(btk_wq, &fz->expire, msecs_to_jiffies(o->deadline_ms));
	mutex_unlock(&bn->lock);
	return 0;

unlock:
	mutex_unlock(&bn->lock);
	kvfree(fz);
	return err;
}

static void btk_stats_fill(const struct btk_counters *cnt,
			   struct btk_stats *st)
{
	int c;

	for (c = 0; c < BTK_NR_COUNTERS; c++)
		btk_stats_set(st, btk_counter_attr[c],
			      atomic64_read(&cnt->val[c]));
}

int btk_thaw(struct net *net, u32 id, struct net_device *into,
	     struct btk_stats *st, struct netlink_ext_ack *extack)
{
	struct btk_net *bn = btk_net(net);
	struct btk_freeze *fz;

	mutex_lock(&bn->lock);
	fz = idr_remove(&bn->freezes, id);
	mutex_unlock(&bn->lock);
	if (!fz) {
		NL_SET_ERR_MSG(extack,
			       "no such freeze in this network namespace: thawed already, or its deadline passed");
		return -ENOENT;
	}
	cancel_delayed_work_sync(&fz->expire);
	btk_freeze_end(bn, fz, true, into);
	btk_stats_fill(&fz->cnt, st);
	btk_stats_set(st, BATON_STATS_A_FLOWS, fz->nflows);
	btk_freeze_free(fz);
	return 0;
}

void btk_freeze_stats(struct net *net, struct btk_stats *st)
{
	struct btk_net *bn = btk_net(net);
	struct btk_freeze *fz;
	int id;
	u32 n = 0;

	btk_stats_fill(&bn->cnt, st);
	mutex_lock(&bn->lock);
	idr_for_each_entry(&bn->freezes, fz, id)
		n++;
	mutex_unlock(&bn->lock);
	btk_stats_set(st, BATON_STATS_A_FREEZES, n);
	btk_stats_set(st, BATON_STATS_A_FLOWS, atomic_read(&bn->nflows));
	btk_stats_set(st, BATON_STATS_A_HELD_PACKETS,
		      atomic_read(&bn->held_packets));
	btk_stats_set(st, BATON_STATS_A_HELD_BYTES,
		      atomic_long_read(&bn->held_bytes));
}

/* Every freeze of a netns, out of its idr; nothing new can start */
static void btk_net_thaw_all(struct btk_net *bn, bool deliver)
{
	struct btk_freeze *fz;
	int id;

	for (;;) {
		id = 0;
		mutex_lock(&bn->lock);
		fz = idr_get_next(&bn->freezes, &id);
		if (fz)
			idr_remove(&bn->freezes, id);
		mutex_unlock(&bn->lock);
		if (!fz)
			return;
		cancel_delayed_work_sync(&fz->expire);
		btk_freeze_end(bn, fz, deliver, NULL);
		btk_freeze_free(fz);
	}
}

static int __net_init btk_net_init(struct net *net)
{
	struct btk_net *bn = btk_net(net);

	mutex_init(&bn->lock);
	idr_init(&bn->freezes);
	return 0;
}

/*
 * Before the namespace's devices go (they wait for the references held
 * segments keep): a dying namespace drops what it holds; a live one
 * (the module is going) has it delivered.
 */
static void __net_exit btk_net_pre_exit(struct net *net)
{
	struct btk_net *bn = btk_net(net);

	btk_net_thaw_all(bn, check_net(net));
	/* a deadline that took its freeze before us */
	flush_workqueue(btk_wq);
	/*
	 * The hooks go here, not in exit: the grace period between the two
	 * is the one that lets a hook still running on another CPU finish
	 * with the table and bn before exit frees them
	 */
	mutex_lock(&bn->lock);
	if (bn->hooked)
		nf_unregister_net_hooks(net, btk_hook_ops,
					ARRAY_SIZE(btk_hook_ops));
	bn->hooked = false;
	mutex_unlock(&bn->lock);
}

static void __net_exit btk_net_exit(struct net *net)
{
	struct btk_net *bn = btk_net(net);

	kvfree(bn->table);
	idr_destroy(&bn->freezes);
}

static struct pernet_operations btk_net_ops = {
	.init		= btk_net_init,
	.pre_exit	= btk_net_pre_exit,
	.exit		= btk_net_exit,
	.id		= &btk_net_id,
	.size		= sizeof(struct btk_net),
};

/*
 * Set as the module goes: unregistering the notifier replays NETDEV_DOWN
 * for every device up, and what is held must be delivered then
 * (btk_net_pre_exit()), not dropped
 */
static bool btk_unloading;

/* Whether a held segment keeps a reference to dev */
static bool btk_entry_holds(const struct nf_queue_entry *e,
			    const struct net_device *dev)
{
	if (e->skb_dev == dev || e->state.in == dev || e->state.out == dev)
		return true;
#if IS_ENABLED(CONFIG_BRIDGE_NETFILTER)
	/* a bridge port's, as br_netfilter hands them on */
	if (e->bridge_dev == dev || e->physin == dev || e->physout == dev)
		return true;
#endif
	return false;
}

/* Held segments of a device going down are dropped: it waits for them */
static int btk_netdev_event(struct notifier_block *nb, unsigned long event,
			    void *ptr)
{
	struct net_device *dev = netdev_notifier_info_to_dev(ptr);
	struct btk_net *bn = btk_net(dev_net(dev));
	struct nf_queue_entry *e, *next;
	struct btk_freeze *fz;
	int id;
	u32 i;

	if (event != NETDEV_DOWN || READ_ONCE(btk_unloading))
		return NOTIFY_DONE;
	mutex_lock(&bn->lock);
	idr_for_each_entry(&bn->freezes, fz, id) {
		for (i = 0; i < fz->nflows; i++) {
			struct btk_flow *flow = &fz->flows[i];
			LIST_HEAD(gone);

			spin_lock_bh(&flow->lock);
			list_for_each_entry_safe(e, next, &flow->held, list) {
				if (!btk_entry_holds(e, dev))
					continue;
				list_move_tail(&e->list, &gone);
				flow->packets--;
				flow->bytes -= e->skb->truesize;
			}
			spin_unlock_bh(&flow->lock);
			btk_release(bn, fz, &gone, false, NULL);
		}
	}
	mutex_unlock(&bn->lock);
	return NOTIFY_DONE;
}

static struct notifier_block btk_netdev_notifier = {
	.notifier_call = btk_netdev_event,
};

int __init btk_freeze_init(void)
{
	int err;

	btk_hash_seed = get_random_u32();
	btk_wq = alloc_workqueue("baton", 0, 0);
	if (!btk_wq)
		return -ENOMEM;
	err = register_pernet_subsys(&btk_net_ops);
	if (err)
		goto destroy_wq;
	err = register_netdevice_notifier(&btk_netdev_notifier);
	if (err)
		goto unregister_pernet;
	return 0;

unregister_pernet:
	unregister_pernet_subsys(&btk_net_ops);
destroy_wq:
	destroy_workqueue(btk_wq);
	return err;
}

void btk_freeze_exit(void)
{
	WRITE_ONCE(btk_unloading, true);
	unregister_netdevice_notifier(&btk_netdev_notifier);
	unregister_pernet_subsys(&btk_net_ops);
	destroy_workqueue(btk_wq);
}
