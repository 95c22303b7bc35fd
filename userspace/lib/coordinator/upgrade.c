// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The coordinator: attaches to the old instance, starts the new one, drives
 * both through the phases, holds a copy of every socket until the new one
 * is active, and rolls back (or, if the old went away, forward).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "coordinator/coordinator.h"

/* Connects to the old instance, and is welcomed. */
int attach(struct baton_upgrade *up)
{
	const struct baton_upgrade_opts *o = &up->o;
	const struct hello h = {
		.role = BATON_ROLE_COORDINATOR, .pid = getpid(),
		.timeout_ms = o->timeout_ms, .ver.proto = BATON_PROTO_VERSION,
	};
	struct reply r;
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
	up->old = ctl_connect(up->paths.sock, o->timeout_ms);
	if (up->old == -EAGAIN) {
		up->old = -1;
		return fail(up, -EAGAIN,
			    "the instance of %s at %s accepts no connection: its control socket's queue stayed full for %d ms (is it hung or stopped?)",
			    o->service, up->paths.sock, o->timeout_ms);
	}
	if (up->old < 0) {
		err = up->old;
		up->old = -1;
		return fail(up, err,
			    "no instance of %s answers at %s (%s); is it running?",
			    o->service, up->paths.sock, strerror(-err));
	}
	err = ctl_peer_check(up->old, &cred);
	if (err == -EPERM)
		return fail(up, err, "%s is served by uid %d; run batonctl as that user or root",
			    o->service, cred.uid);
	if (err)
		return fail(up, err, "cannot tell who serves %s at %s: %s",
			    o->service, up->paths.sock, strerror(-err));
	err = hello_put(m, &h) ?: msg_send(up->old, m);
	if (err)
		return fail(up, err, "cannot talk to %s at %s: %s", o->service,
			    up->paths.sock, strerror(-err));
	/* its listeners and control socket come first, then WELCOME */
	err = expect(up, FROM_OLD, BATON_MSG_WELCOME,
		     deadline_in(o->timeout_ms), r.tb);
	if (err == -ETIMEDOUT || err == -ENOTCONN)
		return fail(up, err, "no answer from %s at %s: %s", o->service,
			    up->paths.sock, strerror(-err));
	if (err)
		return err;	/* refused: expect() said why */
	welcome_get(r.tb, &w);
	up->old_ver = w.ver;
	up->r.old_pid = w.pid ? (pid_t)w.pid : cred.pid;
	snprintf(up->r.old_app, sizeof(up->r.old_app), "%s", w.app);
	reach(up, BATON_PHASE_ATTACHED);
	return 0;
}

/* The handle, its options' defaults filled in, attached to nothing yet */
int upgrade_new(struct baton_upgrade **out, const struct baton_upgrade_opts *o)
{
	struct baton_upgrade *up;

	up = calloc(1, sizeof(*up));
	if (!up)
		return -ENOMEM;
	up->o = *o;
	up->r.flags = o->flags;
	if (!up->o.timeout_ms)
		up->o.timeout_ms = BATON_UPGRADE_TIMEOUT_MS;
	if (!up->o.blackout_ms)
		up->o.blackout_ms = BATON_BLACKOUT_TIMEOUT_MS;
	if (!up->o.precopy_rounds)
		up->o.precopy_rounds = BATON_PRECOPY_ROUNDS;
	if (!up->o.precopy_bytes)
		up->o.precopy_bytes = BATON_PRECOPY_BYTES;
	up->log.fn = o->log;
	up->log.ctx = o->log_ctx;
	up->old = up->new = -1;
	up->stdio[0] = up->stdio[1] = -1;
	*out = up;
	return 0;
}

/*
 * A checkpoint's save or restore, as an upgrade's handle. Its blackout
 * has a step's time: only frozen clients wait on it, and the old
 * instance, which keeps its own deadline, must see the file written.
 */
int checkpoint_upgrade_new(struct baton_upgrade **up,
			   const struct baton_checkpoint_opts *o,
			   unsigned int flags)
{
	const struct baton_upgrade_opts uo = {
		.service = o->service, .run_dir = o->run_dir, .argv = o->argv,
		.log_path = o->log_path, .timeout_ms = o->timeout_ms,
		.blackout_ms = o->timeout_ms ?: BATON_UPGRADE_TIMEOUT_MS,
		.flags = flags, .log = o->log, .log_ctx = o->log_ctx,
	};

	return upgrade_new(up, &uo);
}

/* *out is set only if it succeeds */
int baton_upgrade_open(struct baton_upgrade **out,
		       const struct baton_upgrade_opts *o)
{
	struct baton_upgrade *up;
	int err;

	if (!o || !o->argv || !o->argv[0] || (o->flags & ~BATON_UPGRADE_F_ALL) ||
	    o->precopy_rounds > BATON_MAX_ROUNDS ||
	    o->timeout_ms < 0 || o->timeout_ms > BATON_TIMEOUT_MS_MAX ||
	    o->blackout_ms < 0 || o->blackout_ms > BATON_TIMEOUT_MS_MAX ||
	    ((o->flags & BATON_UPGRADE_F_REPAIR) &&
	     (o->flags & BATON_UPGRADE_F_DRAIN)) ||
	    ((o->flags & BATON_UPGRADE_F_NETNS) && !o->netns) ||
	    (o->netns && (!(o->flags & BATON_UPGRADE_F_REPAIR) ||
			  !o->netns_addr || !o->netns_dev)))
		return -EINVAL;
	err = upgrade_new(&up, o);
	if (err)
		return err;
	if (o->netns) {
		up->o.flags |= BATON_UPGRADE_F_NETNS;
		up->r.flags = up->o.flags;
		err = netns_prepare(up);
		if (err) {
			baton_upgrade_close(up);
			return err;
		}
	}
	err = attach(up) ?: up->mv ? netns_check_old(up) : 0;
	if (err) {
		baton_upgrade_close(up);
		return err;
	}
	*out = up;
	return 0;
}

/* Whether pid is stopped (a SIGSTOP, a debugger), as /proc says now */
static bool stopped(pid_t pid)
{
	char state = proc_state(pid, NULL, 0, NULL);

	return state == 'T' || state == 't';
}

static int step_ready(struct baton_upgrade *up)
{
	const struct nlattr *tb[BATON_A_MAX + 1];
	char why[300], new_now[160], old_now[160];
	int err;

	err = expect(up, FROM_NEW, BATON_MSG_READY,
		     deadline_in(up->o.timeout_ms), tb);
	if (err == -ETIMEDOUT) {
		if (!up->successor_seen && stopped(up->r.old_pid))
			snprintf(why, sizeof(why),
				 "the old instance (pid %d) is stopped: it took no connection from the new one (pid %d) within %d ms",
				 up->r.old_pid, up->r.new_pid, up->o.timeout_ms);
		else if (stopped(up->r.new_pid))
			snprintf(why, sizeof(why),
				 "the new instance (pid %d) is stopped: it did not say READY within %d ms",
				 up->r.new_pid, up->o.timeout_ms);
		else if (!up->successor_seen)
			snprintf(why, sizeof(why),
				 "the new instance (pid %d) never connected to the old instance within %d ms: does '%s' open the service with libbaton (baton_service_open()), keeping BATON_CTL_FD and BATON_CTL_PID from its environment?",
				 up->r.new_pid, up->o.timeout_ms,
				 up->o.argv[0]);
		else
			snprintf(why, sizeof(why),
				 "the new instance (pid %d) did not say READY within %d ms of its start: phase 1 did not finish",
				 up->r.new_pid, up->o.timeout_ms);
		/* whether each ran at all, slept, or spun: for the next look */
		proc_note(up->r.new_pid, "the new instance", new_now,
			  sizeof(new_now));
		proc_note(up->r.old_pid, "the old", old_now, sizeof(old_now));
		return fail(up, err, "%s (now %s; %s)", why, new_now, old_now);
	}
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

/* The old closes its copies and exits; its socket to us closes last. */
int step_done(struct baton_upgrade *up)
{
	const struct nlattr *tb[BATON_A_MAX + 1];
	__u64 deadline = deadline_in(up->o.timeout_ms);
	enum from from;
	int err;

	/*
	 * into another namespace, once the new one is active (its ACTIVE
	 * named the old's freeze): the address moves. A failure is the
	 * report's; nothing is undone
	 */
	if (up->mv)
		netns_move(up);
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
		} else {
			msg_close_fds(up->msg);
			if (from == FROM_OLD &&
			    up->msg->nlh->nlmsg_type == BATON_MSG_DEACTIVATED)
				deactivated(up, tb);
		}
	}
	steps_place(up);
	reach(up, BATON_PHASE_DONE);
	if (up->old_gone_ns)
		up->r.t_ns[BATON_PHASE_DONE] = up->old_gone_ns;
	return 0;
}

/* What takes an upgrade from each phase to the next. */
static int (*const steps[__BATON_PHASE_END])(struct baton_upgrade *) = {
	[BATON_PHASE_ATTACHED]	  = spawn,
	[BATON_PHASE_SPAWNED]	  = step_ready,
	[BATON_PHASE_READY]	  = step_blackout,
	[BATON_PHASE_ACTIVE]	  = step_done,
};

int baton_upgrade_step(struct baton_upgrade *up)
{
	enum baton_phase phase = up->r.phase;
	int err;

	if (up->forward_next) {
		up->forward_next = false;
		err = roll_forward(up);
		return err ?: (int)up->r.phase;
	}
	if (!steps[phase])
		return up->r.error ?: -EINVAL;
	err = steps[phase](up);
	/*
	 * The old gone as the new one started: SPAWNED first, so that the
	 * caller's journal names the new instance before it takes over (a
	 * coordinator killed while it waits for ACTIVE left recover with no
	 * new pid, and a 'failed' for a service the new one served)
	 */
	if (err == -ENOTCONN && phase == BATON_PHASE_ATTACHED &&
	    up->r.phase == BATON_PHASE_SPAWNED) {
		up->forward_next = true;
		return up->r.phase;
	}
	if (err == -ENOTCONN)
		err = roll_forward(up);
	else if (err)
		err = roll_back(up, err);
	return err ?: (int)up->r.phase;
}

void baton_upgrade_close(struct baton_upgrade *up)
{
	if (!up)
		return;
	drop_held(up);
	netns_free(up);
	free(up->held);
	if (up->stdio[0] >= 0)
		close(up->stdio[0]);
	if (up->stdio[1] >= 0)
		close(up->stdio[1]);
	if (up->new >= 0)
		close(up->new);
	if (up->old >= 0)
		close(up->old);
	msg_free(up->msg);
	free(up);
}
