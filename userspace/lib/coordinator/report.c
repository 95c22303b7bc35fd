// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * What an upgrade reached, and when; if it failed, the first reason, which
 * is the one that counts.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "coordinator/coordinator.h"

static const char *const phase_names[] = {
	[BATON_PHASE_NONE]	  = "none",
	[BATON_PHASE_ATTACHED]	  = "attached",
	[BATON_PHASE_SPAWNED]	  = "spawned",
	[BATON_PHASE_READY]	  = "ready",
	[BATON_PHASE_DEACTIVATED] = "deactivated",
	[BATON_PHASE_ACTIVE]	  = "active",
	[BATON_PHASE_DONE]	  = "done",
	[BATON_PHASE_ROLLED_BACK] = "rolled-back",
	[BATON_PHASE_FAILED]	  = "failed",
};

const char *baton_phase_name(enum baton_phase phase)
{
	return phase < __BATON_PHASE_END ? phase_names[phase] : "unknown";
}

void reach(struct baton_upgrade *up, enum baton_phase phase)
{
	up->r.phase = phase;
	up->r.t_ns[phase] = now_ns();
}

int fail(struct baton_upgrade *up, int err, const char *fmt, ...)
{
	va_list ap;

	if (up->r.error)
		return err;	/* the first reason is the one that counts */
	va_start(ap, fmt);
	vsnprintf(up->r.reason, sizeof(up->r.reason), fmt, ap);
	va_end(ap);
	up->r.error = err;
	pr_err(&up->log, "%s", up->r.reason);
	return err;
}

const struct baton_upgrade_report *
baton_upgrade_report(const struct baton_upgrade *up)
{
	return &up->r;
}

/* The last line of the new instance's log, if it has one. */
static void last_words(const char *path, char *buf, size_t len)
{
	char tail[512];
	ssize_t n;
	char *end, *start;
	int fd;

	buf[0] = '\0';
	if (!path)
		return;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = pread(fd, tail, sizeof(tail) - 1,
		  lseek(fd, 0, SEEK_END) > (off_t)sizeof(tail) - 1 ?
		  lseek(fd, 0, SEEK_END) - (off_t)sizeof(tail) + 1 : 0);
	close(fd);
	if (n <= 0)
		return;
	tail[n] = '\0';
	end = tail + n;
	while (end > tail && end[-1] == '\n')
		*--end = '\0';
	start = strrchr(tail, '\n');
	snprintf(buf, len, "; its log %s ends: %s", path, start ? start + 1 : tail);
}

/* Why the new instance's end of its socket closed before it was active. */
void new_gone_why(struct baton_upgrade *up, char *buf, size_t len)
{
	char words[300];
	pid_t pid = up->r.new_pid;
	int st, tries;

	last_words(up->o.log_path, words, sizeof(words));
	/* its socket closes a moment before it has exited */
	for (tries = 0; tries < 50 && !up->new_reaped; tries++) {
		if (waitpid(pid, &up->new_status, WNOHANG) == pid)
			up->new_reaped = true;
		else
			usleep(2000);
	}
	st = up->new_status;
	if (up->new_reaped && WIFEXITED(st))
		snprintf(buf, len, "the new instance (pid %d) exited with status %d before it was active%s",
			 pid, WEXITSTATUS(st), words);
	else if (up->new_reaped && WIFSIGNALED(st))
		snprintf(buf, len, "the new instance (pid %d) was killed by signal %d (%s) before it was active%s",
			 pid, WTERMSIG(st), strsignal(WTERMSIG(st)), words);
	else
		snprintf(buf, len, "the new instance (pid %d) closed its connection before it was active%s",
			 pid, words);
}
