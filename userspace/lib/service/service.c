// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The serving instance: its handle from open to close, and the dispatch of
 * what its control socket, its peers and its handover bring.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "service/instance.h"

static int svc_alloc(struct baton_service **out,
		     const struct baton_service_opts *o)
{
	struct baton_service *svc;
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
	svc->ctl = svc->succ = -1;
	svc->peer_timeout_ms = o->timeout_ms ?: BATON_PEER_TIMEOUT_MS;
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

/* *out is set only if it succeeds */
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
		err = svc_take(svc);
		if (err == -EBUSY)
			pr_err(&svc->log,
			       "%s is already served by another instance (it holds %s); upgrade it with 'batonctl upgrade %s -- COMMAND'",
			       svc->service, svc->res.paths.lock, svc->service);
		else if (err)
			pr_err(&svc->log, "cannot take %s's resources in %s: %s",
			       svc->service, svc->res.paths.dir, strerror(-err));
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
	svc_release(svc);
	ctl_close(svc->ep, &svc->succ);
	ctl_close(svc->ep, &svc->ctl);
	free(svc->exp.socks);
	free(svc->sent);
	close(svc->work);
	close(svc->ep);
	msg_free(svc->msg);
	free(svc);
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

		if (tag == TAG_LISTEN && svc->res.listen_fd >= 0)
			listen_readable(svc);
		else if (tag == TAG_WORK)
			work_readable(svc);
		else if (tag == TAG_CTL && svc->ctl >= 0)
			ret = ctl_readable(svc);
		else if (tag == TAG_SUCC && svc->succ >= 0)
			ret = succ_readable(svc);
		else if (tag >= TAG_PENDING && tag < TAG_PENDING + MAX_PENDING &&
			 svc->res.pending[tag - TAG_PENDING].fd >= 0)
			pending_readable(svc, tag - TAG_PENDING);
	}
	return ret;
}
