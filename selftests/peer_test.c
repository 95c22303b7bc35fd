// SPDX-License-Identifier: GPL-2.0-only
/*
 * Peers that must be refused, each while a client keeps being served:
 *  1. a process of another uid on the control socket (SO_PEERCRED);
 *  2. a "new instance" no coordinator announced;
 *  3. malformed hellos: no message at all, a wrong attribute length, an
 *     unknown role, a packet larger than any message;
 *  4. a second coordinator, one whose step would take over an hour, and
 *     an UPGRADE with unknown flags; an instance that accepts nothing,
 *     its control socket's queue full: status and upgrade give up in
 *     time; a second batonctl, refused with a report naming the first;
 *  5. a new version that cannot read the old one's state;
 *  6. new instances that break the protocol mid-upgrade (fake_peer), to
 *     the coordinator or to the old instance:
 *     each is a clear error and a rollback, and nothing was lost.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "control/control.h"
#include "helpers.h"

FIXTURE(peer) {
	struct service svc;
	int fd;
};

FIXTURE_SETUP(peer)
{
	ASSERT_EQ(0, service_up(&self->svc, AF_INET, 1));
	self->fd = client_connect(AF_INET, self->svc.port);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, resp_expect(self->fd, ":1\r\n", 2, "INCR", "n"));
}

FIXTURE_TEARDOWN(peer)
{
	/* the refused peer changed nothing: same instance, same connection */
	pid_t pid;
	int version;

	EXPECT_EQ(0, resp_expect(self->fd, ":2\r\n", 2, "INCR", "n"));
	EXPECT_EQ(0, kvd_info(self->fd, &pid, &version));
	EXPECT_EQ(self->svc.kvd, pid);
	close(self->fd);
	service_down(&self->svc);
}

/*
 * Sends m on a fresh connection to the service and returns the errno of
 * the ERROR it answers with, 0 for any other answer, or -errno.
 */
static int answer_to(const char *sock_path, struct baton_msg *m, size_t len,
		     __u16 *type)
{
	const struct nlattr *tb[BATON_A_MAX + 1];
	int sock = ctl_connect(sock_path, 5000), err;

	if (sock < 0)
		return sock;
	if (send(sock, m->buf, len ? len : m->nlh->nlmsg_len, 0) < 0) {
		err = -errno;
		goto close_sock;
	}
	err = msg_recv(sock, m, 5000) ?: msg_parse(m, tb);
	if (err)
		goto close_sock;
	*type = m->nlh->nlmsg_type;
	err = *type == BATON_MSG_ERROR ? (int)attr_u32(tb, BATON_A_ERRNO, 0) : 0;
close_sock:
	close(sock);
	return err;
}

static void hello(struct baton_msg *m, __u32 role)
{
	msg_init(m, BATON_MSG_HELLO);
	msg_put_u32(m, BATON_A_ROLE, role);
	msg_put_u32(m, BATON_A_PROTO, BATON_PROTO_VERSION);
	msg_put_u32(m, BATON_A_STATE_VERSION, 1);
}

TEST_F(peer, other_uid_refused)
{
	int status;
	pid_t child;

	/* let the other uid reach the socket, so that only its creds count */
	ASSERT_EQ(0, chmod(self->svc.rundir, 0755));
	ASSERT_EQ(0, chmod(self->svc.sock, 0666));
	child = fork();
	ASSERT_LE(0, child);
	if (child == 0) {
		const struct nlattr *tb[BATON_A_MAX + 1];
		struct baton_msg *m = msg_alloc();
		int sock;

		if (!m || setgid(65534) || setuid(65534))
			_exit(100);
		/* refused on arrival, before it could say anything */
		sock = ctl_connect(self->svc.sock, 5000);
		if (sock < 0)
			_exit(101);
		if (msg_recv(sock, m, 5000) || msg_parse(m, tb) ||
		    m->nlh->nlmsg_type != BATON_MSG_ERROR)
			_exit(102);
		_exit(attr_u32(tb, BATON_A_ERRNO, 103));
	}
	ASSERT_EQ(child, waitpid(child, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(EPERM, WEXITSTATUS(status));
}

TEST_F(peer, unannounced_successor_refused)
{
	struct baton_msg *m = msg_alloc();
	__u16 type = 0;

	ASSERT_NE(NULL, m);
	hello(m, BATON_ROLE_SUCCESSOR);
	EXPECT_EQ(EPERM, answer_to(self->svc.sock, m, 0, &type));
	EXPECT_EQ(BATON_MSG_ERROR, type);
	msg_free(m);
}

TEST_F(peer, malformed_hello_refused)
{
	struct baton_msg *m = msg_alloc();
	__u16 two = 2, type = 0;
	int sock;

	ASSERT_NE(NULL, m);
	/* not a message: a header that disagrees with the packet */
	msg_init(m, BATON_MSG_HELLO);
	m->nlh->nlmsg_len = 4000;
	EXPECT_EQ(-ECONNRESET, answer_to(self->svc.sock, m, NLMSG_HDRLEN, &type));

	/* a role of two bytes */
	msg_init(m, BATON_MSG_HELLO);
	msg_put(m, BATON_A_ROLE, sizeof(two), &two);
	EXPECT_EQ(EPROTO, answer_to(self->svc.sock, m, 0, &type));

	/* no role */
	msg_init(m, BATON_MSG_HELLO);
	EXPECT_EQ(EPROTO, answer_to(self->svc.sock, m, 0, &type));

	/* a role nobody knows */
	hello(m, 99);
	EXPECT_EQ(EINVAL, answer_to(self->svc.sock, m, 0, &type));

	/* not a hello */
	msg_init(m, BATON_MSG_ACTIVE);
	EXPECT_EQ(EPROTO, answer_to(self->svc.sock, m, 0, &type));

	/* larger than any message */
	sock = ctl_connect(self->svc.sock, 5000);
	ASSERT_LE(0, sock);
	{
		char *big = calloc(1, BATON_MSG_MAX * 2);

		ASSERT_NE(NULL, big);
		EXPECT_EQ(BATON_MSG_MAX * 2, send(sock, big, BATON_MSG_MAX * 2, 0));
		EXPECT_EQ(-ECONNRESET, msg_recv(sock, m, 5000));
		free(big);
	}
	close(sock);
	msg_free(m);
}

TEST_F(peer, one_coordinator_at_a_time)
{
	const struct nlattr *tb[BATON_A_MAX + 1];
	struct baton_msg *m = msg_alloc();
	__u16 type = 0;
	int first;

	ASSERT_NE(NULL, m);
	first = ctl_connect(self->svc.sock, 5000);
	ASSERT_LE(0, first);
	hello(m, BATON_ROLE_COORDINATOR);
	msg_put_u32(m, BATON_A_TIMEOUT_MS, BATON_TIMEOUT_MS_MAX);
	ASSERT_EQ(0, msg_send(first, m));
	/* the copies of its listeners and control socket, then WELCOME */
	do {
		ASSERT_EQ(0, msg_recv(first, m, 5000));
		msg_close_fds(m);
	} while (m->nlh->nlmsg_type == BATON_MSG_SOCKETS);
	ASSERT_EQ(BATON_MSG_WELCOME, m->nlh->nlmsg_type);

	hello(m, BATON_ROLE_COORDINATOR);
	EXPECT_EQ(EBUSY, answer_to(self->svc.sock, m, 0, &type));

	/*
	 * a step longer than any may be (the first's is the longest): its
	 * deadlines, twice it, would overflow an int (the sanitized kvd
	 * aborted; the unsanitized one set no deadline, and such a
	 * coordinator was never let go). The hello's own fault comes first.
	 */
	hello(m, BATON_ROLE_COORDINATOR);
	msg_put_u32(m, BATON_A_TIMEOUT_MS, 0x40000000);
	EXPECT_EQ(ERANGE, answer_to(self->svc.sock, m, 0, &type));
	hello(m, BATON_ROLE_COORDINATOR);
	msg_put_u32(m, BATON_A_TIMEOUT_MS, BATON_TIMEOUT_MS_MAX + 1);
	EXPECT_EQ(ERANGE, answer_to(self->svc.sock, m, 0, &type));

	/* flags from a future version are refused, not ignored */
	msg_init(m, BATON_MSG_UPGRADE);
	msg_put_u32(m, BATON_A_PID, 1);
	msg_put_u32(m, BATON_A_FLAGS, 1U << 31);
	ASSERT_EQ(0, msg_send(first, m));
	ASSERT_EQ(0, msg_recv(first, m, 5000));
	ASSERT_EQ(0, msg_parse(m, tb));
	EXPECT_EQ(BATON_MSG_ERROR, m->nlh->nlmsg_type);
	EXPECT_EQ(EINVAL, attr_u32(tb, BATON_A_ERRNO, 0));

	/* DEACTIVATE before any phase 1 */
	msg_init(m, BATON_MSG_DEACTIVATE);
	ASSERT_EQ(0, msg_send(first, m));
	ASSERT_EQ(0, msg_recv(first, m, 5000));
	EXPECT_EQ(BATON_MSG_ERROR, m->nlh->nlmsg_type);
	close(first);
	msg_free(m);
}

#define FILL_CONNS	32	/* more than the control socket's backlog */

/*
 * An instance that accepts nothing (stopped here), its control socket's
 * queue full (callers that gave up left their connections there): status
 * and an upgrade each give up within their timeout, saying so, where
 * their connect() waited for room for ever. Let go on, it serves.
 */
TEST_F_TIMEOUT(peer, queue_full_gives_up, 60)
{
	char path[256], out[8192];
	const char *status_args[] = { "-j", "status", "kvd", NULL };
	const char *upgrade_args[] = { "-j", "upgrade", "kvd", "--timeout-ms",
				       "1000", "--", path, NULL };
	const char *const *runs[] = { status_args, upgrade_args };
	int fill[FILL_CONNS], fd, i, status;
	ssize_t n;
	pid_t pid;

	bin("kvd-v2", path, sizeof(path));
	ASSERT_EQ(0, kill(self->svc.kvd, SIGSTOP));
	for (i = 0; i < FILL_CONNS; i++) {
		struct sockaddr_un sun = { .sun_family = AF_UNIX };

		fill[i] = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0);
		ASSERT_LE(0, fill[i]);
		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s",
			 self->svc.sock);
		connect(fill[i], (struct sockaddr *)&sun, sizeof(sun));
	}
	for (i = 0; i < 2; i++) {
		pid = batonctl_start(runs[i], &fd);
		ASSERT_LT(0, pid);
		status = wait_exit(pid, 20000);
		if (status == -ETIMEDOUT) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
		n = read(fd, out, sizeof(out) - 1);
		out[n > 0 ? n : 0] = '\0';
		close(fd);
		TH_LOG("%s", out);
		EXPECT_NE(-ETIMEDOUT, status) TH_LOG("batonctl %s hangs", runs[i][1]);
		if (i == 1) {
			EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1);
			EXPECT_NE(NULL, strstr(out, "accepts no connection"));
		} else {
			EXPECT_NE(NULL, strstr(out, "\"serving\":0"));
		}
	}
	for (i = 0; i < FILL_CONNS; i++)
		close(fill[i]);
	/* the teardown's INCR: it serves */
	ASSERT_EQ(0, kill(self->svc.kvd, SIGCONT));
}

/*
 * A second batonctl while the first attaches (its journal record not
 * written yet, the old instance stopped): refused with a report (-j,
 * JSON) that names the first, not a lock "left over" to stop by hand.
 */
TEST_F_TIMEOUT(peer, second_batonctl_names_the_first, 60)
{
	char path[256], lock[256], note[128] = "", out[8192], want[128];
	const char *first_args[] = { "-j", "upgrade", "kvd", "--timeout-ms",
				     "20000", "--", path, NULL };
	const char *second_args[] = { "-j", "upgrade", "kvd", "--", path,
				      NULL };
	int fd, lfd, i;
	ssize_t n;
	pid_t first;

	bin("kvd-v2", path, sizeof(path));
	snprintf(lock, sizeof(lock), "%s/kvd/upgrade.lock", self->svc.rundir);
	ASSERT_EQ(0, kill(self->svc.kvd, SIGSTOP));
	first = batonctl_start(first_args, &fd);
	ASSERT_LT(0, first);
	snprintf(want, sizeof(want), "%d ", first);
	for (i = 0; i < 500 && strncmp(note, want, strlen(want)); i++) {
		usleep(10000);
		lfd = open(lock, O_RDONLY);
		n = lfd < 0 ? 0 : read(lfd, note, sizeof(note) - 1);
		note[n > 0 ? n : 0] = '\0';
		if (lfd >= 0)
			close(lfd);
	}
	EXPECT_EQ(0, strncmp(note, want, strlen(want))) TH_LOG("lock note: %s", note);

	EXPECT_EQ(1, batonctl(out, sizeof(out), second_args));
	TH_LOG("%s", out);
	EXPECT_NE(NULL, strstr(out, "\"result\":\"refused\""));
	snprintf(want, sizeof(want), "batonctl (pid %d) is running kvd's upgrade",
		 first);
	EXPECT_NE(NULL, strstr(out, want));

	/* the first gone before its attach: the old one serves on */
	kill(first, SIGKILL);
	waitpid(first, NULL, 0);
	close(fd);
	ASSERT_EQ(0, kill(self->svc.kvd, SIGCONT));
}

/*
 * Each step step_ms: the sure time, but where the test waits for one to
 * pass (an ASan kvd or fake_peer under TCG can take seconds to start,
 * and a step run out says something else than the fault looked for)
 */
static int upgrade_to(const char *rundir, const char *step_ms,
		      const char *const *cmd, char *out, size_t len)
{
	char log[256];
	const char *args[16] = { "upgrade", "kvd", "-j", "--timeout-ms", step_ms,
				 "--log", log, "--" };
	int n = 8;

	snprintf(log, sizeof(log), "%s/new.log", rundir);
	while (*cmd && n < 15)
		args[n++] = *cmd++;
	args[n] = NULL;
	return batonctl(out, len, args);
}

TEST_F(peer, unreadable_state_refused)
{
	char path[256], out[4096];
	const char *cmd[] = { bin("kvd-v2", path, sizeof(path)), "--quiet",
			      "--state-min", "2", NULL };

	EXPECT_EQ(1, upgrade_to(self->svc.rundir, SURE_STEP_MS, cmd, out,
				sizeof(out)));
	EXPECT_NE(NULL, strstr(out, "\"result\":\"rolled-back\""));
	EXPECT_NE(NULL, strstr(out, "state version 1 is older than 2"));
	EXPECT_EQ(0, json_num(out, "conns"));	/* nothing had moved */
}

FIXTURE(bad_protocol) {
	struct service svc;
	int fd[3];
};

FIXTURE_VARIANT(bad_protocol) {
	const char *mode;
	const char *reason;
	const char *step_ms;
};

FIXTURE_VARIANT_ADD(bad_protocol, garbage_hello) { "garbage-hello", "exited with status 3 before it was active", SURE_STEP_MS };
FIXTURE_VARIANT_ADD(bad_protocol, truncated_hello) { "truncated-hello", "exited with status 3 before it was active", SURE_STEP_MS };
/* the one that waits for its step to run out */
FIXTURE_VARIANT_ADD(bad_protocol, never_ready) { "silent", "did not say READY", "5000" };
/* said as malformed, not as the new instance gone (it is not) */
FIXTURE_VARIANT_ADD(bad_protocol, malformed_to_old) { "bad-to-old", "the new instance sent a malformed message before it was active", SURE_STEP_MS };
FIXTURE_VARIANT_ADD(bad_protocol, malformed_ready) { "bad-ready", "malformed message from the new instance", SURE_STEP_MS };
FIXTURE_VARIANT_ADD(bad_protocol, out_of_order) { "wrong-message", "unexpected ACTIVE from the new instance", SURE_STEP_MS };

FIXTURE_SETUP(bad_protocol)
{
	int i;

	ASSERT_EQ(0, service_up(&self->svc, AF_INET6, 1));
	for (i = 0; i < 3; i++) {
		self->fd[i] = client_connect(AF_INET6, self->svc.port);
		ASSERT_LE(0, self->fd[i]);
		ASSERT_EQ(0, resp_expect(self->fd[i], "+OK\r\n", 3, "SET", "k", "v"));
	}
}

FIXTURE_TEARDOWN(bad_protocol)
{
	int i;

	for (i = 0; i < 3; i++)
		close(self->fd[i]);
	service_down(&self->svc);
}

TEST_F_TIMEOUT(bad_protocol, rolls_back, 30)
{
	char path[512], out[4096];
	const char *cmd[] = { fake_peer_path(path, sizeof(path)),
			      variant->mode, NULL };
	pid_t pid;
	int version, i;

	EXPECT_EQ(1, upgrade_to(self->svc.rundir, variant->step_ms, cmd, out,
				sizeof(out)));
	EXPECT_NE(NULL, strstr(out, "\"result\":\"rolled-back\""));
	EXPECT_NE(NULL, strstr(out, variant->reason));
	TH_LOG("%s", strstr(out, "\"error\"") ?: out);
	EXPECT_FALSE(pid_alive(json_num(out, "new_pid")));
	for (i = 0; i < 3; i++)
		EXPECT_EQ(0, resp_expect(self->fd[i], "$1\r\nv\r\n", 2, "GET", "k"));
	ASSERT_EQ(0, kvd_info(self->fd[0], &pid, &version));
	EXPECT_EQ(self->svc.kvd, pid);
}

TEST_HARNESS_MAIN
