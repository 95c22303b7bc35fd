/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * The generic netlink family of baton.ko: export and import the part of a
 * TCP connection's state that TCP_REPAIR cannot carry (congestion window,
 * slow start threshold, RTT estimator, RTO).
 *
 * Shared by the module and libbaton: __u32 types only.
 *
 *	resolve the family "baton" (CTRL_CMD_GETFAMILY); its version is
 *	BATON_GENL_VERSION and its maxattr tells which attributes it knows
 *
 *	BATON_GENL_CMD_TCP_EXPORT  { FD }
 *		-> { FD, CWND, SSTHRESH, ..., RTO_US }
 *		The socket is one of the caller's open file descriptors, in
 *		the netns of the netlink socket; any TCP state but LISTEN
 *		and CLOSE.
 *
 *	BATON_GENL_CMD_TCP_IMPORT  { FD, [FLAGS], [CWND], [SSTHRESH], ... }
 *		The socket must be in repair mode (TCP_REPAIR) and connected
 *		(connect() in repair mode). Every value is checked before
 *		any is written: on error nothing changes. What an export
 *		produced always imports: values the socket cannot take are
 *		brought within what it can (see Documentation/module.rst).
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

enum baton_genl_cmd {
	BATON_GENL_CMD_UNSPEC,
	BATON_GENL_CMD_TCP_EXPORT,
	BATON_GENL_CMD_TCP_IMPORT,

	__BATON_GENL_CMD_MAX,
	BATON_GENL_CMD_MAX = __BATON_GENL_CMD_MAX - 1
};

enum baton_genl_attr {
	BATON_GENL_A_UNSPEC,
	BATON_GENL_A_FD,		/* u32: socket fd of the caller */
	BATON_GENL_A_FLAGS,		/* u32: none defined yet, must be 0 */
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

	__BATON_GENL_A_MAX,
	BATON_GENL_A_MAX = __BATON_GENL_A_MAX - 1
};

/* The state attributes, in order: what an export returns */
#define BATON_GENL_A_STATE_FIRST	BATON_GENL_A_CWND
#define BATON_GENL_A_STATE_LAST		BATON_GENL_A_RTO_US

#endif /* _UAPI_LINUX_BATON_H */
