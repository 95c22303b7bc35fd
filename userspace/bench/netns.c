// SPDX-License-Identifier: GPL-2.0-only
/*
 * --netns: the service's two network namespaces, made with iproute2's ip.
 * Here, where the clients run: a bridge with the subnet's first address;
 * A and B: a veth each, its peer on the bridge, an address of its own; A
 * also the service address, which the upgrades then move back and forth
 * (batonctl upgrade --netns).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

/*
 * ip with these arguments, its output to /dev/null: 0 or -EIO; a failure
 * said unless quiet
 */
static int ip(bool quiet, const char *const *args)
{
	const char *argv[16] = { "ip" };
	int status, i;
	pid_t pid;

	for (i = 0; args[i] && i < 14; i++)
		argv[i + 1] = args[i];
	argv[i + 1] = NULL;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		if (null >= 0)
			dup2(null, quiet ? 2 : 1);
		execvp("ip", (char *const *)argv);
		fprintf(stderr, "baton-bench: --netns needs iproute2's ip: %s\n",
			strerror(errno));
		_exit(127);
	}
	if (waitpid(pid, &status, 0) != pid)
		return -errno;
	if (WIFEXITED(status) && !WEXITSTATUS(status))
		return 0;
	if (!quiet && (!WIFEXITED(status) || WEXITSTATUS(status) != 127)) {
		fprintf(stderr, "baton-bench: --netns: 'ip");
		for (i = 0; args[i]; i++)
			fprintf(stderr, " %s", args[i]);
		fprintf(stderr, "' failed\n");
	}
	return -EIO;
}

#define IP(...) ip(false, (const char *const[]){ __VA_ARGS__, NULL })

int bench_netns_make(struct bench_netns *n)
{
	char peer[2][16], addr[4][24];	/* A, B, the service, here */
	int i, err = 0;

	memset(n, 0, sizeof(*n));
	n->fd[0] = n->fd[1] = -1;
	snprintf(n->bridge, sizeof(n->bridge), "bbr%d", getpid() % 100000);
	for (i = 0; i < 2; i++) {
		snprintf(n->name[i], sizeof(n->name[i]), "baton-bench-%c%d",
			 'a' + i, getpid());
		snprintf(n->path[i], sizeof(n->path[i]), "/run/netns/%s",
			 n->name[i]);
		snprintf(peer[i], sizeof(peer[i]), "bb%c%d", 'a' + i,
			 getpid() % 100000);
		snprintf(addr[i], sizeof(addr[i]), NETNS_SUBNET "%d/%d", 2 + i,
			 NETNS_PLEN);
	}
	snprintf(addr[2], sizeof(addr[2]), NETNS_ADDR "/%d", NETNS_PLEN);
	snprintf(addr[3], sizeof(addr[3]), NETNS_SUBNET "1/%d", NETNS_PLEN);
	n->made = true;
	err = IP("link", "add", n->bridge, "type", "bridge") ?:
	      IP("addr", "add", addr[3], "dev", n->bridge) ?:
	      IP("link", "set", n->bridge, "up");
	for (i = 0; !err && i < 2; i++)
		err = IP("netns", "add", n->name[i]) ?:
		      IP("link", "add", peer[i], "type", "veth", "peer", "name",
			 NETNS_DEV, "netns", n->name[i]) ?:
		      IP("link", "set", peer[i], "master", n->bridge) ?:
		      IP("link", "set", peer[i], "up") ?:
		      IP("-n", n->name[i], "addr", "add", addr[i], "dev",
			 NETNS_DEV) ?:
		      IP("-n", n->name[i], "link", "set", "lo", "up") ?:
		      IP("-n", n->name[i], "link", "set", NETNS_DEV, "up");
	if (!err)
		err = IP("-n", n->name[0], "addr", "add", addr[2], "dev",
			 NETNS_DEV);
	for (i = 0; !err && i < 2; i++) {
		n->fd[i] = open(n->path[i], O_RDONLY | O_CLOEXEC);
		if (n->fd[i] < 0)
			err = -errno;
	}
	if (err)
		bench_netns_remove(n);
	return err;
}

/* What bench_netns_make() made: the veths go with their namespaces. */
void bench_netns_remove(struct bench_netns *n)
{
	int i;

	if (!n->made)
		return;
	for (i = 0; i < 2; i++) {
		if (n->fd[i] >= 0)
			close(n->fd[i]);
		n->fd[i] = -1;
		ip(true, (const char *const[]){ "netns", "del", n->name[i],
						 NULL });
	}
	ip(true, (const char *const[]){ "link", "del", n->bridge, NULL });
	n->made = false;
}
