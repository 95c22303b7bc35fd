// SPDX-License-Identifier: GPL-2.0-only
/*
 * The VM with systemd as PID 1 (scripts/vm-systemd.sh), which the tests
 * of baton under a service manager stand on; runs there only.
 *  1. PID 1 is systemd, the boot finished with no unit failed
 *     (is-system-running: "running"), and this program runs in a service
 *     of its own whose main process, as systemctl shows it, is one of
 *     this program's ancestors;
 *  2. a Type=notify service, started once as a transient unit
 *     (systemd-run) and once from a unit file after a daemon-reload:
 *     it becomes active only through its READY=1 (sent with libsystemd),
 *     its MainPID is that process, in the unit's own cgroup; stopped, the
 *     unit is inactive and the process is gone.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "kselftest_harness.h"

/*
 * Runs argv[0] from $PATH with argv; its stdout and stderr, the last
 * newline cut off, into out: a comparison that fails shows the complaint.
 * Its exit status, or -errno if it could not run.
 */
static int run(char *out, size_t len, const char *const *argv)
{
	int pipefd[2], status;
	ssize_t n;
	pid_t pid;

	if (pipe2(pipefd, O_CLOEXEC))
		return -errno;
	pid = fork();
	if (pid < 0) {
		close(pipefd[0]);
		close(pipefd[1]);
		return -errno;
	}
	if (!pid) {
		dup2(pipefd[1], STDOUT_FILENO);
		dup2(pipefd[1], STDERR_FILENO);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(pipefd[1]);
	n = read_to_eof(pipefd[0], out, len, 120000);
	close(pipefd[0]);
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	if (n < 0)
		return n;
	if (n > 0 && out[n - 1] == '\n')
		out[n - 1] = '\0';
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* one property of a unit, as systemctl show --value prints it */
static int unit_prop(const char *unit, const char *prop, char *out, size_t len)
{
	const char *argv[] = { "systemctl", "show", "--value", "-p", prop,
			       unit, NULL };

	return run(out, len, argv);
}

/* the parent of pid, from /proc/PID/stat, or -1 */
static pid_t parent_of(pid_t pid)
{
	char path[64], stat[512], *p;
	pid_t ppid = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	/* "pid (comm) state ppid ...": comm may hold spaces and parens */
	if (fgets(stat, sizeof(stat), f) && (p = strrchr(stat, ')')))
		if (sscanf(p + 1, " %*c %d", &ppid) != 1)
			ppid = -1;
	fclose(f);
	return ppid;
}

/* the cgroup v2 path of pid ("/system.slice/x.service"), into buf */
static int cgroup_of(pid_t pid, char *buf, size_t len)
{
	char path[64], line[PATH_MAX];
	int err = -ENOENT;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "0::", 3))
			continue;
		line[strcspn(line, "\n")] = '\0';
		snprintf(buf, len, "%s", line + 3);
		err = 0;
		break;
	}
	fclose(f);
	return err;
}

TEST(pid1_is_systemd_and_we_run_in_a_unit)
{
	char comm[64] = "", out[256], cg[PATH_MAX], *unit;
	const char *argv[] = { "systemctl", "is-system-running", NULL };
	pid_t main_pid, p;
	FILE *f;

	f = fopen("/proc/1/comm", "re");
	ASSERT_NE(NULL, f);
	ASSERT_NE(NULL, fgets(comm, sizeof(comm), f));
	fclose(f);
	EXPECT_STREQ("systemd\n", comm);

	EXPECT_EQ(0, run(out, sizeof(out), argv));
	EXPECT_STREQ("running", out);

	/* our unit, from our cgroup, and its main process as systemd has it */
	ASSERT_EQ(0, cgroup_of(getpid(), cg, sizeof(cg)));
	unit = strrchr(cg, '/');
	ASSERT_NE(NULL, unit);
	unit++;
	ASSERT_EQ(0, strncmp(cg, "/system.slice/", 14)) {
		TH_LOG("cgroup %s", cg);
	}
	ASSERT_NE(NULL, strstr(unit, ".service"));
	ASSERT_EQ(0, unit_prop(unit, "ActiveState", out, sizeof(out)));
	EXPECT_STREQ("active", out);
	ASSERT_EQ(0, unit_prop(unit, "MainPID", out, sizeof(out)));
	main_pid = atoi(out);
	ASSERT_LT(1, main_pid);
	for (p = getpid(); p > 1 && p != main_pid; p = parent_of(p))
		;
	EXPECT_EQ(main_pid, p) {
		TH_LOG("MainPID %d of %s is no ancestor of ours", main_pid,
		       unit);
	}
}

FIXTURE(unit) {
	char unit[64];
	char file[128];		/* the unit file, if one was written */
	char ready[PATH_MAX];	/* notify_ready, beside this program */
};

FIXTURE_VARIANT(unit) {
	bool transient;
};

FIXTURE_VARIANT_ADD(unit, transient) {
	.transient = true,
};

FIXTURE_VARIANT_ADD(unit, unit_file) {
	.transient = false,
};

static int daemon_reload(void)
{
	const char *argv[] = { "systemctl", "daemon-reload", NULL };
	char out[256];

	return run(out, sizeof(out), argv);
}

FIXTURE_SETUP(unit)
{
	char *slash;
	ssize_t n;
	FILE *f;

	snprintf(self->unit, sizeof(self->unit), "baton-selftest-%d.service",
		 getpid());
	n = readlink("/proc/self/exe", self->ready, sizeof(self->ready) - 1);
	ASSERT_LT(0, n);
	self->ready[n] = '\0';	/* readlink() does not terminate */
	slash = strrchr(self->ready, '/');
	ASSERT_NE(NULL, slash);
	snprintf(slash, sizeof(self->ready) - (slash - self->ready),
		 "/notify_ready");
	ASSERT_EQ(0, access(self->ready, X_OK));
	self->file[0] = '\0';
	if (variant->transient)
		return;

	snprintf(self->file, sizeof(self->file), "/run/systemd/system/%s",
		 self->unit);
	f = fopen(self->file, "wxe");
	ASSERT_NE(NULL, f);
	fprintf(f, "[Unit]\nDescription=baton selftest service\n\n"
		   "[Service]\nType=notify\nExecStart=%s\n", self->ready);
	ASSERT_EQ(0, fclose(f));
	ASSERT_EQ(0, daemon_reload());
}

FIXTURE_TEARDOWN(unit)
{
	const char *argv[] = { "systemctl", "stop", self->unit, NULL };
	char out[256];

	run(out, sizeof(out), argv);
	/* stopped and no longer on disk, the unit is unloaded by systemd */
	if (self->file[0])
		unlink(self->file);
}

/* a daemon-reload takes 10-20 s under TCG */
TEST_F_TIMEOUT(unit, starts_ready_and_stops, 300)
{
	const char *run_argv[] = { "systemd-run", "--quiet", "-p", "Type=notify",
				   "--unit", self->unit, self->ready, NULL };
	const char *start_argv[] = { "systemctl", "start", self->unit, NULL };
	const char *stop_argv[] = { "systemctl", "stop", self->unit, NULL };
	char out[512], want[128], cg[PATH_MAX], exe[PATH_MAX];
	pid_t pid;
	ssize_t n;

	/* both wait for READY=1: Type=notify */
	ASSERT_EQ(0, run(out, sizeof(out),
			 variant->transient ? run_argv : start_argv));

	ASSERT_EQ(0, unit_prop(self->unit, "ActiveState", out, sizeof(out)));
	EXPECT_STREQ("active", out);
	ASSERT_EQ(0, unit_prop(self->unit, "SubState", out, sizeof(out)));
	EXPECT_STREQ("running", out);
	ASSERT_EQ(0, unit_prop(self->unit, "Type", out, sizeof(out)));
	EXPECT_STREQ("notify", out);
	ASSERT_EQ(0, unit_prop(self->unit, "MainPID", out, sizeof(out)));
	pid = atoi(out);
	ASSERT_LT(1, pid);
	snprintf(out, sizeof(out), "/proc/%d/exe", pid);
	n = readlink(out, exe, sizeof(exe) - 1);
	ASSERT_LT(0, n);
	exe[n] = '\0';
	EXPECT_STREQ(self->ready, exe);
	ASSERT_EQ(0, cgroup_of(pid, cg, sizeof(cg)));
	snprintf(want, sizeof(want), "/system.slice/%s", self->unit);
	EXPECT_STREQ(want, cg);

	ASSERT_EQ(0, run(out, sizeof(out), stop_argv));
	ASSERT_EQ(0, unit_prop(self->unit, "ActiveState", out, sizeof(out)));
	EXPECT_STREQ("inactive", out);
	EXPECT_FALSE(pid_alive(pid));
}

TEST_HARNESS_MAIN
