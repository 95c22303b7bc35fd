// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * What an instance tells the service manager it runs under, through
 * libsystemd's sd_notify(3), when $NOTIFY_SOCKET names one:
 *
 *   READY=1			started fresh, it serves
 *   RELOADING=1, MONOTONIC_USEC	an upgrade of it began
 *   STATUS=			the new instance is ready to take over
 *				(its READY to the coordinator): it says so,
 *				and its first call into libsystemd, which
 *				costs tens of µs, is not the blackout's
 *   MAINPID=<pid>, READY=1	it serves as the new instance (before it
 *				says ACTIVE), or serves again after a
 *				rollback: the service's main process is it
 *
 * With NotifyAccess=all the new instance, a child of the ExecReload=
 * command, may say so. The environment is left as it is (sd_notify()'s
 * unset_environment is 0): a library changes nothing the process shares.
 * Without $NOTIFY_SOCKET nothing is sent, and libsystemd is not called. A
 * message that cannot be sent is logged and the instance serves on: the
 * manager's view is not the clients'.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "control/control.h"

/* 1 if the manager was told, 0 if there is none, or -errno */
static int notify_send(const struct baton_log_sink *log, const char *msg)
{
	int ret;

	if (!getenv("NOTIFY_SOCKET"))
		return 0;
	ret = sd_notify(0, msg);
	if (ret < 0) {
		char what[64];

		/* its first line names it: "READY=1", "RELOADING=1", ... */
		snprintf(what, sizeof(what), "%.*s", (int)strcspn(msg, "\n"),
			 msg);
		pr_warn(log, "cannot tell the service manager %s ($NOTIFY_SOCKET %s): %s",
			what, getenv("NOTIFY_SOCKET"), strerror(-ret));
		return ret;
	}
	return ret > 0;
}

int notify_ready(const struct baton_log_sink *log)
{
	return notify_send(log, "READY=1\nSTATUS=serving");
}

int notify_reloading(const struct baton_log_sink *log)
{
	char msg[128];

	snprintf(msg, sizeof(msg),
		 "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=upgrading",
		 (unsigned long long)(now_ns() / 1000));
	return notify_send(log, msg);
}

int notify_taking_over(const struct baton_log_sink *log)
{
	char msg[96];

	snprintf(msg, sizeof(msg),
		 "STATUS=upgrading: the new instance, pid %d, is ready to take over",
		 (int)getpid());
	return notify_send(log, msg);
}

int notify_main(const struct baton_log_sink *log)
{
	char msg[96];

	snprintf(msg, sizeof(msg), "MAINPID=%d\nREADY=1\nSTATUS=serving",
		 (int)getpid());
	return notify_send(log, msg);
}
