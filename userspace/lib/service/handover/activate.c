// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The new instance's activation (new.c decides when): the service's lock,
 * which is the commitment, then the control socket and the pid file, the
 * application's resources, in repair mode the connections (repair_in.c),
 * the application's activate(), and ACTIVE, to the coordinator and then
 * to the old instance.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "service/handover/takeover.h"

int activate(struct takeover *t)
{
	struct baton_service *svc = t->svc;
	struct baton_resources *res = &svc->res;
	struct baton_msg *m = svc->msg;
	__u32 flags = t->activate_flags;
	int err;

	if (!t->phase2_done)
		flags |= BATON_ACTIVATE_F_PEER_LOST;
	if ((flags & BATON_ACTIVATE_F_PEER_LOST) && !t->state_whole)
		flags |= BATON_ACTIVATE_F_STATE_PARTIAL;
	if (!t->st.last_ns)
		steps_begin(&t->st);
	/* the token: whoever holds the lock serves */
	err = resources_lock(res);
	steps_mark(&t->st, "lock");
	if (err) {
		snprintf(t->why, sizeof(t->why), err == -EBUSY ?
			 "the old instance serves again: the blackout's deadline passed, or it was told to roll back" :
			 "cannot lock %s: %s", res->paths.lock, strerror(-err));
		return err;
	}
	if (res->listen_fd < 0) {	/* the old went before handing it */
		res->listen_fd = ctl_listen(res->paths.sock);
		if (res->listen_fd < 0) {
			err = res->listen_fd;
			snprintf(t->why, sizeof(t->why),
				 "cannot make the control socket %s: %s",
				 res->paths.sock, strerror(-err));
			return err;
		}
	}
	err = resources_watch(res, svc->ep, TAG_LISTEN, true) ?:
	      resources_pid(res);
	steps_mark(&t->st, "control and pid files");
	if (err) {
		snprintf(t->why, sizeof(t->why),
			 "cannot take the control socket or write %s: %s",
			 res->paths.pid, strerror(-err));
		return err;
	}
	if (svc->o.ops->acquire) {
		err = svc->o.ops->acquire(svc->o.app);
		steps_mark(&t->st, "acquire");
		if (err) {
			snprintf(t->why, sizeof(t->why),
				 "the application could not take its resources: %s",
				 strerror(-err));
			return err;
		}
	}
	/* repair mode: the connections, now that the lock is ours */
	err = repair_in_restore(t);
	if (err)
		return err;
	err = svc->o.ops->activate(svc->o.app, flags);
	steps_mark(&t->st, "activate");
	if (err) {
		snprintf(t->why, sizeof(t->why),
			 "the application could not activate: %s",
			 strerror(-err));
		return err;
	}
	repair_in_commit(t);
	/*
	 * The service manager, if any, hears that we are its main process
	 * before the old one can exit: before ACTIVE
	 */
	if (notify_main(&svc->log) > 0)
		steps_mark(&t->st, "notify");
	msg_init(m, BATON_MSG_ACTIVE);
	err = msg_put_u64(m, BATON_A_TIME_NS, now_ns()) ?:
	      msg_put_u32(m, BATON_A_RECORDS, t->records) ?:
	      msg_put_u32(m, BATON_A_FLAGS, flags) ?:
	      msg_put_u32(m, BATON_A_CONNS, t->conns) ?:
	      steps_put(m, &t->st);
	/* into another namespace: the freeze the coordinator thaws into ours */
	if (!err && t->netns && t->freeze_id)
		err = msg_put_u32(m, BATON_A_FREEZE_ID, t->freeze_id);
	if (err)
		return err;
	/*
	 * The coordinator first: if it gives up on us before it has this
	 * (stopping us to look), it sees we had not told the old one either,
	 * which then resumes. The old one next, before we serve a single
	 * request: it never resumes once it has this, even if we die.
	 */
	msg_send(t->ctl, m);
	if (t->peer >= 0)
		msg_send(t->peer, m);	/* it may have gone; no matter */
	pr_info(&svc->log, "active: %u listeners, %u connections, %u records%s",
		t->listeners, t->conns, t->records,
		flags & BATON_ACTIVATE_F_PEER_LOST ?
		" (the old instance went away: every connection closed)" : "");
	return 0;
}
