// SPDX-License-Identifier: GPL-2.0-only
/*
 * What the congestion state baton.ko carries is worth to a moved flow, in
 * the VM (scripts/vm.sh, VM_MODULES="veth sch_netem"):
 *  1. two network namespaces joined by a veth whose server end delays
 *     what it sends by DELAY_MS (netem), then shapes it to RATE_MBIT
 *     with a queue of DELAY_MS (tbf): a bottleneck of a path whose
 *     round trip is twice DELAY_MS when its queue is full;
 *  2. a bulk flow, server to client, for WARMUP_S seconds; its throughput
 *     over the last BEFORE_S, as the client counts it, is "before";
 *  3. the server's socket frozen, checkpointed, closed, restored and
 *     thawed (baton_tcp_freeze(), baton_tcp_checkpoint(),
 *     baton_tcp_restore(), baton_tcp_thaw()): with the record as it is
 *     ("module"), or without its baton.ko part ("without": what
 *     TCP_REPAIR alone restores, the initial window and no RTT);
 *  4. the client's throughput in the first second after the thaw is
 *     "after"; each variant runs RUNS times, alternating, and the median
 *     of after/before is kept. Every byte is checked at the client.
 * Prints a line per run, then one JSON object. Needs baton.ko, and
 * iproute2's ip and tc first in PATH (scripts/bench-repair.sh).
 *
 *	cwnd_bench [DELAY_MS [RATE_MBIT]]
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>

#include "baton.h"
#include "baton_tcp.h"
#include "helpers.h"

#define RUNS		5
#define WARMUP_S	5
#define BEFORE_S	2	/* the last seconds of the warm-up: "before" */
#define CHUNK		(64 << 10)
#define PATTERN		251	/* byte i of the stream is i % PATTERN */
#define SRV_ADDR	"10.77.0.1"
#define CLI_ADDR	"10.77.0.2"

enum variant { WITH_MODULE, WITHOUT, NR_VARIANTS };
static const char *const variant_name[NR_VARIANTS] = { "module", "without" };

struct flow {
	int srv, cli;
	unsigned long long sent;	/* bytes written at the server */
	_Atomic unsigned long long got;	/* read at the client */
	_Atomic int bad;		/* the client saw a wrong byte */
	pthread_t reader;
};

struct run {
	double before, after;		/* Mbit/s */
	unsigned int cwnd_before, ssthresh_before, srtt_before_us;
	unsigned int cwnd_restored, cwnd_after, retrans_after;
};

static char ns_srv[32], ns_cli[32];
static int srv_ns_fd = -1, cli_ns_fd = -1;

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static void log_stderr(void *ctx, enum baton_log_level level, const char *msg)
{
	(void)ctx;
	(void)level;
	fprintf(stderr, "cwnd_bench: %s\n", msg);
}

static void netns_remove(void)
{
	const char *del_srv[] = { "ip", "netns", "del", ns_srv, NULL };
	const char *del_cli[] = { "ip", "netns", "del", ns_cli, NULL };

	if (srv_ns_fd >= 0)
		close(srv_ns_fd);
	if (cli_ns_fd >= 0)
		close(cli_ns_fd);
	if (ns_srv[0])
		run_argv(del_srv);
	if (ns_cli[0])
		run_argv(del_cli);
}

/*
 * The two namespaces and the path between them, netem on the server's
 * end; this thread is left in the server's namespace.
 */
static int netns_setup(int delay_ms, int rate_mbit)
{
	char delay[24], rate[24], path[64];
	const char *const cmds[][20] = {
		{ "ip", "netns", "add", ns_srv, NULL },
		{ "ip", "netns", "add", ns_cli, NULL },
		{ "ip", "link", "add", "s0", "netns", ns_srv, "type", "veth",
		  "peer", "name", "c0", "netns", ns_cli, NULL },
		{ "ip", "-n", ns_srv, "addr", "add", SRV_ADDR "/24", "dev", "s0", NULL },
		{ "ip", "-n", ns_cli, "addr", "add", CLI_ADDR "/24", "dev", "c0", NULL },
		{ "ip", "-n", ns_srv, "link", "set", "s0", "up", NULL },
		{ "ip", "-n", ns_cli, "link", "set", "c0", "up", NULL },
		/* the delay, then the bottleneck: its queue holds DELAY_MS */
		{ "tc", "-n", ns_srv, "qdisc", "add", "dev", "s0", "root",
		  "handle", "1:", "netem", "delay", delay, "limit", "100000", NULL },
		{ "tc", "-n", ns_srv, "qdisc", "add", "dev", "s0", "parent", "1:",
		  "handle", "2:", "tbf", "rate", rate, "burst", "64kb",
		  "latency", delay, NULL },
	};
	int err;

	snprintf(delay, sizeof(delay), "%dms", delay_ms);
	snprintf(rate, sizeof(rate), "%dmbit", rate_mbit);
	mkdir("/run", 0755);
	mkdir("/run/netns", 0755);
	snprintf(ns_srv, sizeof(ns_srv), "cwnd-srv-%d", getpid());
	snprintf(ns_cli, sizeof(ns_cli), "cwnd-cli-%d", getpid());
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		err = run_argv(cmds[i]);
		if (err) {
			if (i == 0)
				ns_srv[0] = 0;
			if (i <= 1)
				ns_cli[0] = 0;
			return err;
		}
	}
	snprintf(path, sizeof(path), "/run/netns/%s", ns_srv);
	srv_ns_fd = open(path, O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/run/netns/%s", ns_cli);
	cli_ns_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (srv_ns_fd < 0 || cli_ns_fd < 0 || setns(srv_ns_fd, CLONE_NEWNET))
		return -errno;
	return 0;
}

static void *reader(void *arg)
{
	struct flow *f = arg;
	static char buf[1 << 20];
	unsigned long long off = 0;
	ssize_t n;

	while ((n = read(f->cli, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++)
			if ((unsigned char)buf[i] != (off + i) % PATTERN)
				atomic_store(&f->bad, 1);
		off += n;
		atomic_store(&f->got, off);
	}
	if (n < 0)
		atomic_store(&f->bad, 1);
	return NULL;
}

/* A connection from the client's namespace to a listener in the server's */
static int flow_open(struct flow *f)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t al = sizeof(a);
	int lfd, err;

	memset(f, 0, sizeof(*f));
	f->srv = f->cli = -1;
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	inet_pton(AF_INET, SRV_ADDR, &a.sin_addr);
	if (lfd < 0)
		return -errno;
	if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) || listen(lfd, 1) ||
	    getsockname(lfd, (struct sockaddr *)&a, &al) ||
	    setns(cli_ns_fd, CLONE_NEWNET))
		goto close_connection;
	f->cli = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	/* back in the server's namespace, where everything else happens */
	if (setns(srv_ns_fd, CLONE_NEWNET) || f->cli < 0 ||
	    connect(f->cli, (struct sockaddr *)&a, sizeof(a)))
		goto close_connection;
	f->srv = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (f->srv < 0)
		goto close_connection;
	/* a stream that stalls ends the reader, as a failure */
	if (setsockopt(f->cli, SOL_SOCKET, SO_RCVTIMEO, &(struct timeval){ 10, 0 },
		       sizeof(struct timeval)))
		goto close_connection;
	err = -pthread_create(&f->reader, NULL, reader, f);
	if (!err)
		goto close_listener;
	errno = -err;

close_connection:
	err = -errno;
	if (f->srv >= 0)
		close(f->srv);
	if (f->cli >= 0)
		close(f->cli);
	f->srv = f->cli = -1;
close_listener:
	if (lfd >= 0)
		close(lfd);
	return err;
}

/* Writes the stream into fd until the clock says `until` */
static int pump(struct flow *f, int fd, double until)
{
	static char buf[CHUNK + PATTERN];
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	double left;
	ssize_t n;

	if (!buf[1])
		for (size_t i = 0; i < sizeof(buf); i++)
			buf[i] = i % PATTERN;
	while ((left = until - now_s()) > 0) {
		if (poll(&p, 1, left * 1000 + 1) < 0)
			return -errno;
		if (!(p.revents & POLLOUT))
			continue;
		n = send(fd, buf + f->sent % PATTERN, CHUNK, MSG_DONTWAIT);
		if (n < 0 && errno != EAGAIN)
			return -errno;
		if (n > 0)
			f->sent += n;
	}
	return 0;
}

static int info(int fd, struct tcp_info *ti)
{
	socklen_t l = sizeof(*ti);

	return getsockopt(fd, SOL_TCP, TCP_INFO, ti, &l) ? -errno : 0;
}

static int one_run(struct baton_tcp *tcp, enum variant v, struct run *r)
{
	struct baton_flow bf = { 0 };
	unsigned long long b1, b2, b3, b4;
	double t0, t1, t2, t3, t4;
	struct tcp_info ti;
	struct flow f;
	size_t len;
	void *rec;
	__u32 id;
	int fd, err;

	err = flow_open(&f);
	if (err) {
		fprintf(stderr, "cwnd_bench: a connection: %s\n", strerror(-err));
		return err;
	}
	t0 = now_s();
	err = pump(&f, f.srv, t0 + WARMUP_S - BEFORE_S);
	t1 = now_s();
	b1 = atomic_load(&f.got);
	err = err ?: pump(&f, f.srv, t0 + WARMUP_S);
	t2 = now_s();
	b2 = atomic_load(&f.got);
	err = err ?: info(f.srv, &ti);
	if (err)
		goto close;
	r->cwnd_before = ti.tcpi_snd_cwnd;
	r->ssthresh_before = ti.tcpi_snd_ssthresh;
	r->srtt_before_us = ti.tcpi_rtt;

	bf.fd = f.srv;
	err = baton_tcp_freeze(tcp, &bf, 1, 10000, NULL, &id);
	if (err)
		goto close;
	err = baton_tcp_checkpoint(tcp, f.srv, &rec, &len);
	if (err) {
		baton_tcp_thaw(tcp, id, NULL);
		goto close;
	}
	close(f.srv);
	f.srv = -1;
	if (v == WITHOUT)
		len = rec_without(rec, len, BATON_TCP_A_KERNEL, rec);
	fd = baton_tcp_restore(tcp, rec, len);
	free(rec);
	err = baton_tcp_thaw(tcp, id, NULL);
	if (fd < 0) {
		err = fd;
		goto close;
	}
	f.srv = fd;
	if (err || (err = info(fd, &ti)))
		goto close;
	r->cwnd_restored = ti.tcpi_snd_cwnd;
	t3 = now_s();
	b3 = atomic_load(&f.got);
	err = pump(&f, fd, t3 + 1);
	t4 = now_s();
	b4 = atomic_load(&f.got);
	err = err ?: info(fd, &ti);
	if (err)
		goto close;
	r->cwnd_after = ti.tcpi_snd_cwnd;
	r->retrans_after = ti.tcpi_total_retrans;
	r->before = (b2 - b1) * 8 / (t2 - t1) / 1e6;
	r->after = (b4 - b3) * 8 / (t4 - t3) / 1e6;

	/* the rest of the stream, then the client has it all */
	shutdown(fd, SHUT_WR);
	pthread_join(f.reader, NULL);
	f.reader = 0;
	if (atomic_load(&f.bad) || atomic_load(&f.got) != f.sent) {
		fprintf(stderr, "cwnd_bench: the client read %llu bytes of %llu%s\n",
			(unsigned long long)atomic_load(&f.got), f.sent,
			atomic_load(&f.bad) ? ", some of them wrong" : "");
		err = -EIO;
	}
close:
	if (err)
		fprintf(stderr, "cwnd_bench: %s run: %s\n", variant_name[v],
			strerror(-err));
	if (f.srv >= 0)
		close(f.srv);
	if (f.reader) {
		shutdown(f.cli, SHUT_RDWR);
		pthread_join(f.reader, NULL);
	}
	close(f.cli);
	return err;
}

static int cmp_run(const void *a, const void *b)
{
	const struct run *x = a, *y = b;
	double rx = x->after / x->before, ry = y->after / y->before;

	return rx < ry ? -1 : rx > ry;
}

int main(int argc, char **argv)
{
	struct run runs[NR_VARIANTS][RUNS], *med[NR_VARIANTS];
	int delay_ms = 20, rate_mbit = 20, err;
	struct baton_tcp *tcp = NULL;

	if (argc > 1)
		delay_ms = atoi(argv[1]);
	if (argc > 2)
		rate_mbit = atoi(argv[2]);
	if (delay_ms <= 0 || rate_mbit <= 0) {
		fprintf(stderr, "usage: cwnd_bench [DELAY_MS [RATE_MBIT]]\n");
		return 2;
	}
	err = netns_setup(delay_ms, rate_mbit);
	if (err) {
		fprintf(stderr, "cwnd_bench: the namespaces and their veth with netem (modules veth and sch_netem, iproute2's ip and tc): %s\n",
			strerror(-err));
		goto remove;
	}
	/* its netlink socket in the server's namespace, where it freezes */
	err = baton_tcp_open(&tcp, log_stderr, NULL);
	if (err)
		goto remove;
	printf("a bulk flow through netem delay %d ms, rate %d Mbit/s; moved after %d s\n",
	       delay_ms, rate_mbit, WARMUP_S);
	for (int k = 0; k < RUNS && !err; k++)
		for (int v = 0; v < NR_VARIANTS && !err; v++) {
			struct run *r = &runs[v][k];

			err = one_run(tcp, v, r);
			if (err)
				break;
			printf("%-7s run %d: before %6.1f Mbit/s (cwnd %u, ssthresh %u, srtt %.1f ms); first second after %6.1f Mbit/s (%.0f%%), cwnd %u restored, %u after, %u retransmitted\n",
			       variant_name[v], k + 1, r->before, r->cwnd_before,
			       r->ssthresh_before, r->srtt_before_us / 1000.0,
			       r->after, 100 * r->after / r->before,
			       r->cwnd_restored, r->cwnd_after, r->retrans_after);
			fflush(stdout);
		}
	if (err)
		goto close_tcp;
	for (int v = 0; v < NR_VARIANTS; v++) {
		qsort(runs[v], RUNS, sizeof(runs[v][0]), cmp_run);
		med[v] = &runs[v][RUNS / 2];
		printf("%-7s median: %.0f%% of the throughput before, in the first second after\n",
		       variant_name[v], 100 * med[v]->after / med[v]->before);
	}
	printf("{\"congestion\": {\"delay_ms\": %d, \"rate_mbit\": %d, \"warmup_s\": %d, \"runs\": %d",
	       delay_ms, rate_mbit, WARMUP_S, RUNS);
	for (int v = 0; v < NR_VARIANTS; v++)
		printf(", \"%s\": {\"before_mbit\": %.1f, \"after_mbit\": %.1f, \"kept\": %.3f, \"cwnd_before\": %u, \"cwnd_restored\": %u, \"cwnd_after\": %u, \"retrans_after\": %u}",
		       variant_name[v], med[v]->before, med[v]->after,
		       med[v]->after / med[v]->before, med[v]->cwnd_before,
		       med[v]->cwnd_restored, med[v]->cwnd_after,
		       med[v]->retrans_after);
	printf("}}\n");

close_tcp:
	baton_tcp_close(tcp);
remove:
	netns_remove();
	return err ? 1 : 0;
}
