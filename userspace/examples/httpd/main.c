// SPDX-License-Identifier: GPL-2.0-only
/*
 * httpd: a small HTTP/1.1 keep-alive server of static files, built on
 * libbaton so that it can be upgraded in place with batonctl.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
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
#include <unistd.h>

#include "httpd.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
"Usage: httpd-v%d [OPTIONS]\n"
"A small HTTP/1.1 keep-alive server of the files under a directory, which\n"
"batonctl can upgrade without closing a connection.\n"
"\n"
"  -d, --root DIR         serve the regular files under DIR (.)\n"
"  -s, --service NAME     the service name batonctl knows it by (httpd)\n"
"  -l, --listen ADDR:PORT listen there; repeatable (127.0.0.1:8080);\n"
"                         IPv6 as [::1]:8080\n"
"  -f, --listen-fd FD     serve an inherited listening socket instead\n"
"  -r, --run-dir DIR      where the control socket lives (/run/baton)\n"
"  -m, --state-min N      refuse to take over state older than version N\n"
"  -q, --quiet            log errors only\n"
"  -h, --help\n"
"\n"
"Started by 'batonctl upgrade', it takes over the running instance's\n"
"listeners and connections, each with the request it was reading and the\n"
"response it was writing, instead of opening its own.\n",
		HTTPD_VERSION);
}

struct options {
	const char *root;
	const char *service;
	const char *run_dir;
	const char *listen[HTTPD_MAX_LISTENERS];
	int listen_fd[HTTPD_MAX_LISTENERS];
	unsigned int nlisten, nlisten_fd;
	__u32 state_min;
	bool quiet;
};

static void log_cb(void *ctx, enum baton_log_level level, const char *msg)
{
	const struct options *o = ctx;
	static const char *const names[] = { "error", "warning", "info", "debug" };

	if (level == BATON_LOG_DEBUG || (o->quiet && level > BATON_LOG_ERR))
		return;
	fprintf(stderr, "httpd-v%d[%d]: %s: %s\n", HTTPD_VERSION, getpid(),
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
	if (*end || end == colon + 1 || port < 0 || port > 65535)
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

static int open_listener(const char *addr)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1, err;

	err = parse_addr(addr, &ss, &len);
	if (err) {
		fprintf(stderr, "httpd: '%s' is not ADDR:PORT (e.g. 127.0.0.1:8080 or [::1]:8080)\n",
			addr);
		return err;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 ||
	    listen(fd, 4096) < 0) {
		err = -errno;
		fprintf(stderr, "httpd: cannot listen on %s: %s\n", addr,
			strerror(errno));
		close(fd);
		return err;
	}
	return fd;
}

static void add_listener(struct httpd *h, int fd)
{
	struct listener *l = &h->listeners[h->nlisteners];

	l->h.kind = H_LISTENER;
	l->fd = fd;
	l->id = ++h->nlisteners;
}

static void accept_all(struct httpd *h, struct listener *l)
{
	int one = 1;

	while (h->accepting) {
		int fd = accept4(l->fd, NULL, NULL,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;	/* EAGAIN, or a client that gave up */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (conn_add(h, fd, h->next_id++, NULL))
			close(fd);
	}
}

static void kick_all(struct httpd *h)
{
	unsigned int fd;

	h->kick = false;
	for (fd = 0; fd < h->maxfd; fd++)
		if (h->conns[fd])
			conn_kick(h, h->conns[fd]);
}

/* Returns when asked to stop, or when another instance has taken over. */
static void serve(struct httpd *h)
{
	struct epoll_event ev[256];
	int bfd = baton_service_fd(h->svc);

	while (!stop && !(h->draining && h->nconns == 0)) {
		int n, i;

		if (h->kick)
			kick_all(h);
		if (baton_service_paused(h->svc)) {
			/* the blackout: only the handover may move */
			struct epoll_event bev;

			n = epoll_wait(bfd, &bev, 1, -1);
			if (n > 0 && baton_service_dispatch(h->svc) == BATON_EXIT)
				return;
			continue;
		}
		n = epoll_wait(h->ep, ev, 256, -1);
		for (i = 0; i < n; i++) {
			struct handle *hd = ev[i].data.ptr;

			if (hd->kind == H_BATON) {
				if (baton_service_dispatch(h->svc) == BATON_EXIT)
					return;
				if (baton_service_paused(h->svc))
					break;	/* the rest waits for the new */
			} else if (hd->kind == H_LISTENER) {
				accept_all(h, (struct listener *)hd);
			} else {
				struct conn *c = (struct conn *)hd;

				/* closed earlier in this batch? */
				if (h->conns[c->fd] == c)
					conn_io(h, c, ev[i].events);
			}
		}
	}
}

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "root", required_argument, NULL, 'd' },
		{ "service", required_argument, NULL, 's' },
		{ "listen", required_argument, NULL, 'l' },
		{ "listen-fd", required_argument, NULL, 'f' },
		{ "run-dir", required_argument, NULL, 'r' },
		{ "state-min", required_argument, NULL, 'm' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	int c;

	o->root = ".";
	o->service = "httpd";
	o->state_min = 1;
	while ((c = getopt_long(argc, argv, "d:s:l:f:r:m:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'd':
			o->root = optarg;
			break;
		case 's':
			o->service = optarg;
			break;
		case 'l':
			if (o->nlisten + o->nlisten_fd == HTTPD_MAX_LISTENERS)
				goto too_many;
			o->listen[o->nlisten++] = optarg;
			break;
		case 'f':
			if (o->nlisten + o->nlisten_fd == HTTPD_MAX_LISTENERS)
				goto too_many;
			o->listen_fd[o->nlisten_fd++] = atoi(optarg);
			break;
		case 'r':
			o->run_dir = optarg;
			break;
		case 'm':
			o->state_min = atoi(optarg);
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
		fprintf(stderr, "httpd: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	if (!o->nlisten && !o->nlisten_fd)
		o->listen[o->nlisten++] = "127.0.0.1:8080";
	return 0;
too_many:
	fprintf(stderr, "httpd: at most %d listeners\n", HTTPD_MAX_LISTENERS);
	return -EINVAL;
}

int main(int argc, char **argv)
{
	struct options o = {};
	struct httpd h = { .next_id = 1, .root = -1 };
	char app_name[32];
	struct baton_service_opts bo = {
		.state_version = HTTPD_VERSION,
		.state_compat = 1,	/* v1 reads v2's records: conn_record.c */
		.ops = &httpd_baton_ops,
		.app = &h,
		.log = log_cb,
		.log_ctx = &o,
	};
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &h.baton_h };
	struct rlimit rl;
	unsigned int i;
	int err;

	if (parse_options(argc, argv, &o))
		return 2;
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	h.root = open(o.root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (h.root < 0) {
		fprintf(stderr, "httpd: cannot serve %s: %s (--root takes a directory)\n",
			o.root, strerror(errno));
		return 1;
	}
	h.baton_h.kind = H_BATON;
	getrlimit(RLIMIT_NOFILE, &rl);
	h.maxfd = rl.rlim_cur;
	h.conns = calloc(h.maxfd, sizeof(*h.conns));
	h.ep = epoll_create1(EPOLL_CLOEXEC);
	if (!h.conns || h.ep < 0) {
		fprintf(stderr, "httpd: out of memory\n");
		return 1;
	}
	snprintf(app_name, sizeof(app_name), "httpd %d", HTTPD_VERSION);
	bo.service = o.service;
	bo.run_dir = o.run_dir;
	bo.app_name = app_name;
	bo.state_min = o.state_min;

	err = baton_service_open(&h.svc, &bo);
	if (err)
		return 1;
	err = -EINVAL;	/* whatever fails below was said where it failed */
	if (!baton_service_adopted(h.svc)) {
		for (i = 0; i < o.nlisten_fd; i++)
			add_listener(&h, o.listen_fd[i]);
		for (i = 0; i < o.nlisten; i++) {
			int fd = open_listener(o.listen[i]);

			if (fd < 0)
				goto close_svc;
			add_listener(&h, fd);
		}
		if (listeners_watch(&h, true)) {
			fprintf(stderr, "httpd: cannot watch the listeners: %s\n",
				strerror(errno));
			goto close_svc;
		}
	}
	if (epoll_ctl(h.ep, EPOLL_CTL_ADD, baton_service_fd(h.svc), &ev) < 0) {
		fprintf(stderr, "httpd: epoll: %s\n", strerror(errno));
		goto close_svc;
	}
	if (!o.quiet)
		fprintf(stderr, "httpd-v%d[%d]: serving %s from %s (%u listeners, %u connections)\n",
			HTTPD_VERSION, getpid(), o.service, o.root,
			h.nlisteners, h.nconns);
	serve(&h);
	err = 0;
close_svc:
	baton_service_close(h.svc);
	conns_close_all(&h);
	for (i = 0; i < h.nlisteners; i++)
		close(h.listeners[i].fd);
	free(h.conns);
	close(h.ep);
	close(h.root);
	return err ? 1 : 0;
}
