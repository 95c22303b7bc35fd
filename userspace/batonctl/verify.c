// SPDX-License-Identifier: GPL-2.0-only
/*
 * batonctl upgrade --verify CMD: after activation, CMD runs (through
 * /bin/sh -c, each run with a deadline of its own) over a window; if a run
 * fails, the upgrade goes back to the old instance's command line, which
 * is read from /proc/PID/cmdline before anything begins.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "batonctl.h"

/* "10s", "500ms", "2m", or a number of seconds: milliseconds, or -EINVAL */
int parse_duration_ms(const char *s)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || v < 0)
		return -EINVAL;
	if (!strcmp(end, "ms"))
		;
	else if (!*end || !strcmp(end, "s"))
		v *= 1000;
	else if (!strcmp(end, "m"))
		v *= 60000;
	else
		return -EINVAL;
	return v >= 1 && v <= 24 * 3600 * 1000 ? (int)v : -EINVAL;
}

/*
 * word onto line at *at, for a shell to read back as it is: as it stands
 * if it is made of characters no shell treats specially, else in single
 * quotes, each ' as '\''. -E2BIG if it does not fit.
 */
int shell_quote(char *line, size_t len, size_t *at, const char *word)
{
	static const char plain[] = "abcdefghijklmnopqrstuvwxyz"
				    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
				    "_@%+=:,./-";
	bool quote = !*word || word[strspn(word, plain)];
	size_t n = *at, need = (n ? 1 : 0) + (quote ? 2 : 0);
	const char *c;

	for (c = word; *c; c++)
		need += *c == '\'' ? 4 : 1;
	if (n + need >= len)
		return -E2BIG;
	if (n)
		line[n++] = ' ';
	if (quote)
		line[n++] = '\'';
	for (c = word; *c; c++) {
		if (*c == '\'') {
			memcpy(line + n, "'\\''", 4);
			n += 4;
		} else {
			line[n++] = *c;
		}
	}
	if (quote)
		line[n++] = '\'';
	line[n] = '\0';
	*at = n;
	return 0;
}

/*
 * The old instance's command line, as its argv and as one line a shell
 * reads back as it was (for the journal and the reports). A relative
 * program path is the one it ran: /proc/PID/exe.
 */
int verify_old_command(struct verify *v, pid_t pid)
{
	char path[64], *p;
	size_t len = 0, line = 0;
	unsigned int n = 0;
	ssize_t got;
	int fd, err = 0;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while ((got = read(fd, v->old_buf + len, sizeof(v->old_buf) - 1 - len)) > 0)
		len += got;
	if (got < 0 || !len || len == sizeof(v->old_buf) - 1) {
		err = got < 0 ? -errno : len ? -E2BIG : -ENOENT;
		goto close_fd;
	}
	v->old_buf[len] = '\0';
	for (p = v->old_buf; p < v->old_buf + len && n < VERIFY_MAX_ARGS;
	     p += strlen(p) + 1)
		v->old_argv[n++] = p;
	if (p < v->old_buf + len) {
		err = -E2BIG;
		goto close_fd;
	}
	v->old_argv[n] = NULL;
	if (v->old_argv[0][0] != '/' && strchr(v->old_argv[0], '/')) {
		snprintf(path, sizeof(path), "/proc/%d/exe", pid);
		got = readlink(path, v->old_exe, sizeof(v->old_exe) - 1);
		if (got <= 0 || got == sizeof(v->old_exe) - 1) {
			err = got < 0 ? -errno : -ENAMETOOLONG;
			goto close_fd;
		}
		v->old_exe[got] = '\0';
		v->old_argv[0] = v->old_exe;
	}
	for (n = 0; !err && v->old_argv[n]; n++)
		err = shell_quote(v->old_line, sizeof(v->old_line), &line,
				  v->old_argv[n]);
close_fd:
	close(fd);
	return err;
}

/*
 * One run of CMD, with a deadline: 0 if it exited 0, -EPROTO with why
 * filled if it did not. Its output goes to our standard error, never into
 * the report.
 */
static int verify_run(struct verify *v, const char *service, pid_t pid)
{
	struct pollfd pfd = { .events = POLLIN };
	char pidstr[16];
	pid_t child;
	int status, err;

	child = fork();
	if (child < 0)
		return -errno;
	if (!child) {
		setpgid(0, 0);
		dup2(STDERR_FILENO, STDOUT_FILENO);
		snprintf(pidstr, sizeof(pidstr), "%d", pid);
		setenv("BATON_SERVICE", service, 1);
		setenv("BATON_PID", pidstr, 1);
		execl("/bin/sh", "sh", "-c", v->cmd, (char *)NULL);
		_exit(127);
	}
	setpgid(child, child);	/* before the kill below, whoever runs first */
	pfd.fd = syscall(SYS_pidfd_open, child, 0);
	if (pfd.fd < 0 || poll(&pfd, 1, v->run_ms) <= 0) {
		kill(-child, SIGKILL);
		kill(child, SIGKILL);
		/* one the kernel holds (state D) goes only once let go */
		if (pfd.fd >= 0 && poll(&pfd, 1, VERIFY_KILL_MS) <= 0) {
			close(pfd.fd);
			/* whole within why's 128 bytes */
			snprintf(v->why, sizeof(v->why),
				 "no answer within its deadline of %d ms (--verify-timeout-ms); killed, it did not exit in %d ms: the kernel holds it",
				 v->run_ms, VERIFY_KILL_MS);
			return -EPROTO;
		}
	}
	if (pfd.fd >= 0)
		close(pfd.fd);
	if (waitpid(child, &status, 0) < 0)
		return -errno;
	if (WIFEXITED(status) && !WEXITSTATUS(status))
		return 0;
	err = -EPROTO;
	if (WIFEXITED(status))
		snprintf(v->why, sizeof(v->why), "exit status %d",
			 WEXITSTATUS(status));
	else if (WTERMSIG(status) == SIGKILL && pfd.fd >= 0)
		snprintf(v->why, sizeof(v->why),
			 "no answer within its deadline of %d ms (--verify-timeout-ms)",
			 v->run_ms);
	else
		snprintf(v->why, sizeof(v->why), "killed by signal %d",
			 WTERMSIG(status));
	return err;
}

/*
 * CMD over the window, from now: every VERIFY_INTERVAL_MS, the first at
 * once, until one fails or the window ends. 0 when every run passed.
 */
int verify_window(struct verify *v, const char *service, pid_t pid)
{
	__u64 start = mono_ns(), end = start + v->for_ms * 1000000ULL, t;
	int err;

	v->runs = 0;
	for (;;) {
		v->runs++;
		err = verify_run(v, service, pid);
		t = mono_ns();
		if (err) {
			v->failed = true;
			v->at_ms = (t - start) / 1e6;
			if (err != -EPROTO)
				snprintf(v->why, sizeof(v->why),
					 "could not run it: %s", strerror(-err));
			return -EPROTO;
		}
		if (t >= end)
			return 0;
		if (end - t > VERIFY_INTERVAL_MS * 1000000ULL)
			usleep(VERIFY_INTERVAL_MS * 1000);
		else
			usleep((end - t) / 1000);
	}
}
