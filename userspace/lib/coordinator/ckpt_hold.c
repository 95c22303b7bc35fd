// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * batonctl hold: in the boot after a restart, before the network comes
 * up, baton.ko freezes the connections of a checkpoint made for the
 * restart, by their 4-tuples: from then until the restore thaws them,
 * what their peers send waits in the kernel, where the new kernel would
 * otherwise answer it with a reset.
 *
 * The module lets a caller freeze only the tuples it holds a socket for:
 * the checkpoint's listeners, opened for the while with IP_FREEBIND (their
 * addresses may not be up yet) and closed again. Their ports are frozen
 * too: a client that connects before the restore waits for it. The freeze's id goes into
 * the service's run directory (paths.hold), written beside and renamed,
 * for baton_checkpoint_restore().
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>

#include <linux/baton.h>
#include "coordinator/coordinator.h"
#include "tcp/tcp.h"

struct hold {
	struct baton_checkpoint ck;
	struct baton_paths paths;
	struct baton_log_sink log;
	int *lfd;		/* the listeners, one per file_listener */
	struct baton_flow *flows;
};

static __u16 port_of(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET6 ?
	       ((const struct sockaddr_in6 *)ss)->sin6_port :
	       ((const struct sockaddr_in *)ss)->sin_port;
}

/*
 * Each connection's flow, named through the listener of its port; then
 * each listener's port, whose new clients wait for the restore too
 */
static int flows_make(struct hold *h, char *why, size_t len)
{
	const struct baton_checkpoint *ck = &h->ck;
	unsigned int i, j;
	char addr[64];

	h->flows = calloc(ck->nconns + ck->nlsn, sizeof(*h->flows));
	if (!h->flows)
		return -ENOMEM;
	for (j = 0; j < ck->nlsn; j++) {
		h->flows[ck->nconns + j].fd = h->lfd[j];
		h->flows[ck->nconns + j].local = ck->lsn[j].local;
		h->flows[ck->nconns + j].peer.ss_family = AF_UNSPEC;
	}
	for (i = 0; i < ck->nconns; i++) {
		const struct baton_checkpoint_sock *s = &ck->conns[i];

		for (j = 0; j < ck->nlsn; j++)
			if (port_of(&ck->lsn[j].local) == port_of(&s->local))
				break;
		if (j == ck->nlsn) {
			snprintf(why, len, "connection %llu (local %s) came through none of the checkpoint's listeners: baton.ko freezes only what a listener of the caller receives",
				 (unsigned long long)s->id,
				 baton_addr_text(&s->local, addr, sizeof(addr)));
			return -EINVAL;
		}
		h->flows[i].fd = h->lfd[j];
		h->flows[i].local = s->local;
		h->flows[i].peer = s->peer;
	}
	return 0;
}

/* The freeze's id, for restore: written beside, then renamed */
static int note_write(const struct hold *h, __u32 id)
{
	char tmp[PATH_MAX + 8], buf[16];
	int fd, n, err = 0;

	err = mkdir_p(h->paths.dir, 0755);
	if (err)
		return err;
	snprintf(tmp, sizeof(tmp), "%s.tmp", h->paths.hold);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	n = snprintf(buf, sizeof(buf), "%u\n", id);
	if (write(fd, buf, n) != n)
		err = errno ? -errno : -EIO;
	close(fd);
	if (!err && rename(tmp, h->paths.hold))
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

/* restore's side: the hold's freeze id, or 0 if there is none */
__u32 hold_note_read(const struct baton_paths *paths)
{
	char buf[16] = "";
	ssize_t n;
	int fd;

	fd = open(paths->hold, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 ? strtoul(buf, NULL, 10) : 0;
}

static int hold_run(struct hold *h, const struct baton_checkpoint_opts *o,
		    __u32 *id)
{
	struct baton_tcp *tcp = NULL;
	unsigned int i;
	size_t nports;
	char why[512];
	int err;

	err = paths_init(&h->paths, o->run_dir, o->service);
	if (err) {
		pr_err(&h->log, "'%s' is not a valid service name", o->service);
		return err;
	}
	err = file_load(&h->ck, o->path, why, sizeof(why));
	if (err) {
		pr_err(&h->log, "%s", why);
		return err;
	}
	if (strcmp(h->ck.info.service, o->service)) {
		pr_err(&h->log, "%s: a checkpoint of service %s, not %s",
		       o->path, h->ck.info.service, o->service);
		return -EINVAL;
	}
	err = baton_tcp_open(&tcp, o->log, o->log_ctx);
	if (err) {
		pr_err(&h->log, "%s: holding its connections needs baton.ko: %s (modprobe baton)",
		       o->path, strerror(-err));
		return err;
	}
	err = file_check_here(&h->ck, tcp, why, sizeof(why));
	if (!err && !h->ck.other_boot) {
		snprintf(why, sizeof(why), "it was made in this boot: its connections are frozen already, until %s's restore",
			 o->service);
		err = -EALREADY;
	}
	if (err) {
		pr_err(&h->log, "%s: %s", o->path, why);
		goto close_tcp;
	}
	if (!h->ck.nconns && !h->ck.nlsn)	/* nothing to hold */
		goto close_tcp;
	h->lfd = calloc(h->ck.nlsn + 1, sizeof(*h->lfd));
	if (!h->lfd) {
		err = -ENOMEM;
		goto close_tcp;
	}
	for (i = 0; i < h->ck.nlsn; i++)
		h->lfd[i] = -1;
	for (i = 0; i < h->ck.nlsn; i++) {
		err = file_listener_open(&h->ck.lsn[i], true, &h->lfd[i]);
		if (err) {
			pr_err(&h->log, "cannot open a listener on %s to hold its connections by: %s",
			       baton_addr_text(&h->ck.lsn[i].local, why, sizeof(why)),
			       strerror(-err));
			goto close_listeners;
		}
	}
	err = flows_make(h, why, sizeof(why));
	if (err) {
		if (err != -ENOMEM)
			pr_err(&h->log, "%s: %s", o->path, why);
		goto close_listeners;
	}
	nports = h->ck.nlsn;
	err = tcp_freeze_with_ports(tcp, h->flows, h->ck.nconns, &nports,
				    o->freeze_ms ?: BATON_DEADLINE_MAX_MS, id);
	if (err) {
		pr_err(&h->log, "baton.ko did not freeze the %u connections of %s: %s",
		       h->ck.nconns, o->path, strerror(-err));
		goto close_listeners;
	}
	if (!*id)
		goto close_listeners;	/* no connection, the ports refused */
	err = note_write(h, *id);
	if (err) {
		pr_err(&h->log, "cannot note the hold in %s: %s; it is let go",
		       h->paths.hold, strerror(-err));
		baton_tcp_thaw(tcp, *id, NULL);
	}
close_listeners:
	for (i = 0; i < h->ck.nlsn; i++)
		if (h->lfd[i] >= 0)
			close(h->lfd[i]);
close_tcp:
	baton_tcp_close(tcp);
	return err;
}

int baton_checkpoint_hold(const struct baton_checkpoint_opts *o,
			  __u32 *freeze_id)
{
	struct hold h = {};
	int err;

	if (!o || !o->service || !o->path || !freeze_id ||
	    o->freeze_ms > BATON_DEADLINE_MAX_MS || o->flags)
		return -EINVAL;
	h.log = (struct baton_log_sink){ .fn = o->log, .ctx = o->log_ctx };
	*freeze_id = 0;
	err = hold_run(&h, o, freeze_id);
	free(h.flows);
	free(h.lfd);
	file_free(&h.ck);
	return err;
}

int baton_checkpoint_release(const struct baton_checkpoint_opts *o)
{
	struct baton_log_sink log;
	struct baton_paths paths;
	struct baton_tcp *tcp;
	__u32 id;
	int err;

	if (!o || !o->service)
		return -EINVAL;
	log = (struct baton_log_sink){ .fn = o->log, .ctx = o->log_ctx };
	err = paths_init(&paths, o->run_dir, o->service);
	if (err)
		return err;
	id = hold_note_read(&paths);
	if (!id)
		return -ENOENT;
	err = baton_tcp_open(&tcp, o->log, o->log_ctx);
	if (err) {
		pr_err(&log, "releasing %s's hold needs baton.ko: %s",
		       o->service, strerror(-err));
		return err;
	}
	err = baton_tcp_thaw(tcp, id, NULL);
	baton_tcp_close(tcp);
	/* gone by its deadline already (-ENOENT): released all the same */
	if (err && err != -ENOENT) {
		pr_err(&log, "baton.ko did not thaw %s's hold (freeze %u): %s",
		       o->service, id, strerror(-err));
		return err;
	}
	unlink(paths.hold);
	return 0;
}

int baton_checkpoint_held(const struct baton_checkpoint_opts *o,
			  __u32 *freeze_id)
{
	struct baton_paths paths;
	int err;

	if (!o || !o->service || !freeze_id)
		return -EINVAL;
	err = paths_init(&paths, o->run_dir, o->service);
	if (err)
		return err;
	*freeze_id = hold_note_read(&paths);
	return *freeze_id ? 0 : -ENOENT;
}
