// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvd: a small in-memory key-value server speaking RESP2, built on libbaton
 * so that it can be upgraded in place with batonctl.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kvd.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
"Usage: kvd-v%d [OPTIONS]\n"
"A small in-memory key-value server speaking the Redis protocol (RESP2),\n"
"which batonctl can upgrade without dropping a connection.\n"
"\n"
"  -s, --service NAME     the service name batonctl knows it by (kvd)\n"
"  -l, --listen ADDR:PORT listen there; repeatable (127.0.0.1:6379);\n"
"                         IPv6 as [::1]:6379\n"
"  -f, --listen-fd FD     serve an inherited listening socket instead\n"
"  -r, --run-dir DIR      where the control socket lives (%s)\n"
"  -m, --state-min N      refuse to take over state older than version N\n"
"  -R, --reuseport        open the listeners with SO_REUSEPORT, unsteered\n"
"                         (what the kernel alone does, for comparison)\n"
"  -G, --steer-group NAME join the steered group of service NAME (default:\n"
"                         this service's own)\n"
"  -c, --canary           join it without taking new connections, for\n"
"                         'batonctl steer NAME --canary PCT%% --to GEN'\n"
"  -g, --steer GEN        open the one --listen with SO_REUSEPORT as\n"
"                         generation GEN (0-%d) of a group that baton's\n"
"                         sk_reuseport program steers; upgrade with\n"
"                         'batonctl upgrade --listeners own'\n"
"  -q, --quiet            log errors only\n"
"  -h, --help\n"
"\n"
"Started by 'batonctl upgrade', it takes over the running instance's\n"
"listeners, connections and keys instead of opening its own.\n",
		KVD_VERSION, BATON_RUN_DIR, BATON_STEER_MAX_GEN - 1);
}

struct options {
	const char *service;
	const char *run_dir;
	const char *listen[KVD_MAX_LISTENERS];
	int listen_fd[KVD_MAX_LISTENERS];
	unsigned int nlisten, nlisten_fd;
	__u32 state_min;
	int steer_gen;		/* -1: no steering */
	const char *steer_group;
	bool canary;
	bool reuseport;
	bool quiet;
};

static void log_cb(void *ctx, enum baton_log_level level, const char *msg)
{
	const struct options *o = ctx;
	static const char *const names[] = { "error", "warning", "info", "debug" };

	if (level == BATON_LOG_DEBUG || (o->quiet && level > BATON_LOG_ERR))
		return;
	fprintf(stderr, "kvd-v%d[%d]: %s: %s\n", KVD_VERSION, getpid(),
		names[level], msg);
}

static int parse_addr(const char *s, struct sockaddr_storage *ss,
		      socklen_t *len)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon = strrchr(s, ':');
	char *end;
	long port;

	if (!colon || (size_t)(colon - s) >= sizeof(host))
		return -EINVAL;
	port = strtol(colon + 1, &end, 10);
	if (*end || port < 0 || port > 65535)
		return -EINVAL;
	memcpy(host, s, colon - s);
	host[colon - s] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		host[strlen(host) - 1] = '\0';
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		*len = sizeof(*sin6);
		return inet_pton(AF_INET6, host + 1, &sin6->sin6_addr) == 1 ?
		       0 : -EINVAL;
	}
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	*len = sizeof(*sin);
	return inet_pton(AF_INET, host, &sin->sin_addr) == 1 ? 0 : -EINVAL;
}

static int open_listener(const char *addr, bool reuseport)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1, err;

	err = parse_addr(addr, &ss, &len);
	if (err) {
		fprintf(stderr, "kvd: '%s' is not ADDR:PORT (e.g. 127.0.0.1:6379 or [::1]:6379)\n",
			addr);
		return err;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (reuseport)
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 ||
	    listen(fd, 4096) < 0) {
		err = -errno;
		fprintf(stderr, "kvd: cannot listen on %s: %s\n", addr,
			strerror(errno));
		close(fd);
		return err;
	}
	return fd;
}

static int add_listener(struct kvd *kvd, int fd)
{
	struct kvd_listener *l = &kvd->listeners[kvd->nlisteners];

	l->h.kind = H_LISTENER;
	l->fd = fd;
	l->id = ++kvd->nlisteners;
	return 0;
}

static void accept_all(struct kvd *kvd, struct kvd_listener *l)
{
	int one = 1;

	while (kvd->accepting) {
		int fd = accept4(l->fd, NULL, NULL,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;	/* EAGAIN, or a client that gave up */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (conn_add(kvd, fd, kvd->next_id++, NULL))
			close(fd);
	}
}

static void kick_all(struct kvd *kvd)
{
	unsigned int fd;

	kvd->kick = false;
	for (fd = 0; fd < kvd->maxfd; fd++)
		if (kvd->conns[fd])
			conn_kick(kvd, kvd->conns[fd]);
}

/* Returns when asked to stop, or when another instance has taken over. */
static void serve(struct kvd *kvd)
{
	struct epoll_event ev[256];
	int bfd = baton_service_fd(kvd->svc);

	while (!stop && !(kvd->draining && kvd->nconns == 0)) {
		int n, i;

		if (kvd->kick)
			kick_all(kvd);
		if (baton_service_paused(kvd->svc)) {
			/* the blackout: only the handover may move */
			struct epoll_event bev;

			n = epoll_wait(bfd, &bev, 1, -1);
			if (n > 0 && baton_service_dispatch(kvd->svc) == BATON_EXIT)
				return;
			continue;
		}
		n = epoll_wait(kvd->ep, ev, 256, -1);
		for (i = 0; i < n; i++) {
			struct kvd_handle *h = ev[i].data.ptr;

			if (h->kind == H_BATON) {
				if (baton_service_dispatch(kvd->svc) == BATON_EXIT)
					return;
				if (baton_service_paused(kvd->svc))
					break;	/* the rest waits for the new */
			} else if (h->kind == H_LISTENER) {
				accept_all(kvd, (struct kvd_listener *)h);
			} else {
				struct kvd_conn *c = (struct kvd_conn *)h;

				/* closed earlier in this batch? */
				if (kvd->conns[c->fd] == c)
					conn_io(kvd, c, ev[i].events);
			}
		}
	}
}

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "service", required_argument, NULL, 's' },
		{ "listen", required_argument, NULL, 'l' },
		{ "listen-fd", required_argument, NULL, 'f' },
		{ "run-dir", required_argument, NULL, 'r' },
		{ "state-min", required_argument, NULL, 'm' },
		{ "steer", required_argument, NULL, 'g' },
		{ "reuseport", no_argument, NULL, 'R' },
		{ "steer-group", required_argument, NULL, 'G' },
		{ "canary", no_argument, NULL, 'c' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	int c;

	o->service = "kvd";
	o->state_min = 1;
	o->steer_gen = -1;
	while ((c = getopt_long(argc, argv, "s:l:f:r:m:g:G:cRqh", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			o->service = optarg;
			break;
		case 'l':
			if (o->nlisten + o->nlisten_fd == KVD_MAX_LISTENERS)
				goto too_many;
			o->listen[o->nlisten++] = optarg;
			break;
		case 'f':
			if (o->nlisten + o->nlisten_fd == KVD_MAX_LISTENERS)
				goto too_many;
			o->listen_fd[o->nlisten_fd++] = atoi(optarg);
			break;
		case 'r':
			o->run_dir = optarg;
			break;
		case 'm':
			o->state_min = atoi(optarg);
			break;
		case 'g':
			o->steer_gen = atoi(optarg);
			break;
		case 'R':
			o->reuseport = true;
			break;
		case 'G':
			o->steer_group = optarg;
			break;
		case 'c':
			o->canary = true;
			break;
		case 'q':
			o->quiet = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "kvd: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	if (!o->nlisten && !o->nlisten_fd)
		o->listen[o->nlisten++] = "127.0.0.1:6379";
	if ((o->canary || o->steer_group) && o->steer_gen < 0) {
		fprintf(stderr, "kvd: --canary and --steer-group go with --steer GEN\n");
		return -EINVAL;
	}
	if (o->steer_gen >= 0 && (o->nlisten != 1 || o->nlisten_fd ||
				  o->steer_gen >= BATON_STEER_MAX_GEN)) {
		fprintf(stderr, "kvd: --steer takes a generation from 0 to %d and exactly one --listen\n",
			BATON_STEER_MAX_GEN - 1);
		return -EINVAL;
	}
	return 0;
too_many:
	fprintf(stderr, "kvd: at most %d listeners\n", KVD_MAX_LISTENERS);
	return -EINVAL;
}

int main(int argc, char **argv)
{
	struct options o = {};
	struct kvd kvd = { .next_id = 1 };
	char app_name[32];
	struct baton_service_opts bo = {
		.state_version = KVD_VERSION,
		.state_compat = 1,	/* v1 reads v2's records: see state_v2.c */
		.ops = &kvd_baton_ops,
		.app = &kvd,
		.log = log_cb,
		.log_ctx = &o,
	};
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &kvd.baton_h };
	struct rlimit rl;
	unsigned int i;
	int err;

	if (parse_options(argc, argv, &o))
		return 2;
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	kvd.service = o.service;
	kvd.start_time = time(NULL);
	kvd.baton_h.kind = H_BATON;
	getrlimit(RLIMIT_NOFILE, &rl);
	kvd.maxfd = rl.rlim_cur;
	kvd.conns = calloc(kvd.maxfd, sizeof(*kvd.conns));
	kvd.ep = epoll_create1(EPOLL_CLOEXEC);
	if (!kvd.conns || kvd.ep < 0 || ks_init(&kvd.ks)) {
		fprintf(stderr, "kvd: out of memory\n");
		return 1;
	}
	snprintf(app_name, sizeof(app_name), "kvd %d", KVD_VERSION);
	bo.service = o.service;
	bo.run_dir = o.run_dir;
	bo.app_name = app_name;
	bo.state_min = o.state_min;

	if (o.steer_gen >= 0) {
		/* ours, and in the group, before any takeover */
		int fd = open_listener(o.listen[0], true);

		if (fd < 0)
			return 1;
		add_listener(&kvd, fd);
		if (kvd_steer_join(&kvd, o.steer_group ?: o.service, o.steer_gen)) {
			fprintf(stderr, "kvd: cannot steer %s as generation %d\n",
				o.service, o.steer_gen);
			return 1;
		}
	}
	err = baton_service_open(&kvd.svc, &bo);
	if (err)
		return 1;
	err = -EINVAL;	/* whatever fails below was said where it failed */
	if (kvd.steer && !baton_service_adopted(kvd.svc)) {
		/* a canary waits for 'batonctl steer' to send it a share */
		if ((!o.canary && kvd_steer_activate(&kvd)) ||
		    listeners_watch(&kvd, true)) {
			fprintf(stderr, "kvd: cannot take the new connections of %s\n",
				o.service);
			goto close_svc;
		}
	} else if (!baton_service_adopted(kvd.svc)) {
		for (i = 0; i < o.nlisten_fd; i++)
			add_listener(&kvd, o.listen_fd[i]);
		for (i = 0; i < o.nlisten; i++) {
			int fd = open_listener(o.listen[i], o.reuseport);

			if (fd < 0)
				goto close_svc;
			add_listener(&kvd, fd);
		}
		if (listeners_watch(&kvd, true)) {
			fprintf(stderr, "kvd: cannot watch the listeners: %s\n",
				strerror(errno));
			goto close_svc;
		}
	}
	if (epoll_ctl(kvd.ep, EPOLL_CTL_ADD, baton_service_fd(kvd.svc), &ev) < 0) {
		fprintf(stderr, "kvd: epoll: %s\n", strerror(errno));
		goto close_svc;
	}
	if (!o.quiet)
		fprintf(stderr, "kvd-v%d[%d]: serving %s (%u listeners, %u connections, %zu keys)\n",
			KVD_VERSION, getpid(), o.service, kvd.nlisteners,
			kvd.nconns, kvd.ks.count);
	serve(&kvd);
	err = 0;
close_svc:
	baton_service_close(kvd.svc);
	kvd_steer_close(&kvd);
	conns_close_all(&kvd);
	for (i = 0; i < kvd.nlisteners; i++)
		close(kvd.listeners[i].fd);
	ks_free(&kvd.ks);
	buf_free(&kvd.round);
	free(kvd.conns);
	close(kvd.ep);
	return err ? 1 : 0;
}
