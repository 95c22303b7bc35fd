/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libbaton's TCP checkpoint: one TCP connection outside its descriptor.
 * TCP_REPAIR carries the sequence numbers, options, window and queues, and
 * baton.ko (module/) what TCP_REPAIR cannot, the congestion window and the
 * RTT estimator. Needs CAP_NET_ADMIN; baton.ko must be loaded (-ENOENT if
 * not). It stands apart from the handover (baton.h): it shares only the
 * log callback.
 *
 *	baton_tcp_open(&tcp, log, log_ctx);
 *	baton_tcp_checkpoint(tcp, fd, &rec, &len);
 *	    // fd is left in repair mode and says nothing to the peer:
 *	close(fd);
 *	    // ... rec crosses to another process, version or netns ...
 *	nfd = baton_tcp_restore(tcp, rec, len);	// connected, out of repair
 *	free(rec);
 *	baton_tcp_close(tcp);
 *
 * The congestion and RTT state alone, for a socket the caller restores:
 *	baton_tcp_export(tcp, fd, buf, sizeof(buf));	// any connected socket
 *	baton_tcp_import(tcp, fd, buf, len);	// in repair mode, connected
 *
 * Records are attribute streams (enum baton_tcp_attr; the kernel part is
 * enum baton_genl_attr of <linux/baton.h>). Attributes the reader
 * does not know are skipped: baton_tcp_import() returns how many.
 */
#ifndef BATON_TCP_H
#define BATON_TCP_H

#include <stddef.h>

#include "baton.h"

/* A TCP connection checkpoint (baton_tcp_checkpoint()) */
enum baton_tcp_attr {
	BATON_TCP_A_UNSPEC,
	BATON_TCP_A_FAMILY,	/* u32: AF_INET or AF_INET6 */
	BATON_TCP_A_LOCAL,	/* binary: struct sockaddr_in or _in6 */
	BATON_TCP_A_PEER,	/* binary: struct sockaddr_in or _in6 */
	BATON_TCP_A_SND_SEQ,	/* u32: sequence of the first byte in SENDQ */
	BATON_TCP_A_RCV_SEQ,	/* u32: sequence of the first byte in RECVQ */
	BATON_TCP_A_MSS,	/* u32 */
	BATON_TCP_A_OPTIONS,	/* u32: TCPI_OPT_* */
	BATON_TCP_A_SND_WSCALE,	/* u32 */
	BATON_TCP_A_RCV_WSCALE,	/* u32 */
	BATON_TCP_A_TIMESTAMP,	/* u32: TCP_TIMESTAMP */
	BATON_TCP_A_WINDOW,	/* binary: struct tcp_repair_window */
	BATON_TCP_A_SENDQ,	/* binary: sent, not yet acknowledged */
	BATON_TCP_A_UNSENT,	/* binary: written, not yet sent */
	BATON_TCP_A_RECVQ,	/* binary: received, not yet read */
	BATON_TCP_A_KERNEL,	/* nested: enum baton_genl_attr (baton.ko) */
	BATON_TCP_A_PEER_FIN,	/* u32: 1 if the peer closed its side (its
				 * FIN is counted in RCV_SEQ): the restored
				 * socket reads end of stream after RECVQ */
	__BATON_TCP_A_MAX,
};
#define BATON_TCP_A_MAX (__BATON_TCP_A_MAX - 1)

struct baton_tcp;

BATON_API int baton_tcp_open(struct baton_tcp **tcp, baton_log_fn log,
			     void *log_ctx);
BATON_API int baton_tcp_export(struct baton_tcp *tcp, int fd, void *buf,
			       size_t len);
BATON_API int baton_tcp_import(struct baton_tcp *tcp, int fd, const void *rec,
			       size_t len);
BATON_API int baton_tcp_checkpoint(struct baton_tcp *tcp, int fd, void **rec,
				   size_t *len);
BATON_API int baton_tcp_restore(struct baton_tcp *tcp, const void *rec,
				size_t len);
BATON_API void baton_tcp_close(struct baton_tcp *tcp);

/*
 * baton.ko's freeze.
 *
 * Segments arriving for a set of connections are held in the kernel,
 * neither processed nor acknowledged nor dropped (within the caps), until
 * the thaw delivers them, in order, to whatever socket then owns each
 * connection's 4-tuple: a checkpoint reads still queues, and a restored
 * socket receives what the peer sent meanwhile. deadline_ms (1 to 60,000)
 * after the freeze the module thaws on its own.
 *
 *	struct baton_flow f[n] = {{ .fd = conn }, ...};	// its own tuple
 *	baton_tcp_freeze(tcp, f, n, 1000, NULL, &id);
 *	baton_tcp_checkpoint(tcp, conn, &rec, &len);  close(conn);
 *	nfd = baton_tcp_restore(tcp, rec, len);
 *	baton_tcp_thaw(tcp, id, &stats);
 *
 * A flow names its tuple by a socket of the caller: the connected socket
 * itself (local.ss_family AF_UNSPEC), or local and peer, which fd must
 * hold (their connection, or a listener on local's address and port).
 * A flow with local and no peer (peer.ss_family AF_UNSPEC) is a port:
 * fd is a listener that receives at local (an address or the wildcard,
 * and a port), and the SYNs of new connections to it are held, so that
 * clients that connect while no socket listens there (between a
 * checkpoint and its restore) wait instead of being refused. A baton.ko
 * that does not know ports refuses the freeze with -EOPNOTSUPP.
 *
 * Connections rebuilt in another network namespace, to which their
 * address moved, take what was held with baton_tcp_thaw_into(): the
 * segments are received at device ifindex of namespace netns_fd (an open
 * /run/netns/NAME or /proc/PID/ns/net; the caller needs CAP_NET_ADMIN
 * over it) instead of where they were held:
 *
 *	baton_tcp_freeze(tcp, f, n, 1000, NULL, &id);	// in namespace A
 *	baton_tcp_export_conns(tcp, fds, n, &rec, &len);  close(fds[i]);
 *	    // rec crosses to namespace B, which imports it; the address
 *	    // moves from A's device to B's
 *	baton_tcp_thaw_into(tcp, id, b_fd, b_ifindex, &stats);
 *
 * A baton.ko without it refuses with -EOPNOTSUPP.
 */
struct baton_flow {
	int fd;
	struct sockaddr_storage local, peer;
};

/* held per flow; 0: the module's default (module parameters) */
struct baton_freeze_caps {
	__u32 flow_packets;
	__u32 flow_bytes;	/* memory, as the kernel counts it */
};

struct baton_freeze_stats {
	__u64 freezes, flows;			/* in force (netns stats) */
	__u64 held_packets, held_bytes;		/* held now (netns stats) */
	__u64 delivered_packets, delivered_bytes;
	__u64 overflow_packets, overflow_bytes;	/* over a cap: dropped */
	__u64 dropped_packets, dropped_bytes;	/* held, then dropped */
	__u64 expired;				/* thawed by the deadline */
};

BATON_API int baton_tcp_freeze(struct baton_tcp *tcp, const struct baton_flow *flows,
		     size_t n, unsigned int deadline_ms,
		     const struct baton_freeze_caps *caps, __u32 *id);
BATON_API int baton_tcp_thaw(struct baton_tcp *tcp, __u32 id,
		   struct baton_freeze_stats *stats);
BATON_API int baton_tcp_thaw_into(struct baton_tcp *tcp, __u32 id,
				  int netns_fd, int ifindex,
				  struct baton_freeze_stats *stats);
/* the counters of the caller's network namespace */
BATON_API int baton_tcp_freeze_stats(struct baton_tcp *tcp,
			   struct baton_freeze_stats *stats);

/*
 * baton.ko's bulk state.
 *
 * The complete repair state of many established connections in one
 * request, and their sockets rebuilt in the kernel, a request for as
 * many as fit (the module replays the TCP_REPAIR sequence itself):
 *
 *	baton_tcp_freeze(tcp, flows, n, 1000, NULL, &id);  // still queues
 *	baton_tcp_export_conns(tcp, fds, n, &rec, &len);
 *	    // each fd is left in repair mode, its send queue selected:
 *	close(fds[i]) for each;			// silent
 *	baton_tcp_import_conns(tcp, rec, len, nfds, n);
 *	baton_tcp_thaw(tcp, id, NULL);
 *	free(rec);
 *
 * The record is the module's (enum baton_conn_attr in <linux/baton.h>),
 * not baton_tcp_checkpoint()'s. baton_tcp_import_conns() fills nfds[i]
 * with the socket of the i-th connection or a negative errno (one reset
 * after leaving repair mode, or all of a request that failed: those
 * stay silent) and returns 0 or the first error. A connection larger
 * than one request may be (the channel's send buffer) is refused.
 *
 * With 64 connections or more, both calls work in parts side by side,
 * one a CPU (four at most, of 32 connections or more each): each part
 * on a netlink socket of its own, in a thread of its own that lives
 * only through the call, with every signal blocked. The log callback is
 * called from the caller's thread alone, once the parts are done. The
 * import first grows the caller's descriptor table for n more (a
 * descriptor taken and closed at once), as its growth while threads
 * share it waits for an RCU grace period each time. A part whose thread
 * or channel cannot be had (RLIMIT_NPROC, or the caller's thread now in
 * another network namespace than the channel's) goes in the caller's
 * thread after its own; a seccomp filter that kills on clone() kills
 * the caller here.
 */
BATON_API int baton_tcp_export_conns(struct baton_tcp *tcp, const int *fds, size_t n,
			   void **rec, size_t *len);
BATON_API int baton_tcp_import_conns(struct baton_tcp *tcp, const void *rec,
			   size_t len, int *fds, size_t n);
/*
 * flags: BATON_IMPORT_F_NONLOCAL (<linux/baton.h>), for connections whose
 * local address is on its way to this namespace (a move between
 * namespaces, before baton_tcp_thaw_into()): bound and connected as
 * IP_TRANSPARENT lets a socket be; BATON_IMPORT_F_REPAIR, each socket
 * installed back in repair mode, so that its close says nothing to the
 * peer until TCP_REPAIR_OFF (or _NO_WP) lets it go, and one whose unsent
 * bytes could not be queued closed so, not reset.
 * A bit the module does not know is refused with -EINVAL (an older
 * module: in the first request, which has then made nothing).
 */
BATON_API int baton_tcp_import_conns_flags(struct baton_tcp *tcp,
					   const void *rec, size_t len,
					   int *fds, size_t n, __u32 flags);

#endif /* BATON_TCP_H */
