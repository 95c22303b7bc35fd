// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvd --steer GEN: its listener is its own, in a SO_REUSEPORT group that
 * baton's sk_reuseport program steers. The switch of new connections to
 * this generation is one map update, made at activation; the old
 * generation's queue migrates here when it closes its listener, and wakes
 * this instance's epoll as any new connection does (steer_test 1).
 */
#include <errno.h>
#include <stdarg.h>
#include <bpf/libbpf.h>
#include <stdio.h>
#include <unistd.h>

#include "kvd.h"

static void log_cb(void *ctx, enum baton_log_level level, const char *msg)
{
	(void)ctx;
	if (level <= BATON_LOG_WARN)
		fprintf(stderr, "kvd-v%d[%d]: %s\n", KVD_VERSION, getpid(), msg);
}

static int libbpf_log(enum libbpf_print_level level, const char *fmt,
		      va_list ap)
{
	if (level != LIBBPF_WARN)
		return 0;
	fprintf(stderr, "kvd-v%d[%d]: libbpf: ", KVD_VERSION, getpid());
	return vfprintf(stderr, fmt, ap);
}

/*
 * Before the takeover: in the group, in our slot, not yet active. A canary
 * takes only an empty slot: the active generation's would be every new
 * connection, another's someone else's share. No instance takes the
 * active generation's slot while its listener is there: it would steer
 * every new connection to a listener that does not accept yet, and if
 * this instance then went (an upgrade rolled back, a second instance
 * the lock refuses), the slot would empty and the serving one be out of
 * the map for good. An upgrade takes the canary's, by design.
 */
int kvd_steer_join(struct kvd *kvd, const char *group, unsigned int gen,
		   bool canary)
{
	struct baton_steer_opts o = {
		.service = group, .log = log_cb,
	};
	int fd = kvd->srv.listeners[0].fd, err;
	__u32 active, to, share;

	libbpf_set_print(libbpf_log);
	err = baton_steer_open(&kvd->steer, &o);
	if (err)
		return err;
	if (baton_steer_has_listener(kvd->steer, gen) > 0) {
		bool act = !baton_steer_get(kvd->steer, &active, &to, &share) &&
			   active == gen;

		if (canary || act) {
			fprintf(stderr, "kvd-v%d[%d]: generation %u of %s's group has a listener already (%s): %s takes another (--steer)\n",
				KVD_VERSION, getpid(), gen, group,
				act ? "the active one" : "another instance's",
				canary ? "a canary" : "a new instance");
			return -EEXIST;
		}
	}
	err = baton_steer_attach(kvd->steer, fd) ?:
	      baton_steer_set_listener(kvd->steer, gen, fd);
	if (err)
		return err;
	kvd->steer_gen = gen;
	return 0;
}

/* The switch: every new flow from here on comes to this generation. */
int kvd_steer_activate(struct kvd *kvd)
{
	if (!kvd->steer)
		return 0;
	return baton_steer_set(kvd->steer, kvd->steer_gen, kvd->steer_gen, 0);
}

void kvd_steer_close(struct kvd *kvd)
{
	baton_steer_close(kvd->steer);
	kvd->steer = NULL;
}
