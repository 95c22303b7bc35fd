// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * How the serving instance's side of a handover ends: rollback, in which
 * it serves again with everything it had, or termination (or draining),
 * once the new instance is active. Every step of old.c, phase1.c and
 * peers.c that fails comes here.
 */
#include <errno.h>
#include <string.h>

#include "service/instance.h"

/*
 * A new instance that died holding the lock lets it go as its process
 * ends, a moment after its socket closed: so often we look again.
 */
#define LOCK_RETRY_MS		10

/* The new instances that came before the coordinator named them */
void parked_close(struct baton_service *svc, const char *why)
{
	unsigned int i;

	for (i = 0; i < MAX_PENDING; i++) {
		if (!svc->pending[i].parked)
			continue;
		msg_send_error(svc->pending[i].fd, svc->msg, -ECANCELED, "%s",
			       why);
		pending_close(svc, i);
	}
}

/*
 * Serving again after an upgrade that did not happen: the service manager,
 * told RELOADING=1, hears that this is its main process still, and ready.
 */
void serving_again(struct baton_service *svc)
{
	if (svc->reloading)
		notify_main(&svc->log);
	svc->reloading = false;
}

/* RESUMED, and why, for the coordinator's report */
int send_resumed(struct baton_service *svc, const char *why)
{
	msg_init(svc->msg, BATON_MSG_RESUMED);
	return msg_put_str(svc->msg, BATON_A_TEXT, why) ?:
	       msg_send(svc->ctl, svc->msg);
}

/*
 * Whether the new instance said ACTIVE, unread yet: it sends it here
 * before it serves a single request, and it stays in the socket after its
 * sender has gone. The other messages it may have sent matter no more.
 */
/* The new instance is active: this one closes its copies and goes. */
int finish(struct baton_service *svc)
{
	repair_out_close(svc);	/* the new instance restored them */
	ctl_close(svc->ep, &svc->succ);
	svc_deadline(svc, 0);
	if (svc->flags & BATON_UPGRADE_F_DRAIN) {
		svc->state = SVC_DRAINING;
		ctl_close(svc->ep, &svc->ctl);
		if (svc->o.ops->drain)
			svc->o.ops->drain(svc->o.app);
		pr_info(&svc->log, "the new instance serves; draining");
		return 0;
	}
	pr_info(&svc->log, "the new instance serves; exiting");
	svc->o.ops->terminate(svc->o.app);
	return BATON_EXIT;
}

static bool succ_was_active(struct baton_service *svc)
{
	const struct nlattr *tb[BATON_A_MAX + 1];

	while (svc->succ >= 0 && !msg_read(svc->succ, svc->msg, 0, tb)) {
		msg_close_fds(svc->msg);
		if (svc->msg->nlh->nlmsg_type == BATON_MSG_ACTIVE)
			return true;
	}
	return false;
}

/*
 * Rollback: serve again, with everything we had; nothing was closed. Not
 * once the new instance holds the lock: then it is the one that serves.
 * Nor if it said ACTIVE, even if it has died since and let the lock go:
 * it read from the connections, ours are out of step; we go too
 * (BATON_EXIT).
 */
int rollback(struct baton_service *svc, const char *why)
{
	bool was_running = svc->state >= SVC_PRECOPY;
	bool let_go = svc->state >= SVC_DEACTIVATED;

	if (svc->state == SVC_SERVING || svc->state == SVC_DRAINING ||
	    (svc->state == SVC_COMMITTED && svc->succ >= 0))
		return 0;
	if (resources_lock(&svc->res)) {
		if (svc->state != SVC_COMMITTED)
			pr_warn(&svc->log, "cannot roll back (%s): the new instance holds the lock%s",
				why, svc->succ >= 0 ? "; it serves" :
				", and went away: until it lets go");
		svc->state = SVC_COMMITTED;
		/* gone, it lets go soon: then we look again */
		svc_deadline(svc, svc->succ >= 0 ? 0 : LOCK_RETRY_MS);
		return 0;
	}
	/* the lock first, then its word: so no ACTIVE can come in between */
	if (let_go && succ_was_active(svc)) {
		resources_unlock(&svc->res);
		pr_warn(&svc->log, "cannot roll back (%s): the new instance was active before it went",
			why);
		return finish(svc);
	}
	if (was_running)
		pr_warn(&svc->log, "rolling back the upgrade of %s: %s",
			svc->service, why);
	if (svc->succ >= 0)
		msg_send_error(svc->succ, svc->msg, -ECANCELED,
			       "the old instance resumed: %s", why);
	ctl_close(svc->ep, &svc->succ);
	parked_close(svc, why);
	svc->expect_pid = 0;
	if (let_go) {
		resources_watch(&svc->res, svc->ep, TAG_LISTEN, true);
		resources_pid(&svc->res);
	}
	/* in repair mode: our connections back from their checkpoints */
	repair_out_restore(svc);
	repair_out_close(svc);
	if (was_running)
		svc->o.ops->resume(svc->o.app);
	svc->state = SVC_SERVING;
	svc_deadline(svc, 0);
	serving_again(svc);
	if (svc->ctl >= 0 && send_resumed(svc, why))
		ctl_close(svc->ep, &svc->ctl);
	return 0;
}
