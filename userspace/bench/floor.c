// SPDX-License-Identifier: GPL-2.0-only
/*
 * The floor: a Unix-socket ping-pong between two processes on this
 * machine, the least any handover message costs. Blackouts read as a
 * multiple of it.
 */
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define ROUNDS 20000

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
