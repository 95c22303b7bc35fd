/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The TCP checkpoint's handle, shared by genl.c, checkpoint.c and restore.c. */
#ifndef BATON_LIB_TCP_H
#define BATON_LIB_TCP_H

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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

/* baton.ko's state of one connection, as much as a record carries */
#define KERNEL_REC_MAX	512

/* What a checkpoint record (checkpoint.c) says of one connection */
struct tcp_ckpt {
	int family;
	struct sockaddr_storage local, peer;
	__u32 snd_seq, rcv_seq;		/* of the first byte still queued */
	__u32 mss, options, snd_wscale, rcv_wscale;
	__u32 timestamp;		/* if options has TCPI_OPT_TIMESTAMPS */
	struct tcp_repair_window win;
	const char *sendq;		/* sent bytes, then unsent ones */
	const char *recvq;
	size_t sent, unsent, inq;
	const void *kernel;		/* baton.ko's attributes */
	size_t klen;			/* KERNEL_REC_MAX at most */
};

int tcp_rec_build(const struct tcp_ckpt *c, void **rec, size_t *len);

/*
 * A checkpoint record (checkpoint.c) as restore.c reads it: tcp_rec_parse()
 * checks it whole and points tb at each attribute it knows, the last of
 * each type; 0 or -errno, the cause logged to r->tcp's sink.
 */
struct tcp_rec {
	struct baton_tcp *tcp;
	const void *rec;
	size_t len;
	const struct nlattr *tb[BATON_TCP_A_MAX + 1];
	__u32 bytes[BATON_TCP_A_MAX + 1];	/* queues: summed over chunks */
	int err;
};

int tcp_rec_parse(struct tcp_rec *r, const void *rec, size_t len);

/*
 * The TCP_IMPORT request for fd from a record's KERNEL attributes, in
 * buf (TCP_GENL_BUF bytes, aligned): the number of attributes skipped as
 * newer than the module, or -errno.
 */
#define TCP_GENL_BUF	8192
int tcp_import_build(struct baton_tcp *tcp, void *buf, int fd,
		     const void *rec, size_t len);

#endif /* BATON_LIB_TCP_H */
