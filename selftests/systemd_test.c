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
 *  3. kvd from contrib/systemd/kvd.service (its paths those of the build
 *     under test, port 0) under 200 client connections, each checking
 *     every INCR it sends: 20 'systemctl reload', each an upgrade, after
 *     each of which MainPID is the new instance (kvd-v2, alive, the old
 *     gone) and the unit active; no client sees an error or a close (each
 *     round of 200 INCRs, then 20 ms of rest; batonctl's steps 30 s, not
 *     5, for ASan in an emulated VM); then
 *     'systemctl stop' leaves no process in the unit's cgroup. The reloads'
 *     times and the clients' longest round are printed.
 *  4. the same unit (FileDescriptorStoreMax=, kvd --fdstore) under a
 *     storm of 200 connects a second: kill -9 of the serving kvd, and
 *     Restart=on-failure starts one that takes the listener back from
 *     systemd's store, on the same port: no connect is refused, and every
 *     connection made once the killed kvd was gone is answered (PING); the
 *     ones the killed kvd had accepted are lost with it, and counted.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
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

/* kvd.service, as contrib/systemd/ has it, runs the build under test */
#define KVD_UNIT	"kvd.service"
#define KVD_CLIENTS	200
#define KVD_RELOADS	20

static double mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/*
 * contrib/systemd/kvd.service into /run/systemd/system: /usr/bin/ is
 * $BATON_BIN, the port 0, and the sanitizers' options of this run.
 */
static int kvd_unit_write(const char *bindir)
{
	static const char up[] = "upgrade kvd ",
			  slow[] = "upgrade kvd --timeout-ms 30000 ";
	char src[PATH_MAX], line[1024], *at;
	FILE *in, *out;
	int err = 0;

	snprintf(src, sizeof(src), "%s/../../contrib/systemd/kvd.service",
		 bindir);
	in = fopen(src, "re");
	if (!in)
		return -errno;
	out = fopen("/run/systemd/system/" KVD_UNIT, "we");
	if (!out) {
		err = -errno;
		fclose(in);
		return err;
	}
	while (fgets(line, sizeof(line), in)) {
		char *p = line;

		/*
		 * an ASan kvd in an emulated VM: 5 s a step is short. First,
		 * before the paths below move p past "upgrade kvd "
		 */
		at = strstr(line, up);
		if (!strncmp(line, "Exec", 4) && at &&
		    strlen(line) + strlen(slow) < sizeof(line)) {
			memmove(at + strlen(slow), at + strlen(up),
				strlen(at + strlen(up)) + 1);
			memcpy(at, slow, strlen(slow));
		}
		if (!strncmp(line, "Exec", 4)) {
			while ((at = strstr(p, "/usr/bin/"))) {
				fprintf(out, "%.*s%s/", (int)(at - p), p, bindir);
				p = at + strlen("/usr/bin/");
			}
			if ((at = strstr(p, "127.0.0.1:6379"))) {
				fprintf(out, "%.*s127.0.0.1:0", (int)(at - p), p);
				p = at + strlen("127.0.0.1:6379");
			}
		}
		fputs(p, out);
		if (!strcmp(line, "[Service]\n"))
			fprintf(out, "Environment=ASAN_OPTIONS=%s UBSAN_OPTIONS=%s\n",
				getenv("ASAN_OPTIONS") ?: "",
				getenv("UBSAN_OPTIONS") ?: "");
	}
	if (ferror(in))
		err = -EIO;
	fclose(in);
	if (fclose(out) && !err)
		err = -errno;
	return err;
}

/* The TCP port pid listens on: its socket's inode in /proc/net/tcp */
static int listen_port_of(pid_t pid)
{
	char path[64], link[64], line[512];
	unsigned long inode, ino;
	unsigned int port, state;
	struct dirent *d;
	int found = -ENOENT;
	DIR *dir;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/net/tcp", pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	dir = opendir(path);
	if (!dir) {
		fclose(f);
		return -errno;
	}
	while (found < 0 && fgets(line, sizeof(line), f)) {
		/* "sl local rem st tx:rx tr:when retrnsmt uid timeout inode" */
		if (sscanf(line, " %*d: %*x:%x %*x:%*x %x %*x:%*x %*x:%*x %*x %*u %*u %lu",
			   &port, &state, &inode) != 3 || state != 0x0a)
			continue;
		rewinddir(dir);
		while ((d = readdir(dir))) {
			char fd[PATH_MAX];
			ssize_t n;

			snprintf(fd, sizeof(fd), "%s/%s", path, d->d_name);
			n = readlink(fd, link, sizeof(link) - 1);
			if (n <= 0)
				continue;
			link[n] = '\0';
			if (sscanf(link, "socket:[%lu]", &ino) == 1 && ino == inode) {
				found = port;
				break;
			}
		}
	}
	closedir(dir);
	fclose(f);
	return found;
}

/*
 * The clients, in a child process until stop is closed: n connections,
 * each sending INCR of a key of its own, all at once, then reading every
 * reply, which must be one more than the last. Writes to report
 * "requests errors longest-round-ms" and the first error, if any.
 */
static void kvd_clients(int port, int stop, int report)
{
	int n = KVD_CLIENTS;
	long long requests = 0, errors = 0, *count;
	char key[32], want[32], reply[256], first[256] = "";
	double longest = 0, t;
	int *fds, i;

	fds = calloc(n, sizeof(*fds));
	count = calloc(n, sizeof(*count));
	if (!fds || !count)
		_exit(1);
	for (i = 0; i < n; i++) {
		fds[i] = client_connect(AF_INET, port);
		if (fds[i] < 0) {
			dprintf(report, "0 1 0 connect: %s\n", strerror(-fds[i]));
			_exit(1);
		}
	}
	for (;;) {
		struct pollfd p = { .fd = stop, .events = POLLIN };

		if (poll(&p, 1, 0) != 0)
			break;
		t = mono_ms();
		for (i = 0; i < n; i++) {
			const char *argv[] = { "INCR", key };

			snprintf(key, sizeof(key), "client-%d", i);
			if (resp_send(fds[i], 2, argv) && !errors++)
				snprintf(first, sizeof(first), "client %d: send failed", i);
		}
		for (i = 0; i < n; i++) {
			ssize_t len = resp_reply(fds[i], reply, sizeof(reply), 20000);

			snprintf(want, sizeof(want), ":%lld\r\n", ++count[i]);
			requests++;
			if (len < 0 || strcmp(reply, want)) {
				if (!errors++)
					snprintf(first, sizeof(first),
						 "client %d: wanted %.*s, got %s", i,
						 (int)strlen(want) - 2, want,
						 len < 0 ? strerror(-len) : reply);
				_exit(dprintf(report, "%lld %lld %.3f %s\n",
					      requests, errors, longest, first) < 0);
			}
		}
		t = mono_ms() - t;
		if (t > longest)
			longest = t;
		usleep(20000);	/* leave the emulated CPUs to the upgrade */
	}
	dprintf(report, "%lld %lld %.3f %s\n", requests, errors, longest, first);
	_exit(0);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

FIXTURE(kvd_unit) {
	pid_t clients;
	int stop;		/* closed: the clients stop */
	int report;		/* what they saw */
};

/*
 * fn(port, stop, report) in a child process, which it ends: self->stop
 * closed tells it to stop, self->report is what it says
 */
static int clients_fork(FIXTURE_DATA(kvd_unit) *self,
			void (*fn)(int port, int stop, int report), int port)
{
	int stop[2], report[2], err;

	if (pipe2(stop, O_CLOEXEC))
		return -errno;
	if (pipe2(report, O_CLOEXEC)) {
		err = -errno;
		goto close_stop;
	}
	self->clients = fork();
	if (self->clients < 0) {
		err = -errno;
		close(report[0]);
		close(report[1]);
		goto close_stop;
	}
	if (!self->clients) {
		close(stop[1]);
		close(report[0]);
		fn(port, stop[0], report[1]);
		_exit(0);
	}
	close(stop[0]);
	close(report[1]);
	self->stop = stop[1];
	self->report = report[0];
	return 0;
close_stop:
	close(stop[0]);
	close(stop[1]);
	return err;
}

FIXTURE_SETUP(kvd_unit)
{
	const char *bindir = getenv("BATON_BIN");

	self->clients = -1;
	self->stop = self->report = -1;
	ASSERT_NE(NULL, bindir);
	ASSERT_EQ(0, kvd_unit_write(bindir));
	ASSERT_EQ(0, daemon_reload());
}

FIXTURE_TEARDOWN(kvd_unit)
{
	const char *argv[] = { "systemctl", "stop", KVD_UNIT, NULL };
	char out[256];

	if (self->clients > 0) {
		kill(self->clients, SIGKILL);
		waitpid(self->clients, NULL, 0);
	}
	if (self->stop >= 0)
		close(self->stop);
	if (self->report >= 0)
		close(self->report);
	run(out, sizeof(out), argv);
	unlink("/run/systemd/system/" KVD_UNIT);
}

/* 20 reloads of an ASan kvd under TCG, two daemon-reloads */
TEST_F_TIMEOUT(kvd_unit, reload_upgrades_under_clients, 900)
{
	const char *start_argv[] = { "systemctl", "start", KVD_UNIT, NULL };
	const char *reload_argv[] = { "systemctl", "reload", KVD_UNIT, NULL };
	const char *stop_argv[] = { "systemctl", "stop", KVD_UNIT, NULL };
	char out[4096], exe[PATH_MAX], want[PATH_MAX], cg[PATH_MAX], first[256];
	double took[KVD_RELOADS], longest;
	long long requests, errors, before;
	int port, i;
	pid_t pid, prev;
	ssize_t n;
	FILE *f;

	ASSERT_EQ(0, run(out, sizeof(out), start_argv)) {
		TH_LOG("systemctl start: %s", out);
	}
	ASSERT_EQ(0, unit_prop(KVD_UNIT, "MainPID", out, sizeof(out)));
	pid = atoi(out);
	ASSERT_LT(1, pid);
	port = listen_port_of(pid);
	ASSERT_LT(0, port);
	ASSERT_EQ(0, unit_prop(KVD_UNIT, "ControlGroup", cg, sizeof(cg)));

	ASSERT_EQ(0, clients_fork(self, kvd_clients, port));

	snprintf(want, sizeof(want), "%s/kvd-v2", getenv("BATON_BIN"));
	for (i = 0; i < KVD_RELOADS; i++) {
		double t = mono_ms();
		int rc = run(out, sizeof(out), reload_argv);

		took[i] = mono_ms() - t;
		ASSERT_EQ(0, rc) {
			TH_LOG("reload %d: %s", i + 1, out);
		}
		prev = pid;
		ASSERT_EQ(0, unit_prop(KVD_UNIT, "MainPID", out, sizeof(out)));
		pid = atoi(out);
		EXPECT_NE(prev, pid) {
			TH_LOG("reload %d: MainPID is still %d", i + 1, prev);
		}
		snprintf(out, sizeof(out), "/proc/%d/exe", pid);
		n = readlink(out, exe, sizeof(exe) - 1);
		ASSERT_LT(0, n) {
			TH_LOG("reload %d: MainPID %d is not running", i + 1, pid);
		}
		exe[n] = '\0';
		EXPECT_STREQ(want, exe);
		EXPECT_EQ(0, pid_wait_gone(prev, 10000)) {
			TH_LOG("reload %d: the old instance %d is still there",
			       i + 1, prev);
		}
		ASSERT_EQ(0, unit_prop(KVD_UNIT, "ActiveState", out, sizeof(out)));
		EXPECT_STREQ("active", out);
		ASSERT_EQ(0, unit_prop(KVD_UNIT, "SubState", out, sizeof(out)));
		EXPECT_STREQ("running", out);
	}

	/* the clients stop, and say what they saw */
	close(self->stop);
	self->stop = -1;
	n = read_to_eof(self->report, out, sizeof(out) - 1, 60000);
	ASSERT_LT(0, n);
	out[n] = '\0';
	first[0] = '\0';
	ASSERT_LE(3, sscanf(out, "%lld %lld %lf %255[^\n]", &requests, &errors,
			    &longest, first));
	EXPECT_EQ(0, errors) {
		TH_LOG("%lld client errors, the first: %s", errors, first);
	}
	EXPECT_EQ(0, wait_exit(self->clients, 10000));
	self->clients = -1;
	before = requests;
	EXPECT_LT(KVD_CLIENTS * KVD_RELOADS, before);

	qsort(took, KVD_RELOADS, sizeof(took[0]), cmp_double);
	TH_LOG("%d reloads under %d clients: systemctl reload took %.0f ms median, %.0f min, %.0f max; %lld requests, %lld errors; longest round of %d INCRs %.0f ms",
	       KVD_RELOADS, KVD_CLIENTS, took[KVD_RELOADS / 2], took[0],
	       took[KVD_RELOADS - 1], requests, errors, KVD_CLIENTS, longest);

	/* stopped, no process is left in the unit's cgroup */
	ASSERT_EQ(0, run(out, sizeof(out), stop_argv));
	ASSERT_EQ(0, unit_prop(KVD_UNIT, "ActiveState", out, sizeof(out)));
	EXPECT_STREQ("inactive", out);
	EXPECT_FALSE(pid_alive(pid));
	snprintf(out, sizeof(out), "/sys/fs/cgroup%s/cgroup.procs", cg);
	f = fopen(out, "re");
	if (f) {	/* systemd removes it once empty */
		EXPECT_EQ(NULL, fgets(out, sizeof(out), f)) {
			TH_LOG("left in %s: pid %s", cg, out);
		}
		fclose(f);
	}
}

#define STORM_PER_S	200
#define STORM_MAX	4000

/*
 * The storm, in a child process until stop is closed: a connect every
 * 1/STORM_PER_S s, each connection kept; then a PING on each, its answer
 * awaited. Writes to report, after the kill time it reads from stop
 * (CLOCK_MONOTONIC ms, as text, before the close):
 * "connects refused other-errors answered-after lost-before answered-before".
 */
static void storm(int port, int stop, int report)
{
	long long refused = 0, errors = 0, after = 0, lost = 0, before = 0;
	static double at[STORM_MAX];
	static int fds[STORM_MAX];
	const char *ping[] = { "PING" };
	char reply[64], line[64] = "";
	double gone = 0;
	struct rlimit rl;
	int n = 0, i;
	ssize_t len;

	/* a unit's soft limit is 1,024: STORM_MAX connections need more */
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	for (;;) {
		struct pollfd p = { .fd = stop, .events = POLLIN };

		if (poll(&p, 1, 1000 / STORM_PER_S) != 0 || n == STORM_MAX)
			break;
		at[n] = mono_ms();
		fds[n] = client_connect(AF_INET, port);
		if (fds[n] == -ECONNREFUSED)
			refused++;
		else if (fds[n] < 0)
			errors++;
		else
			n++;
	}
	len = read_to_eof(stop, line, sizeof(line) - 1, 10000);
	if (len > 0) {
		line[len] = '\0';
		gone = atof(line);
	}
	for (i = 0; i < n; i++) {
		bool ok = !resp_send(fds[i], 1, ping) &&
			  resp_reply(fds[i], reply, sizeof(reply), 30000) > 0 &&
			  !strcmp(reply, "+PONG\r\n");

		if (at[i] >= gone)
			after += ok;
		else if (ok)
			before++;
		else
			lost++;
		if (at[i] >= gone && !ok)
			errors++;
	}
	dprintf(report, "%d %lld %lld %lld %lld %lld\n", n, refused, errors,
		after, lost, before);
	_exit(0);
}

/* a restart of an ASan kvd under TCG, and a daemon-reload */
TEST_F_TIMEOUT(kvd_unit, crash_keeps_listeners, 600)
{
	const char *start_argv[] = { "systemctl", "start", KVD_UNIT, NULL };
	long long connects, refused, errors, after, lost, before;
	char out[4096], text[64];
	int port, i;
	pid_t pid, next = 0;
	double gone;
	ssize_t n;

	ASSERT_EQ(0, run(out, sizeof(out), start_argv)) {
		TH_LOG("systemctl start: %s", out);
	}
	ASSERT_EQ(0, unit_prop(KVD_UNIT, "FileDescriptorStoreMax", out, sizeof(out)));
	EXPECT_LT(0, atoi(out));
	ASSERT_EQ(0, unit_prop(KVD_UNIT, "MainPID", out, sizeof(out)));
	pid = atoi(out);
	ASSERT_LT(1, pid);
	port = listen_port_of(pid);
	ASSERT_LT(0, port);

	ASSERT_EQ(0, clients_fork(self, storm, port));

	sleep(1);
	ASSERT_EQ(0, kill(pid, SIGKILL));
	ASSERT_EQ(0, pid_wait_gone(pid, 10000));
	gone = mono_ms();
	/* Restart=on-failure: a new kvd, active once it said READY=1 */
	for (i = 0; i < 1200 && !next; i++) {
		usleep(100000);
		if (unit_prop(KVD_UNIT, "MainPID", out, sizeof(out)) ||
		    atoi(out) <= 1 || atoi(out) == pid)
			continue;
		if (!unit_prop(KVD_UNIT, "ActiveState", text, sizeof(text)) &&
		    !strcmp(text, "active"))
			next = atoi(out);
	}
	ASSERT_LT(1, next) {
		TH_LOG("no new kvd became active after the kill");
	}
	EXPECT_EQ(port, listen_port_of(next));
	ASSERT_EQ(0, unit_prop(KVD_UNIT, "NRestarts", out, sizeof(out)));
	EXPECT_STREQ("1", out);
	sleep(1);	/* the storm goes on against the new one */

	dprintf(self->stop, "%.3f", gone);
	close(self->stop);
	self->stop = -1;
	n = read_to_eof(self->report, out, sizeof(out) - 1, 120000);
	ASSERT_LT(0, n);
	out[n] = '\0';
	ASSERT_EQ(6, sscanf(out, "%lld %lld %lld %lld %lld %lld", &connects,
			    &refused, &errors, &after, &lost, &before));
	EXPECT_EQ(0, wait_exit(self->clients, 10000));
	self->clients = -1;
	EXPECT_EQ(0, refused);
	EXPECT_EQ(0, errors);
	EXPECT_LT(0, after);
	EXPECT_LT(0, before + lost);
	TH_LOG("kill -9 under %d connects/s: %lld connects, %lld refused, %lld other errors; %lld made after the kill all answered by the restarted kvd on the same port; of the %lld made before, %lld lost with the killed kvd",
	       STORM_PER_S, connects, refused, errors, after, before + lost,
	       lost);
}

TEST_HARNESS_MAIN
