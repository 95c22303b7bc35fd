// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * batonctl checkpoint: an upgrade in repair mode whose new instance is a
 * file. The coordinator is the successor too: it announces the upgrade
 * (repair mode, its own listeners: their addresses come with the copies
 * every coordinator gets), names itself as the new instance and connects
 * as one, takes phase 1 (the state) and phase 2 (the state's last
 * changes, the connection records, the connections' checkpoints, frozen
 * by baton.ko for freeze_ms) as a new instance would, writes them into a
 * file beside the target, takes the service's lock, renames the file into
 * place, and says ACTIVE: the old instance terminates, closing its
 * sockets, which it let go of in repair mode (nothing reaches a peer).
 *
 * Until the rename, a failure rolls back: the old instance restores its
 * connections in place, thaws them and serves on, and no file is left.
 * The lock, taken before the rename, settles a race with the old one
 * resuming by itself at its deadline: whichever takes it first wins.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include <linux/baton.h>
#include "coordinator/coordinator.h"
#include "tcp/tcp.h"

struct save {
	struct baton_upgrade *up;
	struct baton_checkpoint ck;
	const char *path;
	char tmp[PATH_MAX];
	int fd;			/* the file being written, at tmp */
	int lock;		/* the service's lock, once taken */
	unsigned int freeze_ms;
	unsigned int flags;	/* BATON_CHECKPOINT_F_* */
	__u32 conn_records;	/* CONNS blob's */
	unsigned int syncs;	/* phase 1's rounds taken */
	bool phase1_done, phase2_done;
};

/* The listeners, from the copies the old sent us as coordinator */
static int listeners_note(struct save *s)
{
	struct baton_upgrade *up = s->up;
	unsigned int i, n = 0;

	s->ck.lsn = calloc(up->nheld ?: 1, sizeof(*s->ck.lsn));
	if (!s->ck.lsn)
		return fail(up, -ENOMEM, "out of memory");
	for (i = 0; i < up->nheld; i++) {
		struct file_listener *l = &s->ck.lsn[n];
		int fd = up->held[i].fd, fl, v6only = 0;
		socklen_t len = sizeof(v6only);

		if (up->held[i].si.kind != BATON_SOCK_LISTENER)
			continue;
		l->id = up->held[i].si.id;
		l->local_len = sizeof(l->local);
		fl = fcntl(fd, F_GETFL);
		if (fl < 0 ||
		    getsockname(fd, (struct sockaddr *)&l->local, &l->local_len) ||
		    (l->local.ss_family == AF_INET6 &&
		     getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &len)))
			return fail(up, -errno, "cannot read listener %llu's address: %s",
				    (unsigned long long)l->id, strerror(errno));
		l->v6only = v6only;
		l->file_flags = fl & O_NONBLOCK;
		n++;
	}
	s->ck.nlsn = s->ck.info.listeners = n;
	return 0;
}

/* Named the new instance, and connected to the old one as it */
static int successor_connect(struct save *s)
{
	struct baton_upgrade *up = s->up;
	struct baton_msg *m = up->msg;
	const struct hello h = {
		.role = BATON_ROLE_SUCCESSOR, .pid = getpid(),
		.app = "batonctl checkpoint", .ver = up->old_ver,
	};
	struct reply r;
	int err;

	msg_init(m, BATON_MSG_EXPECT);
	err = msg_put_u32(m, BATON_A_PID, getpid()) ?: msg_send(up->old, m);
	if (err)
		return fail(up, err, "cannot reach the old instance: %s",
			    strerror(-err));
	up->new = ctl_connect(up->paths.sock, up->o.timeout_ms);
	if (up->new < 0) {
		err = up->new;
		up->new = -1;
		return fail(up, err, "cannot connect to %s as the new instance: %s",
			    up->paths.sock, strerror(-err));
	}
	err = hello_put(m, &h) ?: msg_send(up->new, m);
	if (!err)
		err = msg_reply(up->new, m, up->o.timeout_ms, BATON_MSG_WELCOME,
				&r);
	if (err)
		return fail(up, err, "the old instance did not take the checkpoint's connection: %s",
			    r.how == REPLY_ERROR || r.how == REPLY_OTHER ?
			    r.text : strerror(-err));
	reach(up, BATON_PHASE_SPAWNED);
	return 0;
}

/* A blob the old handed over: kept, its memfd and all, in order */
static int blob_keep(struct save *s, const struct nlattr **tb)
{
	struct baton_msg *m = s->up->msg;
	__u32 kind = attr_u32(tb, BATON_A_BLOB_KIND, 0);
	__u32 records = attr_u32(tb, BATON_A_RECORDS, 0);
	int err;

	if (m->nfds != 1 || kind < BATON_BLOB_STATE || kind > BATON_BLOB_TCP ||
	    (kind >= BATON_BLOB_CONNS && !s->phase1_done)) {
		msg_close_fds(m);
		return fail(s->up, -EBADMSG, "a malformed BLOB from the old instance");
	}
	err = file_blob_add(&s->ck, kind, records, m->fds[0]);
	if (err) {
		msg_close_fds(m);
		return fail(s->up, err, "out of memory");
	}
	m->nfds = 0;		/* ours now */
	if (kind == BATON_BLOB_TCP)
		s->ck.info.conns = records;
	else if (kind == BATON_BLOB_CONNS)
		s->conn_records = records;
	return 0;
}

/* What the old instance says to us as its successor */
static int from_old_as_new(struct save *s, const struct nlattr **tb)
{
	struct baton_upgrade *up = s->up;
	struct baton_msg *m = up->msg;
	char text[256];
	int err;

	switch (m->nlh->nlmsg_type) {
	case BATON_MSG_SOCKETS:
		msg_close_fds(m);	/* the control socket: not ours to keep */
		return 0;
	case BATON_MSG_BLOB:
		return blob_keep(s, tb);
	case BATON_MSG_SYNC:
		s->syncs++;
		return msg_send_simple(up->new, m, BATON_MSG_SYNC, 0);
	case BATON_MSG_PHASE1_DONE:
		if (s->phase1_done)
			break;
		s->phase1_done = true;
		return 0;
	case BATON_MSG_PHASE2_DONE:
		if (!s->phase1_done || s->phase2_done)
			break;
		s->ck.info.freeze_id = attr_u32(tb, BATON_A_FREEZE_ID, 0);
		s->phase2_done = true;
		return 0;
	case BATON_MSG_ERROR:
		err = msg_error_text(tb, text, sizeof(text));
		return fail(up, err, "the old instance failed: %s", text);
	default:
		break;
	}
	msg_close_fds(m);
	return fail(up, -EPROTO, "unexpected %s from the old instance",
		    msg_type_name(m->nlh->nlmsg_type));
}

/* Until *done: each message within a step's time of the one before */
static int take_until(struct save *s, const bool *done, const char *what)
{
	const struct nlattr *tb[BATON_A_MAX + 1];
	struct baton_upgrade *up = s->up;
	enum from from;
	int err = 0;

	while (!err && !*done) {
		err = wait_msg(up, deadline_in(up->o.timeout_ms), &from, tb);
		if (err == -ETIMEDOUT)
			return fail(up, err, "the old instance (pid %d) did not hand over %s within %d ms (%u blobs and %u rounds of state taken so far)",
				    up->r.old_pid, what, up->o.timeout_ms,
				    s->ck.nblobs, s->syncs);
		if (err == -ECONNRESET)
			return fail(up, -ENOTCONN, "the old instance (pid %d) went away while handing over %s",
				    up->r.old_pid, what);
		if (err == -ECANCELED)
			return fail(up, err, "the old instance rolled back on its own: %s",
				    up->resumed_why);
		if (err)
			return fail(up, err, "a malformed message from the old instance");
		if (from == FROM_NEW) {
			err = from_old_as_new(s, tb);
			continue;
		}
		msg_close_fds(up->msg);
		switch (up->msg->nlh->nlmsg_type) {
		case BATON_MSG_SUCCESSOR:
			break;
		case BATON_MSG_DEACTIVATED:
			deactivated(up, tb);
			break;
		case BATON_MSG_ERROR:
			err = msg_error_text(tb, up->resumed_why,
					     sizeof(up->resumed_why));
			return fail(up, err, "the old instance refused: %s",
				    up->resumed_why);
		default:
			return fail(up, -EPROTO, "unexpected %s from the old instance",
				    msg_type_name(up->msg->nlh->nlmsg_type));
		}
	}
	return err;
}

/* The blackout: the old stops, its connections frozen for freeze_ms */
static int deactivate(struct save *s)
{
	struct baton_upgrade *up = s->up;
	struct baton_msg *m = up->msg;
	int err;

	up->r.deactivate_ns = now_ns();
	up->deactivate_sent = true;
	s->ck.info.freeze_ms = s->freeze_ms;
	/* the freeze begins after this: its real end is a little later */
	s->ck.info.deadline_ns = up->r.deactivate_ns + s->freeze_ms * 1000000ULL;
	msg_init(m, BATON_MSG_DEACTIVATE);
	err = msg_put_u64(m, BATON_A_DEADLINE_NS,
			  deadline_in(up->o.blackout_ms)) ?:
	      msg_put_u32(m, BATON_A_FLAGS, 0) ?:
	      msg_put_u32(m, BATON_A_FREEZE_MS, s->freeze_ms) ?:
	      msg_send(up->old, m);
	if (err)
		return fail(up, err, "cannot reach the old instance: %s",
			    strerror(-err));
	err = take_until(s, &s->phase2_done, "its connections");
	if (err)
		return err;
	if (s->ck.info.conns && !s->ck.info.freeze_id)
		return fail(up, -ENOENT, "the old instance checkpointed its %u connections without baton.ko: nothing holds them frozen (can it reach the module? it needs CAP_NET_ADMIN)",
			    s->ck.info.conns);
	s->ck.info.ckpt_format = s->ck.info.conns ? BATON_CKPT_MODULE : 0;
	reach(up, BATON_PHASE_DEACTIVATED);
	return 0;
}

/* The lock, so that the old cannot resume; the file in place */
static int commit(struct save *s)
{
	struct baton_upgrade *up = s->up;
	char dir[PATH_MAX];
	int err, dfd;

	s->lock = open(up->paths.lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->lock < 0)
		return fail(up, -errno, "cannot open %s: %s", up->paths.lock,
			    strerror(errno));
	if (flock(s->lock, LOCK_EX | LOCK_NB) < 0)
		return fail(up, errno == EWOULDBLOCK ? -EBUSY : -errno,
			    "the old instance took the service's lock back (its deadline passed, %d ms): it serves on",
			    up->o.blackout_ms);
	if (rename(s->tmp, s->path) < 0) {
		err = -errno;
		flock(s->lock, LOCK_UN);
		return fail(up, err, "cannot rename %s to %s: %s", s->tmp,
			    s->path, strerror(-err));
	}
	s->tmp[0] = '\0';
	snprintf(dir, sizeof(dir), "%s", s->path);
	dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	/* EINVAL: a filesystem that cannot sync a directory says so */
	if (dfd < 0 || (fsync(dfd) < 0 && errno != EINVAL)) {
		/*
		 * its name not known to be on disk: a restart could find no
		 * file. None, then, and the old instance serves on
		 */
		err = -errno;
		unlink(s->path);
		if (dfd >= 0)
			close(dfd);
		flock(s->lock, LOCK_UN);
		return fail(up, err, "cannot make %s's name durable (fsync of its directory): %s",
			    s->path, strerror(-err));
	}
	close(dfd);
	return 0;
}

/* baton.ko, before anything: without its freeze nothing holds the clients */
static int module_here(struct save *s)
{
	struct baton_upgrade *up = s->up;
	struct baton_tcp *tcp;
	int err;

	err = baton_tcp_open(&tcp, up->o.log, up->o.log_ctx);
	if (err)
		return fail(up, err, "a checkpoint needs baton.ko, whose freeze holds the connections while no process has them: %s",
			    err == -ENOENT ? "it is not loaded (modprobe baton)" :
					     strerror(-err));
	file_here(&s->ck.info, tcp);
	baton_tcp_close(tcp);
	return 0;
}

static int save_run(struct save *s)
{
	struct baton_upgrade *up = s->up;
	struct baton_checkpoint_info *in = &s->ck.info;
	int err;

	snprintf(s->tmp, sizeof(s->tmp), "%s.%d.tmp", s->path, getpid());
	s->fd = open(s->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (s->fd < 0) {
		err = -errno;
		s->tmp[0] = '\0';
		return fail(up, err, "cannot create %s.%d.tmp: %s", s->path,
			    getpid(), strerror(-err));
	}
	snprintf(in->service, sizeof(in->service), "%s", up->o.service);
	snprintf(in->app, sizeof(in->app), "%s", up->r.old_app);
	in->pid = up->r.old_pid;
	in->flags = s->flags;
	s->ck.ver = up->old_ver;
	err = listeners_note(s) ?: announce(up);
	if (err == -ENOTCONN)
		return fail(up, err, "the old instance (pid %d) went away", up->r.old_pid);
	err = err ?: successor_connect(s) ?:
	      take_until(s, &s->phase1_done, "its state");
	if (err)
		return err;
	reach(up, BATON_PHASE_READY);
	err = deactivate(s);
	if (err)
		return err;
	in->realtime_ns = (__u64)time(NULL) * 1000000000ULL;
	in->blobs = s->ck.nblobs;
	up->r.checkpoints = up->r.conns = in->conns;
	up->r.ckpt_format = in->ckpt_format;
	up->r.listeners = in->listeners;
	err = file_write(s->fd, &s->ck);
	if (err)
		return fail(up, err, "cannot write %s: %s", s->tmp, strerror(-err));
	close(s->fd);
	s->fd = -1;
	err = commit(s);
	if (err)
		return err;
	/* the file is the new instance: the old one terminates */
	up->r.active_ns = up->r.activated_ns = now_ns();
	msg_init(up->msg, BATON_MSG_ACTIVE);
	err = msg_put_u64(up->msg, BATON_A_TIME_NS, up->r.active_ns) ?:
	      msg_send(up->new, up->msg);
	if (err)
		pr_warn(&up->log, "the checkpoint is whole, but the old instance did not take ACTIVE (%s): stop it (pid %d) by hand",
			strerror(-err), up->r.old_pid);
	reach(up, BATON_PHASE_ACTIVE);
	return step_done(up);
}

int baton_checkpoint_save(const struct baton_checkpoint_opts *o,
			  struct baton_upgrade_report *report)
{
	struct save s = { .fd = -1, .lock = -1 };
	int err;

	if (!o || !o->service || !o->path || !report ||
	    o->freeze_ms > BATON_DEADLINE_MAX_MS ||
	    (o->flags & ~BATON_CHECKPOINT_F_ALL))
		return -EINVAL;
	memset(report, 0, sizeof(*report));
	s.path = o->path;
	s.freeze_ms = o->freeze_ms ?: BATON_DEADLINE_MAX_MS;
	s.flags = o->flags;
	err = checkpoint_upgrade_new(&s.up, o, BATON_UPGRADE_F_REPAIR |
				     BATON_UPGRADE_F_OWN_LISTENERS);
	if (err)
		return err;
	/* refused (BATON_PHASE_NONE) if it could not attach */
	err = module_here(&s) ?: attach(s.up) ?: save_run(&s);
	if (err && s.up->r.phase >= BATON_PHASE_ATTACHED)
		roll_back(s.up, err);
	if (s.fd >= 0)
		close(s.fd);
	if (s.tmp[0])
		unlink(s.tmp);
	if (s.lock >= 0)
		close(s.lock);
	file_free(&s.ck);
	*report = s.up->r;
	baton_upgrade_close(s.up);
	return err;
}
