// SPDX-License-Identifier: GPL-2.0-only
/*
 * A Type=notify service for systemd_test: says READY=1 to systemd through
 * libsystemd, then waits to be stopped. Exits 1 if systemd did not hear it
 * (no $NOTIFY_SOCKET, or sending failed).
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

int main(void)
{
	int err = sd_notify(0, "READY=1");

	if (err <= 0) {
		fprintf(stderr, "notify_ready: sd_notify: %s\n",
			err ? strerror(-err) : "no $NOTIFY_SOCKET");
		return 1;
	}
	for (;;)
		pause();
}
