/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Peers and control files: <run_dir>/<service>.sock, the well-known control
 * socket, and who may talk on it; the single-access resources of a serving
 * instance, <service>.lock and <service>.pid.
 */
#ifndef BATON_LIB_CONTROL_H
#define BATON_LIB_CONTROL_H

#include "wire/wire.h"

/*
 * The control socket's id when it travels in SOCKETS (BATON_SOCK_CONTROL):
 * it is the library's, never the application's
 */
#define CONTROL_ID	1

struct baton_paths {
	char dir[PATH_MAX / 2];
	char sock[PATH_MAX];
	char lock[PATH_MAX];
	char pid[PATH_MAX];
	char hold[PATH_MAX];	/* baton_checkpoint_hold()'s freeze id */
};

int paths_init(struct baton_paths *p, const char *run_dir,
	       const char *service);
int mkdir_p(const char *dir, mode_t mode);
int ctl_listen(const char *path);
int ctl_connect(const char *path, int timeout_ms);
int ctl_peer_check(int sock, struct ucred *cred);
int ctl_set_timeout(int sock, int timeout_ms);
void ctl_close(int ep, int *fd);

/*
 * A serving instance's single-access resources. The lock is the service's
 * one token: whoever holds it flock()ed serves. The old instance unlocks it
 * in the blackout and locks it again to resume; the new one locks it to
 * activate. So at most one of them ever serves, whichever of them stops or
 * dies in between. The control socket passes from instance to instance
 * (SOCKETS, BATON_SOCK_CONTROL), and the pid file is written in place:
 * neither needs a new inode or block in the blackout or a rollback.
 */
struct baton_resources {
	struct baton_paths paths;
	int lock_fd;		/* <service>.lock, open */
	int listen_fd;		/* the well-known control socket */
	int pid_fd;		/* <service>.pid, open for writing */
	bool locked;		/* lock_fd is flock()ed */
	bool watched;		/* listen_fd is on the epoll */
};

void resources_init(struct baton_resources *r);
/* the first instance of a service: make and take them all */
int resources_take(struct baton_resources *r, int ep, __u64 tag);
/* the new instance, in phase 1: open them, take nothing yet */
int resources_open(struct baton_resources *r, char *why, size_t len);
void resources_close(struct baton_resources *r, int ep);
int resources_lock(struct baton_resources *r);	/* -EBUSY: another serves */
void resources_unlock(struct baton_resources *r);
int resources_watch(struct baton_resources *r, int ep, __u64 tag, bool on);
int resources_pid(struct baton_resources *r);	/* our pid into the file */

/*
 * notify.c: the service manager told, if $NOTIFY_SOCKET names one (1), or
 * not (0), or -errno (logged)
 */
int notify_ready(const struct baton_log_sink *log);	/* READY=1 */
int notify_reloading(const struct baton_log_sink *log);	/* RELOADING=1 */
int notify_taking_over(const struct baton_log_sink *log);	/* STATUS= */
int notify_main(const struct baton_log_sink *log);	/* MAINPID=, READY=1 */

#endif /* BATON_LIB_CONTROL_H */
