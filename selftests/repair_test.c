// SPDX-License-Identifier: GPL-2.0-only
/*
 * Repair mode (batonctl upgrade --mode repair): established connections
 * move as TCP checkpoints, not as descriptors. Built twice: repair_test,
 * in the VM with baton.ko, which freezes and exports them; and
 * repair_host_test (UNFROZEN), on the host, whose kernel loads no module:
 * TCP_REPAIR alone, nothing frozen, and the report says so. Real kvd
 * processes, real clients, over IPv4 and IPv6, both ways between
 * versions:
 *  1. every byte arrives once, with bytes in every queue of the server's
 *     sockets as they move: replies larger than the client's window,
 *     read slowly (sent and not yet acknowledged, never sent; unfrozen,
 *     read only once moved: a window update would meet no socket), half
 *     a request and unsent replies in kvd's own records, and (frozen only)
 *     a client that sends throughout, the blackout (requests kvd no
 *     longer reads, in the receive queue) and the freeze included; no
 *     RST on either side (TcpExt and Tcp counters of the test's
 *     namespace); the retransmission timeouts are printed, not asserted:
 *     whether a freeze outlasts the peer's RTO is the VM's speed, a
 *     figure for the benchmark; and (the _nogso variants) over a device
 *     that does no segmentation offload, where a send queue is rebuilt
 *     in skbs of one segment each, which the new socket's buffer must
 *     hold; and (_lowat) with the namespace's tcp_notsent_lowat set
 *     below the unsent bytes just before the upgrade, which the new
 *     socket must still take whole;
 *  2. a new instance that fails once it holds the checkpoints (its
 *     open-file limit is below the connections' count: it cannot restore
 *     them) rolls back: the old one rebuilds each connection in its own
 *     socket (thawing them, if frozen), and serves every one byte-exact;
 *     again after an upgrade that went through (sockets a restore made);
 *  3. a new instance that refuses the old one's state (--state-min) rolls
 *     back before anything moved;
 *  4. a new instance still activating at the blackout's deadline, the
 *     service's lock held (kvd --activate-delay), is given the grace and
 *     serves every connection; one slower than the grace is stopped, and
 *     the old one serves every connection, with no reset either way.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "helpers.h"

#define BIG_LEN		(256 << 10)
#define BIG_GETS	6
#define FAIL_CONNS	40		/* test 2: more than the new one's limit */
#define FAIL_NOFILE	32

#ifdef UNFROZEN
#define FROZEN		false
#define CKPT_PATH	"userspace"
#else
#define FROZEN		true
#define CKPT_PATH	"module"
#endif

FIXTURE(repair) {
	struct service svc;
};

FIXTURE_VARIANT(repair) {
	int family;
	int from, to;
	bool nogso;
	bool lowat;
};

FIXTURE_VARIANT_ADD(repair, ipv4_v1_v2) { .family = AF_INET, .from = 1, .to = 2 };
FIXTURE_VARIANT_ADD(repair, ipv4_v2_v1) { .family = AF_INET, .from = 2, .to = 1 };
FIXTURE_VARIANT_ADD(repair, ipv6_v1_v2) { .family = AF_INET6, .from = 1, .to = 2 };
FIXTURE_VARIANT_ADD(repair, ipv6_v2_v1) { .family = AF_INET6, .from = 2, .to = 1 };
/* a device that does no segmentation offload: a segment per skb */
FIXTURE_VARIANT_ADD(repair, ipv4_v1_v2_nogso) {
	.family = AF_INET, .from = 1, .to = 2, .nogso = true };
FIXTURE_VARIANT_ADD(repair, ipv6_v2_v1_nogso) {
	.family = AF_INET6, .from = 2, .to = 1, .nogso = true };
/* the namespace's tcp_notsent_lowat low once the bytes are queued */
FIXTURE_VARIANT_ADD(repair, ipv4_v1_v2_lowat) {
	.family = AF_INET, .from = 1, .to = 2, .lowat = true };

FIXTURE_SETUP(repair)
{
	/* a connection that broke fails its EXPECT, not the whole program */
	signal(SIGPIPE, SIG_IGN);
	ASSERT_EQ(0, service_up(&self->svc, variant->family, variant->from));
	if (variant->nogso)
		ASSERT_EQ(0, link_gso_max_segs("lo", 1));
}

FIXTURE_TEARDOWN(repair)
{
	char out[4096];
	const char *args[] = { "status", "-j", NULL };

	batonctl(out, sizeof(out), args);
	if (json_num(out, "pid") > 0)
		kill(json_num(out, "pid"), SIGTERM);
	service_teardown(&self->svc);
}

/* net.ipv4.tcp_notsent_lowat of the test's network namespace */
static int notsent_lowat(const char *bytes)
{
	int fd = open("/proc/sys/net/ipv4/tcp_notsent_lowat", O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, bytes, strlen(bytes));
	close(fd);
	return n == (ssize_t)strlen(bytes) ? 0 : -EIO;
}

/*
 * kvd-v<version> by batonctl upgrade --mode repair, wrapped if need be,
 * the blackout's deadline blackout_ms
 */
static int upgrade_as(const char *rundir, int version, const char *prefix,
		      const char *extra, const char *blackout_ms, bool json,
		      char *out, size_t len)
{
	char path[512], log[512], name[16], cmd[1200];
	const char *args[17] = { "upgrade", "kvd", "-j", "--mode", "repair",
				 "--log", log, "--blackout-timeout-ms", blackout_ms,
				 "--timeout-ms", SURE_STEP_MS,
				 "--", path, "--quiet", extra, NULL };

	/*
	 * Nothing freezes the connections without baton.ko: a segment from
	 * a client while its connection has no socket, even a delayed ACK,
	 * is answered with a reset. Let every one go first.
	 */
	if (!FROZEN)
		usleep(300000);
	snprintf(log, sizeof(log), "%s/kvd.log", rundir);
	snprintf(name, sizeof(name), "kvd-v%d", version);
	bin(name, path, sizeof(path));
	if (prefix) {
		/* the same process, its limits changed: sh execs kvd */
		snprintf(cmd, sizeof(cmd), "%s exec %s --quiet", prefix, path);
		args[12] = "/bin/sh";
		args[13] = "-c";
		args[14] = cmd;
		args[15] = NULL;
	}
	if (!json)	/* the text report: no -j */
		memmove(&args[2], &args[3], sizeof(args) - 3 * sizeof(args[0]));
	return batonctl(out, len, args);
}

static int upgrade_within(const char *rundir, int version, const char *prefix,
			  const char *extra, const char *blackout_ms, char *out,
			  size_t len)
{
	return upgrade_as(rundir, version, prefix, extra, blackout_ms, true,
			  out, len);
}

static int upgrade(const char *rundir, int version, const char *prefix,
		   const char *extra, char *out, size_t len)
{
	return upgrade_within(rundir, version, prefix, extra, "20000", out,
			      len);
}

TEST_F_TIMEOUT(repair, every_byte_once, 180)
{
	int keys, half, window, version, moved = FROZEN ? 4 : 3;
	struct counters before;
	struct slow slow = {};
	struct sender snd = {};
	pthread_t rt, st;
	char *big = big_value(BIG_LEN), out[8192];
	size_t one = strlen("$262144\r\n") + BIG_LEN + 2;
	pid_t pid;

	ASSERT_NE(NULL, big);
	ASSERT_EQ(0, moved_clients_setup(variant->family, self->svc.port,
					 &keys, &half, &window, big, BIG_GETS));
	/* unfrozen, a client that sends while its connection moves loses */
	snd.fd = FROZEN ? client_connect(variant->family, self->svc.port) : -1;
	if (FROZEN)
		ASSERT_LE(0, snd.fd);
	usleep(100000);
	counters_read(&before);
	ASSERT_LE(0, before.timeouts);
	ASSERT_LE(0, before.out_rsts);

	slow.fd = window;
	slow.big = big;
	slow.want = BIG_GETS * one + 2 * strlen(":1\r\n");
	slow.got = malloc(slow.want);
	ASSERT_NE(NULL, slow.got);
	/*
	 * Unfrozen, a client that reads while its connection moves sends
	 * window updates that can meet no socket: the reader starts after.
	 */
	if (FROZEN) {
		ASSERT_EQ(0, pthread_create(&rt, NULL, slow_read, &slow));
		ASSERT_EQ(0, pthread_create(&st, NULL, send_steadily, &snd));
		usleep(300000);
	}
	/*
	 * Unsent bytes far past it wait in the old socket; the new one's
	 * must take them all, as a write that stops short would leave a hole
	 * in the stream
	 */
	if (variant->lowat)
		ASSERT_EQ(0, notsent_lowat("4096"));

	EXPECT_EQ(0, upgrade(self->svc.rundir, variant->to, NULL, NULL, out,
			     sizeof(out)));
	TH_LOG("%s", out);
	if (!FROZEN)
		ASSERT_EQ(0, pthread_create(&rt, NULL, slow_read, &slow));
	if (FROZEN) {
		usleep(300000);	/* the sender goes on after the thaw */
		snd.stop = 1;
		pthread_join(st, NULL);
	}
	pthread_join(rt, NULL);

	EXPECT_NE(NULL, strstr(out, "\"result\":\"done\""));
	EXPECT_NE(NULL, strstr(out, "\"mode\":\"repair\""));
	EXPECT_NE(NULL, strstr(out, "\"checkpoint_path\":\"" CKPT_PATH "\""));
	EXPECT_EQ(moved, json_num(out, "checkpoints"));
	EXPECT_EQ(moved, json_num(out, "conns"));
	EXPECT_EQ(moved, json_num(out, "records"));
	EXPECT_EQ(0, waitpid(self->svc.kvd, NULL, 0) == self->svc.kvd ? 0 : -1);
	self->svc.kvd = 0;

	/* the steady sender: every INCR answered once, in order */
	if (FROZEN) {
		EXPECT_EQ(0, snd.err);
		EXPECT_EQ(snd.sent, snd.answered);
		TH_LOG("steady sender: %u INCRs, %u answered", snd.sent,
		       snd.answered);
	}
	/* the window-limited connection: every reply, byte for byte */
	EXPECT_EQ(0, slow_check(&slow, BIG_GETS, BIG_LEN));
	EXPECT_EQ(0, moved_clients_check(half, keys, window));
	ASSERT_EQ(0, kvd_info(keys, &pid, &version));
	EXPECT_EQ(variant->to, version);

	EXPECT_EQ(0, counters_unmoved(&before));
	close(keys);
	close(half);
	close(window);
	if (FROZEN)
		close(snd.fd);
	free(slow.got);
	free(big);
}

/* Every connection served by the old instance, as it left it */
static void expect_served(struct __test_metadata *_metadata, const int *fds,
			  int n, int count, pid_t by, int version)
{
	int v;
	pid_t pid;

	EXPECT_EQ(0, incr_each(fds, n, count));
	ASSERT_EQ(0, kvd_info(fds[0], &pid, &v));
	EXPECT_EQ(by, pid);
	EXPECT_EQ(version, v);
}

TEST_F_TIMEOUT(repair, new_fails_with_the_checkpoints, 120)
{
	const char *partial = "*3\r\n$3\r\nSET\r\n$4\r\nhalf\r\n$5\r\nwo";
	int fds[FAIL_CONNS], half, i;
	struct counters before, after;
	pid_t new_pid;
	char key[16], out[8192], limit[64];

	for (i = 0; i < FAIL_CONNS; i++) {
		fds[i] = client_connect(variant->family, self->svc.port);
		ASSERT_LE(0, fds[i]);
		snprintf(key, sizeof(key), "c%d", i);
		ASSERT_EQ(0, resp_expect(fds[i], ":1\r\n", 2, "INCR", key));
	}
	half = client_connect(variant->family, self->svc.port);
	ASSERT_LE(0, half);
	ASSERT_EQ((ssize_t)strlen(partial), write(half, partial, strlen(partial)));
	usleep(100000);
	counters_read(&before);

	snprintf(limit, sizeof(limit), "ulimit -n %d &&", FAIL_NOFILE);
	EXPECT_EQ(1, upgrade(self->svc.rundir, variant->to, limit, NULL, out,
			     sizeof(out)));
	TH_LOG("%s", out);
	EXPECT_NE(NULL, strstr(out, "\"result\":\"rolled-back\""));
	/* they were checkpointed: the failure came after */
	EXPECT_EQ(FAIL_CONNS + 1, json_num(out, "checkpoints"));

	expect_served(_metadata, fds, FAIL_CONNS, 2, self->svc.kvd, variant->from);
	ASSERT_EQ(5, write(half, "rld\r\n", 5));
	EXPECT_LT(0, resp_reply(half, out, sizeof(out), 5000));
	EXPECT_STREQ("+OK\r\n", out);
	EXPECT_EQ(0, resp_expect(half, "$5\r\nworld\r\n", 2, "GET", "half"));

	counters_read(&after);
	TH_LOG("TCPTimeouts %lld -> %lld", before.timeouts, after.timeouts);
	EXPECT_EQ(before.out_rsts, after.out_rsts);

	/* the next upgrade, within the limits, goes through */
	EXPECT_EQ(0, upgrade(self->svc.rundir, variant->to, NULL, NULL, out,
			     sizeof(out)));
	EXPECT_EQ(FAIL_CONNS + 1, json_num(out, "conns"));
	new_pid = json_num(out, "new_pid");
	waitpid(self->svc.kvd, NULL, 0);
	self->svc.kvd = 0;
	expect_served(_metadata, fds, FAIL_CONNS, 3, new_pid, variant->to);
	/*
	 * and one more that fails rolls back sockets baton.ko's import made
	 * (bound by hand: a disconnect keeps their port)
	 */
	EXPECT_EQ(1, upgrade_as(self->svc.rundir, variant->from, limit, NULL,
				"20000", false, out, sizeof(out)));
	/* the text report: what crossed in phase 1 is said undone */
	EXPECT_NE(NULL, strstr(out, "upgrade of kvd: rolled-back\n"))
		TH_LOG("%s", out);
	EXPECT_NE(NULL, strstr(out, "\nmoved, undone "));
	EXPECT_EQ(NULL, strstr(out, "\nmoved "));
	expect_served(_metadata, fds, FAIL_CONNS, 4, new_pid, variant->to);
	EXPECT_EQ(0, resp_expect(half, "$5\r\nworld\r\n", 2, "GET", "half"));
	for (i = 0; i < FAIL_CONNS; i++)
		close(fds[i]);
	close(half);
}

TEST_F_TIMEOUT(repair, new_refuses_the_state, 120)
{
	int fds[8], i;
	char key[16], out[8192], min[16];

	for (i = 0; i < 8; i++) {
		fds[i] = client_connect(variant->family, self->svc.port);
		ASSERT_LE(0, fds[i]);
		snprintf(key, sizeof(key), "c%d", i);
		ASSERT_EQ(0, resp_expect(fds[i], ":1\r\n", 2, "INCR", key));
	}
	/* a state version newer than either writes */
	snprintf(min, sizeof(min), "--state-min=%d", 3);
	EXPECT_EQ(1, upgrade(self->svc.rundir, variant->to, NULL, min, out,
			     sizeof(out)));
	TH_LOG("%s", out);
	EXPECT_NE(NULL, strstr(out, "\"result\":\"rolled-back\""));
	EXPECT_EQ(0, json_num(out, "checkpoints"));
	expect_served(_metadata, fds, 8, 2, self->svc.kvd, variant->from);
	for (i = 0; i < 8; i++)
		close(fds[i]);
}

/*
 * 40 clients, then an upgrade with a 400 ms blackout whose new instance
 * waits delay_ms in its activation, the lock held (at 400 ms it holds it:
 * its blackout takes some 20 ms here); the exit status of batonctl.
 */
static int slow_upgrade(struct __test_metadata *_metadata,
			FIXTURE_DATA(repair) *self,
			const FIXTURE_VARIANT(repair) *variant, int *fds,
			const char *delay_ms, char *out, size_t len)
{
	char key[16], delay[32];
	int i, ret;

	for (i = 0; i < FAIL_CONNS; i++) {
		fds[i] = client_connect(variant->family, self->svc.port);
		if (fds[i] < 0)
			return -1;
		snprintf(key, sizeof(key), "c%d", i);
		if (resp_expect(fds[i], ":1\r\n", 2, "INCR", key))
			return -1;
	}
	snprintf(delay, sizeof(delay), "--activate-delay=%s", delay_ms);
	ret = upgrade_within(self->svc.rundir, variant->to, NULL, delay, "400",
			     out, len);
	TH_LOG("%s", out);
	return ret;
}

TEST_F_TIMEOUT(repair, slow_new_instance_given_grace, 120)
{
	struct counters before, after;
	char out[8192];
	int fds[FAIL_CONNS], i;
	pid_t new_pid;

	counters_read(&before);
	/* done some 800 ms in, within the deadline and half a freeze's slack */
	ASSERT_EQ(0, slow_upgrade(_metadata, self, variant, fds, "800", out,
				  sizeof(out)));
	EXPECT_NE(NULL, strstr(out, "\"result\":\"done\""));
	EXPECT_EQ(FAIL_CONNS, json_num(out, "conns"));
	new_pid = json_num(out, "new_pid");
	waitpid(self->svc.kvd, NULL, 0);
	self->svc.kvd = 0;
	expect_served(_metadata, fds, FAIL_CONNS, 2, new_pid, variant->to);
	counters_read(&after);
	EXPECT_EQ(before.out_rsts, after.out_rsts);
	for (i = 0; i < FAIL_CONNS; i++)
		close(fds[i]);
}

TEST_F_TIMEOUT(repair, too_slow_new_instance_rolls_back, 120)
{
	struct counters before, after;
	char out[8192];
	int fds[FAIL_CONNS], i;

	counters_read(&before);
	/* stopped 400 + 1,000 ms in, its connections restored and guarded */
	ASSERT_EQ(1, slow_upgrade(_metadata, self, variant, fds, "5000", out,
				  sizeof(out)));
	EXPECT_NE(NULL, strstr(out, "\"result\":\"rolled-back\""));
	EXPECT_NE(NULL, strstr(out, "its grace for holding the lock ran out"));
	expect_served(_metadata, fds, FAIL_CONNS, 2, self->svc.kvd,
		      variant->from);
	counters_read(&after);
	EXPECT_EQ(before.out_rsts, after.out_rsts);
	for (i = 0; i < FAIL_CONNS; i++)
		close(fds[i]);
}

TEST_HARNESS_MAIN
