// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Repair mode into another network namespace (BATON_UPGRADE_F_NETNS): the
 * service address follows the connections.
 *
 * Before anything begins (netns_prepare()), everything is checked and
 * every socket of the other namespace opened: the namespace, the device
 * there (up; its index and link-layer address), the address here (on
 * which device), and baton.ko. A failure there refuses the upgrade and
 * changes nothing.
 *
 * The new instance starts in that namespace (spawn.c). It rebuilds the
 * old one's listeners there (freebind), and in the blackout imports the
 * connections before their address is there. The old one froze them,
 * and its listeners' ports, here. Once the new one is ACTIVE
 * (netns_move()):
 *	add	the address on the device there (IPv6: no DAD);
 *	announce  a gratuitous ARP, or an unsolicited neighbour advertisement
 *		with the override flag: the peers on the link send there now,
 *		and the new sockets take what they send;
 *	delete	the address here; until then what still came here was
 *		held by the freeze;
 *	thaw	what was held here enters the other namespace at the device,
 *		as if received there (baton.ko's THAW with NETNS_FD).
 * No segment meets a namespace without a socket for it: the old namespace
 * holds until the address leaves it, and the new one has the sockets
 * before the address arrives. Segments held here may reach the new
 * sockets after later ones that went there directly: TCP reorders them.
 *
 * After ACTIVE, nothing is undone: a failure is reported with what to do
 * by hand, and the freeze's deadline lets the held segments go here.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <linux/if_arp.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/nsfs.h>
#include <linux/rtnetlink.h>
#include <libmnl/libmnl.h>

#include "coordinator/coordinator.h"
#include "tcp/tcp.h"

/*
 * From the announcement to the address's removal here, what the peers
 * sent before they heard it still arrives: the removal waits until no
 * segment was held here for SETTLE_QUIET_MS, SETTLE_MAX_MS at most. A
 * segment that comes later is not local here any more, and is lost.
 */
#define SETTLE_QUIET_MS		5
#define SETTLE_MAX_MS		200
/* a dump's part fits, whatever the kernel's page size (libmnl's later
 * MNL_SOCKET_DUMP_SIZE) */
#define DUMP_BUF		32768

struct netns_move {
	int ns;			/* the other namespace */
	int home;		/* ours, to come back to */
	struct mnl_socket *rt_there, *rt_here;
	int announce;		/* a packet or ICMPv6 socket there */
	int family;
	union {
		struct in_addr v4;
		struct in6_addr v6;
	} addr;
	unsigned int plen;
	int ifindex_there, ifindex_here;
	__u32 seq;		/* our rtnetlink requests' */
	unsigned char mac[ETH_ALEN];
	struct baton_tcp *tcp;	/* here: the freeze is ours */
};

void netns_free(struct baton_upgrade *up)
{
	struct netns_move *mv = up->mv;

	if (!mv)
		return;
	if (mv->rt_there)
		mnl_socket_close(mv->rt_there);
	if (mv->rt_here)
		mnl_socket_close(mv->rt_here);
	if (mv->announce >= 0)
		close(mv->announce);
	if (mv->home >= 0)
		close(mv->home);
	if (mv->ns >= 0)
		close(mv->ns);
	baton_tcp_close(mv->tcp);
	free(mv);
	up->mv = NULL;
}

static int addr_parse(struct netns_move *mv, const char *s)
{
	char buf[INET6_ADDRSTRLEN + 8], *slash, *end;
	unsigned long plen;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (!slash)
		return -EINVAL;
	*slash = '\0';
	plen = strtoul(slash + 1, &end, 10);
	if (*end || end == slash + 1)
		return -EINVAL;
	if (inet_pton(AF_INET, buf, &mv->addr.v4) == 1 && plen <= 32)
		mv->family = AF_INET;
	else if (inet_pton(AF_INET6, buf, &mv->addr.v6) == 1 && plen <= 128)
		mv->family = AF_INET6;
	else
		return -EINVAL;
	mv->plen = plen;
	return 0;
}

static size_t addr_len(const struct netns_move *mv)
{
	return mv->family == AF_INET ? sizeof(mv->addr.v4) :
				       sizeof(mv->addr.v6);
}

/*
 * In the other namespace, for as long as the sockets take to open: the
 * device's index and link-layer address, an rtnetlink socket and the
 * announcement's socket. The calling thread comes back in any case.
 */
static int open_there(struct baton_upgrade *up, struct netns_move *mv)
{
	struct ifreq ifr = {};
	int err = 0, ctl = -1;

	if (setns(mv->ns, CLONE_NEWNET))
		return fail(up, -errno, "cannot enter the network namespace %s: %s",
			    up->o.netns, strerror(errno));
	mv->rt_there = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	/* to send only: protocol 0, and every ICMPv6 type filtered out */
	if (mv->family == AF_INET)
		mv->announce = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	else
		mv->announce = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC,
				      IPPROTO_ICMPV6);
	ctl = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (!mv->rt_there || mv->announce < 0 || ctl < 0)
		err = -errno;
	if (!err && mv->family == AF_INET6) {
		struct icmp6_filter none;

		ICMP6_FILTER_SETBLOCKALL(&none);
		if (setsockopt(mv->announce, IPPROTO_ICMPV6, ICMP6_FILTER,
			       &none, sizeof(none)))
			err = -errno;
	}
	if (setns(mv->home, CLONE_NEWNET)) {
		/* not where we were: nothing of ours can go on from here */
		err = fail(up, -errno, "cannot come back from the network namespace %s: %s",
			   up->o.netns, strerror(errno));
		goto close_ctl;
	}
	if (err) {
		err = fail(up, err, "cannot open sockets in the network namespace %s: %s",
			   up->o.netns, strerror(-err));
		goto close_ctl;
	}
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", up->o.netns_dev);
	if (strlen(up->o.netns_dev) >= sizeof(ifr.ifr_name) ||
	    ioctl(ctl, SIOCGIFINDEX, &ifr)) {
		err = fail(up, -ENODEV, "no device '%s' in the network namespace %s (ip -n NAME link shows them)",
			   up->o.netns_dev, up->o.netns);
		goto close_ctl;
	}
	mv->ifindex_there = ifr.ifr_ifindex;
	if (ioctl(ctl, SIOCGIFFLAGS, &ifr) || !(ifr.ifr_flags & IFF_UP)) {
		err = fail(up, -ENETDOWN, "device '%s' in the network namespace %s is down: bring it up first (ip link set %s up)",
			   up->o.netns_dev, up->o.netns, up->o.netns_dev);
		goto close_ctl;
	}
	if (ioctl(ctl, SIOCGIFHWADDR, &ifr) ||
	    ifr.ifr_hwaddr.sa_family != ARPHRD_ETHER) {
		err = fail(up, -EOPNOTSUPP, "device '%s' in the network namespace %s is no Ethernet device: the address cannot be announced on it",
			   up->o.netns_dev, up->o.netns);
		goto close_ctl;
	}
	memcpy(mv->mac, ifr.ifr_hwaddr.sa_data, ETH_ALEN);
close_ctl:
	if (ctl >= 0)
		close(ctl);
	return err;
}

/* A request on nl, its answers through cb until the ACK or the dump's end */
static int rt_call(struct mnl_socket *nl, struct nlmsghdr *nlh, void *buf,
		   size_t len, mnl_cb_t cb, void *data)
{
	__u32 seq = nlh->nlmsg_seq;
	ssize_t n;
	int ret;

	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	do {
		n = mnl_socket_recvfrom(nl, buf, len);
		if (n < 0)
			return -errno;
		ret = mnl_cb_run(buf, n, seq, mnl_socket_get_portid(nl), cb,
				 data);
	} while (ret > MNL_CB_STOP);
	return ret < 0 ? -errno : 0;
}

/* An RTM_NEWADDR or RTM_DELADDR of our address on nl: 0, or -errno */
static int addr_change(struct mnl_socket *nl, struct netns_move *mv,
		       __u16 type, int ifindex)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifaddrmsg *ifa;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK |
			   (type == RTM_NEWADDR ? NLM_F_CREATE | NLM_F_EXCL : 0);
	nlh->nlmsg_seq = ++mv->seq;
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = mv->family;
	ifa->ifa_prefixlen = mv->plen;
	ifa->ifa_index = ifindex;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	mnl_attr_put(nlh, IFA_LOCAL, addr_len(mv), &mv->addr);
	mnl_attr_put(nlh, IFA_ADDRESS, addr_len(mv), &mv->addr);
	if (type == RTM_NEWADDR && mv->family == AF_INET6)
		mnl_attr_put_u32(nlh, IFA_FLAGS, IFA_F_NODAD);
	return rt_call(nl, nlh, buf, sizeof(buf), NULL, NULL);
}

struct addr_find {
	const struct netns_move *mv;
	int ifindex;
	unsigned int plen;
};

static int addr_attr_cb(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(attr);

	if (type == IFA_LOCAL || type == IFA_ADDRESS)
		tb[type] = attr;
	return MNL_CB_OK;
}

static int addr_find_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[IFA_MAX + 1] = {};
	struct addr_find *f = data;
	const struct nlattr *a;

	mnl_attr_parse(nlh, sizeof(*ifa), addr_attr_cb, tb);
	a = tb[IFA_LOCAL] ?: tb[IFA_ADDRESS];
	if (a && ifa->ifa_family == f->mv->family &&
	    mnl_attr_get_payload_len(a) == addr_len(f->mv) &&
	    !memcmp(mnl_attr_get_payload(a), &f->mv->addr, addr_len(f->mv))) {
		f->ifindex = ifa->ifa_index;
		f->plen = ifa->ifa_prefixlen;
	}
	return MNL_CB_OK;
}

/*
 * The device that has our address in nl's namespace (0 if none), and
 * the prefix length it has there
 */
static int addr_where(struct mnl_socket *nl, struct netns_move *mv,
		      int *ifindex, unsigned int *plen)
{
	char buf[DUMP_BUF];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct addr_find f = { .mv = mv };
	struct ifaddrmsg *ifa;
	int err;

	nlh->nlmsg_type = RTM_GETADDR;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = ++mv->seq;
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = mv->family;
	err = rt_call(nl, nlh, buf, sizeof(buf), addr_find_cb, &f);
	if (err)
		return err;
	*ifindex = f.ifindex;
	*plen = f.plen;
	return 0;
}

int netns_prepare(struct baton_upgrade *up)
{
	const struct baton_upgrade_opts *o = &up->o;
	struct netns_move *mv;
	unsigned int plen;
	int err, ifindex;

	mv = up->mv = calloc(1, sizeof(*mv));
	if (!mv)
		return fail(up, -ENOMEM, "out of memory");
	mv->ns = mv->home = mv->announce = -1;
	if (addr_parse(mv, o->netns_addr))
		return fail(up, -EINVAL, "'%s' is no service address: give ADDR/PLEN, as on its device (10.0.0.5/24, fd00::5/64)",
			    o->netns_addr);
	mv->ns = open(o->netns, O_RDONLY | O_CLOEXEC);
	if (mv->ns < 0)
		return fail(up, -errno, "cannot open the network namespace %s: %s",
			    o->netns, strerror(errno));
	if (ioctl(mv->ns, NS_GET_NSTYPE) != CLONE_NEWNET)
		return fail(up, -EINVAL, "%s is not a network namespace (give /run/netns/NAME or /proc/PID/ns/net)",
			    o->netns);
	mv->home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (mv->home < 0)
		return fail(up, -errno, "cannot open our own network namespace: %s",
			    strerror(errno));
	err = open_there(up, mv);
	if (err)
		return err;
	mv->rt_here = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!mv->rt_here || mnl_socket_bind(mv->rt_here, 0, MNL_SOCKET_AUTOPID) ||
	    mnl_socket_bind(mv->rt_there, 0, MNL_SOCKET_AUTOPID))
		return fail(up, -errno, "rtnetlink: %s", strerror(errno));
	err = addr_where(mv->rt_here, mv, &mv->ifindex_here, &plen);
	if (err)
		return fail(up, err, "cannot list this namespace's addresses: %s",
			    strerror(-err));
	if (!mv->ifindex_here)
		return fail(up, -EADDRNOTAVAIL, "%s is not an address of this network namespace: run batonctl in the old instance's namespace, where the service address is",
			    o->netns_addr);
	/* removed by its prefix length too: the one it has here */
	if (plen != mv->plen)
		return fail(up, -EINVAL, "the service address has prefix length %u here, not %u: give --netns-addr as on its device",
			    plen, mv->plen);
	err = addr_where(mv->rt_there, mv, &ifindex, &plen);
	if (err)
		return fail(up, err, "cannot list the addresses of %s: %s",
			    o->netns, strerror(-err));
	if (ifindex)
		return fail(up, -EADDRINUSE, "%s is already an address in %s: the service address must move, not be in both; remove it there first",
			    o->netns_addr, o->netns);
	err = tcp_open_any(&mv->tcp, &up->log);
	if (err || !tcp_has_module(mv->tcp))
		return fail(up, err ?: -EOPNOTSUPP, "moving into another network namespace needs baton.ko, to hold the connections' segments while their address moves (modprobe baton)");
	return 0;
}

/* The gratuitous ARP: a request for our address, from it */
static int announce_v4(struct netns_move *mv)
{
	struct sockaddr_ll to = {
		.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ARP),
		.sll_ifindex = mv->ifindex_there, .sll_halen = ETH_ALEN,
		.sll_addr = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff },
	};
	struct {
		struct arphdr h;
		unsigned char sha[ETH_ALEN], spa[4], tha[ETH_ALEN], tpa[4];
	} __attribute__((packed)) arp = {
		.h = { .ar_hrd = htons(ARPHRD_ETHER), .ar_pro = htons(ETH_P_IP),
		       .ar_hln = ETH_ALEN, .ar_pln = 4,
		       .ar_op = htons(ARPOP_REQUEST) },
	};

	memcpy(arp.sha, mv->mac, ETH_ALEN);
	memcpy(arp.spa, &mv->addr.v4, 4);
	memcpy(arp.tpa, &mv->addr.v4, 4);
	return sendto(mv->announce, &arp, sizeof(arp), 0,
		      (struct sockaddr *)&to, sizeof(to)) < 0 ? -errno : 0;
}

/* The unsolicited neighbour advertisement, to all nodes, overriding */
static int announce_v6(struct netns_move *mv, bool first)
{
	struct sockaddr_in6 to = {
		.sin6_family = AF_INET6, .sin6_scope_id = mv->ifindex_there,
	}, from = { .sin6_family = AF_INET6, .sin6_addr = mv->addr.v6 };
	struct {
		struct nd_neighbor_advert na;
		struct nd_opt_hdr opt;
		unsigned char mac[ETH_ALEN];
	} __attribute__((packed)) msg = {
		.na.nd_na_type = ND_NEIGHBOR_ADVERT,
		.na.nd_na_flags_reserved = ND_NA_FLAG_OVERRIDE,
		.na.nd_na_target = mv->addr.v6,
		.opt = { .nd_opt_type = ND_OPT_TARGET_LINKADDR, .nd_opt_len = 1 },
	};
	int hops = 255;

	inet_pton(AF_INET6, "ff02::1", &to.sin6_addr);
	memcpy(msg.mac, mv->mac, ETH_ALEN);
	/* from the address itself, there now and usable (no DAD) */
	if (first &&
	    (setsockopt(mv->announce, IPPROTO_IPV6, IPV6_MULTICAST_HOPS,
			&hops, sizeof(hops)) ||
	     setsockopt(mv->announce, IPPROTO_IPV6, IPV6_MULTICAST_IF,
			&mv->ifindex_there, sizeof(mv->ifindex_there)) ||
	     bind(mv->announce, (struct sockaddr *)&from, sizeof(from))))
		return -errno;
	return sendto(mv->announce, &msg, sizeof(msg), 0,
		      (struct sockaddr *)&to, sizeof(to)) < 0 ? -errno : 0;
}

static int addr_announce(struct netns_move *mv, bool first)
{
	return mv->family == AF_INET ? announce_v4(mv) : announce_v6(mv, first);
}

/*
 * What the peers sent before they heard the announcement: until no
 * segment was held here for SETTLE_QUIET_MS, or SETTLE_MAX_MS passed
 */
static void settle(struct netns_move *mv)
{
	const __u64 quiet = SETTLE_QUIET_MS * 1000000ULL;
	__u64 held = ~0ULL, changed = now_ns();
	const __u64 until = changed + SETTLE_MAX_MS * 1000000ULL;
	struct baton_freeze_stats st;

	while (now_ns() - changed < quiet && now_ns() < until) {
		if (baton_tcp_freeze_stats(mv->tcp, &st))
			return;
		if (st.held_packets != held) {
			held = st.held_packets;
			changed = now_ns();
		}
		usleep(1000);
	}
}

int netns_move(struct baton_upgrade *up)
{
	struct netns_move *mv = up->mv;
	struct baton_freeze_stats fs = {};
	const char *a = up->o.netns_addr;
	__u64 t = now_ns();
	int err, del_err;

	err = addr_change(mv->rt_there, mv, RTM_NEWADDR, mv->ifindex_there);
	if (err)
		return fail(up, err, "the new instance serves in %s, but %s could not be added there: %s; the connections' segments are held here until the freeze's deadline, then reset",
			    up->o.netns, a, strerror(-err));
	up->r.netns_add_ns = now_ns() - t;
	t = now_ns();
	err = addr_announce(mv, true);
	if (err)
		pr_warn(&up->log, "%s could not be announced on %s in %s: %s; its peers find it there once their neighbour entry ages",
			a, up->o.netns_dev, up->o.netns, strerror(-err));
	settle(mv);
	up->r.netns_announce_ns = now_ns() - t;
	t = now_ns();
	del_err = addr_change(mv->rt_here, mv, RTM_DELADDR, mv->ifindex_here);
	up->r.netns_del_ns = now_ns() - t;
	/* again, for a peer that missed the first: nothing answers here now */
	if (!err)
		addr_announce(mv, false);
	t = now_ns();
	/* the sockets are there now: what was held goes there in any case */
	if (up->freeze_id)
		err = baton_tcp_thaw_into(mv->tcp, up->freeze_id, mv->ns,
					  mv->ifindex_there, &fs);
	else
		err = 0;
	up->r.netns_thaw_ns = now_ns() - t;
	up->r.netns_delivered = fs.delivered_packets;
	if (del_err)
		return fail(up, del_err, "%s moved to %s, but could not be removed here: %s; remove it by hand (ip addr del %s dev ...): until then a peer still sending here is answered with a reset",
			    a, up->o.netns, strerror(-del_err), a);
	if (err)
		return fail(up, err, "%s moved to %s, but what was held for the connections meanwhile could not follow: %s",
			    a, up->o.netns, strerror(-err));
	up->r.netns_moved = true;
	pr_info(&up->log, "%s moved to device %s of %s; %llu segments held here went with it",
		a, up->o.netns_dev, up->o.netns,
		(unsigned long long)fs.delivered_packets);
	return 0;
}

/*
 * After the attach: the old instance's namespace must be ours, where its
 * freeze is and the address leaves from
 */
int netns_check_old(struct baton_upgrade *up)
{
	struct stat theirs, ours;
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/ns/net", up->r.old_pid);
	if (stat(path, &theirs) || fstat(up->mv->home, &ours))
		return fail(up, -errno, "cannot see the old instance's network namespace (%s): %s",
			    path, strerror(errno));
	if (theirs.st_ino != ours.st_ino || theirs.st_dev != ours.st_dev)
		return fail(up, -EXDEV, "the old instance (pid %d) runs in another network namespace than batonctl: run batonctl in its namespace (nsenter --net=/proc/%d/ns/net batonctl ...)",
			    up->r.old_pid, up->r.old_pid);
	return 0;
}

/* The new instance's start: into the namespace (the child's copy) */
int netns_child_fd(const struct baton_upgrade *up)
{
	return up->mv ? up->mv->ns : -1;
}
