/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * struct baton_service, one instance of the application, shared by the
 * serving instance (service.c, instance.c), its peers (peers.c) and the
 * handover's two sides (handover/).
 */
#ifndef BATON_LIB_INSTANCE_H
#define BATON_LIB_INSTANCE_H

#include <errno.h>
#include <sys/epoll.h>

#include "control/control.h"

enum svc_state {
	SVC_SERVING,
	SVC_EXPECTING,		/* a coordinator is attached */
	SVC_ANNOUNCED,		/* it said UPGRADE: the new one will come */
	SVC_PRECOPY,		/* phase 1, first pass: still accepting */
	SVC_PHASE1,		/* sockets and state sent; still serving */
	SVC_DEACTIVATED,	/* blackout: waiting for the new's word */
	SVC_COMMITTED,		/* the new one holds the lock: never resume */
	SVC_DRAINING,		/* drain mode: serving the last connections */
};

/* What the events of baton_service_fd() carry */
enum svc_tag {
	TAG_LISTEN = 1,
	TAG_CTL,
	TAG_SUCC,
	TAG_WORK,
	TAG_TIMER,
	TAG_PENDING,		/* + slot */
};

#define MAX_PENDING	8	/* peers accepted, hello not read yet */

/*
 * Phase 1's first pass hands over at most this many sockets a turn, and
 * the application serves between turns: a socket costs 3-7 us, so a turn
 * about 2-4 ms (10,000 sockets in one turn stalled the serving instance's
 * clients for 35-62 ms)
 */
#define PHASE1_SOCKETS_PER_TURN	(2 * BATON_MAX_FDS_PER_MSG)

struct baton_export {
	struct held_socket *socks;
	unsigned int n, cap;
	unsigned int listeners, conns;
	const struct sock_set *skip;	/* already sent; NULL: none */
	unsigned int limit;	/* at most this many listed; 0: all */
	unsigned int left;	/* not listed, for the limit (or sent already) */
	bool no_conns;		/* connections counted, not listed */
};

/* A peer of the control socket that has not said who it is, or must wait */
struct pending {
	int fd;
	struct ucred cred;
	__u64 deadline_ns;
	bool parked;		/* a new instance, before EXPECT names it */
	struct versions ver;	/* what its hello said, if parked */
	char app[64];
	__u32 takes;		/* BATON_TAKES_* */
};

struct baton_service {
	struct baton_service_opts o;
	char service[65];
	char app_name[64];
	struct versions ver;
	struct baton_resources res;
	struct pending pending[MAX_PENDING];
	struct baton_log_sink log;
	struct baton_msg *msg;
	int ep;
	int work;		/* eventfd: phase 1 has more to send */
	int timer;		/* timerfd: the next deadline */
	int ctl;		/* the coordinator */
	int succ;		/* the new instance */
	int peer_timeout_ms;	/* a peer that stops reading is dropped */
	int ctl_timeout_ms;	/* the coordinator's step, as it said */
	__u64 deadline_ns;	/* of the state we are in; 0: none */
	__u64 blackout_ns;	/* the blackout's deadline */
	pid_t expect_pid;
	unsigned int flags;	/* BATON_UPGRADE_F_* of this upgrade */
	unsigned int deactivate_flags;	/* BATON_DEACTIVATE_F_* */
	unsigned int freeze_ms;	/* DEACTIVATE's FREEZE_MS; 0: the blackout's */
	enum svc_state state;
	bool adopted;
	bool notify_ready;	/* READY=1 on the first dispatch */
	bool reloading;		/* RELOADING=1 said: READY=1 when back */
	struct baton_export exp;
	struct sock_set sent;	/* the first pass's so far */
	bool sockets_left;	/* the first pass has more for a later turn */
	bool succ_wait_room;	/* for EPOLLOUT on succ, for the next turn */
	unsigned int max_rounds;	/* of phase 1's state, as UPGRADE said */
	__u64 round_bytes;	/* a round this small is the last */
	__u64 round_t0;		/* the round under way began */
	bool round_whole;	/* sent whole; SYNC asked if the new has it */
	struct rounds rounds;	/* sent so far; the snapshot first */
	struct repair_out *repair;	/* repair mode's checkpoints */
	__u32 succ_takes;	/* BATON_TAKES_* of the new instance */
	bool conns_early;	/* connection records went in phase 1 */
	__u32 early_records;	/* how many */
};

static inline int ep_add(struct baton_service *svc, int fd, __u64 tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = tag };

	return epoll_ctl(svc->ep, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

/*
 * From the ground up: each file calls only the ones listed before it.
 *
 * instance.c: the state's deadline, from now; the timer; a slot closed
 */
void svc_deadline(struct baton_service *svc, int ms);
void svc_arm(struct baton_service *svc);
void pending_close(struct baton_service *svc, unsigned int slot);

/*
 * handover/repair_out.c: repair mode's old side, the connections' TCP
 * checkpoints: made and sent in the blackout, restored in place on rollback
 */
struct repair_out;
int repair_out_open(struct baton_service *svc);
/* whether baton.ko freezes them (else TCP_REPAIR alone, unfrozen) */
bool repair_out_frozen(const struct baton_service *svc);
/* socks: the application's, connections and listeners; count: of the
 * connections among them */
int repair_out_checkpoint(struct baton_service *svc,
			  const struct held_socket *socks, unsigned int nsocks,
			  struct steps *st, __u32 *count, __u32 *freeze_id);
int repair_out_restore(struct baton_service *svc);
void repair_out_close(struct baton_service *svc);

/* handover/end.c: how the old side ends, in rollback or termination */
void serving_again(struct baton_service *svc);
void parked_close(struct baton_service *svc, const char *why);
int send_resumed(struct baton_service *svc, const char *why);
int rollback(struct baton_service *svc, const char *why);
int finish(struct baton_service *svc);

/* handover/phase1.c: what the serving instance hands over in phase 1 */
int copies_to_coordinator(struct baton_service *svc, int ctl);
int upgrade_ack(struct baton_service *svc);
int phase1_bulk(struct baton_service *svc);
/* rolls back, with the new instance's reason if it gave one */
int phase1_failed(struct baton_service *svc);
int phase1_synced(struct baton_service *svc);
int phase2_blobs(struct baton_service *svc, struct steps *st, __u32 *records,
		 __u64 *bytes);
int phase2_checkpoints(struct baton_service *svc, struct steps *st,
		       __u32 *count, __u32 *freeze_id);
void work_readable(struct baton_service *svc);
void succ_room(struct baton_service *svc);

/* peers.c: who is at the control socket, and what it wants */
void listen_readable(struct baton_service *svc);
void pending_readable(struct baton_service *svc, unsigned int slot);
void pending_expired(struct baton_service *svc, __u64 now);
void successor_admit(struct baton_service *svc, unsigned int slot);

/* handover/old.c: the serving instance's side, after phase 1 */
int ctl_readable(struct baton_service *svc);
int succ_readable(struct baton_service *svc);
int state_expired(struct baton_service *svc);

/* handover/new.c: the new instance's side; service.c sits on them all */
int takeover_run(struct baton_service *svc, int ctl);

#endif /* BATON_LIB_INSTANCE_H */
