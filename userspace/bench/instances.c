// SPDX-License-Identifier: GPL-2.0-only
/*
 * The service under test and the three ways of upgrading it: baton
 * (batonctl upgrade), restart (stop the old, start the new) and drain
 * (batonctl upgrade --drain: listeners only, as nginx, HAProxy and Envoy
 * do).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

long rss_kb(pid_t pid)
{
	char path[64], line[128];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* Running, not a zombie. */
static bool running(pid_t pid)
{
	char path[64], stat[256], *p;
	bool alive = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	if (fgets(stat, sizeof(stat), f) && (p = strrchr(stat, ')')))
		alive = p[2] != 'Z' && p[2] != 'X';
	fclose(f);
	return alive;
}

/* The service's address and port, as kvd --listen takes it */
static void listen_arg(const struct instance_set *is, char *buf, size_t size)
{
	char a[INET_ADDRSTRLEN] = "";

	inet_ntop(AF_INET, &is->addr, a, sizeof(a));
	snprintf(buf, size, "%s:%d", a, is->port);
}

/* --netns: into the namespace the service is in now; 0 or exits */
static void enter_service_netns(const struct instance_set *is)
{
	if (!is->ns)
		return;
	if (setns(is->ns->fd[is->ns_cur], CLONE_NEWNET)) {
		fprintf(stderr, "baton-bench: cannot enter %s: %s\n",
			is->ns->path[is->ns_cur], strerror(errno));
		_exit(126);
	}
}

/* kvd-v<version>; the reuseport baseline runs each under its own name. */
static pid_t spawn_kvd(struct instance_set *is, unsigned int version)
{
	char path[512], listen[40], gen[8], service[48];
	const char *argv[16];
	int n = 0;
	pid_t pid;

	snprintf(path, sizeof(path), "%s/kvd-v%u", is->bin_dir, version);
	listen_arg(is, listen, sizeof(listen));
	snprintf(gen, sizeof(gen), "%u", version);
	snprintf(service, sizeof(service), "%s%s", is->service,
		 is->mode != MODE_REUSEPORT ? "" : version == 1 ? "-a" : "-b");
	argv[n++] = path;
	argv[n++] = "--service";
	argv[n++] = service;
	argv[n++] = "--listen";
	argv[n++] = listen;
	argv[n++] = "--quiet";
	if (is->own) {
		argv[n++] = "--steer";
		argv[n++] = gen;
	}
	if (is->mode == MODE_REUSEPORT)
		argv[n++] = "--reuseport";
	argv[n] = NULL;
	pid = fork();
	if (pid == 0) {
		int fd = open(is->log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		if (fd >= 0)
			dup2(fd, 2);
		enter_service_netns(is);
		execv(path, (char *const *)argv);
		_exit(127);
	}
	return pid;
}

static int wait_socket(struct instance_set *is, pid_t pid, unsigned int version)
{
	const char *suffix = is->mode != MODE_REUSEPORT ? "" :
			     version == 1 ? "-a" : "-b";
	char sock[128];
	struct stat st;
	int i;

	snprintf(sock, sizeof(sock), "%s/%s%s.sock", is->run_dir, is->service,
		 suffix);
	for (i = 0; i < 2000; i++) {
		char pidfile[128], buf[16] = "";
		int fd;

		snprintf(pidfile, sizeof(pidfile), "%s/%s%s.pid", is->run_dir,
			 is->service, suffix);
		fd = open(pidfile, O_RDONLY);
		if (fd >= 0) {
			if (read(fd, buf, sizeof(buf) - 1) < 0)
				buf[0] = '\0';
			close(fd);
		}
		if (!stat(sock, &st) && atoi(buf) == pid)
			return 0;
		if (!running(pid))
			return -ECHILD;
		usleep(500);
	}
	return -ETIMEDOUT;
}

/* kvd has its control socket before its listener: wait for both. */
static int wait_port(const struct instance_set *is)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons(is->port),
				 .sin_addr = is->addr };
	int i;

	for (i = 0; i < 2000; i++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;

		if (fd < 0)
			return -errno;
		ok = !connect(fd, (struct sockaddr *)&a, sizeof(a));
		close(fd);
		if (ok)
			return 0;
		usleep(1000);
	}
	return -ETIMEDOUT;
}

int instances_start(struct instance_set *is, unsigned int index,
		    const char *bin_dir, struct in_addr addr, int port,
		    enum mode mode, bool own)
{
	is->mode = mode;
	is->own = own && mode == MODE_BATON;
	snprintf(is->run_dir, sizeof(is->run_dir), "/tmp/baton-bench.XXXXXX");
	if (!mkdtemp(is->run_dir))
		return -errno;
	setenv("BATON_RUN_DIR", is->run_dir, 1);
	/* --procs: names of their own, for the pins of --listeners own */
	if (index)
		snprintf(is->service, sizeof(is->service), "bench%u", index);
	else
		snprintf(is->service, sizeof(is->service), "bench");
	snprintf(is->log, sizeof(is->log), "%s/kvd.log", is->run_dir);
	is->bin_dir = bin_dir;
	is->addr = addr;
	is->port = port;
	is->ns_cur = 0;
	is->version = 1;
	is->serving = spawn_kvd(is, 1);
	if (is->serving < 0)
		return -errno;
	return wait_socket(is, is->serving, 1) ?: wait_port(is);
}

static long long json_num(const char *json, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(json, pat);
	return p ? atoll(p + strlen(pat)) : -1;
}

static double json_double(const char *json, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(json, pat);
	return p ? atof(p + strlen(pat)) : -1;
}

/* The blackout's steps in batonctl's report, added up: -1 if none. */
static double steps_sum_ms(const char *json)
{
	const char *p = strstr(json, "\"steps_ms\":{"), *end;
	double sum = -1;

	if (!p)
		return -1;
	p = strchr(p, '{');
	end = strchr(p, '}');
	while (end && (p = strstr(p, "\":")) && p < end) {
		sum = (sum < 0 ? 0 : sum) + atof(p + 2);
		p += 2;
	}
	return sum;
}

/* --reports: batonctl's report, one line, appended (O_APPEND: --procs) */
static void report_append(const char *path, const char *out)
{
	size_t len = strcspn(out, "\n");
	int fd;

	if (!len)
		return;
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "baton-bench: cannot open %s: %s\n", path,
			strerror(errno));
		return;
	}
	if (dprintf(fd, "%.*s\n", (int)len, out) < 0)
		fprintf(stderr, "baton-bench: cannot write %s: %s\n", path,
			strerror(errno));
	close(fd);
}

static int batonctl_upgrade(struct instance_set *is, unsigned int to,
			    bool drain, struct upgrade_result *r)
{
	char ctl[512], kvd[512], out[8192] = "", listen[40], gen[8];
	char timeout[16], blackout[16], xaddr[24];
	const unsigned int other = is->ns_cur ^ 1;
	int pipefd[2], status;
	size_t have = 0;
	const char *p;
	pid_t pid;

	snprintf(ctl, sizeof(ctl), "%s/batonctl", is->bin_dir);
	snprintf(kvd, sizeof(kvd), "%s/kvd-v%u", is->bin_dir, to);
	listen_arg(is, listen, sizeof(listen));
	snprintf(gen, sizeof(gen), "%u", to);
	snprintf(timeout, sizeof(timeout), "%u", is->timeout_ms);
	snprintf(blackout, sizeof(blackout), "%u", is->blackout_timeout_ms);
	snprintf(xaddr, sizeof(xaddr), NETNS_ADDR "/%d", NETNS_PLEN);
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid == 0) {
		const char *argv[40];
		int n = 0;

		argv[n++] = ctl;
		argv[n++] = "-j";
		argv[n++] = "upgrade";
		argv[n++] = is->service;
		argv[n++] = "--log";
		argv[n++] = is->log;
		if (drain)
			argv[n++] = "--drain";
		if (is->own) {
			argv[n++] = "--listeners";
			argv[n++] = "own";
		}
		if (is->repair && !drain) {
			argv[n++] = "--mode";
			argv[n++] = "repair";
		}
		if (is->ns && !drain) {
			argv[n++] = "--netns";
			argv[n++] = is->ns->path[other];
			argv[n++] = "--netns-addr";
			argv[n++] = xaddr;
			argv[n++] = "--netns-dev";
			argv[n++] = NETNS_DEV;
		}
		if (is->timeout_ms) {
			argv[n++] = "--timeout-ms";
			argv[n++] = timeout;
		}
		if (is->blackout_timeout_ms) {
			argv[n++] = "--blackout-timeout-ms";
			argv[n++] = blackout;
		}
		argv[n++] = "--";
		argv[n++] = kvd;
		argv[n++] = "--service";
		argv[n++] = is->service;
		argv[n++] = "--quiet";
		if (is->own) {
			argv[n++] = "--listen";
			argv[n++] = listen;
			argv[n++] = "--steer";
			argv[n++] = gen;
		}
		argv[n] = NULL;
		dup2(pipefd[1], 1);
		/* batonctl runs where the old instance does */
		enter_service_netns(is);
		execv(ctl, (char *const *)argv);
		_exit(127);
	}
	close(pipefd[1]);
	for (;;) {
		ssize_t n = read(pipefd[0], out + have, sizeof(out) - 1 - have);

		if (n <= 0)
			break;
		have += n;
	}
	out[have] = '\0';
	close(pipefd[0]);
	waitpid(pid, &status, 0);
	if (is->reports)
		report_append(is->reports, out);
	r->ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	r->w.start_ns = json_num(out, "mono_start_ns");
	r->w.end_ns = json_num(out, "mono_end_ns");
	r->blackout_ms = json_double(out, "blackout_ms");
	r->steps_ms = steps_sum_ms(out);
	r->old_exit_ms = json_double(out, "old_exit_ms");
	p = strstr(out, "\"rounds\":[");
	for (r->rounds = 0; p && (p = strstr(p + 1, "{\"records\":")); )
		r->rounds++;
	r->outrun = strstr(out, "\"precopy_end\":\"outrun\"");
	if (is->ns) {
		r->ns_add_ms = json_double(out, "add_ms");
		r->ns_announce_ms = json_double(out, "announce_ms");
		r->ns_del_ms = json_double(out, "del_ms");
		r->ns_thaw_ms = json_double(out, "thaw_ms");
		r->ns_delivered = json_num(out, "delivered");
	}
	if (!r->ok) {
		const char *e = strstr(out, "\"error\":\"");

		snprintf(r->error, sizeof(r->error), "%.*s",
			 e ? (int)strcspn(e + 9, "\"") : 20, e ? e + 9 : "batonctl failed");
		return -EIO;
	}
	r->rss_new_kb = rss_kb(json_num(out, "new_pid"));
	if (drain) {
		pid_t old = json_num(out, "old_pid");

		r->rss_old_kb = rss_kb(old);
		if (is->ndraining < MAX_UPGRADES) {
			is->draining[is->ndraining] = old;
			is->drain_since[is->ndraining] = r->w.end_ns;
			is->ndraining++;
		}
	}
	is->serving = json_num(out, "new_pid");
	is->version = to;
	if (is->ns && !drain)
		is->ns_cur = other;
	return 0;
}

static void stop_instance(pid_t pid)
{
	kill(pid, SIGTERM);
	if (waitpid(pid, NULL, 0) != pid)
		while (running(pid))
			usleep(200);
}

/* The new instance serves (or err says it could not). */
static int served_by_new(struct instance_set *is, unsigned int to, pid_t new,
			 int err, struct upgrade_result *r)
{
	r->w.end_ns = now_ns();
	r->ok = !err;
	if (err)
		snprintf(r->error, sizeof(r->error), "the new instance did not start");
	r->rss_new_kb = rss_kb(new);
	is->serving = new;
	is->version = to;
	return err;
}

/* Stop, then start: what the upgrade costs without any handover. */
static int restart(struct instance_set *is, unsigned int to,
		   struct upgrade_result *r)
{
	pid_t new;
	int err;

	r->w.start_ns = now_ns();
	r->rss_old_kb = rss_kb(is->serving);
	stop_instance(is->serving);
	new = spawn_kvd(is, to);
	err = wait_socket(is, new, to) ?: wait_port(is);
	err = served_by_new(is, to, new, err, r);
	r->blackout_ms = (r->w.end_ns - r->w.start_ns) / 1e6;
	return err;
}

/*
 * Plain SO_REUSEPORT, no program: the new instance opens its listener
 * beside the old one, then the old stops, and what waited in its queue,
 * or had not finished its handshake there, is reset.
 */
static int overlap(struct instance_set *is, unsigned int to,
		   struct upgrade_result *r)
{
	pid_t new;
	int err;

	r->w.start_ns = now_ns();
	r->rss_old_kb = rss_kb(is->serving);
	new = spawn_kvd(is, to);
	err = wait_socket(is, new, to);
	stop_instance(is->serving);
	return served_by_new(is, to, new, err, r);	/* no blackout: someone listens */
}

int instances_upgrade(struct instance_set *is, enum mode mode,
		      struct upgrade_result *r)
{
	unsigned int to = is->version == 1 ? 2 : 1;

	memset(r, 0, sizeof(*r));
	if (mode == MODE_RESTART)
		return restart(is, to, r);
	if (mode == MODE_REUSEPORT)
		return overlap(is, to, r);
	return batonctl_upgrade(is, to, mode == MODE_DRAIN, r);
}

/* --procs: one upgrade of them all, as long as the longest of them. */
static void merge_results(struct upgrade_result *into,
			  const struct upgrade_result *r, unsigned int n)
{
	unsigned int k;

	*into = r[0];
	for (k = 1; k < n; k++) {
		if (!r[k].ok && into->ok)
			snprintf(into->error, sizeof(into->error),
				 "instance %u: %s", k, r[k].error);
		into->ok = into->ok && r[k].ok;
		if (!into->w.start_ns || (r[k].w.start_ns &&
					  r[k].w.start_ns < into->w.start_ns))
			into->w.start_ns = r[k].w.start_ns;
		if (r[k].w.end_ns > into->w.end_ns)
			into->w.end_ns = r[k].w.end_ns;
		if (r[k].blackout_ms > into->blackout_ms) {
			into->blackout_ms = r[k].blackout_ms;
			into->steps_ms = r[k].steps_ms;
		}
		if (r[k].old_exit_ms > into->old_exit_ms)
			into->old_exit_ms = r[k].old_exit_ms;
		if (r[k].rss_old_kb > into->rss_old_kb)
			into->rss_old_kb = r[k].rss_old_kb;
		if (r[k].rss_new_kb > into->rss_new_kb)
			into->rss_new_kb = r[k].rss_new_kb;
		if (r[k].rounds > into->rounds)
			into->rounds = r[k].rounds;
		into->outrun = into->outrun || r[k].outrun;
	}
}

/*
 * --procs: every instance upgraded at once, each by a process of ours
 * (is and each[] are shared with it), and the upgrades judged as one.
 */
int instances_upgrade_all(struct instance_set *is, unsigned int n,
			  enum mode mode, struct upgrade_result *each,
			  struct upgrade_result *r)
{
	pid_t pids[MAX_PROCS];
	unsigned int k;
	int status;

	if (n == 1)
		return instances_upgrade(is, mode, r);
	for (k = 0; k < n; k++) {
		memset(&each[k], 0, sizeof(each[k]));
		pids[k] = fork();
		if (pids[k] == 0) {
			setenv("BATON_RUN_DIR", is[k].run_dir, 1);
			_exit(instances_upgrade(&is[k], mode, &each[k]) ? 1 : 0);
		}
		if (pids[k] < 0) {
			snprintf(each[k].error, sizeof(each[k].error),
				 "cannot fork: %s", strerror(errno));
			continue;
		}
	}
	for (k = 0; k < n; k++)
		if (pids[k] > 0)
			waitpid(pids[k], &status, 0);
	merge_results(r, each, n);
	return r->ok ? 0 : -EIO;
}

/* Drain mode: note when each old instance finally goes. */
void instances_poll_draining(struct instance_set *is)
{
	unsigned int i;

	for (i = 0; i < is->ndraining; i++)
		if (!is->drain_gone[i] && !running(is->draining[i]))
			is->drain_gone[i] = now_ns();
}

static int remove_one(const char *path, const struct stat *st, int flag,
		      struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void instances_stop(struct instance_set *is)
{
	unsigned int i;

	for (i = 0; i < is->ndraining; i++)
		if (!is->drain_gone[i])
			kill(is->draining[i], SIGKILL);
	if (is->serving > 0)	/* never 0 or -1: a group, or everyone */
		kill(is->serving, SIGTERM);
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	nftw(is->run_dir, remove_one, 8, FTW_DEPTH | FTW_PHYS);
}
