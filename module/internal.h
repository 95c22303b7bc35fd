/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _BTK_INTERNAL_H
#define _BTK_INTERNAL_H

#include <linux/types.h>
#include <net/sock.h>
#include <linux/baton.h>

/*
 * One TCP state record: the value of each BATON_GENL_A_STATE_* attribute,
 * and a bit for each one present.
 */
struct btk_tcp_state {
	u32 present;
	u32 val[BATON_GENL_A_MAX + 1];
};

static inline bool btk_tcp_has(const struct btk_tcp_state *st, int attr)
{
	return st->present & BIT(attr);
}

static inline void btk_tcp_set(struct btk_tcp_state *st, int attr, u32 v)
{
	st->present |= BIT(attr);
	st->val[attr] = v;
}

int btk_tcp_export(struct sock *sk, struct btk_tcp_state *st,
		   struct netlink_ext_ack *extack);
int btk_tcp_import(struct sock *sk, const struct btk_tcp_state *st,
		   struct netlink_ext_ack *extack);

int btk_genl_register(void);
void btk_genl_unregister(void);

#endif
