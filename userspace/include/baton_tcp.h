/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libbaton's TCP checkpoint: one TCP connection outside its descriptor.
 * TCP_REPAIR carries the sequence numbers, options, window and queues, and
 * baton.ko (module/) what TCP_REPAIR cannot, the congestion window and the
 * RTT estimator. Needs CAP_NET_ADMIN; baton.ko must be loaded (-ENOENT if
 * not). It stands apart from the handover (baton.h): it shares only the
 * log callback.
 *
 *	baton_tcp_open(&tcp, log, log_ctx);
 *	baton_tcp_checkpoint(tcp, fd, &rec, &len);
 *	    // fd is left in repair mode and says nothing to the peer:
 *	close(fd);
 *	    // ... rec crosses to another process, version or netns ...
 *	nfd = baton_tcp_restore(tcp, rec, len);	// connected, out of repair
 *	free(rec);
 *	baton_tcp_close(tcp);
 *
 * The congestion and RTT state alone, for a socket the caller restores:
 *	baton_tcp_export(tcp, fd, buf, sizeof(buf));	// any connected socket
 *	baton_tcp_import(tcp, fd, buf, len);	// in repair mode, connected
 *
 * Records are attribute streams (enum baton_tcp_attr; the kernel part is
 * enum baton_genl_attr of <linux/baton.h>). Attributes the reader
 * does not know are skipped: baton_tcp_import() returns how many.
 */
#ifndef BATON_TCP_H
#define BATON_TCP_H

#include <stddef.h>

#include "baton.h"

/* A TCP connection checkpoint (baton_tcp_checkpoint()) */
enum baton_tcp_attr {
	BATON_TCP_A_UNSPEC,
	BATON_TCP_A_FAMILY,	/* u32: AF_INET or AF_INET6 */
	BATON_TCP_A_LOCAL,	/* binary: struct sockaddr_in or _in6 */
	BATON_TCP_A_PEER,	/* binary: struct sockaddr_in or _in6 */
	BATON_TCP_A_SND_SEQ,	/* u32: sequence of the first byte in SENDQ */
	BATON_TCP_A_RCV_SEQ,	/* u32: sequence of the first byte in RECVQ */
	BATON_TCP_A_MSS,	/* u32 */
	BATON_TCP_A_OPTIONS,	/* u32: TCPI_OPT_* */
	BATON_TCP_A_SND_WSCALE,	/* u32 */
	BATON_TCP_A_RCV_WSCALE,	/* u32 */
	BATON_TCP_A_TIMESTAMP,	/* u32: TCP_TIMESTAMP */
	BATON_TCP_A_WINDOW,	/* binary: struct tcp_repair_window */
	BATON_TCP_A_SENDQ,	/* binary: sent, not yet acknowledged */
	BATON_TCP_A_UNSENT,	/* binary: written, not yet sent */
	BATON_TCP_A_RECVQ,	/* binary: received, not yet read */
	BATON_TCP_A_KERNEL,	/* nested: enum baton_genl_attr (baton.ko) */
	__BATON_TCP_A_MAX,
};
#define BATON_TCP_A_MAX (__BATON_TCP_A_MAX - 1)

struct baton_tcp;

BATON_API int baton_tcp_open(struct baton_tcp **tcp, baton_log_fn log,
			     void *log_ctx);
BATON_API int baton_tcp_export(struct baton_tcp *tcp, int fd, void *buf,
			       size_t len);
BATON_API int baton_tcp_import(struct baton_tcp *tcp, int fd, const void *rec,
			       size_t len);
BATON_API int baton_tcp_checkpoint(struct baton_tcp *tcp, int fd, void **rec,
				   size_t *len);
BATON_API int baton_tcp_restore(struct baton_tcp *tcp, const void *rec,
				size_t len);
BATON_API void baton_tcp_close(struct baton_tcp *tcp);

#endif /* BATON_TCP_H */
