/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The TCP checkpoint's handle, shared by genl.c, checkpoint.c and restore.c. */
#ifndef BATON_LIB_TCP_H
#define BATON_LIB_TCP_H

#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>

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

/* recv queue data is written back in pieces the kernel can charge */
#define RCVQ_CHUNK	(64 * 1024)

static inline int sockopt_u32(int fd, int opt, int val)
{
	return setsockopt(fd, IPPROTO_TCP, opt, &val, sizeof(val)) ? -errno : 0;
}

static inline int sockaddr_size(int family)
{
	return family == AF_INET ? sizeof(struct sockaddr_in) :
				   sizeof(struct sockaddr_in6);
}

#endif /* BATON_LIB_TCP_H */
