// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvd: a small in-memory key-value server speaking RESP2, built on libbaton
 * so that it can be upgraded in place with batonctl.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "kvd.h"

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
"  -F, --fail-ping-after MS\n"
"                         from MS milliseconds after it begins to serve,\n"
"                         answer PING with an error: a version gone bad,\n"
"                         for trying health checks ('batonctl upgrade\n"
"                         --verify')\n"
"  -D, --activate-delay MS\n"
"                         started by an upgrade, wait MS milliseconds in\n"
"                         its activation, with the service's lock held: a\n"
"                         slow new version, for trying the blackout's\n"
"                         deadline ('batonctl upgrade --blackout-timeout-ms')\n"
"  -S, --fdstore          under systemd, keep the listeners in the unit's\n"
"                         file descriptor store (FileDescriptorStoreMax=):\n"
"                         restarted after a crash, kvd takes them back\n"
"  -q, --quiet            log errors only\n"
"  -h, --help\n"
"\n"
"Started by 'batonctl upgrade', it takes over the running instance's\n"
"listeners, connections and keys instead of opening its own.\n",
		KVD_VERSION, BATON_RUN_DIR, BATON_STEER_MAX_GEN - 1);
}

__u64 kvd_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static const struct srv_ops kvd_srv_ops = {
	.name		= "kvd",
	.version	= KVD_VERSION,
	.state_compat	= 1,	/* v1 reads v2's records: see state_v2.c */
	.port		= 6379,
	.baton_ops	= &kvd_baton_ops,
	.conn_size	= sizeof(struct kvd_conn),
	.conn_io	= kvd_conn_io,
	.conn_kick	= kvd_conn_kick,
	.conn_save	= kvd_conn_save,
	.conn_load	= kvd_conn_load,
};

struct options {
	struct srv_opts srv;
	int steer_gen;		/* -1: no steering */
	const char *steer_group;
	bool canary;
	bool reuseport;
	long long fail_ping_ms;
	long long activate_delay_ms;
};

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
		{ "fail-ping-after", required_argument, NULL, 'F' },
		{ "activate-delay", required_argument, NULL, 'D' },
		{ "fdstore", no_argument, NULL, 'S' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	const char *as;
	char *end;
	int c, err;

	srv_options_init(&o->srv, &kvd_srv_ops);
	o->steer_gen = -1;
	o->fail_ping_ms = -1;
	while ((c = getopt_long(argc, argv, "s:l:f:r:m:g:G:F:D:cRSqh", longopts, NULL)) != -1) {
		switch (c) {
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
		case 'F':
			o->fail_ping_ms = strtoll(optarg, &end, 10);
			if (*end || end == optarg || o->fail_ping_ms < 0) {
				fprintf(stderr, "kvd: --fail-ping-after takes a number of milliseconds\n");
				return -EINVAL;
			}
			break;
		case 'D':
			o->activate_delay_ms = strtoll(optarg, &end, 10);
			if (*end || end == optarg || o->activate_delay_ms < 0 ||
			    o->activate_delay_ms > 60000) {
				fprintf(stderr, "kvd: --activate-delay takes a number of milliseconds, at most 60000\n");
				return -EINVAL;
			}
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
	if (srv_options_done(&o->srv, argc, argv))
		return -EINVAL;
	as = getenv(BATON_CANARY_ENV);
	if (as && *as) {
		/* batonctl upgrade --canary: beside SERVICE, under this name */
		if (o->steer_gen < 0) {
			fprintf(stderr, "kvd: started as a canary (%s=%s) without --steer GEN: a canary is a generation of %s's steered group\n",
				BATON_CANARY_ENV, as, o->srv.service);
			return -EINVAL;
		}
		if (!o->steer_group)
			o->steer_group = o->srv.service;
		o->srv.service = as;
		o->canary = true;
	}
	if ((o->canary || o->steer_group) && o->steer_gen < 0) {
		fprintf(stderr, "kvd: --canary and --steer-group go with --steer GEN\n");
		return -EINVAL;
	}
	if (o->steer_gen >= 0 && (o->srv.nlisten != 1 || o->srv.nlisten_fd ||
				  o->steer_gen >= BATON_STEER_MAX_GEN)) {
		fprintf(stderr, "kvd: --steer takes a generation from 0 to %d and exactly one --listen\n",
			BATON_STEER_MAX_GEN - 1);
		return -EINVAL;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct options o = {};
	struct kvd kvd = {};
	struct srv *s = &kvd.srv;
	int err;

	if (parse_options(argc, argv, &o))
		return 2;
	srv_signals();
	kvd.service = o.srv.service;
	kvd.start_time = time(NULL);
	kvd.fail_ping_ms = o.fail_ping_ms;
	kvd.activate_delay_ms = o.activate_delay_ms;
	if (srv_init(s, &kvd_srv_ops, o.srv.quiet) || ks_init(&kvd.ks)) {
		fprintf(stderr, "kvd: out of memory\n");
		return 1;
	}
	if (o.steer_gen >= 0) {
		/* ours, and in the group, before any takeover */
		int fd = srv_open_listener(s, o.srv.listen[0], true);

		if (fd < 0)
			return 1;
		srv_listener_add(s, fd, 1);
		if (kvd_steer_join(&kvd, o.steer_group ?: o.srv.service,
				   o.steer_gen, o.canary)) {
			fprintf(stderr, "kvd: cannot steer %s as generation %d\n",
				o.srv.service, o.steer_gen);
			return 1;
		}
	}
	err = srv_open(s, &o.srv);
	if (err)
		return 1;
	err = -EINVAL;	/* whatever fails below was said where it failed */
	/* a canary, stopped, serves its connections to their end */
	s->drain_on_stop = o.canary;
	if (kvd.steer && !baton_service_adopted(s->svc)) {
		/* a canary waits for 'batonctl steer' to send it a share */
		if ((!o.canary && kvd_steer_activate(&kvd)) ||
		    srv_listeners_watch(s, true)) {
			fprintf(stderr, "kvd: cannot take the new connections of %s\n",
				o.srv.service);
			goto close_svc;
		}
	} else if (!baton_service_adopted(s->svc)) {
		if (srv_listen(s, &o.srv, o.reuseport))
			goto close_svc;
	}
	if (!kvd.serving_ns)	/* not adopted: serves from now */
		kvd.serving_ns = kvd_now_ns();
	if (!o.srv.quiet)
		fprintf(stderr, "kvd-v%d[%d]: serving %s (%u listeners, %u connections, %zu keys)\n",
			KVD_VERSION, getpid(), o.srv.service, s->nlisteners,
			s->nconns, kvd.ks.count);
	err = srv_serve(s);
close_svc:
	baton_service_close(s->svc);
	kvd_steer_close(&kvd);
	srv_fini(s);
	ks_free(&kvd.ks);
	buf_free(&kvd.round);
	return err ? 1 : 0;
}
