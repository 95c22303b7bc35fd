// SPDX-License-Identifier: GPL-2.0-only
/*
 * batonctl upgrade --canary 10% --verify CMD, kvd on its own steered
 * listeners, with 300 clients connected throughout (each its own counter,
 * every reply checked) and new clients connecting meanwhile, each with one
 * INFO and one INCR; CMD connects until it reaches the canary (BATON_PID)
 * and PINGs it:
 *  1. a canary whose PING fails 2 s after it starts (--fail-ping-after):
 *     its verification fails, its share goes back and nothing else
 *     begins. The old instance serves every client, the steering is as
 *     before, no new client failed though some were the canary's, and the
 *     canary goes once they are done; the journal and status say so;
 *  2. a good canary: the verification holds over the window, the upgrade
 *     follows, the new version serves every client and has every new
 *     connection, and the canary goes;
 *  3. refused or aborted before any share moves, the old instance serving
 *     on and the steering unchanged: --canary without --verify or
 *     --listeners own, shares of 0 and 100%, a service that is not
 *     steered, a canary command that cannot be one (no --steer), and one
 *     that asks for the serving generation;
 *  4. batonctl killed in the canary's window, and killed after the canary
 *     passed while it attaches to the old instance: status says so, and
 *     recover takes the share back and stops the canary;
 * each over IPv4 and IPv6, v1->v2 and v2->v1. Each test has its own network
 * namespace and its own bpffs to pin in.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "helpers.h"

#define CLIENTS		300
#define PORT		7000	/* in a namespace of the test's own */

FIXTURE(canary_upgrade) {
	char pins[64];
	char rundir[64];
	int fds[CLIENTS];
	int count[CLIENTS];
	struct incr_load load;
	pid_t kvd;		/* the first instance, our child */
	pid_t serving;		/* for the teardown */
};

FIXTURE_VARIANT(canary_upgrade) {
	int family;
	int from, to;		/* versions, and generations */
	bool bad;		/* the canary fails its verification */
};

FIXTURE_VARIANT_ADD(canary_upgrade, ipv4_v1_v2_bad) { AF_INET, 1, 2, true };
FIXTURE_VARIANT_ADD(canary_upgrade, ipv6_v1_v2_bad) { AF_INET6, 1, 2, true };
FIXTURE_VARIANT_ADD(canary_upgrade, ipv4_v2_v1_bad) { AF_INET, 2, 1, true };
FIXTURE_VARIANT_ADD(canary_upgrade, ipv6_v2_v1_bad) { AF_INET6, 2, 1, true };
FIXTURE_VARIANT_ADD(canary_upgrade, ipv4_v1_v2_good) { AF_INET, 1, 2, false };
FIXTURE_VARIANT_ADD(canary_upgrade, ipv6_v1_v2_good) { AF_INET6, 1, 2, false };
FIXTURE_VARIANT_ADD(canary_upgrade, ipv4_v2_v1_good) { AF_INET, 2, 1, false };
FIXTURE_VARIANT_ADD(canary_upgrade, ipv6_v2_v1_good) { AF_INET6, 2, 1, false };

static const char *listen_arg(int family)
{
	return family == AF_INET6 ? "[::1]:7000" : "127.0.0.1:7000";
}

FIXTURE_SETUP(canary_upgrade)
{
	char gen[4];
	const char *extra[] = { "--listen", listen_arg(variant->family),
				"--steer", gen, NULL };
	int i;

	snprintf(gen, sizeof(gen), "%d", variant->from);
	self->kvd = 0;
	ASSERT_EQ(0, bpffs_private(self->pins, sizeof(self->pins)));
	ASSERT_EQ(0, setenv("BATON_PIN_ROOT", self->pins, 1));
	ASSERT_EQ(0, rundir_make(self->rundir, sizeof(self->rundir)));
	self->kvd = kvd_start(variant->from, -1, self->rundir, extra);
	ASSERT_LT(0, self->kvd);
	self->serving = self->kvd;
	self->load.fds = self->fds;
	self->load.count = self->count;
	self->load.n = CLIENTS;
	usleep(50000);	/* kvd_start() saw the control socket; then it serves */
	for (i = 0; i < CLIENTS; i++) {
		self->fds[i] = client_connect(variant->family, PORT);
		ASSERT_LE(0, self->fds[i]);
		ASSERT_EQ(0, incr_load_one(&self->load, i));
	}
	ASSERT_EQ(0, incr_load_start(&self->load));
}

FIXTURE_TEARDOWN(canary_upgrade)
{
	int i;

	incr_load_stop(&self->load, 0);
	if (self->serving > 0 && self->serving != self->kvd)
		kill(self->serving, SIGTERM);
	for (i = 0; i < CLIENTS; i++)
		close(self->fds[i]);
	stop_and_reap(self->kvd, SIGKILL);
	netns_reap();
	rundir_remove(self->rundir);
	bpffs_remove(self->pins);
}

/* What newcomers() counts, shared with it */
struct newcomers {
	volatile int stop;
	volatile int failed;	/* a connect, INFO or INCR that failed */
	volatile int others;	/* served by another than the old instance */
	volatile int served;
};

/*
 * New clients until told to stop, one every 5 ms: each asks INFO (who
 * serves it) and INCRs a key of its own, which must be new.
 */
static pid_t newcomers(int family, pid_t old, struct newcomers *nc)
{
	pid_t pid = fork();
	int n = 0;

	if (pid)
		return pid;
	while (!nc->stop) {
		char key[32];
		pid_t who;
		int fd = client_connect(family, PORT), v;

		snprintf(key, sizeof(key), "new.%d", n++);
		if (fd < 0 || kvd_info(fd, &who, &v) ||
		    resp_expect(fd, ":1\r\n", 2, "INCR", key)) {
			nc->failed++;
		} else {
			nc->served++;
			nc->others += who != old;
		}
		if (fd >= 0)
			close(fd);
		usleep(5000);
	}
	_exit(0);
}

TEST_F_TIMEOUT(canary_upgrade, upgrade, 120)
{
	char path[256], log[256], check[600], out[16384], gen[4], text[256];
	const char *host = variant->family == AF_INET6 ? "::1" : "127.0.0.1";
	/* a good version's window ends before --fail-ping-after */
	const char *args[] = { "upgrade", "kvd", "-j", "--listeners", "own",
			       "--log", log, "--timeout-ms", SURE_STEP_MS,
			       "--canary", "10%", "--verify", check,
			       "--verify-timeout-ms", "10000",
			       "--verify-for", variant->bad ? "20s" : "3s",
			       "--", path, "--quiet", "--listen",
			       listen_arg(variant->family), "--steer", gen,
			       variant->bad ? "--fail-ping-after" : NULL, "2000",
			       NULL };
	const char *steer_args[] = { "-j", "steer", "kvd", NULL };
	const char *status_args[] = { "status", "kvd", "-j", NULL };
	struct newcomers *nc;
	pid_t storm, canary, pid, want;
	int i, version, rc;
	const char *obj;

	snprintf(log, sizeof(log), "%s/kvd.log", self->rundir);
	snprintf(gen, sizeof(gen), "%d", variant->to);
	snprintf(text, sizeof(text), "kvd-v%d", variant->to);
	bin(text, path, sizeof(path));
	/* until a connection reaches the canary, then PING it there */
	snprintf(check, sizeof(check),
		 "i=0; while [ $i -lt 400 ]; do "
		 "out=$(printf 'INFO\\nPING\\n' | redis-cli -h %s -p %d | tr -d '\\r'); "
		 "case \"$out\" in *\"process_id:$BATON_PID\n\"*) "
		 "echo \"$out\" | tail -n 1 | grep -qx PONG; exit $?;; esac; "
		 "i=$((i+1)); done; echo never reached pid $BATON_PID >&2; exit 3",
		 host, PORT);

	nc = mmap(NULL, sizeof(*nc), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, nc);
	storm = newcomers(variant->family, self->kvd, nc);
	ASSERT_LT(0, storm);
	rc = batonctl(out, sizeof(out), args);
	self->serving = json_num(out, "serving_pid");
	TH_LOG("batonctl exited %d: %s", rc, out);
	nc->stop = 1;
	ASSERT_EQ(storm, waitpid(storm, NULL, 0));

	/* the clients went on through it all, every reply checked */
	ASSERT_EQ(0, incr_load_stop(&self->load, 2));
	EXPECT_EQ(0, self->load.bad);
	TH_LOG("%lu requests, each answered right; new clients: %d served, %d of them by another than the old instance, %d failed",
	       self->load.requests, nc->served, nc->others, nc->failed);
	EXPECT_EQ(0, nc->failed);
	EXPECT_LT(0, nc->served);

	obj = strstr(out, "\"canary\":{");
	ASSERT_NE(NULL, obj);
	canary = json_num(obj, "pid");
	EXPECT_LT(0, canary);
	if (variant->bad) {
		EXPECT_EQ(1, rc);
		EXPECT_NE(NULL, strstr(out, "\"result\":\"aborted\""));
		EXPECT_NE(NULL, strstr(obj, "\"failure\":\"run "));
		/*
		 * the canary's PING failed. Which run saw it first depends on
		 * how long the first took to reach the canary, so the count
		 * of runs is only at least one.
		 */
		EXPECT_NE(NULL, strstr(obj, "s into it: exit status 1\""));
		EXPECT_LE(1, json_num(obj, "runs"));
		EXPECT_EQ(1, json_num(obj, "share_taken_back"));
		EXPECT_EQ(self->kvd, self->serving);
		EXPECT_EQ(NULL, strstr(out, "\"new_pid\""));
		/* the canary served newcomers, and none noticed its end */
		EXPECT_LT(0, nc->others);
		want = self->kvd;
	} else {
		EXPECT_EQ(0, rc);
		EXPECT_NE(NULL, strstr(out, "\"result\":\"done\""));
		EXPECT_NE(NULL, strstr(obj, "\"result\":\"passed\""));
		EXPECT_EQ(0, json_num(obj, "share_taken_back"));
		EXPECT_EQ(json_num(out, "new_pid"), self->serving);
		want = self->serving;
	}
	/* the canary goes once its clients are done */
	EXPECT_EQ(0, pid_wait_gone(canary, SURE_REPLY_MS));

	/* new clients now, all the outcome's */
	for (i = 0; i < 20; i++) {
		int fd = client_connect(variant->family, PORT);

		ASSERT_LE(0, fd);
		EXPECT_EQ(0, kvd_info(fd, &pid, &version));
		EXPECT_EQ(want, pid);
		close(fd);
	}

	/* every client, served by the version of the outcome */
	for (i = 0; i < CLIENTS; i++) {
		ASSERT_EQ(0, kvd_info(self->fds[i], &pid, &version));
		EXPECT_EQ(want, pid);
		EXPECT_EQ(variant->bad ? variant->from : variant->to, version);
	}
	for (i = 0; i < CLIENTS; i++)
		EXPECT_EQ(0, incr_load_one(&self->load, i));

	/* the steering: no share left, the outcome's generation active */
	ASSERT_EQ(0, batonctl(out, sizeof(out), steer_args));
	EXPECT_EQ(variant->bad ? variant->from : variant->to,
		  json_num(out, "active"));
	EXPECT_NE(NULL, strstr(out, "\"canary_share\":\"0.00%\""));

	/* the journal, as status shows it */
	ASSERT_EQ(0, batonctl(out, sizeof(out), status_args));
	EXPECT_EQ(want, json_num(out, "pid"));
	EXPECT_NE(NULL, strstr(out, variant->bad ? "\"result\":\"aborted\"" :
						   "\"result\":\"done\""));
	EXPECT_NE(NULL, strstr(out, variant->bad ? "\"canary_result\":\"aborted\"" :
						   "\"canary_result\":\"passed\""));
	EXPECT_NE(NULL, strstr(out, variant->bad ? "\"verify_result\":\"failed\"" :
						   "\"verify_result\":\"passed\""));
	munmap(nc, sizeof(*nc));
}

/*
 * Nothing is steered elsewhere: new clients all reach the old instance
 * (the 300, busy with the load, are checked at the end)
 */
static void as_before(struct __test_metadata *_metadata,
		      FIXTURE_DATA(canary_upgrade) *self,
		      const FIXTURE_VARIANT(canary_upgrade) *variant)
{
	const char *steer_args[] = { "-j", "steer", "kvd", NULL };
	char out[4096];
	int i, version, fd;
	pid_t pid;

	for (i = 0; i < 50; i++) {
		fd = client_connect(variant->family, PORT);
		ASSERT_LE(0, fd);
		EXPECT_EQ(0, kvd_info(fd, &pid, &version));
		EXPECT_EQ(self->kvd, pid);
		EXPECT_EQ(variant->from, version);
		close(fd);
	}
	ASSERT_EQ(0, batonctl(out, sizeof(out), steer_args));
	EXPECT_EQ(variant->from, json_num(out, "active"));
	EXPECT_NE(NULL, strstr(out, "\"canary_share\":\"0.00%\""));
}

TEST_F_TIMEOUT(canary_upgrade, refused, 120)
{
	char path[256], log[256], out[16384], gen[4], from_gen[4], name[16];
	const char *listen = listen_arg(variant->family);
	const char *const usage[][16] = {
		/* no --verify */
		{ "upgrade", "kvd", "--listeners", "own", "--canary", "10%",
		  "--", path, NULL },
		/* no --listeners own */
		{ "upgrade", "kvd", "--canary", "10%", "--verify", "true",
		  "--", path, NULL },
		{ "upgrade", "kvd", "--listeners", "own", "--canary", "0%",
		  "--verify", "true", "--", path, NULL },
		{ "upgrade", "kvd", "--listeners", "own", "--canary", "100%",
		  "--verify", "true", "--", path, NULL },
		{ "upgrade", "kvd", "--listeners", "own", "--canary", "10%",
		  "--verify", "true", "--mode", "repair", "--", path, NULL },
	};
	const char *const aborted[][24] = {
		/* kvd without --steer cannot be a canary */
		{ "upgrade", "kvd", "-j", "--listeners", "own", "--canary",
		  "10%", "--verify", "true", "--log", log, "--timeout-ms",
		  SURE_STEP_MS, "--", path, "--quiet", "--listen", listen,
		  NULL },
		/* nor one that asks for the serving generation */
		{ "upgrade", "kvd", "-j", "--listeners", "own", "--canary",
		  "10%", "--verify", "true", "--log", log, "--timeout-ms",
		  SURE_STEP_MS, "--", path, "--quiet", "--listen", listen,
		  "--steer", from_gen, NULL },
	};
	const char *plain_extra[] = { "--listen", "127.0.0.1:7001", NULL };
	const char *unsteered[] = { "upgrade", "plain", "-j", "--listeners",
				    "own", "--canary", "10%", "--verify", "true",
				    "--", path, "--service", "plain", "--listen",
				    "127.0.0.1:7001", "--steer", gen, NULL };
	pid_t plain;
	size_t i;

	snprintf(log, sizeof(log), "%s/kvd.log", self->rundir);
	snprintf(gen, sizeof(gen), "%d", variant->to);
	snprintf(from_gen, sizeof(from_gen), "%d", variant->from);
	snprintf(name, sizeof(name), "kvd-v%d", variant->to);
	bin(name, path, sizeof(path));

	for (i = 0; i < sizeof(usage) / sizeof(usage[0]); i++)
		EXPECT_EQ(2, batonctl(out, sizeof(out), usage[i]))
			TH_LOG("usage %zu: %s", i, out);
	for (i = 0; i < sizeof(aborted) / sizeof(aborted[0]); i++) {
		EXPECT_EQ(1, batonctl(out, sizeof(out), aborted[i]));
		TH_LOG("%s", out);
		EXPECT_NE(NULL, strstr(out, "\"result\":\"aborted\""));
		EXPECT_NE(NULL, strstr(out, "ended before it served"));
		EXPECT_EQ(self->kvd, json_num(out, "serving_pid"));
		EXPECT_EQ(NULL, strstr(out, "\"new_pid\""));
		as_before(_metadata, self, variant);
	}

	/* a service whose listeners are not steered */
	plain = kvd_start_as(variant->from, -1, self->rundir, "plain",
			     plain_extra);
	ASSERT_LT(0, plain);
	EXPECT_EQ(1, batonctl(out, sizeof(out), unsteered));
	TH_LOG("%s", out);
	EXPECT_NE(NULL, strstr(out, "has no steered group"));
	EXPECT_NE(NULL, strstr(out, "\"state\":\"never started\""));
	EXPECT_EQ(plain, json_num(out, "serving_pid"));
	EXPECT_EQ(0, stop_and_reap(plain, SIGTERM));

	/* the clients went on through it all */
	ASSERT_EQ(0, incr_load_stop(&self->load, 2));
	EXPECT_EQ(0, self->load.bad);
}

/*
 * batonctl upgrade --canary 10% --verify true --verify-for verify_for,
 * started with its stdout on *fd: its pid, or -errno
 */
static pid_t canary_start(const FIXTURE_DATA(canary_upgrade) *self,
			  const FIXTURE_VARIANT(canary_upgrade) *variant,
			  const char *verify_for, int *fd)
{
	char path[256], log[256], gen[4], name[16];
	const char *args[] = { "upgrade", "kvd", "-j", "--listeners", "own",
			       "--log", log, "--timeout-ms", SURE_STEP_MS,
			       "--canary", "10%", "--verify", "true",
			       "--verify-for", verify_for, "--", path, "--quiet",
			       "--listen", listen_arg(variant->family),
			       "--steer", gen, NULL };

	snprintf(log, sizeof(log), "%s/kvd.log", self->rundir);
	snprintf(gen, sizeof(gen), "%d", variant->to);
	snprintf(name, sizeof(name), "kvd-v%d", variant->to);
	bin(name, path, sizeof(path));
	return batonctl_start(args, fd);
}

/*
 * ctl, killed, left the canary's pid (a string) in the journal; recover
 * settles the upgrade as aborted, the canary goes and the old instance
 * serves as before
 */
static void recovered_aborted(struct __test_metadata *_metadata,
			      FIXTURE_DATA(canary_upgrade) *self,
			      const FIXTURE_VARIANT(canary_upgrade) *variant,
			      const char *status)
{
	const char *status_args[] = { "-j", "status", "kvd", NULL };
	const char *recover_args[] = { "recover", "kvd", NULL };
	char out[16384], pid[16];
	pid_t canary = 0;

	if (json_str(status, "canary_pid", pid, sizeof(pid)))
		canary = atoi(pid);
	EXPECT_LT(0, canary);
	EXPECT_TRUE(pid_alive(canary));
	EXPECT_EQ(0, batonctl(out, sizeof(out), recover_args));
	TH_LOG("%s", out);
	ASSERT_EQ(0, batonctl(out, sizeof(out), status_args));
	EXPECT_NE(NULL, strstr(out, "\"result\":\"aborted\""));
	EXPECT_NE(NULL, strstr(out, "\"canary_result\":\"aborted\""));
	EXPECT_EQ(NULL, strstr(out, "\"interrupted\""));
	if (canary > 0)
		EXPECT_EQ(0, pid_wait_gone(canary, SURE_REPLY_MS));
	as_before(_metadata, self, variant);

	ASSERT_EQ(0, incr_load_stop(&self->load, 2));
	EXPECT_EQ(0, self->load.bad);
}

/*
 * batonctl killed in the canary's window: status says so, and recover
 * takes the share back and stops the canary; the old instance serves on.
 */
TEST_F_TIMEOUT(canary_upgrade, coordinator_killed_in_window, 120)
{
	const char *steer_args[] = { "-j", "steer", "kvd", NULL };
	const char *status_args[] = { "-j", "status", "kvd", NULL };
	char out[16384];
	pid_t ctl;
	int fd;

	ctl = canary_start(self, variant, "60s", &fd);
	ASSERT_LT(0, ctl);
	/* until the share is the canary's */
	ASSERT_EQ(0, batonctl_until(out, sizeof(out), steer_args,
				    "\"canary_share\":\"10.00%\""));
	ASSERT_EQ(0, batonctl_kill(ctl, fd));

	ASSERT_EQ(0, batonctl(out, sizeof(out), status_args));
	TH_LOG("%s", out);
	EXPECT_NE(NULL, strstr(out, "died in the canary's window"));
	recovered_aborted(_metadata, self, variant, out);
}

/*
 * batonctl killed after the canary passed, while it attaches to the old
 * instance (held stopped meanwhile): the journal has no phase yet, and
 * before, recover found nothing to do and the canary kept its share.
 * Now status says so, and recover takes the share back and stops the
 * canary; the old instance serves on.
 */
TEST_F_TIMEOUT(canary_upgrade, coordinator_killed_after_canary, 120)
{
	const char *status_args[] = { "-j", "status", "kvd", NULL };
	char out[16384];
	pid_t ctl;
	int fd;

	/* the old one stopped as soon as the canary runs: no attach then */
	ctl = canary_start(self, variant, "1s", &fd);
	ASSERT_LT(0, ctl);
	ASSERT_EQ(0, batonctl_until(out, sizeof(out), status_args,
				    "\"canary_result\":\"verifying\""));
	ASSERT_EQ(0, kill(self->kvd, SIGSTOP));
	EXPECT_EQ(0, batonctl_until(out, sizeof(out), status_args,
				    "\"canary_result\":\"passed\""));
	usleep(200000);		/* well into the attach */
	ASSERT_EQ(0, batonctl_kill(ctl, fd));
	ASSERT_EQ(0, kill(self->kvd, SIGCONT));

	ASSERT_EQ(0, batonctl(out, sizeof(out), status_args));
	TH_LOG("%s", out);
	EXPECT_NE(NULL, strstr(out, "\"interrupted\""));
	recovered_aborted(_metadata, self, variant, out);
}

TEST_HARNESS_MAIN
