// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The new instance's side: started by the coordinator (BATON_CTL_FD), it
 * finds the serving instance on the well-known socket, takes its sockets
 * and state (adopt.c), says it is ready, imports the foreground state
 * when the old has stopped, takes the service's lock and serves.
 *
 * It reads two peers: the old instance (phases 1 and 2) and the
 * coordinator (START; ACTIVATE, unless its consent came with phase 2; and,
 * if the old went away, the coordinator's copies of the listeners and the
 * control socket).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "service/handover/takeover.h"

static int peer_gone(struct takeover *t);

/* To the old instance: if it has gone, that is peer_gone(), not an error */
static int to_peer(struct takeover *t, int err)
{
	if (err == -EPIPE || err == -ECONNRESET)
		return peer_gone(t);
	if (err)
		snprintf(t->why, sizeof(t->why),
			 "cannot write to the old instance: %s", strerror(-err));
	return err;
}

/* The old is gone: what it had that matters, the coordinator holds. */
static int peer_gone(struct takeover *t)
{
	int err;

	if (t->peer >= 0)
		close(t->peer);
	t->peer = -1;
	if (t->phase2_done)
		return 0;	/* it had handed over everything */
	pr_warn(&t->svc->log, "the old instance went away; asking the coordinator");
	t->peer_lost = true;
	/* PEER_LOST: why, if we can say */
	msg_init(t->svc->msg, BATON_MSG_PEER_LOST);
	err = t->lost_why[0] ?
	      msg_put_str(t->svc->msg, BATON_A_TEXT, t->lost_why) : 0;
	err = err ?: msg_send(t->ctl, t->svc->msg);
	if (err)
		snprintf(t->why, sizeof(t->why),
			 "the old instance went away, and so did the coordinator");
	return err;
}

static int send_ready(struct takeover *t)
{
	struct baton_msg *m = t->svc->msg;
	int err;

	/* before READY, on which the blackout begins: not in it */
	notify_taking_over(&t->svc->log);
	msg_init(m, BATON_MSG_READY);
	err = msg_put_u32(m, BATON_A_LISTENERS, t->listeners) ?:
	      msg_put_u32(m, BATON_A_CONNS, t->conns) ?:
	      msg_put_u64(m, BATON_A_TIME_NS, t->t_welcome) ?:
	      msg_put_str(m, BATON_A_APP, t->svc->app_name) ?:
	      msg_send(t->ctl, m);
	t->t_ready = now_ns();
	if (err)
		snprintf(t->why, sizeof(t->why),
			 "cannot say READY to the coordinator: %s", strerror(-err));
	return err;
}

static int phase2_done(struct takeover *t, const struct nlattr **tb)
{
	t->deactivate_flags = attr_u32(tb, BATON_A_FLAGS, 0);
	if (t->deactivate_flags & ~BATON_DEACTIVATE_F_ALL) {
		snprintf(t->why, sizeof(t->why),
			 "PHASE2_DONE with unknown flags %#x", t->deactivate_flags);
		return -EINVAL;
	}
	t->deadline_ns = attr_u64(tb, BATON_A_DEADLINE_NS, 0);
	t->freeze_id = attr_u32(tb, BATON_A_FREEZE_ID, 0);
	t->phase2_done = true;
	return 0;
}

static int from_peer(struct takeover *t)
{
	const struct nlattr *tb[BATON_A_MAX + 1];
	struct baton_msg *m = t->svc->msg;
	__u32 kind;	/* a BLOB's, or PHASE1_DONE's flags */
	int err;

	err = msg_read(t->peer, m, 0, tb);
	if (err == -ETIMEDOUT)
		return 0;
	if (err == -ECONNRESET)
		return peer_gone(t);
	if (err == -ENOBUFS) {
		why_truncated(t);
		return err;
	}
	if (err) {
		snprintf(t->why, sizeof(t->why),
			 "malformed message from the old instance: %s",
			 strerror(-err));
		return err;
	}
	/*
	 * descriptors come with SOCKETS and BLOB alone: any other's would
	 * be dropped, open, by the next message built in m (msg_init())
	 */
	if (m->nlh->nlmsg_type != BATON_MSG_SOCKETS &&
	    m->nlh->nlmsg_type != BATON_MSG_BLOB)
		msg_close_fds(m);
	switch (m->nlh->nlmsg_type) {
	case BATON_MSG_SOCKETS:
		if (t->phase1_done)
			break;
		return adopt_batch(t, m, false);
	case BATON_MSG_BLOB:
		kind = attr_u32(tb, BATON_A_BLOB_KIND, 0);
		/* repair mode: kept until the connections come back */
		if (t->repair && !t->phase2_done && m->nfds == 1 &&
		    (kind == BATON_BLOB_TCP || kind == BATON_BLOB_CONNS)) {
			repair_in_keep(t, m, kind);
			return 0;
		}
		if (!t->phase1_done)
			return load_blob(t, m, tb);
		if (!t->st.n && !t->st.last_ns)
			steps_begin(&t->st);
		err = load_blob(t, m, tb);
		steps_mark(&t->st, attr_u32(tb, BATON_A_BLOB_KIND, 0) ==
			   BATON_BLOB_CONNS ? "load connection records" :
			   "load state changes");
		return err;
	case BATON_MSG_SYNC:
		/* phase 1's state is whole; the old may stop accepting */
		t->state_whole = true;
		return to_peer(t, msg_send_simple(t->peer, m, BATON_MSG_SYNC, 0));
	case BATON_MSG_PHASE1_DONE:
		if (t->phase1_done)
			break;
		kind = attr_u32(tb, BATON_A_FLAGS, 0);
		if (kind & ~BATON_PHASE1_F_ALL) {
			snprintf(t->why, sizeof(t->why),
				 "PHASE1_DONE with unknown flags %#x", kind);
			return -EINVAL;
		}
		t->repair = kind & BATON_UPGRADE_F_REPAIR;
		if (!(kind & BATON_UPGRADE_F_NETNS) != !t->netns) {
			snprintf(t->why, sizeof(t->why),
				 "PHASE1_DONE and START disagree on the move into another network namespace");
			return -EPROTO;
		}
		err = t->repair ? repair_in_prepare(t) : 0;
		if (err)
			return err;
		t->phase1_done = true;
		return send_ready(t);
	case BATON_MSG_PHASE2_DONE:
		if (!t->phase1_done || t->phase2_done)
			break;
		if (t->st.last_ns)
			steps_mark(&t->st, "wait for PHASE2_DONE");
		return phase2_done(t, tb);
	case BATON_MSG_ERROR:
		return msg_error_text(tb, t->why, sizeof(t->why));
	default:
		break;
	}
	msg_close_fds(m);
	snprintf(t->why, sizeof(t->why), "unexpected %s from the old instance",
		 msg_type_name(m->nlh->nlmsg_type));
	return -EPROTO;
}

static int from_ctl(struct takeover *t)
{
	const struct nlattr *tb[BATON_A_MAX + 1];
	struct baton_msg *m = t->svc->msg;
	int err;

	err = msg_read(t->ctl, m, 0, tb);
	if (err == -ETIMEDOUT)
		return 0;
	if (err == -ENOBUFS) {
		why_truncated(t);
		return err;
	}
	if (err == -ECONNRESET) {
		snprintf(t->why, sizeof(t->why),
			 "the coordinator went away before activation");
		return -ECONNABORTED;
	}
	if (err) {
		snprintf(t->why, sizeof(t->why),
			 "malformed message from the coordinator: %s",
			 strerror(-err));
		return err;
	}
	if (m->nlh->nlmsg_type != BATON_MSG_SOCKETS)
		msg_close_fds(m);	/* only SOCKETS brings any */
	switch (m->nlh->nlmsg_type) {
	case BATON_MSG_SOCKETS:
		return adopt_batch(t, m, true);
	case BATON_MSG_ACTIVATE:
		t->activate_flags = attr_u32(tb, BATON_A_FLAGS, 0);
		if (t->activate_flags & ~BATON_ACTIVATE_F_ALL) {
			snprintf(t->why, sizeof(t->why),
				 "ACTIVATE with unknown flags %#x",
				 t->activate_flags);
			return -EINVAL;
		}
		t->activate = true;
		/* the old went away before we knew: we lack what it had */
		if (t->activate_flags & BATON_ACTIVATE_F_PEER_LOST) {
			if (t->peer >= 0)
				close(t->peer);
			t->peer = -1;
			t->peer_lost = !t->phase2_done;
		}
		return 0;
	case BATON_MSG_ERROR:
		return msg_error_text(tb, t->why, sizeof(t->why));
	default:
		msg_close_fds(m);
		snprintf(t->why, sizeof(t->why),
			 "unexpected %s from the coordinator",
			 msg_type_name(m->nlh->nlmsg_type));
		return -EPROTO;
	}
}

/* The coordinator's first word: how long its steps may take. */
static int start(struct takeover *t)
{
	struct reply r;
	__u32 flags;
	int err;

	err = msg_reply(t->ctl, t->svc->msg, BATON_WELCOME_TIMEOUT_MS,
			BATON_MSG_START, &r);
	if (err) {
		snprintf(t->why, sizeof(t->why),
			 "no START from the coordinator: %s",
			 r.how == REPLY_NONE ? strerror(-err) : r.text);
		return err;
	}
	t->timeout_ms = attr_u32(r.tb, BATON_A_TIMEOUT_MS, 0) ?:
			BATON_UPGRADE_TIMEOUT_MS;
	if (attr_u32(r.tb, BATON_A_TIMEOUT_MS, 0) > BATON_TIMEOUT_MS_MAX) {
		snprintf(t->why, sizeof(t->why),
			 "START says a step takes %u ms, more than the %d ms any may take",
			 attr_u32(r.tb, BATON_A_TIMEOUT_MS, 0),
			 BATON_TIMEOUT_MS_MAX);
		return -ERANGE;
	}
	flags = attr_u32(r.tb, BATON_A_FLAGS, 0);
	if (flags & ~BATON_START_F_ALL) {
		snprintf(t->why, sizeof(t->why),
			 "START with unknown flags %#x: a newer coordinator?",
			 flags);
		return -EINVAL;
	}
	/* the listeners, which come first, are rebuilt here */
	t->netns = flags & BATON_UPGRADE_F_NETNS;
	return 0;
}

/*
 * Waits up to the step's time for the old instance or the coordinator;
 * 1 if the old instance has something, 0 if the coordinator had (and it
 * was taken).
 */
static int wait_peers(struct takeover *t)
{
	struct pollfd p[2] = {
		{ .fd = t->peer, .events = POLLIN },
		{ .fd = t->ctl, .events = POLLIN },
	};
	/* from READY, phase 2 comes within the blackout: see msg_poll() */
	__u64 spin = t->phase1_done && !t->phase2_done ?
		     t->t_ready + MSG_SPIN_NS : 0;
	int n;

	do {
		n = msg_poll(p, 2, spin, 2 * t->timeout_ms);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0) {
		snprintf(t->why, sizeof(t->why),
			 "neither the old instance nor the coordinator said anything for %d ms",
			 2 * t->timeout_ms);
		return -ETIMEDOUT;
	}
	if (t->peer >= 0 && p[0].revents)
		return 1;
	return from_ctl(t);
}

/* Hello to the old instance, and its welcome: can we read its state? */
static int greet(struct takeover *t)
{
	struct baton_service *svc = t->svc;
	const struct hello h = {
		.role = BATON_ROLE_SUCCESSOR, .pid = getpid(),
		.app = svc->app_name, .ver = svc->ver,
		.takes = svc->o.ops->drop_conn ? BATON_TAKES_CONNS_EARLY : 0,
	};
	struct welcome w;
	struct reply r;
	struct ucred cred;
	int err;

	t->peer = ctl_connect(svc->res.paths.sock, BATON_WELCOME_TIMEOUT_MS);
	if (t->peer == -ECONNREFUSED || t->peer == -ENOENT) {
		snprintf(t->lost_why, sizeof(t->lost_why),
			 "no serving instance at %s (%s)",
			 svc->res.paths.sock, strerror(-t->peer));
		return peer_gone(t);
	}
	if (t->peer < 0) {
		err = t->peer;
		snprintf(t->why, sizeof(t->why),
			 "cannot reach the serving instance at %s: %s",
			 svc->res.paths.sock, strerror(-err));
		return err;
	}
	err = ctl_peer_check(t->peer, &cred);
	if (err == -EPERM) {
		snprintf(t->why, sizeof(t->why),
			 "the socket at %s belongs to uid %d: refused",
			 svc->res.paths.sock, cred.uid);
		return err;
	}
	if (err) {
		snprintf(t->why, sizeof(t->why),
			 "cannot tell who serves at %s: %s",
			 svc->res.paths.sock, strerror(-err));
		return err;
	}
	err = hello_put(svc->msg, &h) ?:
	      to_peer(t, msg_send(t->peer, svc->msg));
	while (!err && t->peer >= 0 && !t->peer_lost) {
		err = wait_peers(t);
		if (err <= 0)
			continue;
		err = msg_reply(t->peer, svc->msg, 0, BATON_MSG_WELCOME, &r);
		if (!err)
			break;
		if (err == -ECONNRESET)
			return peer_gone(t);
		if (r.how == REPLY_ERROR)
			snprintf(t->why, sizeof(t->why), "%s", r.text);
		else if (r.how == REPLY_OTHER)
			snprintf(t->why, sizeof(t->why),
				 "expected WELCOME, got %s", r.text);
		else
			snprintf(t->why, sizeof(t->why),
				 "no welcome from the serving instance: %s",
				 strerror(-err));
		return err;
	}
	if (err || t->peer < 0)
		return err;
	welcome_get(r.tb, &w);
	err = versions_check(&w.ver, &svc->ver, t->why, sizeof(t->why));
	if (err)
		return err;
	t->t_welcome = now_ns();
	pr_info(&svc->log, "taking over %s from pid %d (%s)", svc->service,
		w.pid, w.app);
	return 0;
}

/* Activate once phase 2 is here and the coordinator said yes, or lost it. */
static bool may_activate(const struct takeover *t)
{
	if (t->phase2_done)
		return t->activate ||
		       (t->deactivate_flags & BATON_DEACTIVATE_F_DIRECT);
	return t->peer_lost && t->activate;
}

static int exchange(struct takeover *t)
{
	int err = 0;

	while (!err && !may_activate(t)) {
		err = wait_peers(t);
		if (err > 0)
			err = from_peer(t);
	}
	return err;
}

int takeover_run(struct baton_service *svc, int ctl)
{
	struct takeover t = { .svc = svc, .peer = -1, .ctl = ctl,
			      .tcp_blob = -1, .conns_blob = -1 };
	int err;

	/* 72 KiB: not for the stack of a library's caller */
	t.batch = malloc(BATON_MAX_FDS_PER_MSG * sizeof(*t.batch));
	if (!t.batch) {
		snprintf(t.why, sizeof(t.why), "out of memory");
		err = -ENOMEM;
	} else {
		err = start(&t) ?:
		      resources_open(&svc->res, t.why, sizeof(t.why)) ?:
		      greet(&t) ?: exchange(&t) ?: activate(&t);
	}
	if (err) {
		/* before the old hears of it: it restores them itself */
		repair_in_abort(&t);
		if (!t.why[0])
			snprintf(t.why, sizeof(t.why), "%s", strerror(-err));
		pr_err(&svc->log, "takeover failed: %s", t.why);
		/*
		 * the lock goes before the old hears of it, or it takes our
		 * holding it for a takeover that went through
		 */
		resources_unlock(&svc->res);
		msg_send_error(ctl, svc->msg, err, "%s", t.why);
		if (t.peer >= 0)
			msg_send_error(t.peer, svc->msg, err, "%s", t.why);
		resources_close(&svc->res, svc->ep);
	}
	if (t.peer >= 0)
		close(t.peer);
	close(ctl);
	repair_in_free(&t);
	sock_set_free(&t.ids);
	free(t.batch);
	return err;
}
