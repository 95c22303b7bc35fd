// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The serving instance's phase 1: the copies the coordinator keeps from
 * the start (listeners and the control socket, so that the service
 * outlives this instance whenever it goes), then every socket and the
 * service-wide state to the new instance, while this one still serves.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "service/instance.h"

static int export_add(struct baton_export *exp, int fd, __u64 id,
		      enum baton_sock_kind kind)
{
	struct held_socket *s;

	if (exp->no_conns && kind == BATON_SOCK_CONN)
		return 0;
	if (exp->limit && exp->n == exp->limit) {
		exp->left++;	/* a later turn's, unless sent already */
		return 0;
	}
	/* only what is new */
	if (exp->skip &&
	    sock_set_has(exp->skip, (struct sock_key){ .id = id, .kind = kind }))
		return 0;
	if (exp->n == exp->cap) {
		unsigned int cap = exp->cap ? exp->cap * 2 : 256;

		s = realloc(exp->socks, cap * sizeof(*s));
		if (!s)
			return -ENOMEM;
		exp->socks = s;
		exp->cap = cap;
	}
	/*
	 * Addresses are read where the socket arrives (sockets_addresses()):
	 * two syscalls a socket are not for the serving instance's time.
	 */
	s = &exp->socks[exp->n];
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->si.id = id;
	s->si.kind = kind;
	exp->n++;
	return 0;
}

int baton_export_socket(struct baton_export *exp, int fd, __u64 id,
			enum baton_sock_kind kind)
{
	if (fd < 0 || !id ||
	    (kind != BATON_SOCK_LISTENER && kind != BATON_SOCK_CONN))
		return -EINVAL;
	kind == BATON_SOCK_LISTENER ? exp->listeners++ : exp->conns++;
	return export_add(exp, fd, id, kind);
}

/*
 * The application's sockets, and the control socket with them; with
 * no_conns, the listeners only. In repair mode connections move in the
 * blackout, by checkpoint: not here.
 */
static int export_all(struct baton_service *svc, unsigned int flags,
		      bool no_conns)
{
	struct baton_export *exp = &svc->exp;
	int err;

	exp->n = exp->listeners = exp->conns = 0;
	exp->no_conns = no_conns || (svc->flags & BATON_UPGRADE_F_REPAIR);
	err = svc->o.ops->export_sockets(svc->o.app, exp, svc->flags, flags);
	exp->no_conns = false;
	if (err) {
		pr_err(&svc->log, "the application could not list its sockets: %s",
		       strerror(-err));
		return err;
	}
	if (svc->flags & BATON_UPGRADE_F_REPAIR)
		exp->conns = 0;
	return export_add(exp, svc->res.listen_fd, CONTROL_ID,
			  BATON_SOCK_CONTROL);
}

/*
 * Repair mode, in the blackout: the connections as they are now (the
 * application lists them once more), checkpointed and sent.
 */
int phase2_checkpoints(struct baton_service *svc, struct steps *st,
		       __u32 *count, __u32 *freeze_id)
{
	struct baton_export *exp = &svc->exp;
	int err;

	exp->n = exp->listeners = exp->conns = 0;
	/*
	 * A checkpoint file's (freeze_ms) keeps the listeners where they
	 * are, but freezes their ports: the application lists them too
	 */
	err = svc->o.ops->export_sockets(svc->o.app, exp, svc->freeze_ms ?
					 svc->flags & ~BATON_UPGRADE_F_OWN_LISTENERS :
					 svc->flags, BATON_EXPORT_F_FINAL);
	if (err) {
		pr_err(&svc->log, "phase 2: the application could not list its connections: %s",
		       strerror(-err));
		return err;
	}
	/* the connections, and for a checkpoint the listeners (ports) */
	return repair_out_checkpoint(svc, exp->socks, exp->n, st, count,
				     freeze_id);
}

/*
 * A coordinator attaches: it keeps copies of the listeners and the control
 * socket from its first exchange on, so that the service outlives this
 * instance whenever it goes. The connections are not even listed: at
 * 10,000 of them that took 29 ms, our clients waiting.
 */
int copies_to_coordinator(struct baton_service *svc, int ctl)
{
	struct baton_export *exp = &svc->exp;
	int err;

	err = export_all(svc, 0, true);
	if (err)
		return err;
	return sockets_send(ctl, svc->msg, exp->socks, exp->n);
}

/*
 * UPGRADE: the new instance writes where this one writes: our stdout and
 * stderr go with the acknowledgement.
 */
int upgrade_ack(struct baton_service *svc)
{
	struct baton_msg *m = svc->msg;
	int err, fd;

	msg_init(m, BATON_MSG_UPGRADE_ACK);
	for (fd = 1; fd <= 2 && fcntl(fd, F_GETFD) >= 0; fd++)
		msg_add_fd(m, fd);
	err = msg_put_u32(m, BATON_A_STDIO, m->nfds) ?: msg_send(svc->ctl, m);
	m->nfds = 0;		/* they stay ours */
	return err;
}

/*
 * skip_empty: a blob without a record is not sent. In the blackout an
 * empty one tells the new instance nothing it would not assume (no
 * connection record: none changed, or none is left; no state change),
 * and its memfd, sealing and message cost more than the rest of a
 * blackout with nothing to move.
 */
static int send_blob(struct baton_service *svc, enum baton_blob_kind kind,
		     int (*save)(void *, struct baton_rec_writer *),
		     __u32 *records, __u64 *bytes, bool skip_empty)
{
	struct baton_rec_writer w;
	int err, memfd, more = 0;

	err = writer_init(&w, kind, svc->service, svc->ver.state);
	if (!err && save)
		more = save(svc->o.app, &w);
	if (more < 0)
		err = more;
	if (!err && !w.err && skip_empty && !w.count && !more)
		goto free_writer;
	if (!err)
		err = w.err ?: writer_finish(&w, &memfd);
	if (err)
		goto free_writer;
	err = blob_send(svc->succ, svc->msg, kind, memfd, w.count);
	close(memfd);
	if (!err && more > 0)
		err = 1;	/* the application has more */
	if (records)
		*records += w.count;
	if (bytes)
		*bytes += w.len;
free_writer:
	writer_free(&w);
	return err;
}

/*
 * Phase 2's records: the connections' (those that changed since phase 1,
 * if their records went then) then the state's changes.
 */
int phase2_blobs(struct baton_service *svc, struct steps *st, __u32 *records,
		 __u64 *bytes)
{
	int err;

	if (!(svc->flags & BATON_UPGRADE_F_DRAIN)) {
		err = send_blob(svc, BATON_BLOB_CONNS, svc->conns_early ?
				svc->o.ops->save_conns_changed :
				svc->o.ops->save_conns, records, bytes,
				!svc->repair);
		steps_mark(st, "connection records");
		if (err) {
			pr_err(&svc->log, "phase 2: cannot hand over connection state: %s",
			       strerror(-err));
			return err;
		}
	}
	err = send_blob(svc, BATON_BLOB_DELTA, svc->o.ops->save_delta, NULL,
			bytes, !svc->repair);
	steps_mark(st, "state changes");
	if (err)
		pr_err(&svc->log, "phase 2: cannot hand over state changes: %s",
		       strerror(-err));
	return err;
}

/*
 * The connections' records with their sockets, where both sides can: the
 * blackout then carries only those that changed (save_conns_changed()).
 * After the rounds and the sockets' final pass, as late as phase 1 can:
 * what changes between here and the blackout is a millisecond's, not the
 * rounds' (at 1,000 connections, each asked 10 times a second, about 150
 * records went in the blackout when they were sent before the rounds, a
 * snapshot's 12 ms before).
 * Not in repair mode, where connections move in the blackout, nor in
 * drain mode, where they stay.
 */
static int conns_early(struct baton_service *svc)
{
	int err;

	svc->conns_early = false;
	svc->early_records = 0;
	if (!(svc->succ_takes & BATON_TAKES_CONNS_EARLY) ||
	    !svc->o.ops->save_conns_changed ||
	    (svc->flags & (BATON_UPGRADE_F_REPAIR | BATON_UPGRADE_F_DRAIN)))
		return 0;
	err = send_blob(svc, BATON_BLOB_CONNS, svc->o.ops->save_conns,
			&svc->early_records, NULL, false);
	if (err) {
		pr_err(&svc->log, "phase 1: cannot hand over connection state: %s",
		       strerror(-err));
		return err < 0 ? err : -EINVAL;
	}
	svc->conns_early = true;
	return 0;
}

/* Phase 1, final pass: stop accepting; what came since, and done. */
static int phase1_final(struct baton_service *svc)
{
	struct baton_export *exp = &svc->exp;
	struct baton_msg *m = svc->msg;
	unsigned int n, listeners, conns;
	int err;

	exp->skip = &svc->sent;
	err = export_all(svc, BATON_EXPORT_F_FINAL, false);
	exp->skip = NULL;
	svc->state = SVC_PHASE1;
	/* the coordinator's READY step, then its DEACTIVATE, come first */
	svc_deadline(svc, 2 * svc->ctl_timeout_ms);
	if (err)
		return err;
	listeners = exp->listeners;
	conns = exp->conns;
	n = exp->n;
	err = n ? sockets_send(svc->succ, m, exp->socks, n) : 0;
	if (err) {
		pr_err(&svc->log, "phase 1: cannot hand sockets to the new instance: %s",
		       strerror(-err));
		return err;
	}
	err = conns_early(svc);
	if (err)
		return err;
	msg_init(m, BATON_MSG_PHASE1_DONE);
	err = msg_put_u32(m, BATON_A_LISTENERS, listeners) ?:
	      msg_put_u32(m, BATON_A_CONNS, conns) ?:
	      msg_put_u32(m, BATON_A_FLAGS, svc->flags & BATON_PHASE1_F_ALL) ?:
	      msg_send(svc->succ, m);
	if (!err)
		pr_info(&svc->log, "phase 1: %u listeners and %u connections handed over (%u in the last pass)",
			listeners, conns, n);
	return err;
}

/*
 * Another round after this one? Not if it was small enough: the blackout
 * carries what changes during it. Not if the rounds stopped shrinking, or
 * there were as many as allowed: writes outrun the copy, and the blackout
 * carries a round's worth of them (the report says so).
 */
static bool round_again(struct baton_service *svc)
{
	struct rounds *rs = &svc->rounds;
	const struct baton_round *r = &rs->r[rs->n - 1];

	if (r->bytes <= svc->round_bytes)
		rs->end = BATON_PRECOPY_FIT;
	else if (!svc->o.ops->save_round)
		rs->end = BATON_PRECOPY_UNTRACKED;
	else if (rs->n >= svc->max_rounds ||
		 (rs->n > 2 && r->bytes >= r[-1].bytes))
		rs->end = BATON_PRECOPY_OUTRUN;
	return !rs->end;
}

/*
 * One part of the service-wide state: of the snapshot, then of each round
 * of what changed during the one before. The application serves between
 * parts, and the work eventfd brings us back. A round ends with SYNC: it
 * is copied once the new instance has taken it (phase1_synced()).
 */
static int phase1_round(struct baton_service *svc)
{
	struct rounds *rs = &svc->rounds;
	struct baton_round *r = &rs->r[rs->n];
	bool snapshot = !rs->n;
	__u64 one = 1;
	int err;

	err = send_blob(svc, snapshot ? BATON_BLOB_STATE : BATON_BLOB_DELTA,
			snapshot ? svc->o.ops->save_state :
				   svc->o.ops->save_round,
			&r->records, &r->bytes, false);
	if (err < 0) {
		pr_err(&svc->log, "phase 1: cannot hand over the service state (round %u): %s",
		       rs->n + 1, strerror(-err));
		return err;
	}
	if (err > 0)
		return write(svc->work, &one, sizeof(one)) < 0 ? -errno : 0;
	svc->round_whole = true;
	return msg_send_simple(svc->succ, svc->msg, BATON_MSG_SYNC, 0);
}

/*
 * The new instance has taken the round: another, if round_again() says
 * so, serving first; else the final pass.
 */
int phase1_synced(struct baton_service *svc)
{
	struct rounds *rs = &svc->rounds;
	__u64 now = now_ns(), one = 1;

	if (!svc->round_whole)
		return -EPROTO;
	svc->round_whole = false;
	rs->r[rs->n].ns = now - svc->round_t0;
	rs->n++;
	if (!round_again(svc))
		return phase1_final(svc);
	memset(&rs->r[rs->n], 0, sizeof(rs->r[0]));
	svc->round_t0 = now;
	return write(svc->work, &one, sizeof(one)) < 0 ? -errno : 0;
}

/*
 * Phase 1 failed: often because the new instance gave up (a batch of
 * sockets past its open-file limit) and went, and our next message found
 * it gone. What it said before it went, if it did, is the reason.
 */
int phase1_failed(struct baton_service *svc)
{
	const struct nlattr *tb[BATON_A_MAX + 1];
	char why[256] = "phase 1 failed";

	if (svc->succ >= 0 && !msg_read(svc->succ, svc->msg, 0, tb)) {
		msg_close_fds(svc->msg);
		if (svc->msg->nlh->nlmsg_type == BATON_MSG_ERROR)
			msg_error_text(tb, why, sizeof(why));
	}
	return rollback(svc, why);
}

/* succ watched for its messages, and with out, for room to send too */
static int succ_watch(struct baton_service *svc, bool out)
{
	struct epoll_event ev = {
		.events = EPOLLIN | (out ? EPOLLOUT : 0),
		.data.u64 = TAG_SUCC,
	};

	if (epoll_ctl(svc->ep, EPOLL_CTL_MOD, svc->succ, &ev) < 0)
		return -errno;
	svc->succ_wait_room = out;
	return 0;
}

/*
 * Whether succ has room for a turn, and if not, EPOLLOUT asked for.
 * It polls writable below a quarter of its send buffer, and a turn is
 * far less. Without room, sendmsg() would wait for the new instance to
 * read, however long it is kept from it, and our clients with it; the
 * turn waits instead, and we serve.
 */
static int succ_has_room(struct baton_service *svc, bool *room)
{
	struct pollfd p = { .fd = svc->succ, .events = POLLOUT };

	if (poll(&p, 1, 0) < 0)
		return -errno;
	/* a peer gone: the send says so */
	*room = p.revents & (POLLOUT | POLLERR | POLLHUP);
	if (*room || svc->succ_wait_room)
		return 0;
	return succ_watch(svc, true);
}

/*
 * Phase 1, first pass: the sockets not sent yet, PHASE1_SOCKETS_PER_TURN
 * at most, the application serving between turns. It lists them again
 * each turn: one closed meanwhile is gone from the list, and a descriptor
 * number taken again is another socket, with another id. Then the
 * service-wide state, in rounds.
 */
static int phase1_sockets(struct baton_service *svc)
{
	struct baton_export *exp = &svc->exp;
	unsigned int i;
	__u64 one = 1;
	bool room = false;
	int err;

	svc->sockets_left = true;
	err = succ_has_room(svc, &room);
	if (err || !room)
		return err;	/* succ_room() brings us back */
	exp->skip = &svc->sent;
	exp->limit = PHASE1_SOCKETS_PER_TURN;
	exp->left = 0;
	err = export_all(svc, 0, false);
	exp->skip = NULL;
	exp->limit = 0;
	if (err)
		return err;
	for (i = 0; i < exp->n; i++) {
		err = sock_set_add(&svc->sent, sock_key(&exp->socks[i].si));
		if (err < 0)
			return err;
	}
	err = sockets_send(svc->succ, svc->msg, exp->socks, exp->n);
	if (err) {
		pr_err(&svc->log, "phase 1: cannot hand sockets to the new instance: %s",
		       strerror(-err));
		return err;
	}
	svc->sockets_left = exp->left;
	if (svc->sockets_left)
		return write(svc->work, &one, sizeof(one)) < 0 ? -errno : 0;
	memset(&svc->rounds, 0, sizeof(svc->rounds));
	svc->round_whole = false;
	svc->round_t0 = now_ns();
	return phase1_round(svc);
}

/* succ has room again: EPOLLIN only, and the first pass goes on */
void succ_room(struct baton_service *svc)
{
	int err;

	err = succ_watch(svc, false);
	if (!err && svc->state == SVC_PRECOPY && svc->sockets_left)
		err = phase1_sockets(svc);
	if (err)
		phase1_failed(svc);
}

void work_readable(struct baton_service *svc)
{
	__u64 n;
	int err;

	if (read(svc->work, &n, sizeof(n)) < 0 || svc->state != SVC_PRECOPY)
		return;
	if (svc->sockets_left)
		err = phase1_sockets(svc);
	else if (!svc->round_whole && !svc->rounds.end)
		err = phase1_round(svc);
	else
		return;
	if (err)
		phase1_failed(svc);
}

/*
 * Phase 1, first pass: every socket, a few hundred a turn, and the
 * service-wide state, in rounds, while the old still serves and still
 * accepts, then SYNC. The final pass, once the new has taken all this, is
 * short: new clients wait in the backlog only for it and the blackout.
 */
int phase1_bulk(struct baton_service *svc)
{
	svc->state = SVC_PRECOPY;	/* from here, a failure must resume */
	svc_deadline(svc, 2 * svc->ctl_timeout_ms);
	sock_set_free(&svc->sent);
	/* nothing of an earlier upgrade's rounds: a SYNC now answers none */
	memset(&svc->rounds, 0, sizeof(svc->rounds));
	svc->round_whole = false;
	return phase1_sockets(svc);
}

