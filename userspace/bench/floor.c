// SPDX-License-Identifier: GPL-2.0-only
/*
 * The floor: a Unix-socket ping-pong between two processes on this
 * machine, the least any handover message costs. Blackouts read as a
 * multiple of it. And what passing a socket costs (SCM_RIGHTS), the least
 * a connection can add to a handover.
 */
#include <string.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "baton_proto.h"

#define ROUNDS 20000
#define SCM_ROUNDS 400
#define SCM_FDS	BATON_MAX_FDS_PER_MSG	/* one handover batch */

static int cmp_u64(const void *a, const void *b)
{
	__u64 x = *(const __u64 *)a, y = *(const __u64 *)b;

	return x < y ? -1 : x > y;
}

double floor_rtt_us(void)
{
	__u64 *rtt = malloc(ROUNDS * sizeof(*rtt));
	double median = -1;
	int sp[2], i;
	pid_t pid;
	char c = 0;

	if (!rtt || socketpair(AF_UNIX, SOCK_STREAM, 0, sp) < 0)
		goto free_rtt;
	pid = fork();
	if (pid == 0) {
		close(sp[0]);
		while (read(sp[1], &c, 1) == 1)
			if (write(sp[1], &c, 1) != 1)
				break;
		_exit(0);
	}
	close(sp[1]);
	for (i = 0; i < ROUNDS; i++) {
		__u64 t = now_ns();

		if (write(sp[0], &c, 1) != 1 || read(sp[0], &c, 1) != 1)
			break;
		rtt[i] = now_ns() - t;
	}
	close(sp[0]);
	waitpid(pid, NULL, 0);
	if (i == ROUNDS) {
		qsort(rtt, ROUNDS, sizeof(*rtt), cmp_u64);
		median = rtt[ROUNDS / 2] / 1000.0;
	}
free_rtt:
	free(rtt);
	return median;
}

/* One batch of fds over sp; 0, or -1. */
static int scm_send(int sp, const int *fds, unsigned int n)
{
	char cbuf[CMSG_SPACE(SCM_FDS * sizeof(int))] = {};
	char c = 0;
	struct iovec iov = { .iov_base = &c, .iov_len = 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = cbuf,
			     .msg_controllen = CMSG_SPACE(n * sizeof(int)) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(n * sizeof(int));
	memcpy(CMSG_DATA(cm), fds, n * sizeof(int));
	return sendmsg(sp, &mh, 0) == 1 ? 0 : -1;
}

/* Receives a batch, closes what came, answers one byte; until EOF. */
static void scm_echo(int sp)
{
	char cbuf[CMSG_SPACE(SCM_FDS * sizeof(int))];
	char c;
	struct iovec iov = { .iov_base = &c, .iov_len = 1 };

	for (;;) {
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
				     .msg_control = cbuf,
				     .msg_controllen = sizeof(cbuf) };
		struct cmsghdr *cm;

		if (recvmsg(sp, &mh, MSG_CMSG_CLOEXEC) != 1)
			return;
		for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
			int *fd = (int *)CMSG_DATA(cm);
			size_t i, n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			for (i = 0; i < n; i++)
				close(fd[i]);
		}
		if (write(sp, &c, 1) != 1)
			return;
	}
}

/*
 * What SCM_RIGHTS costs a TCP socket: batches of 253 between two
 * processes, each received and closed, as a handover's are, the round
 * trip (floor_rtt_us) taken off; the median batch, per fd, in us.
 */
double floor_scm_us_per_fd(double rtt_us)
{
	__u64 *t = malloc(SCM_ROUNDS * sizeof(*t));
	int fds[SCM_FDS], sp[2] = { -1, -1 }, i, n;
	double per_fd = -1;
	pid_t pid;
	char c;

	if (!t || socketpair(AF_UNIX, SOCK_STREAM, 0, sp) < 0)
		goto free_t;	/* free(NULL) is nothing */
	for (n = 0; n < SCM_FDS; n++) {
		fds[n] = socket(AF_INET, SOCK_STREAM, 0);
		if (fds[n] < 0)
			goto close_fds;
	}
	pid = fork();
	if (pid < 0)
		goto close_fds;
	if (pid == 0) {
		close(sp[0]);
		scm_echo(sp[1]);
		_exit(0);
	}
	close(sp[1]);
	sp[1] = -1;
	for (i = 0; i < SCM_ROUNDS; i++) {
		__u64 start = now_ns();

		if (scm_send(sp[0], fds, SCM_FDS) || read(sp[0], &c, 1) != 1)
			break;
		t[i] = now_ns() - start;
	}
	close(sp[0]);
	sp[0] = -1;
	waitpid(pid, NULL, 0);
	if (i == SCM_ROUNDS) {
		qsort(t, SCM_ROUNDS, sizeof(*t), cmp_u64);
		per_fd = (t[SCM_ROUNDS / 2] / 1000.0 - rtt_us) / SCM_FDS;
	}
close_fds:
	while (n > 0)
		close(fds[--n]);
	if (sp[0] >= 0)
		close(sp[0]);
	if (sp[1] >= 0)
		close(sp[1]);
free_t:
	free(t);
	return per_fd;
}
