// SPDX-License-Identifier: GPL-2.0-only
/*
 * Failures in the middle of an upgrade, with clients connected throughout:
 *  1. the new instance killed (SIGKILL) once it runs and once it is ready,
 *     and stopped (SIGSTOP) once it is ready, so that it misses the
 *     blackout's deadline: the upgrade rolls back and the old instance
 *     serves every connection, half-sent requests included;
 *  2. the old instance killed after phase 1: the new one takes over the
 *     listeners from the coordinator's copies and closes every connection,
 *     the half-sent one too, never continuing one out of step; killed once
 *     phase 2 has crossed: the new one goes on with every connection;
 *  3. a new instance that never says ready, one that exits at once, and a
 *     command that does not exist: clear errors, and a rollback;
 *  4. a coordinator killed mid-upgrade: the instances settle it, and
 *     'batonctl recover' writes down how it ended; killed while it held
 *     the new instance stopped, recover lets it go on first; with both
 *     instances killed too, it says failed, with status 1;
 *  5. arguments refused before anything is made: timeouts with a unit,
 *     a negative byte count, a service that is not a name;
 *  6. restore --fresh-on-failure under --run-dir: the fresh instance
 *     serves where batonctl looks for it;
 *  7. a new version whose last words are not UTF-8: the -j report that
 *     quotes them stays JSON;
 *  8. a new instance the kernel holds (a frozen cgroup of the v1 freezer,
 *     where SIGKILL does not end it until it is thawed), never ready: the
 *     upgrade rolls back within its bounds and says so, and the old
 *     instance serves; thawed, the new one is gone.
 */
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "baton.h"
#include "helpers.h"

#define CLIENTS 300

enum victim { NEW, OLD };

FIXTURE(rollback) {
	struct service svc;
	int fds[CLIENTS];
	int half;
};

FIXTURE_VARIANT(rollback) {
	enum victim victim;
	enum baton_phase at;
	int sig;
	bool after_phase2;	/* the old dies once phase 2 has crossed */
};

FIXTURE_VARIANT_ADD(rollback, new_killed_running) { NEW, BATON_PHASE_SPAWNED, SIGKILL };
FIXTURE_VARIANT_ADD(rollback, new_killed_ready) { NEW, BATON_PHASE_READY, SIGKILL };
FIXTURE_VARIANT_ADD(rollback, new_stopped_ready) { NEW, BATON_PHASE_READY, SIGSTOP };
FIXTURE_VARIANT_ADD(rollback, old_killed_phase1) { OLD, BATON_PHASE_READY, SIGKILL };
FIXTURE_VARIANT_ADD(rollback, old_killed_phase2) { OLD, BATON_PHASE_READY, SIGKILL, true };

static const char partial[] = "*3\r\n$3\r\nSET\r\n$4\r\nhalf\r\n$5\r\nwo";

FIXTURE_SETUP(rollback)
{
	char key[16];
	int i;

	ASSERT_EQ(0, service_up(&self->svc, AF_INET, 1));
	for (i = 0; i < CLIENTS; i++) {
		self->fds[i] = client_connect(AF_INET, self->svc.port);
		ASSERT_LE(0, self->fds[i]);
		snprintf(key, sizeof(key), "c%d", i);
		ASSERT_EQ(0, resp_expect(self->fds[i], ":1\r\n", 2, "INCR", key));
	}
	self->half = client_connect(AF_INET, self->svc.port);
	ASSERT_LE(0, self->half);
	ASSERT_EQ(sizeof(partial) - 1, write(self->half, partial, sizeof(partial) - 1));
	usleep(50000);
}

FIXTURE_TEARDOWN(rollback)
{
	pid_t pid;
	int v, i;

	if (!kvd_info(self->fds[0], &pid, &v) && pid != self->svc.kvd)
		kill(pid, SIGTERM);
	for (i = 0; i < CLIENTS; i++)
		close(self->fds[i]);
	close(self->half);
	service_down(&self->svc);
}

/* Every client still connected, served by `by`, its counter at `n`. */
static void expect_served(struct __test_metadata *_metadata,
			  FIXTURE_DATA(rollback) *self, pid_t by, int n)
{
	int version;
	pid_t pid;

	EXPECT_EQ(0, incr_each(self->fds, CLIENTS, n));
	ASSERT_EQ(0, kvd_info(self->fds[0], &pid, &version));
	EXPECT_EQ(by, pid);
}

static void expect_half_completes(struct __test_metadata *_metadata,
				  FIXTURE_DATA(rollback) *self)
{
	char reply[64];

	ASSERT_EQ(5, write(self->half, "rld\r\n", 5));
	EXPECT_LT(0, resp_reply(self->half, reply, sizeof(reply), 5000));
	EXPECT_STREQ("+OK\r\n", reply);
	EXPECT_EQ(0, resp_expect(self->half, "$5\r\nworld\r\n", 2, "GET", "half"));
}

static void log_cb(void *ctx, enum baton_log_level level, const char *msg)
{
	(void)ctx;
	if (level <= BATON_LOG_WARN)
		fprintf(stderr, "# batonctl: %s\n", msg);
}

static void open_upgrade(struct __test_metadata *_metadata,
			 FIXTURE_DATA(rollback) *self,
			 struct baton_upgrade **up, char *const *argv,
			 int timeout_ms, int blackout_ms)
{
	struct baton_upgrade_opts o = {
		.service = "kvd", .argv = argv, .log_path = self->svc.log,
		.timeout_ms = timeout_ms, .blackout_ms = blackout_ms,
		.log = log_cb,
	};

	ASSERT_EQ(0, baton_upgrade_open(up, &o));
}

/* Every client's connection closed under it, the half-sent one too. */
static void expect_closed(struct __test_metadata *_metadata,
			  FIXTURE_DATA(rollback) *self)
{
	char reply[64];
	int i, open = 0;

	signal(SIGPIPE, SIG_IGN);	/* writing to closed connections */
	for (i = 0; i < CLIENTS; i++) {
		int err = resp_expect(self->fds[i], ":2\r\n", 2, "INCR", "c0");

		/* the write fails (EPIPE), or the read finds the end */
		open += err != -EIO && err != -ECONNRESET;
	}
	EXPECT_EQ(0, open);
	ASSERT_EQ(5, write(self->half, "rld\r\n", 5));
	EXPECT_EQ(-ECONNRESET, resp_reply(self->half, reply, sizeof(reply), 5000))
		TH_LOG("the half-sent request was answered: %s", reply);
}

struct stepper {
	struct baton_upgrade *up;
	int phase;
};

static void *step_once(void *arg)
{
	struct stepper *s = arg;

	s->phase = baton_upgrade_step(s->up);
	return NULL;
}

/*
 * The old dies once phase 2 has crossed: the new one is held stopped
 * while the blackout starts, and the old is killed once the coordinator
 * has its DEACTIVATED, which it sends after PHASE2_DONE to the new one.
 * (Its control socket going quiet is no proof: under load a query can
 * time out before the old has even begun to deactivate.) The report's
 * time of it is written by the stepping thread: read atomically.
 */
static void kill_old_after_phase2(struct __test_metadata *_metadata,
				  FIXTURE_DATA(rollback) *self,
				  struct baton_upgrade *up)
{
	const struct baton_upgrade_report *r = baton_upgrade_report(up);
	struct stepper s = { .up = up };
	pthread_t step;
	int tries;

	ASSERT_EQ(0, kill(r->new_pid, SIGSTOP));
	ASSERT_EQ(0, pthread_create(&step, NULL, step_once, &s));
	for (tries = 0; tries < 400; tries++) {
		if (__atomic_load_n(&r->t_ns[BATON_PHASE_DEACTIVATED],
				    __ATOMIC_ACQUIRE))
			break;
		usleep(5000);
	}
	ASSERT_GT(400, tries);
	ASSERT_EQ(0, kill(self->svc.kvd, SIGKILL));
	ASSERT_EQ(self->svc.kvd, waitpid(self->svc.kvd, NULL, 0));
	self->svc.kvd = 0;
	ASSERT_EQ(0, kill(r->new_pid, SIGCONT));
	ASSERT_EQ(0, pthread_join(step, NULL));
	EXPECT_EQ(BATON_PHASE_ACTIVE, s.phase) TH_LOG("%s", r->reason);
}

TEST_F_TIMEOUT(rollback, instance_killed, 60)
{
	char path[256];
	char *argv[] = { (char *)bin("kvd-v2", path, sizeof(path)), "--quiet", NULL };
	const struct baton_upgrade_report *r;
	struct baton_upgrade *up;
	int phase, err;

	/*
	 * A new instance stopped at READY must outlast the blackout (2 s,
	 * the default), not race it; one held stopped while the old dies
	 * after phase 2 must not: under TCG the wait for DEACTIVATED alone
	 * may take most of 2 s
	 */
	open_upgrade(_metadata, self, &up, argv, 5000,
		     variant->victim == OLD ? 20000 : 0);
	r = baton_upgrade_report(up);
	do {
		phase = baton_upgrade_step(up);
		ASSERT_LT(0, phase);
	} while (phase != variant->at);

	if (variant->victim == NEW) {
		ASSERT_EQ(0, kill(r->new_pid, variant->sig));
		if (variant->sig == SIGKILL)
			ASSERT_EQ(r->new_pid, waitpid(r->new_pid, NULL, 0));
		do {
			err = baton_upgrade_step(up);
		} while (err > 0 && err != BATON_PHASE_DONE);
		EXPECT_GT(0, err);
		EXPECT_EQ(BATON_PHASE_ROLLED_BACK, r->phase);
		TH_LOG("rolled back: %s", r->reason);
		EXPECT_FALSE(pid_alive(r->new_pid));
		baton_upgrade_close(up);
		/* the half-sent request completes on the old instance */
		expect_half_completes(_metadata, self);
		expect_served(_metadata, self, self->svc.kvd, 2);
		return;
	}
	if (variant->after_phase2) {
		kill_old_after_phase2(_metadata, self, up);
	} else {
		/* the old dies; the coordinator holds its listeners */
		ASSERT_EQ(0, kill(self->svc.kvd, SIGKILL));
		ASSERT_EQ(self->svc.kvd, waitpid(self->svc.kvd, NULL, 0));
		self->svc.kvd = 0;
	}
	do {
		phase = baton_upgrade_step(up);
	} while (phase > 0 && phase != BATON_PHASE_DONE);
	EXPECT_EQ(BATON_PHASE_DONE, phase) TH_LOG("%s", r->reason);
	EXPECT_EQ(!variant->after_phase2, r->old_lost);
	err = r->new_pid;
	baton_upgrade_close(up);
	if (variant->after_phase2) {
		/* its foreground record had crossed before the old died */
		expect_half_completes(_metadata, self);
		expect_served(_metadata, self, err, 2);
		return;
	}
	TH_LOG("rolled forward: the new instance serves the listeners, and closed every connection");
	expect_closed(_metadata, self);
	EXPECT_EQ(err, serving_pid(&self->svc, AF_INET));
}

/* New instances that fail in other ways; the old serves on. */
FIXTURE(bad_new) {
	struct service svc;
	int fd;
};

FIXTURE_VARIANT(bad_new) {
	const char *argv[4];
	int timeout_ms;
	const char *reason;
	bool kill_coordinator;	/* batonctl dies; 'batonctl recover' */
	bool stop_new;		/* the new instance left stopped, as
				 * batonctl leaves it dying while it looks
				 * at it past the blackout's deadline */
	bool kill_both;		/* and both instances killed: failed */
};

FIXTURE_VARIANT_ADD(bad_new, never_ready) {
	.argv = { "/bin/sleep", "30" }, .timeout_ms = 500,
	.reason = "never connected to the old instance",
};
FIXTURE_VARIANT_ADD(bad_new, exits_at_once) {
	.argv = { "/bin/false" }, .timeout_ms = 5000,
	.reason = "exited with status 1 before it was active",
};
FIXTURE_VARIANT_ADD(bad_new, no_such_command) {
	.argv = { "/nonexistent/kvd" }, .timeout_ms = 5000,
	.reason = "cannot run '/nonexistent/kvd'",
};
FIXTURE_VARIANT_ADD(bad_new, coordinator_killed) {
	.kill_coordinator = true,
	.reason = "recovered: the coordinator",
};
FIXTURE_VARIANT_ADD(bad_new, coordinator_killed_new_stopped) {
	.kill_coordinator = true, .stop_new = true,
	.reason = "recovered: the coordinator",
};
FIXTURE_VARIANT_ADD(bad_new, coordinator_and_both_killed) {
	.kill_coordinator = true, .kill_both = true,
	.reason = "recovered: the coordinator",
};

FIXTURE_SETUP(bad_new)
{
	ASSERT_EQ(0, service_up(&self->svc, AF_INET, 1));
	self->fd = client_connect(AF_INET, self->svc.port);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, resp_expect(self->fd, ":1\r\n", 2, "INCR", "n"));
}

FIXTURE_TEARDOWN(bad_new)
{
	close(self->fd);
	service_down(&self->svc);
}

static void kill_coordinator(struct __test_metadata *_metadata,
			     FIXTURE_DATA(bad_new) *self,
			     const FIXTURE_VARIANT(bad_new) *variant);

TEST_F_TIMEOUT(bad_new, rolls_back, 30)
{
	struct baton_upgrade_opts o = {
		.service = "kvd", .argv = (char *const *)variant->argv,
		.log_path = self->svc.log, .timeout_ms = variant->timeout_ms,
	};
	const struct baton_upgrade_report *r;
	struct baton_upgrade *up;
	int phase, version;
	pid_t pid;

	if (variant->kill_coordinator) {
		kill_coordinator(_metadata, self, variant);
		return;
	}
	ASSERT_EQ(0, baton_upgrade_open(&up, &o));
	r = baton_upgrade_report(up);
	do {
		phase = baton_upgrade_step(up);
	} while (phase > 0 && phase != BATON_PHASE_DONE);
	EXPECT_GT(0, phase);
	EXPECT_EQ(BATON_PHASE_ROLLED_BACK, r->phase);
	EXPECT_NE(NULL, strstr(r->reason, variant->reason));
	TH_LOG("%s", r->reason);
	EXPECT_FALSE(pid_alive(r->new_pid));
	baton_upgrade_close(up);
	EXPECT_EQ(0, resp_expect(self->fd, ":2\r\n", 2, "INCR", "n"));
	ASSERT_EQ(0, kvd_info(self->fd, &pid, &version));
	EXPECT_EQ(self->svc.kvd, pid);
	EXPECT_EQ(1, version);
}

/*
 * A coordinator killed mid-upgrade; batonctl recover settles it, and goes
 * on with a new instance the coordinator left stopped (before, recover
 * waited for it, and said 'failed' with the old one serving)
 */
static void kill_coordinator(struct __test_metadata *_metadata,
			     FIXTURE_DATA(bad_new) *self,
			     const FIXTURE_VARIANT(bad_new) *variant)
{
	char path[256], cmd[512], out[8192];
	const char *up_args[] = { "upgrade", "kvd", "--log", self->svc.log, "--",
				  "/bin/sh", "-c", cmd, NULL };
	const char *recover_args[] = { "recover", "kvd", NULL };
	const char *status_args[] = { "status", "kvd", "-j", NULL };
	int version, status, i;
	pid_t ctl, pid, new_pid = 0;

	/* a new instance slow to start: the coordinator dies meanwhile */
	snprintf(cmd, sizeof(cmd), "sleep 1; exec %s --quiet",
		 bin("kvd-v2", path, sizeof(path)));
	ctl = fork();
	ASSERT_LE(0, ctl);
	if (ctl == 0) {
		char o[4096];

		_exit(batonctl(o, sizeof(o), up_args));
	}
	/* the journal names the coordinator once the new instance runs */
	for (i = 0, pid = 0; i < 200 && !pid; i++) {
		char text[64];

		usleep(10000);
		batonctl(out, sizeof(out), status_args);
		if (json_str(out, "phase", text, sizeof(text)) &&
		    !strcmp(text, "spawned") &&
		    json_str(out, "coordinator_pid", text, sizeof(text)))
			pid = atoi(text);
		if (pid && json_str(out, "new_pid", text, sizeof(text)))
			new_pid = atoi(text);
	}
	ASSERT_LT(0, pid);
	if (variant->stop_new) {
		ASSERT_LT(0, new_pid);
		ASSERT_EQ(0, kill(new_pid, SIGSTOP));
	}
	ASSERT_EQ(0, kill(pid, SIGKILL));
	waitpid(ctl, &status, 0);
	if (variant->kill_both) {
		/* nothing serves: recover says so, with status 1 */
		ASSERT_LT(0, new_pid);
		ASSERT_EQ(0, kill(new_pid, SIGKILL));
		ASSERT_EQ(0, kill(self->svc.kvd, SIGKILL));
		waitpid(self->svc.kvd, NULL, 0);
		self->svc.kvd = 0;
		EXPECT_EQ(1, batonctl(out, sizeof(out), recover_args));
		TH_LOG("%s", out);
		EXPECT_EQ(0, batonctl(out, sizeof(out), status_args));
		EXPECT_NE(NULL, strstr(out, "\"result\":\"failed\""));
		EXPECT_NE(NULL, strstr(out, variant->reason));
		return;
	}

	EXPECT_EQ(0, batonctl(out, sizeof(out), status_args));
	EXPECT_NE(NULL, strstr(out, "\"interrupted\""));
	EXPECT_EQ(0, batonctl(out, sizeof(out), recover_args));
	EXPECT_EQ(0, batonctl(out, sizeof(out), status_args));
	EXPECT_NE(NULL, strstr(out, "\"result\":\"rolled-back\""));
	EXPECT_NE(NULL, strstr(out, variant->reason));
	EXPECT_EQ(NULL, strstr(out, "\"interrupted\""));

	EXPECT_EQ(0, resp_expect(self->fd, ":2\r\n", 2, "INCR", "n"));
	ASSERT_EQ(0, kvd_info(self->fd, &pid, &version));
	EXPECT_EQ(self->svc.kvd, pid);
}

/*
 * Arguments batonctl must refuse before it makes anything: a timeout
 * with a unit ("30s" was 30 ms), a negative byte count, a service that
 * is not a name (its journal went where the name led, out of the run
 * directory). The service serves on, and no file appears.
 */
TEST(bad_arguments_make_nothing)
{
	char out[8192], path[256], name[64], beside[256];
	const char *const usage[][12] = {
		{ "upgrade", "kvd", "--timeout-ms", "30s", "--", path, NULL },
		{ "upgrade", "kvd", "--blackout-timeout-ms", "2s", "--", path,
		  NULL },
		{ "upgrade", "kvd", "--verify", "true", "--verify-timeout-ms",
		  "5s", "--", path, NULL },
		{ "upgrade", "kvd", "--precopy-bytes", "-1", "--", path, NULL },
		{ "restore", "kvd", "-i", "/nonexistent", "--timeout-ms", "1s",
		  "--", path, NULL },
		{ "status", name, NULL },
		{ "recover", name, NULL },
	};
	const char *upgrade[] = { "upgrade", name, "--", path, NULL };
	struct service svc;
	struct stat st;
	size_t i;
	int fd;

	ASSERT_EQ(0, service_up(&svc, AF_INET, 1));
	bin("kvd-v2", path, sizeof(path));
	snprintf(name, sizeof(name), "../baton-bad-name-%d", getpid());
	snprintf(beside, sizeof(beside), "%s/%s", svc.rundir, name);
	for (i = 0; i < sizeof(usage) / sizeof(usage[0]); i++) {
		EXPECT_EQ(2, batonctl(out, sizeof(out), usage[i]))
			TH_LOG("usage %zu: %s", i, out);
	}
	/* an operation refuses it (its reason on stderr), as the library would */
	EXPECT_EQ(1, batonctl(out, sizeof(out), upgrade));
	EXPECT_NE(0, stat(beside, &st));

	fd = client_connect(AF_INET, svc.port);
	ASSERT_LE(0, fd);
	EXPECT_EQ(0, resp_expect(fd, ":1\r\n", 2, "INCR", "n"));
	close(fd);
	service_down(&svc);
}

/*
 * restore --fresh-on-failure under --run-dir (no BATON_RUN_DIR): the
 * fresh instance serves where batonctl looks for it. Before, it started
 * under the default run directory, batonctl reported that it never
 * answered, and left it running.
 */
TEST(fresh_start_in_its_run_dir)
{
	char dir[] = "/tmp/baton-fresh.XXXXXX", bad[128], path[256];
	char out[8192];
	const char *args[] = { "-j", "--run-dir", dir, "restore", "kvd", "-i",
			       bad, "--timeout-ms", "5000",
			       "--fresh-on-failure", "--", path, "--quiet",
			       NULL };
	struct baton_instance_info info;
	long long fresh;
	int fd;

	ASSERT_EQ(0, netns_enter());
	ASSERT_NE(NULL, mkdtemp(dir));
	unsetenv("BATON_RUN_DIR");
	bin("kvd-v1", path, sizeof(path));
	snprintf(bad, sizeof(bad), "%s/bad.ckpt", dir);
	fd = open(bad, O_WRONLY | O_CREAT, 0600);
	ASSERT_LE(0, fd);
	ASSERT_EQ(17, write(fd, "not a checkpoint\n", 17));
	close(fd);

	EXPECT_EQ(1, batonctl(out, sizeof(out), args));
	TH_LOG("%s", out);
	fresh = json_num(out, "fresh_pid");
	EXPECT_LT(0, fresh);
	EXPECT_EQ(NULL, strstr(out, "fresh_error"));
	if (fresh > 0) {
		EXPECT_EQ(0, baton_query(dir, "kvd", 2000, &info));
		EXPECT_EQ(fresh, info.pid);
		kill(fresh, SIGKILL);
		EXPECT_EQ(0, pid_wait_gone(fresh, 5000));
	}
	snprintf(out, sizeof(out), "rm -rf %s", dir);
	EXPECT_EQ(0, system(out));
}

/*
 * A new version whose last words are not UTF-8 (Latin-1, a stray byte):
 * the -j report, which quotes them, stays JSON: each such byte is
 * U+FFFD. Before, they went out raw.
 */
TEST(report_stays_json)
{
	char out[8192], log[256];
	const char *args[] = { "-j", "upgrade", "kvd", "--log", log, "--",
			       "/bin/sh", "-c",
			       "printf 'caf\\351 \\377 na\\303\\257ve\\n' >&2; exit 3",
			       NULL };
	struct service svc;

	ASSERT_EQ(0, service_up(&svc, AF_INET, 1));
	snprintf(log, sizeof(log), "%s/new.log", svc.rundir);
	EXPECT_EQ(1, batonctl(out, sizeof(out), args));
	TH_LOG("%s", out);
	EXPECT_NE(NULL, strstr(out, "caf\\ufffd \\ufffd na\xc3\xafve"));
	EXPECT_EQ(NULL, strchr(out, '\xff'));
	EXPECT_EQ(NULL, strchr(out, '\xe9'));
	service_down(&svc);
}

FIXTURE(held) {
	struct service svc;
	struct freezer fz;
	int fd;
};

FIXTURE_SETUP(held)
{
	ASSERT_EQ(0, freezer_make(&self->fz))
		TH_LOG("the v1 freezer cgroup: %s", strerror(errno));
	ASSERT_EQ(0, service_up(&self->svc, AF_INET, 1));
	self->fd = client_connect(AF_INET, self->svc.port);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, resp_expect(self->fd, ":1\r\n", 2, "INCR", "n"));
}

FIXTURE_TEARDOWN(held)
{
	freezer_remove(&self->fz);
	close(self->fd);
	service_down(&self->svc);
}

TEST_F_TIMEOUT(held, by_the_kernel, 60)
{
	const char *argv[] = { "/bin/sleep", "30", NULL };
	struct baton_upgrade_opts o = {
		.service = "kvd", .argv = (char *const *)argv,
		.log_path = self->svc.log, .timeout_ms = 1000,
	};
	const struct baton_upgrade_report *r;
	struct baton_upgrade *up;
	int phase, version;
	pid_t serving;

	ASSERT_EQ(0, baton_upgrade_open(&up, &o));
	r = baton_upgrade_report(up);
	do {
		phase = baton_upgrade_step(up);
	} while (phase > 0 && r->new_pid <= 0);
	ASSERT_LT(0, r->new_pid);

	/* frozen: a SIGKILL waits for the thaw */
	ASSERT_EQ(0, freezer_add(&self->fz, r->new_pid));
	ASSERT_EQ(0, freezer_set(&self->fz, true));

	do {
		phase = baton_upgrade_step(up);
	} while (phase > 0 && phase != BATON_PHASE_DONE);
	EXPECT_GT(0, phase);
	EXPECT_EQ(BATON_PHASE_ROLLED_BACK, r->phase);
	EXPECT_NE(NULL, strstr(r->reason, "did not exit on SIGKILL"));
	TH_LOG("%s", r->reason);
	EXPECT_TRUE(pid_alive(r->new_pid));
	EXPECT_EQ(0, resp_expect(self->fd, ":2\r\n", 2, "INCR", "n"));
	ASSERT_EQ(0, kvd_info(self->fd, &serving, &version));
	EXPECT_EQ(self->svc.kvd, serving);

	/* let go, it is gone */
	ASSERT_EQ(0, freezer_set(&self->fz, false));
	EXPECT_EQ(0, pid_wait_gone(r->new_pid, SURE_REPLY_MS));
	baton_upgrade_close(up);
}

TEST_HARNESS_MAIN
