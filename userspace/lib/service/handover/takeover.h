/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One takeover, as the new instance runs it inside baton_service_open():
 * new.c drives it, adopt.c takes what arrives.
 */
#ifndef BATON_LIB_TAKEOVER_H
#define BATON_LIB_TAKEOVER_H

#include "service/instance.h"

struct takeover {
	struct baton_service *svc;
	int peer;		/* the old instance; -1 once it is gone */
	int ctl;		/* the coordinator */
	bool peer_lost;		/* the old went away before phase 2 was whole */
	struct held_socket *batch;	/* one SOCKETS message's sockets */
	struct sock_key *ids;	/* every adopted socket */
	unsigned int nids, cap, nsorted;
	__u32 listeners, conns, records;
	bool state_whole;	/* phase 1's state arrived whole (SYNC) */
	bool phase1_done, phase2_done, activate;
	__u32 activate_flags;	/* ACTIVATE's */
	__u32 deactivate_flags;	/* PHASE2_DONE's: the coordinator's word */
	__u64 deadline_ns;	/* the blackout's */
	int timeout_ms;		/* the coordinator's step */
	__u64 t_welcome;
	struct steps st;	/* the blackout, on this side */
	char why[256];
};

/* adopt.c */
int adopt_batch(struct takeover *t, struct baton_msg *m, bool from_ctl);
int load_blob(struct takeover *t, struct baton_msg *m,
	      const struct nlattr **tb);
void why_truncated(struct takeover *t);

#endif /* BATON_LIB_TAKEOVER_H */
