// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * BATON_REC_TCP records: in repair mode each moving connection travels as
 * one, in a blob of kind BATON_BLOB_TCP beside the application's own
 * connection records. Built by ckpt_put() and read by ckpt_parse() alone.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "wire/wire.h"

static int addr_put(struct baton_rec_writer *w, __u16 type,
		    const struct sockaddr_storage *ss, socklen_t len)
{
	return baton_rec_put_bytes(w, type, ss, len);
}

int ckpt_put(struct baton_rec_writer *w, const struct ckpt_rec *c,
	     const void *data)
{
	if (!c->len || !c->local_len || !c->peer_len)
		return -EINVAL;
	return baton_rec_begin(w, c->id) ?:
	       baton_rec_put_u32(w, BATON_CKPT_A_FORMAT, c->format) ?:
	       addr_put(w, BATON_CKPT_A_LOCAL, &c->local, c->local_len) ?:
	       addr_put(w, BATON_CKPT_A_PEER, &c->peer, c->peer_len) ?:
	       baton_rec_put_u32(w, BATON_CKPT_A_FILE_FLAGS, c->file_flags) ?:
	       baton_rec_put_bytes(w, BATON_CKPT_A_DATA, data, c->len) ?:
	       baton_rec_end(w);
}

void ckpt_data_free(struct ckpt_data *d)
{
	free(d->buf);
	memset(d, 0, sizeof(*d));
}

static int data_append(struct ckpt_data *d, const void *p, size_t n)
{
	if (d->len + n > d->cap) {
		size_t cap = d->cap ? d->cap : 65536;
		char *buf;

		while (cap < d->len + n)
			cap *= 2;
		buf = realloc(d->buf, cap);
		if (!buf)
			return -ENOMEM;
		d->buf = buf;
		d->cap = cap;
	}
	memcpy(d->buf + d->len, p, n);
	d->len += n;
	return 0;
}

/* An IPv4 or IPv6 socket address, exactly its size */
static int addr_get(const struct nlattr *attr, struct sockaddr_storage *ss,
		    socklen_t *len)
{
	size_t n = mnl_attr_get_payload_len(attr);
	sa_family_t family;

	if (n < sizeof(family))
		return -EINVAL;
	memcpy(&family, mnl_attr_get_payload(attr), sizeof(family));
	if (!(family == AF_INET && n == sizeof(struct sockaddr_in)) &&
	    !(family == AF_INET6 && n == sizeof(struct sockaddr_in6)))
		return -EINVAL;
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, mnl_attr_get_payload(attr), n);
	*len = n;
	return 0;
}

struct parse_ctx {
	struct ckpt_rec *c;
	struct ckpt_data *d;
	bool format;
	int err;
};

static int ckpt_attr_cb(const struct nlattr *attr, void *data)
{
	struct parse_ctx *ctx = data;
	struct ckpt_rec *c = ctx->c;
	int err = 0;

	switch (mnl_attr_get_type(attr)) {
	case BATON_CKPT_A_FORMAT:
		err = attr_check(attr, MNL_TYPE_U32);
		if (!err)
			c->format = mnl_attr_get_u32(attr);
		if (!err && c->format != BATON_CKPT_MODULE &&
		    c->format != BATON_CKPT_TCP)
			err = -EPROTONOSUPPORT;
		ctx->format = true;
		break;
	case BATON_CKPT_A_FLAGS:
		err = attr_check(attr, MNL_TYPE_U32);
		if (!err && mnl_attr_get_u32(attr))
			err = -EINVAL;	/* no flag is defined yet */
		break;
	case BATON_CKPT_A_FILE_FLAGS:
		err = attr_check(attr, MNL_TYPE_U32);
		if (!err)
			c->file_flags = mnl_attr_get_u32(attr);
		if (!err && (c->file_flags & ~O_NONBLOCK))
			err = -EINVAL;	/* a flag we do not know */
		break;
	case BATON_CKPT_A_LOCAL:
		err = addr_get(attr, &c->local, &c->local_len);
		break;
	case BATON_CKPT_A_PEER:
		err = addr_get(attr, &c->peer, &c->peer_len);
		break;
	case BATON_CKPT_A_DATA:
		err = data_append(ctx->d, mnl_attr_get_payload(attr),
				  mnl_attr_get_payload_len(attr));
		c->len += mnl_attr_get_payload_len(attr);
		break;
	default:
		break;		/* newer than us */
	}
	if (err) {
		ctx->err = err;
		return MNL_CB_ERROR;
	}
	return MNL_CB_OK;
}

int ckpt_parse(const struct baton_rec *rec, struct ckpt_rec *c,
	       struct ckpt_data *d)
{
	struct parse_ctx ctx = { .c = c, .d = d };
	size_t start = d->len;
	int err;

	memset(c, 0, sizeof(*c));
	c->id = baton_rec_id(rec);
	c->off = start;
	err = baton_rec_parse(rec, ckpt_attr_cb, &ctx);
	if (!err && ctx.err)
		err = ctx.err;
	if (!err && (!ctx.format || !c->len || !c->local_len ||
		     !c->peer_len ||
		     c->local.ss_family != c->peer.ss_family))
		err = -EINVAL;	/* a part missing */
	if (err) {
		d->len = start;
		return ctx.err ?: err;
	}
	d->records++;
	return 0;
}
