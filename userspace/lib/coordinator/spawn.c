// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The coordinator starts the new instance, and tells the old to expect it.
 *
 * Exec first: everything the child needs (its program's path, its
 * environment, its descriptors) is made before fork(), and between fork()
 * and exec() the child only moves descriptors into place and writes its
 * pid into a buffer made for it, all async-signal-safe: a threaded caller
 * is safe, and the child waits on nothing. Whatever happens to the
 * coordinator then, the child runs the new instance, which finds its
 * coordinator gone and exits; it holds none of the coordinator's
 * descriptors (close_range()), its upgrade lock least of all.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "coordinator/coordinator.h"

extern char **environ;

/* The child's descriptors: 0-2, BATON_CTL_FD and the exec report */
#define CHILD_CTL_FD	3
#define CHILD_REPORT_FD	4
#define FD_FLOOR	10	/* ours sit above what the child moves */
#define PID_ENV		"BATON_CTL_PID="
#define RUN_DIR_ENV	"BATON_RUN_DIR="
/* how long a signalled new instance may take to stop, or to exit */
#define CHILD_WAIT_MS	10000

struct child_plan {
	char path[PATH_MAX];
	char **envp;
	char pid_env[sizeof(PID_ENV) + 12];
	char run_dir_env[sizeof(RUN_DIR_ENV) + PATH_MAX / 2];
	int fd[CHILD_REPORT_FD + 1];	/* each the child's fd of that number */
	int netns;		/* the namespace it starts in, or -1 */
};

/* execvp()'s search, done before fork(): the path the child execs */
static int plan_path(struct child_plan *p, const char *name)
{
	const char *dirs = getenv("PATH"), *d, *end;

	if (strchr(name, '/')) {
		snprintf(p->path, sizeof(p->path), "%s", name);
		return 0;
	}
	for (d = dirs ? dirs : "/usr/local/bin:/usr/bin:/bin"; *d; d = end) {
		size_t len;

		end = strchr(d, ':') ?: d + strlen(d);
		len = end - d;
		snprintf(p->path, sizeof(p->path), "%.*s%s%s", (int)len, d,
			 len ? "/" : "", name);
		if (!access(p->path, X_OK))
			return 0;
		if (*end)
			end++;
	}
	return -ENOENT;
}

/*
 * Ours, minus any BATON_CTL_* and BATON_RUN_DIR, plus BATON_CTL_FD,
 * BATON_CTL_PID and BATON_RUN_DIR, the run directory of this upgrade:
 * where the new instance finds the old one, unless it sets its own.
 */
static int plan_env(struct child_plan *p, const char *run_dir)
{
	static const char fd_env[] = "BATON_CTL_FD=3";
	size_t n = 0, i, j = 0;

	while (environ[n])
		n++;
	p->envp = calloc(n + 4, sizeof(*p->envp));
	if (!p->envp)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		if (strncmp(environ[i], "BATON_CTL_", 10) &&
		    strncmp(environ[i], RUN_DIR_ENV, strlen(RUN_DIR_ENV)))
			p->envp[j++] = environ[i];
	p->envp[j++] = (char *)fd_env;
	snprintf(p->pid_env, sizeof(p->pid_env), "%s", PID_ENV);
	p->envp[j++] = p->pid_env;
	snprintf(p->run_dir_env, sizeof(p->run_dir_env), "%s%s", RUN_DIR_ENV,
		 run_dir);
	p->envp[j++] = p->run_dir_env;
	return 0;
}

/* A copy of fd above FD_FLOOR, close-on-exec, for child fd `at` */
static int plan_fd(struct child_plan *p, int at, int fd)
{
	p->fd[at] = fcntl(fd, F_DUPFD_CLOEXEC, FD_FLOOR);
	return p->fd[at] < 0 ? -errno : 0;
}

static void plan_free(struct child_plan *p)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(p->fd); i++) {
		if (p->fd[i] >= 0)
			close(p->fd[i]);
		p->fd[i] = -1;
	}
	if (p->netns >= 0)
		close(p->netns);
	p->netns = -1;
	free(p->envp);
	p->envp = NULL;
}

/* In the child: async-signal-safe calls only, then exec. */
static void __attribute__((noreturn))
child_exec(struct child_plan *p, char *const *argv)
{
	char *digits = p->pid_env + sizeof(PID_ENV) - 1, tmp[12];
	unsigned int pid = getpid(), n = 0;
	int i, err;

	do {
		tmp[n++] = '0' + pid % 10;
		pid /= 10;
	} while (pid);
	while (n)
		*digits++ = tmp[--n];
	*digits = '\0';
	setsid();
	for (i = 0; i < CHILD_REPORT_FD; i++)
		if (dup2(p->fd[i], i) < 0)
			_exit(127);
	if (dup3(p->fd[CHILD_REPORT_FD], CHILD_REPORT_FD, O_CLOEXEC) < 0)
		_exit(127);
	if (p->netns >= 0 && setns(p->netns, CLONE_NEWNET))
		goto report;
	close_range(CHILD_REPORT_FD + 1, ~0U, 0);
	execve(p->path, argv, p->envp);
report:
	err = errno;
	if (write(CHILD_REPORT_FD, &err, sizeof(err)) < 0)
		_exit(127);
	_exit(127);
}

/* stdin from /dev/null; stdout and stderr to the log, or the old's */
static int plan_stdio(struct baton_upgrade *up, struct child_plan *p)
{
	int null, log = -1, err;

	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0)
		return fail(up, -errno, "cannot open /dev/null: %s",
			    strerror(errno));
	if (up->o.log_path) {
		log = open(up->o.log_path,
			   O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (log < 0) {
			err = fail(up, -errno, "cannot open the new instance's log %s: %s",
				   up->o.log_path, strerror(errno));
			close(null);
			return err;
		}
	}
	err = plan_fd(p, 0, null) ?:
	      plan_fd(p, 1, log >= 0 ? log :
			    up->stdio[0] >= 0 ? up->stdio[0] : null) ?:
	      plan_fd(p, 2, log >= 0 ? log :
			    up->stdio[1] >= 0 ? up->stdio[1] : null);
	if (log >= 0)
		close(log);
	close(null);
	return err ? fail(up, err, "descriptors for the new instance: %s",
			  strerror(-err)) : 0;
}

/*
 * UPGRADE, with how phase 1's rounds end: the old instance hands us its
 * stdout and stderr, for the new.
 */
int announce(struct baton_upgrade *up)
{
	const struct nlattr *tb[BATON_A_MAX + 1];
	struct baton_msg *m = up->msg;
	unsigned int i;
	int err;

	msg_init(m, BATON_MSG_UPGRADE);
	err = msg_put_u32(m, BATON_A_FLAGS, up->o.flags) ?:
	      msg_put_u32(m, BATON_A_ROUNDS, up->o.precopy_rounds) ?:
	      msg_put_u64(m, BATON_A_ROUND_BYTES, up->o.precopy_bytes) ?:
	      msg_send(up->old, m);
	if (err)
		return err == -EPIPE || err == -ECONNRESET ? -ENOTCONN :
		       fail(up, err, "cannot reach the old instance: %s",
			    strerror(-err));
	err = expect(up, FROM_OLD, BATON_MSG_UPGRADE_ACK,
		     deadline_in(up->o.timeout_ms), tb);
	if (err)
		return err;
	for (i = 0; i < m->nfds && i < 2; i++) {
		up->stdio[i] = m->fds[i];
		m->fds[i] = -1;
	}
	msg_close_fds(m);
	return 0;
}

int spawn(struct baton_upgrade *up)
{
	int err;

	err = announce(up);
	if (err == -ENOTCONN && up->nheld) {
		/* gone, but its listeners are ours: the new one takes them */
		close(up->old);
		up->old = -1;
		up->old_gone_ns = now_ns();
		err = 0;
	}
	err = err ?: spawn_new(up);
	/* with the old gone already, the new one goes forward at once */
	return err ?: up->old < 0 ? -ENOTCONN : 0;
}

/*
 * Its exec did not end within the step: what the kernel says of the
 * child, for the report (a stopped child, or one asleep in the kernel,
 * and where)
 */
static int not_started(struct baton_upgrade *up, pid_t pid)
{
	char wchan[64], state = proc_state(pid, wchan, sizeof(wchan), NULL);

	return fail(up, -ETIMEDOUT, "the new instance (pid %d) did not start within %d ms: it had not reached exec (its state now '%c'%s%s); look for what holds up process starts on this host (memory, I/O, CPU) and try again, or give a longer --timeout-ms",
		    pid, up->o.timeout_ms, state ?: '-',
		    wchan[0] ? ", in " : "", wchan);
}

int spawn_new(struct baton_upgrade *up)
{
	struct child_plan p = { .fd = { -1, -1, -1, -1, -1 }, .netns = -1 };
	struct baton_msg *m = up->msg;
	int sp[2], report[2], err, child_err;
	struct pollfd pfd;
	pid_t pid;
	ssize_t n;

	if (plan_path(&p, up->o.argv[0]))
		return fail(up, -ENOENT, "cannot run '%s': no such program in PATH",
			    up->o.argv[0]);
	err = plan_env(&p, up->paths.dir) ?: plan_stdio(up, &p);
	/* above what the child moves into place, as its others are */
	if (!err && netns_child_fd(up) >= 0) {
		p.netns = fcntl(netns_child_fd(up), F_DUPFD_CLOEXEC, FD_FLOOR);
		if (p.netns < 0)
			err = fail(up, -errno, "descriptors for the new instance: %s",
				   strerror(errno));
	}
	if (err) {
		err = err == -ENOMEM ? fail(up, err, "out of memory") : err;
		goto free_plan;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
		err = fail(up, -errno, "socketpair: %s", strerror(errno));
		goto free_plan;
	}
	err = plan_fd(&p, CHILD_CTL_FD, sp[1]);
	close(sp[1]);
	up->new = sp[0];
	if (!err && pipe2(report, O_CLOEXEC) < 0)
		err = -errno;
	if (err) {
		err = fail(up, err, "a pipe for the new instance: %s",
			   strerror(-err));
		goto free_plan;
	}
	err = plan_fd(&p, CHILD_REPORT_FD, report[1]);
	close(report[1]);
	if (err) {
		err = fail(up, err, "a pipe for the new instance: %s",
			   strerror(-err));
		goto close_report;
	}
	/* its first message waits for it on its socket */
	msg_init(m, BATON_MSG_START);
	err = msg_put_u32(m, BATON_A_TIMEOUT_MS, up->o.timeout_ms) ?:
	      msg_put_u32(m, BATON_A_BLACKOUT_MS, up->o.blackout_ms) ?:
	      msg_put_u32(m, BATON_A_FLAGS, up->o.flags & BATON_START_F_ALL) ?:
	      msg_send(up->new, m);
	if (err) {
		err = fail(up, err, "cannot write to the new instance's socket: %s",
			   strerror(-err));
		goto close_report;
	}
	pid = fork();
	if (pid < 0) {
		err = fail(up, -errno, "fork: %s", strerror(errno));
		goto close_report;
	}
	if (pid == 0)
		child_exec(&p, up->o.argv);
	up->r.new_pid = pid;
	plan_free(&p);

	msg_init(m, BATON_MSG_EXPECT);
	err = up->old < 0 ? 0 : msg_put_u32(m, BATON_A_PID, pid) ?:
				msg_send(up->old, m);
	if (err == -EPIPE || err == -ECONNRESET)
		err = 0;	/* gone: the next step sees it */
	if (err) {
		err = fail(up, err, "cannot reach the old instance: %s",
			   strerror(-err));
		goto close_report;
	}
	/* the pipe closes at exec, or brings exec's errno */
	pfd = (struct pollfd){ .fd = report[0], .events = POLLIN };
	if (poll(&pfd, 1, up->o.timeout_ms) != 1) {
		err = not_started(up, pid);
		goto close_report;
	}
	n = read(report[0], &child_err, sizeof(child_err));
	if (n == sizeof(child_err)) {
		err = fail(up, -child_err, "cannot run '%s': %s", p.path,
			   strerror(child_err));
		goto close_report;
	}
	reach(up, BATON_PHASE_SPAWNED);
close_report:
	close(report[0]);
free_plan:
	plan_free(&p);
	return err;
}

/*
 * Up to CHILD_WAIT_MS for a change of pid's state that waitid()'s options
 * name, its wait status into *status if asked: 0, -ETIMEDOUT, or -errno.
 * A child the kernel holds (asleep in state D, or in a frozen cgroup)
 * neither stops nor dies on a signal until it is let go, and the
 * coordinator must not wait on it without end: it holds the upgrade.
 */
static int child_wait(pid_t pid, int options, int *status)
{
	__u64 end = now_ns() + CHILD_WAIT_MS * 1000000ULL;
	siginfo_t si;

	for (;;) {
		memset(&si, 0, sizeof(si));
		if (waitid(P_PID, pid, &si, options | WNOHANG) < 0)
			return -errno;
		if (si.si_pid == pid)
			break;
		if (now_ns() >= end)
			return -ETIMEDOUT;
		usleep(1000);
	}
	if (status)
		*status = si.si_code == CLD_EXITED ? (si.si_status & 0xff) << 8 :
			  si.si_code == CLD_DUMPED ? si.si_status | 0x80 :
			  si.si_status;
	return 0;
}

/*
 * Its pid into the report's reason: killed, and not gone within
 * CHILD_WAIT_MS, with what the kernel says of it
 */
static void new_held(struct baton_upgrade *up, const char *what)
{
	size_t len = strlen(up->r.reason);
	char wchan[64], state;

	state = proc_state(up->r.new_pid, wchan, sizeof(wchan), NULL);
	snprintf(up->r.reason + len, sizeof(up->r.reason) - len,
		 "%sthe new instance (pid %d) did not %s within %d ms (state '%c'%s%s): the kernel holds it; it runs none of its code again, and is gone once the kernel lets it go",
		 len ? "; " : "", up->r.new_pid, what, CHILD_WAIT_MS,
		 state ?: '-', wchan[0] ? " in " : "", wchan);
	pr_warn(&up->log, "the new instance (pid %d) did not %s within %d ms (state '%c'%s%s)",
		up->r.new_pid, what, CHILD_WAIT_MS, state ?: '-',
		wchan[0] ? " in " : "", wchan);
}

/*
 * The new one goes, if it has not; its exit status is kept. Once killed
 * it runs no more code of its own, even when the kernel holds it a while.
 */
void reap_new(struct baton_upgrade *up)
{
	if (up->r.new_pid > 0 && !up->new_reaped) {
		kill(up->r.new_pid, SIGKILL);
		if (!child_wait(up->r.new_pid, WEXITED, &up->new_status))
			up->new_reaped = true;
		else
			new_held(up, "exit on SIGKILL");
	}
	if (up->new >= 0) {
		close(up->new);
		up->new = -1;
	}
}

/*
 * Whether the service's pid file names pid: an instance writes it once it
 * holds the service's lock, before it takes any connection (activate.c)
 */
static bool pid_file_names(const char *path, pid_t pid)
{
	char buf[32] = "";
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 && strtol(buf, NULL, 10) == pid;
}

/*
 * Stops the new instance and looks at what it sent: NEW_ACTIVE if ACTIVE
 * is there (it serves: it goes on); else, with spare_locked, NEW_LOCKED if
 * it holds the service's lock, as its pid in the pid file says (it is
 * activating: it goes on, for in
 * repair mode it may already have taken connections out of repair mode,
 * which a kill would close with a FIN); else NEW_GONE (it is killed, and
 * can never activate). So the coordinator gives up on it without a race.
 */
enum new_fate new_active_unread(struct baton_upgrade *up,
				const struct nlattr **tb, bool spare_locked)
{
	struct baton_msg *m = up->msg;

	if (up->r.new_pid <= 0 || up->new_reaped)
		return NEW_GONE;
	/*
	 * stopped for sure, not just signalled, before its socket is read.
	 * One the kernel holds past CHILD_WAIT_MS (state D, a frozen
	 * cgroup) runs none of its own code either, and stops as soon as it
	 * is let go, the SIGSTOP pending
	 */
	kill(up->r.new_pid, SIGSTOP);
	child_wait(up->r.new_pid, WSTOPPED | WEXITED | WNOWAIT, NULL);
	while (up->new >= 0 && !msg_read(up->new, m, 0, tb)) {
		msg_close_fds(m);
		if (m->nlh->nlmsg_type == BATON_MSG_ACTIVE) {
			kill(up->r.new_pid, SIGCONT);
			return NEW_ACTIVE;
		}
	}
	if (spare_locked && up->new >= 0 &&
	    pid_file_names(up->paths.pid, up->r.new_pid)) {
		kill(up->r.new_pid, SIGCONT);
		return NEW_LOCKED;
	}
	reap_new(up);
	return NEW_GONE;
}
