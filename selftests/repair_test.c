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
 *     figure for the benchmark;
 *  2. a new instance that fails once it holds the checkpoints (its
 *     open-file limit is below the connections' count: it cannot restore
 *     them) rolls back: the old one rebuilds each connection in its own
 *     socket (thawing them, if frozen), and serves every one byte-exact;
 *     again after an upgrade that went through (sockets a restore made);
 *  3. a new instance that refuses the old one's state (--state-min) rolls
 *     back before anything moved.
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
#define READ_CHUNK	8192		/* the slow reader: this much ... */
#define READ_EVERY_US	5000		/* ... this often */
#define SEND_EVERY_US	2000		/* the steady sender's INCRs */
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
};

FIXTURE_VARIANT_ADD(repair, ipv4_v1_v2) { .family = AF_INET, .from = 1, .to = 2 };
FIXTURE_VARIANT_ADD(repair, ipv4_v2_v1) { .family = AF_INET, .from = 2, .to = 1 };
FIXTURE_VARIANT_ADD(repair, ipv6_v1_v2) { .family = AF_INET6, .from = 1, .to = 2 };
FIXTURE_VARIANT_ADD(repair, ipv6_v2_v1) { .family = AF_INET6, .from = 2, .to = 1 };

FIXTURE_SETUP(repair)
{
	/* a connection that broke fails its EXPECT, not the whole program */
	signal(SIGPIPE, SIG_IGN);
	ASSERT_EQ(0, service_up(&self->svc, variant->family, variant->from));
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

/* A counter of /proc/net/snmp ("Tcp") or /proc/net/netstat ("TcpExt") */
static long long counter(const char *file, const char *proto, const char *key)
{
	char names[4096], values[4096], *n, *v, *sn, *sv;
	size_t plen = strlen(proto);
	long long found = -1;
	FILE *f = fopen(file, "r");

	if (!f)
		return -1;
	while (fgets(names, sizeof(names), f) && fgets(values, sizeof(values), f)) {
		if (strncmp(names, proto, plen) || names[plen] != ':')
			continue;
		n = strtok_r(names + plen + 1, " \n", &sn);
		v = strtok_r(values + plen + 1, " \n", &sv);
		for (; n && v; n = strtok_r(NULL, " \n", &sn),
			       v = strtok_r(NULL, " \n", &sv))
			if (!strcmp(n, key))
				found = atoll(v);
	}
	fclose(f);
	return found;
}

/*
 * Not EstabResets: a socket let go of in repair mode leaves ESTABLISHED
 * for CLOSE, which counts there, though nothing is sent.
 */
struct counters {
	long long timeouts, out_rsts, abort_data, abort_close;
};

static void counters_read(struct counters *c)
{
	c->timeouts = counter("/proc/net/netstat", "TcpExt", "TCPTimeouts");
	c->abort_data = counter("/proc/net/netstat", "TcpExt", "TCPAbortOnData");
	c->abort_close = counter("/proc/net/netstat", "TcpExt", "TCPAbortOnClose");
	c->out_rsts = counter("/proc/net/snmp", "Tcp", "OutRsts");
}

/* kvd-v<version> by batonctl upgrade --mode repair, wrapped if need be */
static int upgrade(const char *rundir, int version, const char *prefix,
		   const char *extra, char *out, size_t len)
{
	char path[512], log[512], name[16], cmd[1200];
	const char *args[15] = { "upgrade", "kvd", "-j", "--mode", "repair",
				 "--log", log, "--blackout-timeout-ms", "20000",
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
		args[10] = "/bin/sh";
		args[11] = "-c";
		args[12] = cmd;
		args[13] = NULL;
	}
	return batonctl(out, len, args);
}

/*
 * The slow reader: reads everything the window-limited connection gets,
 * a little at a time, so that the server always has bytes in flight and
 * more unsent, then checks it whole.
 */
struct slow {
	int fd;
	const char *big;
	char *got;
	size_t want, have;
	int err;
};

static void *slow_read(void *arg)
{
	struct slow *s = arg;
	struct pollfd p = { .fd = s->fd, .events = POLLIN };

	while (s->have < s->want) {
		ssize_t n;

		if (poll(&p, 1, 20000) != 1) {
			s->err = -ETIMEDOUT;
			break;
		}
		n = read(s->fd, s->got + s->have,
			 s->want - s->have < READ_CHUNK ? s->want - s->have :
							  READ_CHUNK);
		if (n <= 0) {
			s->err = n < 0 ? -errno : -ECONNRESET;
			break;
		}
		s->have += n;
		usleep(READ_EVERY_US);
	}
	return NULL;
}

/*
 * The steady sender: an INCR every SEND_EVERY_US, its replies read as
 * they come and checked in order (:1, :2, ...), until told to stop and
 * every reply is in.
 */
struct sender {
	int fd;
	volatile int stop;
	unsigned int sent, answered;
	int err;
};

static void *send_steadily(void *arg)
{
	static const char req[] = "*2\r\n$4\r\nINCR\r\n$6\r\nsteady\r\n";
	struct sender *s = arg;
	char buf[4096], want[32];
	size_t have = 0, wl;
	int idle = 0;

	while (!s->err && (!s->stop || s->answered < s->sent)) {
		struct pollfd p = { .fd = s->fd, .events = POLLIN };
		ssize_t n;

		bool more = !s->stop;

		if (more && write(s->fd, req, sizeof(req) - 1) !=
			    sizeof(req) - 1) {
			s->err = -EIO;
			break;
		}
		if (more)
			s->sent++;
		if (poll(&p, 1, SEND_EVERY_US / 1000) == 1) {
			n = read(s->fd, buf + have, sizeof(buf) - 1 - have);
			if (n <= 0) {
				s->err = -ECONNRESET;
				break;
			}
			have += n;
			idle = 0;
		} else if (s->stop && ++idle > 5000 / (SEND_EVERY_US / 1000)) {
			s->err = -ETIMEDOUT;	/* 5 s without a reply */
		}
		for (;;) {
			wl = snprintf(want, sizeof(want), ":%u\r\n",
				      s->answered + 1);
			if (have < wl)
				break;
			if (memcmp(buf, want, wl)) {
				s->err = -EBADMSG;	/* lost or repeated */
				break;
			}
			memmove(buf, buf + wl, have - wl);
			have -= wl;
			s->answered++;
		}
	}
	return NULL;
}

TEST_F_TIMEOUT(repair, every_byte_once, 180)
{
	const char *partial = "*3\r\n$3\r\nSET\r\n$4\r\nhalf\r\n$5\r\nwo";
	const char *get_big[] = { "GET", "big" };
	const char *incr_after[] = { "INCR", "after" };
	int keys, half, window, i, version, moved = FROZEN ? 4 : 3;
	struct counters before, after;
	struct slow slow = {};
	struct sender snd = {};
	pthread_t rt, st;
	char *big = big_value(BIG_LEN), out[8192];
	size_t one = strlen("$262144\r\n") + BIG_LEN + 2;
	pid_t pid;

	ASSERT_NE(NULL, big);
	keys = client_connect(variant->family, self->svc.port);
	half = client_connect(variant->family, self->svc.port);
	window = client_connect(variant->family, self->svc.port);
	/* unfrozen, a client that sends while its connection moves loses */
	snd.fd = FROZEN ? client_connect(variant->family, self->svc.port) : -1;
	ASSERT_LE(0, keys);
	ASSERT_LE(0, half);
	ASSERT_LE(0, window);
	if (FROZEN)
		ASSERT_LE(0, snd.fd);
	/* a small window: replies stay in the server, sent and unsent */
	ASSERT_EQ(0, setsockopt(window, SOL_SOCKET, SO_RCVBUF,
				&(int){ 65536 }, sizeof(int)));
	ASSERT_EQ(0, resp_expect(keys, "+OK\r\n", 3, "SET", "k1", "v1"));
	ASSERT_EQ(0, resp_expect(keys, ":1\r\n", 2, "INCR", "counter"));
	ASSERT_EQ(0, resp_expect(window, "+OK\r\n", 3, "SET", "big", big));

	/* half a request, in kvd's own record of the connection */
	ASSERT_EQ((ssize_t)strlen(partial), write(half, partial, strlen(partial)));
	/* replies larger than the client's window, and a request after */
	for (i = 0; i < BIG_GETS; i++)
		ASSERT_EQ(0, resp_send(window, 2, get_big));
	ASSERT_EQ(0, resp_send(window, 2, incr_after));
	ASSERT_EQ(0, resp_send(window, 2, incr_after));
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
	EXPECT_EQ(0, slow.err);
	ASSERT_EQ(slow.want, slow.have);
	for (i = 0; i < BIG_GETS; i++) {
		const char *r = slow.got + i * one;

		EXPECT_EQ(0, memcmp(r, "$262144\r\n", 9));
		EXPECT_EQ(0, memcmp(r + 9, big, BIG_LEN));
		EXPECT_EQ(0, memcmp(r + 9 + BIG_LEN, "\r\n", 2));
	}
	EXPECT_EQ(0, memcmp(slow.got + BIG_GETS * one, ":1\r\n:2\r\n", 8));
	/* the half request, and the others */
	ASSERT_EQ(5, write(half, "rld\r\n", 5));
	EXPECT_LT(0, resp_reply(half, out, sizeof(out), 5000));
	EXPECT_STREQ("+OK\r\n", out);
	EXPECT_EQ(0, resp_expect(half, "$5\r\nworld\r\n", 2, "GET", "half"));
	EXPECT_EQ(0, resp_expect(keys, "$2\r\nv1\r\n", 2, "GET", "k1"));
	EXPECT_EQ(0, resp_expect(keys, ":2\r\n", 2, "INCR", "counter"));
	EXPECT_EQ(0, resp_expect(window, ":3\r\n", 2, "INCR", "after"));
	ASSERT_EQ(0, kvd_info(keys, &pid, &version));
	EXPECT_EQ(variant->to, version);

	counters_read(&after);
	TH_LOG("TCPTimeouts %lld -> %lld, OutRsts %lld -> %lld",
	       before.timeouts, after.timeouts, before.out_rsts, after.out_rsts);
	EXPECT_EQ(before.out_rsts, after.out_rsts);
	EXPECT_EQ(before.abort_data, after.abort_data);
	EXPECT_EQ(before.abort_close, after.abort_close);
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
	EXPECT_EQ(1, upgrade(self->svc.rundir, variant->from, limit, NULL, out,
			     sizeof(out)));
	EXPECT_NE(NULL, strstr(out, "\"result\":\"rolled-back\""));
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

TEST_HARNESS_MAIN
