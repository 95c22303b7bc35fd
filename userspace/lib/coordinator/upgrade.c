// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The coordinator: attaches to the old instance, starts the new one, drives
 * both through the phases, holds a copy of every socket until the new one
 * is active, and rolls back (or, if the old went away, forward).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "coordinator/coordinator.h"

/* Connects to the old instance, and is welcomed. */
static int attach(struct baton_upgrade *up)
{
	const struct baton_upgrade_opts *o = &up->o;
	const struct hello h = {
		.role = BATON_ROLE_COORDINATOR, .pid = getpid(),
		.ver.proto = BATON_PROTO_VERSION,
	};
	struct reply r = { .how = REPLY_NONE };
	struct baton_msg *m;
	struct welcome w;
	struct ucred cred;
	int err;

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
	err = hello_put(m, &h) ?: msg_send(up->old, m) ?:
	      msg_reply(up->old, m, o->timeout_ms, BATON_MSG_WELCOME, &r);
	if (err && r.how == REPLY_ERROR)
		return fail(up, err, "%s refused: %s", o->service, r.text);
	if (err && r.how == REPLY_OTHER)
		return fail(up, err, "%s answered %s instead of WELCOME",
			    o->service, r.text);
	if (err)
		return fail(up, err, "no answer from %s at %s: %s", o->service,
			    up->paths.sock, strerror(-err));
	welcome_get(r.tb, &w);
	up->r.old_pid = w.pid ? (pid_t)w.pid : cred.pid;
	snprintf(up->r.old_app, sizeof(up->r.old_app), "%s", w.app);
	reach(up, BATON_PHASE_ATTACHED);
	return 0;
}

/* *out is set only if it succeeds */
int baton_upgrade_open(struct baton_upgrade **out,
		       const struct baton_upgrade_opts *o)
{
	struct baton_upgrade *up;
	int err;

	if (!o || !o->argv || !o->argv[0] || (o->flags & ~BATON_UPGRADE_F_ALL))
		return -EINVAL;
	up = calloc(1, sizeof(*up));
	if (!up)
		return -ENOMEM;
	up->o = *o;
	if (!up->o.timeout_ms)
		up->o.timeout_ms = BATON_UPGRADE_TIMEOUT_MS;
	up->log.fn = o->log;
	up->log.ctx = o->log_ctx;
	up->old = up->new = -1;
	err = attach(up);
	if (err) {
		baton_upgrade_close(up);
		return err;
	}
	*out = up;
	return 0;
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
	if (up->old >= 0 &&
	    !msg_send_simple(up->old, up->msg, BATON_MSG_RESUME, 0)) {
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

/* ACTIVATE has gone out: ACTIVE ends the blackout, and the copies go. */
static int await_active(struct baton_upgrade *up)
{
	const struct nlattr *tb[BATON_A_MAX + 1];
	int err;

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

/*
 * The old went away before the blackout ended. Whatever it held, we hold
 * too: hand our copies to the new instance and let it serve.
 */
static int roll_forward(struct baton_upgrade *up)
{
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
	      msg_send_simple(up->new, up->msg, BATON_MSG_ACTIVATE,
			      complete ? 0 : BATON_ACTIVATE_F_PEER_LOST);
	if (err)
		return fail(up, err, "cannot hand over to the new instance: %s",
			    strerror(-err));
	up->r.deactivate_ns = up->r.deactivate_ns ?: now_ns();
	err = await_active(up);
	if (err)
		return err;
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
	err = msg_send_simple(up->old, up->msg, BATON_MSG_DEACTIVATE, 0);
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
	int err;

	err = msg_send_simple(up->new, up->msg, BATON_MSG_ACTIVATE, 0);
	if (err)
		return fail(up, err, "cannot reach the new instance: %s",
			    strerror(-err));
	return await_active(up);
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
