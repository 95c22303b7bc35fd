// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The serving instance's peers: who may connect to its control socket
 * (SO_PEERCRED), and what each says in its hello: a query, a coordinator,
 * or the new instance the coordinator announced.
 *
 * No peer can make it wait: a peer that says nothing is dropped at its
 * deadline, or sooner when the slots are full and a newer one comes; a
 * new instance that comes before the coordinator names it waits (parked)
 * until the coordinator's EXPECT, or its own deadline.
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

/* The slot's socket leaves the pending list for the role it was given. */
static int pending_promote(struct baton_service *svc, unsigned int slot,
			   __u64 tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = tag };
	int fd = svc->pending[slot].fd;

	svc->pending[slot].fd = -1;
	svc->pending[slot].parked = false;
	if (epoll_ctl(svc->ep, EPOLL_CTL_MOD, fd, &ev) < 0) {
		close(fd);
		return -errno;
	}
	return fd;
}

static void refuse(struct baton_service *svc, unsigned int slot, int err,
		   const char *why)
{
	pr_warn(&svc->log, "refused pid %d: %s", svc->pending[slot].cred.pid,
		why);
	msg_send_error(svc->pending[slot].fd, svc->msg, err, "%s", why);
	pending_close(svc, slot);
}

/*
 * The new instance the coordinator named (EXPECT) is welcomed, and phase 1
 * begins; the coordinator hears that it came.
 */
void successor_admit(struct baton_service *svc, unsigned int slot)
{
	struct pending *p = &svc->pending[slot];
	pid_t pid = p->cred.pid;
	char why[256];
	int err, fd;

	if (pid != svc->expect_pid) {
		snprintf(why, sizeof(why),
			 "the coordinator expects pid %d as the new instance, not %d",
			 svc->expect_pid, pid);
		refuse(svc, slot, -EPERM, why);
		return;
	}
	err = versions_check(&svc->ver, &p->ver, why, sizeof(why));
	if (err) {
		refuse(svc, slot, err, why);
		return;
	}
	pr_info(&svc->log, "new instance pid %d (%s) connected; phase 1", pid,
		p->app);
	err = ctl_set_timeout(p->fd, svc->peer_timeout_ms) ?:
	      send_welcome(svc, p->fd, BATON_MSG_WELCOME);
	if (err) {
		pending_close(svc, slot);
		return;
	}
	fd = pending_promote(svc, slot, TAG_SUCC);
	if (fd < 0)
		return;
	svc->succ = fd;
	svc->succ_wait_room = false;
	svc->succ_takes = p->takes;
	msg_init(svc->msg, BATON_MSG_SUCCESSOR);
	if (msg_put_u32(svc->msg, BATON_A_PID, pid) ||
	    msg_send(svc->ctl, svc->msg)) {
		rollback(svc, "the coordinator went away");
		return;
	}
	err = phase1_bulk(svc);
	if (err)
		phase1_failed(svc);
}

static void successor_hello(struct baton_service *svc, unsigned int slot,
			    const struct hello *h)
{
	struct pending *p = &svc->pending[slot];
	char why[256];

	if (svc->ctl < 0 || svc->state != SVC_ANNOUNCED) {
		snprintf(why, sizeof(why),
			 "no upgrade of %s is in progress: start the new instance with 'batonctl upgrade %s -- COMMAND'",
			 svc->service, svc->service);
		refuse(svc, slot, -EPERM, why);
		return;
	}
	/* h points into the message buffer: keep what is needed later */
	p->ver = h->ver;
	p->takes = h->takes;
	snprintf(p->app, sizeof(p->app), "%s", h->app);
	if (svc->expect_pid) {
		successor_admit(svc, slot);
		return;
	}
	/* it came before the coordinator said its pid: it waits for EXPECT */
	p->parked = true;
	p->deadline_ns = now_ns() + 2 * svc->ctl_timeout_ms * 1000000ULL;
}

static void coordinator_hello(struct baton_service *svc, unsigned int slot,
			      const struct hello *h)
{
	pid_t pid = svc->pending[slot].cred.pid;
	int err, fd;

	/* its steps' time, doubled for its deadlines, an int */
	if (h->timeout_ms > BATON_TIMEOUT_MS_MAX) {
		msg_send_error(svc->pending[slot].fd, svc->msg, -ERANGE,
			       "a step of %u ms: more than the %d ms any may take",
			       h->timeout_ms, BATON_TIMEOUT_MS_MAX);
		pr_warn(&svc->log, "refused coordinator pid %d: it says a step takes %u ms, more than %d",
			pid, h->timeout_ms, BATON_TIMEOUT_MS_MAX);
		pending_close(svc, slot);
		return;
	}
	if (svc->ctl >= 0 || svc->state != SVC_SERVING) {
		msg_send_error(svc->pending[slot].fd, svc->msg, -EBUSY,
			       "an upgrade of %s is already in progress",
			       svc->service);
		pr_warn(&svc->log, "refused coordinator pid %d: an upgrade is in progress",
			pid);
		pending_close(svc, slot);
		return;
	}
	/* the service's sockets, held by the coordinator from now on */
	err = ctl_set_timeout(svc->pending[slot].fd, svc->peer_timeout_ms) ?:
	      copies_to_coordinator(svc, svc->pending[slot].fd) ?:
	      send_welcome(svc, svc->pending[slot].fd, BATON_MSG_WELCOME);
	if (err) {
		pr_warn(&svc->log, "coordinator pid %d: %s", pid, strerror(-err));
		pending_close(svc, slot);
		return;
	}
	fd = pending_promote(svc, slot, TAG_CTL);
	if (fd < 0)
		return;
	svc->ctl = fd;
	svc->ctl_timeout_ms = h->timeout_ms ?: BATON_UPGRADE_TIMEOUT_MS;
	svc->state = SVC_EXPECTING;
	/* a coordinator that says nothing more is dropped */
	svc_deadline(svc, 2 * svc->ctl_timeout_ms);
	pr_info(&svc->log, "coordinator pid %d attached", pid);
}

/* The first message of an accepted peer says who it is. */
void pending_readable(struct baton_service *svc, unsigned int slot)
{
	const struct nlattr *tb[BATON_A_MAX + 1];
	struct pending *p = &svc->pending[slot];
	struct baton_msg *m = svc->msg;
	struct hello h;
	int err;

	if (p->parked) {	/* it has said all; it can only go */
		pending_close(svc, slot);
		return;
	}
	err = msg_recv(p->fd, m, 0);
	if (err == -ETIMEDOUT)
		return;
	if (err) {
		pending_close(svc, slot);
		return;
	}
	msg_close_fds(m);	/* a hello carries none */
	if (hello_get(m, tb, &h)) {
		pr_warn(&svc->log, "pid %d sent a malformed hello (%s); dropped",
			p->cred.pid, msg_type_name(m->nlh->nlmsg_type));
		msg_send_error(p->fd, m, -EPROTO, "malformed hello");
		pending_close(svc, slot);
		return;
	}
	switch (h.role) {
	case BATON_ROLE_QUERY:
		send_welcome(svc, p->fd, BATON_MSG_INFO);
		pending_close(svc, slot);
		return;
	case BATON_ROLE_COORDINATOR:
		coordinator_hello(svc, slot, &h);
		return;
	case BATON_ROLE_SUCCESSOR:
		successor_hello(svc, slot, &h);
		return;
	default:
		msg_send_error(p->fd, m, -EINVAL, "unknown role");
		pending_close(svc, slot);
	}
}

void pending_expired(struct baton_service *svc, __u64 now)
{
	unsigned int i;

	for (i = 0; i < MAX_PENDING; i++) {
		struct pending *p = &svc->pending[i];

		if (p->fd < 0 || now < p->deadline_ns)
			continue;
		if (p->parked)
			refuse(svc, i, -ETIMEDOUT,
			       "the coordinator did not name this new instance in time");
		else
			pending_close(svc, i);	/* silent for too long */
	}
}

/* A free slot; if none, the one a silent peer has held the longest. */
static unsigned int pending_slot(struct baton_service *svc)
{
	unsigned int i, oldest = MAX_PENDING;

	for (i = 0; i < MAX_PENDING; i++) {
		if (svc->pending[i].fd < 0)
			return i;
		if (!svc->pending[i].parked &&
		    (oldest == MAX_PENDING || svc->pending[i].deadline_ns <
					      svc->pending[oldest].deadline_ns))
			oldest = i;
	}
	if (oldest < MAX_PENDING)
		pending_close(svc, oldest);
	return oldest;
}

void listen_readable(struct baton_service *svc)
{
	struct pending *p;
	struct ucred cred;
	unsigned int slot;
	int fd, err;

	fd = accept4(svc->res.listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	err = ctl_peer_check(fd, &cred);
	if (err && err != -EPERM) {
		/* its credentials unread: nothing to say of it */
		pr_warn(&svc->log, "refused a peer whose credentials cannot be read: %s",
			strerror(-err));
		close(fd);
		return;
	}
	if (err) {
		pr_warn(&svc->log, "refused a peer: pid %d runs as uid %d, neither root nor uid %d",
			cred.pid, cred.uid, geteuid());
		msg_send_error(fd, svc->msg, -EPERM,
			       "permission denied: only root or uid %d may control %s",
			       geteuid(), svc->service);
		close(fd);
		return;
	}
	slot = pending_slot(svc);
	if (slot == MAX_PENDING || ep_add(svc, fd, TAG_PENDING + slot)) {
		close(fd);	/* every slot waits for its coordinator */
		return;
	}
	p = &svc->pending[slot];
	p->fd = fd;
	p->cred = cred;
	p->parked = false;
	p->deadline_ns = now_ns() + svc->peer_timeout_ms * 1000000ULL;
}
