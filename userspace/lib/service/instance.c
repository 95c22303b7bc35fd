// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The instance's clock and its waiting peers: the deadline of the state it
 * is in, the timer set at the earliest deadline, and a pending slot closed.
 * The files above it (peers.c, handover/) change its state through these.
 */
#include <sys/timerfd.h>

#include "service/instance.h"

/* The state we are in ends, if nothing moves it on, in ms from now. */
void svc_deadline(struct baton_service *svc, int ms)
{
	svc->deadline_ns = ms ? now_ns() + ms * 1000000ULL : 0;
}

/* The timer at the earliest deadline: the state's or a pending peer's. */
void svc_arm(struct baton_service *svc)
{
	struct itimerspec its = {};
	__u64 at = svc->deadline_ns;
	unsigned int i;

	for (i = 0; i < MAX_PENDING; i++)
		if (svc->pending[i].fd >= 0 &&
		    (!at || svc->pending[i].deadline_ns < at))
			at = svc->pending[i].deadline_ns;
	if (at) {
		its.it_value.tv_sec = at / 1000000000ULL;
		its.it_value.tv_nsec = at % 1000000000ULL;
	}
	timerfd_settime(svc->timer, TFD_TIMER_ABSTIME, &its, NULL);
}

/* A peer of the control socket that had no role yet, gone */
void pending_close(struct baton_service *svc, unsigned int slot)
{
	struct pending *p = &svc->pending[slot];

	ctl_close(svc->ep, &p->fd);
	p->parked = false;
}
