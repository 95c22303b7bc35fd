// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Blobs of records, written into a sealed memfd: the receiver maps it and
 * knows it cannot change underneath. A blob is
 *	BEGIN(service, state version, kind), records..., END(record count)
 * and each record a struct nlmsghdr, a __u64 id, and attributes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wire/wire.h"

#define SEALS		(F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | \
			 F_SEAL_WRITE)

/* The records a blob of this kind holds */
static __u16 blob_rec_type(enum baton_blob_kind kind)
{
	switch (kind) {
	case BATON_BLOB_CONNS:
		return BATON_REC_CONN;
	case BATON_BLOB_TCP:
		return BATON_REC_TCP;
	default:
		return BATON_REC_STATE;
	}
}

static struct nlmsghdr *open_rec(struct baton_rec_writer *w)
{
	return (struct nlmsghdr *)(w->buf + w->rec_off);
}

static int writer_reserve(struct baton_rec_writer *w, size_t more)
{
	/* an open record grows past w->len */
	size_t used = w->in_rec ? w->rec_off + open_rec(w)->nlmsg_len : w->len;
	size_t cap;
	char *buf;

	if (w->err)
		return w->err;
	if (used + more <= w->cap)
		return 0;
	cap = w->cap ? w->cap : 65536;
	while (cap < used + more)
		cap *= 2;
	buf = realloc(w->buf, cap);
	if (!buf)
		return w->err = -ENOMEM;
	w->buf = buf;
	w->cap = cap;
	return 0;
}

static int rec_open(struct baton_rec_writer *w, __u16 type, __u64 id)
{
	struct nlmsghdr *nlh;
	int err;

	if (w->in_rec)
		return w->err = w->err ?: -EINVAL;
	err = writer_reserve(w, REC_HDRLEN);
	if (err)
		return err;
	nlh = (struct nlmsghdr *)(w->buf + w->len);
	memset(nlh, 0, REC_HDRLEN);
	nlh->nlmsg_len = REC_HDRLEN;
	nlh->nlmsg_type = type;
	memcpy((char *)nlh + NLMSG_HDRLEN, &id, sizeof(id));
	w->rec_off = w->len;
	w->in_rec = true;
	return 0;
}

static int rec_close(struct baton_rec_writer *w)
{
	if (!w->in_rec)
		return w->err = w->err ?: -EINVAL;
	if (w->err)
		return w->err;
	w->len += open_rec(w)->nlmsg_len;
	w->in_rec = false;
	return 0;
}

static int rec_put(struct baton_rec_writer *w, __u16 type, size_t len,
		   const void *data)
{
	int err;

	if (!w->in_rec || len > ATTR_CHUNK || type == 0 || type > 0x3fff)
		return w->err = w->err ?: -EINVAL;
	err = writer_reserve(w, MNL_ATTR_HDRLEN + MNL_ALIGN(len));
	if (err)
		return err;
	mnl_attr_put(open_rec(w), type, len, data);
	return 0;
}

int writer_init(struct baton_rec_writer *w, enum baton_blob_kind kind,
		const char *service, __u32 state_version)
{
	memset(w, 0, sizeof(*w));
	w->rec_type = blob_rec_type(kind);
	return rec_open(w, BATON_REC_BEGIN, 0) ?:
	       rec_put(w, BATON_A_SERVICE, strlen(service) + 1, service) ?:
	       rec_put(w, BATON_A_STATE_VERSION, sizeof(__u32),
		       &state_version) ?:
	       rec_put(w, BATON_A_BLOB_KIND, sizeof(__u32), &kind) ?:
	       rec_close(w);
}

int writer_open_rec(struct baton_rec_writer *w, __u16 type, __u64 id)
{
	return rec_open(w, type, id);
}

int writer_close_rec(struct baton_rec_writer *w)
{
	return rec_close(w);
}

void writer_free(struct baton_rec_writer *w)
{
	free(w->buf);
	memset(w, 0, sizeof(*w));
}

int baton_rec_begin(struct baton_rec_writer *w, __u64 id)
{
	return rec_open(w, w->rec_type, id);
}

int baton_rec_end(struct baton_rec_writer *w)
{
	int err = rec_close(w);

	if (!err)
		w->count++;
	return err;
}

int baton_rec_closed(struct baton_rec_writer *w, __u64 id)
{
	int err;

	if (w->rec_type != BATON_REC_CONN)
		return w->err = w->err ?: -EINVAL;
	err = rec_open(w, BATON_REC_CONN_CLOSED, id) ?: rec_close(w);
	if (!err)
		w->count++;
	return err;
}

int baton_rec_put_u32(struct baton_rec_writer *w, __u16 type, __u32 v)
{
	return rec_put(w, type, sizeof(v), &v);
}

int baton_rec_put_u64(struct baton_rec_writer *w, __u16 type, __u64 v)
{
	return rec_put(w, type, sizeof(v), &v);
}

int baton_rec_put_str(struct baton_rec_writer *w, __u16 type, const char *s)
{
	return rec_put(w, type, strlen(s) + 1, s);
}

int baton_rec_put_bytes(struct baton_rec_writer *w, __u16 type,
			const void *buf, size_t len)
{
	const char *p = buf;
	int err = 0;

	while (len > 0 && !err) {
		size_t n = len < ATTR_CHUNK ? len : ATTR_CHUNK;

		err = rec_put(w, type, n, p);
		p += n;
		len -= n;
	}
	return err;
}

/* Closes the blob with END and moves it into a sealed memfd. */
int writer_finish(struct baton_rec_writer *w, int *memfd)
{
	int err;

	err = rec_open(w, BATON_REC_END, 0) ?:
	      rec_put(w, BATON_A_RECORDS, sizeof(__u32), &w->count) ?:
	      rec_close(w);
	return err ?: memfd_sealed(w->buf, w->len, memfd);
}

int memfd_sealed(const void *buf, size_t len, int *memfd)
{
	const char *p = buf;
	size_t off = 0;
	int err, fd;

	fd = memfd_create("baton-state", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	while (off < len) {
		ssize_t n = write(fd, p + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? -errno : -EIO;
			goto close_fd;
		}
		off += n;
	}
	if (fcntl(fd, F_ADD_SEALS, SEALS) < 0) {
		err = -errno;
		goto close_fd;
	}
	*memfd = fd;
	return 0;

close_fd:
	close(fd);
	return err;
}

int blob_send(int sock, struct baton_msg *m, enum baton_blob_kind kind,
	      int memfd, __u32 records)
{
	struct stat st;
	int err;

	if (fstat(memfd, &st) < 0)
		return -errno;
	msg_init(m, BATON_MSG_BLOB);
	err = msg_put_u32(m, BATON_A_BLOB_KIND, kind) ?:
	      msg_put_u32(m, BATON_A_RECORDS, records) ?:
	      msg_put_u64(m, BATON_A_BYTES, st.st_size) ?:
	      msg_add_fd(m, memfd);
	if (!err)
		err = msg_send(sock, m);
	m->nfds = 0;		/* the memfd stays the caller's */
	return err;
}

__u64 baton_rec_id(const struct baton_rec *rec)
{
	return rec->id;
}

__u32 baton_rec_version(const struct baton_rec *rec)
{
	return rec->version;
}

static int attr_any(const struct nlattr *attr, void *data)
{
	(void)attr;
	(void)data;
	return MNL_CB_OK;
}

/*
 * A whole record in the left bytes of the blob. Not mnl_nlmsg_ok(), which
 * compares the length as an int: one of 2 GiB or more passes it.
 */
bool rec_ok(const struct nlmsghdr *nlh, int left)
{
	return left >= (int)REC_HDRLEN && nlh->nlmsg_len >= REC_HDRLEN &&
	       nlh->nlmsg_len <= (unsigned int)left;
}

/* Whole attributes, which fill the record exactly */
int rec_attrs_ok(const struct nlmsghdr *nlh)
{
	return attrs_walk((const char *)nlh + REC_HDRLEN,
			  nlh->nlmsg_len - REC_HDRLEN, attr_any, NULL);
}

int baton_rec_parse(const struct baton_rec *rec, mnl_attr_cb_t cb, void *data)
{
	errno = 0;
	if (mnl_attr_parse(rec->nlh, sizeof(__u64), cb, data) < 0)
		return errno ? -errno : -EINVAL;
	return 0;
}

/* The attributes of a BEGIN or END record, checked as any control message's */
int frame_parse(const struct nlmsghdr *nlh, const struct nlattr **tb)
{
	return attrs_parse((const char *)nlh + REC_HDRLEN,
			   nlh->nlmsg_len - REC_HDRLEN, tb);
}

/*
 * Maps a received blob, checks its frame (BEGIN of the expected kind, whole
 * records, END with the right count) and only then hands each record to cb.
 */
int blob_read(int memfd, enum baton_blob_kind kind, rec_cb cb, void *data,
	      __u32 *count)
{
	const struct nlattr *begin[BATON_A_MAX + 1], *end[BATON_A_MAX + 1];
	const struct nlmsghdr *nlh;
	__u32 version, n = 0, want;
	struct baton_rec rec;
	struct stat st;
	__u16 rec_type;
	void *map;
	int left;
	int seals, err = -EBADMSG;

	seals = fcntl(memfd, F_GET_SEALS);
	if (seals < 0 || (seals & SEALS) != SEALS)
		return -EPERM;		/* it could change while we read */
	if (fstat(memfd, &st) < 0)
		return -errno;
	if (st.st_size < (off_t)REC_HDRLEN || st.st_size > INT_MAX)
		return -EBADMSG;
	map = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, memfd, 0);
	if (map == MAP_FAILED)
		return -errno;

	/* first pass: the frame */
	nlh = map;
	left = st.st_size;
	if (!rec_ok(nlh, left) || nlh->nlmsg_type != BATON_REC_BEGIN ||
	    rec_attrs_ok(nlh) ||
	    frame_parse(nlh, begin) || !begin[BATON_A_STATE_VERSION] ||
	    !begin[BATON_A_BLOB_KIND])
		goto unmap;
	if (mnl_attr_get_u32(begin[BATON_A_BLOB_KIND]) != (__u32)kind)
		goto unmap;
	version = mnl_attr_get_u32(begin[BATON_A_STATE_VERSION]);
	rec_type = blob_rec_type(kind);
	for (;;) {
		nlh = mnl_nlmsg_next(nlh, &left);
		if (!rec_ok(nlh, left) || rec_attrs_ok(nlh))
			goto unmap;		/* truncated */
		if (nlh->nlmsg_type == BATON_REC_END)
			break;
		if (nlh->nlmsg_type != rec_type &&
		    (nlh->nlmsg_type != BATON_REC_CONN_CLOSED ||
		     rec_type != BATON_REC_CONN ||
		     nlh->nlmsg_len != REC_HDRLEN))
			goto unmap;
		n++;
	}
	if (frame_parse(nlh, end) || !end[BATON_A_RECORDS])
		goto unmap;
	want = mnl_attr_get_u32(end[BATON_A_RECORDS]);
	if (want != n || (int)MNL_ALIGN(nlh->nlmsg_len) < left)
		goto unmap;		/* lost records, or trailing bytes */

	/* second pass: the records */
	nlh = map;
	left = st.st_size;
	rec.version = version;
	err = 0;
	while (!err) {
		nlh = mnl_nlmsg_next(nlh, &left);
		if (nlh->nlmsg_type == BATON_REC_END)
			break;
		rec.nlh = nlh;
		memcpy(&rec.id, (const char *)nlh + NLMSG_HDRLEN,
		       sizeof(rec.id));
		err = cb(data, &rec);
	}
	if (count)
		*count = n;
unmap:
	munmap(map, st.st_size);
	return err;
}
