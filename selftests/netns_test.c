// SPDX-License-Identifier: GPL-2.0-only
/*
 * Repair mode into another network namespace (batonctl upgrade --netns),
 * in the VM with baton.ko. Three namespaces on one link, a bridge in C:
 * A, where kvd serves at the service address X (on A's veth); B, where the
 * next version starts, its veth up with an address of its own; C, the
 * clients'. Real kvd processes, real clients, IPv4 and IPv6, both ways
 * between versions:
 *  1. the upgrade moves the connections and X to B: every client's
 *     INCRs, sent throughout, are answered in order, none lost or
 *     repeated; the new instance runs in B and answers INFO; X is gone
 *     from A and is B's; a client connecting afterwards reaches B; the
 *     clients' namespace saw no reset, no abort and no retransmission
 *     timeout (their route to X has rto_min 5 s: a lost segment counts,
 *     a slow VM does not); the report gives the move's steps;
 *  2. refused before anything begins, each with its cause, the old one
 *     serving on and X still in A: a path that is no namespace, an
 *     address A lacks, a device B lacks, --netns without repair mode;
 *  3. a new instance that fails before activation (it refuses the old
 *     one's state) rolls back: X stays in A, the old instance serves
 *     every client on, and B has no process left.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "helpers.h"

#define CLIENTS		16

FIXTURE(netns) {
	int a, b, c;		/* the namespaces; the test runs in A */
	char path_b[64];	/* B, as batonctl opens it */
	char rundir[64], log[128];
	struct sockaddr_storage x;	/* the service address, port 0 first */
	socklen_t xlen;
	int lfd;
	pid_t kvd;
	int fds[CLIENTS], count[CLIENTS];
	struct incr_load load;
};

FIXTURE_VARIANT(netns) {
	int family;
	int from, to;
};

FIXTURE_VARIANT_ADD(netns, ipv4_v1_v2) { .family = AF_INET, .from = 1, .to = 2 };
FIXTURE_VARIANT_ADD(netns, ipv4_v2_v1) { .family = AF_INET, .from = 2, .to = 1 };
FIXTURE_VARIANT_ADD(netns, ipv6_v1_v2) { .family = AF_INET6, .from = 1, .to = 2 };
FIXTURE_VARIANT_ADD(netns, ipv6_v2_v1) { .family = AF_INET6, .from = 2, .to = 1 };

static const char *x_addr(int family)
{
	return family == AF_INET6 ? "fd09::10" : "10.9.0.10";
}

static const char *x_prefix(int family)
{
	return family == AF_INET6 ? "fd09::10/64" : "10.9.0.10/24";
}

/* A, B and C on one link: a bridge in C, a veth from each of A and B */
static int link_make(int a, int b, int c, int family, const char *path_b,
		     const char *path_c)
{
	const bool v6 = family == AF_INET6;
	const char *dad = v6 ? "nodad" : NULL;
	const char *const in_a[][12] = {
		{ "ip", "link", "add", "aA", "type", "veth", "peer", "name",
		  "cA", "netns", path_c, NULL },
		{ "ip", "addr", "add", x_prefix(family), "dev", "aA", dad, NULL },
		{ "ip", "link", "set", "aA", "up", NULL },
	};
	const char *const in_c[][12] = {
		{ "ip", "link", "add", "br0", "type", "bridge", NULL },
		{ "ip", "link", "add", "cB", "type", "veth", "peer", "name",
		  "bB", "netns", path_b, NULL },
		{ "ip", "link", "set", "cA", "master", "br0", NULL },
		{ "ip", "link", "set", "cB", "master", "br0", NULL },
		{ "ip", "addr", "add", v6 ? "fd09::1/64" : "10.9.0.1/24",
		  "dev", "br0", dad, NULL },
		{ "ip", "link", "set", "lo", "up", NULL },
		{ "ip", "link", "set", "br0", "up", NULL },
		{ "ip", "link", "set", "cA", "up", NULL },
		{ "ip", "link", "set", "cB", "up", NULL },
		/*
		 * patient clients: a segment lost in the move would be sent
		 * again only after 5 s, and counted; a freeze slowed by a
		 * busy VM is no timeout
		 */
		{ "ip", "route", "add", v6 ? "fd09::10/128" : "10.9.0.10/32",
		  "dev", "br0", "rto_min", "5s", NULL },
	};
	const char *const in_b[][12] = {
		{ "ip", "addr", "add", v6 ? "fd09::20/64" : "10.9.0.20/24",
		  "dev", "bB", dad, NULL },
		{ "ip", "link", "set", "lo", "up", NULL },
		{ "ip", "link", "set", "bB", "up", NULL },
	};
	size_t i;
	int err = 0;

	for (i = 0; !err && i < sizeof(in_a) / sizeof(in_a[0]); i++)
		err = run_argv_in(a, in_a[i]);
	for (i = 0; !err && i < sizeof(in_c) / sizeof(in_c[0]); i++)
		err = run_argv_in(c, in_c[i]);
	for (i = 0; !err && i < sizeof(in_b) / sizeof(in_b[0]); i++)
		err = run_argv_in(b, in_b[i]);
	return err;
}

/* A client in C of X's port: its fd */
static int client_in_c(FIXTURE_DATA(netns) *self)
{
	int fd, one = 1, err = 0;

	if (setns(self->c, CLONE_NEWNET))
		return -errno;
	fd = socket(self->x.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&self->x, self->xlen))
		err = -errno;
	if (setns(self->a, CLONE_NEWNET))
		err = -errno;
	if (err) {
		if (fd >= 0)
			close(fd);
		return err;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/*
 * Whether X is an address of namespace ns: 1 if a bind to it works there,
 * 0 if it is refused for want of the address, else -errno
 */
static int x_is_in(FIXTURE_DATA(netns) *self, int ns)
{
	struct sockaddr_storage ss = self->x;
	int fd, here;

	if (setns(ns, CLONE_NEWNET))
		return -errno;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ss.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&ss)->sin6_port = 0;
	else
		((struct sockaddr_in *)&ss)->sin_port = 0;
	if (fd < 0)
		here = -errno;
	else if (!bind(fd, (struct sockaddr *)&ss, self->xlen))
		here = 1;
	else
		here = errno == EADDRNOTAVAIL ? 0 : -errno;
	if (fd >= 0)
		close(fd);
	if (setns(self->a, CLONE_NEWNET))
		return -errno;
	return here;
}

/* Whether pid runs in the namespace ns */
static bool runs_in(pid_t pid, int ns)
{
	struct stat st, want;
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
	return !stat(path, &st) && !fstat(ns, &want) &&
	       st.st_ino == want.st_ino && st.st_dev == want.st_dev;
}

/* The clients' counters, in C */
static void counters_in_c(FIXTURE_DATA(netns) *self, struct counters *c)
{
	setns(self->c, CLONE_NEWNET);
	counters_read(c);
	setns(self->a, CLONE_NEWNET);
}

/* C's connections reset by their peer (Tcp EstabResets) */
static long long estab_resets_in_c(FIXTURE_DATA(netns) *self)
{
	long long n;

	if (setns(self->c, CLONE_NEWNET))
		return -errno;
	n = counter("/proc/net/snmp", "Tcp", "EstabResets");
	if (setns(self->a, CLONE_NEWNET))
		return -errno;
	return n;
}

static int unmoved_in_c(FIXTURE_DATA(netns) *self, const struct counters *b)
{
	int err;

	setns(self->c, CLONE_NEWNET);
	err = counters_unmoved(b);
	setns(self->a, CLONE_NEWNET);
	return err;
}

FIXTURE_SETUP(netns)
{
	char path_c[64];
	void *ip;
	int i;

	signal(SIGPIPE, SIG_IGN);
	self->a = self->b = self->c = self->lfd = -1;
	for (i = 0; i < CLIENTS; i++)
		self->fds[i] = -1;
	ASSERT_EQ(0, netns_enter());
	self->a = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, self->a);
	ASSERT_EQ(0, unshare(CLONE_NEWNET));
	self->b = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	ASSERT_EQ(0, unshare(CLONE_NEWNET));
	self->c = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	ASSERT_EQ(0, setns(self->a, CLONE_NEWNET));
	ASSERT_LE(0, self->b);
	ASSERT_LE(0, self->c);
	snprintf(self->path_b, sizeof(self->path_b), "/proc/%d/fd/%d",
		 getpid(), self->b);
	snprintf(path_c, sizeof(path_c), "/proc/%d/fd/%d", getpid(), self->c);
	ASSERT_EQ(0, link_make(self->a, self->b, self->c, variant->family,
			       self->path_b, path_c));

	/* kvd in A at X, on a free port */
	self->x.ss_family = variant->family;
	ip = variant->family == AF_INET6 ?
	     (void *)&((struct sockaddr_in6 *)&self->x)->sin6_addr :
	     (void *)&((struct sockaddr_in *)&self->x)->sin_addr;
	ASSERT_EQ(1, inet_pton(variant->family, x_addr(variant->family), ip));
	self->xlen = variant->family == AF_INET6 ? sizeof(struct sockaddr_in6) :
						   sizeof(struct sockaddr_in);
	self->lfd = socket(variant->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_LE(0, self->lfd);
	ASSERT_EQ(0, bind(self->lfd, (struct sockaddr *)&self->x, self->xlen));
	ASSERT_EQ(0, listen(self->lfd, 128));
	ASSERT_EQ(0, getsockname(self->lfd, (struct sockaddr *)&self->x,
				 &self->xlen));
	/* last: a setup that fails has no teardown */
	ASSERT_EQ(0, rundir_make(self->rundir, sizeof(self->rundir)));
	snprintf(self->log, sizeof(self->log), "%s/kvd.log", self->rundir);
	self->kvd = kvd_start(variant->from, self->lfd, self->rundir, NULL);
	ASSERT_LT(0, self->kvd);

	self->load.fds = self->fds;
	self->load.count = self->count;
	self->load.n = CLIENTS;
}

/* The clients, in C, each with one INCR answered: 0, or -errno */
static int clients_up(FIXTURE_DATA(netns) *self)
{
	int i, err;

	for (i = 0; i < CLIENTS; i++) {
		self->fds[i] = client_in_c(self);
		if (self->fds[i] < 0)
			return self->fds[i];
		err = incr_load_one(&self->load, i);
		if (err)
			return err;
	}
	return 0;
}

FIXTURE_TEARDOWN(netns)
{
	int i;

	incr_load_stop(&self->load, 0);
	for (i = 0; i < CLIENTS; i++)
		if (self->fds[i] >= 0)
			close(self->fds[i]);
	if (!_metadata->passed) {
		char cmd[256];

		snprintf(cmd, sizeof(cmd), "tail -n 30 %s | sed 's/^/# /' >&2",
			 self->log);
		if (system(cmd))
			fprintf(stderr, "# no log\n");
	}
	if (self->kvd > 0)
		stop_and_reap(self->kvd, SIGKILL);
	/* the new instances, in B, and whatever A has left */
	if (self->b >= 0 && !setns(self->b, CLONE_NEWNET)) {
		netns_reap();
		setns(self->a, CLONE_NEWNET);
	}
	netns_reap();
	if (self->lfd >= 0)
		close(self->lfd);
	rundir_remove(self->rundir);
	if (self->c >= 0)
		close(self->c);
	if (self->b >= 0)
		close(self->b);
	if (self->a >= 0)
		close(self->a);
}

/* batonctl upgrade --mode repair --netns B ... -- kvd-v<version> */
static int upgrade(FIXTURE_DATA(netns) *self, int version, const char *netns,
		   const char *addr, const char *dev, const char *extra,
		   char *out, size_t len)
{
	char path[512], name[16];
	const char *args[24] = { "upgrade", "kvd", "-j", "--mode", "repair",
				 "--log", self->log,
				 "--blackout-timeout-ms", SURE_BLACKOUT_MS,
				 "--timeout-ms", SURE_STEP_MS };
	int n = 11;

	if (netns) {
		args[n++] = "--netns";
		args[n++] = netns;
		args[n++] = "--netns-addr";
		args[n++] = addr;
		args[n++] = "--netns-dev";
		args[n++] = dev;
	}
	snprintf(name, sizeof(name), "kvd-v%d", version);
	bin(name, path, sizeof(path));
	args[n++] = "--";
	args[n++] = path;
	args[n++] = "--quiet";
	if (extra)
		args[n++] = extra;
	args[n] = NULL;
	return batonctl(out, len, args);
}

TEST_F_TIMEOUT(netns, upgrade_moves_address_and_connections, 240)
{
	struct counters before;
	struct sender snd = {};
	char out[8192];
	pid_t pid = 0;
	pthread_t st;
	int version = 0, fd, rc;
	long long resets_in;

	ASSERT_EQ(0, clients_up(self));
	snd.fd = client_in_c(self);
	ASSERT_LE(0, snd.fd);
	counters_in_c(self, &before);
	resets_in = estab_resets_in_c(self);
	ASSERT_LE(0, resets_in);
	ASSERT_EQ(0, incr_load_start(&self->load));
	ASSERT_EQ(0, pthread_create(&st, NULL, send_steadily, &snd));
	usleep(200000);

	rc = upgrade(self, variant->to, self->path_b,
		     x_prefix(variant->family), "bB", NULL, out, sizeof(out));
	EXPECT_EQ(0, rc) TH_LOG("batonctl: %s", out);
	EXPECT_NE(NULL, strstr(out, "\"result\":\"done\""));
	EXPECT_NE(NULL, strstr(out, "\"moved\":1"));
	EXPECT_EQ(CLIENTS + 1, json_num(out, "checkpoints"));
	{
		const char *nsj = strstr(out, "\"netns\":{");
		const char *end = nsj ? strchr(nsj, '}') : NULL;

		EXPECT_NE(NULL, end);
		if (end)
			TH_LOG("the move: %.*s}", (int)(end - nsj), nsj);
	}

	/* every client goes on, each reply the one expected */
	usleep(300000);
	EXPECT_EQ(0, incr_load_stop(&self->load, 3));
	EXPECT_EQ(0, self->load.bad);
	snd.stop = 1;
	pthread_join(st, NULL);
	EXPECT_EQ(0, snd.err);
	EXPECT_EQ(snd.sent, snd.answered);
	TH_LOG("%lu INCRs over %d clients, steady sender %u, all answered right",
	       self->load.requests, CLIENTS, snd.answered);

	/* the new version serves from B, at X, which A no longer has */
	ASSERT_EQ(0, kvd_info(self->fds[0], &pid, &version));
	EXPECT_EQ(variant->to, version);
	EXPECT_EQ(json_num(out, "new_pid"), pid);
	EXPECT_TRUE(runs_in(pid, self->b));
	EXPECT_EQ(0, x_is_in(self, self->a));
	EXPECT_EQ(1, x_is_in(self, self->b));
	fd = client_in_c(self);
	EXPECT_LE(0, fd);
	if (fd >= 0) {
		EXPECT_EQ(0, kvd_info(fd, &pid, &version));
		EXPECT_EQ(variant->to, version);
		close(fd);
	}
	EXPECT_EQ(0, unmoved_in_c(self, &before));
	{
		struct counters after;

		counters_in_c(self, &after);
		EXPECT_EQ(before.timeouts, after.timeouts);
		/* and none came to them: nothing repairs a socket in C */
		EXPECT_EQ(resets_in, estab_resets_in_c(self));
	}
	close(snd.fd);
}

/* Refused before anything begins: nothing moved, the old one serves on */
TEST_F(netns, refused_with_cause)
{
	static const struct {
		const char *netns, *addr, *dev, *mode, *cause;
	} bad[] = {
		{ "/proc/self/status", NULL, "bB", "repair",
		  "is not a network namespace" },
		{ NULL, "10.99.0.1/24", "bB", "repair",
		  "is not an address of this network namespace" },
		{ NULL, NULL, "nosuch0", "repair", "no device 'nosuch0'" },
		{ NULL, "", "bB", "repair", "has prefix length" },
		{ NULL, NULL, "bB", "fd", "it needs --mode repair" },
	};
	char out[4096], path[512];
	pid_t pid;
	int version;

	ASSERT_EQ(0, clients_up(self));
	bin("kvd-v1", path, sizeof(path));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *addr = bad[i].addr ?: x_prefix(variant->family);
		char wrong[64];

		/* "": X with another prefix length than it has in A */
		if (addr[0] == '\0') {
			snprintf(wrong, sizeof(wrong), "%s/%d",
				 x_addr(variant->family),
				 variant->family == AF_INET6 ? 48 : 16);
			addr = wrong;
		}
		const char *args[] = { "upgrade", "kvd", "-j", "--mode",
				       bad[i].mode, "--netns",
				       bad[i].netns ?: self->path_b,
				       "--netns-addr", addr, "--netns-dev",
				       bad[i].dev, "--", path, NULL };
		char cmd[1024];
		int rc;

		if (strcmp(bad[i].mode, "repair")) {
			/* the usage error goes to stderr: read it there */
			snprintf(cmd, sizeof(cmd), "%s/batonctl upgrade kvd --mode fd --netns %s --netns-addr %s --netns-dev bB -- %s 2>&1",
				 getenv("BATON_BIN") ?: ".", self->path_b, addr,
				 path);
			FILE *f = popen(cmd, "r");
			size_t n = f ? fread(out, 1, sizeof(out) - 1, f) : 0;

			out[n] = '\0';
			rc = f ? pclose(f) : -1;
			EXPECT_EQ(2, WEXITSTATUS(rc)) TH_LOG("%s", out);
		} else {
			rc = batonctl(out, sizeof(out), args);
			EXPECT_NE(0, rc);
			EXPECT_NE(NULL, strstr(out, "\"result\":\"refused\""))
				TH_LOG("%s", out);
		}
		EXPECT_NE(NULL, strstr(out, bad[i].cause)) TH_LOG("%s", out);
		EXPECT_EQ(0, kvd_info(self->fds[0], &pid, &version));
		EXPECT_EQ(self->kvd, pid);
		EXPECT_EQ(1, x_is_in(self, self->a));
		EXPECT_EQ(0, x_is_in(self, self->b));
	}
}

/* The new one fails before activation: back to the old, X in A */
TEST_F_TIMEOUT(netns, rollback_keeps_address, 180)
{
	char out[8192];
	pid_t pid = 0;
	int version = 0, rc, others;
	pid_t left[8];

	ASSERT_EQ(0, clients_up(self));
	ASSERT_EQ(0, incr_load_start(&self->load));
	usleep(100000);
	rc = upgrade(self, variant->to, self->path_b,
		     x_prefix(variant->family), "bB", "--state-min=99", out,
		     sizeof(out));
	EXPECT_NE(0, rc);
	EXPECT_NE(NULL, strstr(out, "\"result\":\"rolled-back\""))
		TH_LOG("%s", out);
	EXPECT_EQ(0, incr_load_stop(&self->load, 3));
	EXPECT_EQ(0, self->load.bad);
	EXPECT_EQ(0, kvd_info(self->fds[0], &pid, &version));
	EXPECT_EQ(self->kvd, pid);
	EXPECT_EQ(1, x_is_in(self, self->a));
	EXPECT_EQ(0, x_is_in(self, self->b));
	ASSERT_EQ(0, setns(self->b, CLONE_NEWNET));
	others = netns_others(NULL, 0, left, 8);
	ASSERT_EQ(0, setns(self->a, CLONE_NEWNET));
	EXPECT_EQ(0, others);
}

TEST_HARNESS_MAIN
