// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The freeze of baton.ko: segments arriving for a set of connections are
 * held in the kernel until the thaw delivers them to whatever socket then
 * owns each connection's 4-tuple.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <linux/genetlink.h>

#include <linux/baton.h>
#include "internal.h"
#include "tcp/ko.h"

/* each counter of the stats nest, and where it goes */
static const size_t stats_field[BATON_STATS_A_MAX + 1] = {
	[BATON_STATS_A_FREEZES]	= offsetof(struct baton_freeze_stats, freezes),
	[BATON_STATS_A_FLOWS]	= offsetof(struct baton_freeze_stats, flows),
	[BATON_STATS_A_HELD_PACKETS] =
		offsetof(struct baton_freeze_stats, held_packets),
	[BATON_STATS_A_HELD_BYTES] =
		offsetof(struct baton_freeze_stats, held_bytes),
	[BATON_STATS_A_DELIVERED_PACKETS] =
		offsetof(struct baton_freeze_stats, delivered_packets),
	[BATON_STATS_A_DELIVERED_BYTES] =
		offsetof(struct baton_freeze_stats, delivered_bytes),
	[BATON_STATS_A_OVERFLOW_PACKETS] =
		offsetof(struct baton_freeze_stats, overflow_packets),
	[BATON_STATS_A_OVERFLOW_BYTES] =
		offsetof(struct baton_freeze_stats, overflow_bytes),
	[BATON_STATS_A_DROPPED_PACKETS] =
		offsetof(struct baton_freeze_stats, dropped_packets),
	[BATON_STATS_A_DROPPED_BYTES] =
		offsetof(struct baton_freeze_stats, dropped_bytes),
	[BATON_STATS_A_EXPIRED]	= offsetof(struct baton_freeze_stats, expired),
};

struct freeze_reply {
	struct baton_tcp *tcp;
	__u32 id;
	struct baton_freeze_stats *st;
	int err;
};

static int stats_attr_cb(const struct nlattr *attr, void *data)
{
	struct freeze_reply *r = data;
	__u16 type = mnl_attr_get_type(attr);

	if (type < BATON_STATS_A_FREEZES || type > BATON_STATS_A_MAX)
		return MNL_CB_OK;	/* padding, or newer */
	if (attr_check(attr, MNL_TYPE_U64)) {
		pr_err(&r->tcp->log, "baton.ko sent counter %u of %u bytes",
		       type, mnl_attr_get_payload_len(attr));
		r->err = -EPROTO;
		return MNL_CB_ERROR;
	}
	*(__u64 *)((char *)r->st + stats_field[type]) = mnl_attr_get_u64(attr);
	return MNL_CB_OK;
}

static int freeze_attr_cb(const struct nlattr *attr, void *data)
{
	struct freeze_reply *r = data;

	switch (mnl_attr_get_type(attr)) {
	case BATON_GENL_A_FREEZE_ID:
		if (attr_check(attr, MNL_TYPE_U32))
			break;
		r->id = mnl_attr_get_u32(attr);
		return MNL_CB_OK;
	case BATON_GENL_A_STATS:
		if (!r->st)
			return MNL_CB_OK;
		if (mnl_attr_validate(attr, MNL_TYPE_NESTED) < 0)
			break;
		return mnl_attr_parse_nested(attr, stats_attr_cb, r);
	default:
		return MNL_CB_OK;
	}
	pr_err(&r->tcp->log, "baton.ko sent a malformed attribute %u",
	       mnl_attr_get_type(attr));
	r->err = -EPROTO;
	return MNL_CB_ERROR;
}

static int freeze_cb(const struct nlmsghdr *nlh, void *data)
{
	return mnl_attr_parse(nlh, sizeof(struct genlmsghdr), freeze_attr_cb,
			      data);
}

/* an address of another family goes whole: the kernel names the fault */
static size_t flow_addr_size(int family)
{
	return family == AF_INET || family == AF_INET6 ?
	       (size_t)sockaddr_size(family) : sizeof(struct sockaddr_storage);
}

/* a listener's port, not a connection (see baton_tcp.h) */
static bool flow_is_port(const struct baton_flow *f)
{
	return f->local.ss_family != AF_UNSPEC &&
	       f->peer.ss_family == AF_UNSPEC;
}

/* what one FLOW takes in a request, at most */
#define FLOW_SIZE	(4 * MNL_ATTR_HDRLEN + sizeof(__u32) + \
			 2 * MNL_ALIGN(sizeof(struct sockaddr_storage)))

int baton_tcp_freeze(struct baton_tcp *tcp, const struct baton_flow *flows,
		     size_t n, unsigned int deadline_ms,
		     const struct baton_freeze_caps *caps, __u32 *id)
{
	struct freeze_reply r = { .tcp = tcp };
	struct nlmsghdr *nlh;
	struct ko_ack ack;
	size_t i, size;
	void *buf;
	int err;

	size = MNL_NLMSG_HDRLEN + 64 + n * FLOW_SIZE;
	buf = calloc(1, size);
	if (!buf)
		return -ENOMEM;
	nlh = ko_msg(buf, tcp, BATON_GENL_CMD_FREEZE);
	mnl_attr_put_u32(nlh, BATON_GENL_A_DEADLINE_MS, deadline_ms);
	if (caps && caps->flow_packets)
		mnl_attr_put_u32(nlh, BATON_GENL_A_FLOW_PACKETS,
				 caps->flow_packets);
	if (caps && caps->flow_bytes)
		mnl_attr_put_u32(nlh, BATON_GENL_A_FLOW_BYTES, caps->flow_bytes);
	for (i = 0; i < n; i++) {
		const struct baton_flow *f = &flows[i];
		struct nlattr *nest;

		if (flow_is_port(f) && tcp->maxattr < BATON_GENL_A_PORT) {
			pr_err(&tcp->log, "baton.ko (its family's maxattr %u) holds no ports, so new connections cannot wait: load this release's baton.ko",
			       tcp->maxattr);
			free(buf);
			return -EOPNOTSUPP;
		}
		nest = mnl_attr_nest_start(nlh, flow_is_port(f) ?
					   BATON_GENL_A_PORT : BATON_GENL_A_FLOW);
		mnl_attr_put_u32(nlh, BATON_FLOW_A_FD, f->fd);
		if (f->local.ss_family != AF_UNSPEC)
			mnl_attr_put(nlh, BATON_FLOW_A_LOCAL,
				     flow_addr_size(f->local.ss_family), &f->local);
		if (f->local.ss_family != AF_UNSPEC && !flow_is_port(f))
			mnl_attr_put(nlh, BATON_FLOW_A_PEER,
				     flow_addr_size(f->peer.ss_family), &f->peer);
		mnl_attr_nest_end(nlh, nest);
	}

	err = ko_call(tcp, nlh, freeze_cb, &r, &ack);
	if (err && ack.msg[0]) {
		/* the attribute blamed: which flow */
		const struct nlattr *attr;

		i = 0;
		mnl_attr_for_each(attr, nlh, sizeof(struct genlmsghdr)) {
			size_t at = (const char *)attr - (const char *)nlh;

			if (mnl_attr_get_type(attr) != BATON_GENL_A_FLOW &&
			    mnl_attr_get_type(attr) != BATON_GENL_A_PORT)
				continue;
			if (ack.off >= at && ack.off < at + attr->nla_len)
				break;
			i++;
		}
		if (i < n)
			pr_err(&tcp->log, "baton.ko: freeze: %s %zu (fd %d): %s",
			       flow_is_port(&flows[i]) ? "port" : "flow", i,
			       flows[i].fd, ack.msg);
		else
			pr_err(&tcp->log, "baton.ko: freeze: %s", ack.msg);
	}
	free(buf);
	/* the callback's own error first: ko_call()'s is then errno's */
	if (r.err)
		return r.err;
	if (err)
		return err;
	if (!r.id) {
		pr_err(&tcp->log, "baton.ko: freeze: no id in the reply");
		return -EPROTO;
	}
	*id = r.id;
	return 0;
}

/*
 * The connections, then the ports, frozen together; the connections alone
 * if the ports are refused (a baton.ko without them, or a port it will
 * not take): the ports are a courtesy, the connections what must hold.
 */
int tcp_freeze_with_ports(struct baton_tcp *tcp, const struct baton_flow *flows,
			  size_t nconns, size_t *nports,
			  unsigned int deadline_ms, __u32 *id)
{
	int err, first;

	*id = 0;
	err = baton_tcp_freeze(tcp, flows, nconns + *nports, deadline_ms,
			       NULL, id);
	if (!err || !*nports)
		return err;
	first = err;
	*nports = 0;
	if (nconns) {
		err = baton_tcp_freeze(tcp, flows, nconns, deadline_ms, NULL,
				       id);
		if (err)
			return err;
	}
	pr_warn(&tcp->log, "the listeners' ports are not frozen (%s): clients that connect before the restore will be refused",
		first == -EOPNOTSUPP ? "this baton.ko cannot" :
		"baton.ko refused them");
	return 0;
}

/* THAW, its segments received where they were held (netns_fd < 0) or at
 * device ifindex of namespace netns_fd */
static int thaw(struct baton_tcp *tcp, __u32 id, int netns_fd, int ifindex,
		struct baton_freeze_stats *st)
{
	char buf[256] __attribute__((aligned(8)));
	struct baton_freeze_stats ignored;
	struct freeze_reply r = { .tcp = tcp, .st = st ?: &ignored };
	struct nlmsghdr *nlh;
	int err;

	memset(r.st, 0, sizeof(*r.st));
	nlh = ko_msg(buf, tcp, BATON_GENL_CMD_THAW);
	mnl_attr_put_u32(nlh, BATON_GENL_A_FREEZE_ID, id);
	if (netns_fd >= 0) {
		mnl_attr_put_u32(nlh, BATON_GENL_A_NETNS_FD, netns_fd);
		mnl_attr_put_u32(nlh, BATON_GENL_A_IFINDEX, ifindex);
	}
	err = ko_call(tcp, nlh, freeze_cb, &r, NULL);
	return r.err ?: err;
}

int baton_tcp_thaw(struct baton_tcp *tcp, __u32 id,
		   struct baton_freeze_stats *st)
{
	return thaw(tcp, id, -1, 0, st);
}

int baton_tcp_thaw_into(struct baton_tcp *tcp, __u32 id, int netns_fd,
			int ifindex, struct baton_freeze_stats *st)
{
	if (netns_fd < 0 || ifindex <= 0)
		return -EINVAL;
	if (tcp->maxattr < BATON_GENL_A_IFINDEX) {
		pr_err(&tcp->log, "baton.ko (its family's maxattr %u) cannot thaw into another network namespace: load this release's baton.ko",
		       tcp->maxattr);
		return -EOPNOTSUPP;
	}
	return thaw(tcp, id, netns_fd, ifindex, st);
}

int baton_tcp_freeze_stats(struct baton_tcp *tcp,
			   struct baton_freeze_stats *st)
{
	char buf[256] __attribute__((aligned(8)));
	struct freeze_reply r = { .tcp = tcp, .st = st };
	struct nlmsghdr *nlh;
	int err;

	memset(st, 0, sizeof(*st));
	nlh = ko_msg(buf, tcp, BATON_GENL_CMD_FREEZE_STATS);
	err = ko_call(tcp, nlh, freeze_cb, &r, NULL);
	return r.err ?: err;
}
