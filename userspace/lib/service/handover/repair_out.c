// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Repair mode, the serving instance's side (BATON_UPGRADE_F_REPAIR): its
 * connections leave as TCP checkpoints, not as descriptors.
 *
 * In the blackout, after the application's own records:
 *	freeze	baton.ko holds what the peers send from here on;
 *	export	each connection's whole state (baton.ko's bulk export, or
 *		TCP_REPAIR alone without the module), in repair mode;
 *	disconnect  connect(AF_UNSPEC) in repair mode: the 4-tuple is free
 *		for the new instance, nothing (no FIN, no RST) reaches the
 *		peer, and the application keeps its descriptor, in closed
 *		state, and its epoll registration;
 *	send	the checkpoints, a BATON_BLOB_TCP blob.
 * The new instance restores them once it holds the service's lock, and
 * thaws the freeze (its id goes with PHASE2_DONE).
 *
 * Why this order is the safe one: the new instance cannot restore a
 * connection while our socket still owns its tuple, so ours must let go
 * first; but it lets go in place, and we keep every checkpoint until the
 * new instance is active. A rollback before that (the new one failed,
 * went away, or missed the deadline; it lets go of whatever it restored,
 * silently, before it says so) rebuilds each connection in the very
 * socket the application holds (repair_out_restore()) and thaws: the
 * peers' segments held meanwhile reach it, and the application, resumed,
 * finds its connections as it left them. The freeze's own deadline
 * outlasts the blackout's, so that it never lets a segment through while
 * no socket owns its tuple.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <linux/baton.h>
#include "service/instance.h"
#include "tcp/tcp.h"

/*
 * A twin socket of the new instance, closing as it exits: look again, for
 * 200 ms at most over the whole rollback (a twin that outlives it is the
 * new instance's, live: its connection is lost either way)
 */
#define TWIN_RETRIES		100
#define TWIN_RETRY_US		2000

struct repair_conn {
	int fd;			/* the application's */
	__u64 id;
	bool disconnected;
	void *rec;		/* userspace: its own; module: in raw */
	size_t off, len;
};

struct repair_out {
	struct baton_tcp *tcp;
	struct repair_conn *conns;
	unsigned int n;
	void *raw;		/* the module's bulk record */
	size_t raw_len;
	__u32 freeze_id;	/* 0: none */
	/* a checkpoint's: the listeners' ports, whose SYNs the freeze holds */
	struct baton_flow *ports;
	size_t nports;
};

int repair_out_open(struct baton_service *svc)
{
	struct repair_out *rp;
	int err;

	rp = calloc(1, sizeof(*rp));
	if (!rp)
		return -ENOMEM;
	err = tcp_open_any(&rp->tcp, &svc->log);
	if (err) {
		free(rp);
		return err;
	}
	if (!tcp_has_module(rp->tcp))
		pr_warn(&svc->log, "repair mode without baton.ko: connections are checkpointed through TCP_REPAIR alone, one by one, and not frozen: a segment a peer sends while its connection moves, even an acknowledgement, is lost or resets it (load baton.ko)");
	svc->repair = rp;
	return 0;
}

bool repair_out_frozen(const struct baton_service *svc)
{
	return svc->repair && tcp_has_module(svc->repair->tcp);
}

static void conns_free(struct repair_out *rp)
{
	unsigned int i;

	for (i = 0; rp->conns && !rp->raw && i < rp->n; i++)
		free(rp->conns[i].rec);
	free(rp->conns);
	free(rp->raw);
	free(rp->ports);
	rp->conns = NULL;
	rp->raw = NULL;
	rp->ports = NULL;
	rp->n = rp->nports = 0;
}

void repair_out_close(struct baton_service *svc)
{
	struct repair_out *rp = svc->repair;

	if (!rp)
		return;
	conns_free(rp);
	baton_tcp_close(rp->tcp);
	free(rp);
	svc->repair = NULL;
}

/*
 * What the caller's blackout deadline leaves, and the slack; or, for a
 * checkpoint file, what the coordinator asked (the gap it must cover)
 */
static unsigned int freeze_deadline_ms(const struct baton_service *svc)
{
	__u64 now = now_ns(), left = 0;
	__u64 ms;

	if (svc->freeze_ms)
		return svc->freeze_ms;
	if (svc->blackout_ns > now)
		left = (svc->blackout_ns - now) / 1000000;
	ms = left + BATON_FREEZE_SLACK_MS;
	return ms > BATON_DEADLINE_MAX_MS ? BATON_DEADLINE_MAX_MS : ms;
}

/*
 * A checkpoint's listeners, as ports of its freeze: the clients that
 * connect until the restore listens again wait for it. Not a listener
 * with SO_REUSEPORT: its port is shared, maybe with other processes,
 * whose new clients a port's freeze would hold too.
 */
static void ports_make(struct baton_service *svc, struct repair_out *rp,
		       const struct held_socket *socks, unsigned int n)
{
	unsigned int i;

	rp->ports = calloc(n ?: 1, sizeof(*rp->ports));
	for (i = 0; rp->ports && i < n; i++) {
		struct baton_flow *f = &rp->ports[rp->nports];
		socklen_t len = sizeof(f->local);
		int reuse = 0;
		socklen_t rlen = sizeof(reuse);

		if (socks[i].si.kind != BATON_SOCK_LISTENER)
			continue;
		f->fd = socks[i].fd;
		if (getsockopt(f->fd, SOL_SOCKET, SO_REUSEPORT, &reuse, &rlen) ||
		    getsockname(f->fd, (struct sockaddr *)&f->local, &len)) {
			pr_warn(&svc->log, "phase 2: listener %llu: %s: its clients will be refused until the restore",
				(unsigned long long)socks[i].si.id,
				strerror(errno));
			continue;
		}
		if (reuse) {
			pr_info(&svc->log, "phase 2: listener %llu shares its port (SO_REUSEPORT): its new clients go to the others, or are refused, until the restore",
				(unsigned long long)socks[i].si.id);
			continue;
		}
		f->peer.ss_family = AF_UNSPEC;	/* a port */
		rp->nports++;
	}
}

/*
 * Frozen, then the module's one export of them all, cut per connection;
 * for a checkpoint, the listeners' ports frozen with them
 */
static int export_module(struct baton_service *svc, struct repair_out *rp)
{
	struct baton_flow *flows;
	size_t off = 0;
	unsigned int i;
	int *fds, err;

	flows = calloc(rp->n + rp->nports, sizeof(*flows));
	fds = calloc(rp->n ?: 1, sizeof(*fds));
	err = flows && fds ? 0 : -ENOMEM;
	for (i = 0; !err && i < rp->n; i++) {
		flows[i].fd = fds[i] = rp->conns[i].fd;
		flows[i].local.ss_family = AF_UNSPEC;	/* its own tuple */
	}
	for (i = 0; !err && i < rp->nports; i++)
		flows[rp->n + i] = rp->ports[i];
	if (!err)
		err = tcp_freeze_with_ports(rp->tcp, flows, rp->n, &rp->nports,
					    freeze_deadline_ms(svc),
					    &rp->freeze_id);
	if (err || !rp->n)
		goto free_arrays;
	err = baton_tcp_export_conns(rp->tcp, fds, rp->n, &rp->raw,
				     &rp->raw_len);
	if (err)
		goto thaw;
	/* cut per connection; blob_write() checks each is whole */
	for (i = 0; i < rp->n && off < rp->raw_len; i++) {
		rp->conns[i].off = off;
		rp->conns[i].len = tcp_conn_span(rp->raw, rp->raw_len, off);
		off += rp->conns[i].len;
	}
	if (i != rp->n || off != rp->raw_len) {
		pr_err(&svc->log, "baton.ko's export of %u connections is malformed at connection %u",
		       rp->n, i);
		err = -EPROTO;
		goto thaw;
	}
	goto free_arrays;

thaw:
	for (i = 0; rp->raw && i < rp->n; i++)
		sockopt_u32(fds[i], TCP_REPAIR, TCP_REPAIR_OFF_NO_WP);
	free(rp->raw);
	rp->raw = NULL;
	baton_tcp_thaw(rp->tcp, rp->freeze_id, NULL);
	rp->freeze_id = 0;
free_arrays:
	free(flows);
	free(fds);
	return err;
}

/* TCP_REPAIR alone, one by one; each stays in repair mode */
static int export_userspace(struct repair_out *rp)
{
	unsigned int i;
	int err = 0;

	for (i = 0; !err && i < rp->n; i++)
		err = baton_tcp_checkpoint(rp->tcp, rp->conns[i].fd,
					   &rp->conns[i].rec,
					   &rp->conns[i].len);
	if (!err)
		return 0;
	while (i-- > 0) {	/* back as they were; nothing was sent */
		sockopt_u32(rp->conns[i].fd, TCP_REPAIR_QUEUE, TCP_NO_QUEUE);
		sockopt_u32(rp->conns[i].fd, TCP_REPAIR, TCP_REPAIR_OFF_NO_WP);
		free(rp->conns[i].rec);
		rp->conns[i].rec = NULL;
	}
	return err;
}

static const void *conn_data(const struct repair_out *rp,
			     const struct repair_conn *c)
{
	return rp->raw ? (const char *)rp->raw + c->off : c->rec;
}

/*
 * A connection's addresses: the module's record says them (checking that
 * the connection is whole there, its scalars first, before we let go), or
 * its socket (two system calls that lock it, a connection, in the blackout)
 */
static int conn_addrs(struct baton_service *svc, const struct repair_out *rp,
		      unsigned int i, struct ckpt_rec *r)
{
	const struct repair_conn *c = &rp->conns[i];

	if (rp->raw) {
		if (!tcp_conn_check(conn_data(rp, c), c->len, &r->local,
				    &r->local_len, &r->peer, &r->peer_len))
			return 0;
		pr_err(&svc->log, "baton.ko's export of %u connections is malformed at connection %u",
		       rp->n, i);
		return -EPROTO;
	}
	r->local_len = sizeof(r->local);
	r->peer_len = sizeof(r->peer);
	if (getsockname(c->fd, (struct sockaddr *)&r->local, &r->local_len) ||
	    getpeername(c->fd, (struct sockaddr *)&r->peer, &r->peer_len))
		return -errno;
	return 0;
}

/* The BATON_BLOB_TCP blob: one record per connection */
static int blob_write(struct baton_service *svc, struct repair_out *rp,
		      int *memfd)
{
	struct baton_rec_writer w;
	unsigned int i;
	int err;

	err = writer_init(&w, BATON_BLOB_TCP, svc->service, svc->ver.state);
	for (i = 0; !err && i < rp->n; i++) {
		struct repair_conn *c = &rp->conns[i];
		struct ckpt_rec r = {
			.id = c->id, .len = c->len,
			.format = rp->raw ? BATON_CKPT_MODULE : BATON_CKPT_TCP,
		};
		int fl = fcntl(c->fd, F_GETFL);

		err = fl < 0 ? -errno : conn_addrs(svc, rp, i, &r);
		if (err)
			break;
		r.file_flags = fl & O_NONBLOCK;
		err = ckpt_put(&w, &r, conn_data(rp, c));
	}
	if (!err)
		err = w.err ?: writer_finish(&w, memfd);
	writer_free(&w);
	return err;
}

int repair_out_checkpoint(struct baton_service *svc,
			  const struct held_socket *socks, unsigned int nsocks,
			  struct steps *st, __u32 *count, __u32 *freeze_id)
{
	struct repair_out *rp = svc->repair;
	unsigned int i, n = 0;
	int err, memfd;

	*freeze_id = 0;
	for (i = 0; i < nsocks; i++)
		n += socks[i].si.kind == BATON_SOCK_CONN;
	*count = n;
	/*
	 * a checkpoint file's gap, or a move into another network namespace
	 * (SYNs held here until the new one's listeners there get them): the
	 * ports too, where baton.ko is
	 */
	if ((svc->freeze_ms || (svc->flags & BATON_UPGRADE_F_NETNS)) &&
	    tcp_has_module(rp->tcp))
		ports_make(svc, rp, socks, nsocks);
	if (!n && !rp->nports)
		return 0;
	rp->conns = calloc(n ?: 1, sizeof(*rp->conns));
	if (!rp->conns) {
		err = -ENOMEM;
		goto fail;
	}
	for (i = 0; i < nsocks; i++) {
		if (socks[i].si.kind != BATON_SOCK_CONN)
			continue;
		rp->conns[rp->n].fd = socks[i].fd;
		rp->conns[rp->n].id = socks[i].si.id;
		rp->n++;
	}
	err = tcp_has_module(rp->tcp) ? export_module(svc, rp) :
					export_userspace(rp);
	steps_mark(st, rp->raw ? "freeze and export" : "checkpoint");
	if (err)
		goto fail;
	if (!n) {
		if (!rp->freeze_id)
			return 0;
		*freeze_id = rp->freeze_id;
		pr_info(&svc->log, "phase 2: no connection to checkpoint; new ones to the %zu listeners wait (baton.ko)",
			rp->nports);
		return 0;
	}
	err = blob_write(svc, rp, &memfd);
	steps_mark(st, "write checkpoints");
	if (err)
		goto fail;
	/* from here the new instance may restore: our sockets let go */
	for (i = 0; !err && i < n; i++) {
		err = tcp_disconnect(rp->conns[i].fd);
		rp->conns[i].disconnected = !err;
	}
	steps_mark(st, "disconnect");
	if (!err)
		err = blob_send(svc->succ, svc->msg, BATON_BLOB_TCP, memfd, n);
	close(memfd);
	steps_mark(st, "checkpoints");
	if (err)
		goto fail;
	*freeze_id = rp->freeze_id;
	pr_info(&svc->log, "phase 2: %u connections checkpointed (%s)%s", n,
		rp->raw ? "baton.ko, frozen" : "TCP_REPAIR",
		rp->nports ? "; new ones to the listeners wait" : "");
	return 0;

fail:
	pr_err(&svc->log, "phase 2: cannot checkpoint the connections: %s",
	       strerror(-err));
	return err;
}

/*
 * One connection back into its own socket, as the checkpoint has it;
 * *waits: what is left of the rollback's retries for twins
 */
static int restore_one(struct repair_out *rp, struct repair_conn *c,
		       unsigned int *waits)
{
	void *rec = c->rec;
	size_t len = c->len;
	int err = 0;

	if (rp->raw)
		err = tcp_conn_to_rec(rp->tcp, conn_data(rp, c), c->len, &rec,
				      &len);
	while (!err) {
		err = tcp_restore_into(rp->tcp, c->fd, rec, len, false);
		if (err != -EADDRNOTAVAIL || !*waits)
			break;
		--*waits;
		/* the new instance's copy, on its way out */
		nanosleep(&(struct timespec){ 0, TWIN_RETRY_US * 1000 }, NULL);
		err = 0;
	}
	if (rp->raw)
		free(rec);
	return err;
}

/*
 * Rollback: every connection that let go is rebuilt in the application's
 * socket, and the freeze thawed: what the peers sent meanwhile reaches it.
 * Connections that were not disconnected leave repair mode as they were.
 * The count of those that could not be restored (their peers will see
 * their segments reset).
 */
int repair_out_restore(struct baton_service *svc)
{
	struct repair_out *rp = svc->repair;
	unsigned int i, lost = 0, waits = TWIN_RETRIES;
	int err;

	if (!rp || (!rp->n && !rp->freeze_id))
		return 0;
	for (i = 0; i < rp->n; i++) {
		struct repair_conn *c = &rp->conns[i];

		if (!c->disconnected) {
			sockopt_u32(c->fd, TCP_REPAIR_QUEUE, TCP_NO_QUEUE);
			sockopt_u32(c->fd, TCP_REPAIR, TCP_REPAIR_OFF_NO_WP);
			continue;
		}
		err = restore_one(rp, c, &waits);
		if (err) {
			pr_err(&svc->log, "rollback: connection %llu could not be restored: %s",
			       (unsigned long long)c->id, strerror(-err));
			lost++;
		}
	}
	if (rp->freeze_id) {
		err = baton_tcp_thaw(rp->tcp, rp->freeze_id, NULL);
		if (err)
			pr_warn(&svc->log, "rollback: the thaw failed (%s): the freeze's deadline had passed?",
				strerror(-err));
		rp->freeze_id = 0;
	}
	pr_info(&svc->log, "rollback: %u connections restored from their checkpoints%s",
		rp->n - lost, lost ? ", some lost" : "");
	conns_free(rp);
	return lost;
}
