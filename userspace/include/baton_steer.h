/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libbaton's steering: new connections between generations of listeners
 * in one SO_REUSEPORT group (bpf/baton_steer.bpf.c), and a closing
 * listener's queue migrated to the active generation instead of reset.
 *
 *	baton_steer_open(&st, &opts);		// load and pin, or reopen pins
 *	baton_steer_attach(st, listen_fd);	// once per group
 *	baton_steer_set_listener(st, gen, listen_fd);
 *	baton_steer_set(st, active, canary, share);	// one map update
 *	baton_steer_close(st);			// the pins stay
 *
 * Generations are 0 .. BATON_STEER_MAX_GEN - 1, shares in
 * 1/BATON_STEER_SCALE: the program's maps (bpf/baton_steer_maps.h) hold
 * them. libbpf's own messages go where the application's
 * libbpf_set_print() sends them: a process-wide setting, which the library
 * leaves alone.
 */
#ifndef BATON_STEER_H
#define BATON_STEER_H

#include <linux/types.h>

#include "baton.h"
#include "baton_steer_maps.h"

#define BATON_STEER_PIN_ROOT	"/sys/fs/bpf/baton"	/* pin_root's default */

#define BATON_STEER_F_EXISTING	(1U << 0)	/* reopen pins; never load */

/*
 * batonctl upgrade --canary starts the new version with this variable set
 * to the name it is to serve under (SERVICE-canary). An application that
 * honours it, as kvd does, serves under that name with its own lock and
 * control socket, its listener a generation of SERVICE's steered group
 * that takes new connections only when batonctl steers a share to it. On
 * SIGTERM it closes that listener (what waited in its queue goes to the
 * active generation) and serves its connections until they close; a
 * second SIGTERM ends it.
 */
#define BATON_CANARY_ENV	"BATON_CANARY"

struct baton_steer;

struct baton_steer_opts {
	const char *service;
	const char *pin_root;	/* NULL: $BATON_PIN_ROOT, else BATON_STEER_PIN_ROOT */
	unsigned int flags;	/* BATON_STEER_F_* */
	baton_log_fn log;
	void *log_ctx;
};

BATON_API int baton_steer_open(struct baton_steer **st,
			       const struct baton_steer_opts *opts);
BATON_API int baton_steer_attach(struct baton_steer *st, int listen_fd);
BATON_API int baton_steer_set_listener(struct baton_steer *st, __u32 gen,
				       int listen_fd);
/* share of new flows for the canary, in 1/BATON_STEER_SCALE; 0 for none */
BATON_API int baton_steer_set(struct baton_steer *st, __u32 active,
			      __u32 canary, __u32 share);
BATON_API int baton_steer_get(struct baton_steer *st, __u32 *active,
			      __u32 *canary, __u32 *share);
/* 1 if generation gen has a listener in the group, 0 if not */
BATON_API int baton_steer_has_listener(struct baton_steer *st, __u32 gen);
BATON_API int baton_steer_unpin(struct baton_steer *st);
BATON_API void baton_steer_close(struct baton_steer *st);

#endif /* BATON_STEER_H */
