// SPDX-License-Identifier: GPL-2.0-only
/*
 * What kvd tells a service manager through libbaton (sd_notify(3)), heard
 * on a datagram socket of our own named by $NOTIFY_SOCKET, each message
 * with its sender's pid (SO_PASSCRED):
 *  1. started fresh, kvd says READY=1;
 *  2. upgraded by batonctl, the old instance says RELOADING=1 with a
 *     MONOTONIC_USEC= of the upgrade's time, then the new one says in a
 *     STATUS= that it is ready to take over and, once it serves, MAINPID=
 *     its own pid and READY=1; nothing else;
 *  3. an upgrade the new instance refuses (--state-min 99): RELOADING=1,
 *     then the old instance, serving again, says MAINPID= its own pid and
 *     READY=1;
 *  4. kvd --fdstore, started fresh, sends its listener with FDSTORE=1 and
 *     FDNAME=listener; killed (SIGKILL) while we hold that copy, as
 *     systemd's store does, a client still connects, and a kvd started
 *     with it in $LISTEN_FDS (LISTEN_FDNAMES=listener) serves it on the
 *     same port, its --listen ignored, and stores nothing again.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "helpers.h"
#include "../userspace/examples/common/server.h"	/* SRV_FDNAME */

FIXTURE(notify) {
	struct service svc;
	char path[108];
	int sock;
};

FIXTURE_VARIANT(notify) {
	int family;
	int from, to;
};

FIXTURE_VARIANT_ADD(notify, ipv4_v1_v2) { AF_INET, 1, 2 };
FIXTURE_VARIANT_ADD(notify, ipv4_v2_v1) { AF_INET, 2, 1 };
FIXTURE_VARIANT_ADD(notify, ipv6_v1_v2) { AF_INET6, 1, 2 };
FIXTURE_VARIANT_ADD(notify, ipv6_v2_v1) { AF_INET6, 2, 1 };

/*
 * One message, NUL-terminated, who sent it, and the descriptor it carried
 * into *fd if fd is not NULL (-1 if none); -ETIMEDOUT if none came
 */
static int notify_recv_fd(int sock, char *buf, size_t len, pid_t *pid,
			  int *fd, int timeout_ms)
{
	char cbuf[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int))];
	struct iovec iov = { buf, len - 1 };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct pollfd p = { .fd = sock, .events = POLLIN };
	struct cmsghdr *c;
	ssize_t n;

	if (poll(&p, 1, timeout_ms) <= 0)
		return -ETIMEDOUT;
	n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	*pid = 0;
	if (fd)
		*fd = -1;
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level == SOL_SOCKET &&
		    c->cmsg_type == SCM_CREDENTIALS)
			*pid = ((struct ucred *)CMSG_DATA(c))->pid;
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			int got;

			memcpy(&got, CMSG_DATA(c), sizeof(got));
			if (fd)
				*fd = got;
			else
				close(got);
		}
	}
	return 0;
}

static int notify_recv(int sock, char *buf, size_t len, pid_t *pid,
		       int timeout_ms)
{
	return notify_recv_fd(sock, buf, len, pid, NULL, timeout_ms);
}

static unsigned long long mono_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000ULL + ts.tv_nsec / 1000;
}

/*
 * The socket systemd would listen on, at /tmp/baton-NAME-PID.sock (a path,
 * not an abstract name: kvd runs in another network namespace), with
 * credentials passed, exported as NOTIFY_SOCKET: its fd, or -errno.
 */
static int notify_socket(const char *name, char *path, size_t len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int one = 1, fd;

	snprintf(path, len, "/tmp/baton-%s-%d.sock", name, getpid());
	unlink(path);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    setenv("NOTIFY_SOCKET", path, 1)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

FIXTURE_SETUP(notify)
{
	char msg[256];
	pid_t from;

	self->svc.kvd = -1;
	self->svc.lfd = -1;
	self->sock = notify_socket("notify", self->path, sizeof(self->path));
	ASSERT_LE(0, self->sock);
	ASSERT_EQ(0, service_up(&self->svc, variant->family, variant->from));

	/* 1. */
	ASSERT_EQ(0, notify_recv(self->sock, msg, sizeof(msg), &from, 5000));
	EXPECT_EQ(self->svc.kvd, from);
	EXPECT_STREQ("READY=1\nSTATUS=serving", msg);
}

FIXTURE_TEARDOWN(notify)
{
	service_teardown(&self->svc);
	close(self->sock);
	unlink(self->path);
	unsetenv("NOTIFY_SOCKET");
}

/* 2. */
TEST_F(notify, upgrade_reloading_then_new_mainpid)
{
	char name[16], cmd[512], msg[256], want[96], out[4096];
	unsigned long long t0, t1, usec;
	pid_t from, new;
	int fd;

	snprintf(name, sizeof(name), "kvd-v%d", variant->to);
	bin(name, cmd, sizeof(cmd));
	fd = client_connect(variant->family, self->svc.port);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, resp_expect(fd, "+OK\r\n", 3, "SET", "k", "v"));

	t0 = mono_usec();
	ASSERT_EQ(0, batonctl(out, sizeof(out), (const char *const[]){
		"upgrade", "kvd", "--timeout-ms", SURE_STEP_MS, "--", cmd,
		"--quiet", NULL })) {
		TH_LOG("batonctl: %s", out);
	}
	t1 = mono_usec();
	new = serving_pid(&self->svc, variant->family);
	ASSERT_LT(0, new);
	ASSERT_NE(self->svc.kvd, new);

	ASSERT_EQ(0, notify_recv(self->sock, msg, sizeof(msg), &from, 5000));
	EXPECT_EQ(self->svc.kvd, from);
	ASSERT_EQ(1, sscanf(msg, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=upgrading",
			    &usec)) {
		TH_LOG("the old instance said: %s", msg);
	}
	EXPECT_LE(t0, usec);
	EXPECT_GE(t1, usec);

	ASSERT_EQ(0, notify_recv(self->sock, msg, sizeof(msg), &from, 5000));
	EXPECT_EQ(new, from);
	snprintf(want, sizeof(want),
		 "STATUS=upgrading: the new instance, pid %d, is ready to take over",
		 new);
	EXPECT_STREQ(want, msg);

	ASSERT_EQ(0, notify_recv(self->sock, msg, sizeof(msg), &from, 5000));
	EXPECT_EQ(new, from);
	snprintf(want, sizeof(want), "MAINPID=%d\nREADY=1\nSTATUS=serving", new);
	EXPECT_STREQ(want, msg);
	EXPECT_EQ(-ETIMEDOUT, notify_recv(self->sock, msg, sizeof(msg), &from,
					  200)) {
		TH_LOG("pid %d said more: %s", from, msg);
	}

	/* the client's connection, with the new instance */
	EXPECT_EQ(0, resp_expect(fd, "$1\r\nv\r\n", 2, "GET", "k"));
	close(fd);
}

/* 3. */
TEST_F(notify, refused_upgrade_old_says_ready_again)
{
	char name[16], cmd[512], msg[256], want[64], out[4096];
	pid_t from;

	snprintf(name, sizeof(name), "kvd-v%d", variant->to);
	bin(name, cmd, sizeof(cmd));
	EXPECT_NE(0, batonctl(out, sizeof(out), (const char *const[]){
		"upgrade", "kvd", "--", cmd, "--quiet", "--state-min", "99",
		NULL }));
	EXPECT_EQ(self->svc.kvd, serving_pid(&self->svc, variant->family));

	ASSERT_EQ(0, notify_recv(self->sock, msg, sizeof(msg), &from, 5000));
	EXPECT_EQ(self->svc.kvd, from);
	EXPECT_EQ(0, strncmp(msg, "RELOADING=1\n", 12)) {
		TH_LOG("the old instance said: %s", msg);
	}
	ASSERT_EQ(0, notify_recv(self->sock, msg, sizeof(msg), &from, 5000));
	EXPECT_EQ(self->svc.kvd, from);
	snprintf(want, sizeof(want), "MAINPID=%d\nREADY=1\nSTATUS=serving",
		 self->svc.kvd);
	EXPECT_STREQ(want, msg);
	EXPECT_EQ(-ETIMEDOUT, notify_recv(self->sock, msg, sizeof(msg), &from,
					  200)) {
		TH_LOG("pid %d said more: %s", from, msg);
	}
}

/* 4. */
FIXTURE(fdstore) {
	struct service svc;
	char path[108];
	int sock;
	int stored;		/* our copy, as systemd's store holds it */
	pid_t next;		/* the instance started after the crash */
};

FIXTURE_VARIANT(fdstore) {
	int family;
	int first, next;	/* kvd versions */
};

FIXTURE_VARIANT_ADD(fdstore, ipv4_v1_v2) { AF_INET, 1, 2 };
FIXTURE_VARIANT_ADD(fdstore, ipv6_v2_v1) { AF_INET6, 2, 1 };

FIXTURE_SETUP(fdstore)
{

	self->svc.kvd = self->next = -1;
	self->svc.lfd = self->stored = -1;
	self->sock = notify_socket("fdstore", self->path, sizeof(self->path));
	ASSERT_LE(0, self->sock);
	ASSERT_EQ(0, netns_enter());
	ASSERT_EQ(0, rundir_make(self->svc.rundir, sizeof(self->svc.rundir)));
	snprintf(self->svc.log, sizeof(self->svc.log), "%s/kvd.log",
		 self->svc.rundir);
	snprintf(self->svc.sock, sizeof(self->svc.sock), "%s/kvd.sock",
		 self->svc.rundir);
}

FIXTURE_TEARDOWN(fdstore)
{
	if (self->next > 0)
		stop_and_reap(self->next, SIGKILL);
	if (self->stored >= 0)
		close(self->stored);
	service_teardown(&self->svc);
	close(self->sock);
	unlink(self->path);
	unsetenv("NOTIFY_SOCKET");
}

/* kvd-vN with the stored listener as fd 3, named in $LISTEN_FDNAMES */
static pid_t kvd_restart(int version, int fd, const char *rundir,
			 const char *listen)
{
	char path[512], name[16], sock[512], log[512];
	pid_t pid;

	snprintf(sock, sizeof(sock), "%s/kvd.sock", rundir);
	snprintf(log, sizeof(log), "%s/kvd.log", rundir);
	snprintf(name, sizeof(name), "kvd-v%d", version);
	bin(name, path, sizeof(path));
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		char pidstr[16];
		int lfd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		if (lfd >= 0)
			dup2(lfd, 2);
		if (dup2(fd, 3) < 0)
			_exit(126);
		snprintf(pidstr, sizeof(pidstr), "%d", getpid());
		setenv("LISTEN_PID", pidstr, 1);
		setenv("LISTEN_FDS", "1", 1);
		setenv("LISTEN_FDNAMES", SRV_FDNAME, 1);
		execl(path, path, "--quiet", "--fdstore", "--listen", listen,
		      (char *)NULL);
		_exit(127);
	}
	if (wait_path(sock, 10000)) {
		stop_and_reap(pid, SIGKILL);
		return -ETIMEDOUT;
	}
	return pid;
}

TEST_F(fdstore, crash_then_taken_back)
{
	const char *listen = variant->family == AF_INET6 ? "[::1]:0" :
			     "127.0.0.1:0";
	const char *args[] = { "--fdstore", "--listen", listen, NULL };
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char msg[256], want[64], reply[64];
	int fd, port, version;
	pid_t from, pid;

	self->svc.kvd = kvd_start(variant->first, -1, self->svc.rundir, args);
	ASSERT_LT(0, self->svc.kvd);
	ASSERT_EQ(0, notify_recv_fd(self->sock, msg, sizeof(msg), &from,
				    &self->stored, 5000));
	EXPECT_EQ(self->svc.kvd, from);
	EXPECT_STREQ("FDSTORE=1\nFDNAME=" SRV_FDNAME, msg);
	ASSERT_LE(0, self->stored);
	ASSERT_EQ(0, getsockname(self->stored, (struct sockaddr *)&ss, &len));
	EXPECT_EQ(variant->family, ss.ss_family);
	port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	ASSERT_LT(0, port);
	ASSERT_EQ(0, notify_recv(self->sock, msg, sizeof(msg), &from, 5000));
	EXPECT_STREQ("READY=1\nSTATUS=serving", msg);
	self->svc.port = port;
	ASSERT_EQ(self->svc.kvd, serving_pid(&self->svc, variant->family));

	/* the crash: the listener lives on in our copy */
	ASSERT_LE(0, stop_and_reap(self->svc.kvd, SIGKILL));
	self->svc.kvd = -1;
	fd = client_connect(variant->family, port);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, resp_send(fd, 1, (const char *const[]){ "PING" }));

	self->next = kvd_restart(variant->next, self->stored, self->svc.rundir,
				 listen);
	ASSERT_LT(0, self->next);
	EXPECT_LT(0, resp_reply(fd, reply, sizeof(reply), 10000));
	EXPECT_STREQ("+PONG\r\n", reply);
	ASSERT_EQ(0, kvd_info(fd, &pid, &version));
	EXPECT_EQ(self->next, pid);
	EXPECT_EQ(variant->next, version);
	close(fd);

	/* READY=1 alone: what came back is not stored again */
	ASSERT_EQ(0, notify_recv(self->sock, msg, sizeof(msg), &from, 5000));
	EXPECT_EQ(self->next, from);
	snprintf(want, sizeof(want), "READY=1\nSTATUS=serving");
	EXPECT_STREQ(want, msg);
	EXPECT_EQ(-ETIMEDOUT, notify_recv(self->sock, msg, sizeof(msg), &from,
					  200)) {
		TH_LOG("pid %d said more: %s", from, msg);
	}
}

TEST_HARNESS_MAIN
