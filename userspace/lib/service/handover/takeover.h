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
	char lost_why[320];	/* how we know, for PEER_LOST, if we can say */
	struct held_socket *batch;	/* one SOCKETS message's sockets */
	struct sock_set ids;	/* every adopted socket */
	__u32 listeners, conns, records;
	bool state_whole;	/* phase 1's state arrived whole (SYNC) */
	bool phase1_done, phase2_done, activate;
	__u32 activate_flags;	/* ACTIVATE's */
	__u32 deactivate_flags;	/* PHASE2_DONE's: the coordinator's word */
	__u64 deadline_ns;	/* the blackout's */
	int timeout_ms;		/* the coordinator's step */
	__u64 t_welcome;
	__u64 t_ready;		/* READY sent */
	struct steps st;	/* the blackout, on this side */
	char why[256];
	bool repair;		/* PHASE1_DONE said BATON_UPGRADE_F_REPAIR */
	bool netns;		/* and BATON_UPGRADE_F_NETNS */
	/* repair mode: the blobs kept for activation (-1: none) */
	int tcp_blob, conns_blob;
	__u32 freeze_id;	/* PHASE2_DONE's; 0: none */
	int *restored;		/* the sockets restored, until committed */
	unsigned int nrestored;
	struct ckpts *ckpts;	/* their checkpoints, until then too */
	struct baton_tcp *tcp;
};

/* From the ground up: each file calls only the ones listed before it. */

/* adopt.c */
int adopt_batch(struct takeover *t, struct baton_msg *m, bool from_ctl);
int adopt_conn(struct takeover *t, struct held_socket *s);
int load_blob(struct takeover *t, struct baton_msg *m,
	      const struct nlattr **tb);
int load_conns(struct takeover *t, int memfd);
void why_truncated(struct takeover *t);

/*
 * repair_in.c: repair mode's new side. The blobs, kept until activation;
 * then, with the lock held, the connections restored from their
 * checkpoints, adopted, their records loaded (restore); served (commit),
 * or let go of without a word, for the old one to restore (abort).
 */
void repair_in_keep(struct takeover *t, struct baton_msg *m, __u32 kind);
int repair_in_prepare(struct takeover *t);
int repair_in_restore(struct takeover *t);
void repair_in_commit(struct takeover *t);
void repair_in_abort(struct takeover *t);
void repair_in_free(struct takeover *t);

/* activate.c: the lock taken, everything in place, ACTIVE said */
int activate(struct takeover *t);

#endif /* BATON_LIB_TAKEOVER_H */
