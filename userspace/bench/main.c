// SPDX-License-Identifier: GPL-2.0-only
/*
 * baton-bench: puts a verifiable load on kvd, upgrades it again and again,
 * and judges what the clients saw: lost connections, wrong replies, failed
 * connects, and how long requests that overlapped an upgrade waited, next to
 * those that did not. --baseline runs the same load with the old ways of
 * upgrading in the same invocation.
 */
#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

static const char *const mode_names[] = {
	[MODE_BATON] = "baton", [MODE_RESTART] = "restart", [MODE_DRAIN] = "drain",
	[MODE_REUSEPORT] = "reuseport",
};

struct mode_result {
	enum mode mode;
	__u64 requests, dropped, unanswered, integrity, failed_connects;
	__u64 slow_connects;
	__u64 refused, resets;
	__u64 writes, read_back, read_wrong;
	struct hist normal, stall;
	__u64 stall_max_us[MAX_UPGRADES];
	struct upgrade_result up[MAX_UPGRADES];
	unsigned int nup, failed_upgrades;
	double old_alive_ms;		/* the longest any old instance lived on */
	unsigned int old_alive_at_end;
	long rss_old_kb, rss_new_kb;
	double seconds;
	struct net_counters net;	/* during the run, if net_ok */
	bool net_ok;
	struct plot_panel panel;	/* --plot */
};

static void usage(FILE *f)
{
	fprintf(f,
"Usage: baton-bench [OPTIONS]\n"
"Puts a verifiable request/response load on kvd and upgrades it with\n"
"batonctl, then reports what the clients saw.\n"
"\n"
"  --conns N           persistent connections (1000; 0 with --connect-rate\n"
"                      or --writers)\n"
"  --rate R            requests a second on each of them (10)\n"
"  --procs N           N kvd instances, each on a port of its own, the\n"
"                      connections spread over them, all upgraded at\n"
"                      once (1; up to 8; not with --keys)\n"
"  --connect-rate R    new connections a second, one request each (0)\n"
"  --upgrades U        upgrades, alternating kvd-v2 and kvd-v1 (20)\n"
"  --interval-ms MS    between upgrades (1000)\n"
"  --baseline restart  also: stop the old, start the new\n"
"  --baseline drain    also: hand over listeners only; the old keeps its\n"
"                      connections (nginx, HAProxy, Envoy)\n"
"  --baseline reuseport  also: the new instance listens beside the old\n"
"                      (plain SO_REUSEPORT, no program), then the old stops\n"
"  --listeners own     each instance opens its own listener, steered by\n"
"                      baton's sk_reuseport program (kvd --steer)\n"
"  --keys N            load N keys first, of --value-size bytes (100)\n"
"  --writers W         W more connections, each SETting random keys of\n"
"                      its own as fast as it is answered; at the end,\n"
"                      every key is read back and compared with the last\n"
"                      value written (needs --keys)\n"
"  --mode repair       upgrades move the connections as TCP checkpoints\n"
"                      (batonctl upgrade --mode repair; baton.ko, root)\n"
"  --netns             with --mode repair: kvd serves in a namespace of its\n"
"                      own at " NETNS_ADDR " on a veth, the clients here\n"
"                      across a bridge, and each upgrade moves the service\n"
"                      and its address to a second namespace and back\n"
"                      (batonctl upgrade --netns; iproute2's ip)\n"
"  --timeout-ms N      batonctl's for each step (its own: 5000)\n"
"  --blackout-timeout-ms N\n"
"                      batonctl's for the blackout (its own: 2000)\n"
"  --reports FILE      append each batonctl -j report to FILE, a line\n"
"                      each: the blackout's steps, the rounds\n"
"  --port P            kvd's port (a free one)\n"
"  --bin DIR           where kvd-v1, kvd-v2 and batonctl are (beside us)\n"
"  --plot FILE.svg     draw each request's latency against time, one panel\n"
"                      per mode, with gnuplot\n"
"  -j, --json          one JSON object\n");
}

/*
 * Steered instances pin their program; unless told where, in a bpffs of
 * our own, in a mount namespace of our own, gone when we are.
 */
static int private_bpffs(void)
{
	static char dir[] = "/tmp/baton-bench-bpffs.XXXXXX";

	if (getenv("BATON_PIN_ROOT"))
		return 0;
	if (unshare(CLONE_NEWNS) ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
	    !mkdtemp(dir) || mount("bpf", dir, "bpf", 0, NULL)) {
		fprintf(stderr, "baton-bench: --listeners own needs a bpffs to pin in: %s (run as root, or set BATON_PIN_ROOT)\n",
			strerror(errno));
		return -errno;
	}
	return setenv("BATON_PIN_ROOT", dir, 1);
}

static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	if (fd >= 0 && !bind(fd, (struct sockaddr *)&a, sizeof(a)) &&
	    !getsockname(fd, (struct sockaddr *)&a, &len))
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/* --procs: the instances, shared with the processes that upgrade them */
struct procs {
	unsigned int n;
	int port[MAX_PROCS];
	struct instance_set is[MAX_PROCS];
	struct upgrade_result each[MAX_PROCS];
};

static void sleep_ms(struct procs *ps, unsigned int ms)
{
	__u64 end = now_ns() + ms * 1000000ULL;
	unsigned int k;

	while (now_ns() < end) {
		usleep(ms < 10 ? ms * 1000 : 10000);
		for (k = 0; k < ps->n; k++)
			instances_poll_draining(&ps->is[k]);
	}
}

/*
 * The persistent connections, spread over the instances, each one's in
 * workers of at most CONNS_PER_WORKER; 0, or -E2BIG past MAX_WORKERS.
 */
static int spread(const struct bench_opts *o, const struct procs *ps,
		  struct in_addr addr, struct load_spec *specs,
		  unsigned int *nw)
{
	unsigned int k, i, first = 0;

	for (k = 0; k < ps->n; k++) {
		unsigned int share = o->conns / ps->n + (k < o->conns % ps->n);

		for (i = 0; i < share; i += CONNS_PER_WORKER, (*nw)++) {
			if (*nw == MAX_WORKERS - 2)
				return -E2BIG;
			specs[*nw] = (struct load_spec){
				.id = *nw, .first = first + i, .rate = o->rate,
				.addr = addr, .port = ps->port[k],
				.count = share - i < CONNS_PER_WORKER ?
					 share - i : CONNS_PER_WORKER,
			};
		}
		first += share;
	}
	return 0;
}

static double blackout_median(const struct mode_result *r);

/* The mode's panel: its workers' samples, its windows and blackouts. */
static int plot_panel_fill(struct mode_result *res, const struct shared *sh,
			   unsigned int nworkers)
{
	struct plot_panel *p = &res->panel;
	unsigned int u;

	p->name = mode_names[res->mode];
	p->seconds = res->seconds;
	for (u = 0; u < res->nup; u++) {
		const struct upgrade_result *r = &res->up[u];

		if (!r->w.start_ns || !r->w.end_ns)
			continue;
		p->win[p->nwin].start = (r->w.start_ns - sh->origin_ns) / 1e9;
		p->win[p->nwin].end = (r->w.end_ns - sh->origin_ns) / 1e9;
		p->win[p->nwin].blackout_ms = r->ok ? r->blackout_ms : 0;
		p->nwin++;
	}
	snprintf(p->note, sizeof(p->note),
		 "dropped %llu, unanswered %llu, connects failed %llu, integrity errors %llu, blackout median %.2f ms",
		 (unsigned long long)res->dropped,
		 (unsigned long long)res->unanswered,
		 (unsigned long long)res->failed_connects,
		 (unsigned long long)res->integrity, blackout_median(res));
	return plot_merge(p, sh, nworkers);
}

static int run_mode(const struct bench_opts *o, enum mode mode,
		    const struct bench_netns *ns, struct mode_result *res)
{
	struct in_addr addr = { .s_addr = htonl(INADDR_LOOPBACK) };
	struct load_spec specs[MAX_WORKERS];
	struct net_counters net0;
	pid_t pids[MAX_WORKERS];
	unsigned int nw = 0, i, u, k;
	struct shared *sh;
	struct procs *ps;
	__u64 connected, t0;
	int err, port;

	memset(res, 0, sizeof(*res));
	res->mode = mode;
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return -errno;
	ps = mmap(NULL, sizeof(*ps), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (ps == MAP_FAILED) {
		err = -errno;
		goto unmap_shared;
	}
	if (ns)
		inet_pton(AF_INET, NETNS_ADDR, &addr);
	for (err = 0; ps->n < o->procs && !err; ps->n++) {
		k = ps->n;
		ps->port[k] = o->port ? o->port + (int)k : free_port();
		ps->is[k].ns = ns;
		ps->is[k].timeout_ms = o->timeout_ms;
		ps->is[k].blackout_timeout_ms = o->blackout_timeout_ms;
		ps->is[k].reports = o->reports;
		err = instances_start(&ps->is[k], k, o->bin_dir, addr,
				      ps->port[k], mode, o->own_listeners);
		ps->is[k].repair = o->repair;
		if (err)
			fprintf(stderr, "baton-bench: kvd did not start (%s); see its log in %s\n",
				strerror(-err), ps->is[k].run_dir);
	}
	if (err)
		goto stop_kvd;
	port = ps->port[0];
	err = spread(o, ps, addr, specs, &nw);
	if (err) {
		fprintf(stderr, "baton-bench: %u connections over %u instances take more than %d load workers of at most %d; fewer --procs\n",
			o->conns, ps->n, MAX_WORKERS - 2, CONNS_PER_WORKER);
		goto stop_kvd;
	}
	if (o->connect_rate > 0) {
		specs[nw] = (struct load_spec){ .id = nw, .addr = addr,
			.port = port, .connect_rate = o->connect_rate };
		nw++;
	}
	if (o->keys) {
		fprintf(stderr, "baton-bench: loading %u keys of %u bytes\n",
			o->keys, o->value_size);
		err = writes_preload(addr, port, o->keys, o->value_size);
		if (err) {
			fprintf(stderr, "baton-bench: loading the keys failed: %s\n",
				strerror(-err));
			goto stop_kvd;
		}
	}
	if (o->writers) {
		specs[nw] = (struct load_spec){ .id = nw, .addr = addr,
			.port = port, .count = o->writers, .writers = o->writers,
			.keys = o->keys, .value_size = o->value_size };
		nw++;
	}
	res->net_ok = !net_counters_read(&net0);
	for (i = 0; i < nw; i++) {
		pids[i] = fork();
		if (pids[i] == 0)
			_exit((specs[i].writers ? writes_run(&specs[i], sh) :
				load_run(&specs[i], sh)) ? 1 : 0);
	}
	/* everyone connected, then a second of plain load */
	t0 = now_ns();
	do {
		usleep(10000);
		for (connected = 0, i = 0; i < nw; i++)
			connected += sh->w[i].connected;
	} while (connected < o->conns + (o->connect_rate > 0) + o->writers &&
		 now_ns() - t0 < 60e9);
	if (connected < o->conns + (o->connect_rate > 0) + o->writers) {
		fprintf(stderr, "baton-bench: only %llu of %u connections came up\n",
			(unsigned long long)connected, o->conns);
		err = -ETIMEDOUT;
		goto stop_workers;
	}
	t0 = now_ns();
	if (o->plot)
		sh->origin_ns = t0;
	sleep_ms(ps, 1000);
	for (u = 0; u < o->upgrades && u < MAX_UPGRADES; u++) {
		struct upgrade_result *r = &res->up[u];

		if (isatty(STDERR_FILENO))
			fprintf(stderr, "\r%s: upgrade %u of %u ", mode_names[mode],
				u + 1, o->upgrades);
		if (instances_upgrade_all(ps->is, ps->n, mode, ps->each, r)) {
			res->failed_upgrades++;
			fprintf(stderr, "\nbaton-bench: upgrade %u failed: %s\n",
				u + 1, r->error);
		}
		if (r->w.start_ns && r->w.end_ns)
			sh->windows[sh->nwindows++] = r->w;
		if (r->rss_old_kb > res->rss_old_kb)
			res->rss_old_kb = r->rss_old_kb;
		if (r->rss_new_kb > res->rss_new_kb)
			res->rss_new_kb = r->rss_new_kb;
		res->nup++;
		sleep_ms(ps, o->interval_ms);
	}
	if (isatty(STDERR_FILENO))
		fprintf(stderr, "\r%*s\r", 40, "");
	sleep_ms(ps, 1000);
	res->seconds = (now_ns() - t0) / 1e9;
	for (k = 0; k < ps->n; k++) {
		struct instance_set *is = &ps->is[k];

		instances_poll_draining(is);
		for (i = 0; i < is->ndraining; i++) {
			__u64 end = is->drain_gone[i] ?: now_ns();
			double ms = (end - is->drain_since[i]) / 1e6;

			if (ms > res->old_alive_ms)
				res->old_alive_ms = ms;
			res->old_alive_at_end += !is->drain_gone[i];
		}
	}
stop_workers:
	sh->stop = 1;
	sh->classify = 1;
	for (i = 0; i < nw; i++)
		waitpid(pids[i], NULL, 0);
	if (res->net_ok && !net_counters_read(&res->net))
		net_counters_sub(&res->net, &net0);
	else
		res->net_ok = false;
	for (i = 0; i < nw; i++) {
		struct worker_result *w = &sh->w[i];

		res->requests += w->requests;
		res->dropped += w->dropped;
		res->unanswered += w->unanswered;
		res->integrity += w->integrity;
		res->failed_connects += w->failed_connects;
		res->refused += w->refused;
		res->resets += w->resets;
		res->slow_connects += w->slow_connects;
		res->writes += w->writes;
		res->read_back += w->read_back;
		res->read_wrong += w->read_wrong;
		hist_merge(&res->normal, &w->normal);
		hist_merge(&res->stall, &w->stall);
		for (u = 0; u < res->nup; u++)
			if (w->stall_max_us[u] > res->stall_max_us[u])
				res->stall_max_us[u] = w->stall_max_us[u];
	}
	if (!err && o->plot)
		err = plot_panel_fill(res, sh, nw);
stop_kvd:
	for (k = 0; k < ps->n; k++)
		instances_stop(&ps->is[k]);
	munmap(ps, sizeof(*ps));
unmap_shared:
	munmap(sh, sizeof(*sh));
	return err;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double blackout_max(const struct mode_result *r)
{
	double max = -1;
	unsigned int i;

	for (i = 0; i < r->nup; i++)
		if (r->up[i].ok && r->up[i].blackout_ms > max)
			max = r->up[i].blackout_ms;
	return max;
}

/* Phase 1's rounds: the most of any upgrade, and how many outran */
static unsigned int rounds_max(const struct mode_result *r, unsigned int *outrun)
{
	unsigned int i, max = 0;

	*outrun = 0;
	for (i = 0; i < r->nup; i++) {
		if (r->up[i].rounds > max)
			max = r->up[i].rounds;
		*outrun += r->up[i].outrun;
	}
	return max;
}

/* A double of each upgrade that succeeded, at off in its result: the median */
static double field_median(const struct mode_result *r, size_t off)
{
	double v[MAX_UPGRADES];
	unsigned int i, n = 0;

	for (i = 0; i < r->nup; i++) {
		const double *x = (const void *)((const char *)&r->up[i] + off);

		if (r->up[i].ok && *x >= 0)
			v[n++] = *x;
	}
	if (!n)
		return -1;
	qsort(v, n, sizeof(v[0]), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double blackout_median(const struct mode_result *r)
{
	return field_median(r, offsetof(struct upgrade_result, blackout_ms));
}

/*
 * The blackout's steps added up, as a share of the blackout: the least and
 * the most of any upgrade. False if no upgrade had steps.
 */
static bool steps_share(const struct mode_result *r, double *lo, double *hi)
{
	unsigned int i;
	bool any = false;

	*lo = *hi = 0;
	for (i = 0; i < r->nup; i++) {
		double pct;

		if (!r->up[i].ok || r->up[i].steps_ms < 0 ||
		    r->up[i].blackout_ms <= 0)
			continue;
		pct = 100 * r->up[i].steps_ms / r->up[i].blackout_ms;
		if (!any || pct < *lo)
			*lo = pct;
		if (!any || pct > *hi)
			*hi = pct;
		any = true;
	}
	return any;
}

/* Drain: until its last connection closed; else: from activation to exit. */
static double old_lives_on(const struct mode_result *r)
{
	double max = 0;
	unsigned int i;

	if (r->mode == MODE_DRAIN)
		return r->old_alive_ms;
	for (i = 0; i < r->nup; i++)
		if (r->up[i].old_exit_ms > max)
			max = r->up[i].old_exit_ms;
	return max;
}

/* --netns: the address move's steps after activation, in batonctl's report */
static const struct {
	const char *key, *what;
	size_t off;
} netns_steps[] = {
	{ "add_ms", "added", offsetof(struct upgrade_result, ns_add_ms) },
	{ "announce_ms", "announced and settled",
	  offsetof(struct upgrade_result, ns_announce_ms) },
	{ "del_ms", "removed", offsetof(struct upgrade_result, ns_del_ms) },
	{ "thaw_ms", "thawed", offsetof(struct upgrade_result, ns_thaw_ms) },
};
#define NETNS_STEPS	(sizeof(netns_steps) / sizeof(netns_steps[0]))

/* --netns: the move's steps of each upgrade */
static void print_json_netns(const struct mode_result *r)
{
	unsigned int i, s;

	printf(",\"netns\":{\"addr\":\"%s/%d\"", NETNS_ADDR, NETNS_PLEN);
	for (s = 0; s < NETNS_STEPS; s++) {
		printf(",\"%s\":[", netns_steps[s].key);
		for (i = 0; i < r->nup; i++)
			printf("%s%.3f", i ? "," : "",
			       *(const double *)((const char *)&r->up[i] +
						 netns_steps[s].off));
		printf("]");
	}
	printf(",\"delivered\":[");
	for (i = 0; i < r->nup; i++)
		printf("%s%lld", i ? "," : "", r->up[i].ns_delivered);
	printf("]}");
}

/* The fields of one run, without the braces around them. */
static void print_json(const struct bench_opts *o, const struct mode_result *r,
		       const double *floor_us)
{
	unsigned int i, outrun;

	printf("\"conns\":%u,\"procs\":%u,\"rate\":%g,\"connect_rate\":%g,\"upgrades\":%u,"
	       "\"mode\":\"%s\",\"seconds\":%.1f,\"requests\":%llu,"
	       "\"dropped\":%llu,\"unanswered\":%llu,\"integrity_errors\":%llu,"
	       "\"failed_connects\":%llu,\"refused\":%llu,\"resets\":%llu,"
	       "\"slow_connects\":%llu,"
	       "\"failed_upgrades\":%u,\"conn_move\":\"%s\",",
	       o->conns, o->procs, o->rate, o->connect_rate, r->nup,
	       mode_names[r->mode],
	       r->seconds, (unsigned long long)r->requests,
	       (unsigned long long)r->dropped,
	       (unsigned long long)r->unanswered,
	       (unsigned long long)r->integrity,
	       (unsigned long long)r->failed_connects,
	       (unsigned long long)r->refused, (unsigned long long)r->resets,
	       (unsigned long long)r->slow_connects, r->failed_upgrades,
	       o->repair && r->mode == MODE_BATON ? "repair" : "fd");
	printf("\"latency_p50_ms\":%.3f,\"latency_p99_ms\":%.3f,\"latency_max_ms\":%.3f,",
	       hist_pct_ms(&r->normal, 50), hist_pct_ms(&r->normal, 99),
	       r->normal.max_us / 1000.0);
	printf("\"stall_max_ms\":%.3f,\"stall_p50_ms\":%.3f,\"stall_p99_ms\":%.3f,",
	       r->stall.max_us / 1000.0, hist_pct_ms(&r->stall, 50),
	       hist_pct_ms(&r->stall, 99));
	printf("\"stall_per_upgrade_ms\":[");
	for (i = 0; i < r->nup; i++)
		printf("%s%.3f", i ? "," : "", r->stall_max_us[i] / 1000.0);
	printf("],\"blackout_ms\":[");
	for (i = 0; i < r->nup; i++)
		printf("%s%.3f", i ? "," : "", r->up[i].blackout_ms);
	printf("],\"blackout_steps_ms\":[");
	for (i = 0; i < r->nup; i++)
		printf("%s%.3f", i ? "," : "", r->up[i].steps_ms);
	printf("],\"blackout_median_ms\":%.3f,\"blackout_max_ms\":%.3f,\"rounds\":[",
	       blackout_median(r), blackout_max(r));
	for (i = 0; i < r->nup; i++)
		printf("%s%u", i ? "," : "", r->up[i].rounds);
	printf("],\"rounds_outrun\":%u,\"writes\":%llu,\"read_back\":%llu,"
	       "\"read_wrong\":%llu,\"old_exit_ms\":[", (rounds_max(r, &outrun), outrun),
	       (unsigned long long)r->writes, (unsigned long long)r->read_back,
	       (unsigned long long)r->read_wrong);
	for (i = 0; i < r->nup; i++)
		printf("%s%.3f", i ? "," : "", r->up[i].old_exit_ms);
	printf("],\"old_lives_on_ms\":%.1f,\"old_alive_at_end\":%u,"
	       "\"rss_old_kb\":%ld,\"rss_new_kb\":%ld,\"floor_us\":%.2f,"
	       "\"floor_scm_us_per_fd\":%.3f",
	       old_lives_on(r), r->old_alive_at_end, r->rss_old_kb,
	       r->rss_new_kb, floor_us[0], floor_us[1]);
	if (r->net_ok)
		printf(",\"rto\":%llu,\"loss_probes\":%llu,\"retrans\":%llu",
		       (unsigned long long)r->net.rto,
		       (unsigned long long)r->net.loss_probes,
		       (unsigned long long)r->net.retrans);
	else
		printf(",\"rto\":null,\"loss_probes\":null,\"retrans\":null");
	if (o->netns && r->mode == MODE_BATON)
		print_json_netns(r);
	else
		printf(",\"netns\":null");
}

/* --netns: the move's steps, medians over the upgrades that succeeded */
static void print_text_netns(const struct mode_result *r)
{
	unsigned int s;

	printf("\nthe service address %s/%d, moved to the other namespace after activation by %u of %u upgrades\n",
	       NETNS_ADDR, NETNS_PLEN, r->nup - r->failed_upgrades, r->nup);
	if (r->nup == r->failed_upgrades)
		return;
	printf("  medians, ms:");
	for (s = 0; s < NETNS_STEPS; s++)
		printf("%s %s %.2f", s ? "," : "", netns_steps[s].what,
		       field_median(r, netns_steps[s].off));
	printf("\n");
}

/* A counter of the namespace for the table, or "-" if unread */
static const char *net_cell(const struct mode_result *r, char *buf,
			    size_t size, __u64 v)
{
	if (!r->net_ok)
		return "-";
	snprintf(buf, size, "%llu", (unsigned long long)v);
	return buf;
}

static void print_text(const struct bench_opts *o, const struct mode_result *r,
		       unsigned int n, const double *floor_us)
{
	char share[4][16];
	unsigned int i, outrun;
	double lo, hi;

	printf("baton-bench: %u connections at %g req/s each, %g new connections/s, %u upgrades\n",
	       o->conns, o->rate, o->connect_rate, o->upgrades);
	if (o->procs > 1)
		printf("%u kvd instances, the connections spread over them, upgraded at once\n",
		       o->procs);
	if (o->writers)
		printf("%u keys of %u bytes, %u writers doing random SETs\n",
		       o->keys, o->value_size, o->writers);
	printf("floor (Unix socket round trip): %.1f us; SCM_RIGHTS: %.3f us a socket\n\n",
	       floor_us[0], floor_us[1]);
	printf("%-34s", "");
	for (i = 0; i < n; i++)
		printf("%14s", mode_names[r[i].mode]);
	printf("\n");
#define ROW(label, fmt, ...) do {				\
		printf("%-34s", label);				\
		for (i = 0; i < n; i++)				\
			printf(fmt, __VA_ARGS__);		\
		printf("\n");					\
	} while (0)
	ROW("requests", "%14llu", (unsigned long long)r[i].requests);
	ROW("connections dropped", "%14llu", (unsigned long long)r[i].dropped);
	ROW("requests never answered", "%14llu", (unsigned long long)r[i].unanswered);
	ROW("integrity errors", "%14llu", (unsigned long long)r[i].integrity);
	ROW("connects failed", "%14llu", (unsigned long long)r[i].failed_connects);
	ROW("  of which refused", "%14llu", (unsigned long long)r[i].refused);
	ROW("  of which reset", "%14llu", (unsigned long long)r[i].resets);
	ROW("connects over 1 s", "%14llu", (unsigned long long)r[i].slow_connects);
	ROW("upgrades failed", "%14u", r[i].failed_upgrades);
	ROW("latency p50 (no upgrade), ms", "%14.3f", hist_pct_ms(&r[i].normal, 50));
	ROW("latency p99 (no upgrade), ms", "%14.3f", hist_pct_ms(&r[i].normal, 99));
	ROW("latency max (no upgrade), ms", "%14.3f", r[i].normal.max_us / 1000.0);
	ROW("stall max, ms", "%14.3f", r[i].stall.max_us / 1000.0);
	ROW("stall p50, ms", "%14.3f", hist_pct_ms(&r[i].stall, 50));
	ROW("stall p99, ms", "%14.3f", hist_pct_ms(&r[i].stall, 99));
	ROW("blackout median, ms", "%14.3f", blackout_median(&r[i]));
	ROW("blackout median / floor", "%14.1f",
	    blackout_median(&r[i]) * 1000 / floor_us[0]);
	ROW("blackout max, ms", "%14.3f", blackout_max(&r[i]));
	ROW("blackout steps / blackout, %", "%14s",
	    steps_share(&r[i], &lo, &hi) ?
	    (snprintf(share[i], sizeof(share[i]), "%.0f..%.0f", lo, hi),
	     share[i]) : "-");
	ROW("phase 1 rounds, most", "%14u", rounds_max(&r[i], &outrun));
	ROW("  upgrades whose writes outran", "%14u",
	    (rounds_max(&r[i], &outrun), outrun));
	if (o->writers) {
		ROW("writes", "%14llu", (unsigned long long)r[i].writes);
		ROW("keys read back right", "%14llu",
		    (unsigned long long)r[i].read_back);
		ROW("keys read back wrong", "%14llu",
		    (unsigned long long)r[i].read_wrong);
	}
	ROW("retransmission timeouts", "%14s", net_cell(&r[i], share[i],
	    sizeof(share[i]), r[i].net.rto));
	ROW("tail loss probes", "%14s", net_cell(&r[i], share[i],
	    sizeof(share[i]), r[i].net.loss_probes));
	ROW("segments retransmitted", "%14s", net_cell(&r[i], share[i],
	    sizeof(share[i]), r[i].net.retrans));
	ROW("old instance lives on, ms", "%14.1f", old_lives_on(&r[i]));
	ROW("old instances alive at the end", "%14u", r[i].old_alive_at_end);
	ROW("RSS old / new, MiB", "%8.1f/%5.1f", r[i].rss_old_kb / 1024.0,
	    r[i].rss_new_kb / 1024.0);
#undef ROW
	if (o->netns)
		print_text_netns(r);
}

static int write_plot(const struct bench_opts *o, struct mode_result *res,
		      unsigned int n)
{
	struct plot_panel *panels = calloc(n, sizeof(*panels));
	char title[200];
	unsigned int i;
	int err;

	if (!panels)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		panels[i] = res[i].panel;
	snprintf(title, sizeof(title),
		 "baton-bench: %u connections at %g requests/s each, %g new connections/s, %u upgrades",
		 o->conns, o->rate, o->connect_rate, o->upgrades);
	err = plot_write(o->plot, title, panels, n);
	if (err == -ENODATA)
		fprintf(stderr, "baton-bench: no request to draw in %s\n", o->plot);
	free(panels);
	return err;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "conns", required_argument, NULL, 'c' },
		{ "rate", required_argument, NULL, 'r' },
		{ "procs", required_argument, NULL, 'N' },
		{ "connect-rate", required_argument, NULL, 'n' },
		{ "upgrades", required_argument, NULL, 'u' },
		{ "interval-ms", required_argument, NULL, 'i' },
		{ "baseline", required_argument, NULL, 'b' },
		{ "port", required_argument, NULL, 'p' },
		{ "bin", required_argument, NULL, 'B' },
		{ "plot", required_argument, NULL, 'P' },
		{ "listeners", required_argument, NULL, 'L' },
		{ "keys", required_argument, NULL, 'k' },
		{ "value-size", required_argument, NULL, 'V' },
		{ "writers", required_argument, NULL, 'w' },
		{ "mode", required_argument, NULL, 'm' },
		{ "netns", no_argument, NULL, 'X' },
		{ "timeout-ms", required_argument, NULL, 't' },
		{ "blackout-timeout-ms", required_argument, NULL, 'T' },
		{ "reports", required_argument, NULL, 'R' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct bench_opts o = {
		.conns = 1000, .procs = 1, .rate = 10, .upgrades = 20,
		.interval_ms = 1000,
		.value_size = 100,
	};
	struct bench_netns ns = { .made = false };
	struct mode_result *res;
	char self[512], *slash;
	double floor_us[2];
	unsigned int i, n;
	int c, err = 0;

	while ((c = getopt_long(argc, argv, "jh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': o.conns = atoi(optarg); break;
		case 'r': o.rate = atof(optarg); break;
		case 'N': o.procs = atoi(optarg); break;
		case 'n': o.connect_rate = atof(optarg); break;
		case 'u': o.upgrades = atoi(optarg); break;
		case 'i': o.interval_ms = atoi(optarg); break;
		case 'p': o.port = atoi(optarg); break;
		case 'B': o.bin_dir = optarg; break;
		case 'P': o.plot = optarg; break;
		case 'j': o.json = true; break;
		case 'k': o.keys = atoi(optarg); break;
		case 'V': o.value_size = atoi(optarg); break;
		case 'w': o.writers = atoi(optarg); break;
		case 'X': o.netns = true; break;
		case 't': o.timeout_ms = atoi(optarg); break;
		case 'T': o.blackout_timeout_ms = atoi(optarg); break;
		case 'R': o.reports = optarg; break;
		case 'b':
			if (o.nbaselines == 3) {
				fprintf(stderr, "baton-bench: at most three baselines\n");
				return 2;
			}
			if (!strcmp(optarg, "restart"))
				o.baselines[o.nbaselines++] = MODE_RESTART;
			else if (!strcmp(optarg, "drain"))
				o.baselines[o.nbaselines++] = MODE_DRAIN;
			else if (!strcmp(optarg, "reuseport"))
				o.baselines[o.nbaselines++] = MODE_REUSEPORT;
			else {
				fprintf(stderr, "baton-bench: --baseline is 'restart', 'drain' or 'reuseport'\n");
				return 2;
			}
			break;
		case 'L':
			if (strcmp(optarg, "own") && strcmp(optarg, "take")) {
				fprintf(stderr, "baton-bench: --listeners is 'take' or 'own'\n");
				return 2;
			}
			o.own_listeners = !strcmp(optarg, "own");
			break;
		case 'm':
			if (strcmp(optarg, "repair") && strcmp(optarg, "fd")) {
				fprintf(stderr, "baton-bench: --mode is 'fd' or 'repair'\n");
				return 2;
			}
			o.repair = !strcmp(optarg, "repair");
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if ((o.writers && !o.keys) || o.value_size < 24 ||
	    o.value_size > 4096 || (o.writers && o.writers > o.keys)) {
		fprintf(stderr, "baton-bench: --writers needs --keys (at least one key each); --value-size 24..4096\n");
		return 2;
	}
	if (!o.procs || o.procs > MAX_PROCS || (o.procs > 1 && o.keys)) {
		fprintf(stderr, "baton-bench: --procs 1..%d, and 1 with --keys (the keys are loaded into one instance)\n",
			MAX_PROCS);
		return 2;
	}
	if ((!o.conns && o.connect_rate <= 0 && !o.writers) ||
	    o.conns > CONNS_PER_WORKER * (MAX_WORKERS - 1) ||
	    o.rate <= 0 || o.upgrades > MAX_UPGRADES) {
		fprintf(stderr, "baton-bench: --conns 0..%d (0 only with --connect-rate), --rate above 0, --upgrades up to %d\n",
			CONNS_PER_WORKER * (MAX_WORKERS - 1), MAX_UPGRADES);
		return 2;
	}
	if (o.netns && (!o.repair || o.nbaselines || o.procs > 1 ||
			o.own_listeners)) {
		fprintf(stderr, "baton-bench: --netns needs --mode repair (only repair mode moves connections between namespaces), and takes no --baseline, --procs or --listeners own\n");
		return 2;
	}
	if (o.own_listeners && private_bpffs())
		return 1;
	if (!o.bin_dir) {
		ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);

		self[len > 0 ? len : 0] = '\0';
		slash = strrchr(self, '/');
		if (slash)
			*slash = '\0';
		o.bin_dir = self;
	}
	signal(SIGPIPE, SIG_IGN);
	floor_us[0] = floor_rtt_us();
	floor_us[1] = floor_scm_us_per_fd(floor_us[0]);
	n = 1 + o.nbaselines;
	res = calloc(n, sizeof(*res));
	if (!res)
		return 1;
	if (o.netns) {
		err = bench_netns_make(&ns);
		if (err)
			fprintf(stderr, "baton-bench: --netns: cannot make the namespaces (%s); it needs root and iproute2\n",
				strerror(-err));
	}
	for (i = 0; i < n && !err; i++)
		err = run_mode(&o, i ? o.baselines[i - 1] : MODE_BATON,
			       o.netns ? &ns : NULL, &res[i]);
	bench_netns_remove(&ns);
	if (!err && o.plot)
		err = write_plot(&o, res, n);
	for (i = 0; i < n; i++)
		free(res[i].panel.pt);
	if (err) {
		free(res);
		return 1;
	}
	if (o.json) {
		printf("{");
		print_json(&o, &res[0], floor_us);
		if (n > 1) {
			printf(",\"baselines\":[");
			for (i = 1; i < n; i++) {
				printf("%s{", i > 1 ? "," : "");
				print_json(&o, &res[i], floor_us);
				printf("}");
			}
			printf("]");
		}
		printf("}\n");
	} else {
		print_text(&o, res, n, floor_us);
	}
	free(res);
	return 0;
}
