// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The well-known control socket, <run_dir>/<service>.sock, and the other
 * single-access resources of a serving instance: <service>.lock (flock) and
 * <service>.pid.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "control/control.h"

static bool service_name_ok(const char *s)
{
	size_t i, n = s ? strlen(s) : 0;

	if (n == 0 || n > 64 || s[0] == '.')
		return false;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') ||
		      s[i] == '_' || s[i] == '-' || s[i] == '.'))
			return false;
	return true;
}

const char *baton_run_dir(const char *run_dir)
{
	if (!run_dir)
		run_dir = getenv("BATON_RUN_DIR");
	return run_dir && *run_dir ? run_dir : BATON_RUN_DIR;
}

int paths_init(struct baton_paths *p, const char *run_dir,
	       const char *service)
{
	struct sockaddr_un sun;
	int n;

	if (!service_name_ok(service))
		return -EINVAL;
	run_dir = baton_run_dir(run_dir);
	n = snprintf(p->dir, sizeof(p->dir), "%s", run_dir);
	if (n < 0 || (size_t)n >= sizeof(p->dir))
		return -ENAMETOOLONG;
	snprintf(p->sock, sizeof(p->sock), "%s/%s.sock", run_dir, service);
	snprintf(p->lock, sizeof(p->lock), "%s/%s.lock", run_dir, service);
	snprintf(p->pid, sizeof(p->pid), "%s/%s.pid", run_dir, service);
	/* the temporary name ctl_listen() binds first must fit too */
	if (strlen(p->sock) + 16 >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	return 0;
}

int mkdir_p(const char *dir, mode_t mode)
{
	char tmp[PATH_MAX];
	char *s;

	snprintf(tmp, sizeof(tmp), "%s", dir);
	for (s = tmp + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/*
 * Binds a temporary name, restricts it to the owner, and renames it over
 * the well-known path: a connecting peer finds either the previous socket
 * or this one, listening, never a half-made one.
 */
int ctl_listen(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char dir[PATH_MAX], *slash;
	int fd, err;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		err = mkdir_p(dir, 0755);
		if (err)
			return err;
	}
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s.%d.tmp", path,
		 getpid());
	unlink(sun.sun_path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		err = -errno;
		goto close_fd;
	}
	if (chmod(sun.sun_path, 0600) < 0 || listen(fd, 16) < 0 ||
	    rename(sun.sun_path, path) < 0) {
		err = -errno;
		goto unlink_tmp;
	}
	return fd;

unlink_tmp:
	unlink(sun.sun_path);
close_fd:
	close(fd);
	return err;
}

int ctl_connect(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd, err;

	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

/* Only our own user, or root, may take part in a handover. */
int ctl_peer_check(int sock, struct ucred *cred)
{
	socklen_t len = sizeof(*cred);

	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, cred, &len) < 0)
		return -errno;
	if (cred->uid != 0 && cred->uid != geteuid())
		return -EPERM;
	return 0;
}

/* A peer that stops reading must not stall the serving instance for long. */
int ctl_set_timeout(int sock, int timeout_ms)
{
	struct timeval tv = {
		.tv_sec = timeout_ms / 1000,
		.tv_usec = (timeout_ms % 1000) * 1000,
	};

	if (setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
		return -errno;
	return 0;
}

/* The service's lock: held by exactly one serving instance. -EBUSY if not. */
int lock_acquire(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int err = errno == EWOULDBLOCK ? -EBUSY : -errno;

		close(fd);
		return err;
	}
	return fd;
}

int pidfile_write(const char *path)
{
	char tmp[PATH_MAX], buf[32];
	int fd, n, err = 0;

	snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	n = snprintf(buf, sizeof(buf), "%d\n", getpid());
	if (write(fd, buf, n) != n)
		err = -EIO;
	close(fd);
	if (!err && rename(tmp, path) < 0)
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

/* Stops watching a peer's socket on ep, and closes it. */
void ctl_close(int ep, int *fd)
{
	if (*fd < 0)
		return;
	epoll_ctl(ep, EPOLL_CTL_DEL, *fd, NULL);
	close(*fd);
	*fd = -1;
}

void resources_init(struct baton_resources *r)
{
	unsigned int i;

	r->listen_fd = r->lock_fd = -1;
	for (i = 0; i < MAX_PENDING; i++)
		r->pending[i].fd = -1;
}

/*
 * Takes the lock, the control socket and the pid file, in that order; the
 * control socket is watched on ep, its events tagged with tag.
 */
int resources_take(struct baton_resources *r, int ep, __u64 tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = tag };
	int err;

	if (r->lock_fd < 0) {
		r->lock_fd = lock_acquire(r->paths.lock);
		if (r->lock_fd < 0) {
			err = r->lock_fd;
			r->lock_fd = -1;
			return err;
		}
	}
	if (r->listen_fd < 0) {
		err = ctl_listen(r->paths.sock);
		if (err < 0)
			return err;
		r->listen_fd = err;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, r->listen_fd, &ev) < 0)
			return -errno;
	}
	return pidfile_write(r->paths.pid);
}

/* Lets the next instance take them. The path is renamed over, not removed. */
void resources_release(struct baton_resources *r, int ep)
{
	unsigned int i;

	ctl_close(ep, &r->listen_fd);
	for (i = 0; i < MAX_PENDING; i++)
		ctl_close(ep, &r->pending[i].fd);
	if (r->lock_fd >= 0) {
		close(r->lock_fd);
		r->lock_fd = -1;
	}
}
