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
#include "../common/buf.h"

#ifndef HTTPD_VERSION
#error "build with -DHTTPD_VERSION=1 or 2"
#endif

#define HTTPD_MAX_LISTENERS	8
#define HTTPD_MAX_HEAD		8192	/* a longer request head: 431 */
#define HTTPD_IN_HIGH		65536	/* stop reading above this */
#define HTTPD_MAX_PATH		1024	/* a file's path under the root */

enum handle_kind { H_BATON, H_LISTENER, H_CONN };

struct handle {
	enum handle_kind kind;
};

struct listener {
	struct handle h;
	int fd;
	__u64 id;
};

/* Who the file being sent is: the new instance checks it is the same. */
struct file_id {
	__u64 dev, ino, size, mtime_ns;
};

/*
 * One connection. A response is its head (and any small body) in out,
 * then, for a file, the bytes [off, end) of file, sent with sendfile().
 */
struct conn {
	struct handle h;
	int fd;
	__u64 id;
	struct buf in, out;
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
	unsigned int events;	/* what epoll watches for */
	bool unclaimed;		/* adopted, no record yet */
};

static inline bool conn_busy(const struct conn *c)
{
	return buf_pending(&c->out) || c->file >= 0;
}

struct httpd {
	struct baton_service *svc;
	int ep;
	int root;		/* the document root, O_PATH */
	struct handle baton_h;
	struct listener listeners[HTTPD_MAX_LISTENERS];
	unsigned int nlisteners;
	struct conn **conns;	/* by fd */
	unsigned int maxfd;
	unsigned int nconns;
	__u64 next_id;
	__u64 requests;		/* answered by the service, all versions */
	struct conn **by_id;	/* sorted, while loading records */
	unsigned int nby_id;
	bool accepting;
	bool draining;
	bool kick;		/* serve what adopted connections hold */
	time_t date_sec;	/* the Date header, made once a second */
	char date[40];
};

/* conn.c */
int conn_add(struct httpd *h, int fd, __u64 id, struct conn **out);
void conn_close(struct httpd *h, struct conn *c);
void conns_close_all(struct httpd *h);
void conn_io(struct httpd *h, struct conn *c, unsigned int events);
void conn_kick(struct httpd *h, struct conn *c);
void conn_file_close(struct conn *c);
int listeners_watch(struct httpd *h, bool on);

/* http.c: answers the request at the front of c->in, if it is whole */
int http_respond(struct httpd *h, struct conn *c);
/* opens path under the root and checks what it is: a regular file */
int http_open(struct httpd *h, const char *path, struct file_id *fid);

/* handover.c */
extern const struct baton_app_ops httpd_baton_ops;

/* conn_record.c: one connection's record, and reading it back */
int conn_record_save(const struct conn *c, struct baton_rec_writer *w);
int conn_record_load(struct httpd *h, struct conn *c,
		     const struct baton_rec *rec);

#endif /* HTTPD_H */
