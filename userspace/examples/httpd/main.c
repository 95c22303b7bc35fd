// SPDX-License-Identifier: GPL-2.0-only
/*
 * httpd: a small HTTP/1.1 keep-alive server of static files, built on
 * libbaton so that it can be upgraded in place with batonctl.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "httpd.h"

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

static const struct srv_ops httpd_srv_ops = {
	.name		= "httpd",
	.version	= HTTPD_VERSION,
	.state_compat	= 1,	/* v1 reads v2's records: conn_record.c */
	.port		= 8080,
	.baton_ops	= &httpd_baton_ops,
	.conn_size	= sizeof(struct conn),
	.conn_init	= httpd_conn_init,
	.conn_release	= httpd_conn_release,
	.conn_io	= httpd_conn_io,
	.conn_kick	= httpd_conn_kick,
	.conn_save	= httpd_conn_save,
	.conn_load	= httpd_conn_load,
};

struct options {
	struct srv_opts srv;
	const char *root;
};

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
	int c, err;

	srv_options_init(&o->srv, &httpd_srv_ops);
	o->root = ".";
	while ((c = getopt_long(argc, argv, "d:s:l:f:r:m:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'd':
			o->root = optarg;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			err = srv_option(&o->srv, c, optarg);
			if (err > 0)
				usage(stderr);
			if (err)
				return -EINVAL;
		}
	}
	return srv_options_done(&o->srv, argc, argv);
}

int main(int argc, char **argv)
{
	struct options o = {};
	struct httpd h = { .root = -1 };
	struct srv *s = &h.srv;
	int err;

	if (parse_options(argc, argv, &o))
		return 2;
	srv_signals();
	h.root = open(o.root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (h.root < 0) {
		fprintf(stderr, "httpd: cannot serve %s: %s (--root takes a directory)\n",
			o.root, strerror(errno));
		return 1;
	}
	if (srv_init(s, &httpd_srv_ops, o.srv.quiet)) {
		fprintf(stderr, "httpd: out of memory\n");
		return 1;
	}
	err = srv_open(s, &o.srv);
	if (err)
		return 1;
	if (!baton_service_adopted(s->svc)) {
		/* what fails was said where it failed */
		err = srv_listen(s, &o.srv, false);
		if (err)
			goto close_svc;
	}
	if (!o.srv.quiet)
		fprintf(stderr, "httpd-v%d[%d]: serving %s from %s (%u listeners, %u connections)\n",
			HTTPD_VERSION, getpid(), o.srv.service, o.root,
			s->nlisteners, s->nconns);
	err = srv_serve(s);
close_svc:
	baton_service_close(s->svc);
	srv_fini(s);
	close(h.root);
	return err ? 1 : 0;
}
