/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The skeleton kvd and httpd share: listeners, the table of connections by
 * fd (and by id until a new instance activates), accepting, the epoll loop that waits on
 * the baton fd alone in the blackout, and the handover callbacks that are
 * the same in both. A program embeds a struct srv in its own state and a
 * struct srv_conn in its connections, and says in a struct srv_ops what a
 * connection does with its bytes.
 *
 *	srv_options_init(&o, &ops); getopt: srv_option(&o, c, optarg);
 *	srv_options_done(&o, argc, argv);
 *	srv_init(&s, &ops, o.quiet);
 *	srv_open(&s, &o);		baton_service_open(), taking over
 *	if (!baton_service_adopted(s.svc)) srv_listen(&s, &o, reuseport);
 *	srv_serve(&s);
 *	baton_service_close(s.svc); srv_fini(&s);
 */
#ifndef BATON_EXAMPLES_SERVER_H
#define BATON_EXAMPLES_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "baton.h"
#include "buf.h"

#define SRV_MAX_LISTENERS	8

/* The struct of type that embeds ptr as member: the kernel's container_of */
#define srv_entry(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

/* What an epoll event's data.ptr points at. */
enum srv_handle_kind { SRV_H_BATON, SRV_H_LISTENER, SRV_H_CONN };

struct srv_handle {
	enum srv_handle_kind kind;
};

struct srv_listener {
	struct srv_handle h;
	int fd;
	__u64 id;
};

struct srv_conn {
	struct srv_handle h;
	int fd;
	__u64 id;
	struct buf in, out;
	unsigned int events;	/* what epoll watches for */
	bool unclaimed;		/* adopted, no record yet */
	bool loaded;		/* adopted, a record loaded */
	bool recorded;		/* its record went in phase 1 */
	bool touched;		/* and it changed since */
};

/* A connection that may have changed since phase 1: by fd, and which one */
struct srv_touch {
	int fd;
	__u64 id;
};

struct srv;

struct srv_ops {
	const char *name;	/* "kvd": the default service, in messages */
	int version;		/* KVD_VERSION: also the state version */
	__u32 state_compat;	/* the oldest version that reads its records */
	unsigned int port;	/* the default port, on 127.0.0.1 */
	const struct baton_app_ops *baton_ops;	/* app: the struct srv */
	size_t conn_size;	/* of the struct that embeds a srv_conn */
	/* optional: a new connection, before epoll watches it for EPOLLIN */
	void (*conn_init)(struct srv_conn *c);
	/* optional: before its buffers and itself are freed */
	void (*conn_release)(struct srv_conn *c);
	/* epoll said events; closes it with srv_conn_close() when done */
	void (*conn_io)(struct srv *s, struct srv_conn *c, unsigned int events);
	/* after a takeover or a rollback: serve what it holds */
	void (*conn_kick)(struct srv *s, struct srv_conn *c);
	/* its record, and reading it back into an adopted one */
	int (*conn_save)(const struct srv_conn *c, struct baton_rec_writer *w);
	int (*conn_load)(struct srv *s, struct srv_conn *c,
			 const struct baton_rec *rec);
};

struct srv {
	const struct srv_ops *ops;
	struct baton_service *svc;
	int ep;
	struct srv_handle baton_h;
	struct srv_listener listeners[SRV_MAX_LISTENERS];
	unsigned int nlisteners;
	struct srv_conn **conns;	/* by fd */
	unsigned int maxfd;
	/*
	 * Above the highest fd a connection ever had: the loops over the
	 * connections end here, not at maxfd (20,000 here), a scan that
	 * took tens of microseconds of the blackout with no connection.
	 */
	unsigned int hifd;
	unsigned int nconns;
	__u64 next_id;
	/* adopted connections by id, until activation: a hash table */
	struct srv_conn **by_id;
	unsigned int nby_id, cap_by_id;
	unsigned int nunclaimed;	/* adopted, without a record now */
	/*
	 * From save_conns() on: the connections touched (served, opened)
	 * since, and those closed that had a record, for
	 * save_conns_changed(); idle ones are in neither
	 */
	bool tracking;
	bool track_lost;	/* out of memory: cannot say what changed */
	struct srv_touch *touched;
	unsigned int ntouched, cap_touched;
	__u64 *closed;
	unsigned int nclosed, cap_closed;
	bool accepting;
	bool draining;
	bool drain_on_stop;	/* SIGTERM: stop taking, serve what we have */
	bool kick;		/* serve what adopted connections hold */
	bool quiet;		/* log errors only */
	char app_name[32];	/* "kvd 2", shown by batonctl status */
};

/* listen.c: the options both programs take, and opening listeners */
struct srv_opts {
	const struct srv_ops *ops;
	const char *service;
	const char *run_dir;
	const char *listen[SRV_MAX_LISTENERS];
	int listen_fd[SRV_MAX_LISTENERS];
	unsigned int nlisten, nlisten_fd;
	__u32 state_min;
	bool quiet;
	bool fdstore;		/* keep the listeners in systemd's store */
	char listen_default[32];
};

/* the listeners' name in systemd's file descriptor store (FDNAME=) */
#define SRV_FDNAME	"listener"

void srv_options_init(struct srv_opts *o, const struct srv_ops *ops);
/* 0: taken; 1: not one of them; -EINVAL: bad, and said why */
int srv_option(struct srv_opts *o, int c, const char *arg);
int srv_options_done(struct srv_opts *o, int argc, char **argv);
int srv_open_listener(struct srv *s, const char *addr, bool reuseport);
/*
 * the inherited listeners, then the addresses; watched. Those systemd
 * passed back from its store (after a crash) instead, if any; with
 * --fdstore, those opened here go into it
 */
int srv_listen(struct srv *s, const struct srv_opts *o, bool reuseport);

/* server.c */
int srv_init(struct srv *s, const struct srv_ops *ops, bool quiet);
void srv_fini(struct srv *s);
/* the baton service, with the options' name, run dir and state_min */
int srv_open(struct srv *s, const struct srv_opts *o);
/* SIGTERM and SIGINT end srv_serve(); SIGPIPE is ignored */
void srv_signals(void);
/* until a signal, or another instance has taken over */
int srv_serve(struct srv *s);
int srv_listener_add(struct srv *s, int fd, __u64 id);
void srv_listeners_close(struct srv *s);
int srv_listeners_watch(struct srv *s, bool on);
int srv_conn_add(struct srv *s, int fd, __u64 id, struct srv_conn **out);
int srv_conn_watch(struct srv *s, struct srv_conn *c, unsigned int events);
void srv_conn_close(struct srv *s, struct srv_conn *c);
void srv_conns_close_all(struct srv *s);
/* c is served or new: its record may change (while tracking) */
void srv_conn_touch(struct srv *s, struct srv_conn *c);
/* the handover is over, one way or the other: forget what changed */
void srv_tracking_stop(struct srv *s);

/*
 * handover.c: struct baton_app_ops callbacks, app being the struct srv;
 * a program's own ops call them or stand in their place.
 */
int srv_export_sockets(void *app, struct baton_export *exp,
		       unsigned int upgrade_flags, unsigned int flags);
void srv_deactivate(void *app);
int srv_save_conns(void *app, struct baton_rec_writer *w);
int srv_save_conns_changed(void *app, struct baton_rec_writer *w);
void srv_resume(void *app);
void srv_terminate(void *app);
void srv_drain(void *app);
int srv_adopt_socket(void *app, int fd, const struct baton_sockinfo *si);
int srv_load_conn(void *app, const struct baton_rec *rec);
int srv_drop_conn(void *app, __u64 id);
int srv_activate(void *app, unsigned int flags);

#endif /* BATON_EXAMPLES_SERVER_H */
