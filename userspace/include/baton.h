/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libbaton: hand a running TCP service, listening and established sockets
 * with their state, to its next version.
 *
 * Three parties take part, each with its own handle:
 *
 *   struct baton_service   an instance of the application (old or new)
 *   struct baton_upgrade   the coordinator (batonctl) driving one upgrade
 *
 * The library never prints: messages go to the log callback, if any. It
 * keeps no global state. Every function returns 0 (or a count) on success
 * and a negative errno on failure.
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
 *	if (!baton_service_adopted(svc))
 *		open listeners;
 *	add baton_service_fd(svc) to the event loop;
 *	loop:
 *		if (baton_service_paused(svc))
 *			wait on baton_service_fd(svc) only;	// blackout
 *		else
 *			wait on everything;
 *		if (baton_service_fd(svc) is readable)
 *			if (baton_service_dispatch(svc) == BATON_EXIT)
 *				break;
 *	baton_service_close(svc);
 *
 *   Inside baton_service_dispatch() the old instance is called back:
 *	phase 1:  ops->export_sockets()	baton_export_socket() for every
 *					listener and connection; accept on
 *		  ops->save_state()	snapshot service-wide state, start
 *					tracking changes; it may return 1 to
 *					be called again on a later round, and
 *					serve in between (a large state)
 *		  ops->export_sockets()	again, flags | BATON_EXPORT_FINAL, once
 *					the new instance has taken the first
 *					pass: stop accept(), list them all
 *					again (the library sends only those
 *					not sent before)
 *	phase 2:  ops->deactivate()	stop reading and writing
 *		  ops->save_conns()	one record per live connection
 *		  ops->save_delta()	service-wide changes since phase 1
 *		  ops->release()	single-access resources of its own
 *	then one of
 *		  ops->terminate()	the new is active: close() every socket
 *					(never shutdown()); dispatch returns
 *					BATON_EXIT
 *		  ops->drain()		drain mode: close listeners only
 *		  ops->resume()		rollback: accept and serve again
 *
 * The coordinator:
 *
 *	baton_upgrade_open(&up, &opts);		// attach to the old instance
 *	while ((phase = baton_upgrade_step(up)) > 0 &&
 *	       phase != BATON_PHASE_DONE)
 *		show progress;
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

#define BATON_EXIT	1	/* baton_service_dispatch(): the app should exit */
#define BATON_EXPORT_FINAL (1U << 31)	/* export_sockets(): the last pass */

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
	/* old instance, phase 1 (flags: BATON_UPGRADE_F_*) */
	int (*export_sockets)(void *app, struct baton_export *exp,
			      unsigned int flags);
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
	/* new instance; the fd belongs to the application from here on */
	int (*adopt_socket)(void *app, int fd, const struct baton_sockinfo *si);
	int (*load_state)(void *app, const struct baton_rec *rec);
	int (*load_conn)(void *app, const struct baton_rec *rec);
	int (*acquire)(void *app);			/* optional */
	/* flags: BATON_ACTIVATE_F_*; with PEER_LOST, connections that got
	 * no record are kept as new ones instead of closed */
	int (*activate)(void *app, unsigned int flags);
};

struct baton_service_opts {
	const char *service;	/* [A-Za-z0-9_.-], at most 64 */
	const char *run_dir;	/* NULL: $BATON_RUN_DIR, else /run/baton */
	const char *app_name;	/* "kvd 2": shown by batonctl status */
	__u32 state_version;	/* the state version this build writes */
	__u32 state_compat;	/* the oldest version that reads it */
	__u32 state_min;	/* the oldest version this build reads */
	const struct baton_app_ops *ops;
	void *app;
	baton_log_fn log;
	void *log_ctx;
};

int baton_service_open(struct baton_service **svc,
		       const struct baton_service_opts *opts);
bool baton_service_adopted(const struct baton_service *svc);
bool baton_service_paused(const struct baton_service *svc);
int baton_service_fd(const struct baton_service *svc);
int baton_service_dispatch(struct baton_service *svc);
void baton_service_close(struct baton_service *svc);

/* Inside ops->export_sockets(): hand over one socket (a copy is sent). */
int baton_export_socket(struct baton_export *exp, int fd, __u64 id,
			enum baton_sock_kind kind);

/* Writing records, inside ops->save_*(). */
int baton_rec_begin(struct baton_rec_writer *w, __u64 id);
int baton_rec_put_u32(struct baton_rec_writer *w, __u16 type, __u32 v);
int baton_rec_put_u64(struct baton_rec_writer *w, __u16 type, __u64 v);
int baton_rec_put_str(struct baton_rec_writer *w, __u16 type, const char *s);
/* Any length: split into attributes of one type, concatenated on reading. */
int baton_rec_put_bytes(struct baton_rec_writer *w, __u16 type,
			const void *buf, size_t len);
int baton_rec_end(struct baton_rec_writer *w);

/* Reading records, inside ops->load_*(). */
__u64 baton_rec_id(const struct baton_rec *rec);
__u32 baton_rec_version(const struct baton_rec *rec);
int baton_rec_parse(const struct baton_rec *rec, mnl_attr_cb_t cb, void *data);

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

const char *baton_phase_name(enum baton_phase phase);

struct baton_upgrade_opts {
	const char *service;
	const char *run_dir;	/* as in baton_service_opts */
	char *const *argv;	/* the new instance's command */
	const char *log_path;	/* its stdout and stderr; NULL: inherited */
	int timeout_ms;		/* for each step; 0: 5000 */
	unsigned int flags;	/* BATON_UPGRADE_F_* */
	baton_log_fn log;
	void *log_ctx;
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
	int error;		/* negative errno of a failure, or 0 */
	char reason[256];	/* what went wrong, for people */
};

int baton_upgrade_open(struct baton_upgrade **up,
		       const struct baton_upgrade_opts *opts);
int baton_upgrade_step(struct baton_upgrade *up);
const struct baton_upgrade_report *
baton_upgrade_report(const struct baton_upgrade *up);
void baton_upgrade_close(struct baton_upgrade *up);

/*
 * Steering new connections between generations of listeners in one
 * SO_REUSEPORT group (bpf/baton_steer.bpf.c), and migrating a closing
 * listener's queue to the active generation instead of resetting it:
 *
 *	baton_steer_open(&st, &opts);		// load and pin, or reopen pins
 *	baton_steer_attach(st, listen_fd);	// once per group
 *	baton_steer_set_listener(st, gen, listen_fd);
 *	baton_steer_set(st, active, canary, share);	// one map update
 *	baton_steer_close(st);			// the pins stay
 *
 * libbpf's own messages go where the application's libbpf_set_print()
 * sends them: a process-wide setting, which the library leaves alone.
 */
struct baton_steer;

#define BATON_STEER_F_EXISTING	(1U << 0)	/* reopen pins; never load */

struct baton_steer_opts {
	const char *service;
	const char *pin_root;	/* NULL: $BATON_PIN_ROOT, else /sys/fs/bpf/baton */
	unsigned int flags;	/* BATON_STEER_F_* */
	baton_log_fn log;
	void *log_ctx;
};

int baton_steer_open(struct baton_steer **st,
		     const struct baton_steer_opts *opts);
int baton_steer_attach(struct baton_steer *st, int listen_fd);
int baton_steer_set_listener(struct baton_steer *st, __u32 gen,
			     int listen_fd);
/* share of new flows for the canary, in 1/10000; 0 for none */
int baton_steer_set(struct baton_steer *st, __u32 active, __u32 canary,
		    __u32 share);
int baton_steer_get(struct baton_steer *st, __u32 *active, __u32 *canary,
		    __u32 *share);
/* 1 if generation gen has a listener in the group, 0 if not */
int baton_steer_has_listener(struct baton_steer *st, __u32 gen);
int baton_steer_unpin(struct baton_steer *st);
void baton_steer_close(struct baton_steer *st);

/* Ask a running instance who it is (batonctl status). */
struct baton_instance_info {
	pid_t pid;
	char app[64];
	__u32 state_version;
	__u32 proto;
};
int baton_query(const char *run_dir, const char *service,
		struct baton_instance_info *info);

/*
 * One TCP connection outside its descriptor: TCP_REPAIR for sequence
 * numbers, options, window and queues, and baton.ko (module/) for what
 * TCP_REPAIR cannot carry, the congestion window and the RTT estimator.
 * Needs CAP_NET_ADMIN; baton.ko must be loaded (-ENOENT if not).
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
struct baton_tcp;

int baton_tcp_open(struct baton_tcp **tcp, baton_log_fn log, void *log_ctx);
int baton_tcp_export(struct baton_tcp *tcp, int fd, void *buf, size_t len);
int baton_tcp_import(struct baton_tcp *tcp, int fd, const void *rec,
		     size_t len);
int baton_tcp_checkpoint(struct baton_tcp *tcp, int fd, void **rec,
			 size_t *len);
int baton_tcp_restore(struct baton_tcp *tcp, const void *rec, size_t len);
void baton_tcp_close(struct baton_tcp *tcp);

/*
 * ---- baton.ko: the freeze (new; to move with the library's layout) ----
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

int baton_tcp_freeze(struct baton_tcp *tcp, const struct baton_flow *flows,
		     size_t n, unsigned int deadline_ms,
		     const struct baton_freeze_caps *caps, __u32 *id);
int baton_tcp_thaw(struct baton_tcp *tcp, __u32 id,
		   struct baton_freeze_stats *stats);
/* the counters of the caller's network namespace */
int baton_tcp_freeze_stats(struct baton_tcp *tcp,
			   struct baton_freeze_stats *stats);
/* ---- end of the freeze ---- */

/*
 * ---- baton.ko: the bulk state (new; to move with the library's layout) ----
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
 */
int baton_tcp_export_conns(struct baton_tcp *tcp, const int *fds, size_t n,
			   void **rec, size_t *len);
int baton_tcp_import_conns(struct baton_tcp *tcp, const void *rec,
			   size_t len, int *fds, size_t n);
/* ---- end of the bulk state ---- */

#endif /* BATON_H */
