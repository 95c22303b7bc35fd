// SPDX-License-Identifier: GPL-2.0-only
/*
 * batonctl steer: which generation of a service's listeners new
 * connections go to, read and changed through its pinned maps.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "batonctl.h"

static void usage(FILE *f)
{
	fprintf(f,
"Usage: batonctl steer SERVICE [-j]\n"
"       batonctl steer SERVICE --canary PCT%% [--to GEN]\n"
"       batonctl steer SERVICE --commit | --abort | --active GEN\n"
"\n"
"Shows or changes where new connections to SERVICE go, when its listeners\n"
"are steered by baton's sk_reuseport program (pinned under\n"
"%s/SERVICE, or $BATON_PIN_ROOT/SERVICE).\n"
"\n"
"  --canary PCT%%  send PCT%% of new connections (0 to 100, by flow hash)\n"
"                 to the canary generation\n"
"  --to GEN       the canary generation (default: the one set before)\n"
"  --commit       make the canary the active generation: all new\n"
"                 connections go there at once\n"
"  --abort        send all new connections back to the active generation\n"
"  --active GEN   make GEN the active generation\n", BATON_STEER_PIN_ROOT);
}

/* 0 .. BATON_STEER_MAX_GEN - 1, or -1 */
static long parse_gen(const char *s)
{
	char *end;
	long gen = strtol(s, &end, 10);

	return end == s || *end || gen < 0 || gen >= BATON_STEER_MAX_GEN ?
	       -1 : gen;
}

static int bad_gen(const char *arg)
{
	fprintf(stderr, "batonctl: a generation is a number from 0 to %d, not '%s'\n",
		BATON_STEER_MAX_GEN - 1, arg);
	return 2;
}

static int show(const struct ctl_opts *o, const char *service,
		struct baton_steer *st)
{
	__u32 active, canary, share, gen;
	char label[32], value[64];
	struct out out;
	int err;

	err = baton_steer_get(st, &active, &canary, &share);
	if (err)
		return err;
	out_begin(&out, stdout, o->json);
	if (!o->json)
		printf("%s: new connections to generation %u%s\n", service, active,
		       share ? ", and a share to the canary" : "");
	out_str(&out, "service", NULL, service);
	out_u64(&out, "active", "active", active);
	out_u64(&out, "canary", share ? "canary" : NULL, canary);
	snprintf(value, sizeof(value), "%.2f%%",
		 share / (BATON_STEER_SCALE / 100.0));
	out_str(&out, "canary_share", share ? "canary share" : NULL, value);
	out_obj_begin(&out, "listeners", "listeners:");
	for (gen = 0; gen < BATON_STEER_MAX_GEN; gen++) {
		int has = baton_steer_has_listener(st, gen);

		if (has <= 0)
			continue;
		snprintf(label, sizeof(label), "%u", gen);
		out_str(&out, label, "generation", label);
	}
	out_obj_end(&out);
	out_end(&out);
	return 0;
}

int cmd_steer(const struct ctl_opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "canary", required_argument, NULL, 'c' },
		{ "to", required_argument, NULL, 't' },
		{ "commit", no_argument, NULL, 'C' },
		{ "abort", no_argument, NULL, 'A' },
		{ "active", required_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct baton_steer_opts so = { .flags = BATON_STEER_F_EXISTING,
				       .log = ctl_log };
	long share = -1, to = -1, active_to = -1;
	bool commit = false, abort_canary = false;
	__u32 active, canary, cur_share;
	struct baton_steer *st;
	int c, err, actions;

	optind = 0;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			share = steer_parse_share(optarg);
			if (share < 0) {
				fprintf(stderr, "batonctl: --canary takes a share from 0%% to 100%%, e.g. 5%%\n");
				return 2;
			}
			break;
		case 't':
			to = parse_gen(optarg);
			if (to < 0)
				return bad_gen(optarg);
			break;
		case 'C':
			commit = true;
			break;
		case 'A':
			abort_canary = true;
			break;
		case 'a':
			active_to = parse_gen(optarg);
			if (active_to < 0)
				return bad_gen(optarg);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	actions = (share >= 0) + commit + abort_canary + (active_to >= 0);
	if (optind + 1 != argc || actions > 1) {
		usage(stderr);
		return 2;
	}
	so.service = argv[optind];
	err = baton_steer_open(&st, &so);
	if (err) {
		fprintf(stderr, "batonctl: %s is not steered here: %s\n",
			so.service, strerror(-err));
		return 1;
	}
	err = baton_steer_get(st, &active, &canary, &cur_share);
	if (!err && share >= 0)
		err = baton_steer_set(st, active, to >= 0 ? to : canary, share);
	else if (!err && commit)
		err = baton_steer_set(st, canary, canary, 0);
	else if (!err && abort_canary)
		err = baton_steer_set(st, active, canary, 0);
	else if (!err && active_to >= 0)
		err = baton_steer_set(st, active_to, canary, 0);
	if (!err)
		err = show(o, so.service, st);
	if (err)
		fprintf(stderr, "batonctl: steering %s: %s\n", so.service,
			strerror(-err));
	baton_steer_close(st);
	return err ? 1 : 0;
}
