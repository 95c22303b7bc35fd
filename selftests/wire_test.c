// SPDX-License-Identifier: GPL-2.0-only
/*
 * The intermediate form, through the library's own reader and writer:
 *  1. records of every attribute kind round-trip through a sealed memfd,
 *     bytes longer than one attribute included;
 *  2. a truncated blob, a wrong record count, trailing bytes, a record
 *     whose attribute overruns it, a record that says it is 2 GiB or
 *     more, a foreign file, a blob of another kind and an unsealed memfd
 *     are each rejected before any record is read;
 *  3. control messages: unknown attributes are skipped, known ones with a
 *     wrong length rejected, an attribute that overruns the message
 *     rejected;
 *  4. over a real SOCK_SEQPACKET pair: an oversized message, a length that
 *     disagrees with the packet, descriptors that disagree with the
 *     SOCKETS entries, and the peer's going away;
 *  5. sockets are told apart by their kind and every bit of their id, in
 *     a set of them that grows past its first room; kind 0 is refused;
 *  6. repair mode's TCP records (ckpt.c): a record round-trips, its data
 *     longer than one attribute; an unknown attribute is skipped; an
 *     unknown flag, an unknown file flag, an unknown format, an address
 *     of the wrong size or family, and a record without its data are
 *     each rejected;
 *  7. a connection's end (BATON_REC_CONN_CLOSED) is read in a CONNS blob,
 *     and refused in a writer of another kind, in a STATE blob, and with
 *     attributes;
 *  8. a checkpoint file's FLAGS: RESTART round-trips, a flag unknown is
 *     refused; in another boot, a file made for a restart is accepted
 *     (freeze, netns and deadline not asked) unless baton.ko's family is
 *     not the one that exported its connections, and one not made for a
 *     restart is refused;
 *  9. a checkpoint file's connection carries its addresses twice, in its
 *     record and in baton.ko's: the same, IPv4 or IPv6, it loads; a peer
 *     port, a local address, an IPv6 flow label or a family that differs,
 *     and it is refused naming the connection;
 * 10. baton.ko's parts of a connection: one with another INDEX, one with
 *     none, one of another kind are refused; two records with the same
 *     INDEX are read as two connections, renumbered; a later part that
 *     says another queue length than the first is refused; a second
 *     blob of TCP checkpoints is refused, as are a listener without an
 *     id and an id twice.
 * 11. a successor that opens twice takes the coordinator's socket once:
 *     the second open leaves its number, reused since, alone.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include <linux/baton.h>
#include "wire/wire.h"
#include "coordinator/coordinator.h"
#include "tcp/tcp.h"

#define LONG_LEN (200 * 1024)

struct seen {
	unsigned int n;
	__u64 ids[8];
	__u32 version;
	__u32 u32;
	__u64 u64;
	char str[32];
	char *bytes;
	size_t nbytes;
};

static int seen_attr_cb(const struct nlattr *attr, void *data)
{
	struct seen *s = data;

	switch (mnl_attr_get_type(attr)) {
	case 1:
		s->u32 = mnl_attr_get_u32(attr);
		break;
	case 2:
		s->u64 = mnl_attr_get_u64(attr);
		break;
	case 3:
		snprintf(s->str, sizeof(s->str), "%s", mnl_attr_get_str(attr));
		break;
	case 4:
		s->bytes = realloc(s->bytes, s->nbytes + mnl_attr_get_payload_len(attr));
		memcpy(s->bytes + s->nbytes, mnl_attr_get_payload(attr),
		       mnl_attr_get_payload_len(attr));
		s->nbytes += mnl_attr_get_payload_len(attr);
		break;
	}
	return MNL_CB_OK;
}

static int seen_rec(void *data, const struct baton_rec *rec)
{
	struct seen *s = data;

	s->ids[s->n++ % 8] = baton_rec_id(rec);
	s->version = baton_rec_version(rec);
	return baton_rec_parse(rec, seen_attr_cb, s);
}

FIXTURE(blob) {
	int memfd;
	char *copy;
	size_t len;
	char *longbuf;
};

FIXTURE_SETUP(blob)
{
	struct baton_rec_writer w;
	size_t i;

	self->longbuf = malloc(LONG_LEN);
	ASSERT_NE(NULL, self->longbuf);
	for (i = 0; i < LONG_LEN; i++)
		self->longbuf[i] = i * 31 + (i >> 9);
	ASSERT_EQ(0, writer_init(&w, BATON_BLOB_CONNS, "svc", 3));
	ASSERT_EQ(0, baton_rec_begin(&w, 7));
	ASSERT_EQ(0, baton_rec_put_u32(&w, 1, 0xabcd));
	ASSERT_EQ(0, baton_rec_put_u64(&w, 2, 1ULL << 40));
	ASSERT_EQ(0, baton_rec_put_str(&w, 3, "alice"));
	ASSERT_EQ(0, baton_rec_put_u32(&w, 0x3000, 9));	/* unknown to readers */
	ASSERT_EQ(0, baton_rec_put_bytes(&w, 4, self->longbuf, LONG_LEN));
	ASSERT_EQ(0, baton_rec_end(&w));
	ASSERT_EQ(0, baton_rec_begin(&w, 8));
	ASSERT_EQ(0, baton_rec_end(&w));
	/* misuse is refused, not written */
	EXPECT_EQ(-EINVAL, baton_rec_put_u32(&w, 1, 1));
	w.err = 0;
	ASSERT_EQ(0, writer_finish(&w, &self->memfd));
	self->len = w.len;
	self->copy = malloc(self->len + 16);
	ASSERT_NE(NULL, self->copy);
	ASSERT_EQ((ssize_t)self->len, pread(self->memfd, self->copy, self->len, 0));
	writer_free(&w);
}

FIXTURE_TEARDOWN(blob)
{
	close(self->memfd);
	free(self->copy);
	free(self->longbuf);
}

/* A sealed memfd holding len bytes of buf; unsealed if !seal. */
static int memfd_of(const void *buf, size_t len, bool seal)
{
	int fd = memfd_create("test", MFD_ALLOW_SEALING);

	if (fd < 0 || write(fd, buf, len) != (ssize_t)len)
		return -1;
	if (seal && fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK |
			  F_SEAL_GROW | F_SEAL_WRITE) < 0)
		return -1;
	return fd;
}

static int read_copy(const void *buf, size_t len, bool seal,
		     enum baton_blob_kind kind, struct seen *s)
{
	int fd = memfd_of(buf, len, seal), err;

	if (fd < 0)
		return -errno;
	err = blob_read(fd, kind, seen_rec, s, NULL);
	close(fd);
	return err;
}

TEST_F(blob, round_trip)
{
	struct seen s = {};
	__u32 count = 0;

	ASSERT_EQ(0, blob_read(self->memfd, BATON_BLOB_CONNS, seen_rec, &s, &count));
	EXPECT_EQ(2, count);
	EXPECT_EQ(2, s.n);
	EXPECT_EQ(7, s.ids[0]);
	EXPECT_EQ(8, s.ids[1]);
	EXPECT_EQ(3, s.version);
	EXPECT_EQ(0xabcd, s.u32);
	EXPECT_EQ(1ULL << 40, s.u64);
	EXPECT_STREQ("alice", s.str);
	ASSERT_EQ(LONG_LEN, s.nbytes);
	EXPECT_EQ(0, memcmp(s.bytes, self->longbuf, LONG_LEN));
	free(s.bytes);
}

TEST_F(blob, truncated_rejected)
{
	struct seen s = {};
	size_t cut;

	/* every cut short of the whole, at a few sizes */
	for (cut = 1; cut < self->len; cut = cut * 3 + 1) {
		EXPECT_EQ(-EBADMSG, read_copy(self->copy, self->len - cut, true,
					      BATON_BLOB_CONNS, &s));
	}
	EXPECT_EQ(0, s.n);
}

TEST_F(blob, count_mismatch_rejected)
{
	struct seen s = {};
	/* END's RECORDS attribute is the blob's last 4 bytes */
	__u32 *count = (__u32 *)(self->copy + self->len - 4);

	ASSERT_EQ(2, *count);
	*count = 3;
	EXPECT_EQ(-EBADMSG, read_copy(self->copy, self->len, true,
				      BATON_BLOB_CONNS, &s));
	EXPECT_EQ(0, s.n);
}

TEST_F(blob, trailing_bytes_rejected)
{
	struct seen s = {};

	memset(self->copy + self->len, 0, 16);
	EXPECT_EQ(-EBADMSG, read_copy(self->copy, self->len + 16, true,
				      BATON_BLOB_CONNS, &s));
	EXPECT_EQ(0, s.n);
}

TEST_F(blob, overrunning_attribute_rejected)
{
	struct nlmsghdr *begin = (struct nlmsghdr *)self->copy;
	struct nlmsghdr *rec = (struct nlmsghdr *)(self->copy +
						   MNL_ALIGN(begin->nlmsg_len));
	struct nlattr *first = (struct nlattr *)((char *)rec + NLMSG_HDRLEN + 8);
	struct seen s = {};

	first->nla_len = rec->nlmsg_len;	/* past the record's end */
	EXPECT_EQ(-EBADMSG, read_copy(self->copy, self->len, true,
				      BATON_BLOB_CONNS, &s));
	EXPECT_EQ(0, s.n);
}

/* a length with its top bit set is not a whole record (fuzz/regress/records) */
TEST_F(blob, huge_record_length_rejected)
{
	struct nlmsghdr *begin = (struct nlmsghdr *)self->copy;
	struct nlmsghdr *rec = (struct nlmsghdr *)(self->copy +
						   MNL_ALIGN(begin->nlmsg_len));
	static const __u32 lens[] = { 0x80000000, 0xfffffff0, 0xffffffff };
	__u32 begin_len = begin->nlmsg_len;
	struct seen s = {};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(lens); i++) {
		rec->nlmsg_len = lens[i];
		EXPECT_EQ(-EBADMSG, read_copy(self->copy, self->len, true,
					      BATON_BLOB_CONNS, &s));
		begin->nlmsg_len = lens[i];
		EXPECT_EQ(-EBADMSG, read_copy(self->copy, self->len, true,
					      BATON_BLOB_CONNS, &s));
		begin->nlmsg_len = begin_len;
	}
	EXPECT_EQ(0, s.n);
}

TEST_F(blob, other_kind_rejected)
{
	struct seen s = {};

	EXPECT_EQ(-EBADMSG, blob_read(self->memfd, BATON_BLOB_STATE, seen_rec,
				      &s, NULL));
	EXPECT_EQ(0, s.n);
}

TEST_F(blob, unsealed_rejected)
{
	struct seen s = {};

	EXPECT_EQ(-EPERM, read_copy(self->copy, self->len, false,
				    BATON_BLOB_CONNS, &s));
	EXPECT_EQ(0, s.n);
}

TEST_F(blob, foreign_file_rejected)
{
	struct seen s = {};
	char junk[4096];
	size_t i;

	for (i = 0; i < sizeof(junk); i++)
		junk[i] = (i * 2654435761u) >> 13;
	EXPECT_EQ(-EBADMSG, read_copy(junk, sizeof(junk), true,
				      BATON_BLOB_CONNS, &s));
	EXPECT_EQ(-EBADMSG, read_copy(junk, 3, true, BATON_BLOB_CONNS, &s));
	EXPECT_EQ(0, s.n);
}

static int closed_rec(void *data, const struct baton_rec *rec)
{
	struct seen *s = data;

	if (rec->nlh->nlmsg_type == BATON_REC_CONN_CLOSED)
		s->u64 = baton_rec_id(rec);
	return seen_rec(data, rec);
}

TEST(conn_closed_records)
{
	struct baton_rec_writer w;
	struct seen s = {};
	char *copy;
	__u32 count;
	int memfd;

	/* not in a blob of service state */
	ASSERT_EQ(0, writer_init(&w, BATON_BLOB_STATE, "svc", 1));
	EXPECT_EQ(-EINVAL, baton_rec_closed(&w, 5));
	writer_free(&w);

	ASSERT_EQ(0, writer_init(&w, BATON_BLOB_CONNS, "svc", 1));
	ASSERT_EQ(0, baton_rec_begin(&w, 4));
	ASSERT_EQ(0, baton_rec_put_u32(&w, 1, 77));
	ASSERT_EQ(0, baton_rec_end(&w));
	ASSERT_EQ(0, baton_rec_closed(&w, 5));
	ASSERT_EQ(0, writer_finish(&w, &memfd));
	ASSERT_EQ(0, blob_read(memfd, BATON_BLOB_CONNS, closed_rec, &s, &count));
	EXPECT_EQ(2, count);
	EXPECT_EQ(4, s.ids[0]);
	EXPECT_EQ(5, s.ids[1]);
	EXPECT_EQ(5, s.u64);	/* the second one is the end */
	EXPECT_EQ(77, s.u32);
	close(memfd);

	/* the same bytes as another kind, or with an attribute on the end */
	copy = malloc(w.len + 64);
	ASSERT_NE(NULL, copy);
	memcpy(copy, w.buf, w.len);
	memset(&s, 0, sizeof(s));
	EXPECT_EQ(-EBADMSG, read_copy(copy, w.len, true, BATON_BLOB_STATE, &s));
	EXPECT_EQ(0, s.n);
	/* the CLOSED record is the one before END: give it an attribute */
	{
		const struct nlmsghdr *end = (const struct nlmsghdr *)w.buf;
		size_t off = 0, closed_off = 0, end_off = 0;
		struct nlattr *a;

		while (off < w.len) {
			end = (const struct nlmsghdr *)(w.buf + off);
			if (end->nlmsg_type == BATON_REC_CONN_CLOSED)
				closed_off = off;
			if (end->nlmsg_type == BATON_REC_END)
				end_off = off;
			off += NLMSG_ALIGN(end->nlmsg_len);
		}
		ASSERT_LT(0, closed_off);
		ASSERT_LT(closed_off, end_off);
		/* CLOSED, an 8-byte attribute, then END as it was */
		memcpy(copy + end_off + 8, w.buf + end_off, w.len - end_off);
		a = (struct nlattr *)(copy + end_off);
		a->nla_len = 8;
		a->nla_type = 1;
		memset(a + 1, 0, 4);
		((struct nlmsghdr *)(copy + closed_off))->nlmsg_len += 8;
		memset(&s, 0, sizeof(s));
		EXPECT_EQ(-EBADMSG, read_copy(copy, w.len + 8, true,
					      BATON_BLOB_CONNS, &s));
		EXPECT_EQ(0, s.n);
	}
	free(copy);
	writer_free(&w);
}

TEST(control_attributes)
{
	const struct nlattr *tb[BATON_A_MAX + 1];
	struct baton_msg *m = msg_alloc();
	__u16 two = 2;

	ASSERT_NE(NULL, m);
	/* unknown attributes are skipped */
	msg_init(m, BATON_MSG_HELLO);
	ASSERT_EQ(0, msg_put_u32(m, BATON_A_PID, 42));
	ASSERT_EQ(0, msg_put_u64(m, 0x3ff, 1));
	ASSERT_EQ(0, msg_put_str(m, BATON_A_APP, "x 9"));
	ASSERT_EQ(0, msg_parse(m, tb));
	EXPECT_EQ(42, attr_u32(tb, BATON_A_PID, 0));
	EXPECT_STREQ("x 9", attr_str(tb, BATON_A_APP, ""));

	/* a u32 of two bytes */
	msg_init(m, BATON_MSG_HELLO);
	ASSERT_EQ(0, msg_put(m, BATON_A_PID, sizeof(two), &two));
	EXPECT_EQ(-EINVAL, msg_parse(m, tb));

	/* a string without its NUL */
	msg_init(m, BATON_MSG_HELLO);
	ASSERT_EQ(0, msg_put(m, BATON_A_APP, 3, "abc"));
	EXPECT_EQ(-EINVAL, msg_parse(m, tb));

	/* an attribute that claims more than the message holds */
	msg_init(m, BATON_MSG_HELLO);
	ASSERT_EQ(0, msg_put_u32(m, BATON_A_PID, 1));
	((struct nlattr *)mnl_nlmsg_get_payload(m->nlh))->nla_len = 200;
	EXPECT_EQ(-EINVAL, msg_parse(m, tb));

	/* an attribute header cut short */
	msg_init(m, BATON_MSG_HELLO);
	m->nlh->nlmsg_len += 2;
	EXPECT_EQ(-EINVAL, msg_parse(m, tb));
	msg_free(m);
}

/* m from sp[0] (its descriptors gone with it) into in at sp[1] */
static int msg_across(const int *sp, struct baton_msg *m, struct baton_msg *in)
{
	int err = msg_send(sp[0], m);

	m->nfds = 0;
	return err ?: msg_recv(sp[1], in, 1000);
}

TEST(control_socket)
{
	struct held_socket socks[BATON_MAX_FDS_PER_MSG], one = {};
	struct baton_msg *m = msg_alloc(), *in = msg_alloc();
	char *big = calloc(1, BATON_MSG_MAX + 4096);
	unsigned int n = 0;
	int sp[2], p[2];

	ASSERT_NE(NULL, m);
	ASSERT_NE(NULL, in);
	ASSERT_NE(NULL, big);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp));
	ASSERT_EQ(0, pipe(p));

	/* larger than any message may be */
	ASSERT_EQ(BATON_MSG_MAX + 4096, send(sp[0], big, BATON_MSG_MAX + 4096, 0));
	EXPECT_EQ(-EMSGSIZE, msg_recv(sp[1], in, 1000));

	/* a header that disagrees with the packet */
	msg_init(m, BATON_MSG_READY);
	m->nlh->nlmsg_len += 8;
	ASSERT_EQ(NLMSG_HDRLEN, send(sp[0], m->buf, NLMSG_HDRLEN, 0));
	EXPECT_EQ(-EBADMSG, msg_recv(sp[1], in, 1000));

	/* one SOCKETS entry, and two descriptors: rejected, both closed */
	one.fd = p[0];
	one.si.id = 5;
	one.si.kind = BATON_SOCK_CONN;
	one.si.local_len = sizeof(sa_family_t);
	msg_init(m, BATON_MSG_SOCKETS);
	ASSERT_EQ(0, sockets_put(m, &one));
	ASSERT_EQ(0, msg_add_fd(m, p[1]));
	ASSERT_EQ(0, msg_across(sp, m, in));
	EXPECT_EQ(2, in->nfds);
	EXPECT_EQ(-EBADMSG, sockets_parse(in, socks, &n));
	EXPECT_EQ(0, in->nfds);

	/*
	 * an address that overruns its entry: refused, not read as no
	 * address (the walk stopped there, and getsockname() filled it in)
	 */
	msg_init(m, BATON_MSG_SOCKETS);
	ASSERT_EQ(0, sockets_put(m, &one));
	{
		struct nlattr *nest = mnl_nlmsg_get_payload(m->nlh), *a;
		struct nlattr *last = NULL;

		mnl_attr_for_each_nested(a, nest)
			last = a;
		ASSERT_EQ(BATON_SOCK_A_LOCAL, mnl_attr_get_type(last));
		last->nla_len = 200;
	}
	ASSERT_EQ(0, msg_across(sp, m, in));
	EXPECT_EQ(1, in->nfds);
	EXPECT_EQ(-EINVAL, sockets_parse(in, socks, &n));
	EXPECT_EQ(0, in->nfds);

	/* a descriptor with a message refused (a PID of 8 bytes): closed */
	msg_init(m, BATON_MSG_SYNC);
	ASSERT_EQ(0, msg_put_u64(m, BATON_A_PID, 7));
	ASSERT_EQ(0, msg_add_fd(m, p[1]));
	ASSERT_EQ(0, msg_send(sp[0], m));
	m->nfds = 0;
	{
		const struct nlattr *tb[BATON_A_MAX + 1];

		EXPECT_EQ(-EINVAL, msg_read(sp[1], in, 1000, tb));
	}
	EXPECT_EQ(0, in->nfds);

	/* the same with one descriptor is taken */
	msg_init(m, BATON_MSG_SOCKETS);
	ASSERT_EQ(0, sockets_put(m, &one));
	ASSERT_EQ(0, msg_across(sp, m, in));
	ASSERT_EQ(0, sockets_parse(in, socks, &n));
	EXPECT_EQ(1, n);
	EXPECT_EQ(5, socks[0].si.id);
	EXPECT_EQ(BATON_SOCK_CONN, socks[0].si.kind);
	close(socks[0].fd);

	/* nothing in time, then the peer goes */
	EXPECT_EQ(-ETIMEDOUT, msg_recv(sp[1], in, 10));
	close(sp[0]);
	EXPECT_EQ(-ECONNRESET, msg_recv(sp[1], in, 1000));
	close(sp[1]);
	close(p[0]);
	close(p[1]);
	free(big);
	msg_free(m);
	msg_free(in);
}

TEST(sock_keys)
{
	struct baton_sockinfo conn = { .id = 1, .kind = BATON_SOCK_CONN };
	struct baton_sockinfo high = { .id = 1 | 1ULL << 62,
				       .kind = BATON_SOCK_CONN };
	struct baton_sockinfo top = { .id = 1 | 1ULL << 63,
				      .kind = BATON_SOCK_CONN };
	struct baton_sockinfo lst = { .id = 1, .kind = BATON_SOCK_LISTENER };
	struct sock_key a = sock_key(&conn), b = sock_key(&high),
			c = sock_key(&top), d = sock_key(&lst),
			none = { .id = 7 };
	struct sock_set s = {};
	unsigned int i;

	/* keys that differ only in a high bit of the id, or in kind */
	EXPECT_FALSE(sock_set_has(&s, a));
	ASSERT_EQ(1, sock_set_add(&s, a));
	EXPECT_TRUE(sock_set_has(&s, a));
	EXPECT_FALSE(sock_set_has(&s, b));
	EXPECT_FALSE(sock_set_has(&s, c));
	EXPECT_FALSE(sock_set_has(&s, d));
	ASSERT_EQ(1, sock_set_add(&s, b));
	ASSERT_EQ(0, sock_set_add(&s, a));	/* again: still one */
	EXPECT_EQ(2, s.n);
	EXPECT_TRUE(sock_set_has(&s, b));
	EXPECT_FALSE(sock_set_has(&s, c));
	/* kind 0 is no socket's: refused, never found */
	EXPECT_EQ(-EINVAL, sock_set_add(&s, none));
	EXPECT_FALSE(sock_set_has(&s, none));
	/* grown past its first room, every key still there, none more */
	for (i = 0; i < 5000; i++) {
		struct sock_key k = { .id = (__u64)i << 40 | 2,
				      .kind = BATON_SOCK_CONN };

		ASSERT_EQ(1, sock_set_add(&s, k));
	}
	EXPECT_EQ(5002, s.n);
	for (i = 0; i < 5000; i++) {
		struct sock_key k = { .id = (__u64)i << 40 | 2,
				      .kind = BATON_SOCK_CONN }, l = k;

		l.kind = BATON_SOCK_LISTENER;
		EXPECT_TRUE(sock_set_has(&s, k));
		EXPECT_FALSE(sock_set_has(&s, l));
	}
	EXPECT_TRUE(sock_set_has(&s, a));
	EXPECT_TRUE(sock_set_has(&s, b));
	EXPECT_FALSE(sock_set_has(&s, c));
	sock_set_free(&s);
	EXPECT_EQ(0, s.n);
	EXPECT_FALSE(sock_set_has(&s, a));
}

/* One BATON_REC_TCP record as the writer makes it, then tampered with */
struct tcp_case {
	__u16 extra_type;	/* an attribute added, 0: none */
	__u32 extra;
	bool v6_local;		/* a local address of the other family */
	bool no_data;
};

struct ckpt_seen {
	struct ckpt_rec c;
	struct ckpt_data d;
	int err;
};

static int ckpt_seen_rec(void *data, const struct baton_rec *rec)
{
	struct ckpt_seen *s = data;

	s->err = ckpt_parse(rec, &s->c, &s->d);
	return 0;
}

static int tcp_record(const struct tcp_case *tc, const char *data,
		      size_t len, struct ckpt_seen *s)
{
	struct sockaddr_in6 l6 = { .sin6_family = AF_INET6, .sin6_port = htons(7) };
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(7),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct baton_rec_writer w;
	int memfd, err;

	err = writer_init(&w, BATON_BLOB_TCP, "svc", 1) ?:
	      baton_rec_begin(&w, 42) ?:
	      baton_rec_put_u32(&w, BATON_CKPT_A_FORMAT, BATON_CKPT_TCP);
	if (!err && tc->v6_local)
		err = baton_rec_put_bytes(&w, BATON_CKPT_A_LOCAL, &l6, sizeof(l6));
	else if (!err)
		err = baton_rec_put_bytes(&w, BATON_CKPT_A_LOCAL, &a, sizeof(a));
	err = err ?: baton_rec_put_bytes(&w, BATON_CKPT_A_PEER, &a, sizeof(a));
	if (!err && !tc->no_data)
		err = baton_rec_put_bytes(&w, BATON_CKPT_A_DATA, data, len);
	if (!err && tc->extra_type)
		err = baton_rec_put_u32(&w, tc->extra_type, tc->extra);
	err = err ?: baton_rec_end(&w) ?: writer_finish(&w, &memfd);
	writer_free(&w);
	if (err)
		return err;
	memset(s, 0, sizeof(*s));
	err = blob_read(memfd, BATON_BLOB_TCP, ckpt_seen_rec, s, NULL);
	close(memfd);
	return err ?: s->err;
}

TEST(tcp_records)
{
	static const struct {
		struct tcp_case tc;
		int want;
	} cases[] = {
		{ { 0 }, 0 },
		{ { .extra_type = BATON_CKPT_A_MAX + 3, .extra = 9 }, 0 },
		{ { .extra_type = BATON_CKPT_A_FLAGS, .extra = 0 }, 0 },
		{ { .extra_type = BATON_CKPT_A_FLAGS, .extra = 1 }, -EINVAL },
		{ { .extra_type = BATON_CKPT_A_FILE_FLAGS, .extra = O_NONBLOCK }, 0 },
		{ { .extra_type = BATON_CKPT_A_FILE_FLAGS, .extra = O_APPEND }, -EINVAL },
		{ { .extra_type = BATON_CKPT_A_FORMAT, .extra = 9 }, -EPROTONOSUPPORT },
		{ { .v6_local = true }, -EINVAL },
		{ { .no_data = true }, -EINVAL },
	};
	char *data = malloc(LONG_LEN);
	struct ckpt_seen s;
	unsigned int i;

	ASSERT_NE(NULL, data);
	for (i = 0; i < LONG_LEN; i++)
		data[i] = i * 13 + i / 977;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		EXPECT_EQ(cases[i].want, tcp_record(&cases[i].tc, data, LONG_LEN, &s))
			TH_LOG("case %u", i);
		if (!cases[i].want) {
			EXPECT_EQ(42, s.c.id);
			EXPECT_EQ(BATON_CKPT_TCP, s.c.format);
			EXPECT_EQ(LONG_LEN, s.c.len);
			EXPECT_EQ(sizeof(struct sockaddr_in), s.c.local_len);
			EXPECT_EQ(0, memcmp(s.d.buf + s.c.off, data, LONG_LEN));
		}
		ckpt_data_free(&s.d);
	}
	free(data);
}

/* An empty checkpoint of service kvd, as written and read back */
static int ckpt_file_round(const struct baton_checkpoint *ck,
			   struct baton_checkpoint *out, char *why, size_t len)
{
	char path[] = "/tmp/baton-wire-ckpt.XXXXXX";
	int fd = mkstemp(path), err;

	if (fd < 0)
		return -errno;
	err = file_write(fd, ck) ?: file_load(out, path, why, len);
	close(fd);
	unlink(path);
	return err;
}

TEST(checkpoint_restart)
{
	struct baton_checkpoint ck = {
		.info = { .service = "kvd", .app = "kvd 1", .pid = 7,
			  .boot_id = "a-boot-before-this-one", .netns = 1,
			  .deadline_ns = 1, .flags = BATON_CHECKPOINT_F_RESTART },
		.ver = { .proto = BATON_PROTO_VERSION, .state = 1 },
	};
	struct baton_checkpoint got = {};
	char why[512] = "";

	/* RESTART round-trips; made for a restart, it is good in this boot */
	ASSERT_EQ(0, ckpt_file_round(&ck, &got, why, sizeof(why))) TH_LOG("%s", why);
	EXPECT_EQ(BATON_CHECKPOINT_F_RESTART, got.info.flags);
	EXPECT_EQ(0, file_check_here(&got, NULL, why, sizeof(why))) TH_LOG("%s", why);
	EXPECT_TRUE(got.other_boot);
	file_free(&got);

	/* a flag this libbaton does not know */
	ck.info.flags = BATON_CHECKPOINT_F_ALL + 1;
	memset(&got, 0, sizeof(got));
	EXPECT_EQ(-EPROTONOSUPPORT, ckpt_file_round(&ck, &got, why, sizeof(why)));
	EXPECT_NE(NULL, strstr(why, "does not know")) TH_LOG("%s", why);
	file_free(&got);

	/* its connections exported by another family version than here's */
	ck.info.flags = BATON_CHECKPOINT_F_RESTART;
	ck.info.conns = 1;
	ck.info.genl_version = 7;
	got = ck;
	EXPECT_EQ(-EPROTONOSUPPORT, file_check_here(&got, NULL, why, sizeof(why)));
	EXPECT_NE(NULL, strstr(why, "version 7")) TH_LOG("%s", why);
	EXPECT_FALSE(got.other_boot);

	/* another boot's, not made for a restart: its connections are gone */
	ck.info.flags = 0;
	got = ck;
	EXPECT_EQ(-ESTALE, file_check_here(&got, NULL, why, sizeof(why)));
	EXPECT_NE(NULL, strstr(why, "not for a restart")) TH_LOG("%s", why);
}

/* A CONN part's INDEX, at off in buf (none if index < 0): the new off */
static size_t module_index(char *buf, size_t off, int index)
{
	struct nlattr *a = (struct nlattr *)(buf + off);
	__u32 v = index;

	if (index < 0)
		return off;
	a->nla_type = BATON_CONN_A_INDEX;
	a->nla_len = NLA_HDRLEN + sizeof(v);
	memcpy(buf + off + NLA_HDRLEN, &v, sizeof(v));
	return off + NLA_ALIGN(a->nla_len);
}

/*
 * One connection as baton.ko's CONN_EXPORT makes it, its INDEX and
 * addresses alone, into buf: its length
 */
static size_t module_conn(char *buf, const void *local, const void *peer,
			  size_t alen, int index)
{
	struct nlattr *part = (struct nlattr *)buf;
	const void *addr[] = { local, peer };
	__u16 type[] = { BATON_CONN_A_LOCAL, BATON_CONN_A_PEER };
	size_t off = module_index(buf, NLA_HDRLEN, index);
	int i;

	for (i = 0; i < 2; i++) {
		struct nlattr *a = (struct nlattr *)(buf + off);

		a->nla_type = type[i];
		a->nla_len = NLA_HDRLEN + alen;
		memcpy(buf + off + NLA_HDRLEN, addr[i], alen);
		off += NLA_ALIGN(a->nla_len);
	}
	part->nla_type = NLA_F_NESTED | BATON_GENL_A_CONN;
	part->nla_len = off;
	return off;
}

/* A part that goes on with a connection, its INDEX alone: its length */
static size_t module_part(char *buf, int index)
{
	struct nlattr *part = (struct nlattr *)buf;

	part->nla_type = NLA_F_NESTED | BATON_GENL_A_CONN;
	part->nla_len = module_index(buf, NLA_HDRLEN, index);
	return part->nla_len;
}

/*
 * A TCP blob of connection id, its record saying local and peer (alen
 * bytes each), baton.ko's conn (conn_len bytes), in *memfd
 */
static int ckpt_conn_memfd(__u64 id, const void *local, const void *peer,
			   size_t alen, const char *conn, size_t conn_len,
			   int *memfd)
{
	struct ckpt_rec r = { .id = id, .format = BATON_CKPT_MODULE,
			      .local_len = alen, .peer_len = alen,
			      .len = conn_len };
	struct baton_rec_writer w;
	int err;

	memcpy(&r.local, local, alen);
	memcpy(&r.peer, peer, alen);
	err = writer_init(&w, BATON_BLOB_TCP, "kvd", 1) ?:
	      ckpt_put(&w, &r, conn) ?: w.err ?: writer_finish(&w, memfd);
	writer_free(&w);
	return err;
}

/* The same, added to ck */
static int ckpt_conn_blob(struct baton_checkpoint *ck, __u64 id,
			  const void *local, const void *peer, size_t alen,
			  const char *conn, size_t conn_len)
{
	int memfd, err;

	err = ckpt_conn_memfd(id, local, peer, alen, conn, conn_len, &memfd);
	if (err)
		return err;
	err = file_blob_add(ck, BATON_BLOB_TCP, 1, memfd);
	if (err)
		close(memfd);
	return err;
}

#define CKPT_CONNS_INFO(n) {						\
	.service = "kvd", .app = "kvd 1", .pid = 7,			\
	.boot_id = "a-boot-before-this-one", .netns = 1,		\
	.deadline_ns = 1, .flags = BATON_CHECKPOINT_F_RESTART,		\
	.conns = (n), .ckpt_format = BATON_CKPT_MODULE }

/*
 * A file of connection 9: its record says local and peer (alen bytes
 * each), baton.ko's conn (conn_len bytes)
 */
static int ckpt_conn_file(const void *local, const void *peer, size_t alen,
			  const char *conn, size_t conn_len,
			  struct baton_checkpoint *got, char *why, size_t len)
{
	struct baton_checkpoint ck = {
		.info = CKPT_CONNS_INFO(1),
		.ver = { .proto = BATON_PROTO_VERSION, .state = 1 },
	};
	int err;

	memset(got, 0, sizeof(*got));
	err = ckpt_conn_blob(&ck, 9, local, peer, alen, conn, conn_len) ?:
	      ckpt_file_round(&ck, got, why, len);
	file_free(&ck);
	return err;
}

#define DIFFER	\
	"connection 9's addresses are not those of its TCP checkpoint"

TEST(checkpoint_addresses)
{
	struct sockaddr_in l4 = { .sin_family = AF_INET,
				  .sin_port = htons(6379),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in p4 = l4;
	struct sockaddr_in6 l6 = { .sin6_family = AF_INET6,
				   .sin6_port = htons(6379),
				   .sin6_addr = IN6ADDR_LOOPBACK_INIT,
				   .sin6_scope_id = 3 };
	struct sockaddr_in6 p6 = l6, f6;
	struct baton_checkpoint got;
	char conn[256], why[512] = "";
	size_t n;

	p4.sin_port = htons(40000);
	p6.sin6_port = htons(40000);

	/* the same addresses twice: it loads, and says them */
	n = module_conn(conn, &l4, &p4, sizeof(l4), 0);
	ASSERT_EQ(0, ckpt_conn_file(&l4, &p4, sizeof(l4), conn, n, &got,
				    why, sizeof(why))) TH_LOG("%s", why);
	ASSERT_EQ(1, got.nconns);
	EXPECT_EQ(9, got.conns[0].id);
	EXPECT_EQ(0, memcmp(&got.conns[0].local, &l4, sizeof(l4)));
	EXPECT_EQ(0, memcmp(&got.conns[0].peer, &p4, sizeof(p4)));
	file_free(&got);
	n = module_conn(conn, &l6, &p6, sizeof(l6), 0);
	ASSERT_EQ(0, ckpt_conn_file(&l6, &p6, sizeof(l6), conn, n, &got,
				    why, sizeof(why))) TH_LOG("%s", why);
	EXPECT_EQ(0, memcmp(&got.conns[0].peer, &p6, sizeof(p6)));
	file_free(&got);

	/* baton.ko's says another peer port than the record's */
	p4.sin_port = htons(40001);
	n = module_conn(conn, &l4, &p4, sizeof(l4), 0);
	p4.sin_port = htons(40000);
	EXPECT_EQ(-EBADMSG, ckpt_conn_file(&l4, &p4, sizeof(l4), conn, n,
					   &got, why, sizeof(why)));
	EXPECT_NE(NULL, strstr(why, DIFFER)) TH_LOG("%s", why);
	file_free(&got);

	/* the record's local address is another one */
	n = module_conn(conn, &l4, &p4, sizeof(l4), 0);
	l4.sin_addr.s_addr = htonl(INADDR_LOOPBACK + 1);
	EXPECT_EQ(-EBADMSG, ckpt_conn_file(&l4, &p4, sizeof(l4), conn, n,
					   &got, why, sizeof(why)));
	EXPECT_NE(NULL, strstr(why, DIFFER)) TH_LOG("%s", why);
	file_free(&got);

	/* IPv6: another flow label in baton.ko's peer */
	f6 = p6;
	f6.sin6_flowinfo = htonl(5);
	n = module_conn(conn, &l6, &f6, sizeof(l6), 0);
	EXPECT_EQ(-EBADMSG, ckpt_conn_file(&l6, &p6, sizeof(l6), conn, n,
					   &got, why, sizeof(why)));
	EXPECT_NE(NULL, strstr(why, DIFFER)) TH_LOG("%s", why);
	file_free(&got);

	/* the record's addresses IPv4, baton.ko's IPv6 */
	n = module_conn(conn, &l6, &p6, sizeof(l6), 0);
	l4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	EXPECT_EQ(-EBADMSG, ckpt_conn_file(&l4, &p4, sizeof(l4), conn, n,
					   &got, why, sizeof(why)));
	EXPECT_NE(NULL, strstr(why, DIFFER)) TH_LOG("%s", why);
	file_free(&got);
}

struct ckpt_parsed {
	struct ckpt_data *d;
};

static int ckpt_parsed_one(void *data, const struct baton_rec *rec)
{
	struct ckpt_parsed *p = data;
	struct ckpt_rec c;

	return tcp_ckpt_parse(rec, &c, p->d);
}

/* tcp_ckpt_parse() of one record, its addresses local and peer, into d */
static int ckpt_one_parse(const void *local, const void *peer, size_t alen,
			  const char *conn, size_t conn_len,
			  struct ckpt_data *d)
{
	struct ckpt_parsed p = { .d = d };
	__u32 count;
	int memfd, err;

	err = ckpt_conn_memfd(9, local, peer, alen, conn, conn_len, &memfd);
	if (err)
		return err;
	err = blob_read(memfd, BATON_BLOB_TCP, ckpt_parsed_one, &p, &count);
	close(memfd);
	return err;
}

/*
 * A connection's parts in baton.ko's record share its INDEX, and nothing
 * else may be among them; the reader renumbers each record's, so that
 * records side by side with the same INDEX stay apart
 */
TEST(checkpoint_conn_parts)
{
	struct sockaddr_in l4 = { .sin_family = AF_INET,
				  .sin_port = htons(6379),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in p4 = l4;
	struct ckpt_data d = {};
	char conn[256];
	size_t n, one;

	p4.sin_port = htons(40000);

	/* a part that goes on with another connection's INDEX */
	n = module_conn(conn, &l4, &p4, sizeof(l4), 0);
	n += module_part(conn + n, 1);
	EXPECT_EQ(-EINVAL, ckpt_one_parse(&l4, &p4, sizeof(l4), conn, n, &d));
	/* no INDEX, in the first part or in the next */
	n = module_conn(conn, &l4, &p4, sizeof(l4), -1);
	EXPECT_EQ(-EINVAL, ckpt_one_parse(&l4, &p4, sizeof(l4), conn, n, &d));
	n = module_conn(conn, &l4, &p4, sizeof(l4), 0);
	n += module_part(conn + n, -1);
	EXPECT_EQ(-EINVAL, ckpt_one_parse(&l4, &p4, sizeof(l4), conn, n, &d));
	/* a part of another kind than CONN */
	one = module_conn(conn, &l4, &p4, sizeof(l4), 0);
	n = one + module_part(conn + one, 0);
	((struct nlattr *)(conn + one))->nla_type = BATON_GENL_A_CONN + 1;
	EXPECT_EQ(-EINVAL, ckpt_one_parse(&l4, &p4, sizeof(l4), conn, n, &d));
	EXPECT_EQ(0, d.records);
	EXPECT_EQ(0, d.len);

	/* two connections of two parts, both INDEX 7: read as two */
	n = module_conn(conn, &l4, &p4, sizeof(l4), 7);
	n += module_part(conn + n, 7);
	ASSERT_EQ(0, ckpt_one_parse(&l4, &p4, sizeof(l4), conn, n, &d));
	ASSERT_EQ(0, ckpt_one_parse(&l4, &p4, sizeof(l4), conn, n, &d));
	ASSERT_EQ(2, d.records);
	ASSERT_EQ(2 * n, d.len);
	EXPECT_EQ(n, tcp_conn_span(d.buf, d.len, 0));
	EXPECT_EQ(n, tcp_conn_span(d.buf, d.len, n));
	EXPECT_EQ(0, tcp_conn_index((struct nlattr *)d.buf));
	EXPECT_EQ(1, tcp_conn_index((struct nlattr *)(d.buf + n)));
	ckpt_data_free(&d);
}

/*
 * Two TCP blobs of a connection each, the counts right: refused, as the
 * new instance keeps one (the other's connection would be lost unread)
 */
TEST(checkpoint_one_tcp_blob)
{
	struct sockaddr_in l4 = { .sin_family = AF_INET,
				  .sin_port = htons(6379),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in p4 = l4;
	struct baton_checkpoint ck = {
		.info = CKPT_CONNS_INFO(2),
		.ver = { .proto = BATON_PROTO_VERSION, .state = 1 },
	}, got = {};
	char conn[256], why[512] = "";
	size_t n;

	p4.sin_port = htons(40000);
	n = module_conn(conn, &l4, &p4, sizeof(l4), 0);
	ASSERT_EQ(0, ckpt_conn_blob(&ck, 9, &l4, &p4, sizeof(l4), conn, n));
	p4.sin_port = htons(40001);
	n = module_conn(conn, &l4, &p4, sizeof(l4), 0);
	ASSERT_EQ(0, ckpt_conn_blob(&ck, 10, &l4, &p4, sizeof(l4), conn, n));
	EXPECT_EQ(-EBADMSG, ckpt_file_round(&ck, &got, why, sizeof(why)));
	EXPECT_NE(NULL, strstr(why, "a second blob of")) TH_LOG("%s", why);
	file_free(&got);
	file_free(&ck);
}

/*
 * Listeners: one without an id, and one id twice, are refused, as the new
 * instance would refuse them once the restore had made everything
 */
TEST(checkpoint_listener_ids)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons(6379),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct baton_checkpoint ck = {
		.info = CKPT_CONNS_INFO(0),
		.ver = { .proto = BATON_PROTO_VERSION, .state = 1 },
	}, got = {};
	char why[512] = "";
	unsigned int i;

	ck.info.listeners = ck.nlsn = 2;
	ck.lsn = calloc(2, sizeof(*ck.lsn));
	ASSERT_NE(NULL, ck.lsn);
	for (i = 0; i < 2; i++) {
		ck.lsn[i].id = 5;
		memcpy(&ck.lsn[i].local, &a, sizeof(a));
		ck.lsn[i].local_len = sizeof(a);
	}
	EXPECT_EQ(-EBADMSG, ckpt_file_round(&ck, &got, why, sizeof(why)));
	EXPECT_NE(NULL, strstr(why, "listener 5 twice")) TH_LOG("%s", why);
	file_free(&got);
	ck.lsn[1].id = 0;
	EXPECT_EQ(-EBADMSG, ckpt_file_round(&ck, &got, why, sizeof(why)));
	EXPECT_NE(NULL, strstr(why, "a listener without an id")) TH_LOG("%s", why);
	file_free(&got);
	ck.lsn[1].id = 6;
	EXPECT_EQ(0, ckpt_file_round(&ck, &got, why, sizeof(why))) TH_LOG("%s", why);
	EXPECT_EQ(2, got.nlsn);
	file_free(&got);
	file_free(&ck);
}

/* An attribute added at the end of the part at buf: the part's length */
static size_t part_put(char *buf, __u16 type, const void *p, size_t len)
{
	struct nlattr *part = (struct nlattr *)buf;
	struct nlattr *a = (struct nlattr *)(buf + part->nla_len);

	a->nla_type = type;
	a->nla_len = NLA_HDRLEN + len;
	memcpy(a + 1, p, len);
	part->nla_len += NLA_ALIGN(a->nla_len);
	return part->nla_len;
}

/*
 * baton.ko's record made one of TCP_REPAIR's (a rollback's): the first
 * part's queue lengths size the queues, and a later part that says
 * another is refused, before its bytes would overrun them
 */
TEST(checkpoint_queue_lengths)
{
	struct sockaddr_in l4 = { .sin_family = AF_INET,
				  .sin_port = htons(6379),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in p4 = l4;
	struct baton_log_sink log = {};
	struct baton_tcp *tcp;
	char conn[1024], bytes[256] = "";
	__u32 four = 4, more = sizeof(bytes);
	size_t n, one;
	void *rec = NULL;
	size_t rec_len;

	p4.sin_port = htons(40000);
	ASSERT_EQ(0, tcp_open_any(&tcp, &log));
	one = module_conn(conn, &l4, &p4, sizeof(l4), 0);
	one = part_put(conn, BATON_CONN_A_SENDQ_LEN, &four, sizeof(four));
	n = one + module_part(conn + one, 0);
	n = one + part_put(conn + one, BATON_CONN_A_SENDQ_LEN, &more,
			   sizeof(more));
	n = one + part_put(conn + one, BATON_CONN_A_SENDQ, bytes,
			   sizeof(bytes));
	EXPECT_EQ(-EINVAL, tcp_conn_to_rec(tcp, conn, n, &rec, &rec_len));
	EXPECT_EQ(NULL, rec);
	baton_tcp_close(tcp);
}

static void last_log(void *ctx, enum baton_log_level level, const char *msg)
{
	(void)level;
	snprintf(ctx, 256, "%s", msg);
}

/*
 * Options an instance refuses before it takes anything, each with its
 * reason: no state version, a compat or min newer than it, a timeout below
 * 0 or above an hour (it wrapped deadlines, and made every peer's
 * SO_SNDTIMEO fail)
 */
TEST(service_opts_refused)
{
	static const struct baton_app_ops ops;
	const struct {
		__u32 version, compat, min;
		int timeout_ms;
		const char *why;
	} bad[] = {
		{ 0, 0, 0, 0, "state_version 0" },
		{ 1, 2, 0, 0, "state_compat 2" },
		{ 1, 0, 2, 0, "state_min 2" },
		{ 1, 0, 0, -1, "timeout_ms -1" },
		{ 1, 0, 0, BATON_TIMEOUT_MS_MAX + 1, "timeout_ms 3600001" },
	};
	struct baton_service *svc = NULL;
	char log[256];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct baton_service_opts o = {
			.service = "wire-test", .app_name = "wire_test",
			.state_version = bad[i].version,
			.state_compat = bad[i].compat,
			.state_min = bad[i].min,
			.timeout_ms = bad[i].timeout_ms, .ops = &ops,
			.log = last_log, .log_ctx = log,
		};

		log[0] = '\0';
		EXPECT_EQ(-EINVAL, baton_service_open(&svc, &o));
		EXPECT_EQ(NULL, svc);
		EXPECT_NE(NULL, strstr(log, bad[i].why)) TH_LOG("%zu: %s", i, log);
	}
}

/*
 * A successor that opens twice: the first open takes the coordinator's
 * socket (BATON_CTL_FD), says why it fails on it and closes it; the
 * second leaves that number alone, another file's by then. Before, it
 * wrote an ERROR into that file and closed it.
 */
TEST(ctl_fd_taken_once)
{
	static const struct baton_app_ops ops;
	struct baton_service_opts o = {
		.service = "wire-test", .app_name = "wire_test",
		.state_version = 0,	/* refused: -EINVAL */
		.ops = &ops,
	};
	struct baton_service *svc = NULL;
	int sp[2], other[2];
	char env[16], buf[512];

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp));
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
				other));
	snprintf(env, sizeof(env), "%d", sp[1]);
	ASSERT_EQ(0, setenv("BATON_CTL_FD", env, 1));
	snprintf(env, sizeof(env), "%d", getpid());
	ASSERT_EQ(0, setenv("BATON_CTL_PID", env, 1));

	EXPECT_EQ(-EINVAL, baton_service_open(&svc, &o));
	/* the coordinator was told, and our end is closed */
	EXPECT_LT(0, recv(sp[0], buf, sizeof(buf), MSG_DONTWAIT));
	EXPECT_EQ(-1, fcntl(sp[1], F_GETFD));

	/* that number is another socket's now */
	ASSERT_EQ(sp[1], dup3(other[1], sp[1], O_CLOEXEC));
	EXPECT_EQ(-EINVAL, baton_service_open(&svc, &o));
	EXPECT_LE(0, fcntl(sp[1], F_GETFD));
	EXPECT_EQ(-1, recv(other[0], buf, sizeof(buf), MSG_DONTWAIT));
	EXPECT_EQ(EAGAIN, errno);
	close(sp[0]);
	close(sp[1]);
	close(other[0]);
	close(other[1]);
}

static void on_alarm(int sig)
{
	(void)sig;
}

/*
 * A process with a timer signal faster than a wait's timeout (an
 * application's 20 Hz tick): the wait still ends at its timeout. Before,
 * each EINTR started the whole timeout again, and it never did.
 */
TEST(wait_ends_despite_signals)
{
	struct sigaction sa = { .sa_handler = on_alarm };	/* no SA_RESTART */
	struct itimerval it = { { 0, 50000 }, { 0, 50000 } };
	struct baton_msg *m = msg_alloc();
	struct timespec t0, t1;
	int sv[2];
	double ms;

	ASSERT_NE(NULL, m);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv));
	ASSERT_EQ(0, sigaction(SIGALRM, &sa, NULL));
	ASSERT_EQ(0, setitimer(ITIMER_REAL, &it, NULL));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	EXPECT_EQ(-ETIMEDOUT, msg_recv(sv[0], m, 300));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	memset(&it, 0, sizeof(it));
	setitimer(ITIMER_REAL, &it, NULL);
	ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
	TH_LOG("a 300 ms wait under a 20 Hz signal took %.1f ms", ms);
	EXPECT_GE(ms, 299);
	close(sv[0]);
	close(sv[1]);
	msg_free(m);
}

TEST_HARNESS_MAIN
