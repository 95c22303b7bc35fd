/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The wire and records: control messages and the descriptors that travel
 * with them (msg.c), their attributes (attrs.c), the messages several
 * places send or read (messages.c), SOCKETS batches (sockets.c), and blobs
 * of records in sealed memfds (records.c).
 */
#ifndef BATON_LIB_WIRE_H
#define BATON_LIB_WIRE_H

#include <poll.h>

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

/*
 * How long a party to the blackout polls for the next message without
 * sleeping (msg_poll()): longer than a hop's wakeup, far shorter than the
 * scheduler's slice, which a process that keeps polling would hold
 * against the very process it waits for.
 */
#define MSG_SPIN_NS	(300 * 1000ULL)
/* poll() for timeout_ms in all, however many signals interrupt it */
int msg_poll(struct pollfd *p, nfds_t n, __u64 spin_until, int timeout_ms);

/* attrs.c: enum baton_attr's one table of types, and the checks */
int msg_parse(const struct baton_msg *m, const struct nlattr **tb);
int msg_read(int sock, struct baton_msg *m, int timeout_ms,
	     const struct nlattr **tb);
int attrs_parse(const void *payload, size_t len, const struct nlattr **tb);
/* calls cb on each attribute; -EINVAL unless they fill len exactly */
int attrs_walk(const void *payload, size_t len, mnl_attr_cb_t cb, void *data);
int attr_check(const struct nlattr *attr, enum mnl_attr_data_type type);
enum mnl_attr_data_type attr_type(__u16 type);
bool attr_repeated(__u16 type);
__u32 attr_u32(const struct nlattr **tb, int type, __u32 def);
__u64 attr_u64(const struct nlattr **tb, int type, __u64 def);
const char *attr_str(const struct nlattr **tb, int type, const char *def);
const char *msg_type_name(__u16 type);

/* messages.c: the messages several places send or read */
struct versions {
	__u32 proto, proto_min;		/* protocol spoken, oldest spoken */
	__u32 state, compat, min;	/* state written, oldest reader, oldest read */
};

void versions_of(const struct nlattr **tb, struct versions *v);
int versions_put(struct baton_msg *m, const struct versions *v);
int versions_check(const struct versions *writer, const struct versions *reader,
		   char *why, size_t len);

struct hello {
	__u32 role;		/* enum baton_role */
	__u32 pid;		/* 0: not said */
	const char *app;	/* NULL: not said */
	__u32 timeout_ms;	/* a coordinator's step; 0: not said */
	__u32 takes;		/* a new instance's BATON_TAKES_*; 0: none */
	struct versions ver;	/* the protocol alone, unless ver.state */
};

int hello_put(struct baton_msg *m, const struct hello *h);
int hello_get(const struct baton_msg *m, const struct nlattr **tb,
	      struct hello *h);

struct welcome {
	__u32 pid;
	const char *service;
	const char *app;
	__u64 time_ns;		/* 0: not said (INFO) */
	struct versions ver;
};

int welcome_put(struct baton_msg *m, __u16 type, const struct welcome *w);
void welcome_get(const struct nlattr **tb, struct welcome *w);

struct reply {
	const struct nlattr *tb[BATON_A_MAX + 1];
	enum { REPLY_NONE, REPLY_WANTED, REPLY_ERROR, REPLY_OTHER } how;
	char text[256];		/* an ERROR's text, or the other's name */
};

int msg_reply(int sock, struct baton_msg *m, int timeout_ms, __u16 want,
	      struct reply *r);
int msg_send_simple(int sock, struct baton_msg *m, __u16 type, __u32 flags);
int msg_send_error(int sock, struct baton_msg *m, int err,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
int msg_error_text(const struct nlattr **tb, char *buf, size_t len);

/* messages.c: the blackout's steps, as one instance times them */
struct steps {
	unsigned int n;
	__u64 last_ns;
	struct baton_step s[BATON_MAX_STEPS];
};

void steps_begin(struct steps *st);
void steps_mark(struct steps *st, const char *name);
int steps_put(struct baton_msg *m, const struct steps *st);
/* a received message's STEPs, appended to out[*n], up to BATON_MAX_STEPS */
void steps_get(const struct baton_msg *m, const char *who,
	       struct baton_step *out, unsigned int *n);

/* messages.c: phase 1's rounds of state, as the old instance sent them */
struct rounds {
	unsigned int n;
	__u32 end;		/* enum baton_precopy_end; 0 while they go on */
	struct baton_round r[BATON_MAX_ROUNDS];
};

int rounds_put(struct baton_msg *m, const struct rounds *rs);
/* a received message's ROUNDs and PRECOPY_END; a malformed round is left out */
void rounds_get(const struct baton_msg *m, const struct nlattr **tb,
		struct rounds *rs);

/* sockets.c: SOCKETS batches */
struct held_socket {
	int fd;
	struct baton_sockinfo si;
};

int sockets_put(struct baton_msg *m, const struct held_socket *s);
/* A socket as both instances know it: its kind and the application's id */
struct sock_key {
	__u64 id;
	__u32 kind;
};

static inline struct sock_key sock_key(const struct baton_sockinfo *si)
{
	return (struct sock_key){ .id = si->id, .kind = si->kind };
}
/*
 * A set of sock_keys, open-addressed: a lookup costs the same at ten
 * sockets or ten thousand. Zeroed, it is empty.
 */
struct sock_set {
	struct sock_key *slot;	/* kind 0 (no socket's): a free slot */
	unsigned int n, cap;	/* cap: 0 or a power of two */
};

bool sock_set_has(const struct sock_set *s, struct sock_key k);
/* 1 if k was added, 0 if it was there already, or -errno */
int sock_set_add(struct sock_set *s, struct sock_key k);
void sock_set_free(struct sock_set *s);
int sockets_parse(struct baton_msg *m, struct held_socket *out,
		  unsigned int *n);
int sockets_send(int sock, struct baton_msg *m, const struct held_socket *s,
		 unsigned int n);
void sockets_addresses(struct held_socket *s);
/*
 * A listener at local, made in the caller's network namespace: freebind
 * for an address that need not be there yet; v6only for IPv6. Into *out.
 */
int sockets_listen_at(const struct sockaddr_storage *local, socklen_t len,
		      bool nonblock, bool freebind, int v6only, int *out);

/* records.c: blobs of records in sealed memfds */
struct baton_rec_writer {
	char *buf;
	size_t len;
	size_t cap;
	size_t rec_off;		/* where the open record starts */
	bool in_rec;
	__u16 rec_type;		/* BATON_REC_STATE, _CONN or _TCP */
	__u32 count;
	int err;
};

struct baton_rec {
	const struct nlmsghdr *nlh;
	__u64 id;
	__u32 version;
};

/* a record's header: struct nlmsghdr, then its __u64 id */
#define REC_HDRLEN	(NLMSG_HDRLEN + sizeof(__u64))

int writer_init(struct baton_rec_writer *w, enum baton_blob_kind kind,
		const char *service, __u32 state_version);
/*
 * A record of any type, in a writer zeroed rather than initialised: the
 * frames of a checkpoint file (coordinator/ckpt_file.c)
 */
int writer_open_rec(struct baton_rec_writer *w, __u16 type, __u64 id);
int writer_close_rec(struct baton_rec_writer *w);
/* a whole record in the left bytes; its attributes whole; as enum baton_attr */
bool rec_ok(const struct nlmsghdr *nlh, int left);
int rec_attrs_ok(const struct nlmsghdr *nlh);
int frame_parse(const struct nlmsghdr *nlh, const struct nlattr **tb);
int writer_finish(struct baton_rec_writer *w, int *memfd);
/* len bytes of buf in a new memfd, sealed as a blob's */
int memfd_sealed(const void *buf, size_t len, int *memfd);
void writer_free(struct baton_rec_writer *w);
typedef int (*rec_cb)(void *data, const struct baton_rec *rec);
int blob_read(int memfd, enum baton_blob_kind kind, rec_cb cb, void *data,
	      __u32 *count);
int blob_send(int sock, struct baton_msg *m, enum baton_blob_kind kind,
	      int memfd, __u32 records);

/*
 * ckpt.c: BATON_REC_TCP records, one connection's TCP checkpoint each, in a
 * blob of kind BATON_BLOB_TCP (repair mode)
 */
struct ckpt_rec {
	__u64 id;			/* the application's connection id */
	__u32 format;			/* enum baton_ckpt_format */
	__u32 file_flags;		/* O_NONBLOCK, or 0 */
	struct sockaddr_storage local, peer;
	socklen_t local_len, peer_len;
	size_t off, len;		/* the checkpoint, in the data buffer */
};

/* where ckpt_parse() gathers the checkpoints' bytes, one after another */
struct ckpt_data {
	char *buf;
	size_t len, cap;
	unsigned int records;	/* whose bytes ckpt_parse() appended */
};

int ckpt_put(struct baton_rec_writer *w, const struct ckpt_rec *c,
	     const void *data);
/* checks a record whole; its bytes are appended to d (c->off, c->len) */
int ckpt_parse(const struct baton_rec *rec, struct ckpt_rec *c,
	       struct ckpt_data *d);
void ckpt_data_free(struct ckpt_data *d);

#endif /* BATON_LIB_WIRE_H */
