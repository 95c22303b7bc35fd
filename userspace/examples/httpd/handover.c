// SPDX-License-Identifier: GPL-2.0-only
/*
 * httpd's side of a baton handover: its service-wide record, the count of
 * requests answered, and the connection record's glue; the rest of the
 * callbacks are the examples' common ones (../common/handover.c).
 */
#include "httpd.h"

/* The service-wide record: one, its id unused. */
enum httpd_state_attr {
	HTTPD_S_REQUESTS = 1,	/* u64: requests answered by the service */
};

static int save_requests(struct httpd *h, struct baton_rec_writer *w)
{
	return baton_rec_begin(w, 0) ?:
	       baton_rec_put_u64(w, HTTPD_S_REQUESTS, h->requests) ?:
	       baton_rec_end(w);
}

/* The count in phase 1, and again, as it is then, in the blackout. */
static int save_state(void *app, struct baton_rec_writer *w)
{
	return save_requests(httpd_of(app), w);
}

static int save_delta(void *app, struct baton_rec_writer *w)
{
	return save_requests(httpd_of(app), w);
}

static int state_attr_cb(const struct nlattr *attr, void *data)
{
	struct httpd *h = data;

	if (mnl_attr_get_type(attr) == HTTPD_S_REQUESTS) {
		if (mnl_attr_get_payload_len(attr) != sizeof(__u64))
			return MNL_CB_ERROR;
		h->requests = mnl_attr_get_u64(attr);
	}
	return MNL_CB_OK;	/* anything else is from a newer httpd */
}

static int load_state(void *app, const struct baton_rec *rec)
{
	return baton_rec_parse(rec, state_attr_cb, httpd_of(app));
}

int httpd_conn_save(const struct srv_conn *c, struct baton_rec_writer *w)
{
	return conn_record_save(srv_entry(c, const struct conn, base), w);
}

int httpd_conn_load(struct srv *s, struct srv_conn *c,
		    const struct baton_rec *rec)
{
	return conn_record_load(httpd_of(s), conn_of(c), rec);
}

const struct baton_app_ops httpd_baton_ops = {
	.export_sockets	= srv_export_sockets,
	.save_state	= save_state,
	.deactivate	= srv_deactivate,
	.save_conns	= srv_save_conns,
	.save_conns_changed = srv_save_conns_changed,
	.save_delta	= save_delta,
	.resume		= srv_resume,
	.terminate	= srv_terminate,
	.drain		= srv_drain,
	.adopt_socket	= srv_adopt_socket,
	.load_state	= load_state,
	.load_conn	= srv_load_conn,
	.drop_conn	= srv_drop_conn,
	.activate	= srv_activate,
};
