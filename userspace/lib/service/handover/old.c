// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The serving instance's side of the handover, after phase 1 (phase1.c):
 * what the coordinator and the new instance say, deactivation (phase 2,
 * the blackout); how it ends, in rollback or termination, is end.c's.
 *
 * The service's lock decides who serves (control/control.h): this instance
 * unlocks it in the blackout, and resumes only if it can lock it again;
 * once the new one holds it, this one never serves again (SVC_COMMITTED),
 * whoever says otherwise. Every state has a deadline, so that neither a
 * stopped coordinator nor a hung new instance keeps clients waiting.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/baton.h>
#include "service/instance.h"

/* Past the blackout's deadline, the coordinator acts first; then we do */
#define BLACKOUT_GRACE_MS	100
/* The coordinator leaves before anything began: serve on, as we do. */
static void detach(struct baton_service *svc, const char *why)
{
	ctl_close(svc->ep, &svc->ctl);
	parked_close(svc, why);
	repair_out_close(svc);
	svc->state = SVC_SERVING;
	svc->expect_pid = 0;
	svc_deadline(svc, 0);
	serving_again(svc);
}

/* Phase 2: the blackout. Stop, hand over foreground state, let go. */
static int deactivate(struct baton_service *svc)
{
	struct baton_msg *m = svc->msg;
	__u64 t_stop = now_ns(), bytes = 0;
	__u32 records = 0, ckpts = 0, freeze_id = 0;
	struct steps st;
	int err;

	steps_begin(&st);
	if (!(svc->flags & BATON_UPGRADE_F_DRAIN))
		svc->o.ops->deactivate(svc->o.app);
	svc->state = SVC_DEACTIVATED;
	svc->deadline_ns = svc->blackout_ns + BLACKOUT_GRACE_MS * 1000000ULL;
	steps_mark(&st, "stop");
	err = phase2_blobs(svc, &st, &records, &bytes);
	if (err)
		return err;
	/*
	 * Repair mode: the connections last, so that they stay frozen for
	 * as short a time as can be; the application touches them no more.
	 */
	err = svc->repair ? phase2_checkpoints(svc, &st, &ckpts, &freeze_id) : 0;
	if (err)
		return err;
	/*
	 * The lock and the application's own resources are the new one's to
	 * take from here: let go before PHASE2_DONE, on which it activates.
	 * Queries wait in the control socket's backlog meanwhile.
	 */
	resources_unlock(&svc->res);
	resources_watch(&svc->res, svc->ep, TAG_LISTEN, false);
	steps_mark(&st, "unlock");
	if (svc->o.ops->release) {
		err = svc->o.ops->release(svc->o.app);
		steps_mark(&st, "release");
		if (err) {
			pr_err(&svc->log, "phase 2: the application could not release its resources: %s",
			       strerror(-err));
			return err;
		}
	}
	msg_init(m, BATON_MSG_PHASE2_DONE);
	err = msg_put_u32(m, BATON_A_RECORDS, records) ?:
	      msg_put_u64(m, BATON_A_DEADLINE_NS, svc->blackout_ns) ?:
	      msg_put_u32(m, BATON_A_FLAGS, svc->deactivate_flags);
	if (!err && freeze_id)
		err = msg_put_u32(m, BATON_A_FREEZE_ID, freeze_id);
	err = err ?: msg_send(svc->succ, m);
	if (err)
		return err;
	/* for the report: a coordinator gone by now changes nothing */
	msg_init(m, BATON_MSG_DEACTIVATED);
	if (!msg_put_u32(m, BATON_A_RECORDS, records) &&
	    !msg_put_u64(m, BATON_A_BYTES, bytes) &&
	    (!freeze_id || !msg_put_u32(m, BATON_A_FREEZE_ID, freeze_id)) &&
	    (!svc->repair ||
	     (!msg_put_u32(m, BATON_A_CHECKPOINTS, ckpts) &&
	      !msg_put_u32(m, BATON_A_CKPT_FORMAT, freeze_id ?
			   BATON_CKPT_MODULE : BATON_CKPT_TCP))) &&
	    (!svc->conns_early ||
	     !msg_put_u32(m, BATON_A_EARLY_RECORDS, svc->early_records)) &&
	    !msg_put_u64(m, BATON_A_TIME_NS, t_stop) &&
	    !steps_put(m, &st) && !rounds_put(m, &svc->rounds) &&
	    svc->ctl >= 0)
		msg_send(svc->ctl, m);
	return 0;
}

static int on_upgrade(struct baton_service *svc, const struct nlattr **tb)
{
	__u32 flags = attr_u32(tb, BATON_A_FLAGS, 0);
	__u32 rounds = attr_u32(tb, BATON_A_ROUNDS, BATON_PRECOPY_ROUNDS);
	int err;

	if (svc->state != SVC_EXPECTING || (flags & ~BATON_UPGRADE_F_ALL) ||
	    ((flags & BATON_UPGRADE_F_REPAIR) && (flags & BATON_UPGRADE_F_DRAIN)) ||
	    ((flags & BATON_UPGRADE_F_NETNS) && !(flags & BATON_UPGRADE_F_REPAIR)))
		return msg_send_error(svc->ctl, svc->msg, -EINVAL,
				      "bad UPGRADE: unknown flags, repair mode with drain, another namespace without repair mode, or not expecting one");
	if (!rounds || rounds > BATON_MAX_ROUNDS)
		return msg_send_error(svc->ctl, svc->msg, -EINVAL,
				      "bad UPGRADE: %u rounds of phase 1; 1 to %u",
				      rounds, BATON_MAX_ROUNDS);
	repair_out_close(svc);
	if (flags & BATON_UPGRADE_F_REPAIR) {
		err = repair_out_open(svc);
		if (err)
			return msg_send_error(svc->ctl, svc->msg, err,
					      "repair mode: cannot open the TCP checkpoint channel: %s",
					      strerror(-err));
		/* nothing else holds a peer's segments while the address moves */
		if ((flags & BATON_UPGRADE_F_NETNS) && !repair_out_frozen(svc)) {
			repair_out_close(svc);
			return msg_send_error(svc->ctl, svc->msg, -EOPNOTSUPP,
					      "moving into another network namespace needs baton.ko in the old instance's kernel, to freeze the connections while their address moves (modprobe baton)");
		}
	}
	svc->flags = flags;
	svc->max_rounds = rounds;
	svc->round_bytes = attr_u64(tb, BATON_A_ROUND_BYTES,
				    BATON_PRECOPY_BYTES);
	err = upgrade_ack(svc);
	if (err)
		return err;
	svc->state = SVC_ANNOUNCED;
	/* until the new instance says MAINPID=, or we say READY=1 again */
	svc->reloading = notify_reloading(&svc->log) > 0;
	svc_deadline(svc, 2 * svc->ctl_timeout_ms);
	return 0;
}

static void on_expect(struct baton_service *svc, const struct nlattr **tb)
{
	unsigned int i;

	if (svc->state != SVC_ANNOUNCED || svc->expect_pid || !tb[BATON_A_PID]) {
		msg_send_error(svc->ctl, svc->msg, -EINVAL,
			       "bad EXPECT: no pid, or not after UPGRADE");
		return;
	}
	svc->expect_pid = mnl_attr_get_u32(tb[BATON_A_PID]);
	/* the new instance's start, connect and hello */
	svc_deadline(svc, 2 * svc->ctl_timeout_ms);
	for (i = 0; i < MAX_PENDING; i++)
		if (svc->pending[i].parked && svc->succ < 0)
			successor_admit(svc, i);
}

static int on_deactivate(struct baton_service *svc, const struct nlattr **tb)
{
	__u32 flags = attr_u32(tb, BATON_A_FLAGS, 0);
	__u64 now, deadline;
	int err;

	if (svc->state != SVC_PHASE1 || (flags & ~BATON_DEACTIVATE_F_ALL)) {
		msg_send_error(svc->ctl, svc->msg, -EINVAL,
			       "bad DEACTIVATE: unknown flags, or phase 1 is not complete");
		return 0;
	}
	svc->freeze_ms = attr_u32(tb, BATON_A_FREEZE_MS, 0);
	if (svc->freeze_ms > BATON_DEADLINE_MAX_MS) {
		msg_send_error(svc->ctl, svc->msg, -EINVAL,
			       "bad DEACTIVATE: a freeze of %u ms; at most %u",
			       svc->freeze_ms, BATON_DEADLINE_MAX_MS);
		return 0;
	}
	now = now_ns();
	deadline = attr_u64(tb, BATON_A_DEADLINE_NS,
			    now + BATON_BLACKOUT_TIMEOUT_MS * 1000000ULL);
	/* ours is it and a grace: one far off, or wrapped, would be none */
	if (deadline <= now ||
	    deadline - now > BATON_TIMEOUT_MS_MAX * 1000000ULL) {
		msg_send_error(svc->ctl, svc->msg, -EINVAL,
			       "bad DEACTIVATE: a blackout deadline %s; from 1 to %u ms ahead",
			       deadline <= now ? "already past" : "over an hour ahead",
			       BATON_TIMEOUT_MS_MAX);
		return 0;
	}
	svc->deactivate_flags = flags;
	svc->blackout_ns = deadline;
	err = deactivate(svc);
	return err ? rollback(svc, "deactivation failed") : 0;
}

/* In the blackout: resume if the lock is still ours to take. */
static int try_resume(struct baton_service *svc, const char *why)
{
	int ret = rollback(svc, why);

	if (svc->state == SVC_COMMITTED && svc->ctl >= 0)
		msg_send_error(svc->ctl, svc->msg, -EBUSY,
			       "the new instance has taken the service's lock: it serves");
	return ret;
}

int ctl_readable(struct baton_service *svc)
{
	const struct nlattr *tb[BATON_A_MAX + 1];
	struct baton_msg *m = svc->msg;
	int err;

	err = msg_read(svc->ctl, m, 0, tb);
	if (err == -ETIMEDOUT)
		return 0;
	if (err) {
		char why[128];

		ctl_close(svc->ep, &svc->ctl);
		/* in the blackout the new instance's word decides, not ours */
		if (svc->state >= SVC_DEACTIVATED)
			return 0;
		if (err == -ECONNRESET)
			return rollback(svc, "the coordinator went away");
		snprintf(why, sizeof(why),
			 "the coordinator sent a malformed message (%s): let go of it",
			 strerror(-err));
		return rollback(svc, why);
	}
	msg_close_fds(m);
	switch (m->nlh->nlmsg_type) {
	case BATON_MSG_UPGRADE:
		if (on_upgrade(svc, tb))
			detach(svc, "the upgrade could not begin");
		return 0;
	case BATON_MSG_EXPECT:
		on_expect(svc, tb);
		return 0;
	case BATON_MSG_DEACTIVATE:
		return on_deactivate(svc, tb);
	case BATON_MSG_RESUME:
		/* RESUMED answers it (rollback() says it), or ERROR (EBUSY) */
		if (svc->state == SVC_SERVING)
			send_resumed(svc, "it serves");
		else
			return try_resume(svc, "the coordinator asked for it");
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
		/* gone without ACTIVE: it served nothing, the lock is free */
		ctl_close(svc->ep, &svc->succ);
		if (svc->state == SVC_COMMITTED)
			svc->state = SVC_DEACTIVATED;
		if (err == -ECONNRESET)
			return rollback(svc, "the new instance went away before it was active");
		snprintf(text, sizeof(text),
			 "the new instance sent a malformed message before it was active (%s): let go of it",
			 strerror(-err));
		return rollback(svc, text);
	}
	msg_close_fds(m);
	switch (m->nlh->nlmsg_type) {
	case BATON_MSG_SYNC:
		if (svc->state != SVC_PRECOPY)
			break;
		if (phase1_synced(svc))
			phase1_failed(svc);
		return 0;
	case BATON_MSG_ACTIVE:
		if (svc->state != SVC_DEACTIVATED && svc->state != SVC_COMMITTED)
			break;
		return finish(svc);
	case BATON_MSG_ERROR:
		msg_error_text(tb, text, sizeof(text));
		return rollback(svc, text);
	default:
		break;
	}
	return rollback(svc, "the new instance sent an unexpected message");
}

/* The state's deadline passed with nothing moving it on. */
int state_expired(struct baton_service *svc)
{
	char why[160];

	svc->deadline_ns = 0;
	switch (svc->state) {
	case SVC_EXPECTING:
	case SVC_ANNOUNCED:
		snprintf(why, sizeof(why),
			 "the coordinator said nothing more for %d ms: detached",
			 2 * svc->ctl_timeout_ms);
		pr_warn(&svc->log, "%s", why);
		msg_send_error(svc->ctl, svc->msg, -ETIMEDOUT, "%s", why);
		detach(svc, why);
		return 0;
	case SVC_PRECOPY:
		rollback(svc, "the new instance did not take phase 1 in time");
		return 0;
	case SVC_PHASE1:
		rollback(svc, "the coordinator did not start the blackout in time");
		return 0;
	case SVC_DEACTIVATED:
		return try_resume(svc, "the new instance was not active by the blackout's deadline");
	case SVC_COMMITTED:
		return rollback(svc, "the new instance went away before it was active");
	default:
		return 0;
	}
}
