/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * The generic netlink family of baton.ko: export and import the part of a
 * TCP connection's state that TCP_REPAIR cannot carry (congestion window,
 * slow start threshold, RTT estimator, RTO).
 *
 * Shared by the module and libbaton: __u32 and __u64 values, struct
 * sockaddr_in and sockaddr_in6 addresses.
 *
 *	resolve the family "baton" (CTRL_CMD_GETFAMILY); its version is
 *	BATON_GENL_VERSION and its maxattr tells which attributes it knows
 *
 *	BATON_GENL_CMD_TCP_EXPORT  { FD }
 *		-> { FD, CWND, SSTHRESH, ..., RTO_US }
 *		The socket is one of the caller's open file descriptors, in
 *		the netns of the netlink socket; synchronized and not yet
 *		closed: ESTABLISHED, FIN_WAIT1/2, CLOSE_WAIT, CLOSING,
 *		LAST_ACK.
 *
 *	BATON_GENL_CMD_TCP_IMPORT  { FD, [CWND], [SSTHRESH], ... }
 *		The socket must be in repair mode (TCP_REPAIR) and connected
 *		(connect() in repair mode). Every value is checked before
 *		any is written: on error nothing changes. What an export
 *		produced always imports: values the socket cannot take are
 *		brought within what it can (see Documentation/module.rst).
 *
 *	BATON_GENL_CMD_FREEZE  { FLOW..., PORT..., DEADLINE_MS,
 *				 [FLOW_PACKETS], [FLOW_BYTES] }
 *		-> { FREEZE_ID }
 *		From now until the thaw, every segment that arrives for one
 *		of the flows (TCP 4-tuples, in the netns of the netlink
 *		socket) is held: not processed, not acknowledged, not
 *		dropped while within the caps (per flow, and per netns:
 *		module parameters). A FLOW names a connection by an FD of
 *		the caller: that connected socket's own tuple, or LOCAL and
 *		PEER, which FD must hold (the connected socket of that tuple,
 *		or a listener on LOCAL's port and address). A PORT names a
 *		listener's address by FD, a listener of the caller, and
 *		LOCAL (its address or the wildcard, and its port): the SYNs
 *		of new connections to it are held as a flow's segments are,
 *		so that a service between two listeners of its port (a
 *		checkpoint and its restore) queues its new clients instead
 *		of refusing them. At least one FLOW or PORT.
 *
 *	BATON_GENL_CMD_THAW  { FREEZE_ID, [NETNS_FD, IFINDEX] }
 *		-> { FREEZE_ID, STATS }
 *		The held segments are delivered, in order, to whatever
 *		socket then owns each tuple. With NETNS_FD (a network
 *		namespace of the caller, over which it has CAP_NET_ADMIN)
 *		and IFINDEX (a device there), they enter that namespace as
 *		if received at that device instead: for connections rebuilt
 *		there, whose address moved there meanwhile. DEADLINE_MS
 *		after the freeze the module thaws on its own, in place: the
 *		id is then unknown (-ENOENT).
 *
 *	BATON_GENL_CMD_FREEZE_STATS  { }  -> { STATS }
 *		The netns' counters: freezes and flows in force, segments
 *		held now, delivered, dropped for a cap (overflow) or held and
 *		dropped (device down, netns exit), freezes expired.
 *
 *	BATON_GENL_CMD_CONN_EXPORT (dump)  { FD... }
 *		-> per socket, in the order of the FDs, one or more
 *		   { CONN { INDEX, FD, LOCAL, PEER, ..., STATE, queue bytes } }
 *		The complete repair state of established TCP sockets of the
 *		caller, each put in repair mode (as TCP_REPAIR) with its send
 *		queue selected, so that nothing new leaves it: the caller then
 *		closes it (nothing reaches the peer) or turns repair off. A
 *		socket's queues continue in further CONN nests of its INDEX.
 *
 *	BATON_GENL_CMD_CONN_IMPORT  { CONN..., [FLAGS] }
 *		-> { CONN { INDEX, FD or ERROR }... }
 *		Builds a socket of the caller from each connection (its CONN
 *		nests, adjacent, of one INDEX: the first with every scalar),
 *		all in repair mode first, any failure undoing them all, then
 *		takes each out of repair mode and installs its descriptor.
 *		ERROR (a positive errno) names one that failed after it left
 *		repair mode (its unsent data could not be queued): it was
 *		reset, so that its peer learns. FLAGS: BATON_IMPORT_F_NONLOCAL,
 *		the local addresses need not be the namespace's yet (they move
 *		there after the import, as in a move between namespaces);
 *		BATON_IMPORT_F_REPAIR, each socket goes back into repair mode
 *		(as TCP_REPAIR_ON) before its descriptor is installed, so that
 *		the caller's death closes it silently, and TCP_REPAIR_OFF_NO_WP
 *		lets it go.
 *
 * The kernel validates strictly: an attribute it does not know is refused
 * (-EINVAL with an extended ack), so userspace sends only attributes up to
 * the family's maxattr and drops the others from a newer record. Unknown
 * FLAGS bits are refused with -EINVAL.
 *
 * Values are plain: microseconds and segments, not the kernel's scaled
 * fields, so a record taken on one kernel reads on another.
 */
#ifndef _UAPI_LINUX_BATON_H
#define _UAPI_LINUX_BATON_H

#define BATON_GENL_NAME		"baton"
#define BATON_GENL_VERSION	1

/* The widest window any real path has (segments): the import's bound */
#define BATON_CWND_MAX		1048576
/* Upper bound of every time value (microseconds): TCP_RTO_MAX */
#define BATON_TIME_MAX_US	120000000
/* The longest a freeze lasts before the module thaws it */
#define BATON_DEADLINE_MAX_MS	60000
/* The largest per-flow caps a freeze may ask for */
#define BATON_FLOW_PACKETS_MAX	65536
#define BATON_FLOW_BYTES_MAX	(64 << 20)
/* The largest chunk of a queue in one attribute */
#define BATON_CONN_CHUNK_MAX	65528
/* The largest queue a connection may carry, each */
#define BATON_CONN_QUEUE_MAX	(64 << 20)

enum baton_genl_cmd {
	BATON_GENL_CMD_UNSPEC,
	BATON_GENL_CMD_TCP_EXPORT,
	BATON_GENL_CMD_TCP_IMPORT,
	BATON_GENL_CMD_FREEZE,
	BATON_GENL_CMD_THAW,
	BATON_GENL_CMD_FREEZE_STATS,
	BATON_GENL_CMD_CONN_EXPORT,
	BATON_GENL_CMD_CONN_IMPORT,

	__BATON_GENL_CMD_MAX,
	BATON_GENL_CMD_MAX = __BATON_GENL_CMD_MAX - 1
};

enum baton_genl_attr {
	BATON_GENL_A_UNSPEC,
	BATON_GENL_A_FD,		/* u32: socket fd of the caller */
	BATON_GENL_A_FLAGS,		/* u32: BATON_IMPORT_F_*, CONN_IMPORT's */
	BATON_GENL_A_CWND,		/* u32: segments, 1..snd_cwnd_clamp */
	BATON_GENL_A_SSTHRESH,		/* u32: segments, >= 2 */
	BATON_GENL_A_CWND_CNT,		/* u32: increase counter, cut to cwnd */
	BATON_GENL_A_PRIOR_CWND,	/* u32: cwnd before a reduction, >= 1 */
	BATON_GENL_A_SRTT_US,		/* u32: smoothed RTT */
	BATON_GENL_A_MDEV_US,		/* u32: mean deviation */
	BATON_GENL_A_MDEV_MAX_US,	/* u32: largest mdev this RTT */
	BATON_GENL_A_RTTVAR_US,		/* u32: smoothed mdev_max */
	BATON_GENL_A_RTT_MIN_US,	/* u32: windowed minimum RTT */
	BATON_GENL_A_RTO_US,		/* u32: retransmission timeout */
	BATON_GENL_A_FLOW,		/* nest, repeated: enum baton_flow_attr */
	BATON_GENL_A_FREEZE_ID,		/* u32 */
	BATON_GENL_A_DEADLINE_MS,	/* u32: 1..BATON_DEADLINE_MAX_MS */
	BATON_GENL_A_FLOW_PACKETS,	/* u32: segments held per flow */
	BATON_GENL_A_FLOW_BYTES,	/* u32: their memory (truesize) */
	BATON_GENL_A_STATS,		/* nest: enum baton_stats_attr */
	BATON_GENL_A_CONN,		/* nest, repeated: enum baton_conn_attr */
	BATON_GENL_A_PORT,		/* nest, repeated: enum baton_flow_attr,
					 * FD (a listener) and LOCAL */
	BATON_GENL_A_NETNS_FD,		/* u32: a netns fd of the caller */
	BATON_GENL_A_IFINDEX,		/* u32: a device of that netns */

	__BATON_GENL_A_MAX,
	BATON_GENL_A_MAX = __BATON_GENL_A_MAX - 1
};

/* CONN_IMPORT's FLAGS; any other bit, or FLAGS elsewhere, is refused */
/* the local address is on its way: bound and routed as IP_TRANSPARENT
 * lets a socket be, until connected */
#define BATON_IMPORT_F_NONLOCAL	(1U << 0)
/* installed in repair mode: until the caller commits, a close says nothing */
#define BATON_IMPORT_F_REPAIR	(1U << 1)
#define BATON_IMPORT_F_ALL	(BATON_IMPORT_F_NONLOCAL | BATON_IMPORT_F_REPAIR)

/* A connection frozen by its 4-tuple (FLOW), or a listener's port (PORT) */
enum baton_flow_attr {
	BATON_FLOW_A_UNSPEC,
	BATON_FLOW_A_FD,		/* u32: the caller's socket holding it */
	BATON_FLOW_A_LOCAL,		/* sockaddr_in or sockaddr_in6 */
	BATON_FLOW_A_PEER,		/* the same family */

	__BATON_FLOW_A_MAX,
	BATON_FLOW_A_MAX = __BATON_FLOW_A_MAX - 1
};

/*
 * A connection's repair state. Sequence numbers are of the first byte of
 * each queue; the queues' bytes follow in chunks of at most
 * BATON_CONN_CHUNK_MAX, in order, summing to their *_LEN.
 */
enum baton_conn_attr {
	BATON_CONN_A_UNSPEC,
	BATON_CONN_A_INDEX,		/* u32: position among the connections */
	BATON_CONN_A_FD,		/* u32: the socket (ignored by an import) */
	BATON_CONN_A_ERROR,		/* u32: errno, in an import's reply */
	BATON_CONN_A_LOCAL,		/* sockaddr_in or sockaddr_in6 */
	BATON_CONN_A_PEER,		/* the same family */
	BATON_CONN_A_SND_SEQ,		/* u32: first unacknowledged byte */
	BATON_CONN_A_RCV_SEQ,		/* u32: first unread byte (+1: PEER_FIN) */
	BATON_CONN_A_MSS,		/* u32: the peer's MSS (mss_clamp) */
	BATON_CONN_A_OPTIONS,		/* u32: TCPI_OPT_ TIMESTAMPS SACK WSCALE ECN */
	BATON_CONN_A_SND_WSCALE,	/* u32 */
	BATON_CONN_A_RCV_WSCALE,	/* u32 */
	BATON_CONN_A_TIMESTAMP,		/* u32: the tsval it sends now */
	BATON_CONN_A_WINDOW,		/* struct tcp_repair_window */
	BATON_CONN_A_SENDQ_LEN,		/* u32: sent, unacknowledged bytes */
	BATON_CONN_A_UNSENT_LEN,	/* u32: bytes never sent */
	BATON_CONN_A_RECVQ_LEN,		/* u32: received, unread bytes */
	BATON_CONN_A_SENDQ,		/* bytes, repeated */
	BATON_CONN_A_UNSENT,		/* bytes, repeated */
	BATON_CONN_A_RECVQ,		/* bytes, repeated */
	BATON_CONN_A_STATE,		/* nest: BATON_GENL_A_CWND..RTO_US */
	BATON_CONN_A_PEER_FIN,		/* flag: the peer closed its side
					 * (CLOSE_WAIT); RCV_SEQ counts its
					 * FIN, and the import's socket reads
					 * end of stream after RECVQ */

	__BATON_CONN_A_MAX,
	BATON_CONN_A_MAX = __BATON_CONN_A_MAX - 1
};

/* Counters of a freeze (THAW) or of a netns (FREEZE_STATS), all __u64 */
enum baton_stats_attr {
	BATON_STATS_A_UNSPEC,
	BATON_STATS_A_PAD,
	BATON_STATS_A_FREEZES,		/* in force */
	BATON_STATS_A_FLOWS,		/* frozen */
	BATON_STATS_A_HELD_PACKETS,	/* held now */
	BATON_STATS_A_HELD_BYTES,
	BATON_STATS_A_DELIVERED_PACKETS, /* held, then delivered */
	BATON_STATS_A_DELIVERED_BYTES,
	BATON_STATS_A_OVERFLOW_PACKETS,	/* dropped: over a cap */
	BATON_STATS_A_OVERFLOW_BYTES,
	BATON_STATS_A_DROPPED_PACKETS,	/* held, then dropped: device down, */
	BATON_STATS_A_DROPPED_BYTES,	/* netns exit, no memory */
	BATON_STATS_A_EXPIRED,		/* freezes thawed by their deadline */

	__BATON_STATS_A_MAX,
	BATON_STATS_A_MAX = __BATON_STATS_A_MAX - 1
};

/* The state attributes, in order: what an export returns */
#define BATON_GENL_A_STATE_FIRST	BATON_GENL_A_CWND
#define BATON_GENL_A_STATE_LAST		BATON_GENL_A_RTO_US

#endif /* _UAPI_LINUX_BATON_H */
