/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Requests to baton.ko on the channel of tcp.h (struct baton_tcp), for
 * the freeze and the bulk state. tcp_genl.c has its own genl_call() for
 * the single-socket commands; the two are to become one.
 */
#ifndef BATON_TCP_KO_H
#define BATON_TCP_KO_H

#include <libmnl/libmnl.h>
#include "tcp/tcp.h"

/* What the kernel said with its error: its reason, the attribute it names */
struct ko_ack {
	char msg[256];
	__u32 off;		/* in the request; 0 if none */
};

/*
 * What one reply may take: a dump's messages come in skbs of up to 32 KiB,
 * and a CONN_IMPORT's one message must fit (bulk.c sizes its requests)
 */
#define KO_RECV_BUF	65536

/* A request of cmd in buf (len bytes, aligned), ready for attributes */
struct nlmsghdr *ko_msg(void *buf, struct baton_tcp *tcp, __u8 cmd);
/*
 * Sends req and runs cb on each reply (a dump's too): 0 or -errno. With
 * ack NULL the kernel's reason is logged; otherwise it goes to *ack and
 * the caller words it.
 */
int ko_call(struct baton_tcp *tcp, struct nlmsghdr *req, mnl_cb_t cb,
	    void *data, struct ko_ack *ack);

#endif
