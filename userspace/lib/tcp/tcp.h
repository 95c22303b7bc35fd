/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The TCP checkpoint's handle, shared by genl.c (baton.ko) and repair.c. */
#ifndef BATON_LIB_TCP_H
#define BATON_LIB_TCP_H

#include "baton_tcp.h"
#include "wire/wire.h"

struct baton_tcp {
	struct baton_log_sink log;
	struct mnl_socket *nl;
	__u32 portid;
	__u32 seq;
	__u16 family;		/* the "baton" family's id */
	__u32 maxattr;		/* the last attribute the module knows */
};

#endif /* BATON_LIB_TCP_H */
