// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvd 2's per-connection record: v1's "name" is "client_name" here (same
 * attribute number, so v1 and v2 still understand each other) and v2 adds
 * the count of commands served on the connection, which v1 skips. Reading a
 * v1 record, the count starts at 0.
 */
#include <errno.h>
#include <string.h>

#include "kvd.h"

#if KVD_VERSION == 2
enum kvd2_conn_attr {
	KVD2_C_UNSPEC,
	KVD2_C_INBUF,		/* bytes: a request read but not complete */
	KVD2_C_OUTBUF,		/* bytes: a reply not written yet */
	KVD2_C_CLIENT_NAME,	/* string: CLIENT SETNAME ("NAME" in v1) */
	KVD2_C_CLOSING,		/* u32: close once the reply is out */
	KVD2_C_CMDS,		/* u64, new in v2: commands served */
};

int conn_record_save(const struct kvd_conn *c, struct baton_rec_writer *w)
{
	int err = baton_rec_begin(w, c->id);

	if (!err && buf_pending(&c->in))
		err = baton_rec_put_bytes(w, KVD2_C_INBUF, c->in.data + c->in.off,
					  buf_pending(&c->in));
	if (!err && buf_pending(&c->out))
		err = baton_rec_put_bytes(w, KVD2_C_OUTBUF,
					  c->out.data + c->out.off,
					  buf_pending(&c->out));
	if (!err && c->client_name[0])
		err = baton_rec_put_str(w, KVD2_C_CLIENT_NAME, c->client_name);
	if (!err && c->closing)
		err = baton_rec_put_u32(w, KVD2_C_CLOSING, 1);
	if (!err)
		err = baton_rec_put_u64(w, KVD2_C_CMDS, c->cmds);
	return err ?: baton_rec_end(w);
}

static int conn_attr_cb(const struct nlattr *attr, void *data)
{
	struct kvd_conn *c = data;
	const void *p = mnl_attr_get_payload(attr);
	size_t n = mnl_attr_get_payload_len(attr);

	switch (mnl_attr_get_type(attr)) {
	case KVD2_C_INBUF:
		return buf_append(&c->in, p, n) ? MNL_CB_ERROR : MNL_CB_OK;
	case KVD2_C_OUTBUF:
		return buf_append(&c->out, p, n) ? MNL_CB_ERROR : MNL_CB_OK;
	case KVD2_C_CLIENT_NAME:
		if (mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) < 0 ||
		    n > sizeof(c->client_name))
			return MNL_CB_ERROR;
		memcpy(c->client_name, p, n);
		return MNL_CB_OK;
	case KVD2_C_CLOSING:
		if (mnl_attr_validate(attr, MNL_TYPE_U32) < 0)
			return MNL_CB_ERROR;
		c->closing = mnl_attr_get_u32(attr);
		return MNL_CB_OK;
	case KVD2_C_CMDS:
		if (mnl_attr_validate(attr, MNL_TYPE_U64) < 0)
			return MNL_CB_ERROR;
		c->cmds = mnl_attr_get_u64(attr);
		return MNL_CB_OK;
	default:
		return MNL_CB_OK;	/* from a newer kvd */
	}
}

int conn_record_load(struct kvd_conn *c, const struct baton_rec *rec)
{
	c->cmds = 0;
	return baton_rec_parse(rec, conn_attr_cb, c);
}
#endif
