// SPDX-License-Identifier: GPL-2.0-only
/*
 * The cost per connection of moving established connections by their
 * state, in the VM (scripts/vm.sh), the only place baton.ko loads:
 *  1. the floor: a Unix socket round trip between two processes, as the
 *     scheduler places them and on one CPU (TCG makes the first vary);
 *  2. for each count (100 and 1,000 unless given): that many loopback
 *     connections, each with unread bytes at the server, moved
 *     - through userspace TCP_REPAIR: baton_tcp_checkpoint(), close(),
 *       baton_tcp_restore(), one connection after the other;
 *     - through baton.ko: baton_tcp_export_conns(), close() each,
 *       baton_tcp_import_conns(), and the same inside a freeze;
 *     each five times, alternating, the median kept; every connection
 *     checked to carry its bytes afterwards.
 * Prints a line per figure, then one JSON object.
 *
 *	repair_bench [COUNT...]
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "baton.h"
#include "baton_tcp.h"
#include "helpers.h"

#define ROUNDS		5
#define FLOOR_TRIPS	10000
#define UNREAD		100	/* bytes each server has not read */

static double now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static void log_stderr(void *ctx, enum baton_log_level level, const char *msg)
{
	(void)ctx;
	(void)level;
	fprintf(stderr, "repair_bench: %s\n", msg);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return v[n / 2];
}

/*
 * A Unix socket round trip of one byte between two processes: the
 * median. On one CPU if same_cpu, else where the scheduler puts them.
 */
static double floor_us(bool same_cpu)
{
	static double rtt[FLOOR_TRIPS];
	int sv[2], status, i;
	cpu_set_t cpus, all;
	char c = 0;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) ||
	    sched_getaffinity(0, sizeof(all), &all))
		return -1;
	CPU_ZERO(&cpus);
	CPU_SET(0, &cpus);
	if (same_cpu && sched_setaffinity(0, sizeof(cpus), &cpus))
		return -1;
	pid = fork();
	if (pid == 0) {
		close(sv[0]);
		while (read(sv[1], &c, 1) == 1)
			if (write(sv[1], &c, 1) != 1)
				break;
		_exit(0);
	}
	close(sv[1]);
	for (i = 0; i < FLOOR_TRIPS; i++) {
		double t0 = now_us();

		if (write(sv[0], &c, 1) != 1 || read(sv[0], &c, 1) != 1)
			break;
		rtt[i] = now_us() - t0;
	}
	close(sv[0]);
	waitpid(pid, &status, 0);
	sched_setaffinity(0, sizeof(all), &all);
	return i == FLOOR_TRIPS ? median(rtt, FLOOR_TRIPS) : -1;
}

struct conns {
	int n;
	int *cli, *srv;
};

static int read_exact(int fd, char *buf, size_t len)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	size_t got = 0;
	ssize_t r;

	while (got < len) {
		if (poll(&p, 1, 5000) != 1)
			return -ETIMEDOUT;
		r = recv(fd, buf + got, len - got, MSG_DONTWAIT);
		if (r <= 0)
			return -EIO;
		got += r;
	}
	return 0;
}

static int conns_open(struct conns *c, int lfd, int port, int n)
{
	char unread[UNREAD];

	memset(unread, 'u', sizeof(unread));
	c->n = n;
	c->cli = calloc(n, sizeof(int));
	c->srv = calloc(n, sizeof(int));
	if (!c->cli || !c->srv)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		struct pollfd p = { .fd = lfd, .events = POLLIN };

		c->cli[i] = client_connect(AF_INET, port);
		if (c->cli[i] < 0 || poll(&p, 1, 5000) != 1)
			return -EIO;
		c->srv[i] = accept(lfd, NULL, NULL);
		if (c->srv[i] < 0 ||
		    send(c->cli[i], unread, sizeof(unread), 0) != sizeof(unread))
			return -EIO;
	}
	usleep(100 * 1000);	/* received and acknowledged */
	return 0;
}

static void conns_close(struct conns *c)
{
	for (int i = 0; i < c->n; i++) {
		close(c->cli[i]);
		close(c->srv[i]);
	}
	free(c->cli);
	free(c->srv);
}

/* Each connection still carries bytes both ways, its unread ones first */
static int conns_check(struct conns *c)
{
	char buf[UNREAD];

	for (int i = 0; i < c->n; i++) {
		if (read_exact(c->srv[i], buf, UNREAD) || buf[0] != 'u' ||
		    buf[UNREAD - 1] != 'u' || send(c->srv[i], "x", 1, 0) != 1 ||
		    read_exact(c->cli[i], buf, 1) || buf[0] != 'x')
			return -(i + 1);
	}
	return 0;
}

/* baton_tcp_checkpoint(), close(), baton_tcp_restore(), one by one */
static double move_userspace(struct baton_tcp *tcp, struct conns *c)
{
	double t0 = now_us();

	for (int i = 0; i < c->n; i++) {
		size_t len;
		void *rec;
		int fd;

		if (baton_tcp_checkpoint(tcp, c->srv[i], &rec, &len))
			return -1;
		close(c->srv[i]);
		fd = baton_tcp_restore(tcp, rec, len);
		free(rec);
		if (fd < 0)
			return -1;
		c->srv[i] = fd;
	}
	return (now_us() - t0) / c->n;
}

/* baton_tcp_export_conns(), close() each, baton_tcp_import_conns() */
static double move_module(struct baton_tcp *tcp, struct conns *c, bool freeze)
{
	struct baton_flow *f = NULL;
	double t0;
	int *fds, err = 0;
	__u32 id = 0;
	size_t len;
	void *rec;

	fds = calloc(c->n, sizeof(int));
	if (freeze)
		f = calloc(c->n, sizeof(*f));
	if (!fds || (freeze && !f))
		return -1;
	t0 = now_us();
	if (freeze) {
		for (int i = 0; i < c->n; i++)
			f[i].fd = c->srv[i];
		err = baton_tcp_freeze(tcp, f, c->n, 10000, NULL, &id);
	}
	if (!err)
		err = baton_tcp_export_conns(tcp, c->srv, c->n, &rec, &len);
	if (err) {
		fprintf(stderr, "repair_bench: export: %s\n", strerror(-err));
		return -1;
	}
	for (int i = 0; i < c->n; i++)
		close(c->srv[i]);
	err = baton_tcp_import_conns(tcp, rec, len, fds, c->n);
	free(rec);
	if (!err && freeze)
		err = baton_tcp_thaw(tcp, id, NULL);
	if (err) {
		fprintf(stderr, "repair_bench: import: %s\n", strerror(-err));
		return -1;
	}
	memcpy(c->srv, fds, c->n * sizeof(int));
	free(fds);
	free(f);
	return (now_us() - t0) / c->n;
}

struct result {
	int n;
	double user_us, module_us, frozen_us;
};

static int bench(struct baton_tcp *tcp, int lfd, int port, int n,
		 struct result *r)
{
	double u[ROUNDS], m[ROUNDS], f[ROUNDS];
	struct conns c;
	int err;

	err = conns_open(&c, lfd, port, n);
	if (err) {
		fprintf(stderr, "repair_bench: %d connections: %s\n", n,
			strerror(-err));
		return err;
	}
	for (int k = 0; k < ROUNDS; k++) {
		m[k] = move_module(tcp, &c, false);
		f[k] = move_module(tcp, &c, true);
		u[k] = move_userspace(tcp, &c);
		if (u[k] < 0 || m[k] < 0 || f[k] < 0) {
			fprintf(stderr, "repair_bench: %d connections: a move %s failed\n",
				n, u[k] < 0 ? "through userspace" :
				m[k] < 0 ? "through baton.ko" :
				"through baton.ko, frozen");
			return -EIO;
		}
	}
	err = conns_check(&c);
	if (err) {
		fprintf(stderr, "repair_bench: connection %d lost its bytes\n",
			-err - 1);
		return -EIO;
	}
	conns_close(&c);
	r->n = n;
	r->user_us = median(u, ROUNDS);
	r->module_us = median(m, ROUNDS);
	r->frozen_us = median(f, ROUNDS);
	printf("%5d connections: userspace %8.1f us/conn, module %7.1f us/conn (%.2f of userspace), frozen %7.1f us/conn\n",
	       n, r->user_us, r->module_us, r->module_us / r->user_us,
	       r->frozen_us);
	return 0;
}

int main(int argc, char **argv)
{
	int counts[8] = { 100, 1000 }, ncounts = 2, lfd, port, err = 0;
	struct result res[8];
	struct baton_tcp *tcp;
	struct rlimit rl;
	double floor, floor_cpu;

	if (argc > 1) {
		ncounts = 0;
		for (int i = 1; i < argc && ncounts < 8; i++)
			counts[ncounts++] = atoi(argv[i]);
	}
	/* 2 sockets per connection, and a restored one meanwhile */
	if (!getrlimit(RLIMIT_NOFILE, &rl)) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (netns_enter()) {
		fprintf(stderr, "repair_bench: a network namespace: %s\n",
			strerror(errno));
		return 1;
	}
	floor = floor_us(false);
	floor_cpu = floor_us(true);
	printf("floor: a Unix socket round trip takes %.1f us (%.1f us on one CPU)\n",
	       floor, floor_cpu);
	if (baton_tcp_open(&tcp, log_stderr, NULL))
		return 1;
	lfd = listener_make(AF_INET, &port);
	if (lfd < 0)
		return 1;
	for (int i = 0; i < ncounts && !err; i++)
		err = bench(tcp, lfd, port, counts[i], &res[i]);
	if (err)
		return 1;
	printf("{\"floor_us\": %.1f, \"floor_one_cpu_us\": %.1f, \"per_conn_us\": [",
	       floor, floor_cpu);
	for (int i = 0; i < ncounts; i++)
		printf("%s{\"conns\": %d, \"userspace\": %.1f, \"module\": %.1f, \"module_frozen\": %.1f, \"ratio\": %.3f}",
		       i ? ", " : "", res[i].n, res[i].user_us, res[i].module_us,
		       res[i].frozen_us, res[i].module_us / res[i].user_us);
	printf("]}\n");
	baton_tcp_close(tcp);
	close(lfd);
	return 0;
}
