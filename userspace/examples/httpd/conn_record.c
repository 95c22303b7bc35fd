// SPDX-License-Identifier: GPL-2.0-only
/*
 * httpd's connection record: what a connection had read and not answered,
 * what it had not written yet, and where it was in the file it was sending.
 * Each version skips what it does not know: httpd 2 adds the body bytes
 * sent, which httpd 1 skips and httpd 2 starts at 0 reading httpd 1's.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "httpd.h"

enum httpd_conn_attr {
	HTTPD_C_INBUF = 1,	/* bytes: read, not answered (half a request) */
	HTTPD_C_OUTBUF = 2,	/* bytes: response head not written yet */
	HTTPD_C_FILE_PATH = 3,	/* string: the file being sent, under the root */
	HTTPD_C_FILE_OFF = 4,	/* u64: its next byte to send */
	HTTPD_C_FILE_END = 5,	/* u64: one past its last byte to send */
	HTTPD_C_FILE_DEV = 6,	/* u64: st_dev, st_ino, st_size and st_mtim of */
	HTTPD_C_FILE_INO = 7,	/* u64: the file; the reader refuses */
	HTTPD_C_FILE_SIZE = 8,	/* u64: to send another one */
	HTTPD_C_FILE_MTIME = 9,	/* u64, ns */
	HTTPD_C_CLOSING = 10,	/* u32: close once the response is out */
	HTTPD_C_REQUESTS = 11,	/* u64: requests answered on the connection */
	HTTPD_C_BODY_BYTES = 12, /* u64, new in v2: file bytes sent on it */
};

int conn_record_save(const struct conn *c, struct baton_rec_writer *w)
{
	const struct buf *in = &c->base.in, *out = &c->base.out;
	int err = baton_rec_begin(w, c->base.id);

	if (!err && buf_pending(in))
		err = baton_rec_put_bytes(w, HTTPD_C_INBUF, in->data + in->off,
					  buf_pending(in));
	if (!err && buf_pending(out))
		err = baton_rec_put_bytes(w, HTTPD_C_OUTBUF,
					  out->data + out->off, buf_pending(out));
	if (!err && c->file >= 0)
		err = baton_rec_put_str(w, HTTPD_C_FILE_PATH, c->path) ?:
		      baton_rec_put_u64(w, HTTPD_C_FILE_OFF, c->off) ?:
		      baton_rec_put_u64(w, HTTPD_C_FILE_END, c->end) ?:
		      baton_rec_put_u64(w, HTTPD_C_FILE_DEV, c->fid.dev) ?:
		      baton_rec_put_u64(w, HTTPD_C_FILE_INO, c->fid.ino) ?:
		      baton_rec_put_u64(w, HTTPD_C_FILE_SIZE, c->fid.size) ?:
		      baton_rec_put_u64(w, HTTPD_C_FILE_MTIME, c->fid.mtime_ns);
	if (!err && c->closing)
		err = baton_rec_put_u32(w, HTTPD_C_CLOSING, 1);
	if (!err)
		err = baton_rec_put_u64(w, HTTPD_C_REQUESTS, c->requests);
#if HTTPD_VERSION >= 2
	if (!err)
		err = baton_rec_put_u64(w, HTTPD_C_BODY_BYTES, c->body_bytes);
#endif
	return err ?: baton_rec_end(w);
}

struct loading {
	struct conn *c;
	bool path, off, end;	/* which file attributes came */
	unsigned int fid;	/* bit per identity attribute */
	struct file_id want;
};

static int u64_attr(const struct nlattr *attr, __u64 *v)
{
	if (mnl_attr_get_payload_len(attr) != sizeof(__u64))
		return -EINVAL;
	*v = mnl_attr_get_u64(attr);
	return 0;
}

static int conn_attr_cb(const struct nlattr *attr, void *data)
{
	struct loading *l = data;
	struct conn *c = l->c;
	const void *p = mnl_attr_get_payload(attr);
	size_t n = mnl_attr_get_payload_len(attr);
	__u16 type = mnl_attr_get_type(attr);
	int err = 0;

	switch (type) {
	case HTTPD_C_INBUF:
		err = buf_append(&c->base.in, p, n);
		break;
	case HTTPD_C_OUTBUF:
		err = buf_append(&c->base.out, p, n);
		break;
	case HTTPD_C_FILE_PATH:
		if (mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) < 0 ||
		    n > sizeof(c->path) || n < 2)
			return MNL_CB_ERROR;
		memcpy(c->path, p, n);
		l->path = true;
		break;
	case HTTPD_C_FILE_OFF:
		err = u64_attr(attr, &c->off);
		l->off = true;
		break;
	case HTTPD_C_FILE_END:
		err = u64_attr(attr, &c->end);
		l->end = true;
		break;
	case HTTPD_C_FILE_DEV:
	case HTTPD_C_FILE_INO:
	case HTTPD_C_FILE_SIZE:
	case HTTPD_C_FILE_MTIME: {
		__u64 *f[] = { &l->want.dev, &l->want.ino, &l->want.size,
			       &l->want.mtime_ns };

		err = u64_attr(attr, f[type - HTTPD_C_FILE_DEV]);
		l->fid |= 1U << (type - HTTPD_C_FILE_DEV);
		break;
	}
	case HTTPD_C_CLOSING:
		if (n != sizeof(__u32) || mnl_attr_get_u32(attr) > 1)
			return MNL_CB_ERROR;
		c->closing = mnl_attr_get_u32(attr);
		break;
	case HTTPD_C_REQUESTS:
		err = u64_attr(attr, &c->requests);
		break;
#if HTTPD_VERSION >= 2
	case HTTPD_C_BODY_BYTES:
		err = u64_attr(attr, &c->body_bytes);
		break;
#endif
	}
	return err ? MNL_CB_ERROR : MNL_CB_OK;	/* the rest: a newer httpd's */
}

/*
 * The file goes on from the same byte, and it must be the same file: a
 * different one would send the client bytes that do not belong together.
 */
static int reopen_file(struct httpd *h, struct loading *l)
{
	struct conn *c = l->c;
	struct file_id have;
	int fd;

	if (!l->off || !l->end || l->fid != 0xf || c->off > c->end ||
	    c->end > l->want.size)
		return -EINVAL;
	fd = http_open(h, c->path, &have);
	if (fd < 0) {
		fprintf(stderr, "httpd: cannot reopen %s, which a connection was sending: %s\n",
			c->path, strerror(-fd));
		return fd;
	}
	if (memcmp(&have, &l->want, sizeof(have))) {
		fprintf(stderr, "httpd: %s changed while a connection was sending it: upgrade again once it is sent\n",
			c->path);
		close(fd);
		return -ESTALE;
	}
	c->fid = have;
	c->file = fd;
	return 0;
}

int conn_record_load(struct httpd *h, struct conn *c,
		     const struct baton_rec *rec)
{
	struct loading l = { .c = c };
	int err;

#if HTTPD_VERSION >= 2
	c->body_bytes = 0;
#endif
	err = baton_rec_parse(rec, conn_attr_cb, &l);
	if (err)
		return err;
	if (l.path)
		return reopen_file(h, &l);
	if (l.off || l.end || l.fid)
		return -EINVAL;		/* a file's place, but no file */
	return 0;
}
