// SPDX-License-Identifier: LGPL-2.1-or-later
/* Asks a serving instance, on its control socket, who it is. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "control/control.h"

int baton_query(const char *run_dir, const char *service,
		struct baton_instance_info *info)
{
	const struct nlattr *tb[BATON_A_MAX + 1];
	struct baton_paths paths;
	struct baton_msg *m;
	int sock, err;

	err = paths_init(&paths, run_dir, service);
	if (err)
		return err;
	m = msg_alloc();
	if (!m)
		return -ENOMEM;
	sock = ctl_connect(paths.sock);
	if (sock < 0) {
		err = sock;
		goto free_msg;
	}
	msg_init(m, BATON_MSG_HELLO);
	err = msg_put_u32(m, BATON_A_ROLE, BATON_ROLE_QUERY) ?:
	      msg_put_u32(m, BATON_A_PROTO, BATON_PROTO_VERSION) ?:
	      msg_send(sock, m) ?:
	      msg_recv(sock, m, 2000) ?:
	      msg_parse(m, tb);
	if (err)
		goto close_sock;
	if (m->nlh->nlmsg_type != BATON_MSG_INFO) {
		err = -EPROTO;
		goto close_sock;
	}
	memset(info, 0, sizeof(*info));
	info->pid = attr_u32(tb, BATON_A_PID, 0);
	info->state_version = attr_u32(tb, BATON_A_STATE_VERSION, 0);
	info->proto = attr_u32(tb, BATON_A_PROTO, 0);
	snprintf(info->app, sizeof(info->app), "%s",
		 attr_str(tb, BATON_A_APP, "?"));
close_sock:
	close(sock);
free_msg:
	msg_free(m);
	return err;
}
