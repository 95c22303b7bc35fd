// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvd --steer GEN: its listener is its own, in a SO_REUSEPORT group that
 * baton's sk_reuseport program steers. The switch of new connections to
 * this generation is one map update, made at activation; the old
 * generation's queue migrates here when it closes its listener, and since
 * older kernels do not wake epoll for migrated connections, this instance
 * sweeps its listener for a while after activating.
 */
#include <errno.h>
#include <stdarg.h>
#include <bpf/libbpf.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "kvd.h"

#define SWEEP_EVERY_NS	10000000	/* 10 ms */
#define SWEEPS		200		/* for 2 s */

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

/* Before the takeover: in the group, in our slot, not yet active. */
int kvd_steer_join(struct kvd *kvd, const char *group, unsigned int gen)
{
	struct baton_steer_opts o = {
		.service = group, .log = log_cb,
	};
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &kvd->sweep_h };
	int fd = kvd->listeners[0].fd, err;

	libbpf_set_print(libbpf_log);
	err = baton_steer_open(&kvd->steer, &o);
	if (err)
		return err;
	err = baton_steer_attach(kvd->steer, fd) ?:
	      baton_steer_set_listener(kvd->steer, gen, fd);
	if (err)
		return err;
	kvd->steer_gen = gen;
	kvd->sweep_h.kind = H_SWEEP;
	kvd->sweep_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (kvd->sweep_fd < 0 ||
	    epoll_ctl(kvd->ep, EPOLL_CTL_ADD, kvd->sweep_fd, &ev) < 0)
		return -errno;
	return 0;
}

/* The switch: every new flow from here on comes to this generation. */
int kvd_steer_activate(struct kvd *kvd)
{
	struct itimerspec its = {
		.it_interval.tv_nsec = SWEEP_EVERY_NS,
		.it_value.tv_nsec = SWEEP_EVERY_NS,
	};
	int err;

	if (!kvd->steer)
		return 0;
	err = baton_steer_set(kvd->steer, kvd->steer_gen, kvd->steer_gen, 0);
	if (err)
		return err;
	kvd->sweeps_left = SWEEPS;
	return timerfd_settime(kvd->sweep_fd, 0, &its, NULL) < 0 ? -errno : 0;
}

/* One sweep; the timer stops after the last. */
void kvd_steer_sweep(struct kvd *kvd)
{
	struct itimerspec off = {};
	__u64 n;

	if (read(kvd->sweep_fd, &n, sizeof(n)) < 0)
		return;
	kvd_accept_all(kvd);
	if (kvd->sweeps_left && --kvd->sweeps_left == 0)
		timerfd_settime(kvd->sweep_fd, 0, &off, NULL);
}

void kvd_steer_close(struct kvd *kvd)
{
	if (kvd->sweep_fd >= 0)
		close(kvd->sweep_fd);
	baton_steer_close(kvd->steer);
	kvd->steer = NULL;
}
