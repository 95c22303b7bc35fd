// SPDX-License-Identifier: GPL-2.0-only
/*
 * baton.ko, through libbaton and through raw generic netlink; runs inside
 * the VM (scripts/vm.sh), where the module is loaded. IPv4 and IPv6:
 *  1. an export reports what TCP_INFO reports: cwnd, ssthresh, RTT,
 *     deviation, minimum RTT, RTO;
 *  2. an import into a socket in repair mode sets them; out of repair
 *     mode it is refused with the kernel's reason, and nothing changes;
 *  3. an import with one bad value among good ones changes nothing;
 *  4. checkpoint, close, restore: the congestion window and RTT come
 *     back; with unread received bytes and a window-limited send queue,
 *     the peer notices nothing and every byte arrives once; restored
 *     without the module's part, the window starts over;
 *  5. a record attribute the module does not know is skipped by the
 *     library, but the module itself refuses it, as it refuses unknown
 *     flags, wrong lengths and unknown commands;
 *  6. not a socket, not TCP, a listener, a socket of another netns, a
 *     caller without CAP_NET_ADMIN: each refused; nobody in a user and
 *     network namespace of its own moves its own connection;
 *  7. malformed, truncated and foreign checkpoints are refused before a
 *     socket is made;
 *  8. 20,000 seeded random requests, then the module still answers and
 *     the connection still carries bytes.
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
#include <netinet/in.h>
#include <linux/tcp.h>	/* struct tcp_info with tcpi_min_rtt */
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <linux/genetlink.h>
#include <linux/capability.h>

#include "kselftest_harness.h"
#include "baton.h"
#include <linux/baton.h>
#include "helpers.h"
#include "tcp.h"
#include "baton_policy_spec.h"	/* scripts/genl_spec.py */

#define RECVQ_LEN	3000
#define SENDQ_MAX	(4 << 20)

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

/* a copy of a checkpoint without one attribute */
static size_t rec_without(const void *rec, size_t len, __u16 type, void *out)
{
	const struct nlattr *attr;
	size_t off = 0;

	mnl_attr_for_each_payload(rec, len) {
		if (mnl_attr_get_type(attr) == type)
			continue;
		memcpy((char *)out + off, attr, MNL_ALIGN(attr->nla_len));
		off += MNL_ALIGN(attr->nla_len);
	}
	return off;
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
 * Raw requests to the module, past the library's checks, on the library's
 * own channel (its socket and the family id it resolved).
 */
static struct nlmsghdr *raw_put(char *buf, const struct baton_tcp *tcp,
				__u8 cmd)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct genlmsghdr *g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));

	nlh->nlmsg_type = tcp->family;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	g->cmd = cmd;
	g->version = BATON_GENL_VERSION;
	return nlh;
}

/* 0 or the kernel's -errno */
static int raw_call(struct baton_tcp *tcp, struct nlmsghdr *nlh)
{
	char buf[8192];
	ssize_t n;
	int ret;

	nlh->nlmsg_seq = ++tcp->seq;
	if (mnl_socket_sendto(tcp->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	do {
		n = mnl_socket_recvfrom(tcp->nl, buf, sizeof(buf));
		if (n < 0)
			return -errno;
		ret = mnl_cb_run(buf, n, tcp->seq, 0, NULL, NULL);
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
	int fd;

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
	EXPECT_EQ(0, exchange(self->cli, fd));
}

TEST_F(conn, checkpoint_restore_keeps_bytes)
{
	char in[RECVQ_LEN], want[RECVQ_LEN];
	ssize_t sent, at = 0;
	size_t len;
	void *rec;
	int fd;

	/* unread bytes at srv, and srv's writes stuck behind cli's window */
	for (int i = 0; i < RECVQ_LEN; i++)
		want[i] = (char)(i * 13);
	ASSERT_EQ(RECVQ_LEN, send(self->cli, want, RECVQ_LEN, 0));
	usleep(100 * 1000);
	sent = fill_sendq(self->srv);
	ASSERT_LT(0, sent);

	fd = move(self->tcp, &self->srv, &rec, &len, 0);
	ASSERT_LE(0, fd) TH_LOG("restore: %s", self->log.last);
	self->srv = fd;
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

	/* the module refuses it outright, and the rest with it */
	nlh = raw_put(buf, self->tcp, BATON_GENL_CMD_TCP_IMPORT);
	mnl_attr_put_u32(nlh, BATON_GENL_A_FD, self->srv);
	mnl_attr_put_u32(nlh, BATON_GENL_A_CWND, 44);
	mnl_attr_put_u32(nlh, BATON_GENL_A_MAX + 7, 1);
	EXPECT_EQ(-EINVAL, raw_call(self->tcp, nlh));
	/* unknown flags */
	nlh = raw_put(buf, self->tcp, BATON_GENL_CMD_TCP_IMPORT);
	mnl_attr_put_u32(nlh, BATON_GENL_A_FD, self->srv);
	mnl_attr_put_u32(nlh, BATON_GENL_A_FLAGS, 1U << 5);
	mnl_attr_put_u32(nlh, BATON_GENL_A_CWND, 44);
	EXPECT_EQ(-EINVAL, raw_call(self->tcp, nlh));
	/* a u16 where a u32 belongs */
	nlh = raw_put(buf, self->tcp, BATON_GENL_CMD_TCP_IMPORT);
	mnl_attr_put_u16(nlh, BATON_GENL_A_FD, self->srv);
	mnl_attr_put_u32(nlh, BATON_GENL_A_CWND, 44);
	EXPECT_EQ(-EINVAL,
		  raw_call(self->tcp, nlh));
	/* no fd at all */
	nlh = raw_put(buf, self->tcp, BATON_GENL_CMD_TCP_EXPORT);
	EXPECT_EQ(-EINVAL, raw_call(self->tcp, nlh));
	/* an unknown command */
	nlh = raw_put(buf, self->tcp, BATON_GENL_CMD_MAX + 1);
	EXPECT_EQ(-EOPNOTSUPP, raw_call(self->tcp, nlh));
	/* a reserved header field set */
	nlh = raw_put(buf, self->tcp, BATON_GENL_CMD_TCP_EXPORT);
	gh = mnl_nlmsg_get_payload(nlh);
	gh->reserved = 1;
	mnl_attr_put_u32(nlh, BATON_GENL_A_FD, self->srv);
	EXPECT_EQ(-EINVAL, raw_call(self->tcp, nlh));

	ASSERT_EQ(0, tcp_info_get(self->srv, &ti));
	EXPECT_EQ(33, ti.tcpi_snd_cwnd);
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

		nlh = raw_put(buf, self->tcp,
			      likely ? 1 + rand_r(&seed) % 2 : rand_r(&seed) % 5);
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
		if (raw_call(self->tcp, nlh))
			errors++;
		else
			successes++;
	}
	TH_LOG("%d refused, %d accepted", errors, successes);
	EXPECT_LT(0, errors);
	EXPECT_LT(0, successes);

	/* the module still answers, and both ends still carry bytes */
	ASSERT_EQ(0, repair(self->cli, TCP_REPAIR_OFF));
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
