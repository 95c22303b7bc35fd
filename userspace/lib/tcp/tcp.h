/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The TCP checkpoint's handle, shared by genl.c, checkpoint.c and restore.c. */
#ifndef BATON_LIB_TCP_H
#define BATON_LIB_TCP_H

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <sys/socket.h>

#include "baton_tcp.h"
#include "wire/wire.h"

struct baton_tcp {
	struct baton_log_sink log;
	struct mnl_socket *nl;
	__u32 portid;
	__u32 seq;
	__u16 family;		/* the "baton" family's id; 0: not loaded
				 * (tcp_open_any()) */
	__u32 maxattr;		/* the last attribute the module knows */
	__u32 version;		/* its family's version */
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
	bool peer_fin;			/* the peer closed its side */
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

/*
 * For the handover's repair mode (service/handover/), which works without
 * baton.ko too: a handle whose family is 0 if the module is not loaded,
 * on which checkpoint and restore use TCP_REPAIR alone.
 */
/*
 * nconns connections then *nports ports (flows in that order) frozen;
 * if the ports are refused, the connections alone, *nports set to 0 and
 * a warning logged. *id stays 0 if nothing was frozen.
 */
int tcp_freeze_with_ports(struct baton_tcp *tcp, const struct baton_flow *flows,
			  size_t nconns, size_t *nports,
			  unsigned int deadline_ms, __u32 *id);
int tcp_open_any(struct baton_tcp **tcp, const struct baton_log_sink *log);
/*
 * Another channel to the same module, for another thread: its own
 * socket, and no log (the thread must not call the caller's). -EXDEV if
 * the caller's thread is in another network namespace than tcp's now.
 */
int tcp_clone(const struct baton_tcp *tcp, struct baton_tcp **clone);
static inline bool tcp_has_module(const struct baton_tcp *tcp)
{
	return tcp->family != 0;
}

/*
 * Restores a checkpoint record into fd, a TCP socket of the record's
 * family that is new or disconnected (connect(AF_UNSPEC) in repair mode,
 * which keeps the descriptor and its epoll registrations). On failure fd
 * is left in repair mode and closed state: its close says nothing. With
 * hold, it stays in repair mode, silent, until tcp_restore_release()
 * (the window probe, the unsent bytes).
 */
int tcp_restore_into(struct baton_tcp *tcp, int fd, const void *rec,
		     size_t len, bool hold);
int tcp_restore_release(struct baton_tcp *tcp, int fd, const void *rec,
			size_t len);
/* fd, in repair mode, let go of its connection without a word: 0, -errno */
int tcp_disconnect(int fd);

/*
 * convert.c: one connection of a CONN_EXPORT record (its CONN nests)
 * as a checkpoint record, for tcp_restore_into()
 */
int tcp_conn_to_rec(struct baton_tcp *tcp, const void *conn, size_t len,
		    void **rec, size_t *rec_len);
/* bulk.c: the bytes of the connection at off in a CONN_EXPORT record */
size_t tcp_conn_span(const void *rec, size_t len, size_t off);
/* bulk.c: a CONN part's INDEX, which its connection's parts share, or -1 */
long long tcp_conn_index(const struct nlattr *conn);
/*
 * convert.c: whether a connection's parts are whole (each a CONN with the
 * first's INDEX), its scalars first, in one walk; and its addresses, from
 * that first part, each exactly its size: 0, or -EINVAL if a part or an
 * address is missing or malformed
 */
int tcp_conn_check(const void *conn, size_t len, struct sockaddr_storage *local,
		   socklen_t *local_len, struct sockaddr_storage *peer,
		   socklen_t *peer_len);
/*
 * convert.c: a BATON_REC_TCP record, by ckpt_parse(); one of baton.ko's
 * is also checked whole (tcp_conn_check()), and its addresses must be the
 * record's own, which the application is told: 0, ckpt_parse()'s errors,
 * -EINVAL if baton.ko's part is malformed, -EADDRNOTAVAIL if they differ.
 * Its parts' INDEX becomes the record's number in d, so that records side
 * by side there never read as one connection (tcp_conn_span()).
 */
int tcp_ckpt_parse(const struct baton_rec *rec, struct ckpt_rec *c,
		   struct ckpt_data *d);
/* convert.c: the bytes in each of a connection's queues, as its parts say */
void tcp_conn_queues(const void *conn, size_t len, __u32 *sendq,
		     __u32 *unsent, __u32 *recvq);

#endif /* BATON_LIB_TCP_H */
