// SPDX-License-Identifier: LGPL-2.1-or-later
/* Asks a serving instance, on its control socket, who it is. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "control/control.h"

int baton_query(const char *run_dir, const char *service, int timeout_ms,
		struct baton_instance_info *info)
{
	const struct hello h = {
		.role = BATON_ROLE_QUERY, .ver.proto = BATON_PROTO_VERSION,
	};
	struct baton_paths paths;
	struct baton_msg *m;
	struct welcome w;
	struct reply r = { .how = REPLY_NONE };
	int sock, err;

	err = paths_init(&paths, run_dir, service);
	if (err)
		return err;
	m = msg_alloc();
	if (!m)
		return -ENOMEM;
	sock = ctl_connect(paths.sock, timeout_ms ?: BATON_QUERY_TIMEOUT_MS);
	if (sock < 0) {
		err = sock;
		goto free_msg;
	}
	err = hello_put(m, &h) ?: msg_send(sock, m) ?:
	      msg_reply(sock, m, timeout_ms ?: BATON_QUERY_TIMEOUT_MS,
			BATON_MSG_INFO, &r);
	if (err && r.how == REPLY_ERROR)
		err = -EPROTO;	/* a refusal is no instance to ask */
	if (err)
		goto close_sock;
	welcome_get(r.tb, &w);
	memset(info, 0, sizeof(*info));
	info->pid = w.pid;
	info->state_version = w.ver.state;
	info->proto = w.ver.proto;
	snprintf(info->app, sizeof(info->app), "%s", w.app);
close_sock:
	close(sock);
free_msg:
	msg_free(m);
	return err;
}
