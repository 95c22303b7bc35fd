// SPDX-License-Identifier: GPL-2.0-only
/*
 * The options kvd and httpd both take (service, listeners, run dir, state
 * version, quiet), and opening the listeners they name.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server.h"

void srv_options_init(struct srv_opts *o, const struct srv_ops *ops)
{
	o->ops = ops;
	o->service = ops->name;
	o->state_min = 1;
}

int srv_option(struct srv_opts *o, int c, const char *arg)
{
	switch (c) {
	case 's':
		o->service = arg;
		return 0;
	case 'l':
	case 'f':
		if (o->nlisten + o->nlisten_fd == SRV_MAX_LISTENERS) {
			fprintf(stderr, "%s: at most %d listeners\n",
				o->ops->name, SRV_MAX_LISTENERS);
			return -EINVAL;
		}
		if (c == 'l')
			o->listen[o->nlisten++] = arg;
		else
			o->listen_fd[o->nlisten_fd++] = atoi(arg);
		return 0;
	case 'r':
		o->run_dir = arg;
		return 0;
	case 'm':
		o->state_min = atoi(arg);
		return 0;
	case 'q':
		o->quiet = true;
		return 0;
	case 'S':
		o->fdstore = true;
		return 0;
	default:
		return 1;
	}
}

/* After getopt: no operands; without a listener, the default one. */
int srv_options_done(struct srv_opts *o, int argc, char **argv)
{
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", o->ops->name,
			argv[optind]);
		return -EINVAL;
	}
	if (!o->nlisten && !o->nlisten_fd) {
		snprintf(o->listen_default, sizeof(o->listen_default),
			 "127.0.0.1:%u", o->ops->port);
		o->listen[o->nlisten++] = o->listen_default;
	}
	return 0;
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

/* A listening socket on addr ("127.0.0.1:6379", "[::1]:6379"), or -errno. */
int srv_open_listener(struct srv *s, const char *addr, bool reuseport)
{
	const char *name = s->ops->name;
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1, err;

	err = parse_addr(addr, &ss, &len);
	if (err) {
		fprintf(stderr, "%s: '%s' is not ADDR:PORT (e.g. 127.0.0.1:%u or [::1]:%u)\n",
			name, addr, s->ops->port, s->ops->port);
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
		fprintf(stderr, "%s: cannot listen on %s: %s\n", name, addr,
			strerror(-err));
		goto close_fd;
	}
	return fd;
close_fd:
	close(fd);
	return err;
}

int srv_listen(struct srv *s, const struct srv_opts *o, bool reuseport)
{
	int fds[SRV_MAX_LISTENERS];
	unsigned int i;
	int fd, n, err;

	n = baton_listeners_passed(s->svc, SRV_FDNAME, fds, SRV_MAX_LISTENERS);
	for (i = 0; n > 0 && i < (unsigned int)n; i++) {
		err = srv_listener_add(s, fds[i], s->nlisteners + 1);
		if (err)
			return err;
	}
	if (n > 0) {
		if (!s->quiet)
			fprintf(stderr, "%s: %d listeners taken back from systemd's store; --listen and --listen-fd ignored\n",
				s->ops->name, n);
		goto watch;
	}
	for (i = 0; i < o->nlisten_fd; i++) {
		err = srv_listener_add(s, o->listen_fd[i], s->nlisteners + 1);
		if (err)
			return err;
	}
	for (i = 0; i < o->nlisten; i++) {
		fd = srv_open_listener(s, o->listen[i], reuseport);
		if (fd < 0)
			return fd;
		err = srv_listener_add(s, fd, s->nlisteners + 1);
		if (err)
			goto close_fd;
	}
	for (i = 0; o->fdstore && i < s->nlisteners; i++)
		baton_listener_store(s->svc, s->listeners[i].fd, SRV_FDNAME);
watch:
	err = srv_listeners_watch(s, true);
	if (err)
		fprintf(stderr, "%s: cannot watch the listeners: %s\n",
			s->ops->name, strerror(-err));
	return err;
close_fd:
	close(fd);
	return err;
}
