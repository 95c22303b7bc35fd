// SPDX-License-Identifier: GPL-2.0-only
/*
 * Processes that die, stop or run out of something at the worst moment of
 * an upgrade, one case a test, each once a defect:
 *  1. batonctl killed while the new instance waits for the old one: no
 *     process is left behind, nor holding its lock;
 *  2. the new instance stopped as soon as it is started: batonctl returns;
 *  3. the old instance killed after batonctl attached, or while the new
 *     one starts: the new one serves the listeners, and no report says
 *     that a dead process serves;
 *  4. errors that name their cause: an open-file limit, options the new
 *     version refuses, a command that never speaks the protocol, one
 *     that looks for the old instance in another run directory;
 *  5. (rollback_test: a roll-forward closes what it cannot continue)
 *  6. silent peers on the control socket: status still answers, and a
 *     coordinator that says nothing is dropped;
 *  7. a new instance hung in the blackout: the old resumes within the
 *     blackout's own deadline, not the step's;
 *  8. a full run directory (inodes, then blocks): the instance that serves
 *     keeps its control socket, and the journal is never stale;
 *  9. batonctl's output captured by a shell: it ends when batonctl does.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>

#include "kselftest_harness.h"
#include "baton.h"
#include "helpers.h"

#define CLIENTS 20

FIXTURE(crash) {
	struct service svc;
	int fds[CLIENTS];
	char log[256];		/* the new instances' --log */
};

FIXTURE_SETUP(crash)
{
	char key[16];
	int i;

	ASSERT_EQ(0, service_up(&self->svc, AF_INET, 1));
	snprintf(self->log, sizeof(self->log), "%s/new.log", self->svc.rundir);
	for (i = 0; i < CLIENTS; i++) {
		self->fds[i] = client_connect(AF_INET, self->svc.port);
		ASSERT_LE(0, self->fds[i]);
		snprintf(key, sizeof(key), "c%d", i);
		ASSERT_EQ(0, resp_expect(self->fds[i], ":1\r\n", 2, "INCR", key));
	}
}

FIXTURE_TEARDOWN(crash)
{
	pid_t pid = serving_pid(&self->svc, AF_INET);
	int i;

	kill(self->svc.kvd, SIGCONT);
	if (pid > 0 && pid != self->svc.kvd)
		kill(pid, SIGKILL);
	for (i = 0; i < CLIENTS; i++)
		close(self->fds[i]);
	service_teardown(&self->svc);
}

/* An upgrade to kvd-v2 that must go through now; its JSON report in out. */
static int upgrade_ok(FIXTURE_DATA(crash) *self, char *out, size_t len)
{
	char path[256];
	const char *args[] = { "upgrade", "kvd", "-j", "--log", self->log,
			       "--timeout-ms", SURE_STEP_MS,
			       "--blackout-timeout-ms", SURE_BLACKOUT_MS, "--",
			       bin("kvd-v2", path, sizeof(path)), "--quiet",
			       NULL };

	return batonctl(out, len, args);
}

/* Waits until pid has a child, and returns it. */
static pid_t first_child(pid_t pid, int timeout_ms)
{
	pid_t kids[4];

	for (; timeout_ms > 0; timeout_ms -= 2) {
		if (children_of(pid, kids, 4) > 0)
			return kids[0];
		usleep(2000);
	}
	return -ETIMEDOUT;
}

/* Every client's counter goes on from n, on the instance `by`. */
static void expect_clients(struct __test_metadata *_metadata,
			   FIXTURE_DATA(crash) *self, int n, pid_t by)
{
	char key[16], want[16];
	int i, bad = 0;

	snprintf(want, sizeof(want), ":%d\r\n", n);
	for (i = 0; i < CLIENTS; i++) {
		snprintf(key, sizeof(key), "c%d", i);
		bad += resp_expect(self->fds[i], want, 2, "INCR", key) != 0;
	}
	EXPECT_EQ(0, bad);
	EXPECT_EQ(by, serving_pid(&self->svc, AF_INET));
}

/*
 * 3. The old instance dies while the new one starts (a shell that sleeps
 * first): the coordinator holds the listeners since it attached.
 */
TEST_F_TIMEOUT(crash, old_killed_while_new_starts, 60)
{
	char path[256], cmd[512], out[8192], text[256];
	const char *args[] = { "upgrade", "kvd", "-j", "--log", self->log,
			       "--timeout-ms", SURE_STEP_MS,
			       "--blackout-timeout-ms", SURE_BLACKOUT_MS, "--",
			       "/bin/sh", "-c", cmd, NULL };
	const char *status_args[] = { "status", "kvd", "-j", NULL };
	pid_t ctl, child, new_pid;
	int fd, status, c;

	snprintf(cmd, sizeof(cmd), "sleep 1; exec %s --quiet",
		 bin("kvd-v2", path, sizeof(path)));
	ctl = batonctl_start(args, &fd);
	ASSERT_LT(0, ctl);
	child = first_child(ctl, 5000);
	ASSERT_LT(0, child);
	usleep(200000);		/* the new one sleeps; the old goes */
	ASSERT_EQ(0, kill(self->svc.kvd, SIGKILL));
	ASSERT_EQ(self->svc.kvd, waitpid(self->svc.kvd, NULL, 0));
	self->svc.kvd = 0;

	ASSERT_LE(0, read_to_eof(fd, out, sizeof(out), 30000));
	close(fd);
	status = wait_exit(ctl, 5000);
	TH_LOG("%s", out);
	EXPECT_EQ(0, status);
	EXPECT_NE(NULL, json_str(out, "result", text, sizeof(text)));
	EXPECT_STREQ("done", text);
	EXPECT_EQ(1, json_num(out, "old_lost"));
	new_pid = json_num(out, "new_pid");
	EXPECT_TRUE(pid_alive(new_pid));

	/* the listener is the same one: new clients are served by the new */
	EXPECT_EQ(new_pid, serving_pid(&self->svc, AF_INET));
	c = client_connect(AF_INET, self->svc.port);
	ASSERT_LE(0, c);
	EXPECT_EQ(0, resp_expect(c, ":1\r\n", 2, "INCR", "fresh"));
	close(c);
	ASSERT_EQ(0, batonctl(out, sizeof(out), status_args));
	EXPECT_EQ(1, json_num(out, "serving"));
	EXPECT_EQ(new_pid, json_num(out, "pid"));
}

/* 3. The same through the library: attached, then the old is gone. */
TEST_F_TIMEOUT(crash, old_killed_after_attach, 60)
{
	char path[256];
	char *argv[] = { (char *)bin("kvd-v2", path, sizeof(path)), "--quiet",
			 NULL };
	struct baton_upgrade_opts o = {
		.service = "kvd", .argv = argv, .log_path = self->log,
		.timeout_ms = atoi(SURE_STEP_MS),
		.blackout_ms = atoi(SURE_BLACKOUT_MS),
	};
	const struct baton_upgrade_report *r;
	struct baton_upgrade *up;
	int phase;

	ASSERT_EQ(0, baton_upgrade_open(&up, &o));
	r = baton_upgrade_report(up);
	ASSERT_EQ(0, kill(self->svc.kvd, SIGKILL));
	ASSERT_EQ(self->svc.kvd, waitpid(self->svc.kvd, NULL, 0));
	self->svc.kvd = 0;
	/*
	 * the first step says SPAWNED, with the new pid, before the new
	 * one takes over in the next: batonctl's journal has it then, for
	 * a recover after batonctl's death (it went forward in the same
	 * step, and recover found no new instance to credit)
	 */
	phase = baton_upgrade_step(up);
	EXPECT_EQ(BATON_PHASE_SPAWNED, phase);
	EXPECT_LT(0, r->new_pid);
	while (phase > 0 && phase != BATON_PHASE_DONE)
		phase = baton_upgrade_step(up);
	TH_LOG("%s: %s", baton_phase_name(r->phase), r->reason);
	/* never "the old serves again" when it is dead */
	EXPECT_NE(BATON_PHASE_ROLLED_BACK, r->phase);
	EXPECT_EQ(BATON_PHASE_DONE, r->phase);
	EXPECT_TRUE(r->old_lost);
	EXPECT_EQ(r->new_pid, serving_pid(&self->svc, AF_INET));
	baton_upgrade_close(up);
}

/*
 * 1 and 2: an old instance that welcomes batonctl, answers its UPGRADE
 * late, and never welcomes the new instance (fake_peer): batonctl has
 * started its child, which waits on.
 */
FIXTURE(slow_old) {
	char rundir[64];
	pid_t old;
};

FIXTURE_VARIANT(slow_old) {
	const char *mode;
	bool stop_child;	/* else batonctl is killed */
};

FIXTURE_VARIANT_ADD(slow_old, batonctl_killed) { "old-slow-ack", false };
FIXTURE_VARIANT_ADD(slow_old, child_stopped) { "old-slow-ack", true };

FIXTURE_SETUP(slow_old)
{
	char path[512], sock[128];

	ASSERT_EQ(0, netns_enter());
	ASSERT_EQ(0, rundir_make(self->rundir, sizeof(self->rundir)));
	snprintf(sock, sizeof(sock), "%s/kvd.sock", self->rundir);
	fake_peer_path(path, sizeof(path));
	self->old = fork();
	ASSERT_LE(0, self->old);
	if (self->old == 0) {
		execl(path, path, variant->mode, NULL);
		_exit(127);
	}
	ASSERT_EQ(0, wait_path(sock, 5000));
}

FIXTURE_TEARDOWN(slow_old)
{
	stop_and_reap(self->old, SIGKILL);
	netns_reap();
	rundir_remove(self->rundir);
}

TEST_F_TIMEOUT(slow_old, leaves_nothing_behind, 60)
{
	char path[256], out[8192];
	const char *args[] = { "upgrade", "kvd", "-j", "--timeout-ms", "1000",
			       "--", bin("kvd-v2", path, sizeof(path)),
			       "--quiet", NULL };
	pid_t ctl, child;
	int fd, status;

	ctl = batonctl_start(args, &fd);
	ASSERT_LT(0, ctl);
	child = first_child(ctl, 5000);
	ASSERT_LT(0, child);
	if (variant->stop_child) {
		ASSERT_EQ(0, kill(child, SIGSTOP));
	} else {
		ASSERT_EQ(0, kill(ctl, SIGKILL));
	}
	/* batonctl ends within its deadlines, the child with it */
	status = wait_exit(ctl, 20000);
	if (status == -ETIMEDOUT) {
		kill(ctl, SIGKILL);
		wait_exit(ctl, 5000);
	}
	EXPECT_NE(-ETIMEDOUT, status) TH_LOG("batonctl hangs on its child");
	read_to_eof(fd, out, sizeof(out), 1000);
	close(fd);
	TH_LOG("%s", out);
	EXPECT_EQ(0, pid_wait_gone(child, 10000))
		TH_LOG("pid %d, started by batonctl, is still there", child);
	kill(child, SIGKILL);

	/* nobody holds the upgrade lock: the next batonctl gets past it */
	stop_and_reap(self->old, SIGKILL);
	self->old = 0;
	batonctl(out, sizeof(out), args);
	EXPECT_EQ(NULL, strstr(out, "another batonctl")) TH_LOG("%s", out);
}

/* 4. What went wrong, in the report's own words. */
FIXTURE(cause) {
	struct service svc;
	int fds[200];
	char log[256];
};

FIXTURE_VARIANT(cause) {
	const char *cmd;	/* %s: kvd-v2 */
	int timeout_ms;
	int conns;
	const char *reason;
	const char *also;	/* a second part of the error, if any */
};

FIXTURE_VARIANT_ADD(cause, open_file_limit) {
	.cmd = "ulimit -n 64 && exec %s --quiet", .conns = 200,
	.reason = "open-file limit",
};
FIXTURE_VARIANT_ADD(cause, bad_options) {
	.cmd = "exec %s --quiet --state-min 3",
	.reason = "state_min 3",
};
FIXTURE_VARIANT_ADD(cause, never_connects) {
	.cmd = "exec sleep 100 # %s", .timeout_ms = 1000,
	.reason = "never connected",
	/* what /proc says of it: asleep, and how little it ran */
	.also = "ms of CPU",
};
/* $BATON_RUN_DIR: batonctl's, which the new instance is given */
FIXTURE_VARIANT_ADD(cause, other_run_dir) {
	.cmd = "mkdir -p \"$BATON_RUN_DIR/other\" && "
	       "exec %s --quiet --run-dir \"$BATON_RUN_DIR/other\"",
	.reason = "found no serving instance at ",
};

FIXTURE_SETUP(cause)
{
	int i;

	ASSERT_EQ(0, service_up(&self->svc, AF_INET, 1));
	snprintf(self->log, sizeof(self->log), "%s/new.log", self->svc.rundir);
	for (i = 0; i < variant->conns; i++) {
		self->fds[i] = client_connect(AF_INET, self->svc.port);
		ASSERT_LE(0, self->fds[i]);
	}
	for (i = 0; i < variant->conns; i++)
		ASSERT_EQ(0, resp_expect(self->fds[i], "+PONG\r\n", 1, "PING"));
}

FIXTURE_TEARDOWN(cause)
{
	int i;

	for (i = 0; i < variant->conns; i++)
		close(self->fds[i]);
	service_teardown(&self->svc);
}

TEST_F_TIMEOUT(cause, named, 60)
{
	char path[256], cmd[512], out[8192], timeout[16], text[1024];
	const char *args[] = { "upgrade", "kvd", "-j", "--timeout-ms", timeout,
			       "--log", self->log, "--", "/bin/sh", "-c", cmd,
			       NULL };
	int i;

	snprintf(cmd, sizeof(cmd), variant->cmd,
		 bin("kvd-v2", path, sizeof(path)));
	snprintf(timeout, sizeof(timeout), "%s", SURE_STEP_MS);
	if (variant->timeout_ms)
		snprintf(timeout, sizeof(timeout), "%d", variant->timeout_ms);
	EXPECT_EQ(1, batonctl(out, sizeof(out), args));
	EXPECT_NE(NULL, json_str(out, "result", text, sizeof(text)));
	EXPECT_STREQ("rolled-back", text);
	EXPECT_NE(NULL, json_str(out, "error", text, sizeof(text)));
	TH_LOG("%s", text);
	EXPECT_NE(NULL, strstr(text, variant->reason));
	if (variant->also) {
		EXPECT_NE(NULL, strstr(text, variant->also));
	}
	/* nothing changed for the clients */
	for (i = 0; i < variant->conns; i++)
		EXPECT_EQ(0, resp_expect(self->fds[i], "+PONG\r\n", 1, "PING"));
	EXPECT_EQ(self->svc.kvd, serving_pid(&self->svc, AF_INET));
}

/* 6. */
TEST_F_TIMEOUT(crash, silent_peers, 60)
{
	const char *status_args[] = { "status", "kvd", "-j", NULL };
	char out[8192], hello[64];
	struct nlmsghdr *nlh;
	int silent[9], coordinator, i, tries;

	for (i = 0; i < 9; i++) {
		silent[i] = unix_connect(self->svc.sock);
		ASSERT_LE(0, silent[i]);
	}
	ASSERT_EQ(0, batonctl(out, sizeof(out), status_args));
	EXPECT_EQ(1, json_num(out, "serving")) TH_LOG("%s", out);
	EXPECT_EQ(self->svc.kvd, json_num(out, "pid"));
	for (i = 0; i < 9; i++)
		close(silent[i]);

	/* a coordinator's hello, then nothing */
	nlh = mnl_nlmsg_put_header(hello);
	nlh->nlmsg_type = BATON_MSG_HELLO;
	mnl_attr_put_u32(nlh, BATON_A_ROLE, BATON_ROLE_COORDINATOR);
	mnl_attr_put_u32(nlh, BATON_A_PROTO, BATON_PROTO_VERSION);
	coordinator = unix_connect(self->svc.sock);
	ASSERT_LE(0, coordinator);
	ASSERT_EQ(nlh->nlmsg_len, send(coordinator, hello, nlh->nlmsg_len, 0));
	/* it is dropped at its deadline; then an upgrade goes through */
	for (tries = 0; tries < 30; tries++) {
		if (!upgrade_ok(self, out, sizeof(out)))
			break;
		sleep(1);
	}
	EXPECT_GT(30, tries) TH_LOG("%s", out);
	TH_LOG("upgraded after %d s", tries);
	close(coordinator);
	expect_clients(_metadata, self, 2, json_num(out, "new_pid"));
}

/* 7. */
TEST_F_TIMEOUT(crash, new_instance_hung_in_blackout, 90)
{
	char path[512], out[8192], text[256];
	const char *args[] = { "upgrade", "kvd", "-j", "--timeout-ms", "20000",
			       "--log", self->log, "--", path, "no-active",
			       NULL };
	pid_t ctl;
	int fd, status;
	time_t start = time(NULL);

	fake_peer_path(path, sizeof(path));
	ctl = batonctl_start(args, &fd);
	ASSERT_LT(0, ctl);
	ASSERT_LE(0, read_to_eof(fd, out, sizeof(out), 60000));
	close(fd);
	status = wait_exit(ctl, 5000);
	TH_LOG("after %ld s: %s", (long)(time(NULL) - start), out);
	EXPECT_EQ(1, WEXITSTATUS(status));
	EXPECT_NE(NULL, json_str(out, "result", text, sizeof(text)));
	EXPECT_STREQ("rolled-back", text);
	/* the blackout's own deadline, far below the step's 20 s */
	EXPECT_GT(10, time(NULL) - start);
	expect_clients(_metadata, self, 2, self->svc.kvd);
}

/* 9. */
TEST_F_TIMEOUT(crash, captured_output_ends_with_batonctl, 60)
{
	char path[256], out[8192];
	const char *args[] = { "-j", "upgrade", "kvd", "--timeout-ms",
			       SURE_STEP_MS, "--blackout-timeout-ms",
			       SURE_BLACKOUT_MS, "--",
			       bin("kvd-v2", path, sizeof(path)), "--quiet",
			       NULL };
	pid_t ctl;
	int fd;

	ctl = batonctl_start(args, &fd);
	ASSERT_LT(0, ctl);
	EXPECT_LE(0, read_to_eof(fd, out, sizeof(out), 10000))
		TH_LOG("the new instance holds batonctl's stdout open");
	close(fd);
	EXPECT_EQ(0, wait_exit(ctl, 5000));
	expect_clients(_metadata, self, 2, json_num(out, "new_pid"));
}

/* 8. A run directory on a small tmpfs of its own, then filled up. */
FIXTURE(full) {
	struct service svc;
	int fd;
	char log[256];
};

FIXTURE_VARIANT(full) {
	bool inodes;		/* else blocks */
};

FIXTURE_VARIANT_ADD(full, inodes) { .inodes = true };
FIXTURE_VARIANT_ADD(full, blocks) { .inodes = false };

FIXTURE_SETUP(full)
{
	struct service *s = &self->svc;
	char path[256], out[8192];
	const char *args[] = { "upgrade", "kvd", "-j", "--log", self->log,
			       "--timeout-ms", SURE_STEP_MS,
			       "--blackout-timeout-ms", SURE_BLACKOUT_MS, "--",
			       bin("kvd-v2", path, sizeof(path)), "--quiet",
			       NULL };
	char fill[300];
	int i, fd;

	ASSERT_EQ(0, netns_enter());
	ASSERT_EQ(0, rundir_make(s->rundir, sizeof(s->rundir)));
	ASSERT_EQ(0, unshare(CLONE_NEWNS));
	ASSERT_EQ(0, mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL));
	ASSERT_EQ(0, mount("tmpfs", s->rundir, "tmpfs", 0,
			   "size=256k,nr_inodes=64,mode=0755"));
	snprintf(s->log, sizeof(s->log), "%s/kvd.log", s->rundir);
	snprintf(s->sock, sizeof(s->sock), "%s/kvd.sock", s->rundir);
	/* the new instances log outside the full filesystem */
	snprintf(self->log, sizeof(self->log), "%s.new.log", s->rundir);
	s->lfd = listener_make(AF_INET, &s->port);
	ASSERT_LE(0, s->lfd);
	s->kvd = kvd_start(1, s->lfd, s->rundir, NULL);
	ASSERT_LT(0, s->kvd);
	self->fd = client_connect(AF_INET, s->port);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, resp_expect(self->fd, ":1\r\n", 2, "INCR", "n"));
	/* one upgrade first, so that its journal is there */
	ASSERT_EQ(0, batonctl(out, sizeof(out), args)) TH_LOG("%s", out);

	if (variant->inodes) {
		for (i = 0; ; i++) {
			snprintf(fill, sizeof(fill), "%s/fill.%d", s->rundir, i);
			fd = open(fill, O_WRONLY | O_CREAT | O_EXCL, 0600);
			if (fd < 0)
				break;
			close(fd);
		}
	} else {
		static char block[4096];

		snprintf(fill, sizeof(fill), "%s/fill.0", s->rundir);
		fd = open(fill, O_WRONLY | O_CREAT | O_EXCL, 0600);
		ASSERT_LE(0, fd);
		while (write(fd, block, sizeof(block)) > 0)
			;
		close(fd);
	}
	ASSERT_EQ(ENOSPC, errno);
}

FIXTURE_TEARDOWN(full)
{
	pid_t pid = serving_pid(&self->svc, AF_INET);

	if (pid > 0)
		kill(pid, SIGKILL);
	close(self->fd);
	if (!_metadata->passed)
		service_log_tail(&self->svc, 30);
	stop_and_reap(self->svc.kvd, SIGKILL);
	netns_reap();
	close(self->svc.lfd);
	umount2(self->svc.rundir, MNT_DETACH);
	unlink(self->log);
	rmdir(self->svc.rundir);
}

/* Whoever serves answers on the control socket; status is not stale. */
static void expect_one_serves(struct __test_metadata *_metadata,
			      FIXTURE_DATA(full) *self, const char *result)
{
	const char *status_args[] = { "status", "kvd", "-j", NULL };
	char out[8192], text[256];
	pid_t pid = serving_pid(&self->svc, AF_INET);

	ASSERT_LT(0, pid);
	ASSERT_EQ(0, batonctl(out, sizeof(out), status_args));
	TH_LOG("%s", out);
	EXPECT_EQ(1, json_num(out, "serving"));
	EXPECT_EQ(pid, json_num(out, "pid"));
	if (result && json_str(out, "result", text, sizeof(text)))
		EXPECT_STREQ(result, text);
}

TEST_F_TIMEOUT(full, run_dir, 60)
{
	char path[256], out[8192], result[64] = "", text[256];
	const char *args[] = { "upgrade", "kvd", "-j", "--log", self->log,
			       "--timeout-ms", SURE_STEP_MS,
			       "--blackout-timeout-ms", SURE_BLACKOUT_MS, "--",
			       path, "--quiet", NULL };
	char fill[300];
	int i;

	bin("kvd-v1", path, sizeof(path));
	batonctl(out, sizeof(out), args);
	TH_LOG("%s", out);
	json_str(out, "result", result, sizeof(result));
	/* a journal it could not write is said, never left stale */
	expect_one_serves(_metadata, self,
			  json_str(out, "journal_error", text, sizeof(text)) ?
			  NULL : result);
	EXPECT_EQ(0, resp_expect(self->fd, ":2\r\n", 2, "INCR", "n"));

	/* room again: the next upgrade goes through */
	for (i = 0; ; i++) {
		snprintf(fill, sizeof(fill), "%s/fill.%d", self->svc.rundir, i);
		if (unlink(fill))
			break;
	}
	bin(strcmp(result, "done") ? "kvd-v1" : "kvd-v2", path, sizeof(path));
	EXPECT_EQ(0, batonctl(out, sizeof(out), args)) TH_LOG("%s", out);
	expect_one_serves(_metadata, self, "done");
	EXPECT_EQ(0, resp_expect(self->fd, ":3\r\n", 2, "INCR", "n"));
}

TEST_HARNESS_MAIN
