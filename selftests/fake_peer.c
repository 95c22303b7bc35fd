// SPDX-License-Identifier: GPL-2.0-only
/*
 * A new instance that gets the protocol wrong on purpose, started by
 * batonctl in peer_test. Usage: fake_peer MODE, with MODE one of
 *   garbage-hello    bytes that are no message at all
 *   truncated-hello  a header that claims more than it sends
 *   silent           a proper hello, then nothing
 *   bad-to-old       a proper hello, then to the old instance a SYNC
 *                    whose PID is 8 bytes long
 *   bad-ready        phase 1 as it should be, then a READY whose
 *                    attribute overruns the message
 *   wrong-message    phase 1, then ACTIVE where READY belongs
 *   no-active        phase 1 and READY as they should be, then nothing
 *                    after ACTIVATE: a new instance hung in the blackout
 * or, started by a test as the serving instance of "kvd":
 *   old-no-ack       welcomes a coordinator, and never answers its UPGRADE
 *   old-slow-ack     answers it after half a second, then nothing more
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control/control.h"

static int hello(int sock, struct baton_msg *m)
{
	const struct versions v = {
		.proto = BATON_PROTO_VERSION, .proto_min = BATON_PROTO_MIN,
		.state = 1, .compat = 1, .min = 1,
	};

	msg_init(m, BATON_MSG_HELLO);
	return msg_put_u32(m, BATON_A_ROLE, BATON_ROLE_SUCCESSOR) ?:
	       msg_put_u32(m, BATON_A_PID, getpid()) ?:
	       msg_put_str(m, BATON_A_APP, "fake_peer") ?:
	       versions_put(m, &v) ?:
	       msg_send(sock, m) ?:
	       msg_recv(sock, m, 5000);
}

/* Takes phase 1 as a new instance would, and drops it. */
static int phase1(int sock, struct baton_msg *m)
{
	int err;

	do {
		err = msg_recv(sock, m, 5000);
		msg_close_fds(m);
		if (!err && m->nlh->nlmsg_type == BATON_MSG_SYNC) {
			msg_init(m, BATON_MSG_SYNC);
			err = msg_send(sock, m);
			m->nlh->nlmsg_type = BATON_MSG_SYNC;
		}
	} while (!err && m->nlh->nlmsg_type != BATON_MSG_PHASE1_DONE);
	return err;
}

/* The serving instance's part, as far as the mode goes. */
static int fake_old(const char *mode, struct baton_paths *paths,
		    struct baton_msg *m)
{
	const struct versions v = {
		.proto = BATON_PROTO_VERSION, .proto_min = BATON_PROTO_MIN,
		.state = 1, .compat = 1, .min = 1,
	};
	int lfd, sock;

	lfd = ctl_listen(paths->sock);
	if (lfd < 0)
		return 2;
	do {
		struct pollfd p = { .fd = lfd, .events = POLLIN };

		poll(&p, 1, -1);
		sock = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	} while (sock < 0);
	if (msg_recv(sock, m, -1) || m->nlh->nlmsg_type != BATON_MSG_HELLO)
		return 2;
	msg_init(m, BATON_MSG_WELCOME);
	if (msg_put_u32(m, BATON_A_PID, getpid()) ||
	    msg_put_str(m, BATON_A_APP, "fake_peer") ||
	    versions_put(m, &v) || msg_send(sock, m))
		return 2;
	if (msg_recv(sock, m, -1) || m->nlh->nlmsg_type != BATON_MSG_UPGRADE)
		return 2;
	if (!strcmp(mode, "old-slow-ack")) {
		usleep(500000);
		msg_init(m, BATON_MSG_UPGRADE_ACK);
		msg_send(sock, m);
	}
	for (;;)
		pause();
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	const char *fd_env = getenv("BATON_CTL_FD");
	struct baton_paths paths;
	struct baton_msg *m = msg_alloc();
	int ctl = fd_env ? atoi(fd_env) : -1, sock;

	if (!m || paths_init(&paths, NULL, "kvd"))
		return 2;
	if (!strncmp(mode, "old-", 4))
		return fake_old(mode, &paths, m);
	if (ctl < 0)
		return 2;
	sock = ctl_connect(paths.sock, 5000);
	if (sock < 0)
		return 2;
	if (!strcmp(mode, "garbage-hello")) {
		char junk[64];

		memset(junk, 0xa5, sizeof(junk));
		if (write(sock, junk, sizeof(junk)) < 0)
			return 2;
		msg_recv(sock, m, 5000);	/* its ERROR */
		return 3;
	}
	if (!strcmp(mode, "truncated-hello")) {
		msg_init(m, BATON_MSG_HELLO);
		msg_put_u32(m, BATON_A_ROLE, BATON_ROLE_SUCCESSOR);
		m->nlh->nlmsg_len += 64;
		if (write(sock, m->buf, m->nlh->nlmsg_len - 64) < 0)
			return 2;
		msg_recv(sock, m, 5000);
		return 3;
	}
	if (hello(sock, m))
		return 2;
	if (!strcmp(mode, "silent")) {
		pause();
		return 0;
	}
	if (!strcmp(mode, "bad-to-old")) {
		msg_init(m, BATON_MSG_SYNC);
		msg_put_u64(m, BATON_A_PID, getpid());
		msg_send(sock, m);
		pause();
		return 0;
	}
	if (phase1(sock, m))
		return 2;
	if (!strcmp(mode, "bad-ready")) {
		msg_init(m, BATON_MSG_READY);
		msg_put_u32(m, BATON_A_CONNS, 1);
		((struct nlattr *)mnl_nlmsg_get_payload(m->nlh))->nla_len = 999;
	} else if (!strcmp(mode, "wrong-message")) {
		msg_init(m, BATON_MSG_ACTIVE);
	} else if (!strcmp(mode, "no-active")) {
		msg_init(m, BATON_MSG_READY);
		msg_put_u32(m, BATON_A_LISTENERS, 1);
		msg_put_str(m, BATON_A_APP, "fake_peer");
	} else {
		return 2;
	}
	msg_send(ctl, m);
	pause();		/* until the coordinator kills us */
	return 0;
}
