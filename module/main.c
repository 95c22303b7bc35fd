// SPDX-License-Identifier: GPL-2.0
/*
 * baton.ko: the TCP state TCP_REPAIR cannot carry, over generic netlink.
 * See include/uapi/linux/baton.h for the protocol.
 */
#include <linux/module.h>
#include <net/genetlink.h>
#include "internal.h"

static int __init btk_init(void)
{
	return btk_genl_register();
}

static void __exit btk_exit(void)
{
	btk_genl_unregister();
}

module_init(btk_init);
module_exit(btk_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("baton: export and import TCP congestion and RTT state");
MODULE_ALIAS_GENL_FAMILY(BATON_GENL_NAME);
