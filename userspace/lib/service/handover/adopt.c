// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * What the new instance takes: sockets (from the old instance in phase 1,
 * or the coordinator's copies if the old went away), and the records of
 * state it loads through the application.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "service/handover/takeover.h"

/*
 * A listener of the old instance's network namespace, where ours is
 * another (repair mode's move, BATON_UPGRADE_F_NETNS, said by START):
 * useless here, so it is made again in ours, at its address, which need
 * not be here yet (freebind), before the application takes it. Its
 * address, IPV6_V6ONLY and O_NONBLOCK are carried; its other options
 * (SO_REUSEPORT, a program attached, TCP_DEFER_ACCEPT) are not. SYNs for
 * it meanwhile wait in the old namespace, frozen, and are thawed into ours.
 */
static int listener_here(struct takeover *t, struct held_socket *s)
{
	int fd, fl, v6only = 0, err;
	socklen_t len = sizeof(v6only);

	fl = fcntl(s->fd, F_GETFL);
	if (s->si.local.ss_family == AF_INET6)
		getsockopt(s->fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &len);
	err = fl < 0 ? -errno :
	      sockets_listen_at(&s->si.local, s->si.local_len,
				fl & O_NONBLOCK, true, v6only, &fd);
	close(s->fd);
	s->fd = -1;
	if (err) {
		snprintf(t->why, sizeof(t->why),
			 "listener %llu is of another network namespace, and cannot listen at its address in ours: %s",
			 (unsigned long long)s->si.id, strerror(-err));
		return err;
	}
	s->fd = fd;
	return 0;
}

/* One socket: the control socket is ours; the others the application's. */
static int adopt_one(struct takeover *t, struct held_socket *s)
{
	struct baton_service *svc = t->svc;
	int err;

	if (s->si.kind == BATON_SOCK_CONTROL) {
		if (svc->res.listen_fd >= 0)
			close(svc->res.listen_fd);
		svc->res.listen_fd = s->fd;
		return 0;
	}
	sockets_addresses(s);
	if (s->si.kind == BATON_SOCK_LISTENER && t->netns) {
		err = listener_here(t, s);
		if (err)
			return err;
	}
	err = svc->o.ops->adopt_socket(svc->o.app, s->fd, &s->si);
	if (err) {
		snprintf(t->why, sizeof(t->why),
			 "the application refused socket %llu: %s",
			 (unsigned long long)s->si.id, strerror(-err));
		return err;
	}
	if (s->si.kind == BATON_SOCK_LISTENER)
		t->listeners++;
	else
		t->conns++;
	return 0;
}

/* A connection restored from its checkpoint (repair_in.c) */
int adopt_conn(struct takeover *t, struct held_socket *s)
{
	int err = sock_set_add(&t->ids, sock_key(&s->si));

	return err < 0 ? err : adopt_one(t, s);
}

/* from_ctl: the coordinator's copies, some of which we may have already */
int adopt_batch(struct takeover *t, struct baton_msg *m, bool from_ctl)
{
	struct held_socket *socks = t->batch;
	unsigned int n, i;
	int err;

	err = sockets_parse(m, socks, &n);
	if (err) {
		snprintf(t->why, sizeof(t->why), "a malformed SOCKETS message from the %s",
			 from_ctl ? "coordinator" : "old instance");
		return err;
	}
	for (i = 0; i < n; i++) {
		err = sock_set_add(&t->ids, sock_key(&socks[i].si));
		if (err < 0) {
			snprintf(t->why, sizeof(t->why),
				 "cannot keep count of socket %llu: %s",
				 (unsigned long long)socks[i].si.id,
				 strerror(-err));
			close(socks[i].fd);
			goto close_rest;
		}
		if (!err && from_ctl) {
			close(socks[i].fd);	/* we have it already */
			continue;
		}
		err = adopt_one(t, &socks[i]);
		if (err)
			goto close_rest;
	}
	return 0;

close_rest:
	for (i++; i < n; i++)
		close(socks[i].fd);
	return err;
}

struct load_ctx {
	struct baton_service *svc;
	bool conn;
};

static int load_one(void *data, const struct baton_rec *rec)
{
	struct load_ctx *ctx = data;
	const struct baton_app_ops *ops = ctx->svc->o.ops;

	if (!ctx->conn)
		return ops->load_state(ctx->svc->o.app, rec);
	if (rec->nlh->nlmsg_type != BATON_REC_CONN_CLOSED)
		return ops->load_conn(ctx->svc->o.app, rec);
	/* only to a new instance that said it takes them */
	return ops->drop_conn ? ops->drop_conn(ctx->svc->o.app, rec->id) :
				-EPROTO;
}

static int load_fd(struct takeover *t, int memfd, __u32 kind)
{
	struct load_ctx ctx = { t->svc, kind == BATON_BLOB_CONNS };
	__u32 n = 0;
	int err;

	err = blob_read(memfd, kind, load_one, &ctx, &n);
	if (err) {
		snprintf(t->why, sizeof(t->why),
			 "cannot load the old instance's %s: %s",
			 kind == BATON_BLOB_CONNS ? "connection records" :
						    "service state",
			 strerror(-err));
		return err;
	}
	/* the blackout's: phase 1's, if any, are in the old's report */
	if (ctx.conn && t->phase1_done)
		t->records += n;
	return 0;
}

/* Repair mode: the application's records, once the connections are back */
int load_conns(struct takeover *t, int memfd)
{
	return load_fd(t, memfd, BATON_BLOB_CONNS);
}

int load_blob(struct takeover *t, struct baton_msg *m,
	      const struct nlattr **tb)
{
	__u32 kind = attr_u32(tb, BATON_A_BLOB_KIND, 0);
	int err;

	if (m->nfds != 1 || kind < BATON_BLOB_STATE || kind > BATON_BLOB_CONNS) {
		msg_close_fds(m);
		snprintf(t->why, sizeof(t->why), "malformed BLOB message");
		return -EBADMSG;
	}
	err = load_fd(t, m->fds[0], kind);
	msg_close_fds(m);
	return err;
}

static unsigned int open_files(void)
{
	unsigned int n = 0;
	struct dirent *d;
	DIR *dir = opendir("/proc/self/fd");

	if (!dir)
		return 0;
	while ((d = readdir(dir)))
		n += d->d_name[0] != '.';
	closedir(dir);
	return n ? n - 1 : 0;	/* not the one reading it */
}

/*
 * A message's descriptors did not all arrive (MSG_CTRUNC): the usual cause
 * is the open-file limit, which is what the user must hear of.
 */
void why_truncated(struct takeover *t)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		snprintf(t->why, sizeof(t->why),
			 "the new instance cannot take the old instance's sockets: its open-file limit is %llu, and %u are open (raise it: ulimit -n, or LimitNOFILE= in its unit)",
			 (unsigned long long)rl.rlim_cur, open_files());
	else
		snprintf(t->why, sizeof(t->why),
			 "the new instance could not take every socket of a batch (MSG_CTRUNC)");
}
