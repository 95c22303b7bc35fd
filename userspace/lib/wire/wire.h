/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The wire and records: control messages and the descriptors that travel
 * with them (msg.c), SOCKETS batches (sockets.c), and blobs of records in
 * sealed memfds (records.c).
 */
#ifndef BATON_LIB_WIRE_H
#define BATON_LIB_WIRE_H

#include "internal.h"

/*
 * The largest payload one attribute carries, keeping 4-byte alignment:
 * longer bytes go in several attributes of the same type, in order.
 */
#define ATTR_CHUNK	(0xfffcU - NLA_HDRLEN)

/* msg.c: one control message, with the descriptors that travel with it */
struct baton_msg {
	struct nlmsghdr *nlh;
	unsigned int nfds;
	int fds[BATON_MAX_FDS_PER_MSG];
	char buf[BATON_MSG_MAX] __attribute__((aligned(8)));
};

struct baton_msg *msg_alloc(void);
void msg_free(struct baton_msg *m);
void msg_init(struct baton_msg *m, __u16 type);
int msg_put_u32(struct baton_msg *m, __u16 type, __u32 v);
int msg_put_u64(struct baton_msg *m, __u16 type, __u64 v);
int msg_put_str(struct baton_msg *m, __u16 type, const char *s);
int msg_put(struct baton_msg *m, __u16 type, size_t len, const void *data);
struct nlattr *msg_nest_start(struct baton_msg *m, __u16 type);
void msg_nest_end(struct baton_msg *m, struct nlattr *nest);
int msg_add_fd(struct baton_msg *m, int fd);
int msg_send(int sock, const struct baton_msg *m);
int msg_recv(int sock, struct baton_msg *m, int timeout_ms);
void msg_close_fds(struct baton_msg *m);
int msg_parse(const struct baton_msg *m, const struct nlattr **tb);
/* calls cb on each attribute; -EINVAL unless they fill len exactly */
int attrs_walk(const void *payload, size_t len, mnl_attr_cb_t cb, void *data);
int attr_check(const struct nlattr *attr, enum mnl_attr_data_type type);
int msg_send_error(int sock, struct baton_msg *m, int err,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
int msg_error_text(const struct nlattr **tb, char *buf, size_t len);
__u32 attr_u32(const struct nlattr **tb, int type, __u32 def);
__u64 attr_u64(const struct nlattr **tb, int type, __u64 def);
const char *attr_str(const struct nlattr **tb, int type, const char *def);
const char *msg_type_name(__u16 type);

/* sockets.c: SOCKETS batches */
struct held_socket {
	int fd;
	struct baton_sockinfo si;
};

int sockets_put(struct baton_msg *m, const struct held_socket *s);
/* one number per socket: its kind and the application's id */
static inline __u64 sock_key(const struct baton_sockinfo *si)
{
	return (__u64)si->kind << 62 | (si->id & ((1ULL << 62) - 1));
}
int cmp_u64(const void *a, const void *b);
int sockets_parse(struct baton_msg *m, struct held_socket *out,
		  unsigned int *n);
int sockets_send(int sock, struct baton_msg *m, const struct held_socket *s,
		 unsigned int n);
void sockets_addresses(struct held_socket *s);

/* records.c: blobs of records in sealed memfds */
struct baton_rec_writer {
	char *buf;
	size_t len;
	size_t cap;
	size_t rec_off;		/* where the open record starts */
	bool in_rec;
	__u16 rec_type;		/* BATON_REC_STATE or BATON_REC_CONN */
	__u32 count;
	int err;
};

struct baton_rec {
	const struct nlmsghdr *nlh;
	__u64 id;
	__u32 version;
};

int writer_init(struct baton_rec_writer *w, enum baton_blob_kind kind,
		const char *service, __u32 state_version);
int writer_finish(struct baton_rec_writer *w, int *memfd);
void writer_free(struct baton_rec_writer *w);
typedef int (*rec_cb)(void *data, const struct baton_rec *rec);
int blob_read(int memfd, enum baton_blob_kind kind, rec_cb cb, void *data,
	      __u32 *count);
int blob_send(int sock, struct baton_msg *m, enum baton_blob_kind kind,
	      int memfd, __u32 records);

#endif /* BATON_LIB_WIRE_H */
