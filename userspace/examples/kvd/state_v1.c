// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvd 1's per-connection record. These numbers are the wire: kvd 2 reads
 * them (see state_v2.c) and kvd 1 skips what kvd 2 adds.
 */
#include <errno.h>
#include <string.h>

#include "kvd.h"

#if KVD_VERSION == 1
enum kvd1_conn_attr {
	KVD1_C_UNSPEC,
	KVD1_C_INBUF,		/* bytes: a request read but not complete */
	KVD1_C_OUTBUF,		/* bytes: a reply not written yet */
	KVD1_C_NAME,		/* string: CLIENT SETNAME */
	KVD1_C_CLOSING,		/* u32: close once the reply is out */
};

int conn_record_save(const struct kvd_conn *c, struct baton_rec_writer *w)
{
	int err = baton_rec_begin(w, c->id);

	if (!err && buf_pending(&c->in))
		err = baton_rec_put_bytes(w, KVD1_C_INBUF, c->in.data + c->in.off,
					  buf_pending(&c->in));
	if (!err && buf_pending(&c->out))
		err = baton_rec_put_bytes(w, KVD1_C_OUTBUF,
					  c->out.data + c->out.off,
					  buf_pending(&c->out));
	if (!err && c->name[0])
		err = baton_rec_put_str(w, KVD1_C_NAME, c->name);
	if (!err && c->closing)
		err = baton_rec_put_u32(w, KVD1_C_CLOSING, 1);
	return err ?: baton_rec_end(w);
}

static int conn_attr_cb(const struct nlattr *attr, void *data)
{
	struct kvd_conn *c = data;
	const void *p = mnl_attr_get_payload(attr);
	size_t n = mnl_attr_get_payload_len(attr);

	switch (mnl_attr_get_type(attr)) {
	case KVD1_C_INBUF:
		return buf_append(&c->in, p, n) ? MNL_CB_ERROR : MNL_CB_OK;
	case KVD1_C_OUTBUF:
		return buf_append(&c->out, p, n) ? MNL_CB_ERROR : MNL_CB_OK;
	case KVD1_C_NAME:
		if (mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) < 0 ||
		    n > sizeof(c->name))
			return MNL_CB_ERROR;
		memcpy(c->name, p, n);
		return MNL_CB_OK;
	case KVD1_C_CLOSING:
		if (mnl_attr_validate(attr, MNL_TYPE_U32) < 0)
			return MNL_CB_ERROR;
		c->closing = mnl_attr_get_u32(attr);
		return MNL_CB_OK;
	default:
		return MNL_CB_OK;	/* from a newer kvd */
	}
}

int conn_record_load(struct kvd_conn *c, const struct baton_rec *rec)
{
	return baton_rec_parse(rec, conn_attr_cb, c);
}
#endif
