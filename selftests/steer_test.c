// SPDX-License-Identifier: GPL-2.0-only
/*
 * Steering between generations of listeners with bpf/baton_steer.bpf.c:
 *  1. connections waiting in the accept queue of a listener that closes
 *     move to the active generation's listener, none reset, over IPv4 and
 *     IPv6, from generation 1 to 2 and from 2 to 1, and wake an epoll that
 *     waits on it (nothing needs to sweep it with accept()); so do
 *     handshakes not yet complete (SYN_RECV), whose final ACK a firewall
 *     rule holds back;
 *  2. without the program, closing a listener of the group resets its
 *     queue: what the program is for;
 *  3. a canary share of new connections lands on the canary generation;
 *  4. bad input (not a listener, a generation or share out of range, a
 *     service name that is not one, a listener of another uid or another
 *     network namespace) is refused and changes nothing;
 *  5. batonctl steer sets a canary share, commits and aborts through the
 *     pinned maps, shows them (-j), and refuses a share over 100% or a
 *     service that is not steered;
 *  6. kvd with its own listeners (--steer): batonctl upgrade --listeners
 *     own, v1 -> v2 -> v1, while new clients keep connecting: every
 *     connection, old and new, is served; without --listeners own the
 *     upgrade is refused and rolled back, and so is a new instance whose
 *     program cannot be loaded and pinned, or that asks for the active
 *     generation's slot: the service stays as it was, its listener in
 *     its slot; a load that cannot pin all of it takes back only its
 *     own pins;
 *  7. a canary kvd beside the serving one (--steer-group, --canary): a 50%
 *     share reaches it, a commit sends every new client to it, an abort
 *     sends them all back, and stopping it under a connect storm loses
 *     no client;
 *  8. a 5% canary over 100,000 connections, each its own 4-tuple, gets
 *     5% +- 0.5% (seven standard deviations); a commit moves
 *     every new connection at once; an abort moves them all back, and the
 *     canary's listener closes without losing what waited in its queue.
 * Each test has its own network namespace, and its own bpffs to pin in.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "baton_steer.h"
#include "wire/wire.h"
#include "helpers.h"

#define QUEUED	64

FIXTURE(steer) {
	char pins[64];
	int lfd[3];		/* by generation; 0 unused */
	int port;
	struct baton_steer *st;
	char log[512];		/* what the library said last */
};

static void log_last(void *ctx, enum baton_log_level level, const char *msg)
{
	(void)level;
	snprintf(ctx, sizeof(((FIXTURE_DATA(steer) *)0)->log), "%s", msg);
}

FIXTURE_VARIANT(steer) {
	int family;
	int from, to;
};

FIXTURE_VARIANT_ADD(steer, ipv4_1_to_2) { AF_INET, 1, 2 };
FIXTURE_VARIANT_ADD(steer, ipv4_2_to_1) { AF_INET, 2, 1 };
FIXTURE_VARIANT_ADD(steer, ipv6_1_to_2) { AF_INET6, 1, 2 };
FIXTURE_VARIANT_ADD(steer, ipv6_2_to_1) { AF_INET6, 2, 1 };

/* A listener of the group on port (0: any; then *port is set). */
static int group_listener(int family, int *port)
{
	struct sockaddr_storage ss = { .ss_family = family };
	socklen_t len = family == AF_INET6 ? sizeof(struct sockaddr_in6) :
					     sizeof(struct sockaddr_in);
	int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;

	if (family == AF_INET6) {
		((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_loopback;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons(*port);
	} else {
		((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		((struct sockaddr_in *)&ss)->sin_port = htons(*port);
	}
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&ss, len) || listen(fd, 1024) ||
	    getsockname(fd, (struct sockaddr *)&ss, &len))
		return -errno;
	*port = ntohs(family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port :
				       ((struct sockaddr_in *)&ss)->sin_port);
	return fd;
}

/* Accepts everything that reaches fd within timeout_ms; closes it all. */
static int sweep(int fd, int want, int timeout_ms)
{
	int n = 0;

	while (n < want) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int c = accept(fd, NULL, NULL);

		if (c >= 0) {
			close(c);
			n++;
			continue;
		}
		if (poll(&p, 1, timeout_ms) <= 0)
			break;
	}
	return n;
}

/* Clients the server side reset: their first read fails. */
static int count_reset(int *c, int n)
{
	int i, reset = 0;
	char b;

	for (i = 0; i < n; i++) {
		struct pollfd p = { .fd = c[i], .events = POLLIN };

		if (poll(&p, 1, 0) > 0 && recv(c[i], &b, 1, MSG_DONTWAIT) < 0 &&
		    errno == ECONNRESET)
			reset++;
	}
	return reset;
}

FIXTURE_SETUP(steer)
{
	struct baton_steer_opts o = { .service = "steer", .pin_root = self->pins,
				      .log = log_last, .log_ctx = self->log };

	ASSERT_EQ(0, bpffs_private(self->pins, sizeof(self->pins)));
	self->port = 0;
	self->lfd[1] = group_listener(variant->family, &self->port);
	ASSERT_LE(0, self->lfd[1]);
	self->lfd[2] = group_listener(variant->family, &self->port);
	ASSERT_LE(0, self->lfd[2]);
	ASSERT_EQ(0, baton_steer_open(&self->st, &o));
}

FIXTURE_TEARDOWN(steer)
{
	baton_steer_unpin(self->st);
	baton_steer_close(self->st);
	if (self->lfd[1] >= 0)
		close(self->lfd[1]);
	if (self->lfd[2] >= 0)
		close(self->lfd[2]);
	bpffs_remove(self->pins);
}

static void connect_all(struct __test_metadata *_metadata, int family,
			int port, int *c, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		c[i] = client_connect(family, port);
		ASSERT_LE(0, c[i]);
	}
}

TEST_F(steer, queue_migrates_on_close)
{
	int from = variant->from, to = variant->to, c[QUEUED], i;

	ASSERT_EQ(0, baton_steer_attach(self->st, self->lfd[1]));
	ASSERT_EQ(0, baton_steer_set_listener(self->st, 1, self->lfd[1]));
	ASSERT_EQ(0, baton_steer_set_listener(self->st, 2, self->lfd[2]));
	ASSERT_EQ(0, baton_steer_set(self->st, from, 0, 0));

	/* established, waiting in the old generation's queue */
	connect_all(_metadata, variant->family, self->port, c, QUEUED);
	EXPECT_EQ(0, sweep(self->lfd[to], QUEUED, 50));

	/* the switch is one map update; then the old listener goes */
	ASSERT_EQ(0, baton_steer_set(self->st, to, 0, 0));
	close(self->lfd[from]);
	self->lfd[from] = -1;

	EXPECT_EQ(QUEUED, sweep(self->lfd[to], QUEUED, 1000));
	EXPECT_EQ(0, count_reset(c, QUEUED));
	for (i = 0; i < QUEUED; i++)
		close(c[i]);
}

TEST_F(steer, migrated_queue_wakes_epoll)
{
	int from = variant->from, to = variant->to, c[QUEUED], i, ep;
	struct epoll_event ev = { .events = EPOLLIN }, got;

	ASSERT_EQ(0, baton_steer_attach(self->st, self->lfd[1]));
	ASSERT_EQ(0, baton_steer_set_listener(self->st, 1, self->lfd[1]));
	ASSERT_EQ(0, baton_steer_set_listener(self->st, 2, self->lfd[2]));
	ASSERT_EQ(0, baton_steer_set(self->st, from, 0, 0));
	connect_all(_metadata, variant->family, self->port, c, QUEUED);

	/* the new generation's listener waits in epoll, with nothing queued */
	ep = epoll_create1(EPOLL_CLOEXEC);
	ASSERT_LE(0, ep);
	ASSERT_EQ(0, epoll_ctl(ep, EPOLL_CTL_ADD, self->lfd[to], &ev));
	ASSERT_EQ(0, epoll_wait(ep, &got, 1, 50));

	ASSERT_EQ(0, baton_steer_set(self->st, to, 0, 0));
	close(self->lfd[from]);
	self->lfd[from] = -1;

	/* the queue that moved wakes it */
	EXPECT_EQ(1, epoll_wait(ep, &got, 1, 1000));
	EXPECT_EQ(QUEUED, sweep(self->lfd[to], QUEUED, 1000));
	EXPECT_EQ(0, count_reset(c, QUEUED));
	close(ep);
	for (i = 0; i < QUEUED; i++)
		close(c[i]);
}

static int hold_final_acks(int family, int port, bool on)
{
	char cmd[256];

	/* a bare ACK to the port: the handshake's last packet, not data */
	snprintf(cmd, sizeof(cmd),
		 "%s -w -%c INPUT -p tcp --dport %d --tcp-flags SYN,ACK,FIN,RST,PSH ACK -j DROP",
		 family == AF_INET6 ? "ip6tables-legacy" : "iptables-legacy",
		 on ? 'A' : 'D', port);
	return system(cmd);
}

TEST_F(steer, syn_recv_migrates)
{
	int from = variant->from, to = variant->to, c[16], i, got;

	ASSERT_EQ(0, baton_steer_attach(self->st, self->lfd[1]));
	ASSERT_EQ(0, baton_steer_set_listener(self->st, 1, self->lfd[1]));
	ASSERT_EQ(0, baton_steer_set_listener(self->st, 2, self->lfd[2]));
	ASSERT_EQ(0, baton_steer_set(self->st, from, 0, 0));
	ASSERT_EQ(0, hold_final_acks(variant->family, self->port, true));

	/* the clients think they are connected; the server has requests */
	connect_all(_metadata, variant->family, self->port, c, 16);
	EXPECT_EQ(0, sweep(self->lfd[from], 16, 100));

	ASSERT_EQ(0, baton_steer_set(self->st, to, 0, 0));
	close(self->lfd[from]);
	self->lfd[from] = -1;
	ASSERT_EQ(0, hold_final_acks(variant->family, self->port, false));

	/* their first data completes the handshakes, on the new listener */
	for (i = 0; i < 16; i++)
		EXPECT_EQ(1, write(c[i], "x", 1));
	for (i = 0, got = 0; i < 16; i++) {
		struct pollfd p = { .fd = self->lfd[to], .events = POLLIN };
		char b = 0;
		int s;

		if (poll(&p, 1, 2000) <= 0)
			break;
		s = accept(self->lfd[to], NULL, NULL);
		if (s < 0)
			continue;
		p.fd = s;
		if (poll(&p, 1, 2000) > 0 && read(s, &b, 1) == 1 && b == 'x')
			got++;
		close(s);
	}
	EXPECT_EQ(16, got);
	EXPECT_EQ(0, count_reset(c, 16));
	for (i = 0; i < 16; i++)
		close(c[i]);
}

TEST_F(steer, without_program_queue_is_reset)
{
	int c[QUEUED], i, accepted;

	connect_all(_metadata, variant->family, self->port, c, QUEUED);
	close(self->lfd[variant->from]);
	self->lfd[variant->from] = -1;
	usleep(50000);
	/* the kernel spread them by hash; what sat on the closed one is lost */
	accepted = sweep(self->lfd[variant->to], QUEUED, 200);
	EXPECT_GT(QUEUED, accepted);
	EXPECT_EQ(QUEUED - accepted, count_reset(c, QUEUED));
	for (i = 0; i < QUEUED; i++)
		close(c[i]);
}

TEST_F(steer, canary_share)
{
	int c[400], i, on_canary, on_active = 0;

	ASSERT_EQ(0, baton_steer_attach(self->st, self->lfd[1]));
	ASSERT_EQ(0, baton_steer_set_listener(self->st, 1, self->lfd[1]));
	ASSERT_EQ(0, baton_steer_set_listener(self->st, 2, self->lfd[2]));
	ASSERT_EQ(0, baton_steer_set(self->st, variant->from, variant->to, 2500));
	for (i = 0; i < 400; i++) {
		c[i] = client_connect(variant->family, self->port);
		ASSERT_LE(0, c[i]);
		if (i % 100 == 99)	/* keep the active backlog short */
			on_active += sweep(self->lfd[variant->from], 400, 0);
	}
	on_active += sweep(self->lfd[variant->from], 400, 50);
	on_canary = sweep(self->lfd[variant->to], 400, 100);
	TH_LOG("%d of 400 on the canary, %d on the active", on_canary, on_active);
	EXPECT_EQ(400, on_canary + on_active);
	/* 25% of 400 is 100; by flow hash, within a generous margin */
	EXPECT_LT(60, on_canary);
	EXPECT_GT(140, on_canary);
	for (i = 0; i < 400; i++)
		close(c[i]);
}

/* A listener on port made in a network namespace of its own. */
static int foreign_listener(int family, int port)
{
	struct baton_msg *m = msg_alloc();
	int sp[2], fd = -1, status;
	pid_t pid;

	if (!m || socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		int l;

		if (netns_enter())
			_exit(1);
		l = group_listener(family, &port);
		msg_init(m, BATON_MSG_SOCKETS);
		if (l < 0 || msg_add_fd(m, l) || msg_send(sp[1], m))
			_exit(1);
		_exit(0);
	}
	if (!msg_recv(sp[0], m, 5000) && m->nfds == 1) {
		fd = m->fds[0];
		m->nfds = 0;
	}
	waitpid(pid, &status, 0);
	close(sp[0]);
	close(sp[1]);
	msg_free(m);
	return fd;
}

TEST_F(steer, bad_input_changes_nothing)
{
	struct baton_steer_opts bad = { .service = "../x", .pin_root = self->pins };
	struct baton_steer *st2 = NULL;
	__u32 active, canary, share;
	int udp = socket(variant->family, SOCK_DGRAM, 0);
	int plain = socket(variant->family, SOCK_STREAM, 0), other;

	ASSERT_LE(0, udp);
	ASSERT_LE(0, plain);
	ASSERT_EQ(0, baton_steer_set(self->st, 1, 2, 500));
	EXPECT_EQ(-EINVAL, baton_steer_set_listener(self->st, 1, plain));
	EXPECT_EQ(-EINVAL, baton_steer_set_listener(self->st, 1, udp));
	EXPECT_EQ(-ENOTSOCK, baton_steer_set_listener(self->st, 1, 0 + 999));
	EXPECT_EQ(-ERANGE, baton_steer_set_listener(self->st, 99, self->lfd[1]));
	/* one listener in two slots: the cause named, not the group asked */
	ASSERT_EQ(0, baton_steer_attach(self->st, self->lfd[1]));
	ASSERT_EQ(0, baton_steer_set_listener(self->st, 1, self->lfd[1]));
	EXPECT_EQ(-EBUSY, baton_steer_set_listener(self->st, 3, self->lfd[1]));
	EXPECT_NE(NULL, strstr(self->log, "in another generation's slot"))
		TH_LOG("%s", self->log);
	EXPECT_EQ(-EINVAL, baton_steer_attach(self->st, plain));
	EXPECT_EQ(-ERANGE, baton_steer_set(self->st, 1, 2, 10001));
	EXPECT_EQ(-ERANGE, baton_steer_set(self->st, 16, 2, 100));
	EXPECT_EQ(-EINVAL, baton_steer_open(&st2, &bad));

	/* a listener of the group that another user owns */
	other = group_listener(variant->family, &self->port);
	ASSERT_LE(0, other);
	ASSERT_EQ(0, fchown(other, 65534, 65534));
	EXPECT_EQ(-EPERM, baton_steer_set_listener(self->st, 3, other));
	close(other);
	/* one from another network namespace */
	other = foreign_listener(variant->family, self->port);
	ASSERT_LE(0, other);
	EXPECT_EQ(-EXDEV, baton_steer_set_listener(self->st, 3, other));
	close(other);
	EXPECT_EQ(0, baton_steer_has_listener(self->st, 3));

	ASSERT_EQ(0, baton_steer_get(self->st, &active, &canary, &share));
	EXPECT_EQ(1, active);
	EXPECT_EQ(2, canary);
	EXPECT_EQ(500, share);
	close(udp);
	close(plain);
}

/*
 * A load that cannot pin all of it takes back only what it pinned: a
 * pin of the same name that was there stays (another process pinning
 * at the same moment; before, the failed load unlinked all three)
 */
TEST_F(steer, failed_pin_leaves_others)
{
	struct baton_steer_opts o = { .service = "other", .pin_root = self->pins };
	struct baton_steer *st2 = NULL;
	char dir[128], path[192];
	struct stat sb;

	/* in its place, what a bpffs takes besides pins: a symbolic link */
	snprintf(dir, sizeof(dir), "%s/other", self->pins);
	snprintf(path, sizeof(path), "%s/listeners", dir);
	ASSERT_EQ(0, mkdir(dir, 0700));
	ASSERT_EQ(0, symlink("elsewhere", path));
	EXPECT_EQ(-EEXIST, baton_steer_open(&st2, &o));
	EXPECT_EQ(0, lstat(path, &sb)) TH_LOG("the other's pin went");
	snprintf(path, sizeof(path), "%s/prog", dir);
	EXPECT_NE(0, lstat(path, &sb)) TH_LOG("ours stayed");
	snprintf(path, sizeof(path), "%s/listeners", dir);
	unlink(path);
	rmdir(dir);
}

TEST_F(steer, batonctl_steer)
{
	const char *canary[] = { "steer", "steer", "--canary", "5%", NULL };
	const char *commit[] = { "steer", "steer", "--commit", NULL };
	const char *abort_[] = { "steer", "steer", "--abort", NULL };
	const char *show[] = { "-j", "steer", "steer", NULL };
	const char *too_much[] = { "steer", "steer", "--canary", "101%", NULL };
	const char *unknown[] = { "steer", "other", NULL };
	const char *bad_gen[] = { "steer", "steer", "--active", "x", NULL };
	__u32 active, canary_gen, share;
	char out[4096];

	ASSERT_EQ(0, setenv("BATON_PIN_ROOT", self->pins, 1));
	ASSERT_EQ(0, baton_steer_attach(self->st, self->lfd[1]));
	ASSERT_EQ(0, baton_steer_set_listener(self->st, 1, self->lfd[1]));
	ASSERT_EQ(0, baton_steer_set_listener(self->st, 2, self->lfd[2]));
	ASSERT_EQ(0, baton_steer_set(self->st, variant->from, variant->to, 0));

	EXPECT_EQ(0, batonctl(out, sizeof(out), canary));
	ASSERT_EQ(0, baton_steer_get(self->st, &active, &canary_gen, &share));
	EXPECT_EQ(variant->from, active);
	EXPECT_EQ(variant->to, canary_gen);
	EXPECT_EQ(500, share);

	EXPECT_EQ(2, batonctl(out, sizeof(out), too_much));
	ASSERT_EQ(0, baton_steer_get(self->st, &active, &canary_gen, &share));
	EXPECT_EQ(500, share);

	EXPECT_EQ(0, batonctl(out, sizeof(out), abort_));
	ASSERT_EQ(0, baton_steer_get(self->st, &active, &canary_gen, &share));
	EXPECT_EQ(variant->from, active);
	EXPECT_EQ(0, share);

	EXPECT_EQ(0, batonctl(out, sizeof(out), commit));
	ASSERT_EQ(0, baton_steer_get(self->st, &active, &canary_gen, &share));
	EXPECT_EQ(variant->to, active);
	EXPECT_EQ(0, share);

	EXPECT_EQ(0, batonctl(out, sizeof(out), show));
	EXPECT_EQ(variant->to, json_num(out, "active"));
	EXPECT_NE(NULL, strstr(out, "\"listeners\":{\"1\":\"1\",\"2\":\"2\"}"));

	EXPECT_EQ(1, batonctl(out, sizeof(out), unknown));
	EXPECT_EQ(2, batonctl(out, sizeof(out), bad_gen));
	ASSERT_EQ(0, baton_steer_get(self->st, &active, &canary_gen, &share));
	EXPECT_EQ(variant->to, active);
}

FIXTURE(own) {
	char pins[64];
	char rundir[64];
	pid_t kvd;
	int fds[50];
};

FIXTURE_VARIANT(own) {
	int family;
	const char *listen;
};

FIXTURE_VARIANT_ADD(own, ipv4) { AF_INET, "127.0.0.1:7000" };
FIXTURE_VARIANT_ADD(own, ipv6) { AF_INET6, "[::1]:7000" };

FIXTURE_SETUP(own)
{
	const char *extra[] = { "--listen", variant->listen, "--steer", "1", NULL };
	char key[16];
	int i;

	ASSERT_EQ(0, bpffs_private(self->pins, sizeof(self->pins)));
	ASSERT_EQ(0, setenv("BATON_PIN_ROOT", self->pins, 1));
	ASSERT_EQ(0, rundir_make(self->rundir, sizeof(self->rundir)));
	self->kvd = kvd_start(1, -1, self->rundir, extra);
	ASSERT_LT(0, self->kvd);
	usleep(50000);	/* the control socket comes before the listener */
	for (i = 0; i < 50; i++) {
		self->fds[i] = client_connect(variant->family, 7000);
		ASSERT_LE(0, self->fds[i]);
		snprintf(key, sizeof(key), "k%d", i);
		ASSERT_EQ(0, resp_expect(self->fds[i], ":1\r\n", 2, "INCR", key));
	}
}

FIXTURE_TEARDOWN(own)
{
	pid_t pid;
	int i, v;

	if (!kvd_info(self->fds[0], &pid, &v) && pid != self->kvd)
		kill(pid, SIGTERM);
	for (i = 0; i < 50; i++)
		close(self->fds[i]);
	stop_and_reap(self->kvd, SIGKILL);
	netns_reap();
	rundir_remove(self->rundir);
	bpffs_remove(self->pins);
}

/* New clients while the upgrade runs; exits with how many failed. */
static pid_t connect_storm(int family, int n)
{
	pid_t pid = fork();
	int i, failed = 0;

	if (pid)
		return pid;
	for (i = 0; i < n; i++) {
		char key[24];
		int fd = client_connect(family, 7000);

		snprintf(key, sizeof(key), "storm%d.%d", getpid(), i);
		if (fd < 0 || resp_expect(fd, ":1\r\n", 2, "INCR", key))
			failed++;
		if (fd >= 0)
			close(fd);
		usleep(1000);
	}
	_exit(failed > 100 ? 100 : failed);
}

TEST_F_TIMEOUT(own, upgrade_with_own_listeners, 60)
{
	char path[256], log[256], gen[4], out[4096], key[16];
	const char *args[] = { "upgrade", "kvd", "-j", "--listeners", "own",
			       "--timeout-ms", SURE_STEP_MS,
			       "--log", log, "--", path, "--quiet", "--listen",
			       variant->listen, "--steer", gen, NULL };
	const char *take[] = { "upgrade", "kvd", "-j", "--log", log, "--", path,
			       "--quiet", "--listen", variant->listen,
			       "--steer", gen, NULL };
	const char *show[] = { "-j", "steer", "kvd", NULL };
	const char *status[] = { "-j", "status", "kvd", NULL };
	int round, i, exit_status, version;
	pid_t storm, pid;

	snprintf(log, sizeof(log), "%s/kvd.log", self->rundir);
	for (round = 0; round < 2; round++) {
		int to = round ? 1 : 2;
		char name[16];

		snprintf(name, sizeof(name), "kvd-v%d", to);
		bin(name, path, sizeof(path));
		snprintf(gen, sizeof(gen), "%d", to);
		storm = connect_storm(variant->family, 300);
		ASSERT_LT(0, storm);
		usleep(50000);
		EXPECT_EQ(0, batonctl(out, sizeof(out), args));
		/* ours, and the storm's clients connected at that moment */
		EXPECT_LE(50, json_num(out, "conns"));
		EXPECT_EQ(0, json_num(out, "listeners"));
		ASSERT_EQ(storm, waitpid(storm, &exit_status, 0));
		EXPECT_EQ(0, WEXITSTATUS(exit_status));	/* no new client failed */
		if (round == 0) {
			waitpid(self->kvd, NULL, 0);
			self->kvd = 0;
		}
		for (i = 0; i < 50; i++) {
			snprintf(key, sizeof(key), "k%d", i);
			EXPECT_EQ(0, resp_expect(self->fds[i], round ? ":3\r\n" : ":2\r\n",
						 2, "INCR", key));
		}
		ASSERT_EQ(0, kvd_info(self->fds[0], &pid, &version));
		EXPECT_EQ(to, version);
		EXPECT_EQ(0, batonctl(out, sizeof(out), show));
		EXPECT_EQ(to, json_num(out, "active"));
		EXPECT_EQ(0, batonctl(out, sizeof(out), status));
		EXPECT_EQ(to, json_num(out, "active"));
		snprintf(key, sizeof(key), "\"generations\":\"%d\"", to);
		EXPECT_NE(NULL, strstr(out, key));
	}
	/* handing listeners to an instance that brings its own: refused */
	bin("kvd-v2", path, sizeof(path));
	snprintf(gen, sizeof(gen), "2");
	EXPECT_EQ(1, batonctl(out, sizeof(out), take));
	EXPECT_NE(NULL, strstr(out, "\"result\":\"rolled-back\""));
	ASSERT_EQ(0, kvd_info(self->fds[0], &pid, &version));
	EXPECT_EQ(1, version);
}

/* The instances' log, its first len - 1 bytes, in buf */
static const char *log_text(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, len - 1, f) : 0;

	buf[n] = '\0';
	if (f)
		fclose(f);
	return buf;
}

/*
 * A new instance that cannot steer: one whose pin root is no bpffs (it
 * cannot pin), and one the kernel refuses the program (no CAP_BPF, and a
 * bpffs of its own, so that it must load rather than reopen).
 */
TEST_F_TIMEOUT(own, new_that_cannot_steer_rolls_back, 60)
{
	char path[256], log[256], plain[128], bpf2[128], env[160], out[4096];
	char buf[8192];
	const char *show[] = { "-j", "steer", "kvd", NULL };
	int i, round, version;
	pid_t pid;

	snprintf(plain, sizeof(plain), "%s/plain", self->rundir);
	snprintf(bpf2, sizeof(bpf2), "%s/bpf2", self->rundir);
	ASSERT_EQ(0, mkdir(plain, 0700));
	ASSERT_EQ(0, mkdir(bpf2, 0700));
	ASSERT_EQ(0, mount("bpf", bpf2, "bpf", 0, NULL));
	snprintf(log, sizeof(log), "%s/kvd.log", self->rundir);
	bin("kvd-v2", path, sizeof(path));

	for (round = 0; round < 2; round++) {
		const char *args[] = { "upgrade", "kvd", "-j", "--listeners",
				       "own", "--timeout-ms", SURE_STEP_MS,
				       "--log", log, "--",
				       "/usr/bin/setpriv",
				       round ? "--bounding-set=-bpf,-sys_admin,-perfmon" :
					       "--bounding-set=+bpf",
				       "/usr/bin/env", env, path, "--quiet",
				       "--listen", variant->listen, "--steer",
				       "2", NULL };
		char key[16];

		snprintf(env, sizeof(env), "BATON_PIN_ROOT=%s",
			 round ? bpf2 : plain);
		EXPECT_EQ(1, batonctl(out, sizeof(out), args));
		EXPECT_NE(NULL, strstr(out, "\"result\":\"rolled-back\""));
		for (i = 0; i < 50; i++) {
			snprintf(key, sizeof(key), "k%d", i);
			EXPECT_EQ(0, resp_expect(self->fds[i], round ? ":3\r\n" : ":2\r\n",
						 2, "INCR", key));
		}
		ASSERT_EQ(0, kvd_info(self->fds[0], &pid, &version));
		EXPECT_EQ(self->kvd, pid);
		EXPECT_EQ(0, batonctl(out, sizeof(out), show));
		EXPECT_EQ(1, json_num(out, "active"));
		EXPECT_NE(NULL, strstr(out, "\"listeners\":{\"1\":\"1\"}"));
	}
	umount(bpf2);
	/* what the new instances said */
	log_text(log, buf, sizeof(buf));
	EXPECT_NE(NULL, strstr(buf, "cannot pin the steering program"));
	EXPECT_NE(NULL, strstr(buf, "the kernel refused the steering program"));
}

/*
 * A new instance that asks for the active generation's slot, its listener
 * there: it is refused, the upgrade rolls back, and the serving listener
 * stays in its slot (before, the new one took it, and when it went the
 * slot emptied: new connections fell back to the kernel's hash)
 */
TEST_F_TIMEOUT(own, new_in_the_active_slot_refused, 60)
{
	char path[256], log[256], out[4096], buf[8192];
	const char *args[] = { "upgrade", "kvd", "-j", "--listeners", "own",
			       "--timeout-ms", SURE_STEP_MS, "--log", log, "--",
			       path, "--quiet", "--listen", variant->listen,
			       "--steer", "1", NULL };
	const char *show[] = { "-j", "steer", "kvd", NULL };
	int version;
	pid_t pid;

	snprintf(log, sizeof(log), "%s/kvd.log", self->rundir);
	bin("kvd-v2", path, sizeof(path));
	EXPECT_EQ(1, batonctl(out, sizeof(out), args));
	EXPECT_NE(NULL, strstr(out, "\"result\":\"rolled-back\"")) TH_LOG("%s", out);
	ASSERT_EQ(0, kvd_info(self->fds[0], &pid, &version));
	EXPECT_EQ(self->kvd, pid);
	EXPECT_EQ(0, batonctl(out, sizeof(out), show));
	EXPECT_EQ(1, json_num(out, "active"));
	EXPECT_NE(NULL, strstr(out, "\"listeners\":{\"1\":\"1\"}")) TH_LOG("%s", out);
	EXPECT_NE(NULL, strstr(log_text(log, buf, sizeof(buf)),
			       "a new instance takes another"));
}

/* How many of n new clients the instance of version `version` served. */
static int served_by(int family, int n, int version)
{
	int i, hits = 0, v;
	pid_t pid;

	for (i = 0; i < n; i++) {
		int fd = client_connect(family, 7000);

		if (fd < 0)
			return -1;
		if (!kvd_info(fd, &pid, &v) && v == version)
			hits++;
		close(fd);
	}
	return hits;
}

TEST_F_TIMEOUT(own, canary_instance, 60)
{
	const char *share[] = { "steer", "kvd", "--canary", "50%", "--to", "2", NULL };
	const char *commit[] = { "steer", "kvd", "--commit", NULL };
	const char *back[] = { "steer", "kvd", "--active", "1", NULL };
	const char *abort_[] = { "steer", "kvd", "--abort", NULL };
	char path[256], sock[128], out[4096], key[16];
	int hits, i, status;
	pid_t canary, storm;

	bin("kvd-v2", path, sizeof(path));
	canary = fork();
	ASSERT_LE(0, canary);
	if (canary == 0) {
		execl(path, path, "--quiet", "--service", "kvdc", "--steer-group",
		      "kvd", "--steer", "2", "--canary", "--listen",
		      variant->listen, (char *)NULL);
		_exit(127);
	}
	snprintf(sock, sizeof(sock), "%s/kvdc.sock", self->rundir);
	ASSERT_EQ(0, wait_path(sock, 5000));
	usleep(50000);
	/* it joined, and takes nothing until told */
	EXPECT_EQ(0, served_by(variant->family, 20, 2));

	EXPECT_EQ(0, batonctl(out, sizeof(out), share));
	hits = served_by(variant->family, 100, 2);
	TH_LOG("%d of 100 new clients on the canary", hits);
	EXPECT_LT(20, hits);
	EXPECT_GT(80, hits);

	EXPECT_EQ(0, batonctl(out, sizeof(out), commit));
	EXPECT_EQ(20, served_by(variant->family, 20, 2));

	EXPECT_EQ(0, batonctl(out, sizeof(out), back));
	EXPECT_EQ(0, batonctl(out, sizeof(out), share));
	EXPECT_EQ(0, batonctl(out, sizeof(out), abort_));
	EXPECT_EQ(20, served_by(variant->family, 20, 1));

	/* the canary goes while clients keep coming: none is lost */
	storm = connect_storm(variant->family, 300);
	ASSERT_LT(0, storm);
	usleep(50000);
	kill(canary, SIGTERM);
	ASSERT_EQ(canary, waitpid(canary, NULL, 0));
	ASSERT_EQ(storm, waitpid(storm, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
	for (i = 0; i < 50; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		EXPECT_EQ(0, resp_expect(self->fds[i], ":2\r\n", 2, "INCR", key));
	}
}

FIXTURE(canary) {
	char pins[64];
	int lfd[3];
	int port;
	struct baton_steer *st;
};

FIXTURE_SETUP(canary)
{
	struct baton_steer_opts o = { .service = "canary", .pin_root = self->pins };

	ASSERT_EQ(0, bpffs_private(self->pins, sizeof(self->pins)));
	self->port = 0;
	self->lfd[1] = group_listener(AF_INET, &self->port);
	self->lfd[2] = group_listener(AF_INET, &self->port);
	ASSERT_LE(0, self->lfd[1]);
	ASSERT_LE(0, self->lfd[2]);
	ASSERT_EQ(0, baton_steer_open(&self->st, &o));
	ASSERT_EQ(0, baton_steer_attach(self->st, self->lfd[1]));
	ASSERT_EQ(0, baton_steer_set_listener(self->st, 1, self->lfd[1]));
	ASSERT_EQ(0, baton_steer_set_listener(self->st, 2, self->lfd[2]));
}

FIXTURE_TEARDOWN(canary)
{
	baton_steer_unpin(self->st);
	baton_steer_close(self->st);
	close(self->lfd[1]);
	if (self->lfd[2] >= 0)
		close(self->lfd[2]);
	bpffs_remove(self->pins);
}

/* A reset, not TIME_WAIT: 100,000 connections would run out of ports. */
static void close_now(int fd)
{
	struct linger l = { 1, 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
}

/*
 * The share goes by the hash of a connection's 4-tuple, the same for the
 * same tuple in one network namespace. From one address, 100,000
 * connections would reuse its 14,000-odd ports (connect() takes the even
 * ones) seven times each, and the canary's count would swing as if it
 * were 14,000 draws: 2.7 standard deviations within 0.5%, a failure in
 * about a hundred and fifty runs. From SOURCES loopback addresses, each
 * connection is its own tuple.
 */
#define SOURCES	200

static int connect_from(int port, int k)
{
	struct sockaddr_in src = {
		.sin_family = AF_INET,
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK + 1 + k % SOURCES),
	};
	struct sockaddr_storage dst;
	socklen_t dst_len = loopback(AF_INET, port, &dst);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -errno;
	/* the port chosen by connect(), for the tuple, not by bind() */
	if (setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
		       sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&src, sizeof(src)) ||
	    connect(fd, (struct sockaddr *)&dst, dst_len)) {
		close(fd);
		return -errno;
	}
	return fd;
}

/* n connections; counts where each one landed; all accepted, none lost. */
static int spread(FIXTURE_DATA(canary) *self, int n, int *on)
{
	int batch[100], i, k, done = 0;

	on[1] = on[2] = 0;
	while (done < n) {
		int b = n - done < 100 ? n - done : 100, got = 0;

		for (k = 0; k < b; k++) {
			batch[k] = connect_from(self->port, done + k);
			if (batch[k] < 0)
				return -1;
		}
		for (i = 1; i <= 2 && got < b; i++) {
			int c;

			while ((c = accept(self->lfd[i], NULL, NULL)) >= 0) {
				close_now(c);
				on[i]++;
				got++;
			}
		}
		for (k = 0; k < b; k++)
			close_now(batch[k]);
		if (got != b)
			return -1;
		done += b;
	}
	return 0;
}

TEST_F_TIMEOUT(canary, five_percent_commit_abort, 120)
{
	int on[3], c[400], i;

	/* 5% by flow hash */
	ASSERT_EQ(0, baton_steer_set(self->st, 1, 2, 500));
	ASSERT_EQ(0, spread(self, 100000, on));
	TH_LOG("canary: %d of 100000 (%.2f%%)", on[2], on[2] / 1000.0);
	EXPECT_LE(4500, on[2]);
	EXPECT_GE(5500, on[2]);

	/* commit: every new connection at once */
	ASSERT_EQ(0, baton_steer_set(self->st, 2, 2, 0));
	ASSERT_EQ(0, spread(self, 2000, on));
	EXPECT_EQ(2000, on[2]);

	/* a canary again, with connections waiting in both queues */
	ASSERT_EQ(0, baton_steer_set(self->st, 1, 2, 2500));
	for (i = 0; i < 200; i++) {
		c[i] = client_connect(AF_INET, self->port);
		ASSERT_LE(0, c[i]);
	}
	/* abort: all back to generation 1, and the canary's listener goes */
	ASSERT_EQ(0, baton_steer_set(self->st, 1, 2, 0));
	for (i = 200; i < 400; i++) {
		c[i] = client_connect(AF_INET, self->port);
		ASSERT_LE(0, c[i]);
	}
	close(self->lfd[2]);
	self->lfd[2] = -1;
	EXPECT_EQ(400, sweep(self->lfd[1], 400, 1000));
	EXPECT_EQ(0, count_reset(c, 400));
	for (i = 0; i < 400; i++)
		close(c[i]);
}

TEST_HARNESS_MAIN
