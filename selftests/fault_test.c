// SPDX-License-Identifier: GPL-2.0-only
/*
 * Faults injected at random moments of upgrades, under a load that checks
 * every reply (seeded: the seed is printed, BATON_SEED replays it):
 *  1. SIGKILL and SIGSTOP of the old instance, the new instance and
 *     batonctl, BATON_FAULTS upgrades each (200 by default); after every
 *     one, the invariants:
 *     - exactly one instance serves, and status says which; or, only when
 *       the new instance was killed after it took over, status says that
 *       none serves;
 *     - no process of the upgrade is left behind;
 *     - the next upgrade goes through;
 *     - no client ever gets a wrong reply or waits without end; a
 *       connection is lost only with the process that held it;
 *  2. 500 upgrades back to back under the same load: the serving
 *     instance's descriptors, its memory and the run directory do not
 *     grow.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "helpers.h"

#define CLIENTS		16
#define HANG_MS		15000	/* a request unanswered this long hangs */
#define STOP_MAX_MS	1000	/* the longest a stopped process waits */
#define STEP_MS		"500"	/* batonctl --timeout-ms, faulted upgrades */
#define SETTLE_MS	10000	/* for the processes to settle after a fault */

static unsigned long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

/* What the load saw, in memory shared with the test. */
struct load_stats {
	volatile int stop;
	unsigned long long requests;
	unsigned long long lost;	/* connections closed under a client */
	unsigned long long stale;	/* a counter read back behind, after
					 * a reconnect */
	unsigned long long wrong;	/* a reply that was not the right one */
	unsigned long long hung;
	unsigned int max_stall_ms;
	char first_wrong[256];
};

struct client {
	int fd;
	char key[16];
	long long value;	/* the counter, as the server last said */
	bool resync;		/* the reply awaited is a GET's */
	char req[64];
	const char *second;	/* the rest of a request sent in two halves */
	unsigned long long sent_at, next_at;
	char buf[128];
	size_t have;
};

static void client_send(struct client *c, unsigned long long now)
{
	char req[sizeof(c->req)];
	int n;

	if (c->resync)
		n = snprintf(req, sizeof(req), "*2\r\n$3\r\nGET\r\n$%zu\r\n%s\r\n",
			     strlen(c->key), c->key);
	else
		n = snprintf(req, sizeof(req), "*2\r\n$4\r\nINCR\r\n$%zu\r\n%s\r\n",
			     strlen(c->key), c->key);
	memcpy(c->req, req, n + 1);
	c->sent_at = now;
	c->have = 0;
	/* one request in five goes in two halves, a moment apart */
	if (!c->resync && rand() % 5 == 0) {
		c->second = c->req + n / 2;
		if (write(c->fd, c->req, n / 2) < 0)
			c->second = NULL;
		c->next_at = now + 1;
		return;
	}
	c->second = NULL;
	if (write(c->fd, c->req, n) < 0)
		return;	/* the read finds out */
	c->next_at = 0;
}

/* A whole reply at the front of buf: its value, 1; not yet: 0. */
static int reply_value(struct client *c, long long *v, bool *nil)
{
	char *nl = memchr(c->buf, '\n', c->have), *nl2;

	if (!nl)
		return 0;
	*nil = false;
	if (c->buf[0] == ':') {
		*v = atoll(c->buf + 1);
		return 1;
	}
	if (c->buf[0] == '$') {
		if (atoi(c->buf + 1) < 0) {
			*nil = true;
			return 1;
		}
		nl2 = memchr(nl + 1, '\n', c->buf + c->have - nl - 1);
		if (!nl2)
			return 0;
		*v = atoll(nl + 1);
		return 1;
	}
	return -1;
}

static void client_lost(struct load_stats *st, struct client *c, int port)
{
	int one = 1;

	close(c->fd);
	st->lost++;
	c->fd = client_connect(AF_INET, port);
	if (c->fd >= 0) {
		fcntl(c->fd, F_SETFL, O_NONBLOCK);
		setsockopt(c->fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	}
	c->resync = true;	/* the last INCR may or may not have counted */
	c->second = NULL;	/* the rest of it belongs to the old connection */
	c->have = 0;
	c->sent_at = 0;
	c->next_at = now_ms() + 5;
}

static void client_readable(struct load_stats *st, struct client *c,
			    int port)
{
	long long v;
	bool nil;
	ssize_t n;
	int r;

	n = read(c->fd, c->buf + c->have, sizeof(c->buf) - 1 - c->have);
	if (n <= 0) {
		if (n < 0 && errno == EAGAIN)
			return;
		client_lost(st, c, port);
		return;
	}
	c->have += n;
	c->buf[c->have] = '\0';
	r = reply_value(c, &v, &nil);
	if (r == 0)
		return;
	if (r < 0 || (!c->resync && v != c->value + 1)) {
		if (!st->wrong)
			snprintf(st->first_wrong, sizeof(st->first_wrong),
				 "%s: after %lld, got %.60s", c->key, c->value,
				 c->buf);
		st->wrong++;
		v = c->value + 1;
	}
	if (c->resync) {
		v = nil ? 0 : v;
		if (v < c->value)
			st->stale++;	/* only a roll-forward may do this */
		c->resync = false;
	}
	c->value = v;
	st->requests++;
	if (now_ms() - c->sent_at > st->max_stall_ms)
		st->max_stall_ms = now_ms() - c->sent_at;
	c->sent_at = 0;
	c->next_at = now_ms() + 1 + rand() % 4;
}

/* The load: CLIENTS connections, one request at a time each, checked. */
static void load_run(struct load_stats *st, int port)
{
	struct client cl[CLIENTS] = {};
	struct pollfd p[CLIENTS];
	int i, one = 1;

	srand(getpid());
	for (i = 0; i < CLIENTS; i++) {
		snprintf(cl[i].key, sizeof(cl[i].key), "load%d", i);
		cl[i].fd = client_connect(AF_INET, port);
		if (cl[i].fd < 0)
			_exit(2);
		fcntl(cl[i].fd, F_SETFL, O_NONBLOCK);
		setsockopt(cl[i].fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
		cl[i].resync = true;
	}
	while (!st->stop) {
		unsigned long long now = now_ms();

		for (i = 0; i < CLIENTS; i++) {
			struct client *c = &cl[i];

			if (c->sent_at && now - c->sent_at > HANG_MS) {
				st->hung++;
				client_lost(st, c, port);
				st->lost--;	/* counted as hung */
			}
			if (c->second && now >= c->next_at) {
				ssize_t n = write(c->fd, c->second,
						  strlen(c->second));

				(void)n;	/* a failure: the read finds out */
				c->second = NULL;
				c->next_at = 0;
			} else if (!c->sent_at && c->fd >= 0 && now >= c->next_at) {
				client_send(c, now);
			}
			p[i].fd = c->fd;
			p[i].events = POLLIN;
		}
		if (poll(p, CLIENTS, 1) <= 0)
			continue;
		for (i = 0; i < CLIENTS; i++)
			if (p[i].revents)
				client_readable(st, &cl[i], port);
	}
	_exit(0);
}

enum target { OLD, NEW, CTL };

static const char *const target_names[] = { "old instance", "new instance",
					     "batonctl" };

/* A kvd service under the checked load. */
struct bed {
	struct service svc;
	struct load_stats *st;
	pid_t load;
	int version;		/* of the serving instance */
	char log[128];
	unsigned int seed;
};

static int bed_up(struct bed *b)
{
	const char *seed = getenv("BATON_SEED");
	int err = service_up(&b->svc, AF_INET, 1);

	if (err)
		return err;
	b->version = 1;
	snprintf(b->log, sizeof(b->log), "%s/new.log", b->svc.rundir);
	b->seed = seed ? strtoul(seed, NULL, 0) : time(NULL) ^ getpid();
	srand(b->seed);
	b->st = mmap(NULL, sizeof(*b->st), PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (b->st == MAP_FAILED)
		return -errno;
	b->load = fork();
	if (b->load < 0)
		return -errno;
	if (b->load == 0)
		load_run(b->st, b->svc.port);
	return 0;
}

static void bed_down(struct bed *b)
{
	pid_t pid = serving_pid(&b->svc, AF_INET);

	b->st->stop = 1;
	wait_exit(b->load, 5000);
	if (pid > 0 && pid != b->svc.kvd)
		kill(pid, SIGKILL);
	munmap(b->st, sizeof(*b->st));
}

FIXTURE(fault) {
	struct bed b;
};

FIXTURE_VARIANT(fault) {
	enum target target;
	int sig;
};

FIXTURE_VARIANT_ADD(fault, old_killed) { OLD, SIGKILL };
FIXTURE_VARIANT_ADD(fault, old_stopped) { OLD, SIGSTOP };
FIXTURE_VARIANT_ADD(fault, new_killed) { NEW, SIGKILL };
FIXTURE_VARIANT_ADD(fault, new_stopped) { NEW, SIGSTOP };
FIXTURE_VARIANT_ADD(fault, batonctl_killed) { CTL, SIGKILL };
FIXTURE_VARIANT_ADD(fault, batonctl_stopped) { CTL, SIGSTOP };

FIXTURE_SETUP(fault)
{
	ASSERT_EQ(0, bed_up(&self->b));
}

FIXTURE_TEARDOWN(fault)
{
	bed_down(&self->b);
	if (!_metadata->passed) {
		struct service log = self->b.svc;

		/* the new instances' log, where they say what they did */
		snprintf(log.log, sizeof(log.log), "%s", self->b.log);
		service_log_tail(&log, 200);
	}
	service_teardown(&self->b.svc);
}

static const char *comm_of(pid_t pid, char *buf, size_t len)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	f = fopen(path, "re");
	buf[0] = '\0';
	if (f) {
		if (fgets(buf, len, f))
			buf[strcspn(buf, "\n")] = '\0';
		fclose(f);
	}
	return buf;
}

/*
 * An upgrade to the other version; its pid, its JSON on *fd. A faulted one
 * has short steps, so that a stopped process costs little time; the ones
 * that must go through have long ones, so that a loaded machine's slow
 * start is no failure (an ASan kvd once took over 5 s to start beside two
 * other test runs).
 */
static pid_t upgrade_start(struct bed *b, int *fd, bool faulted)
{
	static char path[256];
	/* a faulted upgrade has the short steps; one that must go through */
	const char *faulty[] = { "upgrade", "kvd", "-j", "--log", b->log,
				 "--timeout-ms", STEP_MS, "--", path, NULL };
	const char *sure[] = { "upgrade", "kvd", "-j", "--log", b->log,
			       "--timeout-ms", SURE_STEP_MS,
			       "--blackout-timeout-ms", SURE_BLACKOUT_MS,
			       "--", path, NULL };

	bin(b->version == 1 ? "kvd-v2" : "kvd-v1", path, sizeof(path));
	return batonctl_start(faulted ? faulty : sure, fd);
}

static int upgrade_finish(pid_t ctl, int fd, char *out, size_t len)
{
	ssize_t n = read_to_eof(fd, out, len, 180000);
	int status;

	close(fd);
	status = wait_exit(ctl, n < 0 ? 1 : 10000);
	if (status == -ETIMEDOUT) {
		kill(ctl, SIGKILL);
		wait_exit(ctl, 5000);
		return -ETIMEDOUT;
	}
	return status;
}

static int serving_version(struct bed *b, int *version)
{
	int fd = client_connect(AF_INET, b->svc.port), err;
	pid_t pid;

	if (fd < 0)
		return fd;
	err = kvd_info(fd, &pid, version);
	close(fd);
	return err;
}

struct outcome {
	unsigned int done, rolled_back, failed, refused, killed, none_served,
		     missed;
};

/*
 * Waits for the service to settle: exactly one instance answers, status
 * agrees, and nothing else of the upgrade is left. Returns the serving pid,
 * 0 if none serves (status agreeing), or -errno with why in buf.
 */
static pid_t settle(struct bed *b, char *why, size_t len)
{
	const char *status_args[] = { "status", "kvd", "-j", NULL };
	const char *recover_args[] = { "recover", "kvd", NULL };
	unsigned long long end = now_ms() + SETTLE_MS;
	char out[8192], comm[32];
	pid_t known[2] = { b->load }, left[8];
	pid_t pid = 0;
	int n = 0;

	out[0] = '\0';
	batonctl(out, sizeof(out), recover_args);
	while (now_ms() < end) {
		pid = serving_pid(&b->svc, AF_INET);
		known[1] = pid;
		n = netns_others(known, 2, left, 8);
		/* the processes settled: does status say the same? */
		if (n == 0 && !batonctl(out, sizeof(out), status_args)) {
			if (pid > 0 && json_num(out, "serving") == 1 &&
			    json_num(out, "pid") == pid)
				return pid;
			if (pid <= 0 && json_num(out, "serving") == 0)
				return 0;
		}
		usleep(20000);
	}
	if (n > 0)
		snprintf(why, len, "pid %d (%s) is left behind", left[0],
			 comm_of(left[0], comm, sizeof(comm)));
	else
		snprintf(why, len, "instance answering: %d; status: %.300s", pid,
			 out);
	return -ETIMEDOUT;
}

TEST_F_TIMEOUT(fault, random_moments, 1800)
{
	struct bed *b = &self->b;
	const char *env = getenv("BATON_FAULTS");
	int faults = env ? atoi(env) : 200, i;
	struct outcome oc = {};
	unsigned long long lost_before, upgrade_ms = 20;
	char out[8192], why[512], result[32];
	bool may_lose = variant->sig == SIGKILL && variant->target != CTL;
	pid_t serving;

	TH_LOG("seed %u (BATON_SEED=%u replays it)", b->seed, b->seed);
	serving = settle(b, why, sizeof(why));
	ASSERT_LT(0, serving) TH_LOG("before the first fault: %s", why);
	/*
	 * faults injected, not tries: a try whose victim was gone before it
	 * could be found (the new one, when the upgrade ended first) does not
	 * count, up to as many again
	 */
	for (i = 0; i - (int)oc.missed < faults && i < 2 * faults; i++) {
		unsigned int delay = rand() % (2 * upgrade_ms + 1);
		unsigned int stop_ms = rand() % STOP_MAX_MS;
		pid_t old = serving, ctl, victim = 0;
		pid_t kids[4];
		int fd, status;

		ASSERT_EQ(0, serving_version(b, &b->version));
		lost_before = b->st->lost;
		ctl = upgrade_start(b, &fd, true);
		ASSERT_LT(0, ctl);
		if (variant->target == OLD) {
			victim = old;
		} else if (variant->target == CTL) {
			victim = ctl;
		} else {
			unsigned long long end = now_ms() + 5000;

			while (!victim && now_ms() < end && pid_alive(ctl))
				if (children_of(ctl, kids, 4) > 0)
					victim = kids[0];
		}
		if (victim) {
			usleep(delay * 1000);
			kill(victim, variant->sig);
			if (variant->sig == SIGSTOP) {
				usleep(stop_ms * 1000);
				kill(victim, SIGCONT);
			}
		} else {
			oc.missed++;
		}
		if (victim == old && variant->sig == SIGKILL && old == b->svc.kvd) {
			waitpid(old, NULL, 0);	/* our child: no zombie */
			b->svc.kvd = 0;
		}
		status = upgrade_finish(ctl, fd, out, sizeof(out));
		ASSERT_NE(-ETIMEDOUT, status) TH_LOG("batonctl hangs (fault %d)", i);
		if (WIFSIGNALED(status))
			oc.killed++;
		else if (!json_str(out, "result", result, sizeof(result)))
			oc.failed++;	/* no report at all */
		else if (!strcmp(result, "done"))
			oc.done++;
		else if (!strcmp(result, "rolled-back"))
			oc.rolled_back++;
		else if (!strcmp(result, "refused"))
			oc.refused++;
		else
			oc.failed++;

		old = settle(b, why, sizeof(why));
		ASSERT_LE(0, old) TH_LOG("fault %d (seed %u): %s", i, b->seed, why);
		if (old == 0) {
			/*
			 * The new one was killed once it served, or the old
			 * one before anything began: the report says that
			 * none serves. Start afresh.
			 */
			ASSERT_TRUE(may_lose) TH_LOG("fault %d: none serves: %s", i, out);
			/* true when it was printed, before the kill */
			ASSERT_TRUE(json_num(out, "serving_pid") <= 0 ||
				    json_num(out, "serving_pid") == victim)
				TH_LOG("fault %d: the report says pid %lld serves: %s",
				       i, json_num(out, "serving_pid"), out);
			oc.none_served++;
			stop_and_reap(b->svc.kvd, SIGKILL);
			b->svc.kvd = kvd_start(1, b->svc.lfd,
						  b->svc.rundir, NULL);
			ASSERT_LT(0, b->svc.kvd);
		}
		ASSERT_EQ(0, b->st->wrong) TH_LOG("fault %d: %s", i,
						     b->st->first_wrong);
		ASSERT_EQ(0, b->st->hung);
		if (!may_lose)
			ASSERT_EQ(lost_before, b->st->lost)
				TH_LOG("fault %d lost a connection: %s", i, out);
		ASSERT_TRUE(!b->st->stale || may_lose);

		/* and the next upgrade goes through */
		ASSERT_EQ(0, serving_version(b, &b->version));
		ctl = upgrade_start(b, &fd, false);
		ASSERT_LT(0, ctl);
		status = upgrade_finish(ctl, fd, out, sizeof(out));
		ASSERT_EQ(0, status) TH_LOG("the upgrade after fault %d: %s", i, out);
		if (json_num(out, "total_ms") > 0)
			upgrade_ms = json_num(out, "total_ms");
		/* who serves, as settled: the next fault's old instance */
		serving = settle(b, why, sizeof(why));
		ASSERT_LT(0, serving) TH_LOG("after fault %d: %s", i, why);
	}
	TH_LOG("%s %s: %d upgrades, %d faults, seed %u: done %u, rolled back %u, failed %u, refused %u (no old instance answered batonctl), batonctl killed %u; none serving after it %u; no victim found %u",
	       target_names[variant->target], strsignal(variant->sig), i,
	       i - (int)oc.missed,
	       b->seed, oc.done, oc.rolled_back, oc.failed, oc.refused,
	       oc.killed, oc.none_served, oc.missed);
	TH_LOG("clients: %llu replies checked, %llu connections lost, %llu counters behind after a reconnect, %llu wrong, %llu hung, longest wait %u ms",
	       b->st->requests, b->st->lost, b->st->stale,
	       b->st->wrong, b->st->hung, b->st->max_stall_ms);
	EXPECT_EQ(faults, i - (int)oc.missed)
		TH_LOG("fewer faults than asked: no victim found %u times",
		       oc.missed);
}

static long fd_count_now(pid_t pid)
{
	char path[64];
	struct dirent *d;
	long n = 0;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	dir = opendir(path);
	if (!dir)
		return -errno;
	while ((d = readdir(dir)))
		n += d->d_name[0] != '.';
	closedir(dir);
	return n;
}

/*
 * The serving instance's descriptors: the fewest over half a second, so
 * that a query or a client connection it has not closed yet (a busy host
 * delays it) is not counted; a leak stays in every sample
 */
static long fd_count(pid_t pid)
{
	long n, least = LONG_MAX;
	int i;

	for (i = 0; i < 10; i++) {
		n = fd_count_now(pid);
		if (n < 0)
			return n;
		if (n < least)
			least = n;
		usleep(50000);
	}
	return least;
}

static long rss_kib(pid_t pid)
{
	char path[64], line[128];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmRSS:", 6))
			kib = atol(line + 6);
	fclose(f);
	return kib;
}

struct usage {
	long long files;
	long long bytes;
};

/*
 * The files under dir and their bytes, but the logs, whose path is chosen.
 * Sizes follow the digits of the pids written in them (pid file, journal),
 * so a compare allows each file a few bytes; growth beyond that is a leak.
 */
#define PID_DIGITS_SLACK	8

static int dir_usage(const char *dir, struct usage *u)
{
	char path[512];
	struct dirent *d;
	struct stat st;
	DIR *dp = opendir(dir);

	if (!dp)
		return -errno;
	while ((d = readdir(dp))) {
		size_t len = strlen(d->d_name);

		if (d->d_name[0] == '.' ||
		    (len > 4 && !strcmp(d->d_name + len - 4, ".log")))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, d->d_name);
		if (lstat(path, &st))
			continue;
		if (S_ISDIR(st.st_mode)) {
			dir_usage(path, u);
			continue;
		}
		u->files++;
		u->bytes += st.st_size;
	}
	closedir(dp);
	return 0;
}

FIXTURE(soak) {
	struct bed b;
};

FIXTURE_SETUP(soak)
{
	ASSERT_EQ(0, bed_up(&self->b));
}

FIXTURE_TEARDOWN(soak)
{
	bed_down(&self->b);
	service_teardown(&self->b.svc);
}

/* RSS may double (allocator and sanitizer caches), never more */
#define RSS_BOUND(start)	((start) * 2 + 8192)

TEST_F_TIMEOUT(soak, back_to_back, 1800)
{
	struct bed *b = &self->b;
	const char *env = getenv("BATON_SOAK");
	int upgrades = env ? atoi(env) : 500, i, fd;
	long fds[2] = {}, rss[2] = {};
	struct usage run[2] = {};
	char out[8192], why[512];
	pid_t pid, ctl;

	for (i = 0; i < upgrades; i++) {
		/* the first ten warm up: a measure after them, one at the end */
		if (i == 10 || i == upgrades - 1) {
			int at = i == 10 ? 0 : 1;

			pid = settle(b, why, sizeof(why));
			ASSERT_LT(0, pid) TH_LOG("%s", why);
			fds[at] = fd_count(pid);
			rss[at] = rss_kib(pid);
			ASSERT_EQ(0, dir_usage(b->svc.rundir, &run[at]));
		}
		ASSERT_EQ(0, serving_version(b, &b->version));
		ctl = upgrade_start(b, &fd, false);
		ASSERT_LT(0, ctl);
		ASSERT_EQ(0, upgrade_finish(ctl, fd, out, sizeof(out)))
			TH_LOG("upgrade %d: %s", i, out);
	}
	TH_LOG("%d upgrades: descriptors %ld -> %ld, RSS %ld -> %ld KiB, run directory %lld -> %lld files, %lld -> %lld bytes",
	       upgrades, fds[0], fds[1], rss[0], rss[1], run[0].files,
	       run[1].files, run[0].bytes, run[1].bytes);
	TH_LOG("clients: %llu replies checked, %llu connections lost, %llu wrong, %llu hung, longest wait %u ms",
	       b->st->requests, b->st->lost, b->st->wrong, b->st->hung,
	       b->st->max_stall_ms);
	EXPECT_EQ(fds[0], fds[1]);
	EXPECT_GE(RSS_BOUND(rss[0]), rss[1]);
	EXPECT_EQ(run[0].files, run[1].files);
	EXPECT_GE(run[0].bytes + run[0].files * PID_DIGITS_SLACK, run[1].bytes);
	EXPECT_LE(run[0].bytes - run[0].files * PID_DIGITS_SLACK, run[1].bytes);
	EXPECT_EQ(0, b->st->wrong) TH_LOG("%s", b->st->first_wrong);
	EXPECT_EQ(0, b->st->lost);
	EXPECT_EQ(0, b->st->hung);
	EXPECT_EQ(0, b->st->stale);
}

TEST_HARNESS_MAIN
