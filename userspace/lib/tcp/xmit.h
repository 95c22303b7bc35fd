/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef BATON_TCP_XMIT_H
#define BATON_TCP_XMIT_H

#include <linux/types.h>

/*
 * Data bytes fd has transmitted, retransmissions included (they only
 * grow), and the bytes it holds unsent; one moment. 0 or -errno
 * (-EOPNOTSUPP before 4.19).
 */
int tcp_xmit_marks(int fd, __u64 *sent, __u32 *unsent);

#endif
