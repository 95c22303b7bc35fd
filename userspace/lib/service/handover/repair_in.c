// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Repair mode, the new instance's side: the connections arrive as TCP
 * checkpoints (a BATON_BLOB_TCP blob, repair_out.c), with the
 * application's own records of them (BATON_BLOB_CONNS), and come back only
 * once this instance holds the service's lock, so that a rollback before
 * that has nothing of ours to undo.
 *
 * prepare: at PHASE1_DONE, before the blackout, the channel to baton.ko
 *	    is opened.
 * restore: each socket is rebuilt in repair mode (baton.ko's bulk import
 *	    with BATON_IMPORT_F_REPAIR, or TCP_REPAIR one by one, which stops
 *	    short of leaving it), which it keeps (a guard: if we die from
 *	    here, its close says nothing to the peer, and the old restores
 *	    it); an older module's sockets are put back in it at once. Then
 *	    each is adopted by the application (adopt_socket) and its
 *	    record loaded (load_conn), as fd mode adopts a connection.
 * commit:  just before ACTIVE, each leaves repair mode (TCP_REPAIR's with
 *	    the window probe and the bytes never sent, which unfrozen peers
 *	    must not see before) and the freeze is thawed: what the peers
 *	    sent meanwhile reaches the new sockets. Into another network
 *	    namespace (BATON_UPGRADE_F_NETNS), the connections were imported
 *	    before their address is here (BATON_IMPORT_F_NONLOCAL), and the
 *	    freeze, the old namespace's, is the coordinator's to thaw into
 *	    ours once it has moved the address.
 * abort:   any failure before that lets go of every socket restored
 *	    (connect(AF_UNSPEC) in repair mode: silent, the tuple free), for
 *	    the old one to restore it; then our error reaches it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/baton.h>
#include "service/handover/takeover.h"
#include "tcp/tcp.h"

void repair_in_keep(struct takeover *t, struct baton_msg *m, __u32 kind)
{
	int *slot = kind == BATON_BLOB_TCP ? &t->tcp_blob : &t->conns_blob;

	if (*slot >= 0)
		close(*slot);
	*slot = m->fds[0];
	m->nfds = 0;		/* ours now */
}

struct ckpts {
	struct ckpt_rec *c;
	unsigned int n, cap;
	struct ckpt_data d;
};

static void ckpts_free(struct ckpts *k)
{
	if (!k)
		return;
	free(k->c);
	ckpt_data_free(&k->d);
	free(k);
}

void repair_in_free(struct takeover *t)
{
	if (t->tcp_blob >= 0)
		close(t->tcp_blob);
	if (t->conns_blob >= 0)
		close(t->conns_blob);
	t->tcp_blob = t->conns_blob = -1;
	free(t->restored);
	t->restored = NULL;
	ckpts_free(t->ckpts);
	t->ckpts = NULL;
	t->nrestored = 0;
	baton_tcp_close(t->tcp);
	t->tcp = NULL;
}

/* blob_read()'s: the checkpoints into k, and why one was refused */
struct ckpt_read {
	struct ckpts *k;
	struct takeover *t;
};

static int ckpt_one(void *data, const struct baton_rec *rec)
{
	struct ckpt_read *rd = data;
	struct ckpts *k = rd->k;
	struct ckpt_rec *c;
	int err;

	if (k->n == k->cap) {
		unsigned int cap = k->cap ? k->cap * 2 : 256;
		struct ckpt_rec *more = realloc(k->c, cap * sizeof(*more));

		if (!more)
			return -ENOMEM;
		k->c = more;
		k->cap = cap;
	}
	c = &k->c[k->n];
	err = tcp_ckpt_parse(rec, c, &k->d);
	if (err == -EADDRNOTAVAIL)
		snprintf(rd->t->why, sizeof(rd->t->why),
			 "the old instance's checkpoint of connection %llu gives it other addresses than baton.ko's record does",
			 (unsigned long long)c->id);
	if (err)
		return err;
	if (k->n && c->format != k->c[0].format)
		return -EINVAL;	/* one format a blob */
	k->n++;
	return 0;
}

/* Every restored socket back in repair mode: closed, it says nothing */
static void guard(const int *fds, unsigned int n, int on)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		if (fds[i] >= 0)
			sockopt_u32(fds[i], TCP_REPAIR, on);
}

/*
 * Whether every request was refused with EINVAL, as a module older than
 * BATON_IMPORT_F_REPAIR refuses each (the parts go side by side): then
 * nothing was made, and the import may go again without the flag
 */
static bool refused_all(const int *fds, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		if (fds[i] != -EINVAL)
			return false;
	return true;
}

/*
 * The sockets, from their checkpoints, into fds[], each in repair mode (the
 * guard: if we die from here, its close says nothing to the peer, and the
 * old restores it)
 */
static int sockets_rebuild(struct takeover *t, const struct ckpts *k, int *fds)
{
	__u32 flags = t->netns ? BATON_IMPORT_F_NONLOCAL : 0;
	unsigned int i;
	int err = 0;

	if (k->c[0].format == BATON_CKPT_MODULE) {
		if (!tcp_has_module(t->tcp)) {
			snprintf(t->why, sizeof(t->why),
				 "the connections were checkpointed by baton.ko, which is not loaded here (modprobe baton)");
			return -ENOENT;
		}
		/*
		 * the records lie one after another: the module's bulk
		 * record; in another namespace, before their address is
		 * here. Each socket comes back in repair mode (the guard,
		 * without a moment out of it in which our death would close
		 * it with a FIN); a module older than that flag refuses it
		 * in the first request, which has then made nothing.
		 */
		err = baton_tcp_import_conns_flags(t->tcp, k->d.buf, k->d.len,
						   fds, k->n,
						   flags | BATON_IMPORT_F_REPAIR);
		if (err == -EINVAL && refused_all(fds, k->n)) {
			pr_warn(&t->svc->log, "baton.ko does not take BATON_IMPORT_F_REPAIR (an older module): each connection is out of repair mode for a moment before the guard");
			err = baton_tcp_import_conns_flags(t->tcp, k->d.buf,
							   k->d.len, fds, k->n,
							   flags);
			guard(fds, k->n, TCP_REPAIR_ON);
		}
		return err;
	}
	for (i = 0; i < k->n; i++)
		fds[i] = -1;
	/* held in repair mode: no window probe before the commit */
	for (i = 0; !err && i < k->n; i++) {
		fds[i] = socket(k->c[i].local.ss_family,
				SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
		if (fds[i] < 0)
			err = -errno;
		else
			err = tcp_restore_into(t->tcp, fds[i],
					       k->d.buf + k->c[i].off,
					       k->c[i].len, true);
	}
	return err;
}

static int adopt_all(struct takeover *t, struct ckpts *k, int *fds)
{
	unsigned int i;
	int err = 0;

	for (i = 0; i < k->n; i++) {
		struct held_socket s = {
			.fd = fds[i],
			.si = { .id = k->c[i].id, .kind = BATON_SOCK_CONN,
				.local = k->c[i].local, .peer = k->c[i].peer,
				.local_len = k->c[i].local_len,
				.peer_len = k->c[i].peer_len },
		};

		if (k->c[i].file_flags &&
		    fcntl(fds[i], F_SETFL, k->c[i].file_flags) < 0) {
			err = -errno;
			break;
		}
		/* the application's from here, even if it refuses it */
		t->restored[t->nrestored++] = fds[i];
		fds[i] = -1;
		err = adopt_conn(t, &s);
		if (err)
			break;
	}
	return err;
}

/*
 * The channel to baton.ko (or TCP_REPAIR's, without it), opened in phase
 * 1: resolving the family is a netlink round trip, 1.3-1.8 ms in the VM
 * when it was taken in the blackout
 */
int repair_in_prepare(struct takeover *t)
{
	int err;

	if (t->tcp)
		return 0;
	err = tcp_open_any(&t->tcp, &t->svc->log);
	if (err)
		snprintf(t->why, sizeof(t->why),
			 "repair mode: cannot open the TCP checkpoint channel: %s",
			 strerror(-err));
	return err;
}

int repair_in_restore(struct takeover *t)
{
	struct ckpt_read rd = { .t = t };
	struct ckpts *kp;
	unsigned int i;
	__u32 n = 0;
	int *fds = NULL, err;

	/* no connection, and no freeze (of the ports alone) to thaw */
	if (t->tcp_blob < 0 && !t->freeze_id)
		return 0;
	err = repair_in_prepare(t);
	if (err)
		return err;
	if (t->tcp_blob < 0)
		return 0;	/* the ports' freeze: thawed by the commit */
	/* kept until the commit: TCP_REPAIR's unsent bytes go then */
	kp = t->ckpts = calloc(1, sizeof(*kp));
	if (!kp)
		return -ENOMEM;
	rd.k = kp;
	err = blob_read(t->tcp_blob, BATON_BLOB_TCP, ckpt_one, &rd, &n);
	steps_mark(&t->st, "read checkpoints");
	if (err) {
		if (!t->why[0])
			snprintf(t->why, sizeof(t->why),
				 "cannot read the old instance's TCP checkpoints: %s",
				 strerror(-err));
		goto free_fds;
	}
	if (!kp->n)
		goto free_fds;
	fds = malloc(kp->n * sizeof(*fds));
	t->restored = malloc(kp->n * sizeof(*t->restored));
	if (!fds || !t->restored) {
		err = -ENOMEM;
		goto free_fds;
	}
	err = sockets_rebuild(t, kp, fds);
	steps_mark(&t->st, "restore");
	if (err) {
		if (!t->why[0])
			snprintf(t->why, sizeof(t->why),
				 "cannot restore the connections from their checkpoints: %s%s",
				 strerror(-err), err != -ENOBUFS ? "" :
				 " (the kernel had no memory for their queues: see net.ipv4.tcp_mem, which the old sockets and the new count against together)");
		goto close_fds;
	}
	err = adopt_all(t, kp, fds);
	if (!err && t->conns_blob >= 0)
		err = load_conns(t, t->conns_blob);
	steps_mark(&t->st, "adopt and load records");
	if (!err)
		pr_info(&t->svc->log, "%u connections restored from their checkpoints (%s)",
			kp->n, kp->c[0].format == BATON_CKPT_MODULE ?
			"baton.ko" : "TCP_REPAIR");
close_fds:
	for (i = 0; i < kp->n; i++) {
		if (fds[i] < 0)
			continue;
		tcp_disconnect(fds[i]);
		close(fds[i]);
	}
free_fds:
	free(fds);
	return err;
}

void repair_in_commit(struct takeover *t)
{
	struct baton_freeze_stats fs = {};
	const struct ckpts *k = t->ckpts;
	unsigned int i;
	int err;

	if (k && k->n && k->c[0].format == BATON_CKPT_TCP) {
		/*
		 * the window probe, and the bytes never sent, only now; a
		 * connection that cannot take them is reset
		 */
		for (i = 0; i < t->nrestored; i++)
			if (tcp_restore_release(t->tcp, t->restored[i],
						k->d.buf + k->c[i].off,
						k->c[i].len))
				pr_err(&t->svc->log, "connection %llu lost the bytes it had not sent yet, and is reset",
				       (unsigned long long)k->c[i].id);
	} else {
		guard(t->restored, t->nrestored, TCP_REPAIR_OFF_NO_WP);
	}
	if (t->nrestored)
		steps_mark(&t->st, "leave repair mode");
	t->nrestored = 0;
	/* in another namespace, the coordinator thaws it into ours */
	if (!t->freeze_id || t->netns)
		return;
	err = baton_tcp_thaw(t->tcp, t->freeze_id, &fs);
	steps_mark(&t->st, "thaw");
	if (err)
		pr_warn(&t->svc->log, "the thaw failed (%s): the freeze's deadline had passed, and it let the held segments go",
			strerror(-err));
	else if (fs.overflow_packets)
		pr_warn(&t->svc->log, "the freeze dropped %llu segments over its caps: their peers send them again",
			(unsigned long long)fs.overflow_packets);
}

void repair_in_abort(struct takeover *t)
{
	unsigned int i;

	/* the application's descriptors stay; their connections let go */
	for (i = 0; i < t->nrestored; i++)
		tcp_disconnect(t->restored[i]);
	t->nrestored = 0;
}
