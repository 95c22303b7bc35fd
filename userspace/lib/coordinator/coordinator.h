/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * struct baton_upgrade, one upgrade as the coordinator drives it, shared
 * by the files of this folder.
 */
#ifndef BATON_LIB_COORDINATOR_H
#define BATON_LIB_COORDINATOR_H

#include "control/control.h"

struct baton_upgrade {
	struct baton_upgrade_opts o;
	struct baton_paths paths;
	struct baton_log_sink log;
	struct baton_msg *msg;
	struct baton_upgrade_report r;
	int old;		/* connection to the old instance */
	int new;		/* our end of the new instance's BATON_CTL_FD */
	struct held_socket *held;
	unsigned int nheld, cap;
	bool activate_sent;
	__u64 old_gone_ns;	/* the old closed its end after ACTIVE */
};

enum from { FROM_OLD, FROM_NEW };

/* report.c: how far it came, and why it stopped */
void reach(struct baton_upgrade *up, enum baton_phase phase);
int fail(struct baton_upgrade *up, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* wait.c: the two instances' messages, within a step's deadline */
void drop_held(struct baton_upgrade *up);
int wait_msg(struct baton_upgrade *up, __u64 deadline, enum from *from,
	     const struct nlattr **tb);
int expect(struct baton_upgrade *up, enum from side, __u16 want,
	   const struct nlattr **tb);

/* spawn.c: the new instance */
int spawn(struct baton_upgrade *up);

#endif /* BATON_LIB_COORDINATOR_H */
