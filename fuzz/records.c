// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * 1. Feeds: a blob of records as a peer hands it over in a memfd. The
 *    first byte's low two bits say which kind of blob the reader expects
 *    (STATE, DELTA, CONNS) and bit 2 leaves the memfd unsealed; the rest
 *    is the memfd's content, read by blob_read().
 * 2. Checks that blob_read() answers 0 or -errno, refuses an unsealed
 *    memfd with -EPERM, and hands on only whole records: each inside the
 *    blob, of the kind's type, its id the one it carries, and attributes
 *    that baton_rec_parse() walks to the end.
 * 3. Checks the count it reports is the number of records handed on.
 * 4. Checks a round trip: the records written again with the writer
 *    (writer_init, baton_rec_put_bytes, writer_finish) read back the same
 *    ids, version and attributes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "wire/wire.h"
#include "fuzz.h"

#define SEALS	(F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

/* the records handed on, copied: the blob is unmapped once read */
struct seen {
	char *buf;
	size_t len, cap;
	unsigned int n;
	__u32 version;		/* BEGIN's, which every record carries */
	bool versioned;
	__u16 type;
	bool copyable;		/* every attribute the writer can write */
};

struct attr_ctx {
	size_t bytes;		/* attributes walked */
	bool copyable;
};

static int attr_cb(const struct nlattr *attr, void *data)
{
	struct attr_ctx *c = data;
	size_t len = mnl_attr_get_payload_len(attr);

	c->bytes += MNL_ALIGN(attr->nla_len);
	/* the writer's types (baton.h); bytes of none it leaves out */
	if (attr->nla_type == 0 || attr->nla_type > 0x3fff || !len ||
	    len > ATTR_CHUNK)
		c->copyable = false;
	return MNL_CB_OK;
}

static int stop_cb(const struct nlattr *attr, void *data)
{
	(void)attr;
	(void)data;
	return MNL_CB_ERROR;
}

static int record_cb(void *data, const struct baton_rec *rec)
{
	struct seen *s = data;
	const struct nlmsghdr *nlh = rec->nlh;
	struct attr_ctx c = { .copyable = true };
	__u64 id;
	int err;

	CHECK(nlh->nlmsg_type == s->type);
	CHECK(nlh->nlmsg_len >= NLMSG_HDRLEN + sizeof(__u64));
	memcpy(&id, (const char *)nlh + NLMSG_HDRLEN, sizeof(id));
	CHECK(baton_rec_id(rec) == id);
	if (!s->versioned)
		s->version = baton_rec_version(rec);
	s->versioned = true;
	CHECK(baton_rec_version(rec) == s->version);
	/* whole attributes, to the record's end (ASan: not past it) */
	CHECK(baton_rec_parse(rec, attr_cb, &c) == 0);
	CHECK(NLMSG_HDRLEN + sizeof(__u64) + c.bytes >=
	      MNL_ALIGN(nlh->nlmsg_len));
	if (nlh->nlmsg_len > NLMSG_HDRLEN + sizeof(__u64)) {
		err = baton_rec_parse(rec, stop_cb, NULL);
		CHECK(err < 0 && is_ret(err));
	}
	s->copyable &= c.copyable;
	if (s->len + MNL_ALIGN(nlh->nlmsg_len) > s->cap) {
		s->cap = (s->len + MNL_ALIGN(nlh->nlmsg_len)) * 2;
		s->buf = realloc(s->buf, s->cap);
		CHECK(s->buf);
	}
	memset(s->buf + s->len, 0, MNL_ALIGN(nlh->nlmsg_len));
	memcpy(s->buf + s->len, nlh, nlh->nlmsg_len);
	s->len += MNL_ALIGN(nlh->nlmsg_len);
	s->n++;
	return 0;
}

static int blob_fd(const void *data, size_t size, bool seal)
{
	int fd = memfd_create("fuzz", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	CHECK(fd >= 0);
	CHECK(write(fd, data, size) == (ssize_t)size);
	if (seal)
		CHECK(fcntl(fd, F_ADD_SEALS, SEALS) == 0);
	return fd;
}

static int copy_cb(const struct nlattr *attr, void *data)
{
	struct baton_rec_writer *w = data;

	return baton_rec_put_bytes(w, attr->nla_type,
				   mnl_attr_get_payload(attr),
				   mnl_attr_get_payload_len(attr)) ?
	       MNL_CB_ERROR : MNL_CB_OK;
}

/* the same attributes, in the same order; padding aside */
static void same_attrs(const struct nlmsghdr *a, const struct nlmsghdr *b)
{
	const struct nlattr *x, *y = mnl_nlmsg_get_payload_offset(b, 8);

	mnl_attr_for_each(x, a, 8) {
		CHECK(mnl_attr_ok(y, (const char *)mnl_nlmsg_get_payload_tail(b) -
				     (const char *)y));
		CHECK(x->nla_type == y->nla_type && x->nla_len == y->nla_len);
		CHECK(!memcmp(mnl_attr_get_payload(x), mnl_attr_get_payload(y),
			      mnl_attr_get_payload_len(x)));
		y = mnl_attr_next(y);
	}
	CHECK((const char *)y >= (const char *)mnl_nlmsg_get_payload_tail(b));
}

/* the records seen, written again by the writer and read back */
static void write_again(const struct seen *s, enum baton_blob_kind kind)
{
	struct seen again = { .type = s->type, .version = s->version,
			      .versioned = s->versioned };
	struct baton_rec_writer w;
	const struct nlmsghdr *a, *b;
	struct baton_rec rec;
	size_t off;
	__u32 count;
	int fd;

	CHECK(writer_init(&w, kind, "fuzz", s->version) == 0);
	for (off = 0; off < s->len; off += MNL_ALIGN(a->nlmsg_len)) {
		a = (const struct nlmsghdr *)(s->buf + off);
		memcpy(&rec.id, (const char *)a + NLMSG_HDRLEN, sizeof(rec.id));
		rec.nlh = a;
		CHECK(baton_rec_begin(&w, rec.id) == 0);
		CHECK(baton_rec_parse(&rec, copy_cb, &w) == 0);
		CHECK(baton_rec_end(&w) == 0);
	}
	CHECK(writer_finish(&w, &fd) == 0);
	writer_free(&w);
	CHECK(blob_read(fd, kind, record_cb, &again, &count) == 0);
	close(fd);
	CHECK(count == s->n && again.n == s->n);
	for (off = 0; off < s->len; off += MNL_ALIGN(a->nlmsg_len)) {
		a = (const struct nlmsghdr *)(s->buf + off);
		b = (const struct nlmsghdr *)(again.buf + off);
		CHECK(off < again.len && a->nlmsg_type == b->nlmsg_type);
		CHECK(!memcmp((const char *)a + NLMSG_HDRLEN,
			      (const char *)b + NLMSG_HDRLEN, sizeof(__u64)));
		same_attrs(a, b);
		/* the original's padding may be short: the rest is the same */
		CHECK(MNL_ALIGN(a->nlmsg_len) == b->nlmsg_len);
	}
	free(again.buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum baton_blob_kind kinds[] = {
		BATON_BLOB_STATE, BATON_BLOB_DELTA, BATON_BLOB_CONNS,
		BATON_BLOB_STATE,
	};
	struct seen s = { .copyable = true };
	enum baton_blob_kind kind;
	bool seal;
	__u32 count = 0xdeadbeef;
	int fd, err;

	if (size < 1)
		return 0;
	kind = kinds[data[0] & 3];
	seal = !(data[0] & 4);
	s.type = kind == BATON_BLOB_CONNS ? BATON_REC_CONN : BATON_REC_STATE;
	fd = blob_fd(data + 1, size - 1, seal);
	err = blob_read(fd, kind, record_cb, &s, &count);
	close(fd);
	CHECK(is_ret(err));
	if (!seal)
		CHECK(err == -EPERM && s.n == 0);
	if (!err) {
		CHECK(count == s.n);
		if (s.copyable)
			write_again(&s, kind);
	}
	free(s.buf);
	return 0;
}
