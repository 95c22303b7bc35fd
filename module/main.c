// SPDX-License-Identifier: GPL-2.0
/*
 * baton.ko: the TCP state TCP_REPAIR cannot carry, over generic netlink.
 * See include/uapi/linux/baton.h for the protocol.
 */
#include <linux/module.h>
#include <net/genetlink.h>
#include "internal.h"

static int __init baton_init(void)
{
	return baton_genl_register();
}

static void __exit baton_exit(void)
{
	baton_genl_unregister();
}

module_init(baton_init);
module_exit(baton_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("baton: export and import TCP congestion and RTT state");
MODULE_ALIAS_GENL_FAMILY(BATON_GENL_NAME);
