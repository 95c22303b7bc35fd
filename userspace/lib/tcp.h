/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Shared by tcp_genl.c (baton.ko) and tcp_repair.c (TCP_REPAIR). */
#ifndef BATON_TCP_H
#define BATON_TCP_H

#include "internal.h"

struct baton_tcp {
	struct baton_log_sink log;
	struct mnl_socket *nl;
	__u32 portid;
	__u32 seq;
	__u16 family;		/* the "baton" family's id */
	__u32 maxattr;		/* the last attribute the module knows */
};

#endif
