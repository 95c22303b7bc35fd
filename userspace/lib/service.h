/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* struct baton_service, shared by service.c and takeover.c */
#ifndef BATON_SERVICE_H
#define BATON_SERVICE_H

#include "control/control.h"

#define MAX_PENDING	8	/* peers accepted, hello not read yet */
#define PEER_TIMEOUT_MS	2000	/* a peer that stops reading is dropped */

enum svc_state {
	SVC_SERVING,
	SVC_EXPECTING,		/* a coordinator is attached */
	SVC_PRECOPY,		/* phase 1, first pass: still accepting */
	SVC_PHASE1,		/* sockets and state sent; still serving */
	SVC_DEACTIVATED,	/* blackout: waiting for the new's word */
	SVC_DRAINING,		/* drain mode: serving the last connections */
};

struct baton_export {
	struct held_socket *socks;
	unsigned int n, cap;
	unsigned int listeners, conns;
	const __u64 *skip;	/* sorted sock_key()s already sent */
	unsigned int nskip;
};

struct baton_service {
	struct baton_service_opts o;
	char service[65];
	char app_name[64];
	struct versions ver;
	struct baton_paths paths;
	struct baton_log_sink log;
	struct baton_msg *msg;
	int ep;
	int listen_fd;		/* the well-known control socket */
	int lock_fd;
	int work;		/* eventfd: phase 1 has more to send */
	int ctl;		/* the coordinator */
	int succ;		/* the new instance */
	pid_t expect_pid;
	unsigned int flags;	/* BATON_UPGRADE_F_* of this upgrade */
	enum svc_state state;
	bool adopted;
	struct {
		int fd;
		struct ucred cred;
	} pending[MAX_PENDING];
	struct baton_export exp;
	__u64 *sent;		/* sock_key() of the first pass, sorted */
	unsigned int nsent;
};

int resources_take(struct baton_service *svc);
void resources_release(struct baton_service *svc);
int takeover_run(struct baton_service *svc, int ctl);

#endif /* BATON_SERVICE_H */
