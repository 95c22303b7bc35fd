// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The serving instance's side of the handover: phase 1 (its sockets and
 * state to the new instance, while it serves), deactivation (phase 2, the
 * blackout), and then termination, draining or rollback, as the
 * coordinator and the new instance say.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "service/instance.h"

int baton_export_socket(struct baton_export *exp, int fd, __u64 id,
			enum baton_sock_kind kind)
{
	struct held_socket *s;

	if (fd < 0 || !id ||
	    (kind != BATON_SOCK_LISTENER && kind != BATON_SOCK_CONN))
		return -EINVAL;
	kind == BATON_SOCK_LISTENER ? exp->listeners++ : exp->conns++;
	if (exp->nskip) {	/* the final pass: only what is new */
		struct sock_key key = { .id = id, .kind = kind };

		if (bsearch(&key, exp->skip, exp->nskip, sizeof(key),
			    sock_key_cmp))
			return 0;
	}
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

/* Rollback: take everything back and serve again. Nothing was closed. */
void rollback(struct baton_service *svc, const char *why)
{
	bool was_running = svc->state >= SVC_PRECOPY;
	int err;

	if (svc->state == SVC_SERVING && svc->succ < 0)
		return;
	pr_warn(&svc->log, "rolling back the upgrade of %s: %s", svc->service,
		why);
	ctl_close(svc->ep, &svc->succ);
	svc->expect_pid = 0;
	err = svc_take(svc);
	if (err)
		pr_err(&svc->log, "rollback: cannot take back %s's resources: %s",
		       svc->service, strerror(-err));
	if (was_running)
		svc->o.ops->resume(svc->o.app);
	svc->state = SVC_SERVING;
	if (svc->ctl >= 0 &&
	    msg_send_simple(svc->ctl, svc->msg, BATON_MSG_RESUMED, 0))
		ctl_close(svc->ep, &svc->ctl);
}

static int send_blob(struct baton_service *svc, enum baton_blob_kind kind,
		     int (*save)(void *, struct baton_rec_writer *),
		     __u32 *records, __u64 *bytes)
{
	struct baton_rec_writer w;
	int err, memfd, more = 0;

	err = writer_init(&w, kind, svc->service, svc->ver.state);
	if (!err && save)
		more = save(svc->o.app, &w);
	if (more < 0)
		err = more;
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

/* Copies to the coordinator first: they outlive either instance. */
static int send_sockets(struct baton_service *svc, const struct held_socket *s,
			unsigned int n)
{
	int err = sockets_send(svc->ctl, svc->msg, s, n);

	if (err) {
		pr_err(&svc->log, "phase 1: cannot hand copies to the coordinator: %s",
		       strerror(-err));
		return err;
	}
	err = sockets_send(svc->succ, svc->msg, s, n);
	if (err)
		pr_err(&svc->log, "phase 1: cannot hand sockets to the new instance: %s",
		       strerror(-err));
	return err;
}

/*
 * One part of the service-wide state; the application serves between
 * parts, and the work eventfd brings us back for the next.
 */
static int phase1_state(struct baton_service *svc)
{
	__u64 one = 1;
	int err;

	err = send_blob(svc, BATON_BLOB_STATE, svc->o.ops->save_state, NULL,
			NULL);
	if (err < 0) {
		pr_err(&svc->log, "phase 1: cannot hand over the service state: %s",
		       strerror(-err));
		return err;
	}
	if (err > 0)
		return write(svc->work, &one, sizeof(one)) < 0 ? -errno : 0;
	return msg_send_simple(svc->succ, svc->msg, BATON_MSG_SYNC, 0);
}

void work_readable(struct baton_service *svc)
{
	__u64 n;

	if (read(svc->work, &n, sizeof(n)) < 0 || svc->state != SVC_PRECOPY)
		return;
	if (phase1_state(svc))
		rollback(svc, "phase 1 failed");
}

/*
 * Phase 1, first pass: every socket and the service-wide state while the
 * old still serves and still accepts, then SYNC. The final pass, once the
 * new has taken all this, is short: new clients wait in the backlog only
 * for it and the blackout.
 */
int phase1_bulk(struct baton_service *svc)
{
	struct baton_export *exp = &svc->exp;
	unsigned int i;
	int err;

	exp->n = exp->listeners = exp->conns = 0;
	svc->state = SVC_PRECOPY;	/* from here, a failure must resume */
	err = svc->o.ops->export_sockets(svc->o.app, exp, svc->flags, 0);
	if (err) {
		pr_err(&svc->log, "phase 1: the application could not list its sockets: %s",
		       strerror(-err));
		return err;
	}
	free(svc->sent);
	svc->nsent = 0;
	svc->sent = malloc((exp->n + 1) * sizeof(*svc->sent));
	if (!svc->sent)
		return -ENOMEM;
	for (i = 0; i < exp->n; i++)
		svc->sent[svc->nsent++] = sock_key(&exp->socks[i].si);
	qsort(svc->sent, svc->nsent, sizeof(*svc->sent), sock_key_cmp);
	err = send_sockets(svc, exp->socks, exp->n);
	if (err)
		return err;
	return phase1_state(svc);
}

/* Phase 1, final pass: stop accepting; what came since, and done. */
static int phase1_final(struct baton_service *svc)
{
	struct baton_export *exp = &svc->exp;
	struct baton_msg *m = svc->msg;
	unsigned int n, listeners, conns;
	int err;

	exp->n = exp->listeners = exp->conns = 0;
	exp->skip = svc->sent;
	exp->nskip = svc->nsent;
	err = svc->o.ops->export_sockets(svc->o.app, exp, svc->flags,
					 BATON_EXPORT_F_FINAL);
	exp->nskip = 0;
	svc->state = SVC_PHASE1;
	if (err) {
		pr_err(&svc->log, "phase 1: the application could not list its sockets: %s",
		       strerror(-err));
		return err;
	}
	listeners = exp->listeners;
	conns = exp->conns;
	n = exp->n;
	err = n ? send_sockets(svc, exp->socks, n) : 0;
	if (err)
		return err;
	msg_init(m, BATON_MSG_PHASE1_DONE);
	err = msg_put_u32(m, BATON_A_LISTENERS, listeners) ?:
	      msg_put_u32(m, BATON_A_CONNS, conns) ?:
	      msg_send(svc->succ, m);
	if (!err)
		pr_info(&svc->log, "phase 1: %u listeners and %u connections handed over (%u in the last pass)",
			listeners, conns, n);
	return err;
}

/* Phase 2: the blackout. Stop, hand over foreground state, release. */
static int deactivate(struct baton_service *svc)
{
	bool drain = svc->flags & BATON_UPGRADE_F_DRAIN;
	struct baton_msg *m = svc->msg;
	__u64 t_stop = now_ns(), bytes = 0;
	__u32 records = 0;
	int err;

	if (!drain) {
		svc->o.ops->deactivate(svc->o.app);
		svc->state = SVC_DEACTIVATED;
		err = send_blob(svc, BATON_BLOB_CONNS, svc->o.ops->save_conns,
				&records, &bytes);
		if (err) {
			pr_err(&svc->log, "phase 2: cannot hand over connection state: %s",
			       strerror(-err));
			return err;
		}
	}
	svc->state = SVC_DEACTIVATED;
	err = send_blob(svc, BATON_BLOB_DELTA, svc->o.ops->save_delta, NULL,
			&bytes);
	if (err) {
		pr_err(&svc->log, "phase 2: cannot hand over state changes: %s",
		       strerror(-err));
		return err;
	}
	msg_init(m, BATON_MSG_PHASE2_DONE);
	err = msg_put_u32(m, BATON_A_RECORDS, records) ?: msg_send(svc->succ, m);
	if (err)
		return err;
	svc_release(svc);
	if (svc->o.ops->release) {
		err = svc->o.ops->release(svc->o.app);
		if (err) {
			pr_err(&svc->log, "phase 2: the application could not release its resources: %s",
			       strerror(-err));
			return err;
		}
	}
	msg_init(m, BATON_MSG_DEACTIVATED);
	return msg_put_u32(m, BATON_A_RECORDS, records) ?:
	       msg_put_u64(m, BATON_A_BYTES, bytes) ?:
	       msg_put_u64(m, BATON_A_TIME_NS, t_stop) ?:
	       msg_send(svc->ctl, m);
}

/* The new instance is active: this one closes its copies and goes. */
static int finish(struct baton_service *svc)
{
	ctl_close(svc->ep, &svc->succ);
	if (svc->flags & BATON_UPGRADE_F_DRAIN) {
		svc->state = SVC_DRAINING;
		ctl_close(svc->ep, &svc->ctl);
		if (svc->o.ops->drain)
			svc->o.ops->drain(svc->o.app);
		pr_info(&svc->log, "the new instance serves; draining");
		return 0;
	}
	/* whatever is left to do must not slow the new instance down */
	setpriority(PRIO_PROCESS, 0, 19);
	sched_setscheduler(0, SCHED_IDLE, &(struct sched_param){ 0 });
	pr_info(&svc->log, "the new instance serves; exiting");
	svc->o.ops->terminate(svc->o.app);
	return BATON_EXIT;
}

int ctl_readable(struct baton_service *svc)
{
	const struct nlattr *tb[BATON_A_MAX + 1];
	struct baton_msg *m = svc->msg;
	__u32 flags;
	int err;

	err = msg_read(svc->ctl, m, 0, tb);
	if (err == -ETIMEDOUT)
		return 0;
	if (err) {
		ctl_close(svc->ep, &svc->ctl);
		/* in the blackout the new instance's word decides, not ours */
		if (svc->state == SVC_PRECOPY || svc->state == SVC_PHASE1)
			rollback(svc, "the coordinator went away");
		else if (svc->state == SVC_EXPECTING)
			svc->state = SVC_SERVING;
		return 0;
	}
	msg_close_fds(m);
	switch (m->nlh->nlmsg_type) {
	case BATON_MSG_UPGRADE:
		flags = attr_u32(tb, BATON_A_FLAGS, 0);
		if (svc->state != SVC_EXPECTING || !tb[BATON_A_PID] ||
		    (flags & ~BATON_UPGRADE_F_ALL)) {
			msg_send_error(svc->ctl, m, -EINVAL,
				       "bad UPGRADE: no pid, unknown flags or not expecting");
			return 0;
		}
		svc->expect_pid = mnl_attr_get_u32(tb[BATON_A_PID]);
		svc->flags = flags;
		if (msg_send_simple(svc->ctl, m, BATON_MSG_UPGRADE_ACK, 0))
			ctl_close(svc->ep, &svc->ctl);
		return 0;
	case BATON_MSG_DEACTIVATE:
		if (svc->state != SVC_PHASE1) {
			msg_send_error(svc->ctl, m, -EINVAL,
				       "DEACTIVATE before phase 1 completed");
			return 0;
		}
		err = deactivate(svc);
		if (err)
			rollback(svc, "deactivation failed");
		return 0;
	case BATON_MSG_RESUME:
		if (svc->state == SVC_SERVING || svc->state == SVC_EXPECTING) {
			svc->state = SVC_SERVING;
			svc->expect_pid = 0;
			ctl_close(svc->ep, &svc->succ);
			msg_send_simple(svc->ctl, m, BATON_MSG_RESUMED, 0);
		} else {
			rollback(svc, "the coordinator asked for it");
		}
		return 0;
	default:
		msg_send_error(svc->ctl, m, -EINVAL, "unexpected %s",
			       msg_type_name(m->nlh->nlmsg_type));
		return 0;
	}
}

int succ_readable(struct baton_service *svc)
{
	const struct nlattr *tb[BATON_A_MAX + 1];
	struct baton_msg *m = svc->msg;
	char text[256];
	int err;

	err = msg_read(svc->succ, m, 0, tb);
	if (err == -ETIMEDOUT)
		return 0;
	if (err) {
		rollback(svc, "the new instance went away before activating");
		return 0;
	}
	msg_close_fds(m);
	switch (m->nlh->nlmsg_type) {
	case BATON_MSG_SYNC:
		if (svc->state != SVC_PRECOPY)
			break;
		if (phase1_final(svc))
			rollback(svc, "phase 1 failed");
		return 0;
	case BATON_MSG_ACTIVE:
		if (svc->state != SVC_DEACTIVATED)
			break;
		return finish(svc);
	case BATON_MSG_ERROR:
		msg_error_text(tb, text, sizeof(text));
		rollback(svc, text);
		return 0;
	default:
		break;
	}
	rollback(svc, "the new instance sent an unexpected message");
	return 0;
}
