// SPDX-License-Identifier: GPL-2.0-only
/*
 * baton.ko, through libbaton and through raw generic netlink; runs inside
 * the VM (scripts/vm.sh), where the module is loaded. IPv4 and IPv6:
 *  1. an export reports what TCP_INFO reports: cwnd, ssthresh, RTT,
 *     deviation, minimum RTT, RTO;
 *  2. an import into a socket in repair mode sets them; out of repair
 *     mode it is refused with the kernel's reason, and nothing changes;
 *  3. an import with one bad value among good ones changes nothing
 *     (PRIOR_CWND 0 among them); what the socket cannot take is brought
 *     within what it can (CUBIC's counter, the RTO and variance floors);
 *     every record an export made of a real connection imports; the
 *     retransmission timer is re-armed with the imported RTO (the first
 *     retransmission measured); BBR starts over from the imported state;
 *     an RTT imported alone keeps the variance floors;
 *  4. checkpoint, close, restore: the congestion window, RTT and segment
 *     size come back; with unread received bytes and a window-limited
 *     send queue, moved inside a freeze, the peer notices nothing and
 *     every byte arrives once;
 *     restored without the module's part, the window starts over;
 *  5. a record attribute the module does not know is skipped by the
 *     library, but the module itself refuses it, as it refuses unknown
 *     flags, wrong lengths and unknown commands;
 *  6. not a socket, not TCP, a listener, a socket of another netns, a
 *     caller without CAP_NET_ADMIN: each refused; nobody in a user and
 *     network namespace of its own moves its own connection;
 *  7. malformed, truncated and foreign checkpoints are refused before a
 *     socket is made;
 *  8. the freeze: a connection frozen, the client sending, checkpointed,
 *     closed, restored and thawed loses and repeats no byte, without a
 *     reset or a retransmission timeout, in its namespace or in another
 *     one its address moved to (the thaw sends what it held there); the send queue split all sent,
 *     all unsent and both; caps per flow and per namespace; the
 *     deadline; bad input; a user namespace; rmmod and a namespace exit
 *     while frozen; PRIOR_CWND 0 refused in CWR (no WARN); thaws while
 *     the namespace's LOCAL_IN hooks are replaced (no WARN);
 *  9. the bulk state: frozen connections with bytes in every queue
 *     exported, closed, imported and thawed; a 1.6 MB queue in parts; a
 *     connection its peer closed (CLOSE_WAIT) with bytes unread, moved
 *     both ways: the bytes, then end of stream, a reply, no reset; one
 *     whose end of stream was read, moved: end of stream again;
 *     bad exports and imports, all or nothing; imported with
 *     BATON_IMPORT_F_REPAIR, a socket is in repair mode: closed, the
 *     peer hears nothing; let go, it carries bytes both ways; 3,300
 *     connections, more than one request's reply holds, in one call;
 * 10. 20,000 seeded random requests to every command, then the module
 *     still answers and the connection still carries bytes;
 * 11. the kernel's policy is the YAML spec's.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stddef.h>
#include <linux/tcp.h>	/* struct tcp_info with tcpi_min_rtt */
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/sockios.h>
#include <linux/genetlink.h>
#include <linux/capability.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_tables.h>

#include "kselftest_harness.h"
#include "baton_tcp.h"
#include <linux/baton.h>
#include "helpers.h"
#include "baton_policy_spec.h"	/* scripts/genl_spec.py */

#define RECVQ_LEN	3000
#define SENDQ_MAX	(4 << 20)
#define TCP_RTO_MIN_MS	200	/* the kernel's TCP_RTO_MIN: no RTO is shorter */

/* what the library logged last: the kernel's reason travels through it */
struct logbuf {
	char last[512];
};

static void log_keep(void *ctx, enum baton_log_level level, const char *msg)
{
	struct logbuf *lb = ctx;

	(void)level;
	snprintf(lb->last, sizeof(lb->last), "%s", msg);
}

static int tcp_info_get(int fd, struct tcp_info *ti)
{
	socklen_t len = sizeof(*ti);

	memset(ti, 0, sizeof(*ti));
	return getsockopt(fd, IPPROTO_TCP, TCP_INFO, ti, &len) ? -errno : 0;
}

/* waits until all fd sent is acknowledged: no RTT sample is on its way */
static int settle(int fd)
{
	struct tcp_info ti;

	for (int ms = 0; ms < 5000; ms += 10) {
		if (tcp_info_get(fd, &ti))
			return -errno;
		if (!ti.tcpi_unacked)
			return 0;
		usleep(10 * 1000);
	}
	return -ETIMEDOUT;
}

static int repair(int fd, int on)
{
	return setsockopt(fd, IPPROTO_TCP, TCP_REPAIR, &on, sizeof(on)) ? -errno : 0;
}

/* the value of one u32 attribute in a record, or -1 */
static long long rec_get(const void *rec, size_t len, __u16 type)
{
	const struct nlattr *attr;

	mnl_attr_for_each_payload(rec, len) {
		if (mnl_attr_get_type(attr) == type)
			return mnl_attr_get_u32(attr);
	}
	return -1;
}

static size_t rec_put(void *rec, size_t off, __u16 type, __u32 v)
{
	struct nlattr *a = (struct nlattr *)((char *)rec + off);

	a->nla_type = type;
	a->nla_len = MNL_ATTR_HDRLEN + sizeof(v);
	memcpy(mnl_attr_get_payload(a), &v, sizeof(v));
	return off + MNL_ALIGN(a->nla_len);
}

static int accept_wait(int lfd)
{
	struct pollfd p = { .fd = lfd, .events = POLLIN };

	if (poll(&p, 1, 5000) != 1)
		return -ETIMEDOUT;
	return accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
}

static int read_exact(int fd, char *buf, size_t len)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		if (poll(&p, 1, 5000) != 1)
			return -ETIMEDOUT;
		n = recv(fd, buf + got, len - got, MSG_DONTWAIT);
		if (n <= 0)
			return n ? -errno : -EPIPE;
		got += n;
	}
	return 0;
}

/* bytes in each direction after a move: once each, in order */
static int exchange(int a, int b)
{
	char out[] = "after the move", in[sizeof(out)];

	if (send(a, out, sizeof(out), 0) != sizeof(out) ||
	    read_exact(b, in, sizeof(in)) || memcmp(in, out, sizeof(out)))
		return -EIO;
	if (send(b, out, sizeof(out), 0) != sizeof(out) ||
	    read_exact(a, in, sizeof(in)) || memcmp(in, out, sizeof(out)))
		return -EIO;
	return 0;
}

/*
 * Raw requests to the module, past the library's checks, on a generic
 * netlink socket of the test's own (opened and the family resolved at
 * the first request, in each test's process): the library's insides stay
 * its own.
 */
static struct {
	struct mnl_socket *nl;
	__u16 family;
	__u32 seq;
} raw;

static int raw_family_cb(const struct nlattr *attr, void *data)
{
	if (mnl_attr_get_type(attr) == CTRL_ATTR_FAMILY_ID &&
	    mnl_attr_validate(attr, MNL_TYPE_U16) == 0)
		*(__u16 *)data = mnl_attr_get_u16(attr);
	return MNL_CB_OK;
}

static int raw_msg_cb(const struct nlmsghdr *nlh, void *data)
{
	return mnl_attr_parse(nlh, sizeof(struct genlmsghdr), raw_family_cb,
			      data);
}

static int raw_open(void)
{
	char buf[4096];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct genlmsghdr *g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	ssize_t n;

	raw.nl = mnl_socket_open(NETLINK_GENERIC);
	if (!raw.nl || mnl_socket_bind(raw.nl, 0, MNL_SOCKET_AUTOPID) < 0)
		return -errno;
	nlh->nlmsg_type = GENL_ID_CTRL;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	nlh->nlmsg_seq = ++raw.seq;
	g->cmd = CTRL_CMD_GETFAMILY;
	g->version = 1;
	mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, BATON_GENL_NAME);
	if (mnl_socket_sendto(raw.nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	n = mnl_socket_recvfrom(raw.nl, buf, sizeof(buf));
	if (n < 0 || mnl_cb_run(buf, n, raw.seq, 0, raw_msg_cb, &raw.family) < 0)
		return -errno;
	return raw.family ? 0 : -ENOENT;
}

static struct nlmsghdr *raw_put(char *buf, __u8 cmd)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct genlmsghdr *g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));

	if (!raw.nl && raw_open())
		raw.family = 0;	/* the call then fails, and says so */
	nlh->nlmsg_type = raw.family;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	g->cmd = cmd;
	g->version = BATON_GENL_VERSION;
	return nlh;
}

/* 0 or the kernel's -errno; a dump's messages (up to 32 KiB) read whole */
static int raw_call(struct nlmsghdr *nlh)
{
	static char buf[65536];
	ssize_t n;
	int ret;

	if (!raw.nl || !raw.family)
		return -ENOENT;
	nlh->nlmsg_seq = ++raw.seq;
	if (mnl_socket_sendto(raw.nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	do {
		n = mnl_socket_recvfrom(raw.nl, buf, sizeof(buf));
		if (n < 0)
			return -errno;
		ret = mnl_cb_run(buf, n, raw.seq, 0, NULL, NULL);
	} while (ret > 0 && ret != MNL_CB_STOP);
	return ret < 0 ? -errno : 0;
}

FIXTURE(conn) {
	struct baton_tcp *tcp;
	struct logbuf log;
	int lfd, port;
	int cli, srv;
};

FIXTURE_VARIANT(conn) {
	int family;
};

FIXTURE_VARIANT_ADD(conn, ipv4) { .family = AF_INET };
FIXTURE_VARIANT_ADD(conn, ipv6) { .family = AF_INET6 };

FIXTURE_SETUP(conn)
{
	int one = 1, small = 4096;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	ASSERT_EQ(0, netns_enter());
	self->lfd = listener_make(variant->family, &self->port);
	ASSERT_LE(0, self->lfd);
	ASSERT_EQ(0, getsockname(self->lfd, (struct sockaddr *)&ss, &len));

	/* a small receive buffer: the server's writes queue up behind it */
	self->cli = socket(variant->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_LE(0, self->cli);
	ASSERT_EQ(0, setsockopt(self->cli, SOL_SOCKET, SO_RCVBUF, &small,
				sizeof(small)));
	ASSERT_EQ(0, connect(self->cli, (struct sockaddr *)&ss, len));
	self->srv = accept_wait(self->lfd);
	ASSERT_LE(0, self->srv);
	setsockopt(self->srv, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

	/* a few round trips, so that there are RTT samples */
	for (int i = 0; i < 10; i++)
		ASSERT_EQ(0, exchange(self->cli, self->srv));
	ASSERT_EQ(0, settle(self->srv));
	ASSERT_EQ(0, baton_tcp_open(&self->tcp, log_keep, &self->log));
}

FIXTURE_TEARDOWN(conn)
{
	baton_tcp_close(self->tcp);
	close(self->cli);
	if (self->srv >= 0)
		close(self->srv);
	close(self->lfd);
}

TEST_F(conn, export_matches_tcp_info)
{
	char rec[512];
	struct tcp_info ti;
	int len;

	len = baton_tcp_export(self->tcp, self->srv, rec, sizeof(rec));
	ASSERT_LT(0, len);
	ASSERT_EQ(0, tcp_info_get(self->srv, &ti));
	EXPECT_EQ(ti.tcpi_snd_cwnd, rec_get(rec, len, BATON_GENL_A_CWND));
	EXPECT_EQ(ti.tcpi_snd_ssthresh,
		  rec_get(rec, len, BATON_GENL_A_SSTHRESH));
	EXPECT_EQ(ti.tcpi_rtt, rec_get(rec, len, BATON_GENL_A_SRTT_US));
	EXPECT_EQ(ti.tcpi_rttvar, rec_get(rec, len, BATON_GENL_A_MDEV_US));
	EXPECT_EQ(ti.tcpi_rto, rec_get(rec, len, BATON_GENL_A_RTO_US));
	EXPECT_EQ(ti.tcpi_min_rtt, rec_get(rec, len, BATON_GENL_A_RTT_MIN_US));
	EXPECT_LT(0, rec_get(rec, len, BATON_GENL_A_SRTT_US));
	/* a short buffer is refused, not overrun */
	EXPECT_EQ(-ENOSPC, baton_tcp_export(self->tcp, self->srv, rec, 16));
}

/* cwnd 37, ssthresh 20, srtt 5 ms, mdev 1 ms, rttvar 1.5 ms, ... */
static size_t state_record(char *rec)
{
	size_t off = 0;

	off = rec_put(rec, off, BATON_GENL_A_CWND, 37);
	off = rec_put(rec, off, BATON_GENL_A_SSTHRESH, 20);
	off = rec_put(rec, off, BATON_GENL_A_SRTT_US, 5000);
	off = rec_put(rec, off, BATON_GENL_A_MDEV_US, 1000);
	off = rec_put(rec, off, BATON_GENL_A_RTTVAR_US, 1500);
	off = rec_put(rec, off, BATON_GENL_A_RTT_MIN_US, 3000);
	off = rec_put(rec, off, BATON_GENL_A_RTO_US, 300000);
	return off;
}

/* the state above, into a connected socket, through repair mode */
static int import_state(struct baton_tcp *tcp, int fd)
{
	char rec[256];

	return repair(fd, TCP_REPAIR_ON) ?:
	       baton_tcp_import(tcp, fd, rec, state_record(rec)) ?:
	       repair(fd, TCP_REPAIR_OFF_NO_WP);
}

TEST_F(conn, import_sets_state_in_repair_mode)
{
	struct tcp_info before, ti;
	char rec[256];
	size_t len = state_record(rec);

	ASSERT_EQ(0, tcp_info_get(self->srv, &before));
	EXPECT_EQ(-EPERM, baton_tcp_import(self->tcp, self->srv, rec, len));
	EXPECT_NE(NULL, strstr(self->log.last, "repair mode"));
	ASSERT_EQ(0, tcp_info_get(self->srv, &ti));
	EXPECT_EQ(before.tcpi_snd_cwnd, ti.tcpi_snd_cwnd);
	EXPECT_EQ(before.tcpi_snd_ssthresh, ti.tcpi_snd_ssthresh);

	ASSERT_EQ(0, repair(self->srv, TCP_REPAIR_ON));
	EXPECT_EQ(0, baton_tcp_import(self->tcp, self->srv, rec, len));
	ASSERT_EQ(0, repair(self->srv, TCP_REPAIR_OFF_NO_WP));
	ASSERT_EQ(0, tcp_info_get(self->srv, &ti));
	EXPECT_EQ(37, ti.tcpi_snd_cwnd);
	EXPECT_EQ(20, ti.tcpi_snd_ssthresh);
	EXPECT_EQ(5000, ti.tcpi_rtt);
	EXPECT_EQ(1000, ti.tcpi_rttvar);
	EXPECT_EQ(3000, ti.tcpi_min_rtt);
	EXPECT_EQ(300000, ti.tcpi_rto);	/* whole jiffies at 100, 250 and 1000 Hz */
	EXPECT_EQ(0, exchange(self->cli, self->srv));
}

TEST_F(conn, bad_value_changes_nothing)
{
	struct tcp_info before, ti;
	char rec[256];
	size_t len;

	ASSERT_EQ(0, tcp_info_get(self->srv, &before));
	ASSERT_EQ(0, repair(self->srv, TCP_REPAIR_ON));

	/*
	 * no window before a reduction: in CWR or Recovery it would reach
	 * tcp_cwnd_reduction()'s WARN_ON_ONCE(!tp->prior_cwnd)
	 */
	len = rec_put(rec, 0, BATON_GENL_A_CWND, 37);
	len = rec_put(rec, len, BATON_GENL_A_SSTHRESH, 20);
	len = rec_put(rec, len, BATON_GENL_A_PRIOR_CWND, 0);
	EXPECT_EQ(-ERANGE, baton_tcp_import(self->tcp, self->srv, rec, len));

	/* out of the policy's ranges */
	len = rec_put(rec, 0, BATON_GENL_A_SSTHRESH, 20);
	len = rec_put(rec, len, BATON_GENL_A_CWND, 0);
	EXPECT_EQ(-ERANGE, baton_tcp_import(self->tcp, self->srv, rec, len));
	len = rec_put(rec, 0, BATON_GENL_A_SSTHRESH, 20);
	len = rec_put(rec, len, BATON_GENL_A_RTO_US, 10);
	EXPECT_EQ(-ERANGE, baton_tcp_import(self->tcp, self->srv, rec, len));
	len = rec_put(rec, 0, BATON_GENL_A_SRTT_US, 121000000);
	EXPECT_EQ(-ERANGE, baton_tcp_import(self->tcp, self->srv, rec, len));
	/* an attribute of the wrong size, and one cut short */
	len = rec_put(rec, 0, BATON_GENL_A_CWND, 37);
	((struct nlattr *)rec)->nla_len = MNL_ATTR_HDRLEN + 2;
	EXPECT_EQ(-EINVAL, baton_tcp_import(self->tcp, self->srv, rec, len));
	len = rec_put(rec, 0, BATON_GENL_A_CWND, 37);
	EXPECT_EQ(-EINVAL, baton_tcp_import(self->tcp, self->srv, rec, len - 2));
	/* nothing to import */
	EXPECT_EQ(-EINVAL, baton_tcp_import(self->tcp, self->srv, rec, 0));

	ASSERT_EQ(0, repair(self->srv, TCP_REPAIR_OFF_NO_WP));
	ASSERT_EQ(0, tcp_info_get(self->srv, &ti));
	EXPECT_EQ(before.tcpi_snd_cwnd, ti.tcpi_snd_cwnd);
	EXPECT_EQ(before.tcpi_snd_ssthresh, ti.tcpi_snd_ssthresh);
	EXPECT_EQ(before.tcpi_rto, ti.tcpi_rto);
	EXPECT_EQ(0, exchange(self->cli, self->srv));
}

/*
 * What the socket cannot take is brought within what it can: CUBIC's
 * increase counter (up to 100 windows) to the window, the RTO and the
 * variance to the socket's minimum RTO (TCP_RTO_MIN here: 200 ms).
 */
TEST_F(conn, import_takes_what_the_socket_can)
{
	char rec[256];
	struct tcp_info ti;
	size_t len;
	int n;

	len = rec_put(rec, 0, BATON_GENL_A_CWND, 37);
	len = rec_put(rec, len, BATON_GENL_A_CWND_CNT, 3700);
	len = rec_put(rec, len, BATON_GENL_A_SRTT_US, 5000);
	len = rec_put(rec, len, BATON_GENL_A_RTTVAR_US, 1500);
	len = rec_put(rec, len, BATON_GENL_A_MDEV_MAX_US, 100);
	len = rec_put(rec, len, BATON_GENL_A_RTO_US, 1000);
	ASSERT_EQ(0, repair(self->srv, TCP_REPAIR_ON));
	EXPECT_EQ(0, baton_tcp_import(self->tcp, self->srv, rec, len))
		TH_LOG("%s", self->log.last);
	ASSERT_EQ(0, repair(self->srv, TCP_REPAIR_OFF_NO_WP));

	ASSERT_EQ(0, tcp_info_get(self->srv, &ti));
	EXPECT_EQ(37, ti.tcpi_snd_cwnd);
	EXPECT_EQ(200000, ti.tcpi_rto);
	n = baton_tcp_export(self->tcp, self->srv, rec, sizeof(rec));
	ASSERT_LT(0, n);
	EXPECT_GE(37, rec_get(rec, n, BATON_GENL_A_CWND_CNT));
	/* kept four times over, as the RTO adds it: 200 ms / 4 */
	EXPECT_LE(50000, rec_get(rec, n, BATON_GENL_A_RTTVAR_US));
	EXPECT_LE(50000, rec_get(rec, n, BATON_GENL_A_MDEV_MAX_US));
	EXPECT_EQ(0, exchange(self->cli, self->srv));
}

/* a second connection to the fixture's listener */
static int conn_pair(int lfd, int family, int port, int *cli, int *srv)
{
	*cli = client_connect(family, port);
	if (*cli < 0)
		return *cli;
	*srv = accept_wait(lfd);
	if (*srv < 0) {
		close(*cli);
		return *srv;
	}
	return 0;
}

/* exports fd and imports the record into spare, in repair mode */
static int round_trip(struct baton_tcp *tcp, int fd, int spare)
{
	char rec[512];
	int n;

	n = baton_tcp_export(tcp, fd, rec, sizeof(rec));
	if (n < 0)
		return n;
	return baton_tcp_import(tcp, spare, rec, n);
}

/*
 * Whatever moment an export catches a real connection in, its record
 * imports: just connected, on either side, and all through a transfer
 * in each direction.
 */
TEST_F(conn, export_import_round_trip)
{
	static char buf[65536];
	int cli2, srv2, cli3, srv3, failed = 0, tries = 0;
	size_t moved = 0;
	ssize_t n;

	ASSERT_EQ(0, conn_pair(self->lfd, variant->family, self->port,
			       &cli2, &srv2));
	ASSERT_EQ(0, conn_pair(self->lfd, variant->family, self->port,
			       &cli3, &srv3));
	ASSERT_EQ(0, repair(srv2, TCP_REPAIR_ON));
	EXPECT_EQ(0, round_trip(self->tcp, cli3, srv2)) TH_LOG("%s", self->log.last);
	EXPECT_EQ(0, round_trip(self->tcp, srv3, srv2)) TH_LOG("%s", self->log.last);

	for (int dir = 0; dir < 2; dir++) {
		int from = dir ? self->cli : self->srv;
		int to = dir ? self->srv : self->cli;

		for (moved = 0; moved < (4 << 20); tries += 2) {
			send(from, buf, sizeof(buf), MSG_DONTWAIT);
			while ((n = recv(to, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
				moved += n;
			if (round_trip(self->tcp, from, srv2) ||
			    round_trip(self->tcp, to, srv2)) {
				TH_LOG("refused: %s", self->log.last);
				failed++;
			}
		}
	}
	TH_LOG("%d records imported", tries);
	EXPECT_EQ(0, failed);
	ASSERT_EQ(0, repair(srv2, TCP_REPAIR_OFF_NO_WP));
	EXPECT_EQ(0, exchange(cli2, srv2));
	close(cli2);
	close(srv2);
	close(cli3);
	close(srv3);
}

/*
 * The retransmission timer of the connection lport -> rport, from
 * /proc/net/tcp: which one (1: retransmission or loss probe) and the
 * milliseconds left.
 */
static int proc_tcp_timer(int family, int lport, int rport, int *which,
			  long *ms)
{
	char line[512], local[64], remote[64];
	unsigned long when;
	unsigned int tr;
	int ret = -ENOENT;
	FILE *f;

	f = fopen(family == AF_INET ? "/proc/net/tcp" : "/proc/net/tcp6", "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char *lp, *rp;

		if (sscanf(line, " %*d: %63s %63s %*x %*x:%*x %x:%lx", local,
			   remote, &tr, &when) != 4)
			continue;
		lp = strrchr(local, ':');
		rp = strrchr(remote, ':');
		if (lp && rp && strtol(lp + 1, NULL, 16) == lport &&
		    strtol(rp + 1, NULL, 16) == rport) {
			*which = tr;
			*ms = when * 10;	/* clock ticks at USER_HZ */
			ret = 0;
			break;
		}
	}
	fclose(f);
	return ret;
}

static int local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		return -errno;
	return ntohs(ss.ss_family == AF_INET ?
		     ((struct sockaddr_in *)&ss)->sin_port :
		     ((struct sockaddr_in6 *)&ss)->sin6_port);
}

static long ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 +
	       (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/*
 * Bytes written in repair mode count as sent and arm the retransmission
 * timer, without an RTT (as a restore writes them). An import of the
 * RTO re-arms it: the first retransmission comes after the imported RTO,
 * not after the timer armed before it.
 */
TEST_F(conn, imported_rto_rearms_timer)
{
	char data[1000], in[sizeof(data)], rec[64];
	int which, cport, queue;
	struct timespec t0;
	struct tcp_info ti;
	__u32 retrans;
	long ms;

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)(i * 11);
	cport = local_port(self->cli);
	ASSERT_LT(0, cport);
	ASSERT_EQ(0, repair(self->srv, TCP_REPAIR_ON));
	queue = TCP_SEND_QUEUE;
	ASSERT_EQ(0, setsockopt(self->srv, IPPROTO_TCP, TCP_REPAIR_QUEUE,
				&queue, sizeof(queue)));
	ASSERT_EQ(sizeof(data), send(self->srv, data, sizeof(data), 0));
	queue = TCP_NO_QUEUE;
	ASSERT_EQ(0, setsockopt(self->srv, IPPROTO_TCP, TCP_REPAIR_QUEUE,
				&queue, sizeof(queue)));
	ASSERT_EQ(0, proc_tcp_timer(variant->family, self->port, cport,
				    &which, &ms));
	ASSERT_EQ(1, which);
	TH_LOG("armed by the write: %ld ms", ms);
	ASSERT_EQ(0, tcp_info_get(self->srv, &ti));
	retrans = ti.tcpi_total_retrans;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	ASSERT_EQ(0, baton_tcp_import(self->tcp, self->srv, rec,
				      rec_put(rec, 0, BATON_GENL_A_RTO_US,
					      1500000)));
	ASSERT_EQ(0, proc_tcp_timer(variant->family, self->port, cport,
				    &which, &ms));
	EXPECT_EQ(1, which);
	EXPECT_GE(1500, ms);
	EXPECT_LT(700, ms) TH_LOG("the timer still fires in %ld ms", ms);
	ASSERT_EQ(0, repair(self->srv, TCP_REPAIR_OFF_NO_WP));

	for (int i = 0; i < 1000; i++) {
		ASSERT_EQ(0, tcp_info_get(self->srv, &ti));
		if (ti.tcpi_total_retrans != retrans)
			break;
		usleep(5000);
	}
	ms = ms_since(&t0);
	TH_LOG("first retransmission %ld ms after importing an RTO of 1500 ms",
	       ms);
	EXPECT_NE(retrans, ti.tcpi_total_retrans);
	EXPECT_LE(1500 - 4, ms);	/* a jiffy at 250 Hz */
	EXPECT_EQ(0, read_exact(self->cli, in, sizeof(in)));
	EXPECT_EQ(0, memcmp(in, data, sizeof(data)));
	EXPECT_EQ(0, exchange(self->cli, self->srv));
}

/*
 * The congestion module starts over from the imported state: BBR paces
 * at the imported window over the imported RTT (times its startup gain
 * of 2.885, less its 1% margin), and the imported threshold stays,
 * although BBR's init sets its own.
 */
TEST_F(conn, import_restarts_congestion_module)
{
	static const char bbr[] = "bbr";
	struct tcp_info ti;
	char rec[256];
	double want;

	ASSERT_EQ(0, setsockopt(self->srv, IPPROTO_TCP, TCP_CONGESTION, bbr,
				strlen(bbr)));
	ASSERT_EQ(0, exchange(self->cli, self->srv));
	ASSERT_EQ(0, settle(self->srv));
	ASSERT_EQ(0, repair(self->srv, TCP_REPAIR_ON));
	ASSERT_EQ(0, baton_tcp_import(self->tcp, self->srv, rec,
				      state_record(rec)));
	ASSERT_EQ(0, tcp_info_get(self->srv, &ti));
	ASSERT_EQ(0, repair(self->srv, TCP_REPAIR_OFF_NO_WP));

	want = 37.0 * ti.tcpi_snd_mss / 0.005 * 2.885 * 0.99;
	TH_LOG("pacing at %llu bytes/s, %.0f expected",
	       (unsigned long long)ti.tcpi_pacing_rate, want);
	EXPECT_LT(want * 0.97, ti.tcpi_pacing_rate);
	EXPECT_GT(want * 1.03, ti.tcpi_pacing_rate);
	EXPECT_EQ(37, ti.tcpi_snd_cwnd);
	EXPECT_EQ(20, ti.tcpi_snd_ssthresh);
	EXPECT_EQ(0, exchange(self->cli, self->srv));
}

/* fills the send queue until the peer's window is full; bytes written */
static ssize_t fill_sendq(int fd)
{
	static char chunk[16384];
	ssize_t total = 0, n;

	for (;;) {
		for (size_t i = 0; i < sizeof(chunk); i++)
			chunk[i] = (char)((total + i) * 7 + 3);
		n = send(fd, chunk, sizeof(chunk), MSG_DONTWAIT);
		if (n < 0)
			return errno == EAGAIN ? total : -errno;
		total += n;
		if (total > SENDQ_MAX)
			return -ENOBUFS;
	}
}

static int check_stream(int fd, ssize_t len, ssize_t *at)
{
	char buf[16384];
	ssize_t got = 0;

	while (got < len) {
		size_t want = len - got < (ssize_t)sizeof(buf) ?
			      (size_t)(len - got) : sizeof(buf);

		*at = got;
		if (read_exact(fd, buf, want))
			return -EIO;
		for (size_t i = 0; i < want; i++)
			if (buf[i] != (char)((got + i) * 7 + 3))
				return -EILSEQ;
		got += want;
	}
	return 0;
}

static int freeze_fd(struct baton_tcp *tcp, int fd, unsigned int deadline_ms,
		     __u32 *id)
{
	struct baton_flow f = { .fd = fd };

	return baton_tcp_freeze(tcp, &f, 1, deadline_ms, NULL, id);
}

/* checkpoint, close and restore srv; the new fd, or -errno */
static int move(struct baton_tcp *tcp, int *srv, void **rec, size_t *len,
		__u16 drop)
{
	char *copy;
	int fd;

	if (baton_tcp_checkpoint(tcp, *srv, rec, len))
		return -EIO;
	close(*srv);	/* in repair mode: the peer hears nothing */
	*srv = -1;
	if (!drop)
		return baton_tcp_restore(tcp, *rec, *len);
	copy = malloc(*len);
	if (!copy)
		return -ENOMEM;
	fd = baton_tcp_restore(tcp, copy, rec_without(*rec, *len, drop, copy));
	free(copy);
	return fd;
}

/* the bytes of a queue in a checkpoint, over all its chunks */
static long long rec_len(const void *rec, size_t len, __u16 type)
{
	const struct nlattr *attr;
	long long sum = 0;

	mnl_attr_for_each_payload(rec, len) {
		if (mnl_attr_get_type(attr) == type)
			sum += mnl_attr_get_payload_len(attr);
	}
	return sum;
}

TEST_F(conn, checkpoint_restore_keeps_state)
{
	struct tcp_info ti;
	size_t len;
	void *rec;
	__u32 mss;
	int fd;

	ASSERT_EQ(0, tcp_info_get(self->srv, &ti));
	mss = ti.tcpi_snd_mss;
	ASSERT_EQ(0, import_state(self->tcp, self->srv));

	fd = move(self->tcp, &self->srv, &rec, &len, 0);
	ASSERT_LE(0, fd) TH_LOG("restore: %s", self->log.last);
	self->srv = fd;
	free(rec);

	/* read before any data moves: nothing has sampled them since */
	ASSERT_EQ(0, tcp_info_get(fd, &ti));
	EXPECT_EQ(1 /* TCP_ESTABLISHED */, ti.tcpi_state);
	EXPECT_EQ(37, ti.tcpi_snd_cwnd);
	EXPECT_EQ(20, ti.tcpi_snd_ssthresh);
	EXPECT_EQ(5000, ti.tcpi_rtt);
	EXPECT_EQ(1000, ti.tcpi_rttvar);
	EXPECT_EQ(3000, ti.tcpi_min_rtt);
	EXPECT_EQ(300000, ti.tcpi_rto);
	/* segments of the connection's MSS, not connect()'s default */
	EXPECT_EQ(mss, ti.tcpi_snd_mss);
	EXPECT_EQ(0, exchange(self->cli, fd));
}

TEST_F(conn, checkpoint_restore_keeps_bytes)
{
	char in[RECVQ_LEN], want[RECVQ_LEN];
	ssize_t sent, at = 0;
	size_t len;
	void *rec;
	__u32 id;
	int fd;

	/* unread bytes at srv, and srv's writes stuck behind cli's window */
	for (int i = 0; i < RECVQ_LEN; i++)
		want[i] = (char)(i * 13);
	ASSERT_EQ(RECVQ_LEN, send(self->cli, want, RECVQ_LEN, 0));
	usleep(100 * 1000);
	sent = fill_sendq(self->srv);
	ASSERT_LT(0, sent);

	/*
	 * Moved inside a freeze, as every move with baton.ko is: srv probes
	 * cli's zero window, and cli's answer, arriving between the close
	 * and the restore, would meet no socket and be answered with a reset
	 */
	ASSERT_EQ(0, freeze_fd(self->tcp, self->srv, 5000, &id));
	fd = move(self->tcp, &self->srv, &rec, &len, 0);
	ASSERT_LE(0, fd) TH_LOG("restore: %s", self->log.last);
	self->srv = fd;
	ASSERT_EQ(0, baton_tcp_thaw(self->tcp, id, NULL));
	EXPECT_EQ(RECVQ_LEN, rec_len(rec, len, BATON_TCP_A_RECVQ));
	/* how much of it counts as sent depends on the ACKs of the moment */
	EXPECT_LT(0, rec_len(rec, len, BATON_TCP_A_SENDQ) +
		     rec_len(rec, len, BATON_TCP_A_UNSENT));
	TH_LOG("%zd bytes written: %lld sent and unacknowledged, %lld unsent, %lld received unread",
	       sent, rec_len(rec, len, BATON_TCP_A_SENDQ),
	       rec_len(rec, len, BATON_TCP_A_UNSENT),
	       rec_len(rec, len, BATON_TCP_A_RECVQ));
	free(rec);

	/* every byte once, in order, both ways; then the connection goes on */
	EXPECT_EQ(0, read_exact(fd, in, RECVQ_LEN));
	EXPECT_EQ(0, memcmp(in, want, RECVQ_LEN));
	EXPECT_EQ(0, check_stream(self->cli, sent, &at))
		TH_LOG("stream broken near byte %zd of %zd", at, sent);
	EXPECT_EQ(0, exchange(self->cli, fd));
}

TEST_F(conn, restore_without_module_state_starts_over)
{
	struct tcp_info ti;
	size_t len;
	void *rec;
	int fd;

	ASSERT_EQ(0, import_state(self->tcp, self->srv));

	fd = move(self->tcp, &self->srv, &rec, &len, BATON_TCP_A_KERNEL);
	ASSERT_LE(0, fd);
	self->srv = fd;
	free(rec);
	ASSERT_EQ(0, tcp_info_get(fd, &ti));
	/* TCP_REPAIR alone: the initial window, no RTT estimate */
	EXPECT_NE(37, ti.tcpi_snd_cwnd);
	EXPECT_NE(5000, ti.tcpi_rtt);
	EXPECT_EQ(0, exchange(self->cli, fd));
}

/*
 * An RTT imported alone into a socket rebuilt where the route's metrics
 * were cached (a connection to the same peer ended before): its variance
 * starts at 0 there, not at the 3 s fallback, and tcp_rtt_estimator()
 * never raises it once an RTT is set. The floors hold all the same:
 * after round trips the RTO is the minimum's, not one tick.
 */
TEST_F(conn, srtt_alone_keeps_rto_floor)
{
	struct tcp_info ti;
	char rec[64];
	int cli, srv, fd, i;
	size_t len;
	void *ck;

	ASSERT_EQ(0, conn_pair(self->lfd, variant->family, self->port,
			       &cli, &srv));
	for (i = 0; i < 10; i++)
		ASSERT_EQ(0, exchange(cli, srv));
	close(srv);	/* its end goes to TIME_WAIT: the metrics saved */
	close(cli);

	fd = move(self->tcp, &self->srv, &ck, &len, BATON_TCP_A_KERNEL);
	ASSERT_LE(0, fd);
	self->srv = fd;
	free(ck);
	len = rec_put(rec, 0, BATON_GENL_A_SRTT_US, 100);
	len = rec_put(rec, len, BATON_GENL_A_MDEV_US, 1);
	ASSERT_EQ(0, repair(fd, TCP_REPAIR_ON));
	EXPECT_EQ(0, baton_tcp_import(self->tcp, fd, rec, len))
		TH_LOG("%s", self->log.last);
	ASSERT_EQ(0, repair(fd, TCP_REPAIR_OFF_NO_WP));
	for (i = 0; i < 20; i++)
		ASSERT_EQ(0, exchange(self->cli, fd));
	ASSERT_EQ(0, settle(fd));
	ASSERT_EQ(0, tcp_info_get(fd, &ti));
	EXPECT_LE(TCP_RTO_MIN_MS * 1000, ti.tcpi_rto);
}

TEST_F(conn, unknown_attributes)
{
	struct nlmsghdr *nlh;
	struct genlmsghdr *gh;
	char rec[256], buf[512];
	struct tcp_info ti;
	size_t len;

	/* the library skips what the module does not know */
	ASSERT_EQ(0, repair(self->srv, TCP_REPAIR_ON));
	len = rec_put(rec, 0, BATON_GENL_A_CWND, 33);
	len = rec_put(rec, len, BATON_GENL_A_MAX + 7, 1);
	EXPECT_EQ(1, baton_tcp_import(self->tcp, self->srv, rec, len));
	ASSERT_EQ(0, tcp_info_get(self->srv, &ti));
	EXPECT_EQ(33, ti.tcpi_snd_cwnd);
	/* and what the module knows but is not state: a freeze's, a flow's */
	len = rec_put(rec, 0, BATON_GENL_A_CWND, 34);
	len = rec_put(rec, len, BATON_GENL_A_FREEZE_ID, 1);
	len = rec_put(rec, len, BATON_GENL_A_DEADLINE_MS, 100);
	len = rec_put(rec, len, BATON_GENL_A_FLOW, 1);
	EXPECT_EQ(3, baton_tcp_import(self->tcp, self->srv, rec, len))
		TH_LOG("%s", self->log.last);
	ASSERT_EQ(0, tcp_info_get(self->srv, &ti));
	EXPECT_EQ(34, ti.tcpi_snd_cwnd);

	/* the module refuses it outright, and the rest with it */
	nlh = raw_put(buf, BATON_GENL_CMD_TCP_IMPORT);
	mnl_attr_put_u32(nlh, BATON_GENL_A_FD, self->srv);
	mnl_attr_put_u32(nlh, BATON_GENL_A_CWND, 44);
	mnl_attr_put_u32(nlh, BATON_GENL_A_MAX + 7, 1);
	EXPECT_EQ(-EINVAL, raw_call(nlh));
	/* unknown flags */
	nlh = raw_put(buf, BATON_GENL_CMD_TCP_IMPORT);
	mnl_attr_put_u32(nlh, BATON_GENL_A_FD, self->srv);
	mnl_attr_put_u32(nlh, BATON_GENL_A_FLAGS, 1U << 5);
	mnl_attr_put_u32(nlh, BATON_GENL_A_CWND, 44);
	EXPECT_EQ(-EINVAL, raw_call(nlh));
	/* CONN_IMPORT's flag, which TCP_IMPORT does not take */
	nlh = raw_put(buf, BATON_GENL_CMD_TCP_IMPORT);
	mnl_attr_put_u32(nlh, BATON_GENL_A_FD, self->srv);
	mnl_attr_put_u32(nlh, BATON_GENL_A_FLAGS, BATON_IMPORT_F_NONLOCAL);
	mnl_attr_put_u32(nlh, BATON_GENL_A_CWND, 44);
	EXPECT_EQ(-EINVAL, raw_call(nlh));
	/* a u16 where a u32 belongs */
	nlh = raw_put(buf, BATON_GENL_CMD_TCP_IMPORT);
	mnl_attr_put_u16(nlh, BATON_GENL_A_FD, self->srv);
	mnl_attr_put_u32(nlh, BATON_GENL_A_CWND, 44);
	EXPECT_EQ(-EINVAL,
		  raw_call(nlh));
	/* no fd at all */
	nlh = raw_put(buf, BATON_GENL_CMD_TCP_EXPORT);
	EXPECT_EQ(-EINVAL, raw_call(nlh));
	/* an unknown command */
	nlh = raw_put(buf, BATON_GENL_CMD_MAX + 1);
	EXPECT_EQ(-EOPNOTSUPP, raw_call(nlh));
	/* a reserved header field set */
	nlh = raw_put(buf, BATON_GENL_CMD_TCP_EXPORT);
	gh = mnl_nlmsg_get_payload(nlh);
	gh->reserved = 1;
	mnl_attr_put_u32(nlh, BATON_GENL_A_FD, self->srv);
	EXPECT_EQ(-EINVAL, raw_call(nlh));

	/* none of the refused requests changed the window imported last */
	ASSERT_EQ(0, tcp_info_get(self->srv, &ti));
	EXPECT_EQ(34, ti.tcpi_snd_cwnd);
	ASSERT_EQ(0, repair(self->srv, TCP_REPAIR_OFF_NO_WP));
	EXPECT_EQ(0, exchange(self->cli, self->srv));
}

TEST_F(conn, wrong_sockets)
{
	int pipefd[2], udp, fd, netns_fd;
	char rec[256];

	ASSERT_EQ(0, pipe(pipefd));
	EXPECT_EQ(-ENOTSOCK, baton_tcp_export(self->tcp, pipefd[0], rec,
					      sizeof(rec)));
	close(pipefd[0]);
	close(pipefd[1]);
	EXPECT_EQ(-EBADF, baton_tcp_export(self->tcp, 1000, rec, sizeof(rec)));
	udp = socket(variant->family, SOCK_DGRAM, 0);
	ASSERT_LE(0, udp);
	EXPECT_EQ(-EPROTOTYPE, baton_tcp_export(self->tcp, udp, rec,
						sizeof(rec)));
	EXPECT_NE(NULL, strstr(self->log.last, "not a TCP socket"));
	close(udp);
	EXPECT_EQ(-ENOTCONN, baton_tcp_export(self->tcp, self->lfd, rec,
					      sizeof(rec)));
	fd = socket(variant->family, SOCK_STREAM, 0);
	ASSERT_LE(0, fd);
	EXPECT_EQ(-ENOTCONN, baton_tcp_export(self->tcp, fd, rec, sizeof(rec)));
	close(fd);

	/* a socket of this netns, asked about from another */
	netns_fd = open("/proc/self/ns/net", O_RDONLY);
	ASSERT_LE(0, netns_fd);
	ASSERT_EQ(0, netns_enter());
	{
		struct baton_tcp *other;

		ASSERT_EQ(0, baton_tcp_open(&other, log_keep, &self->log));
		EXPECT_EQ(-EXDEV, baton_tcp_export(other, self->srv, rec,
						   sizeof(rec)));
		EXPECT_NE(NULL, strstr(self->log.last, "network namespace"));
		baton_tcp_close(other);
	}
	ASSERT_EQ(0, setns(netns_fd, CLONE_NEWNET));
	close(netns_fd);
}

TEST_F(conn, needs_net_admin)
{
	int status;
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct baton_tcp *tcp;
		struct logbuf lb;
		char rec[256];
		int err;

		/* nobody, with no capability left */
		if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534))
			_exit(10);
		err = baton_tcp_open(&tcp, log_keep, &lb);
		if (err)
			_exit(11);
		err = baton_tcp_export(tcp, self->srv, rec, sizeof(rec));
		_exit(err == -EPERM ? 0 : 12);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
}

/*
 * GENL_UNS_ADMIN_PERM and netnsok: nobody, in a user and network
 * namespace of its own, holds CAP_NET_ADMIN there and may move its own
 * connections, but not one of the parent namespace's.
 */
static int userns_child(int family, int outside_fd)
{
	struct baton_tcp *tcp;
	struct tcp_info ti;
	int lfd, port, cli, srv, fd;
	char rec[256];
	size_t len;
	void *ck;

	if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534))
		return 10;
	if (unshare(CLONE_NEWUSER))
		return 11;
	if (netns_enter())	/* owned by the new user namespace */
		return 12;
	if (baton_tcp_open(&tcp, NULL, NULL))
		return 13;
	if (baton_tcp_export(tcp, outside_fd, rec, sizeof(rec)) != -EXDEV)
		return 14;
	lfd = listener_make(family, &port);
	cli = client_connect(family, port);
	srv = lfd < 0 || cli < 0 ? -1 : accept_wait(lfd);
	if (srv < 0 || exchange(cli, srv))
		return 15;
	if (import_state(tcp, srv))
		return 16;
	fd = move(tcp, &srv, &ck, &len, 0);
	if (fd < 0)
		return 17;
	free(ck);
	if (tcp_info_get(fd, &ti) || ti.tcpi_snd_cwnd != 37)
		return 18;
	if (exchange(cli, fd))
		return 19;
	baton_tcp_close(tcp);
	return 0;
}

TEST_F(conn, user_namespace)
{
	int status;
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(userns_child(variant->family, self->srv));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	/* 10..19: the step that failed, in userns_child() */
	EXPECT_EQ(0, WEXITSTATUS(status));
}

TEST_F(conn, bad_checkpoints)
{
	char bad[1024];
	size_t len, cut;
	void *rec;
	int fd;

	ASSERT_EQ(0, baton_tcp_checkpoint(self->tcp, self->srv, &rec, &len));
	ASSERT_EQ(0, repair(self->srv, TCP_REPAIR_OFF_NO_WP));
	ASSERT_LT(len, sizeof(bad));

	/* truncated anywhere inside an attribute */
	for (cut = 1; cut < len; cut += 7) {
		if (baton_tcp_restore(self->tcp, rec, cut) >= 0)
			break;
	}
	EXPECT_LE(len, cut) TH_LOG("a checkpoint cut at %zu was restored", cut);
	/* without a required part */
	EXPECT_EQ(-EINVAL, baton_tcp_restore(self->tcp, bad,
			rec_without(rec, len, BATON_TCP_A_WINDOW, bad)));
	EXPECT_NE(NULL, strstr(self->log.last, "window"));
	/* a foreign family */
	memcpy(bad, rec, len);
	{
		struct nlattr *attr;

		mnl_attr_for_each_payload((void *)bad, len) {
			if (mnl_attr_get_type(attr) == BATON_TCP_A_FAMILY)
				*(__u32 *)mnl_attr_get_payload(attr) = 42;
		}
	}
	EXPECT_EQ(-EAFNOSUPPORT, baton_tcp_restore(self->tcp, bad, len));
	/* not a checkpoint at all */
	memset(bad, 0xa5, sizeof(bad));
	EXPECT_GT(0, baton_tcp_restore(self->tcp, bad, sizeof(bad)));
	free(rec);

	/* nothing was made: the next descriptor is the one after ours */
	fd = dup(0);
	EXPECT_LE(fd, self->srv + 2);
	close(fd);
	EXPECT_EQ(0, exchange(self->cli, self->srv));
}

/*
 * The freeze. One counter of /proc/net/netstat or /proc/net/snmp (the
 * test's network namespace): group "TcpExt", name "TCPTimeouts".
 */
static long long netstat(const char *file, const char *group,
			 const char *name)
{
	static char names[8192], values[8192];
	size_t glen = strlen(group);
	long long v = -1;
	FILE *f;

	f = fopen(file, "r");
	if (!f)
		return -1;
	while (fgets(names, sizeof(names), f) &&
	       fgets(values, sizeof(values), f)) {
		char *sn, *sv, *n, *val;

		if (strncmp(names, group, glen) || names[glen] != ':')
			continue;
		n = strtok_r(names + glen + 1, " \n", &sn);
		val = strtok_r(values + glen + 1, " \n", &sv);
		for (; n && val; n = strtok_r(NULL, " \n", &sn),
				 val = strtok_r(NULL, " \n", &sv)) {
			if (!strcmp(n, name)) {
				v = atoll(val);
				break;
			}
		}
		break;
	}
	fclose(f);
	return v;
}

static long long tcp_timeouts(void)
{
	return netstat("/proc/net/netstat", "TcpExt", "TCPTimeouts");
}

static long long tcp_resets(void)
{
	return netstat("/proc/net/snmp", "Tcp", "OutRsts");
}

/* bytes a socket has received and not read */
static int inq(int fd)
{
	int n;

	return ioctl(fd, SIOCINQ, &n) ? -errno : n;
}

/*
 * A client whose first retransmission timeout is 3 s away: a VM under
 * load may take longer than the 200 ms minimum to move a connection, but
 * a segment dropped rather than held still times out within the 5 s a
 * test waits for its bytes, and shows in TCPTimeouts.
 */
static int patient(struct baton_tcp *tcp, int fd)
{
	char rec[16];

	return repair(fd, TCP_REPAIR_ON) ?:
	       baton_tcp_import(tcp, fd, rec,
				rec_put(rec, 0, BATON_GENL_A_RTO_US, 3000000)) ?:
	       repair(fd, TCP_REPAIR_OFF_NO_WP);
}

static void pattern(char *buf, size_t off, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)((off + i) * 7 + 3);
}

/*
 * The issue's case: the server's connection frozen, the client sends 25
 * bytes and 4,000 more, the server is checkpointed, closed in repair
 * mode, restored and thawed. Every byte arrives once, in order, without
 * a reset, and without a retransmission timeout on either side.
 */
TEST_F(conn, freeze_moves_connection_byte_exact)
{
	char want[25 + 4000], in[sizeof(want)];
	struct baton_freeze_stats st;
	long long timeouts, resets;
	struct tcp_info ti;
	size_t len;
	void *rec;
	__u32 id;
	int fd, one = 1;

	for (size_t i = 0; i < sizeof(want); i++)
		want[i] = (char)(i * 17 + 1);
	setsockopt(self->cli, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	ASSERT_EQ(0, patient(self->tcp, self->cli));
	timeouts = tcp_timeouts();
	resets = tcp_resets();
	ASSERT_LE(0, timeouts);

	ASSERT_EQ(0, freeze_fd(self->tcp, self->srv, 5000, &id))
		TH_LOG("%s", self->log.last);
	ASSERT_EQ(25, send(self->cli, want, 25, 0));
	ASSERT_EQ(4000, send(self->cli, want + 25, 4000, 0));
	usleep(20 * 1000);
	/* held: neither received nor acknowledged */
	EXPECT_EQ(0, inq(self->srv));
	ASSERT_EQ(0, tcp_info_get(self->cli, &ti));
	EXPECT_LT(0, ti.tcpi_unacked);
	ASSERT_EQ(0, baton_tcp_freeze_stats(self->tcp, &st));
	EXPECT_EQ(1, st.freezes);
	EXPECT_EQ(1, st.flows);
	EXPECT_LE(1, st.held_packets);

	fd = move(self->tcp, &self->srv, &rec, &len, 0);
	ASSERT_LE(0, fd) TH_LOG("restore: %s", self->log.last);
	self->srv = fd;
	EXPECT_EQ(0, rec_len(rec, len, BATON_TCP_A_RECVQ));
	free(rec);
	ASSERT_EQ(0, baton_tcp_thaw(self->tcp, id, &st));
	EXPECT_LE(1, st.delivered_packets);
	EXPECT_EQ(0, st.overflow_packets);
	EXPECT_EQ(0, st.dropped_packets);

	EXPECT_EQ(0, read_exact(fd, in, sizeof(in)));
	EXPECT_EQ(0, memcmp(in, want, sizeof(in)));
	EXPECT_EQ(0, exchange(self->cli, fd));
	EXPECT_EQ(0, inq(fd));
	EXPECT_EQ(timeouts, tcp_timeouts());
	EXPECT_EQ(resets, tcp_resets());
	ASSERT_EQ(0, baton_tcp_freeze_stats(self->tcp, &st));
	EXPECT_EQ(0, st.freezes);
	EXPECT_EQ(0, st.flows);
	EXPECT_EQ(0, st.held_packets);
}

/* waits until fd has sent all it holds or until data is in flight */
static int wait_info(int fd, bool (*done)(const struct tcp_info *))
{
	struct tcp_info ti;

	for (int ms = 0; ms < 5000; ms += 5) {
		if (tcp_info_get(fd, &ti))
			return -errno;
		if (done(&ti))
			return 0;
		usleep(5000);
	}
	return -ETIMEDOUT;
}

static bool all_sent(const struct tcp_info *ti)
{
	return ti->tcpi_unacked && !ti->tcpi_notsent_bytes;
}

static bool some_sent(const struct tcp_info *ti)
{
	return ti->tcpi_unacked;
}

enum split { ALL_SENT, ALL_UNSENT, MIXED, SPLITS };

/*
 * The send queue at the checkpoint, in each split the freeze makes
 * certain: all sent and unacknowledged (the peer's ACKs held), all
 * unsent (behind the peer's closed window, what was sent acknowledged
 * before the freeze), and both. Every byte reaches the client once, in
 * order, after the restore and the thaw.
 */
TEST_F(conn, freeze_sendq_split)
{
	static const char *const name[SPLITS] = {
		"all sent", "all unsent", "sent and unsent",
	};
	static char buf[20000];

	for (int split = 0; split < SPLITS; split++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int cli, srv, fd, small = 4096;
		long long sent, unsent;
		ssize_t total, at = 0;
		struct tcp_info ti;
		__u64 acked;
		size_t len;
		void *rec;
		__u32 id;

		ASSERT_EQ(0, getsockname(self->lfd, (struct sockaddr *)&ss, &sl));
		cli = socket(variant->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		ASSERT_LE(0, cli);
		if (split != ALL_SENT)
			ASSERT_EQ(0, setsockopt(cli, SOL_SOCKET, SO_RCVBUF,
						&small, sizeof(small)));
		ASSERT_EQ(0, connect(cli, (struct sockaddr *)&ss, sl));
		srv = accept_wait(self->lfd);
		ASSERT_LE(0, srv);
		ASSERT_EQ(0, exchange(cli, srv));
		ASSERT_EQ(0, settle(srv));
		ASSERT_EQ(0, tcp_info_get(srv, &ti));
		acked = ti.tcpi_bytes_acked;

		switch (split) {
		case ALL_SENT:
			ASSERT_EQ(0, freeze_fd(self->tcp, srv, 5000, &id));
			pattern(buf, 0, sizeof(buf));
			total = send(srv, buf, sizeof(buf), 0);
			ASSERT_EQ(sizeof(buf), total);
			ASSERT_EQ(0, wait_info(srv, all_sent));
			break;
		case ALL_UNSENT:
			total = fill_sendq(srv);
			ASSERT_LT(0, total);
			/* what went out is acknowledged: the window is shut */
			ASSERT_EQ(0, settle(srv));
			ASSERT_EQ(0, freeze_fd(self->tcp, srv, 5000, &id));
			break;
		default:
			ASSERT_EQ(0, freeze_fd(self->tcp, srv, 5000, &id));
			total = fill_sendq(srv);
			ASSERT_LT(0, total);
			ASSERT_EQ(0, wait_info(srv, some_sent));
			break;
		}

		/* what the client acknowledged before the freeze has left */
		ASSERT_EQ(0, tcp_info_get(srv, &ti));
		acked = ti.tcpi_bytes_acked - acked;
		fd = move(self->tcp, &srv, &rec, &len, 0);
		ASSERT_LE(0, fd) TH_LOG("%s: restore: %s", name[split],
					self->log.last);
		sent = rec_len(rec, len, BATON_TCP_A_SENDQ);
		unsent = rec_len(rec, len, BATON_TCP_A_UNSENT);
		free(rec);
		TH_LOG("%s: %zd bytes, %llu acknowledged before the freeze, %lld sent, %lld unsent",
		       name[split], total, (unsigned long long)acked, sent,
		       unsent);
		EXPECT_EQ(total, acked + sent + unsent);
		if (split == ALL_SENT)
			EXPECT_EQ(0, unsent);
		if (split == ALL_UNSENT)
			EXPECT_EQ(0, sent);
		if (split == MIXED) {
			EXPECT_LT(0, sent);
			EXPECT_LT(0, unsent);
		}
		ASSERT_EQ(0, baton_tcp_thaw(self->tcp, id, NULL));
		EXPECT_EQ(0, check_stream(cli, total, &at))
			TH_LOG("%s: stream broken near byte %zd of %zd",
			       name[split], at, total);
		EXPECT_EQ(0, exchange(cli, fd));
		close(cli);
		close(fd);
	}
}

static int param_set(const char *name, unsigned long v)
{
	char path[128];
	FILE *f;
	int err;

	snprintf(path, sizeof(path), "/sys/module/baton/parameters/%s", name);
	f = fopen(path, "w");
	if (!f)
		return -errno;
	err = fprintf(f, "%lu\n", v) < 0 ? -EIO : 0;
	return fclose(f) ? -errno : err;
}

/* small writes, one segment each */
static int send_segments(int fd, const char *buf, int n, int size)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	for (int i = 0; i < n; i++) {
		if (send(fd, buf + i * size, size, 0) != size)
			return -errno;
		usleep(2000);
	}
	return 0;
}

/*
 * Over the flow's cap, segments are dropped and counted; those held are
 * delivered and the client sends the others again: every byte once.
 * The same over the namespace's cap (module parameter netns_packets);
 * after it nothing is counted as held, and a new freeze holds again.
 */
TEST_F(conn, freeze_caps_count_overflow)
{
	struct baton_freeze_caps caps = { .flow_packets = 3 };
	struct baton_flow f = { .fd = self->srv };
	char want[1000], in[sizeof(want)];
	struct baton_freeze_stats st;
	int cli, srv, err;
	__u32 id;

	for (size_t i = 0; i < sizeof(want); i++)
		want[i] = (char)(i * 5 + 7);
	ASSERT_EQ(0, baton_tcp_freeze(self->tcp, &f, 1, 5000, &caps, &id));
	ASSERT_EQ(0, send_segments(self->cli, want, 10, 100));
	usleep(20 * 1000);
	ASSERT_EQ(0, baton_tcp_freeze_stats(self->tcp, &st));
	EXPECT_EQ(3, st.held_packets);
	EXPECT_LE(1, st.overflow_packets);
	ASSERT_EQ(0, baton_tcp_thaw(self->tcp, id, &st));
	EXPECT_EQ(3, st.delivered_packets);
	EXPECT_LE(1, st.overflow_packets);
	EXPECT_LT(0, st.overflow_bytes);
	TH_LOG("flow cap 3: %llu delivered, %llu over the cap",
	       (unsigned long long)st.delivered_packets,
	       (unsigned long long)st.overflow_packets);
	EXPECT_EQ(0, read_exact(self->srv, in, sizeof(in)));
	EXPECT_EQ(0, memcmp(in, want, sizeof(in)));

	EXPECT_EQ(0, exchange(self->cli, self->srv));

	/*
	 * The namespace's cap, below the flow's, on a new connection (the
	 * first one's window is still recovering from the drops).
	 */
	ASSERT_EQ(0, conn_pair(self->lfd, variant->family, self->port,
			       &cli, &srv));
	ASSERT_EQ(0, param_set("netns_packets", 2));
	f.fd = srv;
	err = baton_tcp_freeze(self->tcp, &f, 1, 5000, NULL, &id);
	if (!err) {
		send_segments(cli, want, 10, 100);
		usleep(20 * 1000);
		baton_tcp_freeze_stats(self->tcp, &st);
	}
	param_set("netns_packets", 65536);
	ASSERT_EQ(0, err) TH_LOG("freeze: %s", self->log.last);
	EXPECT_EQ(2, st.held_packets);
	ASSERT_EQ(0, baton_tcp_thaw(self->tcp, id, &st));
	EXPECT_EQ(2, st.delivered_packets);
	EXPECT_LE(1, st.overflow_packets);
	TH_LOG("netns cap 2: %llu delivered, %llu over the cap",
	       (unsigned long long)st.delivered_packets,
	       (unsigned long long)st.overflow_packets);
	EXPECT_EQ(0, read_exact(srv, in, sizeof(in)));
	EXPECT_EQ(0, memcmp(in, want, sizeof(in)));
	EXPECT_EQ(0, exchange(cli, srv));

	/*
	 * The namespace's cap back where it was: nothing held now, in
	 * packets or bytes, and a new freeze holds again
	 */
	ASSERT_EQ(0, baton_tcp_freeze_stats(self->tcp, &st));
	EXPECT_EQ(0, st.held_packets);
	EXPECT_EQ(0, st.held_bytes);
	ASSERT_EQ(0, baton_tcp_freeze(self->tcp, &f, 1, 5000, NULL, &id));
	EXPECT_EQ(0, send_segments(cli, want, 3, 100));
	usleep(20 * 1000);
	ASSERT_EQ(0, baton_tcp_thaw(self->tcp, id, &st));
	EXPECT_LE(1, st.delivered_packets);
	EXPECT_EQ(0, st.overflow_packets);
	EXPECT_EQ(0, read_exact(srv, in, 300));
	EXPECT_EQ(0, memcmp(in, want, 300));
	close(cli);
	close(srv);
}

/* Nobody thaws: the deadline does, and the id is then unknown */
TEST_F(conn, freeze_deadline_thaws)
{
	char want[25] = "held until the deadline", in[sizeof(want)];
	struct baton_freeze_stats st;
	struct pollfd p = { .fd = self->srv, .events = POLLIN };
	struct timespec t0;
	long ms;
	__u32 id;

	ASSERT_EQ(0, baton_tcp_freeze_stats(self->tcp, &st));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ASSERT_EQ(0, freeze_fd(self->tcp, self->srv, 1500, &id));
	ASSERT_EQ(sizeof(want), send(self->cli, want, sizeof(want), 0));
	usleep(50 * 1000);
	EXPECT_EQ(0, inq(self->srv));
	EXPECT_EQ(1, poll(&p, 1, 5000));
	ms = ms_since(&t0);
	TH_LOG("delivered %ld ms after a freeze of 1500 ms", ms);
	EXPECT_LE(1500 - 4, ms);
	EXPECT_EQ(0, read_exact(self->srv, in, sizeof(in)));
	EXPECT_EQ(0, memcmp(in, want, sizeof(in)));
	EXPECT_EQ(-ENOENT, baton_tcp_thaw(self->tcp, id, NULL));
	EXPECT_NE(NULL, strstr(self->log.last, "deadline"));
	{
		struct baton_freeze_stats now;
		int i;

		/*
		 * The deadline's work delivers what it held, then takes its
		 * flows out of the table: a reader woken by the delivery may
		 * look before they are out.
		 */
		for (i = 0; i < 100; i++) {
			ASSERT_EQ(0, baton_tcp_freeze_stats(self->tcp, &now));
			if (!now.flows)
				break;
			usleep(10 * 1000);
		}
		EXPECT_EQ(st.expired + 1, now.expired);
		EXPECT_EQ(0, now.flows);
	}
	EXPECT_EQ(0, exchange(self->cli, self->srv));
}

static void addr_of(int fd, bool peer, struct sockaddr_storage *ss)
{
	socklen_t len = sizeof(*ss);

	memset(ss, 0, sizeof(*ss));
	if (peer)
		getpeername(fd, (struct sockaddr *)ss, &len);
	else
		getsockname(fd, (struct sockaddr *)ss, &len);
}

static void port_set(struct sockaddr_storage *ss, int port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

/*
 * Bad requests, each refused with its reason and changing nothing: no
 * flow, no deadline, values out of range, descriptors that are not TCP,
 * not connected or of another namespace, tuples the descriptor does not
 * hold, malformed addresses, a flow named twice or frozen already, an
 * unknown id; the caller without CAP_NET_ADMIN over the namespace.
 */
TEST_F(conn, freeze_bad_input)
{
	struct baton_flow f[2] = {};
	struct baton_freeze_stats st;
	char buf[512];
	struct nlmsghdr *nlh;
	int pipefd[2], udp, lone, netns_fd, other_port;
	__u32 id;

	/* no flow; no deadline; deadline and caps out of range */
	EXPECT_EQ(-EINVAL, baton_tcp_freeze(self->tcp, f, 0, 1000, NULL, &id));
	EXPECT_NE(NULL, strstr(self->log.last, "no flow"));
	nlh = raw_put(buf, BATON_GENL_CMD_FREEZE);
	{
		struct nlattr *nest = mnl_attr_nest_start(nlh, BATON_GENL_A_FLOW);

		mnl_attr_put_u32(nlh, BATON_FLOW_A_FD, self->srv);
		mnl_attr_nest_end(nlh, nest);
	}
	EXPECT_EQ(-EINVAL, raw_call(nlh));
	f[0].fd = self->srv;
	EXPECT_EQ(-ERANGE, baton_tcp_freeze(self->tcp, f, 1, 0, NULL, &id));
	EXPECT_EQ(-ERANGE, baton_tcp_freeze(self->tcp, f, 1,
					    BATON_DEADLINE_MAX_MS + 1, NULL, &id));
	{
		struct baton_freeze_caps caps = {
			.flow_packets = BATON_FLOW_PACKETS_MAX + 1,
		};

		EXPECT_EQ(-ERANGE, baton_tcp_freeze(self->tcp, f, 1, 1000,
						    &caps, &id));
	}

	/* descriptors: not a socket, not TCP, not connected, a listener */
	ASSERT_EQ(0, pipe(pipefd));
	f[0].fd = pipefd[0];
	EXPECT_EQ(-ENOTSOCK, baton_tcp_freeze(self->tcp, f, 1, 1000, NULL, &id));
	EXPECT_NE(NULL, strstr(self->log.last, "flow 0"));
	close(pipefd[0]);
	close(pipefd[1]);
	udp = socket(variant->family, SOCK_DGRAM, 0);
	f[0].fd = udp;
	EXPECT_EQ(-EPROTOTYPE, baton_tcp_freeze(self->tcp, f, 1, 1000, NULL, &id));
	EXPECT_NE(NULL, strstr(self->log.last, "not a TCP socket"));
	close(udp);
	lone = socket(variant->family, SOCK_STREAM, 0);
	f[0].fd = lone;
	EXPECT_EQ(-ENOTCONN, baton_tcp_freeze(self->tcp, f, 1, 1000, NULL, &id));
	EXPECT_NE(NULL, strstr(self->log.last, "not connected"));
	f[0].fd = self->lfd;
	EXPECT_EQ(-ENOTCONN, baton_tcp_freeze(self->tcp, f, 1, 1000, NULL, &id));

	/* tuples: held by a listener, yes; by an unrelated socket, no */
	f[0].fd = self->lfd;
	addr_of(self->srv, false, &f[0].local);
	addr_of(self->srv, true, &f[0].peer);
	EXPECT_EQ(0, baton_tcp_freeze(self->tcp, f, 1, 1000, NULL, &id))
		TH_LOG("%s", self->log.last);
	EXPECT_EQ(0, baton_tcp_thaw(self->tcp, id, NULL));
	f[0].fd = lone;
	EXPECT_EQ(-EPERM, baton_tcp_freeze(self->tcp, f, 1, 1000, NULL, &id));
	EXPECT_NE(NULL, strstr(self->log.last, "does not hold"));
	f[0].fd = self->cli;	/* the other end: another tuple */
	EXPECT_EQ(-EPERM, baton_tcp_freeze(self->tcp, f, 1, 1000, NULL, &id));
	f[0].fd = self->lfd;	/* a listener on another port */
	other_port = self->port == 65535 ? 1 : self->port + 1;
	port_set(&f[0].local, other_port);
	EXPECT_EQ(-EPERM, baton_tcp_freeze(self->tcp, f, 1, 1000, NULL, &id));
	close(lone);

	/* addresses: one of them, a wildcard, port 0, two families */
	addr_of(self->srv, false, &f[0].local);
	nlh = raw_put(buf, BATON_GENL_CMD_FREEZE);
	mnl_attr_put_u32(nlh, BATON_GENL_A_DEADLINE_MS, 1000);
	{
		struct nlattr *nest = mnl_attr_nest_start(nlh, BATON_GENL_A_FLOW);

		mnl_attr_put_u32(nlh, BATON_FLOW_A_FD, self->srv);
		mnl_attr_put(nlh, BATON_FLOW_A_LOCAL,
			     variant->family == AF_INET ?
			     sizeof(struct sockaddr_in) :
			     sizeof(struct sockaddr_in6), &f[0].local);
		mnl_attr_nest_end(nlh, nest);
	}
	EXPECT_EQ(-EINVAL, raw_call(nlh));
	f[0].fd = self->srv;
	addr_of(self->srv, true, &f[0].peer);
	port_set(&f[0].peer, 0);
	EXPECT_EQ(-EINVAL, baton_tcp_freeze(self->tcp, f, 1, 1000, NULL, &id));
	EXPECT_NE(NULL, strstr(self->log.last, "wildcard"));
	addr_of(self->srv, true, &f[0].peer);
	f[0].peer.ss_family = variant->family == AF_INET ? AF_INET6 : AF_INET;
	EXPECT_GT(0, baton_tcp_freeze(self->tcp, f, 1, 1000, NULL, &id));

	/* twice in one freeze; frozen already; an unknown id */
	memset(f, 0, sizeof(f));
	f[0].fd = self->srv;
	f[1].fd = self->srv;
	EXPECT_EQ(-EBUSY, baton_tcp_freeze(self->tcp, f, 2, 1000, NULL, &id));
	EXPECT_NE(NULL, strstr(self->log.last, "flow 1"));
	EXPECT_NE(NULL, strstr(self->log.last, "twice"));
	ASSERT_EQ(0, baton_tcp_freeze(self->tcp, f, 1, 1000, NULL, &id));
	{
		__u32 id2;

		EXPECT_EQ(-EBUSY, baton_tcp_freeze(self->tcp, f, 1, 1000, NULL,
						   &id2));
		EXPECT_NE(NULL, strstr(self->log.last, "frozen already"));
	}
	EXPECT_EQ(0, baton_tcp_thaw(self->tcp, id, NULL));
	EXPECT_EQ(-ENOENT, baton_tcp_thaw(self->tcp, id, NULL));
	EXPECT_EQ(-ERANGE, baton_tcp_thaw(self->tcp, 0, NULL));

	/* a socket of this namespace, from another */
	netns_fd = open("/proc/self/ns/net", O_RDONLY);
	ASSERT_LE(0, netns_fd);
	ASSERT_EQ(0, netns_enter());
	{
		struct baton_tcp *other;

		ASSERT_EQ(0, baton_tcp_open(&other, log_keep, &self->log));
		EXPECT_EQ(-EXDEV, baton_tcp_freeze(other, f, 1, 1000, NULL, &id));
		EXPECT_NE(NULL, strstr(self->log.last, "network namespace"));
		baton_tcp_close(other);
	}
	ASSERT_EQ(0, setns(netns_fd, CLONE_NEWNET));
	close(netns_fd);

	/* nothing changed: nothing frozen, the connection carries bytes */
	ASSERT_EQ(0, baton_tcp_freeze_stats(self->tcp, &st));
	EXPECT_EQ(0, st.flows);
	EXPECT_EQ(0, st.freezes);
	EXPECT_EQ(0, exchange(self->cli, self->srv));
}

/*
 * A listener's port, frozen, then the listener closed: a client that
 * connects meanwhile waits (its SYN held: neither refused nor answered);
 * a new listener on the port, the thaw, and it is connected and carries
 * bytes. listen is where the listener binds (a wildcard, or loopback),
 * cfamily the client's family (IPv4 to IPv6's wildcard: dual stack).
 */
static void port_hold(struct __test_metadata *_metadata, struct baton_tcp *tcp,
		      struct logbuf *log, const struct sockaddr_storage *listen_at,
		      int cfamily)
{
	struct sockaddr_storage at = *listen_at;
	socklen_t len = sizeof(at);
	struct baton_freeze_stats st;
	struct baton_flow f = {};
	int lfd, cli, srv, one = 1;
	__u32 id;

	lfd = socket(at.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_LE(0, lfd);
	if (at.ss_family == AF_INET6)	/* dual stack, whatever the sysctl */
		ASSERT_EQ(0, setsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY,
					&(int){ 0 }, sizeof(int)));
	ASSERT_EQ(0, bind(lfd, (struct sockaddr *)&at, len));
	ASSERT_EQ(0, listen(lfd, 16));
	ASSERT_EQ(0, getsockname(lfd, (struct sockaddr *)&at, &len));
	f.fd = lfd;
	f.local = at;		/* peer AF_UNSPEC: a port */
	ASSERT_EQ(0, baton_tcp_freeze(tcp, &f, 1, 5000, NULL, &id))
		TH_LOG("%s", log->last);
	close(lfd);		/* no socket on the port now */

	cli = client_connect_start(cfamily, ntohs(((struct sockaddr_in *)&at)->sin_port));
	ASSERT_LE(0, cli);
	usleep(300 * 1000);
	EXPECT_EQ(-ETIMEDOUT, client_connect_end(cli, 0));
	ASSERT_EQ(0, baton_tcp_freeze_stats(tcp, &st));
	EXPECT_LE(1, st.held_packets);

	lfd = socket(at.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_LE(0, lfd);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (at.ss_family == AF_INET6)
		ASSERT_EQ(0, setsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY,
					&(int){ 0 }, sizeof(int)));
	ASSERT_EQ(0, bind(lfd, (struct sockaddr *)&at, len));
	ASSERT_EQ(0, listen(lfd, 16));
	ASSERT_EQ(0, baton_tcp_thaw(tcp, id, &st));
	EXPECT_LE(1, st.delivered_packets);
	EXPECT_EQ(0, st.overflow_packets);
	EXPECT_EQ(0, client_connect_end(cli, 5000));
	srv = accept_wait(lfd);
	EXPECT_LE(0, srv);
	if (srv >= 0) {
		EXPECT_EQ(0, exchange(cli, srv));
		close(srv);
	}
	close(cli);
	close(lfd);
}

static void any_addr(int family, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	ss->ss_family = family;	/* the wildcard, port 0 */
}

TEST_F(conn, port_holds_new_connections)
{
	struct sockaddr_storage at;
	long long resets = tcp_resets();

	addr_of(self->lfd, false, &at);		/* loopback */
	port_set(&at, 0);
	port_hold(_metadata, self->tcp, &self->log, &at, variant->family);
	any_addr(variant->family, &at);
	port_hold(_metadata, self->tcp, &self->log, &at, variant->family);
	if (variant->family == AF_INET6)	/* IPv4 to IPv6's wildcard */
		port_hold(_metadata, self->tcp, &self->log, &at, AF_INET);
	EXPECT_EQ(resets, tcp_resets());
}

/*
 * Ports refused with their reason: a peer named, a socket that is not a
 * listener, a listener on another port or address, port 0, an address
 * the listener does not receive at, a port named twice or frozen already
 */
TEST_F(conn, port_bad_input)
{
	struct baton_freeze_stats st;
	struct baton_flow f = {};
	char buf[512];
	struct nlmsghdr *nlh;
	__u32 id;

	addr_of(self->lfd, false, &f.local);
	nlh = raw_put(buf, BATON_GENL_CMD_FREEZE);
	mnl_attr_put_u32(nlh, BATON_GENL_A_DEADLINE_MS, 1000);
	{
		struct nlattr *nest = mnl_attr_nest_start(nlh, BATON_GENL_A_PORT);
		size_t alen = variant->family == AF_INET ?
			      sizeof(struct sockaddr_in) :
			      sizeof(struct sockaddr_in6);

		mnl_attr_put_u32(nlh, BATON_FLOW_A_FD, self->lfd);
		mnl_attr_put(nlh, BATON_FLOW_A_LOCAL, alen, &f.local);
		mnl_attr_put(nlh, BATON_FLOW_A_PEER, alen, &f.local);
		mnl_attr_nest_end(nlh, nest);
	}
	EXPECT_EQ(-EINVAL, raw_call(nlh));

	f.fd = self->srv;		/* connected, not listening */
	EXPECT_EQ(-EINVAL, baton_tcp_freeze(self->tcp, &f, 1, 1000, NULL, &id));
	EXPECT_NE(NULL, strstr(self->log.last, "not a listening socket"));
	f.fd = self->lfd;
	port_set(&f.local, self->port == 65535 ? 1 : self->port + 1);
	EXPECT_EQ(-EPERM, baton_tcp_freeze(self->tcp, &f, 1, 1000, NULL, &id));
	EXPECT_NE(NULL, strstr(self->log.last, "does not receive"));
	port_set(&f.local, 0);
	EXPECT_EQ(-EINVAL, baton_tcp_freeze(self->tcp, &f, 1, 1000, NULL, &id));
	EXPECT_NE(NULL, strstr(self->log.last, "port 0"));
	/* loopback's listener, for the wildcard: it does not receive there */
	any_addr(variant->family, &f.local);
	port_set(&f.local, self->port);
	EXPECT_EQ(-EPERM, baton_tcp_freeze(self->tcp, &f, 1, 1000, NULL, &id));
	/* the same port twice in one freeze; then frozen already */
	addr_of(self->lfd, false, &f.local);
	{
		struct baton_flow two[2] = { f, f };
		__u32 held;

		EXPECT_EQ(-EBUSY, baton_tcp_freeze(self->tcp, two, 2, 1000,
						   NULL, &id));
		EXPECT_NE(NULL, strstr(self->log.last, "port named twice"));
		ASSERT_EQ(0, baton_tcp_freeze(self->tcp, &f, 1, 1000, NULL,
					      &held));
		EXPECT_EQ(-EBUSY, baton_tcp_freeze(self->tcp, &f, 1, 1000,
						   NULL, &id));
		EXPECT_NE(NULL, strstr(self->log.last, "port frozen already"));
		EXPECT_EQ(0, baton_tcp_thaw(self->tcp, held, NULL));
	}

	ASSERT_EQ(0, baton_tcp_freeze_stats(self->tcp, &st));
	EXPECT_EQ(0, st.flows);
	EXPECT_EQ(0, st.freezes);
}

/*
 * Namespace C, the client's, reaches X (on lo) through A's veth, then,
 * once X moves, through B's: the namespaces of the move below.
 */
struct move_nets {
	int a, b, c;		/* their descriptors */
	char fd_b[48], fd_c[48];	/* as /proc paths, for ip */
};

/* argv run by ip in namespace ns; the caller stays in nets->a */
static int ip_in(const struct move_nets *nets, int ns, const char *const *argv)
{
	(void)nets;
	return run_argv_in(ns, argv);
}

static int move_nets_make(struct move_nets *nets, bool v6, const char *xp,
			  const char *x)
{
	const char *dad = v6 ? "nodad" : NULL;
	int *ns[] = { &nets->b, &nets->c };
	int err;

	nets->a = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	nets->b = nets->c = -1;
	if (nets->a < 0)
		return -errno;
	for (int i = 0; i < 2; i++) {
		if (unshare(CLONE_NEWNET))
			return -errno;
		*ns[i] = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
		if (*ns[i] < 0 || setns(nets->a, CLONE_NEWNET))
			return -errno;
	}
	snprintf(nets->fd_b, sizeof(nets->fd_b), "/proc/%d/fd/%d", getpid(),
		 nets->b);
	snprintf(nets->fd_c, sizeof(nets->fd_c), "/proc/%d/fd/%d", getpid(),
		 nets->c);
	{
		const char *const a[][12] = {
			{ "ip", "link", "add", "aA", "type", "veth", "peer",
			  "name", "cA", "netns", nets->fd_c, NULL },
			{ "ip", "addr", "add", v6 ? "fd07:1::2/64" : "10.7.1.2/24",
			  "dev", "aA", dad, NULL },
			{ "ip", "link", "set", "aA", "up", NULL },
			{ "ip", "addr", "add", xp, "dev", "lo", NULL },
		};
		const char *const c[][12] = {
			{ "ip", "link", "add", "cB", "type", "veth", "peer",
			  "name", "bB", "netns", nets->fd_b, NULL },
			{ "ip", "addr", "add", v6 ? "fd07:1::1/64" : "10.7.1.1/24",
			  "dev", "cA", dad, NULL },
			{ "ip", "addr", "add", v6 ? "fd07:2::1/64" : "10.7.2.1/24",
			  "dev", "cB", dad, NULL },
			{ "ip", "link", "set", "lo", "up", NULL },
			{ "ip", "link", "set", "cA", "up", NULL },
			{ "ip", "link", "set", "cB", "up", NULL },
			{ "ip", "route", "add", x, "via",
			  v6 ? "fd07:1::2" : "10.7.1.2", NULL },
		};
		const char *const b[][12] = {
			{ "ip", "addr", "add", v6 ? "fd07:2::2/64" : "10.7.2.2/24",
			  "dev", "bB", dad, NULL },
			{ "ip", "link", "set", "lo", "up", NULL },
			{ "ip", "link", "set", "bB", "up", NULL },
			{ "ip", "route", "add", "default", "via",
			  v6 ? "fd07:2::1" : "10.7.2.1", NULL },
			/* a device that is down */
			{ "ip", "link", "add", "dA", "type", "veth", "peer",
			  "name", "dB", NULL },
		};

		for (size_t i = 0; i < sizeof(a) / sizeof(a[0]); i++) {
			err = run_argv(a[i]);
			if (err)
				return err;
		}
		for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
			err = ip_in(nets, nets->c, c[i]);
			if (err)
				return err;
		}
		for (size_t i = 0; i < sizeof(b) / sizeof(b[0]); i++) {
			err = ip_in(nets, nets->b, b[i]);
			if (err)
				return err;
		}
	}
	return 0;
}

/* X from A's lo to B's, and C's route to it through B */
static int move_nets_move(struct move_nets *nets, bool v6, const char *xp,
			  const char *x)
{
	const char *const del[] = { "ip", "addr", "del", xp, "dev", "lo", NULL };
	const char *const add[] = { "ip", "addr", "add", xp, "dev", "lo", NULL };
	const char *const route[] = { "ip", "route", "replace", x, "via",
				      v6 ? "fd07:2::2" : "10.7.2.2", NULL };

	return run_argv(del) ?: ip_in(nets, nets->b, add) ?:
	       ip_in(nets, nets->c, route);
}

/* a counter of namespace ns (read through this task's /proc/net) */
static long long counter_in(const struct move_nets *nets, int ns,
			    long long (*read)(void))
{
	long long v;

	if (setns(ns, CLONE_NEWNET))
		return -errno;
	v = read();
	if (setns(nets->a, CLONE_NEWNET))
		return -errno;
	return v;
}

static long long tcp_loss_probes(void)
{
	return netstat("/proc/net/netstat", "TcpExt", "TCPLossProbes");
}

static void move_nets_close(struct move_nets *nets)
{
	if (nets->b >= 0)
		close(nets->b);
	if (nets->c >= 0)
		close(nets->c);
	if (nets->a >= 0)
		close(nets->a);
}

/*
 * A connection moved to another network namespace with its address: the
 * server's side in A frozen, exported and closed while the client in C
 * sends; the connection imported in B, its address not there yet
 * (refused without BATON_IMPORT_F_NONLOCAL, nothing made); X moved to B;
 * the thaw sends what was held into B at its veth. Every byte arrives once, in order,
 * with no retransmission timeout (a tail loss probe may go, and is held)
 * and no reset; the connection carries replies.
 * Refused before, with their reason and the freeze left as it was: a
 * thaw into a descriptor that is no namespace, into the freeze's own, into
 * a device not there or down, with NETNS_FD alone, and with FLAGS.
 */
TEST_F(conn, thaw_into_another_netns)
{
	const bool v6 = variant->family == AF_INET6;
	const char *x = v6 ? "fd07:9::9" : "10.7.9.9";
	const char *xp = v6 ? "fd07:9::9/128" : "10.7.9.9/32";
	struct move_nets nets = { .a = -1, .b = -1, .c = -1 };
	struct sockaddr_storage ss = {};
	struct baton_freeze_stats st;
	struct baton_tcp *tb, *tc;
	char want[4000], in[sizeof(want)], buf[256];
	int lfd, cli, srv, fd = -1, ifindex, down, one = 1;
	long long timeouts, probes, resets;
	socklen_t len = sizeof(ss);
	struct nlmsghdr *nlh;
	struct tcp_info ti;
	size_t rlen;
	void *rec;
	__u32 id;

	ASSERT_EQ(0, move_nets_make(&nets, v6, xp, x));
	lfd = socket(variant->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ss.ss_family = variant->family;
	ASSERT_EQ(0, bind(lfd, (struct sockaddr *)&ss, len));
	ASSERT_EQ(0, listen(lfd, 8));
	ASSERT_EQ(0, getsockname(lfd, (struct sockaddr *)&ss, &len));
	ASSERT_EQ(1, inet_pton(variant->family, x, v6 ?
			       (void *)&((struct sockaddr_in6 *)&ss)->sin6_addr :
			       (void *)&((struct sockaddr_in *)&ss)->sin_addr));

	/* the client, in C */
	ASSERT_EQ(0, setns(nets.c, CLONE_NEWNET));
	cli = socket(variant->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_LE(0, cli);
	ASSERT_EQ(0, connect(cli, (struct sockaddr *)&ss, len));
	setsockopt(cli, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	ASSERT_EQ(0, setns(nets.a, CLONE_NEWNET));
	srv = accept_wait(lfd);
	ASSERT_LE(0, srv);
	for (int i = 0; i < 5; i++)
		ASSERT_EQ(0, exchange(cli, srv));
	/* then patient, so that the move is no timeout (patient()) */
	ASSERT_EQ(0, setns(nets.c, CLONE_NEWNET));
	ASSERT_EQ(0, baton_tcp_open(&tc, log_keep, &self->log));
	ASSERT_EQ(0, patient(tc, cli)) TH_LOG("%s", self->log.last);
	baton_tcp_close(tc);
	ASSERT_EQ(0, setns(nets.a, CLONE_NEWNET));
	timeouts = counter_in(&nets, nets.c, tcp_timeouts);
	probes = counter_in(&nets, nets.c, tcp_loss_probes);
	resets = tcp_resets();
	ASSERT_LE(0, timeouts);

	ASSERT_EQ(0, freeze_fd(self->tcp, srv, 10000, &id))
		TH_LOG("%s", self->log.last);
	pattern(want, 0, sizeof(want));
	ASSERT_EQ(1000, send(cli, want, 1000, 0));
	ASSERT_EQ(0, baton_tcp_export_conns(self->tcp, &srv, 1, &rec, &rlen))
		TH_LOG("%s", self->log.last);
	close(srv);		/* in repair mode: the peer hears nothing */
	ASSERT_EQ(3000, send(cli, want + 1000, 3000, 0));

	ASSERT_EQ(0, setns(nets.b, CLONE_NEWNET));
	ASSERT_EQ(0, baton_tcp_open(&tb, log_keep, &self->log));
	EXPECT_EQ(-EADDRNOTAVAIL, baton_tcp_import_conns(tb, rec, rlen, &fd, 1));
	EXPECT_NE(NULL, strstr(self->log.last, "cannot bind"));
	EXPECT_EQ(0, baton_tcp_import_conns_flags(tb, rec, rlen, &fd, 1,
						  BATON_IMPORT_F_NONLOCAL))
		TH_LOG("%s", self->log.last);
	baton_tcp_close(tb);
	free(rec);
	ifindex = if_nametoindex("bB");
	down = if_nametoindex("dA");
	ASSERT_EQ(0, setns(nets.a, CLONE_NEWNET));
	ASSERT_LT(0, down);
	ASSERT_LE(0, fd);
	ASSERT_LT(0, ifindex);
	ASSERT_EQ(0, move_nets_move(&nets, v6, xp, x));

	/* refused, and the freeze still holds */
	EXPECT_EQ(-EINVAL, baton_tcp_thaw_into(self->tcp, id, lfd, ifindex,
					       NULL));
	EXPECT_NE(NULL, strstr(self->log.last, "not a network namespace"));
	EXPECT_EQ(-ENODEV, baton_tcp_thaw_into(self->tcp, id, nets.b,
					       ifindex + 1000, NULL));
	EXPECT_NE(NULL, strstr(self->log.last, "no such device"));
	EXPECT_EQ(-ENETDOWN, baton_tcp_thaw_into(self->tcp, id, nets.b, down,
						 NULL));
	EXPECT_NE(NULL, strstr(self->log.last, "device is down"));
	EXPECT_EQ(-EINVAL, baton_tcp_thaw_into(self->tcp, id, nets.a, 1, NULL));
	EXPECT_NE(NULL, strstr(self->log.last, "own network namespace"));
	nlh = raw_put(buf, BATON_GENL_CMD_THAW);
	mnl_attr_put_u32(nlh, BATON_GENL_A_FREEZE_ID, id);
	mnl_attr_put_u32(nlh, BATON_GENL_A_NETNS_FD, nets.b);
	EXPECT_EQ(-EINVAL, raw_call(nlh));
	nlh = raw_put(buf, BATON_GENL_CMD_THAW);
	mnl_attr_put_u32(nlh, BATON_GENL_A_FREEZE_ID, id);
	mnl_attr_put_u32(nlh, BATON_GENL_A_FLAGS, 0);
	EXPECT_EQ(-EINVAL, raw_call(nlh));
	ASSERT_EQ(0, baton_tcp_freeze_stats(self->tcp, &st));
	EXPECT_EQ(1, st.freezes);
	EXPECT_LT(0, st.held_packets);

	ASSERT_EQ(0, baton_tcp_thaw_into(self->tcp, id, nets.b, ifindex, &st))
		TH_LOG("%s", self->log.last);
	EXPECT_LT(0, st.delivered_packets);
	EXPECT_EQ(0, st.dropped_packets);
	EXPECT_EQ(0, read_exact(fd, in, sizeof(want)));
	EXPECT_EQ(0, memcmp(in, want, sizeof(want)));
	EXPECT_EQ(5, send(fd, "reply", 5, 0));
	EXPECT_EQ(0, read_exact(cli, in, 5));
	EXPECT_EQ(0, memcmp(in, "reply", 5));
	EXPECT_EQ(0, exchange(cli, fd));
	ASSERT_EQ(0, tcp_info_get(cli, &ti));
	EXPECT_EQ(1 /* TCP_ESTABLISHED */, ti.tcpi_state);
	EXPECT_EQ(timeouts, counter_in(&nets, nets.c, tcp_timeouts));
	EXPECT_EQ(resets, tcp_resets());
	EXPECT_EQ(0, counter_in(&nets, nets.b, tcp_resets));
	TH_LOG("the client's retransmissions: %u, %lld of them loss probes",
	       ti.tcpi_total_retrans,
	       counter_in(&nets, nets.c, tcp_loss_probes) - probes);

	close(fd);
	close(cli);
	close(lfd);
	move_nets_close(&nets);
}

/*
 * Nobody in a user namespace of its own: refused over the namespace it
 * does not own (no CAP_NET_ADMIN there), and a thaw into it; in a network
 * namespace of its own, it freezes and thaws its own connection.
 */
static int freeze_userns_child(int family, int outside_fd)
{
	struct baton_tcp *tcp;
	int lfd, port, cli, srv, outer;
	char in[4];
	__u32 id;

	outer = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (outer < 0 ||
	    setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534))
		return 10;
	if (unshare(CLONE_NEWUSER))
		return 11;
	if (baton_tcp_open(&tcp, NULL, NULL))
		return 12;
	if (freeze_fd(tcp, outside_fd, 1000, &id) != -EPERM)
		return 13;
	baton_tcp_close(tcp);
	if (netns_enter() || baton_tcp_open(&tcp, NULL, NULL))
		return 14;
	if (freeze_fd(tcp, outside_fd, 1000, &id) != -EXDEV)
		return 15;
	lfd = listener_make(family, &port);
	cli = client_connect(family, port);
	srv = lfd < 0 || cli < 0 ? -1 : accept_wait(lfd);
	if (srv < 0)
		return 16;
	if (freeze_fd(tcp, srv, 1000, &id))
		return 17;
	if (send(cli, "abc", 4, 0) != 4)
		return 18;
	usleep(20 * 1000);
	if (inq(srv) != 0)
		return 19;
	/* not into the namespace it does not own: the freeze stays */
	if (baton_tcp_thaw_into(tcp, id, outer, 1, NULL) != -EPERM)
		return 21;
	if (baton_tcp_thaw(tcp, id, NULL) || read_exact(srv, in, 4))
		return 20;
	baton_tcp_close(tcp);
	return 0;
}

TEST_F(conn, freeze_user_namespace)
{
	int status;
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(freeze_userns_child(variant->family, self->srv));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	/* 10..21: the step that failed, in freeze_userns_child() */
	EXPECT_EQ(0, WEXITSTATUS(status));
}

/*
 * rmmod while frozen: the module thaws on its way out, delivering what
 * it held. It is loaded again for the tests after this one.
 */
TEST_F(conn, freeze_rmmod_delivers)
{
	char want[25] = "held across the rmmod", in[sizeof(want)];
	int ko, unloaded, loaded;
	__u32 id;

	ASSERT_EQ(0, freeze_fd(self->tcp, self->srv, 10000, &id));
	ASSERT_EQ(sizeof(want), send(self->cli, want, sizeof(want), 0));
	usleep(20 * 1000);
	EXPECT_EQ(0, inq(self->srv));
	baton_tcp_close(self->tcp);
	self->tcp = NULL;

	unloaded = syscall(SYS_delete_module, "baton", O_NONBLOCK) ? -errno : 0;
	ko = open("/baton.ko", O_RDONLY | O_CLOEXEC);
	loaded = ko < 0 ? -errno :
		 syscall(SYS_finit_module, ko, "", 0) ? -errno : 0;
	if (ko >= 0)
		close(ko);
	ASSERT_EQ(0, unloaded);
	ASSERT_EQ(0, loaded);

	/*
	 * delivered by the unload itself, not sent again by the client
	 * after its RTO: the replay of NETDEV_DOWN that unregistering the
	 * notifier makes dropped it first, until the review found it
	 */
	EXPECT_EQ((int)sizeof(want), inq(self->srv));
	EXPECT_EQ(0, read_exact(self->srv, in, sizeof(in)));
	EXPECT_EQ(0, memcmp(in, want, sizeof(in)));
	ASSERT_EQ(0, baton_tcp_open(&self->tcp, log_keep, &self->log));
	EXPECT_EQ(-ENOENT, baton_tcp_thaw(self->tcp, id, NULL));
	EXPECT_EQ(0, exchange(self->cli, self->srv));
}

/* A namespace that exits while frozen: what was held is dropped */
static int freeze_netns_child(int family)
{
	struct baton_freeze_stats st;
	struct baton_tcp *tcp;
	int lfd, port, cli, srv;
	__u32 id;

	if (netns_enter() || baton_tcp_open(&tcp, NULL, NULL))
		return 10;
	lfd = listener_make(family, &port);
	cli = client_connect(family, port);
	srv = lfd < 0 || cli < 0 ? -1 : accept_wait(lfd);
	if (srv < 0)
		return 11;
	if (freeze_fd(tcp, srv, 30000, &id))
		return 12;
	if (send(cli, "dropped with the namespace", 26, 0) != 26)
		return 13;
	usleep(20 * 1000);
	if (baton_tcp_freeze_stats(tcp, &st) || st.held_packets < 1)
		return 14;
	return 0;	/* exits with every socket open, and the freeze */
}

TEST_F(conn, freeze_netns_exit)
{
	struct baton_freeze_stats st;
	int status;
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(freeze_netns_child(variant->family));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	/* 10..14: the step that failed, in freeze_netns_child() */
	EXPECT_EQ(0, WEXITSTATUS(status));
	/*
	 * The dying namespace is judged by the console check: a held
	 * segment it failed to drop keeps its lo, and the kernel says
	 * "unregister_netdevice: waiting for lo" every 10 s, long before
	 * the run ends. Here: ours, whose freezes it shares nothing with
	 */
	ASSERT_EQ(0, baton_tcp_freeze_stats(self->tcp, &st));
	EXPECT_EQ(0, st.flows);
	EXPECT_EQ(0, exchange(self->cli, self->srv));
}

/* the sequence numbers of srv's next byte to receive and first unacked */
static int seqs(int fd, __u32 *rcv_nxt, __u32 *snd_una)
{
	int q = TCP_RECV_QUEUE, outq, err;
	socklen_t sl = sizeof(*rcv_nxt);
	__u32 write_seq;

	err = repair(fd, TCP_REPAIR_ON);
	if (err)
		return err;
	if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, &q, sizeof(q)) ||
	    getsockopt(fd, IPPROTO_TCP, TCP_QUEUE_SEQ, rcv_nxt, &sl))
		err = -errno;
	q = TCP_SEND_QUEUE;
	sl = sizeof(write_seq);
	if (!err &&
	    (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, &q, sizeof(q)) ||
	     getsockopt(fd, IPPROTO_TCP, TCP_QUEUE_SEQ, &write_seq, &sl) ||
	     ioctl(fd, SIOCOUTQ, &outq)))
		err = -errno;
	q = TCP_NO_QUEUE;
	setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, &q, sizeof(q));
	repair(fd, TCP_REPAIR_OFF_NO_WP);
	*snd_una = write_seq - outq;
	return err;
}

static __u16 csum_fold(__u32 sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

static __u32 csum_add(__u32 sum, const void *p, size_t len)
{
	const __u16 *w = p;

	for (; len > 1; len -= 2)
		sum += *w++;
	return sum;
}

/*
 * n pure ACKs from peer to local, with ECE set if ece (as the peer would
 * send had it seen congestion): a raw socket, the TCP header only.
 */
static int send_acks(int family, const struct sockaddr_storage *peer,
		     const struct sockaddr_storage *local, __u32 seq,
		     __u32 ack, bool ece, int n)
{
	struct tcphdr th = {
		.seq = htonl(seq), .ack_seq = htonl(ack), .doff = 5,
		.ack = 1, .ece = ece, .window = htons(65535),
	};
	int fd, err = 0;
	socklen_t len;

	fd = socket(family, SOCK_RAW, IPPROTO_TCP);
	if (fd < 0)
		return -errno;
	if (family == AF_INET) {
		const struct sockaddr_in *p = (const void *)peer;
		const struct sockaddr_in *l = (const void *)local;
		__u32 sum = htons(IPPROTO_TCP) + htons(sizeof(th));

		th.source = p->sin_port;
		th.dest = l->sin_port;
		sum = csum_add(sum, &p->sin_addr, 4);
		sum = csum_add(sum, &l->sin_addr, 4);
		th.check = csum_fold(csum_add(sum, &th, sizeof(th)));
		len = sizeof(struct sockaddr_in);
	} else {
		const struct sockaddr_in6 *p = (const void *)peer;
		const struct sockaddr_in6 *l = (const void *)local;
		int off = offsetof(struct tcphdr, check);

		th.source = p->sin6_port;
		th.dest = l->sin6_port;
		/* the kernel sums it */
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_CHECKSUM, &off,
			       sizeof(off)))
			err = -errno;
		len = sizeof(struct sockaddr_in6);
	}
	{
		struct sockaddr_storage from = *peer, to = *local;

		/* a raw socket's port field is the protocol, or nothing */
		port_set(&from, 0);
		port_set(&to, 0);
		if (!err && bind(fd, (struct sockaddr *)&from, len))
			err = -errno;
		for (int i = 0; !err && i < n; i++)
			if (sendto(fd, &th, sizeof(th), 0,
				   (struct sockaddr *)&to, len) != sizeof(th))
				err = -errno;
	}
	close(fd);
	return err;
}

static int sysctl_set(const char *path, const char *v)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), err = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, v, strlen(v)) < 0)
		err = -errno;
	close(fd);
	return err;
}

/*
 * A connection in CWR (an ECN echo while data is in flight) keeps the
 * window it had before the reduction in prior_cwnd, and divides by it
 * on each ACK in tcp_cwnd_reduction(), behind WARN_ON_ONCE(!prior_cwnd).
 * An import of PRIOR_CWND 0 into it is refused; the ACKs then come, and
 * the kernel's log stays free of the WARN (scripts/vm.sh checks).
 */
TEST_F(conn, prior_cwnd_zero_refused_in_cwr)
{
	struct sockaddr_storage local, peer;
	char out[2000], in[sizeof(out)], rec[64];
	struct tcp_info ti;
	__u32 rcv_nxt, snd_una, id;
	int cli, srv;

	ASSERT_EQ(0, sysctl_set("/proc/sys/net/ipv4/tcp_ecn", "1"));
	ASSERT_EQ(0, conn_pair(self->lfd, variant->family, self->port,
			       &cli, &srv));
	ASSERT_EQ(0, exchange(cli, srv));
	ASSERT_EQ(0, settle(srv));
	ASSERT_EQ(0, tcp_info_get(srv, &ti));
	ASSERT_TRUE(ti.tcpi_options & TCPI_OPT_ECN);

	/* data in flight, its ACKs held at the client's end */
	ASSERT_EQ(0, freeze_fd(self->tcp, cli, 5000, &id));
	pattern(out, 0, sizeof(out));
	ASSERT_EQ(sizeof(out), send(srv, out, sizeof(out), 0));
	ASSERT_EQ(0, wait_info(srv, all_sent));
	ASSERT_EQ(0, seqs(srv, &rcv_nxt, &snd_una));
	addr_of(srv, false, &local);
	addr_of(srv, true, &peer);
	ASSERT_EQ(0, send_acks(variant->family, &peer, &local, rcv_nxt,
			       snd_una, true, 1));
	for (int i = 0; i < 100; i++) {
		ASSERT_EQ(0, tcp_info_get(srv, &ti));
		if (ti.tcpi_ca_state == 2 /* TCP_CA_CWR */)
			break;
		usleep(5000);
	}
	ASSERT_EQ(2, ti.tcpi_ca_state);

	ASSERT_EQ(0, repair(srv, TCP_REPAIR_ON));
	EXPECT_EQ(-ERANGE, baton_tcp_import(self->tcp, srv, rec,
					    rec_put(rec, 0,
						    BATON_GENL_A_PRIOR_CWND,
						    0)));
	ASSERT_EQ(0, repair(srv, TCP_REPAIR_OFF_NO_WP));
	ASSERT_EQ(0, baton_tcp_thaw(self->tcp, id, NULL));
	EXPECT_EQ(0, read_exact(cli, in, sizeof(in)));
	EXPECT_EQ(0, memcmp(in, out, sizeof(in)));
	EXPECT_EQ(0, exchange(cli, srv));
	close(cli);
	close(srv);
}

/*
 * One nftables message of family's into buf at *off, its attributes to
 * follow (*off moves past it once they are in: nft_end())
 */
static struct nlmsghdr *nft_msg(char *buf, size_t off, __u16 type,
				__u16 flags, int family)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf + off);
	struct nfgenmsg *g;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->nfgen_family = family;
	g->version = NFNETLINK_V0;
	g->res_id = htons(NFNL_SUBSYS_NFTABLES);
	return nlh;
}

static size_t nft_end(size_t off, const struct nlmsghdr *nlh)
{
	return off + NLMSG_ALIGN(nlh->nlmsg_len);
}

#define NFT_TYPE(msg)	(NFNL_SUBSYS_NFTABLES << 8 | (msg))

/*
 * Adds and deletes a table of family's, with a base chain at LOCAL_IN,
 * priority 0 (before the freeze's hook), until killed: each time the
 * namespace's array of LOCAL_IN hooks is replaced with one a hook longer,
 * then shorter. Writes to ok 0 once the first add is acknowledged, or
 * -errno.
 */
static void nft_toggle(int family, int ok)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	char add[1024] = "", del[512] = "", ack[8192];
	struct nlmsghdr *nlh;
	struct nlattr *hook;
	size_t na = 0, nd = 0;
	int fd, err = 0;
	ssize_t n;

	nlh = nft_msg(add, na, NFNL_MSG_BATCH_BEGIN, 0, AF_UNSPEC);
	na = nft_end(na, nlh);
	nlh = nft_msg(add, na, NFT_TYPE(NFT_MSG_NEWTABLE),
		      NLM_F_CREATE | NLM_F_ACK, family);
	mnl_attr_put_strz(nlh, NFTA_TABLE_NAME, "baton");
	na = nft_end(na, nlh);
	nlh = nft_msg(add, na, NFT_TYPE(NFT_MSG_NEWCHAIN),
		      NLM_F_CREATE | NLM_F_ACK, family);
	mnl_attr_put_strz(nlh, NFTA_CHAIN_TABLE, "baton");
	mnl_attr_put_strz(nlh, NFTA_CHAIN_NAME, "input");
	hook = mnl_attr_nest_start(nlh, NFTA_CHAIN_HOOK);
	mnl_attr_put_u32(nlh, NFTA_HOOK_HOOKNUM, htonl(NF_INET_LOCAL_IN));
	mnl_attr_put_u32(nlh, NFTA_HOOK_PRIORITY, htonl(0));
	mnl_attr_nest_end(nlh, hook);
	mnl_attr_put_strz(nlh, NFTA_CHAIN_TYPE, "filter");
	na = nft_end(na, nlh);
	nlh = nft_msg(add, na, NFNL_MSG_BATCH_END, 0, AF_UNSPEC);
	na = nft_end(na, nlh);

	nlh = nft_msg(del, nd, NFNL_MSG_BATCH_BEGIN, 0, AF_UNSPEC);
	nd = nft_end(nd, nlh);
	nlh = nft_msg(del, nd, NFT_TYPE(NFT_MSG_DELTABLE), NLM_F_ACK, family);
	mnl_attr_put_strz(nlh, NFTA_TABLE_NAME, "baton");
	nd = nft_end(nd, nlh);
	nlh = nft_msg(del, nd, NFNL_MSG_BATCH_END, 0, AF_UNSPEC);
	nd = nft_end(nd, nlh);

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)))
		err = -errno;
	/* the first add's acknowledgements, each of them */
	if (!err && send(fd, add, na, 0) != (ssize_t)na)
		err = -errno;
	n = err ? 0 : recv(fd, ack, sizeof(ack), 0);
	if (!err && n <= 0)
		err = n < 0 ? -errno : -EPROTO;
	for (nlh = (void *)ack; !err && mnl_nlmsg_ok(nlh, n);
	     nlh = mnl_nlmsg_next(nlh, (int *)&n))
		if (nlh->nlmsg_type == NLMSG_ERROR)
			err = ((struct nlmsgerr *)mnl_nlmsg_get_payload(nlh))->error;
	if (write(ok, &err, sizeof(err)) != sizeof(err) || err)
		_exit(1);
	for (;;) {
		send(fd, del, nd, 0);
		recv(fd, ack, sizeof(ack), 0);
		send(fd, add, na, 0);
		recv(fd, ack, sizeof(ack), 0);
	}
}

/* the kernel's taint flags: TAINT_WARN (9) once a WARN fired */
#define TAINT_WARN_BIT	(1u << 9)

static unsigned long tainted(void)
{
	unsigned long t = 0;
	FILE *f = fopen("/proc/sys/kernel/tainted", "r");

	if (f) {
		if (fscanf(f, "%lu", &t) != 1)
			t = 0;
		fclose(f);
	}
	return t;
}

#define RACE_SECONDS	6
#define RACE_SEGMENTS	3000

/*
 * Thaws while the namespace's LOCAL_IN hooks change under them (a table
 * added and deleted, as anyone in a user namespace may): the thaw passes
 * each held segment on through the array it found its place in, which
 * nf_reinject() did not (it read the array again, and WARNed when it had
 * shrunk meanwhile: found by review, seen within seconds so). Thousands
 * of ACKs a round, held, then thawed; no WARN, and the connection goes on.
 */
TEST_F_TIMEOUT(conn, thaw_while_hooks_change, 60)
{
	struct baton_freeze_caps caps = { .flow_packets = 65536 };
	struct baton_flow f = { .fd = self->srv };
	struct sockaddr_storage local, peer;
	struct baton_freeze_stats st;
	unsigned long long delivered = 0;
	struct timespec now, end;
	__u32 rcv_nxt, snd_una, id;
	int pipefd[2], status = -EPROTO, err = 0, rounds = 0;
	pid_t pid;

	ASSERT_EQ(0, seqs(self->srv, &rcv_nxt, &snd_una));
	addr_of(self->srv, false, &local);
	addr_of(self->srv, true, &peer);
	ASSERT_EQ(0, pipe(pipefd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		close(pipefd[0]);
		nft_toggle(variant->family, pipefd[1]);
		_exit(1);
	}
	close(pipefd[1]);
	if (read(pipefd[0], &status, sizeof(status)) != sizeof(status))
		status = -EPROTO;
	close(pipefd[0]);
	if (status)
		kill(pid, SIGKILL);
	ASSERT_EQ(0, status) TH_LOG("nftables (VM_MODULES nf_tables): %s",
				    strerror(-status));

	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += RACE_SECONDS;
	do {
		err = baton_tcp_freeze(self->tcp, &f, 1, 5000, &caps, &id);
		if (err)
			break;
		err = send_acks(variant->family, &peer, &local, rcv_nxt,
				snd_una, false, RACE_SEGMENTS);
		err = baton_tcp_thaw(self->tcp, id, &st) ?: err;
		delivered += st.delivered_packets;
		rounds++;
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (!err && (now.tv_sec < end.tv_sec ||
			  (now.tv_sec == end.tv_sec &&
			   now.tv_nsec < end.tv_nsec)));
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	ASSERT_EQ(0, err) TH_LOG("%s", self->log.last);
	TH_LOG("%d rounds, %llu segments held and passed on", rounds,
	       delivered);
	EXPECT_LT(0, delivered);
	EXPECT_EQ(0, tainted() & TAINT_WARN_BIT);
	EXPECT_EQ(0, exchange(self->cli, self->srv));
}

/*
 * The bulk state. N connections to the fixture's listener, each with
 * bytes of its own in every queue its server can hold at a checkpoint.
 */
#define BULK_CONNS	8

struct bulk {
	int cli[BULK_CONNS], srv[BULK_CONNS];
	size_t sent[BULK_CONNS];	/* server to client, from 0 */
	char in[BULK_CONNS][64];	/* client to server, unread */
	struct timespec sent_at;	/* the servers' last segments */
};

static int bulk_open(struct bulk *b, int lfd, int family, int port)
{
	for (int i = 0; i < BULK_CONNS; i++) {
		int err = conn_pair(lfd, family, port, &b->cli[i], &b->srv[i]);

		if (err)
			return err;
		if (exchange(b->cli[i], b->srv[i]))
			return -EIO;
		snprintf(b->in[i], sizeof(b->in[i]), "unread bytes of conn %d", i);
	}
	return 0;
}

static void bulk_close(struct bulk *b)
{
	for (int i = 0; i < BULK_CONNS; i++) {
		close(b->cli[i]);
		if (b->srv[i] >= 0)
			close(b->srv[i]);
	}
}

/*
 * Every kind of queue, frozen: bytes the server has not read, bytes it
 * sent that the client has not acknowledged (held at the server), bytes
 * it could not send yet (connection 0: a 256 KiB reply the client's
 * window holds back), then the 25 bytes the client sends during the
 * freeze.
 */
static int bulk_fill(struct baton_tcp *tcp, struct bulk *b, __u32 *id)
{
	struct baton_flow f[BULK_CONNS] = {};
	static char out[256 << 10];
	int i, err;

	for (i = 0; i < BULK_CONNS; i++) {
		if (send(b->cli[i], b->in[i], sizeof(b->in[i]), 0) !=
		    sizeof(b->in[i]))
			return -EIO;
		f[i].fd = b->srv[i];
	}
	usleep(20 * 1000);	/* received, acknowledged, unread */
	err = baton_tcp_freeze(tcp, f, BULK_CONNS, 5000, NULL, id);
	if (err)
		return err;
	for (i = 0; i < BULK_CONNS; i++) {
		size_t len = i ? 1000 * i : sizeof(out);

		pattern(out, 0, len);
		b->sent[i] = send(b->srv[i], out, len, MSG_DONTWAIT);
		if (!b->sent[i] || b->sent[i] > len)
			return -EIO;
		if (send(b->cli[i], "25 bytes during the freeze", 25, 0) != 25)
			return -EIO;
	}
	clock_gettime(CLOCK_MONOTONIC, &b->sent_at);
	usleep(20 * 1000);
	return 0;
}

/* every byte once, in order, both ways, and the connections go on */
static int bulk_check(struct bulk *b)
{
	char in[64], during[25];
	ssize_t at;

	for (int i = 0; i < BULK_CONNS; i++) {
		if (read_exact(b->srv[i], in, sizeof(in)) ||
		    memcmp(in, b->in[i], sizeof(in)))
			return -(100 + i);
		if (read_exact(b->srv[i], during, sizeof(during)) ||
		    memcmp(during, "25 bytes during the freeze", 25))
			return -(200 + i);
		if (check_stream(b->cli[i], b->sent[i], &at))
			return -(300 + i);
		if (inq(b->srv[i]) || exchange(b->cli[i], b->srv[i]))
			return -(400 + i);
	}
	return 0;
}

/*
 * Export, close and import a set of frozen connections through the
 * module: every byte in every queue arrives once, the congestion state
 * comes along, no reset, and no retransmission timeout when the move took
 * less than the shortest one can be. The servers' acknowledgements are
 * held, so their timers run: the old sockets' from their last segment to
 * their close, the restored ones' from the import (which rearms them) to
 * the thaw. A VM under load can take longer than 200 ms for either, and
 * then a timeout is the servers' own, not a fault of the move, and is
 * logged.
 */
TEST_F(conn, conns_export_import)
{
	long long timeouts, resets;
	int fds[BULK_CONNS], i, err;
	struct timespec t0, imported;
	long old_ms, new_ms;
	struct tcp_info ti;
	struct bulk b;
	__u32 mss;
	size_t len;
	void *rec;
	__u32 id;

	ASSERT_EQ(0, bulk_open(&b, self->lfd, variant->family, self->port));
	for (i = 0; i < BULK_CONNS; i++)
		ASSERT_EQ(0, patient(self->tcp, b.cli[i]));
	timeouts = tcp_timeouts();
	resets = tcp_resets();
	ASSERT_EQ(0, tcp_info_get(b.srv[0], &ti));
	mss = ti.tcpi_snd_mss;
	ASSERT_EQ(0, import_state(self->tcp, b.srv[1]));
	ASSERT_EQ(0, bulk_fill(self->tcp, &b, &id)) TH_LOG("%s", self->log.last);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	ASSERT_EQ(0, baton_tcp_export_conns(self->tcp, b.srv, BULK_CONNS, &rec,
					    &len))
		TH_LOG("%s", self->log.last);
	TH_LOG("%d connections: a record of %zu bytes", BULK_CONNS, len);
	for (i = 0; i < BULK_CONNS; i++) {
		close(b.srv[i]);	/* in repair mode: the peer hears nothing */
		b.srv[i] = -1;
	}
	old_ms = ms_since(&b.sent_at);
	clock_gettime(CLOCK_MONOTONIC, &imported);
	err = baton_tcp_import_conns(self->tcp, rec, len, fds, BULK_CONNS);
	free(rec);
	ASSERT_EQ(0, err) TH_LOG("%s", self->log.last);
	for (i = 0; i < BULK_CONNS; i++)
		b.srv[i] = fds[i];
	/* segments of the connection's MSS, not connect()'s default */
	ASSERT_EQ(0, tcp_info_get(b.srv[0], &ti));
	EXPECT_EQ(mss, ti.tcpi_snd_mss);
	ASSERT_EQ(0, tcp_info_get(b.srv[1], &ti));
	EXPECT_EQ(1 /* TCP_ESTABLISHED */, ti.tcpi_state);
	EXPECT_EQ(37, ti.tcpi_snd_cwnd);
	EXPECT_EQ(20, ti.tcpi_snd_ssthresh);
	EXPECT_EQ(5000, ti.tcpi_rtt);
	ASSERT_EQ(0, baton_tcp_thaw(self->tcp, id, NULL));
	new_ms = ms_since(&imported);
	TH_LOG("export, close, import and thaw: %ld ms; the old sockets' last segment to their close: %ld ms, import to thaw: %ld ms",
	       ms_since(&t0), old_ms, new_ms);
	err = bulk_check(&b);
	EXPECT_EQ(0, err) TH_LOG("connection %d: %s", -err % 100,
				 -err < 200 ? "unread bytes" :
				 -err < 300 ? "bytes sent during the freeze" :
				 -err < 400 ? "the server's stream" : "after");
	if (old_ms < TCP_RTO_MIN_MS && new_ms < TCP_RTO_MIN_MS) {
		EXPECT_EQ(timeouts, tcp_timeouts());
	} else {
		TH_LOG("%lld retransmission timeouts: the move outlasted the %d ms an RTO can be",
		       tcp_timeouts() - timeouts, TCP_RTO_MIN_MS);
	}
	EXPECT_EQ(resets, tcp_resets());
	bulk_close(&b);
}

/*
 * *srv frozen (5 s), exported alone into *rec and closed (in repair mode:
 * the peer hears nothing), *srv -1; 0 or -errno
 */
static int freeze_export(struct baton_tcp *tcp, int *srv, void **rec,
			 size_t *len, __u32 *id)
{
	int err;

	err = freeze_fd(tcp, *srv, 5000, id) ?:
	      baton_tcp_export_conns(tcp, srv, 1, rec, len);
	if (err)
		return err;
	close(*srv);
	*srv = -1;
	return 0;
}

/* Whether fd says end of stream within 5 s */
static int read_eof(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char c;

	if (poll(&p, 1, 5000) != 1)
		return -ETIMEDOUT;
	return recv(fd, &c, 1, MSG_DONTWAIT) == 0 ? 0 : -EIO;
}

/*
 * A connection whose peer closed its side, bytes still unread: the bulk
 * export and import rebuild it in CLOSE_WAIT, then a checkpoint and
 * restore of that one; the server reads the bytes and end of stream, its
 * reply reaches the client, and its close ends the connection cleanly.
 */
TEST_F(conn, peer_closed_moves)
{
	char want[RECVQ_LEN], in[RECVQ_LEN];
	long long resets = tcp_resets();
	struct tcp_info ti;
	size_t len;
	void *rec;
	int fd, i;
	__u32 id;

	for (i = 0; i < RECVQ_LEN; i++)
		want[i] = (char)(i * 7);
	ASSERT_EQ(RECVQ_LEN, send(self->cli, want, RECVQ_LEN, 0));
	ASSERT_EQ(0, shutdown(self->cli, SHUT_WR));
	for (i = 0; i < 500; i++) {	/* its FIN arrived: up to 5 s */
		ASSERT_EQ(0, tcp_info_get(self->srv, &ti));
		if (ti.tcpi_state == 8 /* TCP_CLOSE_WAIT */)
			break;
		usleep(10 * 1000);
	}
	ASSERT_EQ(8 /* TCP_CLOSE_WAIT */, ti.tcpi_state);

	/*
	 * Each move inside a freeze, as every move with baton.ko is: a
	 * segment of the client's (a retransmitted FIN) that arrived
	 * between the close and the import would meet no socket, and be
	 * answered with a reset.
	 */
	ASSERT_EQ(0, freeze_export(self->tcp, &self->srv, &rec, &len, &id))
		TH_LOG("%s", self->log.last);
	i = baton_tcp_import_conns(self->tcp, rec, len, &fd, 1);
	free(rec);
	ASSERT_EQ(0, i) TH_LOG("%s", self->log.last);
	self->srv = fd;
	ASSERT_EQ(0, tcp_info_get(fd, &ti));
	EXPECT_EQ(8 /* TCP_CLOSE_WAIT */, ti.tcpi_state);
	ASSERT_EQ(0, baton_tcp_thaw(self->tcp, id, NULL));

	ASSERT_EQ(0, freeze_fd(self->tcp, self->srv, 5000, &id));
	fd = move(self->tcp, &self->srv, &rec, &len, 0);
	ASSERT_LE(0, fd) TH_LOG("restore: %s", self->log.last);
	self->srv = fd;
	free(rec);
	ASSERT_EQ(0, baton_tcp_thaw(self->tcp, id, NULL));

	EXPECT_EQ(0, read_exact(fd, in, RECVQ_LEN));
	EXPECT_EQ(0, memcmp(in, want, RECVQ_LEN));
	EXPECT_EQ(0, read_eof(fd));
	EXPECT_EQ(5, send(fd, "reply", 5, 0));
	EXPECT_EQ(0, read_exact(self->cli, in, 5));
	EXPECT_EQ(0, memcmp(in, "reply", 5));
	close(fd);
	self->srv = -1;
	EXPECT_EQ(0, read_eof(self->cli));
	EXPECT_EQ(resets, tcp_resets());
}

/*
 * A connection its peer closed, whose end of stream the server has read
 * (copied_seq past the FIN): the bulk export takes it (it refused it, its
 * receive queue a byte short of nothing, until the review found it), and
 * the import says end of stream again, in CLOSE_WAIT; a reply goes out.
 */
TEST_F(conn, peer_closed_read_moves)
{
	long long resets = tcp_resets();
	struct tcp_info ti;
	char in[8];
	int cli, srv, fd, i;
	size_t len;
	void *rec;
	__u32 id;

	ASSERT_EQ(0, conn_pair(self->lfd, variant->family, self->port,
			       &cli, &srv));
	ASSERT_EQ(3, send(cli, "abc", 3, 0));
	ASSERT_EQ(0, shutdown(cli, SHUT_WR));
	ASSERT_EQ(0, read_exact(srv, in, 3));
	ASSERT_EQ(0, read_eof(srv));
	ASSERT_EQ(0, tcp_info_get(srv, &ti));
	ASSERT_EQ(8 /* TCP_CLOSE_WAIT */, ti.tcpi_state);

	ASSERT_EQ(0, freeze_export(self->tcp, &srv, &rec, &len, &id))
		TH_LOG("%s", self->log.last);
	i = baton_tcp_import_conns(self->tcp, rec, len, &fd, 1);
	free(rec);
	ASSERT_EQ(0, i) TH_LOG("%s", self->log.last);
	ASSERT_EQ(0, baton_tcp_thaw(self->tcp, id, NULL));
	ASSERT_EQ(0, tcp_info_get(fd, &ti));
	EXPECT_EQ(8 /* TCP_CLOSE_WAIT */, ti.tcpi_state);
	EXPECT_EQ(0, inq(fd));
	EXPECT_EQ(0, read_eof(fd));
	EXPECT_EQ(5, send(fd, "reply", 5, 0));
	EXPECT_EQ(0, read_exact(cli, in, 5));
	EXPECT_EQ(0, memcmp(in, "reply", 5));
	close(fd);
	EXPECT_EQ(0, read_eof(cli));
	EXPECT_EQ(resets, tcp_resets());
	close(cli);
}

/*
 * BATON_IMPORT_F_REPAIR: the socket comes back in repair mode (only there
 * does TCP_REPAIR_WINDOW read). Closed so, the client hears nothing; a
 * second one, let go with TCP_REPAIR_OFF_NO_WP, carries bytes both ways.
 */
TEST_F(conn, conns_import_in_repair_mode)
{
	struct tcp_repair_window w;
	socklen_t wl = sizeof(w);
	long long resets = tcp_resets();
	struct pollfd p;
	size_t len;
	void *rec;
	int fd, err;
	__u32 id;
	char c;

	ASSERT_EQ(0, freeze_export(self->tcp, &self->srv, &rec, &len, &id))
		TH_LOG("%s", self->log.last);
	err = baton_tcp_import_conns_flags(self->tcp, rec, len, &fd, 1,
					   BATON_IMPORT_F_REPAIR);
	ASSERT_EQ(0, err) TH_LOG("%s", self->log.last);
	EXPECT_EQ(0, getsockopt(fd, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, &wl))
		TH_LOG("not in repair mode: %s", strerror(errno));

	/* its close, in repair mode, says nothing */
	close(fd);
	err = baton_tcp_import_conns_flags(self->tcp, rec, len, &fd, 1,
					   BATON_IMPORT_F_REPAIR);
	free(rec);
	ASSERT_EQ(0, err) TH_LOG("the tuple is not free again: %s",
				 self->log.last);
	self->srv = fd;
	p = (struct pollfd){ .fd = self->cli, .events = POLLIN };
	EXPECT_EQ(0, poll(&p, 1, 200)) TH_LOG("the client heard something");
	EXPECT_EQ(-1, recv(self->cli, &c, 1, MSG_DONTWAIT));

	/* let go, it is the connection */
	ASSERT_EQ(0, repair(fd, TCP_REPAIR_OFF_NO_WP));
	ASSERT_EQ(0, baton_tcp_thaw(self->tcp, id, NULL));
	EXPECT_EQ(0, exchange(self->cli, fd));
	EXPECT_EQ(resets, tcp_resets());
}

/*
 * More connections than one CONN_IMPORT's reply holds in the 64 KiB the
 * library reads (3,225): it splits them, and every one carries bytes
 * both ways afterwards. Until 5101385 the reply came back cut: ENOSPC.
 */
#define MANY_CONNS	3300

TEST_F_TIMEOUT(conn, conns_import_thousands, 180)
{
	struct rlimit was, rl = { 3 * MANY_CONNS + 64, 3 * MANY_CONNS + 64 };
	int *cli, *srv, *fds, i, bad = 0, err;
	struct baton_flow *f;
	size_t len;
	void *rec;
	__u32 id;

	ASSERT_EQ(0, getrlimit(RLIMIT_NOFILE, &was));
	ASSERT_EQ(0, setrlimit(RLIMIT_NOFILE, &rl)) TH_LOG("%s", strerror(errno));
	cli = calloc(MANY_CONNS, sizeof(*cli));
	srv = calloc(MANY_CONNS, sizeof(*srv));
	fds = calloc(MANY_CONNS, sizeof(*fds));
	f = calloc(MANY_CONNS, sizeof(*f));
	ASSERT_TRUE(cli && srv && fds && f);
	for (i = 0; i < MANY_CONNS; i++) {
		ASSERT_EQ(0, conn_pair(self->lfd, variant->family, self->port,
				       &cli[i], &srv[i])) TH_LOG("connection %d", i);
		f[i].fd = srv[i];
	}
	/* a client's late ACK must not meet the tuple without a socket */
	ASSERT_EQ(0, baton_tcp_freeze(self->tcp, f, MANY_CONNS, 30000, NULL,
				      &id))
		TH_LOG("%s", self->log.last);
	ASSERT_EQ(0, baton_tcp_export_conns(self->tcp, srv, MANY_CONNS, &rec,
					    &len))
		TH_LOG("%s", self->log.last);
	for (i = 0; i < MANY_CONNS; i++)
		close(srv[i]);	/* in repair mode: the peer hears nothing */
	err = baton_tcp_import_conns(self->tcp, rec, len, fds, MANY_CONNS);
	free(rec);
	ASSERT_EQ(0, err) TH_LOG("%s", self->log.last);
	ASSERT_EQ(0, baton_tcp_thaw(self->tcp, id, NULL));
	for (i = 0; i < MANY_CONNS; i++) {
		if (exchange(cli[i], fds[i]))
			bad++;
		close(cli[i]);
		close(fds[i]);
	}
	EXPECT_EQ(0, bad);
	free(cli);
	free(srv);
	free(fds);
	free(f);
	setrlimit(RLIMIT_NOFILE, &was);
}

/*
 * Many connections export and import in parts, side by side (one a
 * CPU, of 32 or more each): one near the end whose old socket still holds
 * its tuple fails its request, and only that. The import says so, and
 * names the connections it did not make; every socket it did make is
 * its own connection, carrying bytes both ways; none is left over.
 */
#define PART_CONNS	600
#define PART_HELD	550	/* its old socket not closed */

/*
 * Whether the record numbers its connections 0 to n - 1, in order, as
 * one dump would, though it came in parts: -1 if not
 */
static int record_indexes(const void *rec, size_t len)
{
	const struct nlattr *conn, *attr;
	long long last = -1;

	mnl_attr_for_each_payload(rec, len) {
		long long index = -1;

		conn = attr;
		mnl_attr_for_each_nested(attr, conn)
			if (mnl_attr_get_type(attr) == BATON_CONN_A_INDEX)
				index = mnl_attr_get_u32(attr);
		attr = conn;
		if (index != last && index != last + 1)
			return -1;
		last = index;
	}
	return last + 1;
}

/* How many parts libbaton makes of n connections: one a CPU, four at most */
static int parts_of(int n)
{
	cpu_set_t set;
	int cpus = 1;

	if (!sched_getaffinity(0, sizeof(set), &set))
		cpus = CPU_COUNT(&set);
	cpus = cpus < 4 ? cpus : 4;
	return n / 32 < cpus ? n / 32 : cpus;
}

static int open_fds(void)
{
	int n = 0;

	for (int fd = 0; fd < 4096; fd++)
		n += fcntl(fd, F_GETFD) >= 0;
	return n;
}

TEST_F_TIMEOUT(conn, conns_part_fails, 120)
{
	int cli[PART_CONNS], srv[PART_CONNS], fds[PART_CONNS];
	int i, made = 0, bad = 0, before, err;
	struct rlimit was, rl = { 4096, 4096 };
	size_t len;
	void *rec;

	ASSERT_EQ(0, getrlimit(RLIMIT_NOFILE, &was));
	ASSERT_EQ(0, setrlimit(RLIMIT_NOFILE, &rl)) TH_LOG("%s", strerror(errno));
	for (i = 0; i < PART_CONNS; i++)
		ASSERT_EQ(0, conn_pair(self->lfd, variant->family, self->port,
				       &cli[i], &srv[i])) TH_LOG("connection %d", i);
	ASSERT_EQ(0, baton_tcp_export_conns(self->tcp, srv, PART_CONNS, &rec,
					    &len))
		TH_LOG("%s", self->log.last);
	EXPECT_EQ(PART_CONNS, record_indexes(rec, len));
	for (i = 0; i < PART_CONNS; i++)
		if (i != PART_HELD)
			close(srv[i]);	/* in repair mode: silent */
	before = open_fds();
	err = baton_tcp_import_conns(self->tcp, rec, len, fds, PART_CONNS);
	free(rec);
	EXPECT_EQ(-EADDRNOTAVAIL, err);
	EXPECT_NE(NULL, strstr(self->log.last, "baton.ko"));
	TH_LOG("%s", self->log.last);
	EXPECT_GT(0, fds[PART_HELD]);
	for (i = 0; i < PART_CONNS; i++) {
		if (fds[i] < 0)
			continue;
		made++;
		if (exchange(cli[i], fds[i]))
			bad++;
	}
	EXPECT_EQ(0, bad);
	/* every part before the last, whose request failed; on one CPU, none */
	EXPECT_EQ(PART_CONNS - PART_CONNS / parts_of(PART_CONNS), made);
	/* what it made is in fds[], and nothing else */
	EXPECT_EQ(before + made, open_fds());
	for (i = 0; i < PART_CONNS; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		close(cli[i]);
	}
	close(srv[PART_HELD]);
	setrlimit(RLIMIT_NOFILE, &was);
}

/* 1.6 MB that cannot leave yet: a connection in many parts */
TEST_F(conn, conns_large_queue)
{
	char want[RECVQ_LEN], in[RECVQ_LEN];
	ssize_t sent, at = 0;
	size_t len, parts = 0;
	const struct nlattr *attr;
	void *rec;
	__u32 id;
	int fd;

	for (int i = 0; i < RECVQ_LEN; i++)
		want[i] = (char)(i * 13);
	ASSERT_EQ(RECVQ_LEN, send(self->cli, want, RECVQ_LEN, 0));
	usleep(100 * 1000);
	sent = fill_sendq(self->srv);
	ASSERT_LT(0, sent);

	ASSERT_EQ(0, freeze_fd(self->tcp, self->srv, 5000, &id));
	ASSERT_EQ(0, baton_tcp_export_conns(self->tcp, &self->srv, 1, &rec,
					    &len));
	mnl_attr_for_each_payload(rec, len)
		parts++;
	TH_LOG("%zd bytes written: a record of %zu bytes in %zu parts", sent,
	       len, parts);
	EXPECT_LT(1, parts);
	close(self->srv);
	self->srv = -1;
	ASSERT_EQ(0, baton_tcp_import_conns(self->tcp, rec, len, &fd, 1))
		TH_LOG("%s", self->log.last);
	free(rec);
	self->srv = fd;
	ASSERT_EQ(0, baton_tcp_thaw(self->tcp, id, NULL));
	EXPECT_EQ(0, read_exact(fd, in, RECVQ_LEN));
	EXPECT_EQ(0, memcmp(in, want, RECVQ_LEN));
	EXPECT_EQ(0, check_stream(self->cli, sent, &at))
		TH_LOG("stream broken near byte %zd of %zd", at, sent);
	EXPECT_EQ(0, exchange(self->cli, fd));
}

/* A raw import request of one CONN nest, built by put */
static int raw_import(struct baton_tcp *tcp,
		      void (*put)(struct nlmsghdr *nlh, const void *rec,
				  size_t len),
		      const void *rec, size_t len)
{
	static char buf[16384];
	struct nlmsghdr *nlh = raw_put(buf, BATON_GENL_CMD_CONN_IMPORT);

	put(nlh, rec, len);
	return raw_call(nlh);
}

/* the first part of rec, with one attribute dropped or changed */
static __u16 edit_type;
static __u32 edit_value;
static bool edit_drop;

static void put_edited(struct nlmsghdr *nlh, const void *rec, size_t len)
{
	const struct nlattr *conn = rec, *attr;
	struct nlattr *nest = mnl_attr_nest_start(nlh, BATON_GENL_A_CONN);

	(void)len;
	mnl_attr_for_each_nested(attr, conn) {
		if (mnl_attr_get_type(attr) == edit_type) {
			if (!edit_drop)
				mnl_attr_put_u32(nlh, edit_type, edit_value);
			continue;
		}
		mnl_attr_put(nlh, mnl_attr_get_type(attr),
			     mnl_attr_get_payload_len(attr),
			     mnl_attr_get_payload(attr));
	}
	mnl_attr_nest_end(nlh, nest);
}

static int import_edited(struct baton_tcp *tcp, const void *rec, size_t len,
			 __u16 type, bool drop, __u32 value)
{
	edit_type = type;
	edit_drop = drop;
	edit_value = value;
	return raw_import(tcp, put_edited, rec, len);
}

/*
 * Bad input, refused with its reason, and nothing made: exports of
 * sockets that are not established TCP connections (and the caller's
 * sockets are as they were); imports of truncated records, records
 * without a scalar, with queues that do not add up, with options
 * without their values, connections out of order, a connection whose
 * twin is still open; three connections of which the last is bad make
 * no socket at all.
 */
TEST_F(conn, conns_bad_input)
{
	int pipefd[2], udp, lone, fds[3], before, after;
	void *rec, *three;
	size_t len, len3;
	char *buf;

	/* exports */
	ASSERT_EQ(0, pipe(pipefd));
	EXPECT_EQ(-ENOTSOCK, baton_tcp_export_conns(self->tcp, pipefd, 1, &rec,
						    &len));
	close(pipefd[0]);
	close(pipefd[1]);
	udp = socket(variant->family, SOCK_DGRAM, 0);
	EXPECT_EQ(-EPROTOTYPE, baton_tcp_export_conns(self->tcp, &udp, 1, &rec,
						      &len));
	close(udp);
	lone = socket(variant->family, SOCK_STREAM, 0);
	EXPECT_EQ(-ENOTCONN, baton_tcp_export_conns(self->tcp, &lone, 1, &rec,
						    &len));
	EXPECT_NE(NULL, strstr(self->log.last, "established"))
		TH_LOG("%s", self->log.last);
	close(lone);
	{
		int two[2] = { self->srv, self->lfd };

		EXPECT_EQ(-ENOTCONN, baton_tcp_export_conns(self->tcp, two, 2,
							    &rec, &len));
	}
	/* the server was left as it was: out of repair mode, serving */
	EXPECT_EQ(0, exchange(self->cli, self->srv));

	/* a real record, to spoil; the server goes back to serving */
	ASSERT_EQ(0, baton_tcp_export_conns(self->tcp, &self->srv, 1, &rec,
					    &len));
	ASSERT_EQ(0, repair(self->srv, TCP_REPAIR_OFF_NO_WP));

	/* the library refuses what is cut short */
	EXPECT_EQ(-EINVAL, baton_tcp_import_conns(self->tcp, rec, len - 2, fds, 1));
	EXPECT_EQ(-EINVAL, baton_tcp_import_conns(self->tcp, rec, len, fds, 2));
	/* the module what lacks a scalar, or does not add up, or lies */
	EXPECT_EQ(-EINVAL, import_edited(self->tcp, rec, len,
					 BATON_CONN_A_WINDOW, true, 0));
	EXPECT_EQ(-EINVAL, import_edited(self->tcp, rec, len,
					 BATON_CONN_A_RECVQ_LEN, false, 7));
	EXPECT_EQ(-EINVAL, import_edited(self->tcp, rec, len,
					 BATON_CONN_A_TIMESTAMP, true, 0));
	EXPECT_EQ(-EINVAL, import_edited(self->tcp, rec, len,
					 BATON_CONN_A_OPTIONS, false, 1 << 6));
	EXPECT_EQ(-ERANGE, import_edited(self->tcp, rec, len,
					 BATON_CONN_A_SND_WSCALE, false, 15));
	/* its twin is still open: the tuple is taken */
	EXPECT_GT(0, baton_tcp_import_conns(self->tcp, rec, len, fds, 1));
	TH_LOG("twin: %s", self->log.last);

	/* three connections, the last of them bad: none is made */
	buf = malloc(3 * len);
	ASSERT_NE(NULL, buf);
	{
		struct bulk b;
		int srvs[2];
		void *two;
		size_t len2;

		ASSERT_EQ(0, conn_pair(self->lfd, variant->family, self->port,
				       &b.cli[0], &b.srv[0]));
		ASSERT_EQ(0, conn_pair(self->lfd, variant->family, self->port,
				       &b.cli[1], &b.srv[1]));
		srvs[0] = b.srv[0];
		srvs[1] = b.srv[1];
		ASSERT_EQ(0, baton_tcp_export_conns(self->tcp, srvs, 2, &two,
						    &len2));
		close(b.srv[0]);
		close(b.srv[1]);
		memcpy(buf, two, len2);
		memcpy(buf + len2, rec, len);	/* the twin of a live one */
		len3 = len2 + len;
		three = buf;
		before = dup(0);
		close(before);
		EXPECT_GT(0, baton_tcp_import_conns(self->tcp, three, len3, fds, 3));
		for (int i = 0; i < 3; i++)
			EXPECT_GT(0, fds[i]);
		after = dup(0);
		close(after);
		EXPECT_EQ(before, after);
		/* and now without it: both come back */
		ASSERT_EQ(0, baton_tcp_import_conns(self->tcp, two, len2, fds, 2))
			TH_LOG("%s", self->log.last);
		EXPECT_EQ(0, exchange(b.cli[0], fds[0]));
		EXPECT_EQ(0, exchange(b.cli[1], fds[1]));
		for (int i = 0; i < 2; i++) {
			close(fds[i]);
			close(b.cli[i]);
		}
		free(two);
	}
	free(buf);
	free(rec);
	EXPECT_EQ(0, exchange(self->cli, self->srv));
}

/*
 * Seeded random requests: commands known and not, attributes of every
 * type with random lengths and values, fds of every kind of socket in
 * and out of repair mode. The module answers each with an error or a
 * success, and the VM's kernel log must stay free of warnings.
 */
TEST_F(conn, random_requests)
{
	int fds[8], nfds = 0, errors = 0, successes = 0;
	char buf[1024], rec[512];
	struct nlmsghdr *nlh;
	unsigned int seed = 1;

	fds[nfds++] = self->srv;
	fds[nfds++] = self->cli;
	fds[nfds++] = self->lfd;
	fds[nfds++] = socket(variant->family, SOCK_DGRAM, 0);
	fds[nfds++] = socket(variant->family, SOCK_STREAM, 0);
	fds[nfds++] = open("/dev/null", O_RDONLY);
	fds[nfds++] = 9999;
	fds[nfds++] = -1;
	ASSERT_EQ(0, repair(self->cli, TCP_REPAIR_ON));

	for (int i = 0; i < 20000; i++) {
		/* mostly well-formed enough to reach the socket checks */
		bool likely = rand_r(&seed) % 5;
		int nattrs = rand_r(&seed) % 6;

		nlh = raw_put(buf, likely ? 1 + rand_r(&seed) % BATON_GENL_CMD_MAX :
			      rand_r(&seed) % (BATON_GENL_CMD_MAX + 3));
		if (rand_r(&seed) % 16 == 0)
			nlh->nlmsg_flags |= NLM_F_DUMP;
		if (likely)
			mnl_attr_put_u32(nlh, BATON_GENL_A_FD,
					 fds[rand_r(&seed) % nfds]);
		for (int a = 0; a < nattrs; a++) {
			__u16 type = likely && rand_r(&seed) % 10 ?
				     BATON_GENL_A_STATE_FIRST + rand_r(&seed) %
				     (BATON_GENL_A_STATE_LAST - BATON_GENL_A_STATE_FIRST + 1) :
				     rand_r(&seed) % (BATON_GENL_A_MAX + 3);
			__u32 v;

			switch (rand_r(&seed) % 4) {
			case 0:	/* a descriptor, of any kind */
				v = fds[rand_r(&seed) % nfds];
				break;
			case 1:	/* small */
				v = rand_r(&seed) % 64;
				break;
			case 2:	/* at the edges */
				v = (__u32[]){ 0, 1, 2, 0x7fffffff, 0x80000000,
					       ~0U, 1U << 20, (1U << 20) + 1,
					       120000000, 120000001 }[rand_r(&seed) % 10];
				break;
			default:
				v = rand_r(&seed);
			}
			if (rand_r(&seed) % 10 == 0) {
				__u32 wide[2] = { v, v };	/* 0 to 8 bytes */

				mnl_attr_put(nlh, type, rand_r(&seed) % 9, wide);
			} else
				mnl_attr_put_u32(nlh, type, v);
		}
		if (raw_call(nlh))
			errors++;
		else
			successes++;
	}
	TH_LOG("%d refused, %d accepted", errors, successes);
	EXPECT_LT(0, errors);
	EXPECT_LT(0, successes);

	/* the module still answers, and both ends still carry bytes */
	/* an export left them in repair mode, maybe: back to serving */
	ASSERT_EQ(0, repair(self->cli, TCP_REPAIR_OFF));
	ASSERT_EQ(0, repair(self->srv, TCP_REPAIR_OFF_NO_WP));
	EXPECT_LT(0, baton_tcp_export(self->tcp, self->srv, rec, sizeof(rec)));
	EXPECT_EQ(0, exchange(self->cli, self->srv));
	for (int i = 3; i < 6; i++)
		close(fds[i]);
}

/*
 * The policy the module gives the kernel is the one its YAML spec
 * describes (Documentation/netlink/specs/baton.yaml, as the table
 * scripts/genl_spec.py makes of it): the same attributes accepted, of
 * the same types and ranges, and nothing else.
 */
#define KPOLICIES	8
#define KATTRS		64

struct kattr {
	bool present, seen, has_mask;
	int type;
	unsigned long long min, max, mask;
	unsigned int min_len, max_len;
	int idx;
};

struct kpolicy_dump {
	struct kattr a[KPOLICIES][KATTRS];
	int top;	/* the commands' policy */
};

static int kattr_cb(const struct nlattr *attr, void *data)
{
	struct kattr *k = data;

	switch (mnl_attr_get_type(attr)) {
	case NL_POLICY_TYPE_ATTR_TYPE:
		k->type = mnl_attr_get_u32(attr);
		break;
	case NL_POLICY_TYPE_ATTR_MIN_VALUE_U:
		k->min = mnl_attr_get_u64(attr);
		break;
	case NL_POLICY_TYPE_ATTR_MAX_VALUE_U:
		k->max = mnl_attr_get_u64(attr);
		break;
	case NL_POLICY_TYPE_ATTR_MASK:
		k->mask = mnl_attr_get_u64(attr);
		k->has_mask = true;
		break;
	case NL_POLICY_TYPE_ATTR_MIN_LENGTH:
		k->min_len = mnl_attr_get_u32(attr);
		break;
	case NL_POLICY_TYPE_ATTR_MAX_LENGTH:
		k->max_len = mnl_attr_get_u32(attr);
		break;
	case NL_POLICY_TYPE_ATTR_POLICY_IDX:
		k->idx = mnl_attr_get_u32(attr);
		break;
	}
	return MNL_CB_OK;
}

static int kpolicy_cb(const struct nlmsghdr *nlh, void *data)
{
	struct kpolicy_dump *d = data;
	const struct nlattr *attr, *pol, *at, *op;

	mnl_attr_for_each(attr, nlh, sizeof(struct genlmsghdr)) {
		if (mnl_attr_get_type(attr) == CTRL_ATTR_OP_POLICY) {
			mnl_attr_for_each_nested(op, attr)
				mnl_attr_for_each_nested(at, op)
					if (mnl_attr_get_type(at) == CTRL_ATTR_POLICY_DO)
						d->top = mnl_attr_get_u32(at);
			continue;
		}
		if (mnl_attr_get_type(attr) != CTRL_ATTR_POLICY)
			continue;
		mnl_attr_for_each_nested(pol, attr) {
			int i = mnl_attr_get_type(pol);

			if (i >= KPOLICIES)
				return MNL_CB_ERROR;
			mnl_attr_for_each_nested(at, pol) {
				int t = mnl_attr_get_type(at);
				struct kattr *k = &d->a[i][t];

				if (t >= KATTRS)
					return MNL_CB_ERROR;
				k->present = true;
				k->idx = -1;
				mnl_attr_parse_nested(at, kattr_cb, k);
			}
		}
	}
	return MNL_CB_OK;
}

static int kpolicy_get(struct kpolicy_dump *d)
{
	char buf[32768];
	struct mnl_socket *nl;
	struct nlmsghdr *nlh;
	struct genlmsghdr *g;
	unsigned int seq = 1;
	int ret;
	ssize_t n;

	nl = mnl_socket_open(NETLINK_GENERIC);
	if (!nl || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0)
		return -errno;
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = GENL_ID_CTRL;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = seq;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->cmd = CTRL_CMD_GETPOLICY;
	g->version = 1;
	mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, BATON_GENL_NAME);
	d->top = -1;
	ret = mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0 ? -errno : 1;
	while (ret > 0) {
		n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (n < 0) {
			ret = -errno;
			break;
		}
		ret = mnl_cb_run(buf, n, seq, mnl_socket_get_portid(nl),
				 kpolicy_cb, d);
		if (ret < 0)
			ret = -errno;
	}
	mnl_socket_close(nl);
	return ret;
}

TEST(policy_matches_spec)
{
	static struct kpolicy_dump d;
	const char *sets[KPOLICIES] = { spec_top };
	int idx[KPOLICIES], nsets = 1, mismatches = 0;

	ASSERT_EQ(0, kpolicy_get(&d));
	ASSERT_LE(0, d.top);
	idx[0] = d.top;
	for (size_t i = 0; i < ARRAY_SIZE(spec_attrs); i++) {
		const struct spec_attr *s = &spec_attrs[i];
		struct kattr *k = NULL;
		int set;

		for (set = 0; set < nsets; set++)
			if (!strcmp(sets[set], s->set))
				break;
		/* a set no accepted nest leads to: nothing to compare */
		if (set == nsets)
			continue;
		k = &d.a[idx[set]][s->value];
		k->seen = true;
		if (!s->accepted) {
			EXPECT_FALSE(k->present)
				TH_LOG("%s %s: accepted, not in the spec's requests",
				       s->set, s->name);
			continue;
		}
		if (!k->present) {
			TH_LOG("%s %s: in the spec, not in the policy",
			       s->set, s->name);
			mismatches++;
			continue;
		}
		EXPECT_EQ(s->type, k->type) TH_LOG("%s %s", s->set, s->name);
		if (s->has_mask) {
			EXPECT_TRUE(k->has_mask) TH_LOG("%s", s->name);
			EXPECT_EQ(s->mask, k->mask) TH_LOG("%s", s->name);
		} else if (s->type != NL_ATTR_TYPE_BINARY &&
			   s->type != NL_ATTR_TYPE_NESTED &&
			   s->type != NL_ATTR_TYPE_FLAG) {
			EXPECT_EQ(s->min, k->min) TH_LOG("%s", s->name);
			EXPECT_EQ(s->max, k->max) TH_LOG("%s", s->name);
		}
		EXPECT_EQ(s->min_len, k->min_len) TH_LOG("%s", s->name);
		EXPECT_EQ(s->max_len, k->max_len) TH_LOG("%s", s->name);
		if (s->nested && k->idx >= 0 && nsets < KPOLICIES) {
			sets[nsets] = s->nested;
			idx[nsets++] = k->idx;
		}
	}
	EXPECT_EQ(0, mismatches);
	/* and nothing the spec does not know */
	for (int set = 0; set < nsets; set++) {
		for (int t = 0; t < KATTRS; t++) {
			struct kattr *k = &d.a[idx[set]][t];

			EXPECT_FALSE(k->present && !k->seen)
				TH_LOG("set %s: attribute %d is not in the spec",
				       sets[set], t);
		}
	}
}

TEST_HARNESS_MAIN
