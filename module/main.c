// SPDX-License-Identifier: GPL-2.0
/*
 * baton.ko: the TCP state TCP_REPAIR cannot carry, and the freeze of
 * connections while they move, over generic netlink.
 * See include/uapi/linux/baton.h for the protocol.
 */
#include <linux/module.h>
#include <net/genetlink.h>
#include "internal.h"

static int __init btk_init(void)
{
	int err;

	err = btk_freeze_init();
	if (err)
		return err;
	err = btk_genl_register();
	if (err)
		btk_freeze_exit();
	return err;
}

/* No request runs once the family is gone; then what is frozen thaws */
static void __exit btk_exit(void)
{
	btk_genl_unregister();
	btk_freeze_exit();
}

module_init(btk_init);
module_exit(btk_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("baton: freeze TCP connections, export and import their state");
MODULE_ALIAS_GENL_FAMILY(BATON_GENL_NAME);
