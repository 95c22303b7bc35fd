/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * httpd: a small HTTP/1.1 keep-alive server of static files, built on
 * libbaton so that batonctl can upgrade it in place, every connection with
 * the request it was reading and the response it was writing.
 */
#ifndef HTTPD_H
#define HTTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <linux/types.h>

#include "baton.h"
#include "../common/server.h"

#ifndef HTTPD_VERSION
#error "build with -DHTTPD_VERSION=1 or 2"
#endif

#define HTTPD_MAX_HEAD		8192	/* a longer request head: 431 */
#define HTTPD_IN_HIGH		65536	/* stop reading above this */
#define HTTPD_MAX_PATH		1024	/* a file's path under the root */

/* Who the file being sent is: the new instance checks it is the same. */
struct file_id {
	__u64 dev, ino, size, mtime_ns;
};

/*
 * One connection. A response is its head (and any small body) in out,
 * then, for a file, the bytes [off, end) of file, sent with sendfile().
 */
struct conn {
	struct srv_conn base;
	int file;		/* -1: no file body pending */
	char path[HTTPD_MAX_PATH];	/* the file, relative to the root */
	struct file_id fid;
	__u64 off, end;
	__u64 requests;		/* answered on this connection */
#if HTTPD_VERSION >= 2
	__u64 body_bytes;	/* new in v2: file bytes sent on it */
#endif
	bool closing;		/* close once the response is out */
	bool eof;		/* the client sent all it will */
};

static inline struct conn *conn_of(struct srv_conn *c)
{
	return srv_entry(c, struct conn, base);
}

static inline bool conn_busy(const struct conn *c)
{
	return buf_pending(&c->base.out) || c->file >= 0;
}

struct httpd {
	struct srv srv;
	int root;		/* the document root, O_PATH */
	__u64 requests;		/* answered by the service, all versions */
	time_t date_sec;	/* the Date header, made once a second */
	char date[40];
};

static inline struct httpd *httpd_of(struct srv *s)
{
	return srv_entry(s, struct httpd, srv);
}

/* conn.c: a connection's requests and responses, for struct srv_ops */
void httpd_conn_init(struct srv_conn *sc);
void httpd_conn_release(struct srv_conn *sc);
void httpd_conn_io(struct srv *s, struct srv_conn *sc, unsigned int events);
void httpd_conn_kick(struct srv *s, struct srv_conn *sc);
void conn_file_close(struct conn *c);

/* http.c: answers the request at the front of c->in, if it is whole */
int http_respond(struct httpd *h, struct conn *c);
/* opens path under the root and checks what it is: a regular file */
int http_open(struct httpd *h, const char *path, struct file_id *fid);

/* handover.c */
extern const struct baton_app_ops httpd_baton_ops;
int httpd_conn_save(const struct srv_conn *c, struct baton_rec_writer *w);
int httpd_conn_load(struct srv *s, struct srv_conn *c,
		    const struct baton_rec *rec);

/* conn_record.c: one connection's record, and reading it back */
int conn_record_save(const struct conn *c, struct baton_rec_writer *w);
int conn_record_load(struct httpd *h, struct conn *c,
		     const struct baton_rec *rec);

#endif /* HTTPD_H */
