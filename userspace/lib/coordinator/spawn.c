// SPDX-License-Identifier: LGPL-2.1-or-later
/* The coordinator starts the new instance, and tells the old to expect it. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coordinator/coordinator.h"

/*
 * The child waits on a pipe until the old instance knows its pid, so that
 * its hello is never refused; a CLOEXEC pipe reports a failed exec.
 */
int spawn(struct baton_upgrade *up)
{
	int sp[2], gate[2], report[2], err, child_err = 0;
	struct baton_msg *m = up->msg;
	const struct nlattr *tb[BATON_A_MAX + 1];
	pid_t pid;
	char c;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
		return fail(up, -errno, "socketpair: %s", strerror(errno));
	if (pipe2(gate, O_CLOEXEC) < 0) {
		err = fail(up, -errno, "pipe: %s", strerror(errno));
		goto close_sp;
	}
	if (pipe2(report, O_CLOEXEC) < 0) {
		err = fail(up, -errno, "pipe: %s", strerror(errno));
		goto close_gate;
	}
	pid = fork();
	if (pid < 0) {
		err = fail(up, -errno, "fork: %s", strerror(errno));
		goto close_report;
	}
	if (pid == 0) {
		char fdstr[16];
		int fd;

		setsid();
		fd = open("/dev/null", O_RDONLY);
		dup2(fd, 0);
		if (up->o.log_path) {
			fd = open(up->o.log_path,
				  O_WRONLY | O_CREAT | O_APPEND, 0644);
			if (fd >= 0) {
				dup2(fd, 1);
				dup2(fd, 2);
			}
		}
		/* dup2() clears CLOEXEC: this one end the new keeps */
		fd = dup(sp[1]);
		snprintf(fdstr, sizeof(fdstr), "%d", fd);
		setenv("BATON_CTL_FD", fdstr, 1);
		if (read(gate[0], &c, 1) != 1)
			_exit(127);
		execvp(up->o.argv[0], up->o.argv);
		child_err = errno;
		if (write(report[1], &child_err, sizeof(child_err)) < 0)
			_exit(127);
		_exit(127);
	}
	up->r.new_pid = pid;
	up->new = sp[0];
	close(sp[1]);
	sp[1] = -1;

	msg_init(m, BATON_MSG_UPGRADE);
	err = msg_put_u32(m, BATON_A_PID, pid) ?:
	      msg_put_u32(m, BATON_A_FLAGS, up->o.flags) ?:
	      msg_send(up->old, m) ?:
	      msg_recv(up->old, m, up->o.timeout_ms) ?:
	      msg_parse(m, tb);
	if (err) {
		err = fail(up, err, "the old instance did not acknowledge the upgrade: %s",
			   strerror(-err));
		goto close_report;
	}
	if (m->nlh->nlmsg_type != BATON_MSG_UPGRADE_ACK) {
		char text[256] = "unexpected answer";

		if (m->nlh->nlmsg_type == BATON_MSG_ERROR)
			msg_error_text(tb, text, sizeof(text));
		err = fail(up, -EPROTO, "the old instance refused the upgrade: %s",
			   text);
		goto close_report;
	}
	close(report[1]);
	report[1] = -1;
	if (write(gate[1], "g", 1) != 1) {
		err = fail(up, -errno, "cannot start the new instance: %s",
			   strerror(errno));
		goto close_report;
	}
	if (read(report[0], &child_err, sizeof(child_err)) ==
	    sizeof(child_err)) {
		err = fail(up, -child_err, "cannot run '%s': %s",
			   up->o.argv[0], strerror(child_err));
		goto close_report;
	}
	reach(up, BATON_PHASE_SPAWNED);
	err = 0;
close_report:
	close(report[0]);
	if (report[1] >= 0)
		close(report[1]);
close_gate:
	close(gate[0]);
	close(gate[1]);
close_sp:
	if (sp[1] >= 0) {	/* not forked */
		close(sp[0]);
		close(sp[1]);
	}
	return err;
}
