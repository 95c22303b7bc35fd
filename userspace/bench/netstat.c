// SPDX-License-Identifier: GPL-2.0-only
/*
 * The network namespace's TCP counters a run is judged by besides what
 * the clients saw: retransmission timeouts (TcpExt TCPTimeouts), tail
 * loss probes (TcpExt TCPLossProbes) and segments retransmitted (Tcp
 * RetransSegs), from /proc/net/netstat and /proc/net/snmp. Clients and
 * servers share the namespace, so each counts both sides.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

/*
 * One counter of a /proc/net file of "Prefix: names" lines, each followed
 * by a "Prefix: values" line; 0, or -ENOENT if the file lacks it.
 */
static int counter_read(const char *path, const char *prefix,
			const char *name, __u64 *val)
{
	char *names = NULL, *values = NULL, *n, *v, *sn, *sv;
	size_t ncap = 0, vcap = 0, plen = strlen(prefix);
	int err = -ENOENT;
	FILE *f;

	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (getline(&names, &ncap, f) > 0 && getline(&values, &vcap, f) > 0) {
		if (strncmp(names, prefix, plen) || names[plen] != ':')
			continue;
		n = strtok_r(names + plen + 1, " \n", &sn);
		v = strtok_r(values + plen + 1, " \n", &sv);
		for (; n && v; n = strtok_r(NULL, " \n", &sn),
			       v = strtok_r(NULL, " \n", &sv)) {
			if (strcmp(n, name))
				continue;
			*val = strtoull(v, NULL, 10);
			err = 0;
			break;
		}
		break;
	}
	free(names);
	free(values);
	fclose(f);
	return err;
}

int net_counters_read(struct net_counters *c)
{
	int err;

	err = counter_read("/proc/net/netstat", "TcpExt", "TCPTimeouts",
			   &c->rto);
	if (!err)
		err = counter_read("/proc/net/netstat", "TcpExt",
				   "TCPLossProbes", &c->loss_probes);
	if (!err)
		err = counter_read("/proc/net/snmp", "Tcp", "RetransSegs",
				   &c->retrans);
	return err;
}

void net_counters_sub(struct net_counters *after,
		      const struct net_counters *before)
{
	after->rto -= before->rto;
	after->loss_probes -= before->loss_probes;
	after->retrans -= before->retrans;
}
