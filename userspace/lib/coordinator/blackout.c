// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The coordinator's blackout: from the new instance's READY to its ACTIVE,
 * with a deadline of its own (opts.blackout_ms), far shorter than a step's:
 * clients wait through it. And the two ways out of a failure: back to the
 * old instance, or forward to the new one when the old went away.
 *
 * Its consent to activate goes out with DEACTIVATE (BATON_DEACTIVATE_F_
 * DIRECT): the old hands phase 2 to the new, which activates as soon as it
 * has it, without a hop through us. The service's lock settles who serves
 * if either is late (control/control.h); we only stop the new one to look,
 * so that giving up on it never races with its activation.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "coordinator/coordinator.h"

static void active(struct baton_upgrade *up, const struct nlattr **tb)
{
	up->r.active_ns = now_ns();
	up->r.activated_ns = attr_u64(tb, BATON_A_TIME_NS, up->r.active_ns);
	up->r.activate_flags = attr_u32(tb, BATON_A_FLAGS, 0);
	/* with repair mode's restored connections, which READY did not count */
	up->r.conns = attr_u32(tb, BATON_A_CONNS, up->r.conns);
	/* into another namespace: the old's freeze, which the new one kept */
	up->freeze_id = attr_u32(tb, BATON_A_FREEZE_ID, up->freeze_id);
	steps_get(up->msg, "new", up->r.steps, &up->r.nsteps);
	drop_held(up);
	reach(up, BATON_PHASE_ACTIVE);
}

/*
 * The blackout's deadline passed without ACTIVE: the new one serves, or
 * never will. One that holds the service's lock is activating: in repair
 * mode it may have taken connections out of repair mode already, and
 * killed, it would close them with a FIN. It gets half the freeze's slack
 * past the deadline (the freeze still holds what the peers send): wait()
 * waits that long for its ACTIVE, 0 or -errno (-ETIMEDOUT unreported).
 * 0 with ACTIVE's attributes in tb, or -errno, reported.
 */
int new_overdue(struct baton_upgrade *up, const struct nlattr **tb,
		int (*wait)(void *ctx, int ms, const struct nlattr **tb),
		void *ctx)
{
	enum new_fate fate;
	bool spared = false;
	int err;

	fate = new_active_unread(up, tb, true);
	if (fate == NEW_LOCKED) {
		spared = true;
		pr_warn(&up->log, "the new instance (pid %d) was not active %d ms into the blackout, but holds %s's lock: it is activating; waiting up to %d ms more",
			up->r.new_pid, up->o.blackout_ms, up->o.service,
			BATON_FREEZE_SLACK_MS / 2);
		err = wait(ctx, BATON_FREEZE_SLACK_MS / 2, tb);
		if (!err)
			return 0;
		if (err != -ETIMEDOUT)
			return err;
		fate = new_active_unread(up, tb, false);
	}
	if (fate == NEW_ACTIVE)
		return 0;
	return fail(up, -ETIMEDOUT, "the new instance (pid %d) was not active %d ms into the blackout%s",
		    up->r.new_pid, up->o.blackout_ms, spared ?
		    ", nor when its grace for holding the lock ran out" : "");
}

/* the old one, past its deadline too, waits for the one holding the lock */
static int spare_new(void *ctx, int ms, const struct nlattr **tb)
{
	struct baton_upgrade *up = ctx;
	int err;

	up->sparing_new = true;
	err = expect(up, FROM_NEW, BATON_MSG_ACTIVE, deadline_in(ms), tb);
	up->sparing_new = false;
	return err;
}

static int blackout_over(struct baton_upgrade *up)
{
	const struct nlattr *tb[BATON_A_MAX + 1];
	int err;

	err = new_overdue(up, tb, spare_new, up);
	if (!err)
		active(up, tb);
	return err;
}

int step_blackout(struct baton_upgrade *up)
{
	const struct nlattr *tb[BATON_A_MAX + 1];
	__u64 deadline = deadline_in(up->o.blackout_ms);
	struct baton_msg *m = up->msg;
	int err;

	up->r.deactivate_ns = now_ns();
	up->deactivate_sent = true;
	msg_init(m, BATON_MSG_DEACTIVATE);
	err = msg_put_u64(m, BATON_A_DEADLINE_NS, deadline) ?:
	      msg_put_u32(m, BATON_A_FLAGS, BATON_DEACTIVATE_F_DIRECT) ?:
	      msg_send(up->old, m);
	if (err == -EPIPE || err == -ECONNRESET)
		err = 0;	/* gone: the new one tells us what it lacks */
	if (err)
		return fail(up, err, "cannot reach the old instance: %s",
			    strerror(-err));
	/* the old's DEACTIVATED is noted on the way (expect()) */
	up->spin_until = now_ns() + MSG_SPIN_NS;
	err = expect(up, FROM_NEW, BATON_MSG_ACTIVE, deadline, tb);
	up->spin_until = 0;
	if (err == -ETIMEDOUT)
		return blackout_over(up);
	if (err)
		return err;
	active(up, tb);
	return 0;
}

/*
 * Waits for the old instance's RESUMED: 0, or -errno. What else it says
 * meanwhile answers what we sent before (an ERROR for a DEACTIVATE it got
 * after it had resumed by itself; EBUSY while the new one, which we just
 * killed, held the lock), or is its DEACTIVATED, which crossed the new
 * one's ERROR and goes into the report: only RESUMED, its going, or the
 * time says.
 */
static int await_resumed(struct baton_upgrade *up)
{
	const struct nlattr *tb[BATON_A_MAX + 1];
	__u64 deadline = deadline_in(up->o.timeout_ms);
	enum from from;
	int err;

	for (;;) {
		err = wait_msg(up, deadline, &from, tb);
		if (err == -ECANCELED)
			return 0;	/* RESUMED */
		if (err == -ECONNRESET && from == FROM_NEW)
			continue;
		if (err)
			return err;
		if (from == FROM_OLD &&
		    up->msg->nlh->nlmsg_type == BATON_MSG_DEACTIVATED)
			deactivated(up, tb);
		msg_close_fds(up->msg);
	}
}

/*
 * Whether the old instance, which closed its end without RESUMED, serves:
 * past its own deadline it detaches from a coordinator that was late, and
 * serves on. Asked, not assumed.
 */
static bool old_serves(struct baton_upgrade *up)
{
	struct baton_instance_info info;

	return !baton_query(up->o.run_dir, up->o.service, 0, &info) &&
	       info.pid == up->r.old_pid;
}

/* Before activation: the new goes, the old serves again. */
int roll_back(struct baton_upgrade *up, int err)
{
	const struct nlattr *tb[BATON_A_MAX + 1];
	int e;

	/* if it got so far as to activate, it serves: not ours to undo */
	if (up->r.phase >= BATON_PHASE_READY &&
	    new_active_unread(up, tb, false) == NEW_ACTIVE) {
		up->r.error = 0;
		up->r.reason[0] = '\0';
		active(up, tb);
		return 0;
	}
	reap_new(up);
	drop_held(up);
	e = up->old < 0 ? -ECONNRESET :
	    msg_send_simple(up->old, up->msg, BATON_MSG_RESUME, 0) ?:
	    await_resumed(up);
	if ((e == -ECONNRESET || e == -EPIPE) && old_serves(up)) {
		size_t len = strlen(up->r.reason);

		snprintf(up->r.reason + len, sizeof(up->r.reason) - len,
			 "; the old instance (pid %d) had resumed by itself",
			 up->r.old_pid);
		e = 0;
	}
	if (e) {
		size_t len = strlen(up->r.reason);

		/* after the first reason, what this failure added to it */
		reach(up, BATON_PHASE_FAILED);
		snprintf(up->r.reason + len, sizeof(up->r.reason) - len,
			 "%sthe old instance (pid %d) did not resume: %s",
			 len ? "; then " : "", up->r.old_pid,
			 e == -ECONNRESET || e == -EPIPE ? "it went away" :
			 strerror(-e));
		pr_err(&up->log, "%s", up->r.reason);
		return err;
	}
	reach(up, BATON_PHASE_ROLLED_BACK);
	pr_warn(&up->log, "rolled back: the old instance (pid %d) resumed",
		up->r.old_pid);
	return err;
}

/* Neither can serve: the report says so, and nothing is left running. */
static int give_up(struct baton_upgrade *up, int err)
{
	reap_new(up);
	drop_held(up);
	reach(up, BATON_PHASE_FAILED);
	return err;
}

/*
 * The old went away before phase 2 was whole (the new one said PEER_LOST,
 * or found no one to greet): the new instance takes our copies of the
 * listeners and the control socket and serves, closing every connection
 * (it cannot go on with them exactly).
 */
int roll_forward(struct baton_upgrade *up)
{
	const struct nlattr *tb[BATON_A_MAX + 1];
	struct held_socket *h = up->held;
	unsigned int i, n = 0;
	int err;

	/* it may yet have rolled back, and dropped the new one */
	while (up->old >= 0) {
		enum from from;

		err = wait_msg(up, deadline_in(up->o.timeout_ms), &from, tb);
		if (err == -ECONNRESET && from == FROM_OLD) {
			close(up->old);
			up->old = -1;
		} else if (err == -ECANCELED) {
			return roll_back(up, fail(up, err, "the old instance resumed: the new one lost it"));
		} else if (err && up->lost_why[0]) {
			/* most likely it looks in another run directory */
			return roll_back(up, fail(up, err, "the new instance found %s, but the old one serves at %s/%s.sock: give the new command the old one's run directory",
						  up->lost_why, up->paths.dir,
						  up->o.service));
		} else if (err) {
			return roll_back(up, fail(up, err, "the new instance lost the old one, which is still there"));
		} else {
			msg_close_fds(up->msg);
		}
	}
	up->r.old_lost = true;
	if (up->new < 0)
		return give_up(up, fail(up, -ENOTCONN, "the old instance (pid %d) went away before the new one started: nothing serves %s; start it again",
					up->r.old_pid, up->o.service));
	if (!up->nheld)
		return give_up(up, fail(up, -ENOTCONN, "the old instance (pid %d) went away before handing over its listeners: nothing serves %s; start it again",
					up->r.old_pid, up->o.service));
	/* with its own listeners, the new one takes the control socket only */
	for (i = 0; i < up->nheld; i++)
		if (!(up->o.flags & BATON_UPGRADE_F_OWN_LISTENERS) ||
		    h[i].si.kind == BATON_SOCK_CONTROL)
			h[n++] = h[i];
	for (; i > n; i--)
		close(h[i - 1].fd);
	up->nheld = n;
	pr_warn(&up->log, "the old instance (pid %d) went away; the new one takes over with %u of its sockets",
		up->r.old_pid, up->nheld);
	err = sockets_send(up->new, up->msg, up->held, up->nheld) ?:
	      msg_send_simple(up->new, up->msg, BATON_MSG_ACTIVATE,
			      BATON_ACTIVATE_F_PEER_LOST);
	if (err)
		return give_up(up, fail(up, err, "cannot hand over to the new instance: %s",
					strerror(-err)));
	up->r.deactivate_ns = up->r.deactivate_ns ?: now_ns();
	err = expect(up, FROM_NEW, BATON_MSG_ACTIVE,
		     deadline_in(up->o.timeout_ms), tb);
	if (err == -ETIMEDOUT)
		fail(up, err, "the new instance (pid %d) did not say ACTIVE within %d ms",
		     up->r.new_pid, up->o.timeout_ms);
	if (err)
		return give_up(up, err);
	active(up, tb);
	/* into another namespace: the address follows, nothing to thaw */
	if (up->mv)
		netns_move(up);
	reach(up, BATON_PHASE_DONE);
	return 0;
}
