/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The baton handover protocol: message types and attributes.
 *
 * Every message on the control socket (AF_UNIX, SOCK_SEQPACKET) is one
 * struct nlmsghdr whose nlmsg_type is a BATON_MSG_* value, followed by
 * netlink-style attributes (struct nlattr: length, type, value, 4-byte
 * aligned). File descriptors travel as SCM_RIGHTS on the same sendmsg().
 *
 * State records (service-wide state, per-connection foreground state) travel
 * in a sealed memfd named by a BATON_MSG_BLOB message. The blob is a sequence
 * of records; each record is a struct nlmsghdr (nlmsg_type = BATON_REC_*),
 * a __u64 record id, then attributes. The application owns the attribute
 * numbers inside BATON_REC_STATE and BATON_REC_CONN records.
 *
 * Compatibility rules, for every reader at every version:
 *  - attributes a reader does not know are skipped;
 *  - a known attribute with a wrong length is an error (-EINVAL);
 *  - flags a reader does not know are an error (-EINVAL);
 *  - numbers are never reused; new ones are appended.
 */
#ifndef BATON_PROTO_H
#define BATON_PROTO_H

#include <linux/types.h>

#define BATON_PROTO_VERSION	2	/* what this library speaks */
#define BATON_PROTO_MIN		2	/* oldest version it still speaks */

#define BATON_MAX_FDS_PER_MSG	253	/* SCM_MAX_FD */
#define BATON_MSG_MAX		65536	/* largest control message */

enum baton_msg_type {
	BATON_MSG_HELLO = 0x10,	/* peer -> serving: who I am, what I read;
				 * a coordinator says its TIMEOUT_MS */
	BATON_MSG_WELCOME,	/* serving -> peer: accepted, what I write */
	BATON_MSG_ERROR,	/* either way: ERRNO, TEXT; the sender gives up */
	BATON_MSG_UPGRADE,	/* coordinator -> old: FLAGS, ROUNDS,
				 * ROUND_BYTES */
	BATON_MSG_UPGRADE_ACK,	/* old -> coordinator, after SOCKETS with the
				 * copies of its listeners and control
				 * socket: STDIO, its stdout and stderr */
	BATON_MSG_SOCKETS,	/* a batch of sockets: SOCK nests + SCM_RIGHTS */
	BATON_MSG_BLOB,		/* a sealed memfd of records: BLOB_KIND, BYTES */
	BATON_MSG_PHASE1_DONE,	/* old -> new: LISTENERS, CONNS, FLAGS */
	BATON_MSG_READY,	/* new -> coordinator: LISTENERS, CONNS */
	BATON_MSG_DEACTIVATE,	/* coordinator -> old: the blackout starts;
				 * DEADLINE_NS, FLAGS */
	BATON_MSG_PHASE2_DONE,	/* old -> new: RECORDS, DEADLINE_NS, FLAGS */
	BATON_MSG_DEACTIVATED,	/* old -> coordinator: RECORDS, BYTES, TIME_NS,
				 * STEPs, ROUNDs, PRECOPY_END */
	BATON_MSG_ACTIVATE,	/* coordinator -> new: FLAGS */
	BATON_MSG_ACTIVE,	/* new -> coordinator and old: TIME_NS, STEPs */
	BATON_MSG_RESUME,	/* coordinator -> old: roll back */
	BATON_MSG_RESUMED,	/* old -> coordinator */
	BATON_MSG_PEER_LOST,	/* new -> coordinator: the old went away */
	BATON_MSG_INFO,		/* serving -> QUERY peer: what it serves */
	BATON_MSG_SYNC,		/* old -> new: say when all before is taken;
				 * new -> old: it is */
	BATON_MSG_EXPECT,	/* coordinator -> old: the new instance is PID */
	BATON_MSG_SUCCESSOR,	/* old -> coordinator: PID connected */
	BATON_MSG_START,	/* coordinator -> new, its first message:
				 * TIMEOUT_MS, BLACKOUT_MS */
	__BATON_MSG_END,
};

enum baton_role {
	BATON_ROLE_SUCCESSOR = 1,	/* the new instance */
	BATON_ROLE_COORDINATOR,		/* batonctl */
	BATON_ROLE_QUERY,		/* batonctl status */
};

enum baton_attr {
	BATON_A_UNSPEC,
	BATON_A_PROTO,		/* u32 */
	BATON_A_PROTO_MIN,	/* u32 */
	BATON_A_ROLE,		/* u32, enum baton_role */
	BATON_A_PID,		/* u32 */
	BATON_A_SERVICE,	/* string */
	BATON_A_APP,		/* string: application name and version */
	BATON_A_STATE_VERSION,	/* u32: the state version the sender writes */
	BATON_A_STATE_COMPAT,	/* u32: the oldest reader that reads it */
	BATON_A_STATE_MIN,	/* u32: the oldest version the sender reads */
	BATON_A_ERRNO,		/* u32, positive errno */
	BATON_A_TEXT,		/* string */
	BATON_A_FLAGS,		/* u32 */
	BATON_A_SOCK,		/* nested, enum baton_sock_attr; repeated */
	BATON_A_BLOB_KIND,	/* u32, enum baton_blob_kind */
	BATON_A_LISTENERS,	/* u32 */
	BATON_A_CONNS,		/* u32 */
	BATON_A_RECORDS,	/* u32 */
	BATON_A_BYTES,		/* u64 */
	BATON_A_TIME_NS,	/* u64, CLOCK_MONOTONIC */
	BATON_A_TIMEOUT_MS,	/* u32: how long a step may take */
	BATON_A_BLACKOUT_MS,	/* u32: how long the blackout may take */
	BATON_A_DEADLINE_NS,	/* u64, CLOCK_MONOTONIC: the blackout's end */
	BATON_A_STDIO,		/* u32: how many of stdout, stderr follow */
	BATON_A_STEP,		/* nested, enum baton_step_attr; repeated */
	BATON_A_ROUNDS,		/* u32: the most rounds of phase 1's state */
	BATON_A_ROUND_BYTES,	/* u64: a round this small ends phase 1's */
	BATON_A_ROUND,		/* nested, enum baton_round_attr; repeated */
	BATON_A_PRECOPY_END,	/* u32, enum baton_precopy_end */
	BATON_A_FREEZE_ID,	/* u32: baton.ko's freeze of the connections
				 * moved by checkpoint (repair mode) */
	BATON_A_CHECKPOINTS,	/* u32: connections moved by checkpoint */
	BATON_A_CKPT_FORMAT,	/* u32, enum baton_ckpt_format: how */
	BATON_A_FREEZE_MS,	/* u32: DEACTIVATE, repair mode: the freeze's
				 * deadline, when the connections wait in a
				 * checkpoint file rather than for a new
				 * instance (at most 60,000) */
	BATON_A_FILE_VERSION,	/* u32: a checkpoint file's format */
	BATON_A_KERNEL,		/* string: the kernel release (uname -r) */
	BATON_A_BOOT_ID,	/* string: /proc/sys/kernel/random/boot_id */
	BATON_A_NETNS,		/* u64: the network namespace's inode */
	BATON_A_GENL_VERSION,	/* u32: baton.ko's family version */
	BATON_A_GENL_MAXATTR,	/* u32: the last attribute baton.ko knows */
	BATON_A_REALTIME_NS,	/* u64, CLOCK_REALTIME */
	BATON_A_CRC32,		/* u32: CRC-32 (zlib's) of what came before */
	BATON_A_TAKES,		/* u32, BATON_TAKES_*: what a new instance
				 * can take (a reader uses the bits it
				 * knows: it states, it asks nothing) */
	BATON_A_EARLY_RECORDS,	/* u32: connection records sent in phase 1 */
	__BATON_A_MAX,
};
#define BATON_A_MAX (__BATON_A_MAX - 1)

enum baton_sock_attr {
	BATON_SOCK_A_UNSPEC,
	BATON_SOCK_A_ID,	/* u64, the application's id */
	BATON_SOCK_A_KIND,	/* u32, enum baton_sock_kind */
	BATON_SOCK_A_LOCAL,	/* binary, struct sockaddr_*; if absent, the
				 * receiver reads it off the socket */
	BATON_SOCK_A_PEER,	/* binary, struct sockaddr_* (connections) */
	BATON_SOCK_A_V6ONLY,	/* u32: IPV6_V6ONLY (checkpoint files) */
	BATON_SOCK_A_FILE_FLAGS, /* u32: O_NONBLOCK or 0 (checkpoint files) */
	__BATON_SOCK_A_MAX,
};
#define BATON_SOCK_A_MAX (__BATON_SOCK_A_MAX - 1)

enum baton_sock_kind {
	BATON_SOCK_LISTENER = 1,
	BATON_SOCK_CONN,
	BATON_SOCK_CONTROL,	/* the control socket: the library's own */
};

/* One step of the blackout, as the instance that took it timed it */
enum baton_step_attr {
	BATON_STEP_A_UNSPEC,
	BATON_STEP_A_NAME,	/* string */
	BATON_STEP_A_NS,	/* u64: how long it took */
	__BATON_STEP_A_MAX,
};
#define BATON_STEP_A_MAX (__BATON_STEP_A_MAX - 1)

/*
 * One round of phase 1's state, as the old instance sent it: the first is
 * the snapshot (save_state), each next one what changed during the one
 * before (save_round).
 */
enum baton_round_attr {
	BATON_ROUND_A_UNSPEC,
	BATON_ROUND_A_RECORDS,	/* u32 */
	BATON_ROUND_A_BYTES,	/* u64 */
	BATON_ROUND_A_NS,	/* u64: how long it took, serving between parts */
	__BATON_ROUND_A_MAX,
};
#define BATON_ROUND_A_MAX (__BATON_ROUND_A_MAX - 1)

/* Why the rounds of phase 1 ended, and the blackout began */
enum baton_precopy_end {
	BATON_PRECOPY_FIT = 1,	/* the last round fit ROUND_BYTES: the
				 * blackout carries what changed during it */
	BATON_PRECOPY_OUTRUN,	/* the rounds did not shrink, or ROUNDS were
				 * done: writes outran the copy, and the
				 * blackout carries a round's worth of them */
	BATON_PRECOPY_UNTRACKED, /* the application has no save_round: the
				  * blackout carries every change since the
				  * snapshot began */
};

/* BATON_MSG_UPGRADE flags */
#define BATON_UPGRADE_F_DRAIN	(1U << 0) /* listeners only; old drains */
#define BATON_UPGRADE_F_OWN_LISTENERS (1U << 1) /* the new brings its own
						 * listeners: connections only */
#define BATON_UPGRADE_F_REPAIR	(1U << 2) /* connections move by checkpoint
					   * and restore (BATON_BLOB_TCP),
					   * not by descriptor */
#define BATON_UPGRADE_F_NETNS	(1U << 3) /* with REPAIR: the new runs in
					   * another network namespace. The
					   * old freezes its listeners' ports
					   * with its connections; the new
					   * rebuilds them before their
					   * address is there, and leaves the
					   * freeze to the coordinator, which
					   * moves the address and thaws it
					   * into the new namespace */
#define BATON_UPGRADE_F_ALL	(BATON_UPGRADE_F_DRAIN | \
				 BATON_UPGRADE_F_OWN_LISTENERS | \
				 BATON_UPGRADE_F_REPAIR | \
				 BATON_UPGRADE_F_NETNS)

/*
 * In repair mode, the old instance's freeze of its connections outlasts
 * the blackout's deadline (BATON_A_DEADLINE_NS) by this much, so that it
 * never lets a segment through while no socket owns its tuple; the
 * coordinator waits for a new instance that is activating (it holds the
 * service's lock) at most half of it past the deadline.
 */
#define BATON_FREEZE_SLACK_MS	2000

/* BATON_MSG_START flags: those the new must know before phase 1 */
#define BATON_START_F_ALL	BATON_UPGRADE_F_NETNS

/* BATON_MSG_PHASE1_DONE flags: those of the upgrade the new must know */
#define BATON_PHASE1_F_ALL	(BATON_UPGRADE_F_REPAIR | BATON_UPGRADE_F_NETNS)

/* BATON_MSG_DEACTIVATE and BATON_MSG_PHASE2_DONE flags */
#define BATON_DEACTIVATE_F_DIRECT (1U << 0) /* the new activates as soon
					     * as it has phase 2: the
					     * coordinator consents now */
#define BATON_DEACTIVATE_F_ALL	BATON_DEACTIVATE_F_DIRECT

/* BATON_MSG_ACTIVATE flags, and those ops->activate() gets */
#define BATON_ACTIVATE_F_PEER_LOST (1U << 0) /* the old went away before
					      * phase 2 was whole */
#define BATON_ACTIVATE_F_STATE_PARTIAL (1U << 1) /* with PEER_LOST: not even
						  * phase 1's state is whole */
#define BATON_ACTIVATE_F_ALL	(BATON_ACTIVATE_F_PEER_LOST | \
				 BATON_ACTIVATE_F_STATE_PARTIAL)

/*
 * BATON_A_TAKES, in a new instance's HELLO: it loads connection records in
 * phase 1 (a connection's record from the blackout then replaces its
 * phase-1 one) and takes BATON_REC_CONN_CLOSED records
 */
#define BATON_TAKES_CONNS_EARLY	(1U << 0)

enum baton_blob_kind {
	BATON_BLOB_STATE = 1,	/* phase 1: service-wide state snapshot */
	BATON_BLOB_DELTA,	/* phase 2: service-wide changes since */
	BATON_BLOB_CONNS,	/* phase 2: per-connection foreground state;
				 * also phase 1, to a new instance that
				 * takes them early (BATON_TAKES_*) */
	BATON_BLOB_TCP,		/* phase 2, repair mode: the connections'
				 * TCP checkpoints, BATON_REC_TCP */
};

enum baton_rec_type {
	BATON_REC_BEGIN = 0x10,	/* SERVICE, STATE_VERSION, BLOB_KIND */
	BATON_REC_STATE,	/* application attributes */
	BATON_REC_CONN,		/* id = connection id; application attributes */
	BATON_REC_END,		/* RECORDS: how many records came between */
	BATON_REC_TCP,		/* id = connection id; enum baton_ckpt_attr */
	BATON_REC_FILE,		/* a checkpoint file's first: enum baton_attr */
	BATON_REC_LISTENER,	/* id = listener id; enum baton_sock_attr */
	BATON_REC_FILE_END,	/* its last: BYTES and CRC32 of all before */
	BATON_REC_CONN_CLOSED,	/* id = connection id, no attributes, in a
				 * CONNS blob of the blackout: closed since
				 * its record went in phase 1 */
};

/*
 * A checkpoint file (batonctl checkpoint, restore, dump): a service's
 * state and established connections while no instance runs. Records as in
 * a blob, one after another:
 *	FILE	FILE_VERSION, SERVICE, APP, PID, the versions (PROTO ...
 *		STATE_MIN), REALTIME_NS and DEADLINE_NS (CLOCK_MONOTONIC:
 *		when baton.ko thaws the connections by itself), FREEZE_ID,
 *		FREEZE_MS, CKPT_FORMAT, LISTENERS, CONNS, RECORDS (blobs),
 *		and what the kernel's encodings depend on: KERNEL, BOOT_ID,
 *		NETNS, GENL_VERSION, GENL_MAXATTR; FLAGS (BATON_CHECKPOINT_
 *		F_*), if any
 *	LISTENER  one per listening socket: LOCAL, V6ONLY, FILE_FLAGS
 *	each blob the old instance handed over, whole (BEGIN ... END), in
 *		the order it sent them: STATE and DELTAs, then CONNS and TCP
 *	FILE_END  BYTES and CRC32 of everything before it
 * A reader refuses another FILE_VERSION, and skips attributes it does not
 * know, as everywhere.
 */
#define BATON_FILE_VERSION	1

/*
 * The FILE record's FLAGS (and baton_checkpoint_opts.flags):
 * RESTART	made to outlive the kernel (batonctl kexec): another boot may
 *		restore it. Its connections were let go of in repair mode,
 *		and whoever restarts the kernel keeps their addresses down
 *		until the restore: no socket there, no segment let in. Its
 *		freeze, netns and deadline then count for nothing; baton.ko's
 *		family must still be the version that exported them.
 * A reader refuses a file with a flag it does not know.
 */
#define BATON_CHECKPOINT_F_RESTART	(1U << 0)
#define BATON_CHECKPOINT_F_ALL		BATON_CHECKPOINT_F_RESTART

/*
 * A BATON_REC_TCP record: one connection's TCP checkpoint. The attributes
 * are the library's (not the application's); DATA is split into
 * attributes of at most 65,528 bytes, concatenated on reading.
 */
enum baton_ckpt_attr {
	BATON_CKPT_A_UNSPEC,
	BATON_CKPT_A_FORMAT,	/* u32, enum baton_ckpt_format */
	BATON_CKPT_A_FLAGS,	/* u32: none defined yet; any set is -EINVAL */
	BATON_CKPT_A_LOCAL,	/* binary, struct sockaddr_in or _in6 */
	BATON_CKPT_A_PEER,	/* binary, the same family */
	BATON_CKPT_A_DATA,	/* binary, repeated: the checkpoint itself */
	BATON_CKPT_A_FILE_FLAGS, /* u32: the descriptor's O_NONBLOCK, which
				  * the restored one gets too */
	__BATON_CKPT_A_MAX,
};
#define BATON_CKPT_A_MAX (__BATON_CKPT_A_MAX - 1)

enum baton_ckpt_format {
	BATON_CKPT_MODULE = 1,	/* baton.ko's CONN nests (CONN_EXPORT of
				 * family version 1), one connection's */
	BATON_CKPT_TCP,		/* baton_tcp_checkpoint()'s record
				 * (enum baton_tcp_attr) */
};

#endif /* BATON_PROTO_H */
