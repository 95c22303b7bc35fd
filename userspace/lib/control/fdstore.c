// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Listeners that outlive a crash, through libsystemd: a serving instance
 * keeps its listening sockets in the service manager's file descriptor
 * store (sd_pid_notify_with_fds(3), FDSTORE=1 and FDNAME=), and one that
 * the manager starts again after a crash (Restart=on-failure) takes them
 * back (sd_listen_fds_with_names(3)) instead of binding: the listening
 * socket never closes, so a client connecting in between waits in its
 * backlog, never refused. The store holds what the unit's
 * FileDescriptorStoreMax= allows; a store of 0 drops them, and the manager
 * logs that, so an application stores only when asked to.
 *
 * The environment is left as it is, as in notify.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "service/instance.h"

/* FDNAME=: at most 255 printable characters, no ':' (sd_pid_notify(3)) */
static bool fdname_ok(const char *name)
{
	size_t len = strlen(name), i;

	if (!len || len > 255)
		return false;
	for (i = 0; i < len; i++)
		if (name[i] < 0x21 || name[i] > 0x7e || name[i] == ':')
			return false;
	return true;
}

int baton_listener_store(struct baton_service *svc, int fd, const char *name)
{
	char msg[300];
	int ret;

	if (!svc || fd < 0 || !name || !fdname_ok(name))
		return -EINVAL;
	if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
		pr_warn(&svc->log, "fd %d is not a listening stream socket: not stored",
			fd);
		return -ENOTSOCK;
	}
	if (!getenv("NOTIFY_SOCKET"))
		return 0;
	snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=%s", name);
	ret = sd_pid_notify_with_fds(0, 0, msg, &fd, 1);
	if (ret < 0) {
		pr_warn(&svc->log, "cannot keep listener %s in the service manager's store ($NOTIFY_SOCKET %s): %s",
			name, getenv("NOTIFY_SOCKET"), strerror(-ret));
		return ret;
	}
	return ret > 0;
}

int baton_listeners_passed(struct baton_service *svc, const char *name,
			   int *fds, int max)
{
	char **names = NULL;
	int n, i, found = 0;

	if (!svc || !name || !fds || max <= 0)
		return -EINVAL;
	n = sd_listen_fds_with_names(0, &names);
	if (n < 0) {
		pr_warn(&svc->log, "cannot read the sockets the service manager passed ($LISTEN_FDS): %s",
			strerror(-n));
		return n;
	}
	for (i = 0; i < n; i++) {
		int fd = SD_LISTEN_FDS_START + i;

		if (!names || !names[i] || strcmp(names[i], name))
			continue;
		if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
			pr_warn(&svc->log, "passed fd %d, %s, is not a listening stream socket: left alone",
				fd, name);
			continue;
		}
		if (found == max) {
			pr_warn(&svc->log, "more than %d listeners named %s were passed: fd %d left alone",
				max, name, fd);
			continue;
		}
		fds[found++] = fd;
		pr_info(&svc->log, "listener %s taken back from the service manager (fd %d)",
			name, fd);
	}
	for (i = 0; names && i < n; i++)
		free(names[i]);
	free(names);
	return found;
}
