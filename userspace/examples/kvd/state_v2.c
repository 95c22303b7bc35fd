// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvd 2's connection record: v1's "name" is "client_name" here (the same
 * attribute number, so v1 and v2 still understand each other), and v2 adds
 * the count of commands served on the connection, which v1 skips. Reading
 * a v1 record, the count starts at 0.
 */
#include <string.h>

#include "kvd.h"

#if KVD_VERSION == 2
enum kvd2_conn_attr {
	KVD2_C_CLIENT_NAME = 3,	/* string: CLIENT SETNAME ("NAME" in v1) */
	KVD2_C_CMDS = 5,	/* u64, new in v2: commands served */
};

int conn_record_save(const struct kvd_conn *c, struct baton_rec_writer *w)
{
	int err = baton_rec_begin(w, c->base.id) ?:
		  conn_record_save_common(c, w);

	if (!err && c->client_name[0])
		err = baton_rec_put_str(w, KVD2_C_CLIENT_NAME, c->client_name);
	if (!err)
		err = baton_rec_put_u64(w, KVD2_C_CMDS, c->cmds);
	return err ?: baton_rec_end(w);
}

static int conn_attr_cb(const struct nlattr *attr, void *data)
{
	struct kvd_conn *c = data;
	size_t n = mnl_attr_get_payload_len(attr);
	int taken = conn_record_load_common(c, attr);

	if (taken)
		return taken < 0 ? MNL_CB_ERROR : MNL_CB_OK;
	switch (mnl_attr_get_type(attr)) {
	case KVD2_C_CLIENT_NAME:
		if (mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) < 0 ||
		    n > sizeof(c->client_name))
			return MNL_CB_ERROR;
		memcpy(c->client_name, mnl_attr_get_payload(attr), n);
		break;
	case KVD2_C_CMDS:
		if (n != sizeof(__u64))
			return MNL_CB_ERROR;
		c->cmds = mnl_attr_get_u64(attr);
		break;
	}
	return MNL_CB_OK;	/* anything else is from a newer kvd */
}

int conn_record_load(struct kvd_conn *c, const struct baton_rec *rec)
{
	c->cmds = 0;
	return baton_rec_parse(rec, conn_attr_cb, c);
}
#endif
