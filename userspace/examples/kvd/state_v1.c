// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvd 1's connection record: the common fields (conn_record.c) and the
 * client's name. kvd 2 reads it, and kvd 1 skips what kvd 2 adds.
 */
#include <string.h>

#include "kvd.h"

#if KVD_VERSION == 1
enum kvd1_conn_attr {
	KVD1_C_NAME = 3,	/* string: CLIENT SETNAME */
};

int conn_record_save(const struct kvd_conn *c, struct baton_rec_writer *w)
{
	int err = baton_rec_begin(w, c->base.id) ?:
		  conn_record_save_common(c, w);

	if (!err && c->name[0])
		err = baton_rec_put_str(w, KVD1_C_NAME, c->name);
	return err ?: baton_rec_end(w);
}

static int conn_attr_cb(const struct nlattr *attr, void *data)
{
	struct kvd_conn *c = data;
	size_t n = mnl_attr_get_payload_len(attr);
	int taken = conn_record_load_common(c, attr);

	if (taken)
		return taken < 0 ? MNL_CB_ERROR : MNL_CB_OK;
	if (mnl_attr_get_type(attr) == KVD1_C_NAME) {
		if (mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) < 0 ||
		    n > sizeof(c->name))
			return MNL_CB_ERROR;
		memcpy(c->name, mnl_attr_get_payload(attr), n);
	}
	return MNL_CB_OK;	/* anything else is from a newer kvd */
}

int conn_record_load(struct kvd_conn *c, const struct baton_rec *rec)
{
	return baton_rec_parse(rec, conn_attr_cb, c);
}
#endif
