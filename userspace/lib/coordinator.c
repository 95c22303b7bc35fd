// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The coordinator: starts the new instance, drives it and the old one
 * through the phases, holds a copy of every socket until the new one is
 * active, and rolls back (or, if the old went away, forward).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "control/control.h"

struct baton_upgrade {
	struct baton_upgrade_opts o;
	struct baton_paths paths;
	struct baton_log_sink log;
	struct baton_msg *msg;
	struct baton_upgrade_report r;
	int old;		/* connection to the old instance */
	int new;		/* our end of the new instance's BATON_CTL_FD */
	struct held_socket *held;
	unsigned int nheld, cap;
	bool activate_sent;
	__u64 old_gone_ns;	/* the old closed its end after ACTIVE */
};

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

static void reach(struct baton_upgrade *up, enum baton_phase phase)
{
	up->r.phase = phase;
	up->r.t_ns[phase] = now_ns();
}

static void drop_held(struct baton_upgrade *up)
{
	while (up->nheld)
		close(up->held[--up->nheld].fd);
}

static int hold(struct baton_upgrade *up, struct baton_msg *m)
{
	unsigned int n;
	int err;

	if (up->cap - up->nheld < BATON_MAX_FDS_PER_MSG) {
		unsigned int cap = up->cap * 2 + BATON_MAX_FDS_PER_MSG;
		struct held_socket *h = realloc(up->held, cap * sizeof(*h));

		if (!h) {
			msg_close_fds(m);
			return -ENOMEM;
		}
		up->held = h;
		up->cap = cap;
	}
	err = sockets_parse(m, up->held + up->nheld, &n);
	if (!err)
		up->nheld += n;
	return err;
}

static int fail(struct baton_upgrade *up, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(struct baton_upgrade *up, int err, const char *fmt, ...)
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

int baton_upgrade_open(struct baton_upgrade **out,
		       const struct baton_upgrade_opts *o)
{
	const struct nlattr *tb[BATON_A_MAX + 1];
	struct baton_upgrade *up;
	struct baton_msg *m;
	struct ucred cred;
	int err;

	if (!o || !o->argv || !o->argv[0] || (o->flags & ~BATON_UPGRADE_F_ALL))
		return -EINVAL;
	up = calloc(1, sizeof(*up));
	if (!up)
		return -ENOMEM;
	up->o = *o;
	if (!up->o.timeout_ms)
		up->o.timeout_ms = 5000;
	up->log.fn = o->log;
	up->log.ctx = o->log_ctx;
	up->old = up->new = -1;
	*out = up;		/* the report says why, even on failure */
	err = paths_init(&up->paths, o->run_dir, o->service);
	if (err)
		return fail(up, err, "'%s' is not a valid service name (letters, digits, '_', '-', '.'; at most 64)",
			    o->service ? o->service : "");
	up->msg = m = msg_alloc();
	if (!m)
		return fail(up, -ENOMEM, "out of memory");
	up->old = ctl_connect(up->paths.sock);
	if (up->old < 0) {
		err = up->old;
		up->old = -1;
		return fail(up, err,
			    "no instance of %s answers at %s (%s); is it running?",
			    o->service, up->paths.sock, strerror(-err));
	}
	err = ctl_peer_check(up->old, &cred);
	if (err)
		return fail(up, err, "%s is served by uid %d; run batonctl as that user or root",
			    o->service, cred.uid);
	msg_init(m, BATON_MSG_HELLO);
	err = msg_put_u32(m, BATON_A_ROLE, BATON_ROLE_COORDINATOR) ?:
	      msg_put_u32(m, BATON_A_PID, getpid()) ?:
	      msg_put_u32(m, BATON_A_PROTO, BATON_PROTO_VERSION) ?:
	      msg_send(up->old, m) ?:
	      msg_recv(up->old, m, up->o.timeout_ms) ?:
	      msg_parse(m, tb);
	if (err)
		return fail(up, err, "no answer from %s at %s: %s", o->service,
			    up->paths.sock, strerror(-err));
	msg_close_fds(m);
	if (m->nlh->nlmsg_type == BATON_MSG_ERROR) {
		char text[256];

		err = msg_error_text(tb, text, sizeof(text));
		return fail(up, err, "%s refused: %s", o->service, text);
	}
	if (m->nlh->nlmsg_type != BATON_MSG_WELCOME)
		return fail(up, -EPROTO, "%s answered %s instead of WELCOME",
			    o->service, msg_type_name(m->nlh->nlmsg_type));
	up->r.old_pid = attr_u32(tb, BATON_A_PID, cred.pid);
	snprintf(up->r.old_app, sizeof(up->r.old_app), "%s",
		 attr_str(tb, BATON_A_APP, "?"));
	reach(up, BATON_PHASE_ATTACHED);
	return 0;
}

/*
 * The child waits on a pipe until the old instance knows its pid, so that
 * its hello is never refused; a CLOEXEC pipe reports a failed exec.
 */
static int spawn(struct baton_upgrade *up)
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

enum from { FROM_OLD, FROM_NEW };

/*
 * Waits for one message from either instance, until the step's deadline.
 * Copies of sockets from the old are taken in passing.
 */
static int wait_msg(struct baton_upgrade *up, __u64 deadline, enum from *from,
		    const struct nlattr **tb)
{
	struct baton_msg *m = up->msg;
	int err;

	for (;;) {
		struct pollfd p[2] = {
			{ .fd = up->old, .events = POLLIN },
			{ .fd = up->new, .events = POLLIN },
		};
		__u64 now = now_ns();
		int timeout, sock;

		if (now >= deadline)
			return -ETIMEDOUT;
		timeout = (deadline - now) / 1000000 + 1;
		err = poll(p, 2, timeout);
		if (err < 0 && errno == EINTR)
			continue;
		if (err < 0)
			return -errno;
		if (err == 0)
			return -ETIMEDOUT;
		*from = p[0].revents ? FROM_OLD : FROM_NEW;
		sock = *from == FROM_OLD ? up->old : up->new;
		err = msg_recv(sock, m, 0);
		if (err == -ETIMEDOUT)
			continue;
		if (!err)
			err = msg_parse(m, tb);
		if (err) {
			msg_close_fds(m);
			return err == -ECONNRESET ? err : -EBADMSG;
		}
		if (*from == FROM_OLD && m->nlh->nlmsg_type == BATON_MSG_SOCKETS) {
			err = hold(up, m);
			if (err)
				return err;
			continue;
		}
		if (*from == FROM_OLD && m->nlh->nlmsg_type == BATON_MSG_RESUMED)
			return -ECANCELED;	/* the old rolled back by itself */
		return 0;
	}
}

static const char *who(enum from from)
{
	return from == FROM_OLD ? "old" : "new";
}

/* Waits for `want` from one side; anything else is a failure. */
static int expect(struct baton_upgrade *up, enum from side, __u16 want,
		  const struct nlattr **tb)
{
	__u64 deadline = now_ns() + up->o.timeout_ms * 1000000ULL;
	struct baton_msg *m = up->msg;
	enum from from;
	char text[256];
	int err;

	for (;;) {
		err = wait_msg(up, deadline, &from, tb);
		if (err == -ETIMEDOUT)
			return fail(up, err,
				    "the %s instance did not say %s within %d ms",
				    who(side), msg_type_name(want),
				    up->o.timeout_ms);
		if (err == -ECONNRESET && from == FROM_OLD && up->activate_sent) {
			/* ACTIVE reached the old before us: it has gone */
			close(up->old);
			up->old = -1;
			up->old_gone_ns = now_ns();
			continue;
		}
		if (err == -ECONNRESET) {
			if (from == FROM_OLD)
				return -ENOTCONN;	/* see roll_forward() */
			return fail(up, err, "the new instance (pid %d) exited before it was active",
				    up->r.new_pid);
		}
		if (err == -ECANCELED)
			return fail(up, err, "the old instance rolled back on its own (the new one went away)");
		if (err)
			return fail(up, err, "malformed message from the %s instance",
				    who(from));
		if (m->nlh->nlmsg_type == BATON_MSG_ERROR) {
			err = msg_error_text(tb, text, sizeof(text));
			return fail(up, err, "the %s instance failed: %s",
				    who(from), text);
		}
		if (from == side && m->nlh->nlmsg_type == want)
			return 0;
		if (from == FROM_NEW && m->nlh->nlmsg_type == BATON_MSG_PEER_LOST)
			continue;	/* we learn it from the old's socket */
		msg_close_fds(m);
		return fail(up, -EPROTO, "unexpected %s from the %s instance",
			    msg_type_name(m->nlh->nlmsg_type), who(from));
	}
}

static int send_simple(struct baton_upgrade *up, int sock, __u16 type,
		       __u32 flags)
{
	struct baton_msg *m = up->msg;

	msg_init(m, type);
	return (flags ? msg_put_u32(m, BATON_A_FLAGS, flags) : 0) ?:
	       msg_send(sock, m);
}

static void reap_new(struct baton_upgrade *up)
{
	if (up->r.new_pid > 0) {
		kill(up->r.new_pid, SIGKILL);
		waitpid(up->r.new_pid, NULL, 0);
	}
	if (up->new >= 0) {
		close(up->new);
		up->new = -1;
	}
}

/* Before activation: the new goes, the old serves again. */
static int roll_back(struct baton_upgrade *up, int err)
{
	const struct nlattr *tb[BATON_A_MAX + 1];
	__u64 deadline;
	enum from from;

	reap_new(up);
	if (up->old >= 0 && !send_simple(up, up->old, BATON_MSG_RESUME, 0)) {
		deadline = now_ns() + up->o.timeout_ms * 1000000ULL;
		for (;;) {
			int e = wait_msg(up, deadline, &from, tb);

			if (e == -ECANCELED ||
			    (!e && up->msg->nlh->nlmsg_type == BATON_MSG_RESUMED))
				break;
			if (e) {
				reach(up, BATON_PHASE_FAILED);
				drop_held(up);
				return fail(up, e, "the old instance did not resume: %s",
					    strerror(-e));
			}
		}
	}
	drop_held(up);
	reach(up, BATON_PHASE_ROLLED_BACK);
	pr_warn(&up->log, "rolled back: the old instance (pid %d) serves",
		up->r.old_pid);
	return err;
}

/*
 * The old went away before the blackout ended. Whatever it held, we hold
 * too: hand our copies to the new instance and let it serve.
 */
static int roll_forward(struct baton_upgrade *up)
{
	const struct nlattr *tb[BATON_A_MAX + 1];
	bool complete = up->r.phase >= BATON_PHASE_DEACTIVATED;
	int err;

	close(up->old);
	up->old = -1;
	up->r.old_lost = true;
	pr_warn(&up->log, "the old instance (pid %d) went away; handing its %u sockets to the new one",
		up->r.old_pid, up->nheld);
	if (!up->nheld && !complete)
		return fail(up, -ENOTCONN, "the old instance went away before handing anything over; start %s again",
			    up->o.service);
	err = (complete ? 0 : sockets_send(up->new, up->msg, up->held,
					   up->nheld)) ?:
	      send_simple(up, up->new, BATON_MSG_ACTIVATE,
			  complete ? 0 : BATON_ACTIVATE_F_PEER_LOST);
	if (err)
		return fail(up, err, "cannot hand over to the new instance: %s",
			    strerror(-err));
	up->activate_sent = true;
	up->r.deactivate_ns = up->r.deactivate_ns ?: now_ns();
	err = expect(up, FROM_NEW, BATON_MSG_ACTIVE, tb);
	if (err)
		return err;
	up->r.active_ns = now_ns();
	up->r.activated_ns = attr_u64(tb, BATON_A_TIME_NS, up->r.active_ns);
	drop_held(up);
	reach(up, BATON_PHASE_ACTIVE);
	reach(up, BATON_PHASE_DONE);
	return BATON_PHASE_DONE;
}

static int step_ready(struct baton_upgrade *up)
{
	const struct nlattr *tb[BATON_A_MAX + 1];
	int err = expect(up, FROM_NEW, BATON_MSG_READY, tb);

	if (err)
		return err;
	up->r.listeners = attr_u32(tb, BATON_A_LISTENERS, 0);
	up->r.conns = attr_u32(tb, BATON_A_CONNS, 0);
	up->r.phase1_start_ns = attr_u64(tb, BATON_A_TIME_NS, 0);
	snprintf(up->r.new_app, sizeof(up->r.new_app), "%s",
		 attr_str(tb, BATON_A_APP, "?"));
	reach(up, BATON_PHASE_READY);
	return 0;
}

static int step_deactivate(struct baton_upgrade *up)
{
	const struct nlattr *tb[BATON_A_MAX + 1];
	int err;

	up->r.deactivate_ns = now_ns();
	err = send_simple(up, up->old, BATON_MSG_DEACTIVATE, 0);
	if (err)
		return err == -EPIPE || err == -ECONNRESET ? -ENOTCONN :
		       fail(up, err, "cannot reach the old instance: %s",
			    strerror(-err));
	err = expect(up, FROM_OLD, BATON_MSG_DEACTIVATED, tb);
	if (err)
		return err;
	up->r.records = attr_u32(tb, BATON_A_RECORDS, 0);
	up->r.record_bytes = attr_u64(tb, BATON_A_BYTES, 0);
	reach(up, BATON_PHASE_DEACTIVATED);
	return 0;
}

static int step_activate(struct baton_upgrade *up)
{
	const struct nlattr *tb[BATON_A_MAX + 1];
	int err;

	err = send_simple(up, up->new, BATON_MSG_ACTIVATE, 0);
	if (err)
		return fail(up, err, "cannot reach the new instance: %s",
			    strerror(-err));
	up->activate_sent = true;
	err = expect(up, FROM_NEW, BATON_MSG_ACTIVE, tb);
	if (err)
		return err;
	up->r.active_ns = now_ns();
	up->r.activated_ns = attr_u64(tb, BATON_A_TIME_NS, up->r.active_ns);
	drop_held(up);
	reach(up, BATON_PHASE_ACTIVE);
	return 0;
}

/* The old closes its copies and exits; its socket to us closes last. */
static int step_done(struct baton_upgrade *up)
{
	const struct nlattr *tb[BATON_A_MAX + 1];
	__u64 deadline = now_ns() + up->o.timeout_ms * 1000000ULL;
	enum from from;
	int err;

	while (up->old >= 0) {
		err = wait_msg(up, deadline, &from, tb);
		if (err == -ECONNRESET && from == FROM_NEW) {
			close(up->new);
			up->new = -1;
			continue;
		}
		if (err == -ECONNRESET) {
			up->old_gone_ns = now_ns();
			close(up->old);
			up->old = -1;
		} else if (err) {
			pr_warn(&up->log, "the old instance (pid %d) has not exited yet",
				up->r.old_pid);
			break;
		}
	}
	reach(up, BATON_PHASE_DONE);
	if (up->old_gone_ns)
		up->r.t_ns[BATON_PHASE_DONE] = up->old_gone_ns;
	return 0;
}

/* What takes an upgrade from each phase to the next. */
static int (*const steps[__BATON_PHASE_END])(struct baton_upgrade *) = {
	[BATON_PHASE_ATTACHED]	  = spawn,
	[BATON_PHASE_SPAWNED]	  = step_ready,
	[BATON_PHASE_READY]	  = step_deactivate,
	[BATON_PHASE_DEACTIVATED] = step_activate,
	[BATON_PHASE_ACTIVE]	  = step_done,
};

int baton_upgrade_step(struct baton_upgrade *up)
{
	enum baton_phase phase = up->r.phase;
	int err;

	if (!steps[phase])
		return up->r.error ?: -EINVAL;
	err = steps[phase](up);
	if (err == -ENOTCONN && up->new >= 0 && phase >= BATON_PHASE_SPAWNED) {
		err = roll_forward(up);
		if (err > 0)
			return err;
		reap_new(up);
		reach(up, BATON_PHASE_FAILED);
		return err;
	}
	if (err == -ENOTCONN)
		err = fail(up, err, "the old instance (pid %d) went away",
			   up->r.old_pid);
	if (err)
		return roll_back(up, err);
	return up->r.phase;
}

const struct baton_upgrade_report *
baton_upgrade_report(const struct baton_upgrade *up)
{
	return &up->r;
}

void baton_upgrade_close(struct baton_upgrade *up)
{
	if (!up)
		return;
	drop_held(up);
	free(up->held);
	if (up->new >= 0)
		close(up->new);
	if (up->old >= 0)
		close(up->old);
	msg_free(up->msg);
	free(up);
}

int baton_query(const char *run_dir, const char *service,
		struct baton_instance_info *info)
{
	const struct nlattr *tb[BATON_A_MAX + 1];
	struct baton_paths paths;
	struct baton_msg *m;
	int sock, err;

	err = paths_init(&paths, run_dir, service);
	if (err)
		return err;
	m = msg_alloc();
	if (!m)
		return -ENOMEM;
	sock = ctl_connect(paths.sock);
	if (sock < 0) {
		err = sock;
		goto free_msg;
	}
	msg_init(m, BATON_MSG_HELLO);
	err = msg_put_u32(m, BATON_A_ROLE, BATON_ROLE_QUERY) ?:
	      msg_put_u32(m, BATON_A_PROTO, BATON_PROTO_VERSION) ?:
	      msg_send(sock, m) ?:
	      msg_recv(sock, m, 2000) ?:
	      msg_parse(m, tb);
	if (err)
		goto close_sock;
	if (m->nlh->nlmsg_type != BATON_MSG_INFO) {
		err = -EPROTO;
		goto close_sock;
	}
	memset(info, 0, sizeof(*info));
	info->pid = attr_u32(tb, BATON_A_PID, 0);
	info->state_version = attr_u32(tb, BATON_A_STATE_VERSION, 0);
	info->proto = attr_u32(tb, BATON_A_PROTO, 0);
	snprintf(info->app, sizeof(info->app), "%s",
		 attr_str(tb, BATON_A_APP, "?"));
close_sock:
	close(sock);
free_msg:
	msg_free(m);
	return err;
}
