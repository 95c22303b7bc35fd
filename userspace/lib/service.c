// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The serving instance's side of the handover: the control socket, the
 * coordinator and successor peers, phase 1, deactivation, rollback and
 * termination.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include "service.h"

enum tag {
	TAG_LISTEN = 1,
	TAG_CTL,
	TAG_SUCC,
	TAG_WORK,
	TAG_PENDING,		/* + slot */
};

static int ep_add(struct baton_service *svc, int fd, __u64 tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = tag };

	return epoll_ctl(svc->ep, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static void close_peer(struct baton_service *svc, int *fd)
{
	if (*fd < 0)
		return;
	epoll_ctl(svc->ep, EPOLL_CTL_DEL, *fd, NULL);
	close(*fd);
	*fd = -1;
}

/* Takes the lock, the control socket and the pid file, in that order. */
int resources_take(struct baton_service *svc)
{
	int err;

	if (svc->lock_fd < 0) {
		svc->lock_fd = lock_acquire(svc->paths.lock);
		if (svc->lock_fd < 0) {
			err = svc->lock_fd;
			svc->lock_fd = -1;
			return err;
		}
	}
	if (svc->listen_fd < 0) {
		err = ctl_listen(svc->paths.sock);
		if (err < 0)
			return err;
		svc->listen_fd = err;
		err = ep_add(svc, svc->listen_fd, TAG_LISTEN);
		if (err)
			return err;
	}
	return pidfile_write(svc->paths.pid);
}

/* Lets the next instance take them. The path is renamed over, not removed. */
void resources_release(struct baton_service *svc)
{
	unsigned int i;

	close_peer(svc, &svc->listen_fd);
	for (i = 0; i < MAX_PENDING; i++)
		close_peer(svc, &svc->pending[i].fd);
	if (svc->lock_fd >= 0) {
		close(svc->lock_fd);
		svc->lock_fd = -1;
	}
}

static int svc_alloc(struct baton_service **out,
		     const struct baton_service_opts *o)
{
	struct baton_service *svc;
	unsigned int i;
	int err;

	if (!o || !o->ops || !o->state_version ||
	    o->state_compat > o->state_version ||
	    o->state_min > o->state_version)
		return -EINVAL;
	svc = calloc(1, sizeof(*svc));
	if (!svc)
		return -ENOMEM;
	svc->o = *o;
	svc->log.fn = o->log;
	svc->log.ctx = o->log_ctx;
	err = paths_init(&svc->paths, o->run_dir, o->service);
	if (err)
		goto free_svc;
	snprintf(svc->service, sizeof(svc->service), "%s", o->service);
	snprintf(svc->app_name, sizeof(svc->app_name), "%s",
		 o->app_name ? o->app_name : o->service);
	svc->ver = (struct versions){
		.proto = BATON_PROTO_VERSION, .proto_min = BATON_PROTO_MIN,
		.state = o->state_version,
		.compat = o->state_compat ?: o->state_version,
		.min = o->state_min ?: 1,
	};
	svc->listen_fd = svc->lock_fd = svc->ctl = svc->succ = -1;
	for (i = 0; i < MAX_PENDING; i++)
		svc->pending[i].fd = -1;
	svc->msg = msg_alloc();
	if (!svc->msg) {
		err = -ENOMEM;
		goto free_svc;
	}
	svc->ep = epoll_create1(EPOLL_CLOEXEC);
	if (svc->ep < 0) {
		err = -errno;
		goto free_msg;
	}
	svc->work = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (svc->work < 0) {
		err = -errno;
		goto close_ep;
	}
	err = ep_add(svc, svc->work, TAG_WORK);
	if (err)
		goto close_work;
	*out = svc;
	return 0;

close_work:
	close(svc->work);
close_ep:
	close(svc->ep);
free_msg:
	msg_free(svc->msg);
free_svc:
	free(svc);
	return err;
}

static int successor_ctl_fd(void)
{
	const char *s = getenv("BATON_CTL_FD");
	char *end;
	long fd;

	if (!s)
		return -ENOENT;
	fd = strtol(s, &end, 10);
	unsetenv("BATON_CTL_FD");	/* not for our own children */
	if (*end || fd < 3 || fd > INT_MAX)
		return -EBADF;
	return fd;
}

int baton_service_open(struct baton_service **out,
		       const struct baton_service_opts *o)
{
	struct baton_service *svc = NULL;
	int err, ctl;

	err = svc_alloc(&svc, o);
	if (err)
		return err;
	ctl = successor_ctl_fd();
	if (ctl >= 0) {
		err = takeover_run(svc, ctl);
		if (err)
			goto close_svc;
		svc->adopted = true;
	} else {
		err = resources_take(svc);
		if (err == -EBUSY)
			pr_err(&svc->log,
			       "%s is already served by another instance (it holds %s); upgrade it with 'batonctl upgrade %s -- COMMAND'",
			       svc->service, svc->paths.lock, svc->service);
		else if (err)
			pr_err(&svc->log, "cannot take %s's resources in %s: %s",
			       svc->service, svc->paths.dir, strerror(-err));
		if (err)
			goto close_svc;
	}
	*out = svc;
	return 0;

close_svc:
	baton_service_close(svc);
	return err;
}

bool baton_service_adopted(const struct baton_service *svc)
{
	return svc->adopted;
}

bool baton_service_paused(const struct baton_service *svc)
{
	return svc->state == SVC_DEACTIVATED && !(svc->flags & BATON_UPGRADE_F_DRAIN);
}

int baton_service_fd(const struct baton_service *svc)
{
	return svc->ep;
}

void baton_service_close(struct baton_service *svc)
{
	if (!svc)
		return;
	resources_release(svc);
	close_peer(svc, &svc->succ);
	close_peer(svc, &svc->ctl);
	free(svc->exp.socks);
	free(svc->sent);
	close(svc->work);
	close(svc->ep);
	msg_free(svc->msg);
	free(svc);
}

int baton_export_socket(struct baton_export *exp, int fd, __u64 id,
			enum baton_sock_kind kind)
{
	struct held_socket *s;

	if (fd < 0 || !id ||
	    (kind != BATON_SOCK_LISTENER && kind != BATON_SOCK_CONN))
		return -EINVAL;
	kind == BATON_SOCK_LISTENER ? exp->listeners++ : exp->conns++;
	if (exp->nskip) {	/* the final pass: only what is new */
		struct baton_sockinfo si = { .id = id, .kind = kind };
		__u64 key = sock_key(&si);

		if (bsearch(&key, exp->skip, exp->nskip, sizeof(key), cmp_u64))
			return 0;
	}
	if (exp->n == exp->cap) {
		unsigned int cap = exp->cap ? exp->cap * 2 : 256;

		s = realloc(exp->socks, cap * sizeof(*s));
		if (!s)
			return -ENOMEM;
		exp->socks = s;
		exp->cap = cap;
	}
	/*
	 * Addresses are read where the socket arrives (sockets_addresses()):
	 * two syscalls a socket are not for the serving instance's time.
	 */
	s = &exp->socks[exp->n];
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->si.id = id;
	s->si.kind = kind;
	exp->n++;
	return 0;
}

static int send_simple(int sock, struct baton_msg *m, __u16 type)
{
	msg_init(m, type);
	return msg_send(sock, m);
}

/* Rollback: take everything back and serve again. Nothing was closed. */
static void rollback(struct baton_service *svc, const char *why)
{
	bool was_running = svc->state >= SVC_PRECOPY;
	int err;

	if (svc->state == SVC_SERVING && svc->succ < 0)
		return;
	pr_warn(&svc->log, "rolling back the upgrade of %s: %s", svc->service,
		why);
	close_peer(svc, &svc->succ);
	svc->expect_pid = 0;
	err = resources_take(svc);
	if (err)
		pr_err(&svc->log, "rollback: cannot take back %s's resources: %s",
		       svc->service, strerror(-err));
	if (was_running)
		svc->o.ops->resume(svc->o.app);
	svc->state = SVC_SERVING;
	if (svc->ctl >= 0 && send_simple(svc->ctl, svc->msg, BATON_MSG_RESUMED))
		close_peer(svc, &svc->ctl);
}

static int send_info(struct baton_service *svc, int sock)
{
	struct baton_msg *m = svc->msg;
	int err;

	msg_init(m, BATON_MSG_INFO);
	err = msg_put_u32(m, BATON_A_PID, getpid()) ?:
	      msg_put_str(m, BATON_A_SERVICE, svc->service) ?:
	      msg_put_str(m, BATON_A_APP, svc->app_name) ?:
	      versions_put(m, &svc->ver);
	return err ?: msg_send(sock, m);
}

static int send_welcome(struct baton_service *svc, int sock)
{
	struct baton_msg *m = svc->msg;
	int err;

	msg_init(m, BATON_MSG_WELCOME);
	err = msg_put_u32(m, BATON_A_PID, getpid()) ?:
	      msg_put_str(m, BATON_A_SERVICE, svc->service) ?:
	      msg_put_str(m, BATON_A_APP, svc->app_name) ?:
	      msg_put_u64(m, BATON_A_TIME_NS, now_ns()) ?:
	      versions_put(m, &svc->ver);
	return err ?: msg_send(sock, m);
}

static int send_blob(struct baton_service *svc, enum baton_blob_kind kind,
		     int (*save)(void *, struct baton_rec_writer *),
		     __u32 *records, __u64 *bytes)
{
	struct baton_rec_writer w;
	int err, memfd, more = 0;

	err = writer_init(&w, kind, svc->service, svc->ver.state);
	if (!err && save)
		more = save(svc->o.app, &w);
	if (more < 0)
		err = more;
	if (!err)
		err = w.err ?: writer_finish(&w, &memfd);
	if (err)
		goto free_writer;
	err = blob_send(svc->succ, svc->msg, kind, memfd, w.count);
	close(memfd);
	if (!err && more > 0)
		err = 1;	/* the application has more */
	if (records)
		*records += w.count;
	if (bytes)
		*bytes += w.len;
free_writer:
	writer_free(&w);
	return err;
}

/* Copies to the coordinator first: they outlive either instance. */
static int send_sockets(struct baton_service *svc, const struct held_socket *s,
			unsigned int n)
{
	int err = sockets_send(svc->ctl, svc->msg, s, n);

	if (err) {
		pr_err(&svc->log, "phase 1: cannot hand copies to the coordinator: %s",
		       strerror(-err));
		return err;
	}
	err = sockets_send(svc->succ, svc->msg, s, n);
	if (err)
		pr_err(&svc->log, "phase 1: cannot hand sockets to the new instance: %s",
		       strerror(-err));
	return err;
}

/*
 * One part of the service-wide state; the application serves between
 * parts, and the work eventfd brings us back for the next.
 */
static int phase1_state(struct baton_service *svc)
{
	__u64 one = 1;
	int err;

	err = send_blob(svc, BATON_BLOB_STATE, svc->o.ops->save_state, NULL,
			NULL);
	if (err < 0) {
		pr_err(&svc->log, "phase 1: cannot hand over the service state: %s",
		       strerror(-err));
		return err;
	}
	if (err > 0)
		return write(svc->work, &one, sizeof(one)) < 0 ? -errno : 0;
	return send_simple(svc->succ, svc->msg, BATON_MSG_SYNC);
}

static void work_readable(struct baton_service *svc)
{
	__u64 n;

	if (read(svc->work, &n, sizeof(n)) < 0 || svc->state != SVC_PRECOPY)
		return;
	if (phase1_state(svc))
		rollback(svc, "phase 1 failed");
}

/*
 * Phase 1, first pass: every socket and the service-wide state while the
 * old still serves and still accepts, then SYNC. The final pass, once the
 * new has taken all this, is short: new clients wait in the backlog only
 * for it and the blackout.
 */
static int phase1_bulk(struct baton_service *svc)
{
	struct baton_export *exp = &svc->exp;
	unsigned int i;
	int err;

	exp->n = exp->listeners = exp->conns = 0;
	svc->state = SVC_PRECOPY;	/* from here, a failure must resume */
	err = svc->o.ops->export_sockets(svc->o.app, exp, svc->flags);
	if (err) {
		pr_err(&svc->log, "phase 1: the application could not list its sockets: %s",
		       strerror(-err));
		return err;
	}
	free(svc->sent);
	svc->nsent = 0;
	svc->sent = malloc((exp->n + 1) * sizeof(*svc->sent));
	if (!svc->sent)
		return -ENOMEM;
	for (i = 0; i < exp->n; i++)
		svc->sent[svc->nsent++] = sock_key(&exp->socks[i].si);
	qsort(svc->sent, svc->nsent, sizeof(*svc->sent), cmp_u64);
	err = send_sockets(svc, exp->socks, exp->n);
	if (err)
		return err;
	return phase1_state(svc);
}

/* Phase 1, final pass: stop accepting; what came since, and done. */
static int phase1_final(struct baton_service *svc)
{
	struct baton_export *exp = &svc->exp;
	struct baton_msg *m = svc->msg;
	unsigned int n, listeners, conns;
	int err;

	exp->n = exp->listeners = exp->conns = 0;
	exp->skip = svc->sent;
	exp->nskip = svc->nsent;
	err = svc->o.ops->export_sockets(svc->o.app, exp,
					 svc->flags | BATON_EXPORT_FINAL);
	exp->nskip = 0;
	svc->state = SVC_PHASE1;
	if (err) {
		pr_err(&svc->log, "phase 1: the application could not list its sockets: %s",
		       strerror(-err));
		return err;
	}
	listeners = exp->listeners;
	conns = exp->conns;
	n = exp->n;
	err = n ? send_sockets(svc, exp->socks, n) : 0;
	if (err)
		return err;
	msg_init(m, BATON_MSG_PHASE1_DONE);
	err = msg_put_u32(m, BATON_A_LISTENERS, listeners) ?:
	      msg_put_u32(m, BATON_A_CONNS, conns) ?:
	      msg_send(svc->succ, m);
	if (!err)
		pr_info(&svc->log, "phase 1: %u listeners and %u connections handed over (%u in the last pass)",
			listeners, conns, n);
	return err;
}

/* Phase 2: the blackout. Stop, hand over foreground state, release. */
static int deactivate(struct baton_service *svc)
{
	bool drain = svc->flags & BATON_UPGRADE_F_DRAIN;
	struct baton_msg *m = svc->msg;
	__u64 t_stop = now_ns(), bytes = 0;
	__u32 records = 0;
	int err;

	if (!drain) {
		svc->o.ops->deactivate(svc->o.app);
		svc->state = SVC_DEACTIVATED;
		err = send_blob(svc, BATON_BLOB_CONNS, svc->o.ops->save_conns,
				&records, &bytes);
		if (err) {
			pr_err(&svc->log, "phase 2: cannot hand over connection state: %s",
			       strerror(-err));
			return err;
		}
	}
	svc->state = SVC_DEACTIVATED;
	err = send_blob(svc, BATON_BLOB_DELTA, svc->o.ops->save_delta, NULL,
			&bytes);
	if (err) {
		pr_err(&svc->log, "phase 2: cannot hand over state changes: %s",
		       strerror(-err));
		return err;
	}
	msg_init(m, BATON_MSG_PHASE2_DONE);
	err = msg_put_u32(m, BATON_A_RECORDS, records) ?: msg_send(svc->succ, m);
	if (err)
		return err;
	resources_release(svc);
	if (svc->o.ops->release) {
		err = svc->o.ops->release(svc->o.app);
		if (err) {
			pr_err(&svc->log, "phase 2: the application could not release its resources: %s",
			       strerror(-err));
			return err;
		}
	}
	msg_init(m, BATON_MSG_DEACTIVATED);
	return msg_put_u32(m, BATON_A_RECORDS, records) ?:
	       msg_put_u64(m, BATON_A_BYTES, bytes) ?:
	       msg_put_u64(m, BATON_A_TIME_NS, t_stop) ?:
	       msg_send(svc->ctl, m);
}

/* The new instance is active: this one closes its copies and goes. */
static int finish(struct baton_service *svc)
{
	close_peer(svc, &svc->succ);
	if (svc->flags & BATON_UPGRADE_F_DRAIN) {
		svc->state = SVC_DRAINING;
		close_peer(svc, &svc->ctl);
		if (svc->o.ops->drain)
			svc->o.ops->drain(svc->o.app);
		pr_info(&svc->log, "the new instance serves; draining");
		return 0;
	}
	/* whatever is left to do must not slow the new instance down */
	setpriority(PRIO_PROCESS, 0, 19);
	sched_setscheduler(0, SCHED_IDLE, &(struct sched_param){ 0 });
	pr_info(&svc->log, "the new instance serves; exiting");
	svc->o.ops->terminate(svc->o.app);
	return BATON_EXIT;
}

static int successor_hello(struct baton_service *svc, int fd,
			   const struct ucred *cred, const struct nlattr **tb)
{
	struct versions reader;
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
	versions_of(tb, &reader);
	err = versions_check(&svc->ver, &reader, why, sizeof(why));
	if (err) {
		pr_warn(&svc->log, "refused the new instance: %s", why);
		return msg_send_error(fd, svc->msg, err, "%s", why) ?: err;
	}
	/* tb points into the message buffer the welcome reuses */
	pr_info(&svc->log, "new instance pid %d (%s) connected; phase 1",
		cred->pid, attr_str(tb, BATON_A_APP, "?"));
	err = ctl_set_timeout(fd, PEER_TIMEOUT_MS) ?: send_welcome(svc, fd);
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
	err = ctl_set_timeout(fd, PEER_TIMEOUT_MS) ?: send_welcome(svc, fd);
	if (err)
		return err;
	svc->ctl = fd;
	svc->state = SVC_EXPECTING;
	pr_info(&svc->log, "coordinator pid %d attached", cred->pid);
	return ep_add(svc, fd, TAG_CTL);
}

/* The first message of an accepted peer says who it is. */
static void pending_readable(struct baton_service *svc, unsigned int slot)
{
	const struct nlattr *tb[BATON_A_MAX + 1];
	int fd = svc->pending[slot].fd;
	struct ucred cred = svc->pending[slot].cred;
	struct baton_msg *m = svc->msg;
	int err;

	err = msg_recv(fd, m, 0);
	if (err == -ETIMEDOUT)
		return;
	epoll_ctl(svc->ep, EPOLL_CTL_DEL, fd, NULL);
	svc->pending[slot].fd = -1;
	if (err)
		goto close_fd;
	msg_close_fds(m);	/* a hello carries none */
	if (m->nlh->nlmsg_type != BATON_MSG_HELLO || msg_parse(m, tb) ||
	    !tb[BATON_A_ROLE]) {
		pr_warn(&svc->log, "pid %d sent a malformed hello (%s); dropped",
			cred.pid, msg_type_name(m->nlh->nlmsg_type));
		msg_send_error(fd, m, -EPROTO, "malformed hello");
		goto close_fd;
	}
	switch (mnl_attr_get_u32(tb[BATON_A_ROLE])) {
	case BATON_ROLE_QUERY:
		send_info(svc, fd);
		goto close_fd;
	case BATON_ROLE_COORDINATOR:
		err = coordinator_hello(svc, fd, &cred);
		break;
	case BATON_ROLE_SUCCESSOR:
		err = successor_hello(svc, fd, &cred, tb);
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

static void listen_readable(struct baton_service *svc)
{
	struct ucred cred;
	unsigned int slot;
	int fd, err;

	fd = accept4(svc->listen_fd, NULL, NULL, SOCK_CLOEXEC);
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
		if (svc->pending[slot].fd < 0)
			break;
	if (slot == MAX_PENDING ||
	    ep_add(svc, fd, TAG_PENDING + slot)) {
		close(fd);	/* too many silent peers; they may retry */
		return;
	}
	svc->pending[slot].fd = fd;
	svc->pending[slot].cred = cred;
}

static int ctl_readable(struct baton_service *svc)
{
	const struct nlattr *tb[BATON_A_MAX + 1];
	struct baton_msg *m = svc->msg;
	__u32 flags;
	int err;

	err = msg_recv(svc->ctl, m, 0);
	if (err == -ETIMEDOUT)
		return 0;
	if (!err)
		err = msg_parse(m, tb);
	if (err) {
		close_peer(svc, &svc->ctl);
		/* in the blackout the new instance's word decides, not ours */
		if (svc->state == SVC_PRECOPY || svc->state == SVC_PHASE1)
			rollback(svc, "the coordinator went away");
		else if (svc->state == SVC_EXPECTING)
			svc->state = SVC_SERVING;
		return 0;
	}
	msg_close_fds(m);
	switch (m->nlh->nlmsg_type) {
	case BATON_MSG_UPGRADE:
		flags = attr_u32(tb, BATON_A_FLAGS, 0);
		if (svc->state != SVC_EXPECTING || !tb[BATON_A_PID] ||
		    (flags & ~BATON_UPGRADE_F_ALL)) {
			msg_send_error(svc->ctl, m, -EINVAL,
				       "bad UPGRADE: no pid, unknown flags or not expecting");
			return 0;
		}
		svc->expect_pid = mnl_attr_get_u32(tb[BATON_A_PID]);
		svc->flags = flags;
		if (send_simple(svc->ctl, m, BATON_MSG_UPGRADE_ACK))
			close_peer(svc, &svc->ctl);
		return 0;
	case BATON_MSG_DEACTIVATE:
		if (svc->state != SVC_PHASE1) {
			msg_send_error(svc->ctl, m, -EINVAL,
				       "DEACTIVATE before phase 1 completed");
			return 0;
		}
		err = deactivate(svc);
		if (err)
			rollback(svc, "deactivation failed");
		return 0;
	case BATON_MSG_RESUME:
		if (svc->state == SVC_SERVING || svc->state == SVC_EXPECTING) {
			svc->state = SVC_SERVING;
			svc->expect_pid = 0;
			close_peer(svc, &svc->succ);
			send_simple(svc->ctl, m, BATON_MSG_RESUMED);
		} else {
			rollback(svc, "the coordinator asked for it");
		}
		return 0;
	default:
		msg_send_error(svc->ctl, m, -EINVAL, "unexpected %s",
			       msg_type_name(m->nlh->nlmsg_type));
		return 0;
	}
}

static int succ_readable(struct baton_service *svc)
{
	const struct nlattr *tb[BATON_A_MAX + 1];
	struct baton_msg *m = svc->msg;
	char text[256];
	int err;

	err = msg_recv(svc->succ, m, 0);
	if (err == -ETIMEDOUT)
		return 0;
	if (!err)
		err = msg_parse(m, tb);
	if (err) {
		rollback(svc, "the new instance went away before activating");
		return 0;
	}
	msg_close_fds(m);
	switch (m->nlh->nlmsg_type) {
	case BATON_MSG_SYNC:
		if (svc->state != SVC_PRECOPY)
			break;
		if (phase1_final(svc))
			rollback(svc, "phase 1 failed");
		return 0;
	case BATON_MSG_ACTIVE:
		if (svc->state != SVC_DEACTIVATED)
			break;
		return finish(svc);
	case BATON_MSG_ERROR:
		msg_error_text(tb, text, sizeof(text));
		rollback(svc, text);
		return 0;
	default:
		break;
	}
	rollback(svc, "the new instance sent an unexpected message");
	return 0;
}

int baton_service_dispatch(struct baton_service *svc)
{
	struct epoll_event ev[8];
	int n, i, ret = 0;

	n = epoll_wait(svc->ep, ev, ARRAY_SIZE(ev), 0);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (i = 0; i < n && ret == 0; i++) {
		__u64 tag = ev[i].data.u64;

		if (tag == TAG_LISTEN && svc->listen_fd >= 0)
			listen_readable(svc);
		else if (tag == TAG_WORK)
			work_readable(svc);
		else if (tag == TAG_CTL && svc->ctl >= 0)
			ret = ctl_readable(svc);
		else if (tag == TAG_SUCC && svc->succ >= 0)
			ret = succ_readable(svc);
		else if (tag >= TAG_PENDING && tag < TAG_PENDING + MAX_PENDING &&
			 svc->pending[tag - TAG_PENDING].fd >= 0)
			pending_readable(svc, tag - TAG_PENDING);
	}
	return ret;
}
