/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Peers and control files: <run_dir>/<service>.sock, the well-known control
 * socket, and who may talk on it; the single-access resources of a serving
 * instance, <service>.lock and <service>.pid.
 */
#ifndef BATON_LIB_CONTROL_H
#define BATON_LIB_CONTROL_H

#include "wire/wire.h"

struct baton_paths {
	char dir[PATH_MAX / 2];
	char sock[PATH_MAX];
	char lock[PATH_MAX];
	char pid[PATH_MAX];
};

int paths_init(struct baton_paths *p, const char *run_dir,
	       const char *service);
int mkdir_p(const char *dir, mode_t mode);
int ctl_listen(const char *path);
int ctl_connect(const char *path);
int ctl_peer_check(int sock, struct ucred *cred);
int ctl_set_timeout(int sock, int timeout_ms);
int lock_acquire(const char *path);
int pidfile_write(const char *path);
void ctl_close(int ep, int *fd);

#define MAX_PENDING	8	/* peers accepted, hello not read yet */

/*
 * A serving instance's single-access resources, and the peers its control
 * socket accepted and has not heard yet.
 */
struct baton_resources {
	struct baton_paths paths;
	int lock_fd;
	int listen_fd;		/* the well-known control socket */
	struct {
		int fd;
		struct ucred cred;
	} pending[MAX_PENDING];
};

void resources_init(struct baton_resources *r);
int resources_take(struct baton_resources *r, int ep, __u64 tag);
void resources_release(struct baton_resources *r, int ep);

#endif /* BATON_LIB_CONTROL_H */
