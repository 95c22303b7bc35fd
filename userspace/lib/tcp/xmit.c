// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * What a socket has transmitted, from the kernel's own struct tcp_info
 * (linux/tcp.h): the C library's copy stops before the byte counters.
 * Kept apart because the two headers cannot be included together.
 */
#include <errno.h>
#include <stddef.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <linux/tcp.h>

#include "tcp/xmit.h"

int tcp_xmit_marks(int fd, __u64 *sent, __u32 *unsent)
{
	struct tcp_info ti;
	socklen_t sl = sizeof(ti);

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &sl))
		return -errno;
	/* 4.19 and later: older kernels answer a shorter struct */
	if (sl < offsetof(struct tcp_info, tcpi_bytes_sent) +
		 sizeof(ti.tcpi_bytes_sent))
		return -EOPNOTSUPP;
	*sent = ti.tcpi_bytes_sent;
	*unsent = ti.tcpi_notsent_bytes;
	return 0;
}
