// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * batonctl restore: the coordinator starts the new instance and, from the
 * checkpoint file, is the old instance it takes over from.
 *
 * Nothing is made before the whole file is checked (file_load()) and
 * found to belong here (file_check_here(): this boot, this network
 * namespace, its freeze not expired; or, made for a restart, a later
 * boot with the same baton.ko family, its connections held by
 * ckpt_hold.c's freeze) and the service found stopped (its
 * lock free). Then the listeners are opened at their addresses and the
 * control socket at its path, argv is started, and the handover runs as
 * from a serving instance: WELCOME with the file's versions, phase 1 (the
 * listeners and the control socket, then the state), PHASE1_DONE in
 * repair mode; on READY, phase 2 (the connection records and the
 * connections' checkpoints), the lock let go, and PHASE2_DONE with the
 * freeze's id: the new instance restores the connections, thaws them
 * (what their peers sent meanwhile reaches the restored sockets) and says
 * ACTIVE. If it fails, it let go of what it restored, in repair mode,
 * silently; the connections stay frozen until the freeze's deadline, and
 * the file is left as it is, for another try.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include <netinet/in.h>

#include "coordinator/coordinator.h"
#include "tcp/tcp.h"

struct restore {
	struct baton_upgrade *up;
	struct baton_checkpoint ck;
	int lock;		/* the service's lock, until PHASE2_DONE */
	int ctl_listen;		/* the control socket, until handed over */
};

/* The file, whole and checked, and this machine the one it belongs to */
static int check(struct restore *rs, const char *path)
{
	struct baton_upgrade *up = rs->up;
	const struct baton_checkpoint_info *in = &rs->ck.info;
	struct baton_tcp *tcp = NULL;
	char why[512];
	int err;

	err = file_load(&rs->ck, path, why, sizeof(why));
	if (err)
		return fail(up, err, "%s", why);
	if (strcmp(in->service, up->o.service))
		return fail(up, -EINVAL, "%s: a checkpoint of service %s, not %s",
			    path, in->service, up->o.service);
	if (in->conns) {
		err = baton_tcp_open(&tcp, up->o.log, up->o.log_ctx);
		if (err)
			return fail(up, err, "%s: its connections need baton.ko to be restored and thawed: %s (modprobe baton)",
				    path, strerror(-err));
	}
	err = file_check_here(&rs->ck, tcp, why, sizeof(why));
	baton_tcp_close(tcp);
	if (err)
		return fail(up, err, "%s: %s", path, why);
	/*
	 * After a restart, the freeze to thaw is the hold's (if any: a file
	 * without connections may have none); the file's is another boot's
	 */
	if (rs->ck.other_boot)
		rs->ck.info.freeze_id = hold_note_read(&up->paths);
	if (rs->ck.other_boot && in->conns) {
		if (!rs->ck.info.freeze_id)
			return fail(up, -ENOLCK, "%s: made before this boot, and its %u connections are not held: run 'batonctl hold %s -i %s' before the network comes up, then restore",
				    path, in->conns, up->o.service, path);
	}
	snprintf(up->r.old_app, sizeof(up->r.old_app), "%s", in->app);
	up->r.old_pid = in->pid;
	up->r.checkpoints = in->conns;
	up->r.ckpt_format = in->ckpt_format;
	return 0;
}

/* Nobody serves: the lock is free, and ours until PHASE2_DONE */
static int stopped(struct restore *rs)
{
	struct baton_upgrade *up = rs->up;
	struct baton_instance_info info;

	rs->lock = open(up->paths.lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (rs->lock < 0)
		return fail(up, -errno, "cannot open %s: %s", up->paths.lock,
			    strerror(errno));
	if (!flock(rs->lock, LOCK_EX | LOCK_NB))
		return 0;
	if (errno != EWOULDBLOCK)
		return fail(up, -errno, "cannot lock %s: %s", up->paths.lock,
			    strerror(errno));
	if (!baton_query(up->o.run_dir, up->o.service, 0, &info))
		return fail(up, -EBUSY, "%s is served by pid %d (%s): a checkpoint is restored into a service that is stopped ('batonctl checkpoint %s -o FILE' stops it)",
			    up->o.service, info.pid, info.app, up->o.service);
	return fail(up, -EBUSY, "%s's lock %s is held: an instance is starting or stopping; try again",
		    up->o.service, up->paths.lock);
}

/*
 * A checkpoint's listener, listening again at its address; freebind for
 * one whose address need not be up yet (ckpt_hold.c)
 */
int file_listener_open(const struct file_listener *l, bool freebind, int *out)
{
	return sockets_listen_at(&l->local, l->local_len,
				 l->file_flags & O_NONBLOCK, freebind,
				 l->v6only, out);
}

/*
 * A listener's address taken meanwhile: by whom, and what to do. Nothing
 * has changed yet: the file is as it was, its connections still frozen.
 */
static int addr_in_use(struct baton_upgrade *up, const struct file_listener *l,
		       const char *addr)
{
	char who[128];

	port_holder(&l->local, who, sizeof(who));
	if (!who[0])
		return fail(up, -EADDRINUSE, "cannot listen on %s again: the address is in use, though no listener is seen there (a socket bound to it?); free it, then run this restore again",
			    addr);
	return fail(up, -EADDRINUSE, "cannot listen on %s again: %s listens there; stop it, then run this restore again",
		    addr, who);
}

/* The listeners and the control socket, into up->held (drop_held()) */
static int sockets_open(struct restore *rs)
{
	struct baton_upgrade *up = rs->up;
	unsigned int i;
	int err, fd = -1;

	up->held = calloc(rs->ck.nlsn + 1, sizeof(*up->held));
	if (!up->held)
		return fail(up, -ENOMEM, "out of memory");
	for (i = 0; i < rs->ck.nlsn; i++) {
		const struct file_listener *l = &rs->ck.lsn[i];
		struct held_socket *h = &up->held[up->nheld];
		char addr[64];

		err = file_listener_open(l, false, &fd);
		if (err) {
			baton_addr_text(&l->local, addr, sizeof(addr));
			if (err == -EADDRINUSE)
				return addr_in_use(up, l, addr);
			return fail(up, err, "cannot listen on %s again: %s",
				    addr, strerror(-err));
		}
		h->fd = fd;
		h->si.id = l->id;
		h->si.kind = BATON_SOCK_LISTENER;
		up->nheld++;
	}
	fd = ctl_listen(up->paths.sock);
	if (fd < 0)
		return fail(up, fd, "cannot make the control socket %s: %s",
			    up->paths.sock, strerror(-fd));
	up->held[up->nheld++] = (struct held_socket){
		.fd = fd, .si = { .id = CONTROL_ID, .kind = BATON_SOCK_CONTROL },
	};
	rs->ctl_listen = fd;
	up->r.listeners = rs->ck.nlsn;
	return 0;
}

/* The new instance's connection to the control socket, and its hello */
static int successor_accept(struct restore *rs)
{
	struct baton_upgrade *up = rs->up;
	const struct nlattr *tb[BATON_A_MAX + 1];
	struct pollfd p[2] = {
		{ .fd = rs->ctl_listen, .events = POLLIN },
		{ .fd = up->new, .events = POLLIN },
	};
	struct welcome w = {
		.pid = getpid(), .service = up->o.service,
		.app = rs->ck.info.app, .time_ns = now_ns(), .ver = rs->ck.ver,
	};
	__u64 deadline = deadline_in(up->o.timeout_ms);
	struct ucred cred = {};
	struct hello h;
	char why[256];
	int err;

	for (;;) {
		__u64 now = now_ns();

		err = now < deadline ?
		      poll(p, 2, (deadline - now) / 1000000 + 1) : 0;
		if (err < 0 && errno == EINTR)
			continue;
		if (err <= 0 || !p[0].revents) {
			new_gone_why(up, why, sizeof(why));
			return fail(up, err < 0 ? -errno : -ETIMEDOUT,
				    "the new instance (pid %d) did not connect within %d ms: %s",
				    up->r.new_pid, up->o.timeout_ms,
				    p[1].revents ? why : "does it open the service with libbaton?");
		}
		up->old = accept4(rs->ctl_listen, NULL, NULL, SOCK_CLOEXEC);
		if (up->old < 0)
			continue;
		err = ctl_peer_check(up->old, &cred);
		if (!err && cred.pid == up->r.new_pid)
			break;
		/* a query, or anyone else: nothing serves yet */
		msg_send_error(up->old, up->msg, -EAGAIN,
			       "%s is being restored from a checkpoint; try again",
			       up->o.service);
		close(up->old);
		up->old = -1;
	}
	err = ctl_set_timeout(up->old, up->o.timeout_ms);
	if (err)
		return fail(up, err, "the new instance's connection: %s",
			    strerror(-err));
	err = msg_recv(up->old, up->msg, up->o.timeout_ms);
	if (!err)
		err = hello_get(up->msg, tb, &h);
	if (!err && h.role != BATON_ROLE_SUCCESSOR)
		err = -EPROTO;
	if (err)
		return fail(up, err, "no hello from the new instance: %s",
			    strerror(-err));
	snprintf(up->r.new_app, sizeof(up->r.new_app), "%s", h.app ?: "?");
	err = versions_check(&rs->ck.ver, &h.ver, why, sizeof(why));
	if (err) {
		msg_send_error(up->old, up->msg, err, "%s", why);
		return fail(up, err, "the new instance cannot read the checkpoint's state: %s",
			    why);
	}
	err = welcome_put(up->msg, BATON_MSG_WELCOME, &w) ?:
	      msg_send(up->old, up->msg);
	return err ? fail(up, err, "cannot write to the new instance: %s",
			  strerror(-err)) : 0;
}

/* The blobs of one phase: the state's first, the connections' second */
static int blobs_send(struct restore *rs, bool conns)
{
	struct baton_upgrade *up = rs->up;
	unsigned int i;
	int err = 0;

	for (i = 0; !err && i < rs->ck.nblobs; i++) {
		const struct file_blob *b = &rs->ck.blobs[i];

		if ((b->kind >= BATON_BLOB_CONNS) != conns)
			continue;
		err = blob_send(up->old, up->msg, b->kind, b->memfd, b->records);
		if (b->kind == BATON_BLOB_CONNS)
			up->r.records += b->records;
	}
	return err ? fail(up, err, "cannot hand the checkpoint to the new instance: %s",
			  strerror(-err)) : 0;
}

/*
 * Waits for want from the new instance, on its BATON_CTL_FD; what it says
 * on the control socket meanwhile (its ACTIVE, a copy) is noted in passing
 */
static int await_new(struct restore *rs, __u16 want, int ms,
		     const struct nlattr **tb)
{
	struct baton_upgrade *up = rs->up;
	__u64 deadline = deadline_in(ms);
	char text[256];
	enum from from;
	int err;

	for (;;) {
		err = wait_msg(up, deadline, &from, tb);
		if (err == -ETIMEDOUT && want == BATON_MSG_ACTIVE)
			return err;	/* new_overdue() judges */
		if (err == -ETIMEDOUT)
			return fail(up, err, "the new instance (pid %d) did not say %s within %d ms",
				    up->r.new_pid, msg_type_name(want), ms);
		if (err == -ECONNRESET && from == FROM_OLD) {
			/* after its ACTIVE there, before the one we wait for */
			close(up->old);
			up->old = -1;
			continue;
		}
		if (err == -ECONNRESET) {
			new_gone_why(up, text, sizeof(text));
			return fail(up, err, "%s", text);
		}
		if (err)
			return fail(up, err, "a malformed message from the new instance");
		msg_close_fds(up->msg);
		if (up->msg->nlh->nlmsg_type == BATON_MSG_ERROR) {
			err = msg_error_text(tb, text, sizeof(text));
			return fail(up, err, "the new instance failed: %s", text);
		}
		if (from == FROM_NEW && up->msg->nlh->nlmsg_type == want)
			return 0;
		if (from == FROM_OLD && (up->msg->nlh->nlmsg_type == BATON_MSG_ACTIVE ||
					 up->msg->nlh->nlmsg_type == BATON_MSG_SYNC))
			continue;
		return fail(up, -EPROTO, "unexpected %s from the new instance",
			    msg_type_name(up->msg->nlh->nlmsg_type));
	}
}

static int await_active(void *ctx, int ms, const struct nlattr **tb)
{
	return await_new(ctx, BATON_MSG_ACTIVE, ms, tb);
}

static int restore_run(struct restore *rs, const char *path)
{
	const struct nlattr *tb[BATON_A_MAX + 1];
	struct baton_upgrade *up = rs->up;
	struct baton_msg *m;
	int err;

	err = paths_init(&up->paths, up->o.run_dir, up->o.service);
	if (err)
		return fail(up, err, "'%s' is not a valid service name (letters, digits, '_', '-', '.'; at most 64)",
			    up->o.service);
	up->msg = m = msg_alloc();
	if (!m)
		return fail(up, -ENOMEM, "out of memory");
	err = check(rs, path) ?: stopped(rs) ?: sockets_open(rs);
	if (err)
		return err;
	reach(up, BATON_PHASE_ATTACHED);
	err = spawn_new(up) ?: successor_accept(rs);
	if (err)
		return err;
	/* phase 1: the sockets, the state */
	up->r.phase1_start_ns = now_ns();
	err = sockets_send(up->old, m, up->held, up->nheld) ?:
	      blobs_send(rs, false);
	msg_init(m, BATON_MSG_PHASE1_DONE);
	err = err ?: msg_put_u32(m, BATON_A_LISTENERS, rs->ck.nlsn) ?:
	      msg_put_u32(m, BATON_A_CONNS, 0) ?:
	      msg_put_u32(m, BATON_A_FLAGS, BATON_UPGRADE_F_REPAIR) ?:
	      msg_send(up->old, m);
	if (err)
		return fail(up, err, "cannot hand the checkpoint to the new instance: %s",
			    strerror(-err));
	err = await_new(rs, BATON_MSG_READY, up->o.timeout_ms, tb);
	if (err)
		return err;
	reach(up, BATON_PHASE_READY);
	/* phase 2: the connections; the lock is the new one's to take */
	up->r.deactivate_ns = now_ns();
	err = blobs_send(rs, true);
	if (err)
		return err;
	close(rs->lock);
	rs->lock = -1;
	msg_init(m, BATON_MSG_PHASE2_DONE);
	err = msg_put_u32(m, BATON_A_RECORDS, up->r.records) ?:
	      msg_put_u64(m, BATON_A_DEADLINE_NS,
			  deadline_in(up->o.blackout_ms)) ?:
	      msg_put_u32(m, BATON_A_FLAGS, BATON_DEACTIVATE_F_DIRECT);
	if (!err && rs->ck.info.freeze_id)
		err = msg_put_u32(m, BATON_A_FREEZE_ID, rs->ck.info.freeze_id);
	err = err ?: msg_send(up->old, m);
	if (err)
		return fail(up, err, "cannot hand the checkpoint to the new instance: %s",
			    strerror(-err));
	reach(up, BATON_PHASE_DEACTIVATED);
	/*
	 * Late, it may serve still: killed while it activates, it would
	 * close with a FIN what it let out of repair mode, and no old
	 * instance is there to take the connections back (new_overdue())
	 */
	err = await_new(rs, BATON_MSG_ACTIVE, up->o.blackout_ms, tb);
	if (err == -ETIMEDOUT)
		err = new_overdue(up, tb, await_active, rs);
	if (err)
		return err;
	up->r.active_ns = now_ns();
	up->r.activated_ns = attr_u64(tb, BATON_A_TIME_NS, up->r.active_ns);
	up->r.activate_flags = attr_u32(tb, BATON_A_FLAGS, 0);
	up->r.conns = attr_u32(tb, BATON_A_CONNS, 0);
	steps_get(m, "new", up->r.steps, &up->r.nsteps);
	reach(up, BATON_PHASE_ACTIVE);
	reach(up, BATON_PHASE_DONE);
	if (rs->ck.other_boot)
		unlink(up->paths.hold);	/* thawed */
	return 0;
}

int baton_checkpoint_restore(const struct baton_checkpoint_opts *o,
			     struct baton_upgrade_report *report)
{
	struct restore rs = { .lock = -1, .ctl_listen = -1 };
	int err;

	if (!o || !o->service || !o->path || !o->argv || !o->argv[0] ||
	    !report)
		return -EINVAL;
	memset(report, 0, sizeof(*report));
	err = checkpoint_upgrade_new(&rs.up, o, BATON_UPGRADE_F_REPAIR);
	if (err)
		return err;
	err = restore_run(&rs, o->path);
	if (err) {
		/* it let go of what it restored, silently, before it said so */
		reap_new(rs.up);
		/* refused (BATON_PHASE_NONE) if nothing was made */
		if (rs.up->r.phase >= BATON_PHASE_ATTACHED)
			reach(rs.up, BATON_PHASE_FAILED);
		if (rs.ctl_listen >= 0)
			unlink(rs.up->paths.sock);	/* nothing serves */
	}
	drop_held(rs.up);
	if (rs.lock >= 0)
		close(rs.lock);
	file_free(&rs.ck);
	*report = rs.up->r;
	baton_upgrade_close(rs.up);
	return err;
}
