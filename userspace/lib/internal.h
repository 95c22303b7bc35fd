/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Shared between libbaton's files; not installed. */
#ifndef BATON_INTERNAL_H
#define BATON_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <limits.h>
#include <time.h>

#include "baton.h"

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#endif

/* log.c */
struct baton_log_sink {
	baton_log_fn fn;
	void *ctx;
};

void baton_logf(const struct baton_log_sink *log, enum baton_log_level level,
		const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#define pr_err(l, ...)	 baton_logf(l, BATON_LOG_ERR, __VA_ARGS__)
#define pr_warn(l, ...)	 baton_logf(l, BATON_LOG_WARN, __VA_ARGS__)
#define pr_info(l, ...)	 baton_logf(l, BATON_LOG_INFO, __VA_ARGS__)
#define pr_debug(l, ...) baton_logf(l, BATON_LOG_DEBUG, __VA_ARGS__)

static inline __u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/*
 * The largest payload one attribute carries, keeping 4-byte alignment:
 * longer bytes go in several attributes of the same type, in order.
 */
#define ATTR_CHUNK	(0xfffcU - NLA_HDRLEN)

/* wire.c: one control message, with the descriptors that travel with it */
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

/* control.c: the well-known socket, peers, single-access resources */
struct baton_paths {
	char dir[PATH_MAX / 2];
	char sock[PATH_MAX];
	char lock[PATH_MAX];
	char pid[PATH_MAX];
};

int paths_init(struct baton_paths *p, const char *run_dir,
	       const char *service);
int mkdir_p(const char *dir, mode_t mode);
int ctl_listen(const char *path);
int ctl_connect(const char *path);
int ctl_peer_check(int sock, struct ucred *cred);
int ctl_set_timeout(int sock, int timeout_ms);
int lock_acquire(const char *path);
int pidfile_write(const char *path);
struct versions {
	__u32 proto, proto_min;		/* protocol spoken, oldest spoken */
	__u32 state, compat, min;	/* state written, oldest reader, oldest read */
};

void versions_of(const struct nlattr **tb, struct versions *v);
int versions_put(struct baton_msg *m, const struct versions *v);
int versions_check(const struct versions *writer, const struct versions *reader,
		   char *why, size_t len);

#endif /* BATON_INTERNAL_H */
