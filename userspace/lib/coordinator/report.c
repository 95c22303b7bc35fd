// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * What an upgrade reached, and when; if it failed, the first reason, which
 * is the one that counts.
 */
#include <stdio.h>

#include "coordinator/coordinator.h"

static const char *const phase_names[] = {
	[BATON_PHASE_NONE]	  = "none",
	[BATON_PHASE_ATTACHED]	  = "attached",
	[BATON_PHASE_SPAWNED]	  = "spawned",
	[BATON_PHASE_READY]	  = "ready",
	[BATON_PHASE_DEACTIVATED] = "deactivated",
	[BATON_PHASE_ACTIVE]	  = "active",
	[BATON_PHASE_DONE]	  = "done",
	[BATON_PHASE_ROLLED_BACK] = "rolled-back",
	[BATON_PHASE_FAILED]	  = "failed",
};

const char *baton_phase_name(enum baton_phase phase)
{
	return phase < __BATON_PHASE_END ? phase_names[phase] : "unknown";
}

void reach(struct baton_upgrade *up, enum baton_phase phase)
{
	up->r.phase = phase;
	up->r.t_ns[phase] = now_ns();
}

int fail(struct baton_upgrade *up, int err, const char *fmt, ...)
{
	va_list ap;

	if (up->r.error)
		return err;	/* the first reason is the one that counts */
	va_start(ap, fmt);
	vsnprintf(up->r.reason, sizeof(up->r.reason), fmt, ap);
	va_end(ap);
	up->r.error = err;
	pr_err(&up->log, "%s", up->r.reason);
	return err;
}

const struct baton_upgrade_report *
baton_upgrade_report(const struct baton_upgrade *up)
{
	return &up->r;
}
