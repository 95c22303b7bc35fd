// SPDX-License-Identifier: GPL-2.0-only
/*
 * The fields of kvd's connection record that every version writes the same
 * way. What a version renamed or added is in state_v1.c and state_v2.c.
 */
#include <errno.h>

#include "kvd.h"

enum kvd_conn_attr_common {
	KVD_C_INBUF = 1,	/* bytes: a request read but not complete */
	KVD_C_OUTBUF = 2,	/* bytes: a reply not written yet */
	/* 3: the client's name, see state_v1.c and state_v2.c */
	KVD_C_CLOSING = 4,	/* u32: close once the reply is out */
};

int conn_record_save_common(const struct kvd_conn *c,
			    struct baton_rec_writer *w)
{
	const struct buf *in = &c->base.in, *out = &c->base.out;
	int err = 0;

	if (buf_pending(in))
		err = baton_rec_put_bytes(w, KVD_C_INBUF, in->data + in->off,
					  buf_pending(in));
	if (!err && buf_pending(out))
		err = baton_rec_put_bytes(w, KVD_C_OUTBUF, out->data + out->off,
					  buf_pending(out));
	if (!err && c->closing)
		err = baton_rec_put_u32(w, KVD_C_CLOSING, 1);
	return err;
}

int conn_record_load_common(struct kvd_conn *c, const struct nlattr *attr)
{
	const void *p = mnl_attr_get_payload(attr);
	size_t n = mnl_attr_get_payload_len(attr);

	switch (mnl_attr_get_type(attr)) {
	case KVD_C_INBUF:
		return buf_append(&c->base.in, p, n) ? -ENOMEM : 1;
	case KVD_C_OUTBUF:
		return buf_append(&c->base.out, p, n) ? -ENOMEM : 1;
	case KVD_C_CLOSING:
		if (n != sizeof(__u32))
			return -EINVAL;
		c->closing = mnl_attr_get_u32(attr);
		return 1;
	default:
		return 0;
	}
}
