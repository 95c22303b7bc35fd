// SPDX-License-Identifier: GPL-2.0-only
/* batonctl: the coordinator of baton upgrades. */
#include <getopt.h>
#include <stdarg.h>
#include <bpf/libbpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batonctl.h"

static const struct cmd {
	const char *name;
	int (*fn)(const struct ctl_opts *o, int argc, char **argv);
	const char *help;
} cmds[] = {
	{ "upgrade", cmd_upgrade, "SERVICE [OPTIONS] -- COMMAND  move SERVICE to COMMAND" },
	{ "apply",   cmd_apply,   "PLAN                          upgrade several services, in order" },
	{ "status",  cmd_status,  "[SERVICE]                     instances and last upgrades" },
	{ "recover", cmd_recover, "SERVICE                       settle an interrupted upgrade" },
	{ "steer",   cmd_steer,   "SERVICE [--canary PCT% | --commit | --abort]  where new connections go" },
	{ "checkpoint", cmd_checkpoint, "SERVICE -o FILE               connections and state into FILE; it exits" },
	{ "restore", cmd_restore, "SERVICE -i FILE -- COMMAND    COMMAND serves FILE's connections and state" },
	{ "dump",    cmd_dump,    "FILE                          what a checkpoint holds" },
	{ "kexec",   cmd_kexec,   "SERVICE... --kernel FILE      checkpoint, then restart the kernel" },
	{ "hold",    cmd_hold,    "SERVICE -i FILE               after the restart: hold FILE's connections" },
};

static void usage(FILE *f)
{
	unsigned int i;

	fprintf(f, "Usage: batonctl [-j|--json] [--run-dir DIR] COMMAND [ARGS]\n\n");
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(f, "  batonctl %-10s %s\n", cmds[i].name, cmds[i].help);
	fprintf(f, "\n  -j, --json      print reports as JSON\n"
		   "  --run-dir DIR   where services' control sockets are ($BATON_RUN_DIR, %s)\n"
		   "\n'batonctl COMMAND --help' tells more; see also batonctl(8).\n",
		BATON_RUN_DIR);
}

/* batonctl only reopens pins: libbpf has nothing to say to its users */
static int libbpf_quiet(enum libbpf_print_level level, const char *fmt,
			va_list ap)
{
	(void)level;
	(void)fmt;
	(void)ap;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "run-dir", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct ctl_opts o = {};
	unsigned int i;
	int c;

	libbpf_set_print(libbpf_quiet);
	while ((c = getopt_long(argc, argv, "+jh", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			o.json = true;
			break;
		case 'r':
			o.run_dir = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (!strcmp(argv[optind], cmds[i].name)) {
			char **sub = &argv[optind];
			int n = argc - optind, j;

			/* -j after the command works too */
			for (j = 1; j < n && strcmp(sub[j], "--"); j++) {
				if (strcmp(sub[j], "-j") && strcmp(sub[j], "--json"))
					continue;
				o.json = true;
				if (cmds[i].fn != cmd_upgrade) {
					memmove(&sub[j], &sub[j + 1],
						(n - j) * sizeof(*sub));
					n--;
					j--;
				}
			}
			return cmds[i].fn(&o, n, sub);
		}
	}
	fprintf(stderr, "batonctl: unknown command '%s'; try 'batonctl --help'\n",
		argv[optind]);
	return 2;
}
