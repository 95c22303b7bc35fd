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

int baton_service_name_check(const char *s)
{
	size_t i, n = s ? strnlen(s, BATON_SERVICE_NAME_MAX + 1) : 0;

	if (n == 0 || n > BATON_SERVICE_NAME_MAX || s[0] == '.')
		return -EINVAL;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') ||
		      s[i] == '_' || s[i] == '-' || s[i] == '.'))
			return -EINVAL;
	return 0;
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

	if (baton_service_name_check(service))
		return -EINVAL;
	run_dir = baton_run_dir(run_dir);
	n = snprintf(p->dir, sizeof(p->dir), "%s", run_dir);
	if (n < 0 || (size_t)n >= sizeof(p->dir))
		return -ENAMETOOLONG;
	snprintf(p->sock, sizeof(p->sock), "%s/%s.sock", run_dir, service);
	snprintf(p->lock, sizeof(p->lock), "%s/%s.lock", run_dir, service);
	snprintf(p->pid, sizeof(p->pid), "%s/%s.pid", run_dir, service);
	snprintf(p->hold, sizeof(p->hold), "%s/%s.hold", run_dir, service);
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

/*
 * A listener whose queue is full (an instance that accepts nothing, hung
 * or stopped, its queue filled by earlier callers who gave up) makes
 * connect() wait for room, for SO_SNDTIMEO: timeout_ms here, then
 * -EAGAIN. The socket is returned without it.
 */
int ctl_connect(const char *path, int timeout_ms)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	__u64 end;
	int fd, err;

	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* 0 or less: as long as it takes, as before */
	end = timeout_ms > 0 ? now_ns() + timeout_ms * 1000000ULL : 0;
	for (;;) {
		if (end) {
			__u64 t = now_ns();

			/* a signal takes nothing off the time (msg_poll()) */
			err = t >= end ? -EAGAIN :
			      ctl_set_timeout(fd, (end - t + 999999) / 1000000);
			if (err)
				goto close_fd;
		}
		if (!connect(fd, (struct sockaddr *)&sun, sizeof(sun)))
			break;
		err = -errno;
		if (err != -EINTR)
			goto close_fd;
	}
	err = end ? ctl_set_timeout(fd, 0) : 0;
	if (err)
		goto close_fd;
	return fd;

close_fd:
	close(fd);
	return err;
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
	r->listen_fd = r->lock_fd = r->pid_fd = -1;
	r->locked = r->watched = false;
}

int resources_lock(struct baton_resources *r)
{
	if (r->locked)
		return 0;
	if (flock(r->lock_fd, LOCK_EX | LOCK_NB) < 0)
		return errno == EWOULDBLOCK ? -EBUSY : -errno;
	r->locked = true;
	return 0;
}

void resources_unlock(struct baton_resources *r)
{
	if (r->locked)
		flock(r->lock_fd, LOCK_UN);
	r->locked = false;
}

int resources_watch(struct baton_resources *r, int ep, __u64 tag, bool on)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = tag };

	if (r->listen_fd < 0 || r->watched == on)
		return 0;
	if (epoll_ctl(ep, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, r->listen_fd,
		      &ev) < 0)
		return -errno;
	r->watched = on;
	return 0;
}

/*
 * In place: the file's one block is rewritten, never a new one taken. Cut
 * only if the old pid was longer: in the blackout, where this runs, a
 * truncate to the same size still journals the inode's times on a disk's
 * file system (10 us here of the 30 the new pid cost).
 */
int resources_pid(struct baton_resources *r)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%d\n", getpid());
	struct stat st;
	ssize_t w;

	w = pwrite(r->pid_fd, buf, n, 0);
	if (w < 0)
		return -errno;
	if (w != n)
		return -EIO;	/* short: errno says nothing of it */
	if (fstat(r->pid_fd, &st) < 0)
		return -errno;
	if (st.st_size > n && ftruncate(r->pid_fd, n) < 0)
		return -errno;
	return 0;
}

/*
 * Makes and takes the lock, the control socket and the pid file, in that
 * order; the control socket is watched on ep, its events tagged with tag.
 */
int resources_take(struct baton_resources *r, int ep, __u64 tag)
{
	int err;

	/* the lock is the first file in it: on a fresh /run, no dir yet */
	err = mkdir_p(r->paths.dir, 0755);
	if (err)
		return err;
	r->lock_fd = open(r->paths.lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (r->lock_fd < 0)
		return -errno;
	err = resources_lock(r);
	if (err)
		return err;
	r->listen_fd = ctl_listen(r->paths.sock);
	if (r->listen_fd < 0)
		return r->listen_fd;
	r->pid_fd = open(r->paths.pid, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (r->pid_fd < 0)
		return -errno;
	return resources_pid(r) ?: resources_watch(r, ep, tag, true);
}

/*
 * The new instance opens the lock and pid files the old one made, which
 * takes no room on a full disk; it locks and writes them to activate. The
 * control socket comes from the old instance.
 */
int resources_open(struct baton_resources *r, char *why, size_t len)
{
	const char *path = r->paths.lock;
	int err;

	r->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (r->lock_fd >= 0) {
		path = r->paths.pid;
		r->pid_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	}
	if (r->lock_fd >= 0 && r->pid_fd >= 0)
		return 0;
	err = -errno;
	snprintf(why, len, "cannot open %s: %s", path, strerror(-err));
	return err;
}

void resources_close(struct baton_resources *r, int ep)
{
	resources_watch(r, ep, 0, false);
	if (r->listen_fd >= 0)
		close(r->listen_fd);
	if (r->pid_fd >= 0)
		close(r->pid_fd);
	/*
	 * close(), not LOCK_UN: a child the application forked shares the
	 * open file, and an unlock in its exit would take the lock from us
	 */
	if (r->lock_fd >= 0)
		close(r->lock_fd);
	resources_init(r);
}
