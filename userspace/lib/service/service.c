// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The serving instance: its handle from open to close, and the dispatch of
 * what its control socket, its peers and its handover bring.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "service/instance.h"

/* Options that cannot work, said in words: -EINVAL, or 0. */
static int opts_check(const struct baton_service_opts *o, char *why,
		      size_t len)
{
	if (!o || !o->ops)
		snprintf(why, len, "no options or no application callbacks");
	else if (!o->state_version)
		snprintf(why, len, "state_version 0: the state version this build writes must be 1 or more");
	else if (o->state_compat > o->state_version)
		snprintf(why, len, "state_compat %u is newer than the state version %u this build writes",
			 o->state_compat, o->state_version);
	else if (o->state_min > o->state_version)
		snprintf(why, len, "state_min %u is newer than the state version %u this build writes: it could not read its own state",
			 o->state_min, o->state_version);
	else if (o->timeout_ms < 0 || o->timeout_ms > BATON_TIMEOUT_MS_MAX)
		snprintf(why, len, "timeout_ms %d: from 0 (the default) to %d",
			 o->timeout_ms, BATON_TIMEOUT_MS_MAX);
	else
		return 0;
	return -EINVAL;
}

static int svc_alloc(struct baton_service **out,
		     const struct baton_service_opts *o)
{
	struct baton_service *svc;
	unsigned int i;
	int err;

	svc = calloc(1, sizeof(*svc));
	if (!svc)
		return -ENOMEM;
	svc->o = *o;
	svc->log.fn = o->log;
	svc->log.ctx = o->log_ctx;
	err = paths_init(&svc->res.paths, o->run_dir, o->service);
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
	resources_init(&svc->res);
	for (i = 0; i < MAX_PENDING; i++)
		svc->pending[i].fd = -1;
	svc->ctl = svc->succ = -1;
	svc->peer_timeout_ms = o->timeout_ms ?: BATON_PEER_TIMEOUT_MS;
	svc->ctl_timeout_ms = BATON_UPGRADE_TIMEOUT_MS;
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
	svc->timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (svc->timer < 0) {
		err = -errno;
		goto close_work;
	}
	err = ep_add(svc, svc->work, TAG_WORK) ?:
	      ep_add(svc, svc->timer, TAG_TIMER);
	if (err)
		goto close_timer;
	*out = svc;
	return 0;

close_timer:
	close(svc->timer);
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

/*
 * Started by the coordinator: BATON_CTL_FD names our end of its socket,
 * and BATON_CTL_PID says for which process, so that a child of ours that
 * inherits the environment does not take it for its own (the environment
 * is left as it is). -ENOENT if we were not, or if an earlier open took
 * it: that one closed it, and its number may be another file's by now.
 */
static int successor_ctl_fd(void)
{
	const char *s = getenv("BATON_CTL_FD"), *p = getenv("BATON_CTL_PID");
	static bool taken;
	char *end;
	long fd;

	if (!s || !p || strtol(p, &end, 10) != getpid() || *end)
		return -ENOENT;
	if (__atomic_exchange_n(&taken, true, __ATOMIC_SEQ_CST))
		return -ENOENT;
	fd = strtol(s, &end, 10);
	if (*end || fd < 3 || fd > INT_MAX || fcntl(fd, F_SETFD, FD_CLOEXEC))
		return -EBADF;
	return fd;
}

/* *out is set only if it succeeds */
int baton_service_open(struct baton_service **out,
		       const struct baton_service_opts *o)
{
	struct baton_service *svc = NULL;
	int err, ctl = successor_ctl_fd();
	char why[256];

	err = opts_check(o, why, sizeof(why));
	if (!err)
		err = svc_alloc(&svc, o);
	if (err) {
		if (err == -EINVAL && o && o->log) {
			struct baton_log_sink log = { o->log, o->log_ctx };

			pr_err(&log, "%s", why);
		}
		/* the coordinator waits for us: say why we cannot come */
		if (ctl >= 0) {
			struct baton_msg *m = msg_alloc();

			if (m && err != -EINVAL)
				snprintf(why, sizeof(why), "%s", strerror(-err));
			if (m)
				msg_send_error(ctl, m, err, "%s", why);
			msg_free(m);
			close(ctl);
		}
		return err;
	}
	if (ctl >= 0) {
		err = takeover_run(svc, ctl);
		if (err)
			goto close_svc;
		svc->adopted = true;
	} else {
		err = resources_take(&svc->res, svc->ep, TAG_LISTEN);
		if (err == -EBUSY)
			pr_err(&svc->log,
			       "%s is already served by another instance (it holds %s); upgrade it with 'batonctl upgrade %s -- COMMAND'",
			       svc->service, svc->res.paths.lock, svc->service);
		else if (err)
			pr_err(&svc->log, "cannot take %s's resources in %s: %s",
			       svc->service, svc->res.paths.dir, strerror(-err));
		if (err)
			goto close_svc;
		/*
		 * READY=1 once the application has opened its listeners: on
		 * the first dispatch, which our fd, readable at once, brings
		 */
		svc->notify_ready = true;
		if (eventfd_write(svc->work, 1))
			pr_warn(&svc->log, "cannot wake our own event loop: %s",
				strerror(errno));
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
	/*
	 * Committed too: the new instance holds the lock, and it serves the
	 * connections, or (repair mode) they are its checkpoints, until we
	 * learn whether it activated or let go.
	 */
	return (svc->state == SVC_DEACTIVATED || svc->state == SVC_COMMITTED) &&
	       !(svc->flags & BATON_UPGRADE_F_DRAIN);
}

int baton_service_fd(const struct baton_service *svc)
{
	return svc->ep;
}

void baton_service_close(struct baton_service *svc)
{
	unsigned int i;

	if (!svc)
		return;
	for (i = 0; i < MAX_PENDING; i++)
		pending_close(svc, i);
	repair_out_close(svc);
	resources_close(&svc->res, svc->ep);
	ctl_close(svc->ep, &svc->succ);
	ctl_close(svc->ep, &svc->ctl);
	free(svc->exp.socks);
	sock_set_free(&svc->sent);
	close(svc->timer);
	close(svc->work);
	close(svc->ep);
	msg_free(svc->msg);
	free(svc);
}

static int timer_expired(struct baton_service *svc)
{
	__u64 n, now = now_ns();

	if (read(svc->timer, &n, sizeof(n)) < 0 && errno != EAGAIN)
		return -errno;
	pending_expired(svc, now);
	if (svc->deadline_ns && now >= svc->deadline_ns)
		return state_expired(svc);
	return 0;
}

int baton_service_dispatch(struct baton_service *svc)
{
	struct epoll_event ev[8];
	int n, i, ret = 0;

	if (svc->notify_ready) {
		svc->notify_ready = false;
		notify_ready(&svc->log);
	}
	n = epoll_wait(svc->ep, ev, ARRAY_SIZE(ev), 0);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (i = 0; i < n && ret == 0; i++) {
		__u64 tag = ev[i].data.u64;

		if (tag == TAG_LISTEN && svc->res.watched)
			listen_readable(svc);
		else if (tag == TAG_WORK)
			work_readable(svc);
		else if (tag == TAG_TIMER)
			ret = timer_expired(svc);
		else if (tag == TAG_CTL && svc->ctl >= 0)
			ret = ctl_readable(svc);
		else if (tag == TAG_SUCC && svc->succ >= 0 &&
			 (ev[i].events & EPOLLOUT) && svc->succ_wait_room)
			succ_room(svc);	/* its EPOLLIN, if any, comes again */
		else if (tag == TAG_SUCC && svc->succ >= 0)
			ret = succ_readable(svc);
		else if (tag >= TAG_PENDING && tag < TAG_PENDING + MAX_PENDING &&
			 svc->pending[tag - TAG_PENDING].fd >= 0)
			pending_readable(svc, tag - TAG_PENDING);
	}
	if (ret != BATON_EXIT)
		svc_arm(svc);
	return ret;
}
