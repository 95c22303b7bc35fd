// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The coordinator's two peers, the old instance and the new: one message
 * from either within a step's deadline, the copies of sockets the old
 * sends taken in passing, and the messages the coordinator sends.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
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
		err = poll(p, 2, timeout);
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
int expect(struct baton_upgrade *up, enum from side, __u16 want,
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
