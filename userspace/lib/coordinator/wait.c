// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The coordinator's two peers, the old instance and the new: one message
 * from either within a step's deadline, the copies of sockets the old
 * sends taken in passing, and the messages the coordinator sends.
 */
#include <errno.h>
#include <stdio.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coordinator/coordinator.h"

void drop_held(struct baton_upgrade *up)
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

/*
 * Waits for one message from either instance, until the step's deadline.
 * Copies of sockets from the old are taken in passing.
 */
int wait_msg(struct baton_upgrade *up, __u64 deadline, enum from *from,
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
		err = msg_poll(p, 2, up->spin_until, timeout);
		if (err < 0 && errno == EINTR)
			continue;
		if (err < 0)
			return -errno;
		if (err == 0)
			return -ETIMEDOUT;
		*from = p[0].revents ? FROM_OLD : FROM_NEW;
		sock = *from == FROM_OLD ? up->old : up->new;
		err = msg_read(sock, m, 0, tb);
		if (err == -ETIMEDOUT)
			continue;
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
		if (*from == FROM_OLD && m->nlh->nlmsg_type == BATON_MSG_RESUMED) {
			/* the old rolled back, by itself or when told */
			snprintf(up->resumed_why, sizeof(up->resumed_why),
				 "%s", attr_str(tb, BATON_A_TEXT, "see its log"));
			return -ECANCELED;
		}
		return 0;
	}
}

static const char *who(enum from from)
{
	return from == FROM_OLD ? "old" : "new";
}

/*
 * The old's word that it stopped: what it handed over, and how long, and
 * phase 1's rounds of state before. It
 * may come after the new one's ACTIVE, which it no longer waits for.
 */
void deactivated(struct baton_upgrade *up, const struct nlattr **tb)
{
	struct rounds rs;

	up->r.records = attr_u32(tb, BATON_A_RECORDS, 0);
	up->r.early_records = attr_u32(tb, BATON_A_EARLY_RECORDS, 0);
	up->r.record_bytes = attr_u64(tb, BATON_A_BYTES, 0);
	up->old_stop_ns = attr_u64(tb, BATON_A_TIME_NS, 0);
	up->r.checkpoints = attr_u32(tb, BATON_A_CHECKPOINTS, 0);
	up->r.ckpt_format = attr_u32(tb, BATON_A_CKPT_FORMAT, 0);
	/* ACTIVE names it too, and may have come first */
	up->freeze_id = attr_u32(tb, BATON_A_FREEZE_ID, up->freeze_id);
	steps_get(up->msg, "old", up->r.steps, &up->r.nsteps);
	rounds_get(up->msg, tb, &rs);
	memcpy(up->r.rounds, rs.r, rs.n * sizeof(rs.r[0]));
	up->r.nrounds = rs.n;
	up->r.precopy_end = rs.end;
	up->r.t_ns[BATON_PHASE_DEACTIVATED] = now_ns();
	/* in the blackout: the new one activates next, within the spin */
	if (up->spin_until)
		up->spin_until = up->r.t_ns[BATON_PHASE_DEACTIVATED] +
				 MSG_SPIN_NS;
}

__u64 deadline_in(int ms)
{
	return now_ns() + ms * 1000000ULL;
}

/*
 * Waits for `want` from one side, until the deadline. On the way: the
 * old's copies are held (wait_msg()), its SUCCESSOR noted, and its end
 * closing before activation noted too: the new instance says what it
 * lacks (PEER_LOST), and then this returns -ENOTCONN (see roll_forward()).
 * Anything else is a failure, its reason in the report.
 */
int expect(struct baton_upgrade *up, enum from side, __u16 want,
	   __u64 deadline, const struct nlattr **tb)
{
	struct baton_msg *m = up->msg;
	enum from from;
	char text[256];
	int err;

	for (;;) {
		err = wait_msg(up, deadline, &from, tb);
		if (err == -ETIMEDOUT)
			return err;	/* the caller says what was late */
		if (err == -ECONNRESET && from == FROM_OLD) {
			close(up->old);
			up->old = -1;
			up->old_gone_ns = now_ns();
			/*
			 * Before the blackout we take the new one forward
			 * at once: it may be waiting for the old on the
			 * control socket we hold. In the blackout, phase 2
			 * may have crossed: the new one says if it lacks it.
			 */
			if (side == FROM_OLD || !up->deactivate_sent)
				return -ENOTCONN;
			continue;
		}
		if (err == -ECONNRESET) {
			new_gone_why(up, text, sizeof(text));
			return fail(up, err, "%s", text);
		}
		if (err == -ECANCELED)
			return fail(up, err, "the old instance rolled back on its own: %s",
				    up->resumed_why);
		if (err)
			return fail(up, err, "malformed message from the %s instance",
				    who(from));
		if (m->nlh->nlmsg_type == BATON_MSG_ERROR) {
			err = msg_error_text(tb, text, sizeof(text));
			/*
			 * the old one, past its deadline too, found the new
			 * one holding the lock: it waits for it, as we do
			 */
			if (from == FROM_OLD && err == -EBUSY &&
			    up->sparing_new) {
				pr_info(&up->log, "the old instance: %s", text);
				continue;
			}
			return fail(up, err, "the %s instance %s: %s", who(from),
				    up->r.phase ? "failed" : "refused", text);
		}
		if (from == side && m->nlh->nlmsg_type == want)
			return 0;
		if (from == FROM_OLD && m->nlh->nlmsg_type == BATON_MSG_SUCCESSOR) {
			up->successor_seen = true;
			continue;
		}
		if (from == FROM_OLD &&
		    m->nlh->nlmsg_type == BATON_MSG_DEACTIVATED) {
			deactivated(up, tb);
			continue;
		}
		/* what the new one said before it had our word */
		if (from == FROM_NEW && m->nlh->nlmsg_type == BATON_MSG_PEER_LOST) {
			snprintf(up->lost_why, sizeof(up->lost_why), "%s",
				 attr_str(tb, BATON_A_TEXT, ""));
			if (up->r.old_lost)
				continue;	/* we know: roll_forward() */
			return -ENOTCONN;
		}
		if (from == FROM_NEW && m->nlh->nlmsg_type == BATON_MSG_READY &&
		    want != BATON_MSG_READY)
			continue;	/* it had phase 1 before the old went */
		msg_close_fds(m);
		return fail(up, -EPROTO, "unexpected %s from the %s instance",
			    msg_type_name(m->nlh->nlmsg_type), who(from));
	}
}
