/* SPDX-License-Identifier: (LGPL-2.1-or-later OR BSD-2-Clause) */
/*
 * The steering program's maps, shared by baton_steer.bpf.c and libbaton
 * (through baton_steer.h): __u32/__u64 only.
 */
#ifndef BATON_STEER_MAPS_H
#define BATON_STEER_MAPS_H

#define BATON_STEER_MAX_GEN	16	/* listeners in the group, by generation */
#define BATON_STEER_SCALE	10000	/* shares are in 1/10000 */

struct baton_steer_conf {
	__u32 active;		/* new flows, and migrated ones, go here */
	__u32 canary;		/* and this share of new flows here */
	__u32 canary_share;	/* 0 .. BATON_STEER_SCALE, by flow hash */
	__u32 flags;		/* none yet; must be 0 */
};

#endif /* BATON_STEER_MAPS_H */
