// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The new instance's side: started by the coordinator with BATON_CTL_FD,
 * it finds the serving instance on the well-known socket, takes its
 * sockets and state, says it is ready, imports the foreground state when
 * the old has stopped, takes the single-access resources and serves.
 *
 * It reads two peers: the old instance (phases 1 and 2) and the
 * coordinator (ACTIVATE; and, if the old went away, the coordinator's own
 * copies of the sockets).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "service/instance.h"

struct takeover {
	struct baton_service *svc;
	int peer;
	int ctl;
	struct held_socket *batch;	/* one SOCKETS message's sockets */
	struct sock_key *ids;	/* every adopted socket */
	unsigned int nids, cap, nsorted;
	__u32 listeners, conns, records;
	bool phase1_done, phase2_done, activate;
	__u32 activate_flags;
	__u64 t_welcome;
	char why[256];
};

static bool already_adopted(struct takeover *t, struct sock_key key)
{
	return t->nsorted &&
	       bsearch(&key, t->ids, t->nsorted, sizeof(key), sock_key_cmp);
}

static int remember(struct takeover *t, struct sock_key key)
{
	if (t->nids == t->cap) {
		unsigned int cap = t->cap ? t->cap * 2 : 1024;
		struct sock_key *ids = realloc(t->ids, cap * sizeof(*ids));

		if (!ids)
			return -ENOMEM;
		t->ids = ids;
		t->cap = cap;
	}
	t->ids[t->nids++] = key;
	return 0;
}

/* from_ctl: the coordinator's copies, after the old went away */
static int adopt_batch(struct takeover *t, struct baton_msg *m, bool from_ctl)
{
	struct baton_service *svc = t->svc;
	struct held_socket *socks = t->batch;
	unsigned int n, i;
	int err;

	if (from_ctl && t->nsorted != t->nids) {
		qsort(t->ids, t->nids, sizeof(*t->ids), sock_key_cmp);
		t->nsorted = t->nids;
	}
	err = sockets_parse(m, socks, &n);
	if (err)
		return err;
	for (i = 0; i < n; i++) {
		struct sock_key key = sock_key(&socks[i].si);

		if (from_ctl && already_adopted(t, key)) {
			close(socks[i].fd);
			continue;
		}
		err = remember(t, key);
		sockets_addresses(&socks[i]);
		if (!err)
			err = svc->o.ops->adopt_socket(svc->o.app, socks[i].fd,
						       &socks[i].si);
		if (err) {
			snprintf(t->why, sizeof(t->why),
				 "the application refused socket %llu: %s",
				 (unsigned long long)socks[i].si.id,
				 strerror(-err));
			goto close_rest;
		}
		if (socks[i].si.kind == BATON_SOCK_LISTENER)
			t->listeners++;
		else
			t->conns++;
	}
	return 0;

close_rest:
	for (; i < n; i++)
		close(socks[i].fd);
	return err;
}

struct load_ctx {
	struct baton_service *svc;
	bool conn;
};

static int load_one(void *data, const struct baton_rec *rec)
{
	struct load_ctx *ctx = data;
	const struct baton_app_ops *ops = ctx->svc->o.ops;

	return ctx->conn ? ops->load_conn(ctx->svc->o.app, rec) :
			   ops->load_state(ctx->svc->o.app, rec);
}

static int load_blob(struct takeover *t, struct baton_msg *m,
		     const struct nlattr **tb)
{
	__u32 kind = attr_u32(tb, BATON_A_BLOB_KIND, 0), n = 0;
	struct load_ctx ctx = { t->svc, kind == BATON_BLOB_CONNS };
	int err;

	if (m->nfds != 1 || kind < BATON_BLOB_STATE || kind > BATON_BLOB_CONNS) {
		snprintf(t->why, sizeof(t->why), "malformed BLOB message");
		return -EBADMSG;
	}
	err = blob_read(m->fds[0], kind, load_one, &ctx, &n);
	msg_close_fds(m);
	if (err) {
		snprintf(t->why, sizeof(t->why),
			 "cannot load the old instance's %s: %s",
			 kind == BATON_BLOB_CONNS ? "connection records" :
						    "service state",
			 strerror(-err));
		return err;
	}
	if (ctx.conn)
		t->records += n;
	return 0;
}

static int send_ready(struct takeover *t)
{
	struct baton_msg *m = t->svc->msg;

	msg_init(m, BATON_MSG_READY);
	return msg_put_u32(m, BATON_A_LISTENERS, t->listeners) ?:
	       msg_put_u32(m, BATON_A_CONNS, t->conns) ?:
	       msg_put_u64(m, BATON_A_TIME_NS, t->t_welcome) ?:
	       msg_put_str(m, BATON_A_APP, t->svc->app_name) ?:
	       msg_send(t->ctl, m);
}

static int from_peer(struct takeover *t)
{
	const struct nlattr *tb[BATON_A_MAX + 1];
	struct baton_msg *m = t->svc->msg;
	int err;

	err = msg_read(t->peer, m, -1, tb);
	if (err == -ECONNRESET) {
		/* the old is gone: what it had, the coordinator holds */
		pr_warn(&t->svc->log, "the old instance went away; asking the coordinator");
		close(t->peer);
		t->peer = -1;
		return msg_send_simple(t->ctl, m, BATON_MSG_PEER_LOST, 0);
	}
	if (err) {
		msg_close_fds(m);
		snprintf(t->why, sizeof(t->why),
			 "malformed message from the old instance: %s",
			 strerror(-err));
		return err;
	}
	switch (m->nlh->nlmsg_type) {
	case BATON_MSG_SOCKETS:
		if (t->phase1_done)
			break;
		return adopt_batch(t, m, false);
	case BATON_MSG_BLOB:
		return load_blob(t, m, tb);
	case BATON_MSG_SYNC:
		/* everything before it is taken: the old may stop accepting */
		return msg_send_simple(t->peer, m, BATON_MSG_SYNC, 0);
	case BATON_MSG_PHASE1_DONE:
		if (t->phase1_done)
			break;
		t->phase1_done = true;
		return send_ready(t);
	case BATON_MSG_PHASE2_DONE:
		if (!t->phase1_done)
			break;
		t->phase2_done = true;
		return 0;
	case BATON_MSG_ERROR:
		err = msg_error_text(tb, t->why, sizeof(t->why));
		return err;
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

	err = msg_read(t->ctl, m, -1, tb);
	if (err) {
		msg_close_fds(m);
		snprintf(t->why, sizeof(t->why),
			 "the coordinator went away before activation");
		return -ECONNABORTED;
	}
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
		return 0;
	default:
		msg_close_fds(m);
		snprintf(t->why, sizeof(t->why),
			 "unexpected %s from the coordinator",
			 msg_type_name(m->nlh->nlmsg_type));
		return -EPROTO;
	}
}

/* Hello to the old instance, and its welcome: can we read its state? */
static int greet(struct takeover *t)
{
	struct baton_service *svc = t->svc;
	const struct hello h = {
		.role = BATON_ROLE_SUCCESSOR, .pid = getpid(),
		.app = svc->app_name, .ver = svc->ver,
	};
	struct welcome w;
	struct reply r = { .how = REPLY_NONE };
	struct ucred cred;
	int err;

	t->peer = ctl_connect(svc->res.paths.sock);
	if (t->peer < 0) {
		err = t->peer;
		snprintf(t->why, sizeof(t->why),
			 "cannot reach the serving instance at %s: %s",
			 svc->res.paths.sock, strerror(-err));
		return err;
	}
	err = ctl_peer_check(t->peer, &cred);
	if (err) {
		snprintf(t->why, sizeof(t->why),
			 "the socket at %s belongs to uid %d: refused",
			 svc->res.paths.sock, cred.uid);
		return err;
	}
	err = hello_put(svc->msg, &h) ?: msg_send(t->peer, svc->msg) ?:
	      msg_reply(t->peer, svc->msg,
			svc->o.timeout_ms ?: BATON_WELCOME_TIMEOUT_MS,
			BATON_MSG_WELCOME, &r);
	if (err && r.how == REPLY_ERROR)
		snprintf(t->why, sizeof(t->why), "%s", r.text);
	else if (err && r.how == REPLY_OTHER)
		snprintf(t->why, sizeof(t->why), "expected WELCOME, got %s",
			 r.text);
	else if (err)
		snprintf(t->why, sizeof(t->why),
			 "no welcome from the serving instance: %s",
			 strerror(-err));
	if (err)
		return err;
	welcome_get(r.tb, &w);
	err = versions_check(&w.ver, &svc->ver, t->why, sizeof(t->why));
	if (err)
		return err;
	t->t_welcome = now_ns();
	pr_info(&svc->log, "taking over %s from pid %d (%s)", svc->service,
		cred.pid, w.app);
	return 0;
}

static int exchange(struct takeover *t)
{
	int err = 0;

	/*
	 * The coordinator sends ACTIVATE only after the old said DEACTIVATED,
	 * which it says after PHASE2_DONE: once ACTIVATE is read, the old's
	 * messages are already queued, unless it went away.
	 */
	while (!err && !(t->activate && (t->phase2_done || t->peer < 0 ||
					 (t->activate_flags &
					  BATON_ACTIVATE_F_PEER_LOST)))) {
		struct pollfd p[2] = {
			{ .fd = t->ctl, .events = POLLIN },
			{ .fd = t->peer, .events = POLLIN },
		};

		if (t->activate && t->peer >= 0) {
			err = from_peer(t);
			continue;
		}
		if (poll(p, t->peer >= 0 ? 2 : 1, -1) < 0) {
			err = errno == EINTR ? 0 : -errno;
			continue;
		}
		if (p[1].revents && t->peer >= 0)
			err = from_peer(t);
		else if (p[0].revents)
			err = from_ctl(t);
	}
	return err;
}

static int activate(struct takeover *t)
{
	struct baton_service *svc = t->svc;
	struct baton_msg *m = svc->msg;
	int err;

	if (!t->phase2_done)	/* the old went away mid-way */
		t->activate_flags |= BATON_ACTIVATE_F_PEER_LOST;
	err = svc_take(svc);
	if (err) {
		snprintf(t->why, sizeof(t->why),
			 "cannot take the service's resources (%s): %s",
			 svc->res.paths.lock, strerror(-err));
		return err;
	}
	if (svc->o.ops->acquire) {
		err = svc->o.ops->acquire(svc->o.app);
		if (err) {
			snprintf(t->why, sizeof(t->why),
				 "the application could not take its resources: %s",
				 strerror(-err));
			return err;
		}
	}
	err = svc->o.ops->activate(svc->o.app, t->activate_flags);
	if (err) {
		snprintf(t->why, sizeof(t->why),
			 "the application could not activate: %s",
			 strerror(-err));
		return err;
	}
	msg_init(m, BATON_MSG_ACTIVE);
	err = msg_put_u64(m, BATON_A_TIME_NS, now_ns()) ?:
	      msg_put_u32(m, BATON_A_RECORDS, t->records);
	if (err)
		return err;
	if (t->peer >= 0)
		msg_send(t->peer, m);	/* it may have gone; no matter */
	msg_send(t->ctl, m);
	pr_info(&svc->log, "active: %u listeners, %u connections, %u records",
		t->listeners, t->conns, t->records);
	return 0;
}

int takeover_run(struct baton_service *svc, int ctl)
{
	struct takeover t = { .svc = svc, .peer = -1, .ctl = ctl };
	int err;

	/* 72 KiB: not for the stack of a library's caller */
	t.batch = malloc(BATON_MAX_FDS_PER_MSG * sizeof(*t.batch));
	if (!t.batch) {
		snprintf(t.why, sizeof(t.why), "out of memory");
		err = -ENOMEM;
	} else {
		err = greet(&t) ?: exchange(&t) ?: activate(&t);
	}
	if (err) {
		pr_err(&svc->log, "takeover failed: %s", t.why);
		msg_send_error(ctl, svc->msg, err, "%s", t.why);
		svc_release(svc);
	}
	if (t.peer >= 0)
		close(t.peer);
	close(ctl);
	free(t.ids);
	free(t.batch);
	return err;
}
