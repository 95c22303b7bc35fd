// SPDX-License-Identifier: (LGPL-2.1-or-later OR BSD-2-Clause)
/*
 * Steers new connections between the listeners of one SO_REUSEPORT group,
 * each belonging to one generation (version) of a service: all to the
 * active generation, or a share, by flow hash, to a canary. When a
 * listener closes, the connections in its accept queue and its pending
 * handshakes are migrated to the active generation instead of reset.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "baton_steer_maps.h"

struct {
	__uint(type, BPF_MAP_TYPE_REUSEPORT_SOCKARRAY);
	__uint(max_entries, BATON_STEER_MAX_GEN);
	__type(key, __u32);
	__type(value, __u64);
} steer_listeners SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct baton_steer_conf);
} steer_conf SEC(".maps");

SEC("sk_reuseport/migrate")
int baton_steer(struct sk_reuseport_md *md)
{
	struct baton_steer_conf *conf;
	__u32 zero = 0, gen;

	conf = bpf_map_lookup_elem(&steer_conf, &zero);
	if (!conf)
		return SK_PASS;		/* the kernel's own choice */
	gen = conf->active;
	if (!md->migrating_sk && conf->canary_share &&
	    md->hash % BATON_STEER_SCALE < conf->canary_share)
		gen = conf->canary;
	/*
	 * An empty slot (that generation's listener is gone) falls back to
	 * the kernel's choice among the live listeners: never a reset.
	 */
	bpf_sk_select_reuseport(md, &steer_listeners, &gen, 0);
	return SK_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
