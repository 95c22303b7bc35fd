/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libbaton: hand a running TCP service, listening and established sockets
 * with their state, to its next version. This header is the handover's:
 * baton_steer.h steers new connections between generations of listeners,
 * baton_tcp.h takes one TCP connection out of its descriptor.
 *
 * Three parties take part, the old instance, the new one and the
 * coordinator, with two kinds of handle:
 *
 *   struct baton_service   an instance of the application (old or new)
 *   struct baton_upgrade   the coordinator (batonctl) driving one upgrade
 *
 * The library never prints: messages go to the log callback, if any. It
 * keeps no global state. Every function returns 0 (or a count) on success
 * and a negative errno on failure. A baton_*_open() sets its handle only if
 * it succeeds; why it failed, unless its arguments were wrong (-EINVAL) or
 * memory ran out (-ENOMEM), has gone to the log callback.
 *
 * The application's side, old and new alike:
 *
 *	opts = { .service = "kvd", .ops = &ops, .app = app,
 *		 .state_version = 2, .state_compat = 1, .state_min = 1 };
 *	baton_service_open(&svc, &opts);
 *	    // Started by batonctl as the new instance: blocks while it takes
 *	    // over, calling ops->adopt_socket() for every listener and
 *	    // connection, ops->load_state() and ops->load_conn() for every
 *	    // record, then ops->activate(). Returns once it serves.
 *	    // Started by hand: takes the service's lock and control socket.
 *	if (!baton_service_adopted(svc)) {
 *		n = baton_listeners_passed(svc, "listener", fds, max);
 *		if (n <= 0)		// not restarted after a crash
 *			open listeners;
 *		if (the unit keeps a store, and n <= 0)
 *			baton_listener_store(svc, fd, "listener") each;
 *	}
 *	add baton_service_fd(svc) to the event loop;
 *	loop:
 *		if (baton_service_paused(svc))
 *			wait on baton_service_fd(svc) only;	// blackout,
 *					// or the new one holds the lock
 *		else
 *			wait on everything;
 *		if (baton_service_fd(svc) is readable)
 *			if (baton_service_dispatch(svc) == BATON_EXIT)
 *				break;
 *	baton_service_close(svc);
 *
 *   Under a service manager ($NOTIFY_SOCKET set; sd_notify(3), the
 *   environment left as it is): the first baton_service_dispatch() of an
 *   instance started fresh says READY=1 (baton_service_fd() is readable at
 *   once: open the listeners before that first call); the old instance
 *   says RELOADING=1 when an upgrade begins; the new one says in a STATUS=
 *   that it is ready to take over, then MAINPID= its pid and READY=1
 *   before it serves; an old one that serves on after all says the same
 *   of itself.
 *
 *   Inside baton_service_dispatch() the old instance is called back:
 *	phase 1:  ops->export_sockets()	baton_export_socket() for every
 *					listener and connection, on each of
 *					a few turns (the library sends a
 *					few hundred a turn, those not sent
 *					yet), serving in between; accept on
 *		  ops->save_state()	snapshot service-wide state, start
 *					tracking changes; it may return 1 to
 *					be called again on a later turn, and
 *					serve in between (a large state)
 *		  ops->save_round()	optional, in rounds until one is
 *					small: a round begins if none is
 *					under way (what changed since the
 *					last began is this round's; a new
 *					change set starts), and writes it,
 *					or a part and returns 1, as above
 *		  ops->export_sockets()	again, with BATON_EXPORT_F_FINAL, once
 *					the new instance has taken the first
 *					pass and the rounds: stop accept(),
 *					list them all again (the library
 *					sends only those not sent before)
 *		  ops->save_conns()	only if the application has
 *					save_conns_changed() and the new
 *					instance has drop_conn(): one record
 *					per live connection, right after the
 *					sockets' final pass, the last of
 *					phase 1; from here on the
 *					application notes which connections
 *					change, open or close
 *	phase 2:  ops->deactivate()	stop reading and writing
 *		  ops->save_conns()	one record per live connection; or,
 *					if it ran in phase 1,
 *		  ops->save_conns_changed()  a record for each connection
 *					that changed or opened since, and
 *					baton_rec_closed() for each that
 *					had a record then and is closed now:
 *					idle connections cost nothing here
 *		  ops->save_delta()	service-wide changes since the last
 *					round (or the snapshot) began
 *		  ops->export_sockets()	repair mode (BATON_UPGRADE_F_REPAIR)
 *					only, once more with
 *					BATON_EXPORT_F_FINAL: the connections
 *					as they are now (for a checkpoint
 *					file, the listeners too, whose ports
 *					baton.ko then holds: its upgrade
 *					flags lack OWN_LISTENERS in this
 *					call). The library
 *					checkpoints and lets go of them in
 *					place (connect(AF_UNSPEC) in repair
 *					mode): each descriptor stays the
 *					application's, closed, until
 *					terminate() closes it or resume()
 *					finds it rebuilt as it was
 *		  ops->release()	single-access resources of its own
 *	then one of
 *		  ops->terminate()	the new is active: close() every socket
 *					(never shutdown()); dispatch returns
 *					BATON_EXIT. What is left to do
 *					should not slow the new one down:
 *					the application may lower its own
 *					priority here
 *		  ops->drain()		drain mode: close listeners only
 *		  ops->resume()		rollback: accept and serve again
 *
 * The coordinator:
 *
 *	if (baton_upgrade_open(&up, &opts))	// attach to the old instance
 *		give up;			// the log callback said why
 *	while ((phase = baton_upgrade_step(up)) > 0 &&
 *	       phase != BATON_PHASE_DONE)
 *		show progress;		// journal the new pid at SPAWNED:
 *					// each step returns it first, even
 *					// when the old went away meanwhile
 *	report = baton_upgrade_report(up);	// also after a failure
 *	baton_upgrade_close(up);
 *
 * Records: the application writes its state as attributes it numbers itself
 * (1 .. 0x3fff), with baton_rec_put_*() between baton_rec_begin() and
 * baton_rec_end(), and reads them back with baton_rec_parse() and libmnl's
 * mnl_attr_get_*(). Attributes it does not know must be skipped, so that
 * version N reads what N+1 wrote and N+1 reads N.
 */
#ifndef BATON_H
#define BATON_H

#include <stdbool.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <linux/types.h>
#include <libmnl/libmnl.h>

#include "baton_proto.h"

/* The library's API; everything else in it is hidden (-fvisibility=hidden) */
#define BATON_API __attribute__((visibility("default")))

#define BATON_EXIT	1	/* baton_service_dispatch(): the app should exit */

/* Where control sockets live, when neither run_dir nor $BATON_RUN_DIR says */
#define BATON_RUN_DIR		"/run/baton"

/* The timeouts' defaults, in milliseconds, where an option says 0 */
#define BATON_UPGRADE_TIMEOUT_MS 5000	/* each step of an upgrade */
#define BATON_WELCOME_TIMEOUT_MS 10000	/* the new instance's hello answered */
#define BATON_PEER_TIMEOUT_MS	2000	/* a peer takes a message sent to it */
#define BATON_QUERY_TIMEOUT_MS	2000	/* baton_query() answered */
#define BATON_BLACKOUT_TIMEOUT_MS 2000	/* the blackout: the old stops, the
					 * new activates; past this, the
					 * old serves again */
/* The most any of them may be: an hour (twice that still fits an int) */
#define BATON_TIMEOUT_MS_MAX	3600000

/*
 * Phase 1's rounds of state (ops->save_round()), where the upgrade's
 * options say 0: at most this many, the snapshot the first; a round this
 * small or smaller is the last, and the blackout carries only what changes
 * during it. Rounds that do not shrink mean writes outrun the copy: they
 * end too, and the blackout carries a round's worth of changes (the report
 * says BATON_PRECOPY_OUTRUN).
 */
#define BATON_PRECOPY_ROUNDS	8
#define BATON_PRECOPY_BYTES	(256U << 10)
#define BATON_MAX_ROUNDS	32	/* what precopy_rounds may say */

/* export_sockets()'s flags; the upgrade's own, BATON_UPGRADE_F_*, come apart */
#define BATON_EXPORT_F_FINAL	(1U << 0)	/* the last pass */

enum baton_log_level {
	BATON_LOG_ERR,
	BATON_LOG_WARN,
	BATON_LOG_INFO,
	BATON_LOG_DEBUG,
};

typedef void (*baton_log_fn)(void *ctx, enum baton_log_level level,
			     const char *msg);

struct baton_service;
struct baton_upgrade;
struct baton_export;
struct baton_rec_writer;
struct baton_rec;

struct baton_sockinfo {
	__u64 id;
	__u32 kind;			/* enum baton_sock_kind */
	struct sockaddr_storage local;
	struct sockaddr_storage peer;	/* connections only */
	socklen_t local_len;
	socklen_t peer_len;
};

struct baton_app_ops {
	/*
	 * old instance, phase 1. upgrade_flags: BATON_UPGRADE_F_* of this
	 * upgrade; flags: BATON_EXPORT_F_* of this pass
	 */
	int (*export_sockets)(void *app, struct baton_export *exp,
			      unsigned int upgrade_flags, unsigned int flags);
	int (*save_state)(void *app, struct baton_rec_writer *w);
	/* old instance, phase 2 */
	void (*deactivate)(void *app);
	int (*save_conns)(void *app, struct baton_rec_writer *w);
	int (*save_delta)(void *app, struct baton_rec_writer *w);
	int (*release)(void *app);			/* optional */
	/* old instance, afterwards */
	void (*resume)(void *app);
	void (*terminate)(void *app);
	void (*drain)(void *app);			/* optional */
	/*
	 * new instance; the fd belongs to the application from here on. In
	 * repair mode connections come at activation, rebuilt from their
	 * checkpoints (CAP_NET_ADMIN), their records loaded right after.
	 */
	int (*adopt_socket)(void *app, int fd, const struct baton_sockinfo *si);
	int (*load_state)(void *app, const struct baton_rec *rec);
	int (*load_conn)(void *app, const struct baton_rec *rec);
	int (*acquire)(void *app);			/* optional */
	/*
	 * flags: BATON_ACTIVATE_F_*. Without PEER_LOST, a connection that
	 * got no record was closed by the old one in phase 1: close it.
	 * With PEER_LOST the old instance went away before phase 2 was
	 * whole: no connection can go on exactly, so close every one (its
	 * client sees the close and retries, never a desynchronised
	 * stream), and the service-wide state lacks the old's last changes
	 * (with STATE_PARTIAL, part of phase 1's too). An error refuses to
	 * serve on it.
	 */
	int (*activate)(void *app, unsigned int flags);
	/*
	 * optional; old instance, phase 1, once save_state() is whole: a
	 * round begins if none is under way (what changed since the last
	 * round, or the snapshot, began is this round's, and a new change
	 * set starts); writes the round, or a part of it and returns 1 to
	 * be called again, serving in between. Without it, the blackout
	 * carries every change since the snapshot began (save_delta()).
	 */
	int (*save_round)(void *app, struct baton_rec_writer *w);
	/*
	 * optional; old instance, phase 2, where the new instance has
	 * drop_conn() (else save_conns() runs there, as without it):
	 * save_conns() ran in phase 1; records of the connections that
	 * changed or opened since, and baton_rec_closed() for those that
	 * had a record then and are closed now.
	 */
	int (*save_conns_changed)(void *app, struct baton_rec_writer *w);
	/*
	 * optional; new instance. Given, connection records may come in
	 * phase 1 (the old has save_conns_changed()): load_conn() may then
	 * come twice for one connection, the blackout's record replacing
	 * phase 1's; and this, for one the old closed since its record came:
	 * treat it as one that got no record (activate() closes it).
	 */
	int (*drop_conn)(void *app, __u64 id);
};

struct baton_service_opts {
	const char *service;	/* [A-Za-z0-9_.-], at most 64 */
	const char *run_dir;	/* NULL: baton_run_dir(NULL) */
	const char *app_name;	/* "kvd 2": shown by batonctl status */
	__u32 state_version;	/* the state version this build writes */
	__u32 state_compat;	/* the oldest version that reads it */
	__u32 state_min;	/* the oldest version this build reads */
	/*
	 * How long a peer may keep the serving instance waiting to take a
	 * message (0: BATON_PEER_TIMEOUT_MS), up to BATON_TIMEOUT_MS_MAX;
	 * else -EINVAL. Started by the coordinator, an instance waits for
	 * the serving one's answer BATON_WELCOME_TIMEOUT_MS.
	 */
	int timeout_ms;
	const struct baton_app_ops *ops;
	void *app;
	baton_log_fn log;
	void *log_ctx;
};

BATON_API int baton_service_open(struct baton_service **svc,
				 const struct baton_service_opts *opts);
BATON_API bool baton_service_adopted(const struct baton_service *svc);
BATON_API bool baton_service_paused(const struct baton_service *svc);
BATON_API int baton_service_fd(const struct baton_service *svc);
BATON_API int baton_service_dispatch(struct baton_service *svc);
BATON_API void baton_service_close(struct baton_service *svc);

/*
 * Under systemd, listeners that outlive a crash: keep fd, a listening
 * stream socket, in the service manager's file descriptor store under
 * name (FDSTORE=1, FDNAME=; the unit sets FileDescriptorStoreMax=, or the
 * manager drops it and logs so). 1 if sent, 0 without $NOTIFY_SOCKET.
 */
BATON_API int baton_listener_store(struct baton_service *svc, int fd,
				   const char *name);
/*
 * The listening sockets named name that the service manager passed
 * ($LISTEN_FDS, $LISTEN_FDNAMES: its store, after a restart) into fds, at
 * most max: how many (0: none). They are the application's from here on.
 */
BATON_API int baton_listeners_passed(struct baton_service *svc,
				     const char *name, int *fds, int max);

/* Inside ops->export_sockets(): hand over one socket (a copy is sent). */
BATON_API int baton_export_socket(struct baton_export *exp, int fd, __u64 id,
				  enum baton_sock_kind kind);

/* Writing records, inside ops->save_*(). */
BATON_API int baton_rec_begin(struct baton_rec_writer *w, __u64 id);
BATON_API int baton_rec_put_u32(struct baton_rec_writer *w, __u16 type,
				__u32 v);
BATON_API int baton_rec_put_u64(struct baton_rec_writer *w, __u16 type,
				__u64 v);
BATON_API int baton_rec_put_str(struct baton_rec_writer *w, __u16 type,
				const char *s);
/* Any length: split into attributes of one type, concatenated on reading. */
BATON_API int baton_rec_put_bytes(struct baton_rec_writer *w, __u16 type,
				  const void *buf, size_t len);
BATON_API int baton_rec_end(struct baton_rec_writer *w);
/* Inside ops->save_conns_changed(): connection id is closed (no record). */
BATON_API int baton_rec_closed(struct baton_rec_writer *w, __u64 id);

/* Reading records, inside ops->load_*(). */
BATON_API __u64 baton_rec_id(const struct baton_rec *rec);
BATON_API __u32 baton_rec_version(const struct baton_rec *rec);
BATON_API int baton_rec_parse(const struct baton_rec *rec, mnl_attr_cb_t cb,
			      void *data);

/* The coordinator. */
enum baton_phase {
	BATON_PHASE_NONE,
	BATON_PHASE_ATTACHED,		/* connected to the old instance */
	BATON_PHASE_SPAWNED,		/* the new instance runs */
	BATON_PHASE_READY,		/* phase 1 done: the new is ready */
	BATON_PHASE_DEACTIVATED,	/* phase 2 done: the old is stopped */
	BATON_PHASE_ACTIVE,		/* the new serves */
	BATON_PHASE_DONE,		/* the old has exited */
	BATON_PHASE_ROLLED_BACK,	/* the old serves again */
	BATON_PHASE_FAILED,		/* neither could be kept serving */
	__BATON_PHASE_END,
};

BATON_API const char *baton_phase_name(enum baton_phase phase);

struct baton_upgrade_opts {
	const char *service;
	const char *run_dir;	/* as in baton_service_opts */
	char *const *argv;	/* the new instance's command */
	/* its stdout and stderr; NULL: those of the old instance */
	const char *log_path;
	int timeout_ms;		/* each step; 0: BATON_UPGRADE_TIMEOUT_MS */
	int blackout_ms;	/* 0: BATON_BLACKOUT_TIMEOUT_MS */
	unsigned int flags;	/* BATON_UPGRADE_F_* */
	baton_log_fn log;
	void *log_ctx;
	/* phase 1's rounds, 1 to BATON_MAX_ROUNDS; 0: BATON_PRECOPY_ROUNDS */
	unsigned int precopy_rounds;
	__u64 precopy_bytes;	/* 0: BATON_PRECOPY_BYTES */
	/*
	 * Into another network namespace (repair mode, baton.ko;
	 * BATON_UPGRADE_F_NETNS is set from these): argv starts in netns (a
	 * path that opens it: /run/netns/NAME, /proc/PID/ns/net), and once
	 * it is active, the service address netns_addr ("ADDR/PLEN") moves
	 * from the coordinator's namespace, which must be the old
	 * instance's, to device netns_dev there, announced (a gratuitous
	 * ARP, an unsolicited neighbour advertisement); then what arrived
	 * for the connections meanwhile is thawed into it. The caller
	 * needs CAP_NET_ADMIN over both namespaces; its thread enters netns
	 * for as long as it takes to open a socket there, and comes back.
	 */
	const char *netns;
	const char *netns_addr;
	const char *netns_dev;
};

/*
 * One step of the blackout, timed by the instance that took it; in a
 * finished upgrade's report, placed on the blackout's critical path, with
 * the coordinator's steps ("ctl") for the messages between the instances
 * and the wakeups they take, so that the steps add up to the blackout.
 */
#define BATON_MAX_STEPS	24
struct baton_step {
	char name[24];
	char who[4];		/* "old", "new" or "ctl" */
	__u64 ns;
};

struct baton_upgrade_report {
	enum baton_phase phase;
	pid_t old_pid;
	pid_t new_pid;
	char old_app[64];
	char new_app[64];
	__u32 listeners;
	__u32 conns;
	__u32 records;
	__u64 record_bytes;
	/* CLOCK_MONOTONIC when each phase was reached; 0 if it was not */
	__u64 t_ns[__BATON_PHASE_END];
	__u64 phase1_start_ns;	/* the new instance's hello was welcomed */
	__u64 deactivate_ns;	/* DEACTIVATE sent: the blackout starts */
	__u64 active_ns;	/* ACTIVE received: the blackout ends */
	__u64 activated_ns;	/* when the new instance says it activated */
	bool old_lost;		/* the old went away; the new took over */
	__u32 activate_flags;	/* BATON_ACTIVATE_F_* the new activated with */
	struct baton_step steps[BATON_MAX_STEPS];
	unsigned int nsteps;
	/* phase 1's rounds of state, the snapshot first, as the old sent them */
	struct baton_round {
		__u32 records;
		__u64 bytes;
		__u64 ns;
	} rounds[BATON_MAX_ROUNDS];
	unsigned int nrounds;
	__u32 precopy_end;	/* enum baton_precopy_end; 0: not said */
	int error;		/* negative errno of a failure, or 0 */
	char reason[512];	/* what went wrong, for people */
	unsigned int flags;	/* BATON_UPGRADE_F_* of this upgrade */
	__u32 checkpoints;	/* repair mode: connections the old instance
				 * checkpointed (conns: those the new one
				 * holds, restored) */
	__u32 ckpt_format;	/* and how: enum baton_ckpt_format, 0 if none */
	/*
	 * connection records sent in phase 1 (save_conns_changed()): then
	 * records counts only those the blackout carried, of connections
	 * that changed, opened or closed since
	 */
	__u32 early_records;
	/*
	 * Into another network namespace: the address moved (it was added
	 * there, announced, removed here), and the held segments thawed
	 * into it, after ACTIVE; how many, and what each step took
	 */
	bool netns_moved;
	__u64 netns_delivered;	/* segments held here, delivered there */
	__u64 netns_add_ns, netns_announce_ns, netns_del_ns, netns_thaw_ns;
};

BATON_API int baton_upgrade_open(struct baton_upgrade **up,
				 const struct baton_upgrade_opts *opts);
BATON_API int baton_upgrade_step(struct baton_upgrade *up);
BATON_API const struct baton_upgrade_report *
baton_upgrade_report(const struct baton_upgrade *up);
BATON_API void baton_upgrade_close(struct baton_upgrade *up);

/*
 * No overlap (repair mode; CAP_NET_ADMIN and baton.ko): the serving
 * instance's established connections and state go into a file, and it
 * exits, before the next instance starts from that file.
 *
 *	baton_checkpoint_save(&opts, &report);	// batonctl checkpoint
 *	    // the old instance is gone; its connections are frozen in
 *	    // baton.ko until opts.freeze_ms after the checkpoint
 *	baton_checkpoint_restore(&opts, &report);	// batonctl restore
 *	    // opts.argv serves them, and what their peers sent meanwhile
 *
 *	baton_checkpoint_load(&ck, path, log, log_ctx);	// batonctl dump
 *	info = baton_checkpoint_info(ck);
 *	for (i = 0; !baton_checkpoint_sock(ck, i, &s); i++)
 *		...;
 *	baton_checkpoint_free(ck);
 *
 * save is an upgrade whose new instance is the file: the old instance
 * hands over as to a successor (listeners' addresses, its state, its
 * connections frozen and checkpointed), the file is written, and the old
 * one, told the handover is done, exits, closing its sockets in repair
 * mode: nothing reaches the peers. Until the file is whole on disk
 * (renamed into place), any failure leaves the old instance serving, as a
 * failed upgrade does. restore checks the whole file before it makes
 * anything (a bad one is refused: the cause logged, no socket made, the
 * file left as it is), opens the listeners at their addresses and the
 * control socket, starts argv and hands over to it as the old instance
 * would: the state, then the connections, which it restores and thaws.
 * The report is an upgrade's: phase BATON_PHASE_DONE when it went through.
 */
struct baton_checkpoint_opts {
	const char *service;
	const char *run_dir;	/* as in baton_service_opts */
	const char *path;	/* the checkpoint file */
	char *const *argv;	/* restore: the new instance's command */
	const char *log_path;	/* restore: its stdout and stderr; NULL:
				 * /dev/null */
	int timeout_ms;		/* each step; 0: BATON_UPGRADE_TIMEOUT_MS */
	/*
	 * save: how long baton.ko holds the connections frozen, from the
	 * checkpoint on, in milliseconds; 0: the most it allows, 60,000.
	 * Past it the module thaws them by itself: what their peers sent
	 * meets no socket, and the peers are reset. Restore before then.
	 */
	unsigned int freeze_ms;
	baton_log_fn log;
	void *log_ctx;
	/*
	 * save: BATON_CHECKPOINT_F_* (baton_proto.h); RESTART for a file
	 * that a later boot restores (batonctl kexec). Unknown: -EINVAL.
	 */
	unsigned int flags;
};

BATON_API int baton_checkpoint_save(const struct baton_checkpoint_opts *opts,
				    struct baton_upgrade_report *report);
BATON_API int baton_checkpoint_restore(const struct baton_checkpoint_opts *opts,
				       struct baton_upgrade_report *report);

/*
 * After a restart (a file made with BATON_CHECKPOINT_F_RESTART, restored
 * in a later boot), in the order the boot runs them:
 *
 *	baton_checkpoint_hold(&opts, &id);	// batonctl hold, early
 *	    // the network comes up: the peers' segments wait in baton.ko
 *	baton_checkpoint_restore(&opts, &report);	// thaws the hold
 *
 * hold freezes every connection of the file by its 4-tuple, and its
 * listeners' ports (new clients wait), for opts.freeze_ms (0: 60,000),
 * its listeners opened for the while with IP_FREEBIND (their addresses
 * need not be up yet), and notes the freeze in the service's run
 * directory, where restore finds it, thaws it and removes the note (a
 * file without connections or listeners holds nothing: *freeze_id 0).
 * Nothing else is made or changed. restore refuses a
 * file of another boot with connections and no hold: they need their
 * routes, so the network must be up, and without a hold the new kernel
 * would reset their peers.
 */
BATON_API int baton_checkpoint_hold(const struct baton_checkpoint_opts *opts,
				    __u32 *freeze_id);
/*
 * Gives up on a held checkpoint's connections (a restore that failed for
 * good): the hold is thawed, so that their peers are reset now rather
 * than at its deadline, and its note removed. -ENOENT: none was held.
 */
BATON_API int baton_checkpoint_release(const struct baton_checkpoint_opts *opts);
/*
 * Whether opts.service is held (a hold noted in its run directory): 0 and
 * the freeze's id, or -ENOENT
 */
BATON_API int baton_checkpoint_held(const struct baton_checkpoint_opts *opts,
				    __u32 *freeze_id);

/* What a checkpoint file says of itself (BATON_REC_FILE) */
struct baton_checkpoint_info {
	__u32 file_version;	/* BATON_FILE_VERSION */
	char service[65];
	char app[64];
	pid_t pid;		/* the instance checkpointed */
	__u32 proto, state_version, state_compat, state_min;
	__u64 realtime_ns;	/* when it was written, CLOCK_REALTIME */
	__u64 deadline_ns;	/* CLOCK_MONOTONIC of that boot: the thaw */
	__u32 freeze_id, freeze_ms;
	__u32 ckpt_format;	/* enum baton_ckpt_format */
	/* what the kernel's encodings depend on */
	char kernel[65];	/* its release */
	char boot_id[40];
	__u64 netns;		/* the network namespace's inode */
	__u32 genl_version, genl_maxattr;	/* baton.ko's family */
	__u32 listeners, conns, blobs, records;
	__u64 bytes;		/* the whole file */
	__u32 flags;		/* BATON_CHECKPOINT_F_* it was made with */
};

/* One of its sockets: the listeners first, then the connections */
struct baton_checkpoint_sock {
	__u64 id;
	__u32 kind;		/* BATON_SOCK_LISTENER or BATON_SOCK_CONN */
	struct sockaddr_storage local, peer;	/* peer: connections */
	__u32 sendq, unsent, recvq;	/* connections: bytes in each queue */
};

struct baton_checkpoint;

BATON_API int baton_checkpoint_load(struct baton_checkpoint **ck,
				    const char *path, baton_log_fn log,
				    void *log_ctx);
BATON_API const struct baton_checkpoint_info *
baton_checkpoint_info(const struct baton_checkpoint *ck);
/* the i-th socket into *s: 0, or -ENOENT past the last */
BATON_API int baton_checkpoint_sock(const struct baton_checkpoint *ck,
				    unsigned int i,
				    struct baton_checkpoint_sock *s);
BATON_API void baton_checkpoint_free(struct baton_checkpoint *ck);
/* "127.0.0.1:6379", "[::1]:6379": an address for people; returns buf */
BATON_API const char *baton_addr_text(const struct sockaddr_storage *ss,
				      char *buf, size_t len);

/* Ask a running instance who it is (batonctl status). */
struct baton_instance_info {
	pid_t pid;
	char app[64];
	__u32 state_version;
	__u32 proto;
};
/* timeout_ms: for its answer; 0: BATON_QUERY_TIMEOUT_MS */
BATON_API int baton_query(const char *run_dir, const char *service,
			  int timeout_ms, struct baton_instance_info *info);

/* run_dir or, if NULL, $BATON_RUN_DIR; BATON_RUN_DIR if that is unset or "" */
BATON_API const char *baton_run_dir(const char *run_dir);

/*
 * 0 if service is a service's name: letters, digits, '_', '-' and '.',
 * not first; 1 to 64 of them (BATON_SERVICE_NAME_MAX). Else -EINVAL.
 */
#define BATON_SERVICE_NAME_MAX	64
BATON_API int baton_service_name_check(const char *service);

#endif /* BATON_H */
