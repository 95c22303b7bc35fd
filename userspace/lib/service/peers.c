// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The serving instance's peers: who may connect to its control socket
 * (SO_PEERCRED), and what each says in its hello: a query, a coordinator,
 * or the new instance the coordinator announced.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "service/instance.h"

/* WELCOME to a coordinator or a new instance, INFO to a query */
static int send_welcome(struct baton_service *svc, int sock, __u16 type)
{
	struct welcome w = {
		.pid = getpid(), .service = svc->service, .app = svc->app_name,
		.time_ns = type == BATON_MSG_WELCOME ? now_ns() : 0,
		.ver = svc->ver,
	};

	return welcome_put(svc->msg, type, &w) ?: msg_send(sock, svc->msg);
}

static int successor_hello(struct baton_service *svc, int fd,
			   const struct ucred *cred, const struct hello *h)
{
	char why[200];
	int err;

	if (svc->ctl < 0 || !svc->expect_pid || svc->state != SVC_EXPECTING) {
		pr_warn(&svc->log, "refused pid %d as new instance: no upgrade is in progress",
			cred->pid);
		return msg_send_error(fd, svc->msg, -EPERM,
				      "no upgrade of %s is in progress: start the new instance with 'batonctl upgrade %s -- COMMAND'",
				      svc->service, svc->service) ?: -EPERM;
	}
	if (cred->pid != svc->expect_pid) {
		pr_warn(&svc->log, "refused pid %d as new instance: the coordinator started pid %d",
			cred->pid, svc->expect_pid);
		return msg_send_error(fd, svc->msg, -EPERM,
				      "the coordinator expects pid %d as the new instance, not %d",
				      svc->expect_pid, cred->pid) ?: -EPERM;
	}
	err = versions_check(&svc->ver, &h->ver, why, sizeof(why));
	if (err) {
		pr_warn(&svc->log, "refused the new instance: %s", why);
		return msg_send_error(fd, svc->msg, err, "%s", why) ?: err;
	}
	/* h points into the message buffer the welcome reuses */
	pr_info(&svc->log, "new instance pid %d (%s) connected; phase 1",
		cred->pid, h->app);
	err = ctl_set_timeout(fd, svc->peer_timeout_ms) ?:
	      send_welcome(svc, fd, BATON_MSG_WELCOME);
	if (err)
		return err;
	svc->succ = fd;
	err = ep_add(svc, fd, TAG_SUCC);
	if (err)
		return err;
	err = phase1_bulk(svc);
	if (err)
		rollback(svc, "phase 1 failed");
	return 0;
}

static int coordinator_hello(struct baton_service *svc, int fd,
			     const struct ucred *cred)
{
	int err;

	if (svc->ctl >= 0 || svc->state != SVC_SERVING) {
		pr_warn(&svc->log, "refused coordinator pid %d: an upgrade is in progress",
			cred->pid);
		return msg_send_error(fd, svc->msg, -EBUSY,
				      "an upgrade of %s is already in progress",
				      svc->service) ?: -EBUSY;
	}
	err = ctl_set_timeout(fd, svc->peer_timeout_ms) ?:
	      send_welcome(svc, fd, BATON_MSG_WELCOME);
	if (err)
		return err;
	svc->ctl = fd;
	svc->state = SVC_EXPECTING;
	pr_info(&svc->log, "coordinator pid %d attached", cred->pid);
	return ep_add(svc, fd, TAG_CTL);
}

/* The first message of an accepted peer says who it is. */
void pending_readable(struct baton_service *svc, unsigned int slot)
{
	const struct nlattr *tb[BATON_A_MAX + 1];
	int fd = svc->res.pending[slot].fd;
	struct ucred cred = svc->res.pending[slot].cred;
	struct baton_msg *m = svc->msg;
	struct hello h;
	int err;

	err = msg_recv(fd, m, 0);
	if (err == -ETIMEDOUT)
		return;
	epoll_ctl(svc->ep, EPOLL_CTL_DEL, fd, NULL);
	svc->res.pending[slot].fd = -1;
	if (err)
		goto close_fd;
	msg_close_fds(m);	/* a hello carries none */
	if (hello_get(m, tb, &h)) {
		pr_warn(&svc->log, "pid %d sent a malformed hello (%s); dropped",
			cred.pid, msg_type_name(m->nlh->nlmsg_type));
		msg_send_error(fd, m, -EPROTO, "malformed hello");
		goto close_fd;
	}
	switch (h.role) {
	case BATON_ROLE_QUERY:
		send_welcome(svc, fd, BATON_MSG_INFO);
		goto close_fd;
	case BATON_ROLE_COORDINATOR:
		err = coordinator_hello(svc, fd, &cred);
		break;
	case BATON_ROLE_SUCCESSOR:
		err = successor_hello(svc, fd, &cred, &h);
		break;
	default:
		msg_send_error(fd, m, -EINVAL, "unknown role");
		err = -EINVAL;
	}
	if (!err)
		return;
close_fd:
	if (fd != svc->ctl && fd != svc->succ)
		close(fd);
}

void listen_readable(struct baton_service *svc)
{
	struct ucred cred;
	unsigned int slot;
	int fd, err;

	fd = accept4(svc->res.listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	err = ctl_peer_check(fd, &cred);
	if (err) {
		pr_warn(&svc->log, "refused a peer: pid %d runs as uid %d, neither root nor uid %d",
			cred.pid, cred.uid, geteuid());
		msg_send_error(fd, svc->msg, -EPERM,
			       "permission denied: only root or uid %d may control %s",
			       geteuid(), svc->service);
		close(fd);
		return;
	}
	for (slot = 0; slot < MAX_PENDING; slot++)
		if (svc->res.pending[slot].fd < 0)
			break;
	if (slot == MAX_PENDING ||
	    ep_add(svc, fd, TAG_PENDING + slot)) {
		close(fd);	/* too many silent peers; they may retry */
		return;
	}
	svc->res.pending[slot].fd = fd;
	svc->res.pending[slot].cred = cred;
}
