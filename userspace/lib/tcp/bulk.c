// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The bulk state of baton.ko: the complete repair state of many sockets
 * in one dump, and the sockets rebuilt from it in the kernel, a request
 * for as many connections as fit in one.
 *
 * The record is the kernel's own: the BATON_GENL_A_CONN attributes of the
 * dump, one or more per connection (enum baton_conn_attr), concatenated.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <linux/genetlink.h>

#include <linux/baton.h>
#include "internal.h"
#include "tcp/ko.h"

/* reads of a connection that keeps moving, before giving up */
#define EXPORT_TRIES	3
/* the largest request tried; the socket's send buffer may allow less */
#define IMPORT_REQ_MAX	(4 << 20)
/*
 * CONN_IMPORT's reply: { CONN { INDEX, FD or ERROR } } a connection, in
 * one message that must fit what ko_call() reads at once
 */
#define IMPORT_REPLY_CONN	(3 * MNL_ATTR_HDRLEN + 2 * sizeof(__u32))
#define IMPORT_CONNS_MAX	((KO_RECV_BUF - 1024) / IMPORT_REPLY_CONN)
/*
 * An export or import of many connections goes in parts, side by side,
 * each on a channel and in a thread of its own (the first in the
 * caller's), one a CPU: at most this many, of this many connections at
 * least each
 */
#define BULK_PARTS_MAX		4
#define BULK_PART_MIN		32

struct conns_buf {
	struct baton_tcp *tcp;
	char *buf;
	size_t len, cap;
	int err;
};

/* How many parts, one a CPU, each of BULK_PART_MIN connections or more */
static size_t bulk_parts(size_t n)
{
	size_t parts = n / BULK_PART_MIN;
	cpu_set_t set;
	long cpus = 1;

	/* those the process may run on */
	if (!sched_getaffinity(0, sizeof(set), &set))
		cpus = CPU_COUNT(&set);
	if (cpus < 1)
		cpus = 1;
	if (parts > (size_t)cpus)
		parts = cpus;
	if (parts > BULK_PARTS_MAX)
		parts = BULK_PARTS_MAX;
	return parts ?: 1;
}

/*
 * What every part has, first in an export's or an import's: its
 * channel, its connections [first, first + n), what it has to say
 */
struct bulk_part {
	struct baton_tcp *tcp;	/* the caller's, or a clone of it */
	size_t first, n;
	struct ko_ack ack;
	int err;
	bool started;		/* in a thread of its own */
	pthread_t thread;
};

/*
 * The part on a clone of tcp, in a thread of its own, every signal
 * blocked in it: the caller's thread takes the process's signals as
 * before. Without either, the part stays on tcp, for bulk_finish().
 */
static void bulk_start(struct baton_tcp *tcp, struct bulk_part *pt,
		       void *(*run)(void *))
{
	sigset_t all, old;

	pt->tcp = tcp;
	if (tcp_clone(tcp, &pt->tcp))
		return;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pt->started = !pthread_create(&pt->thread, NULL, run, pt);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!pt->started) {
		baton_tcp_close(pt->tcp);
		pt->tcp = tcp;
	}
}

/*
 * Each part not started, in the caller's thread, one after another; then
 * the others, once done: parts, n of them, size bytes each, a struct
 * bulk_part first in each
 */
static void bulk_finish(void *parts, size_t size, size_t n,
			void *(*run)(void *))
{
	size_t i;

	for (i = 0; i < n; i++) {
		struct bulk_part *pt = (void *)((char *)parts + i * size);

		if (!pt->started) {
			run(pt);
			continue;
		}
		pthread_join(pt->thread, NULL);
		baton_tcp_close(pt->tcp);
		pt->started = false;
	}
}

/* A part's failure, from connection from on, in the caller's thread */
static void bulk_say(struct baton_tcp *tcp, const char *what,
		     const struct bulk_part *pt, size_t from)
{
	pr_err(&tcp->log, "%s: connections %zu to %zu: baton.ko: %s%s%s", what,
	       from, pt->first + pt->n - 1, strerror(-pt->err),
	       pt->ack.msg[0] ? ": " : "", pt->ack.msg);
}

/* Each message of the dump: its CONN attribute, appended whole */
static int export_cb(const struct nlmsghdr *nlh, void *data)
{
	struct conns_buf *b = data;
	const struct nlattr *attr;

	mnl_attr_for_each(attr, nlh, sizeof(struct genlmsghdr)) {
		size_t size = MNL_ALIGN(attr->nla_len);

		if (mnl_attr_get_type(attr) != BATON_GENL_A_CONN)
			continue;
		if (mnl_attr_validate(attr, MNL_TYPE_NESTED) < 0) {
			b->err = -EPROTO;	/* a malformed connection */
			return MNL_CB_ERROR;
		}
		if (b->len + size > b->cap) {
			size_t cap = (b->cap ?: 65536) * 2;
			char *p;

			while (cap < b->len + size)
				cap *= 2;
			p = realloc(b->buf, cap);
			if (!p) {
				b->err = -ENOMEM;
				return MNL_CB_ERROR;
			}
			b->buf = p;
			b->cap = cap;
		}
		memcpy(b->buf + b->len, attr, attr->nla_len);
		memset(b->buf + b->len + attr->nla_len, 0,
		       size - attr->nla_len);
		b->len += size;
	}
	return MNL_CB_OK;
}

/* The caller's fds[0, n), connection first of all, on one channel */
struct export_part {
	struct bulk_part p;	/* first: run() is given it */
	const int *fds;
	struct conns_buf b;
};

/* One dump of the part; a connection that moved meanwhile, once more */
static void *export_part_run(void *arg)
{
	struct export_part *pt = arg;
	struct nlmsghdr *nlh;
	void *req;
	size_t i;

	req = calloc(1, MNL_NLMSG_HDRLEN + 64 + pt->p.n * MNL_ATTR_HDRLEN * 2);
	if (!req) {
		pt->p.err = -ENOMEM;
		return NULL;
	}
	nlh = ko_msg(req, pt->p.tcp, BATON_GENL_CMD_CONN_EXPORT);
	nlh->nlmsg_flags |= NLM_F_DUMP;
	for (i = 0; i < pt->p.n; i++)
		mnl_attr_put_u32(nlh, BATON_GENL_A_FD, pt->fds[i]);
	/* frozen or not */
	for (int tries = 0; tries < EXPORT_TRIES; tries++) {
		pt->b.len = 0;
		pt->b.err = 0;
		memset(&pt->p.ack, 0, sizeof(pt->p.ack));
		pt->p.err = ko_call(pt->p.tcp, nlh, export_cb, &pt->b, &pt->p.ack);
		/* the callback's own error first: ko_call()'s is errno's */
		pt->p.err = pt->b.err ?: pt->p.err;
		if (pt->p.err != -EAGAIN)
			break;
	}
	free(req);
	return NULL;
}

/* The part's connections numbered as in the whole: its INDEX moved on */
static void export_part_renumber(struct export_part *pt)
{
	struct nlattr *conn, *a;
	size_t off = 0;

	while (off + MNL_ATTR_HDRLEN <= pt->b.len) {
		conn = (struct nlattr *)(pt->b.buf + off);
		mnl_attr_for_each_nested(a, conn)
			if (mnl_attr_get_type(a) == BATON_CONN_A_INDEX &&
			    mnl_attr_get_payload_len(a) == sizeof(__u32))
				*(__u32 *)mnl_attr_get_payload(a) += pt->p.first;
		off += MNL_ALIGN(conn->nla_len);
	}
}

/*
 * The parts side by side, then, in the caller's thread alone, what they
 * have to say, and their records one after another, as one dump's
 */
int baton_tcp_export_conns(struct baton_tcp *tcp, const int *fds, size_t n,
			   void **rec, size_t *len)
{
	struct export_part pts[BULK_PARTS_MAX] = {};
	size_t parts, i, k = 0, total = 0;
	int err = 0;
	char *buf;

	if (!n)
		return -EINVAL;
	parts = bulk_parts(n);
	for (i = 0; i < parts; i++) {
		struct export_part *pt = &pts[i];
		size_t want = n / parts + (i < n % parts);

		*pt = (struct export_part){
			.p = { .tcp = tcp, .first = k, .n = want },
			.fds = fds + k, .b = { .tcp = tcp },
		};
		k += want;
		if (i)
			bulk_start(tcp, &pt->p, export_part_run);
	}
	bulk_finish(pts, sizeof(pts[0]), parts, export_part_run);
	for (i = 0; i < parts; i++) {
		if (pts[i].p.err)
			bulk_say(tcp, "TCP checkpoint", &pts[i].p,
				 pts[i].p.first);
		err = err ?: pts[i].p.err;
		total += pts[i].b.len;
	}
	buf = err ? NULL : realloc(pts[0].b.buf, total ?: 1);
	if (!err && !buf)
		err = -ENOMEM;
	if (err) {
		/* those already read are in repair mode: back as they were */
		for (i = 0; i < n; i++) {
			int off = TCP_REPAIR_OFF_NO_WP;

			setsockopt(fds[i], SOL_TCP, TCP_REPAIR, &off,
				   sizeof(off));
		}
		for (i = 0; i < parts; i++)
			free(pts[i].b.buf);
		return err;
	}
	for (i = 1, k = pts[0].b.len; i < parts; i++) {
		export_part_renumber(&pts[i]);
		memcpy(buf + k, pts[i].b.buf, pts[i].b.len);
		k += pts[i].b.len;
		free(pts[i].b.buf);
	}
	*rec = buf;
	*len = total;
	return 0;
}

/* The INDEX of a CONN attribute, or -1 */
long long tcp_conn_index(const struct nlattr *conn)
{
	const struct nlattr *attr;

	mnl_attr_for_each_nested(attr, conn) {
		if (mnl_attr_get_type(attr) == BATON_CONN_A_INDEX &&
		    mnl_attr_get_payload_len(attr) == sizeof(__u32))
			return mnl_attr_get_u32(attr);
	}
	return -1;
}

/* The CONN attributes of one connection: from *off, adjacent, one INDEX */
static size_t conn_span(const char *rec, size_t len, size_t off)
{
	const struct nlattr *first = (const void *)(rec + off);
	long long index = tcp_conn_index(first);
	size_t end = off;

	while (end < len) {
		const struct nlattr *a = (const void *)(rec + end);

		if (end > off && tcp_conn_index(a) != index)
			break;
		end += MNL_ALIGN(a->nla_len);
	}
	return end - off;
}

struct import_reply {
	struct baton_tcp *tcp;
	int *fds;
	size_t n, got;
	int err;
};

static int import_attr_cb(const struct nlattr *attr, void *data)
{
	struct import_reply *r = data;
	const struct nlattr *a;
	int fd = -EPROTO;

	if (mnl_attr_get_type(attr) != BATON_GENL_A_CONN)
		return MNL_CB_OK;
	mnl_attr_for_each_nested(a, attr) {
		if (mnl_attr_get_payload_len(a) != sizeof(__u32))
			continue;
		if (mnl_attr_get_type(a) == BATON_CONN_A_FD)
			fd = mnl_attr_get_u32(a);
		else if (mnl_attr_get_type(a) == BATON_CONN_A_ERROR)
			fd = -(int)mnl_attr_get_u32(a);
	}
	if (r->got == r->n) {
		if (fd >= 0)
			close(fd);
		r->err = -EPROTO;
		return MNL_CB_ERROR;
	}
	r->fds[r->got++] = fd;
	return MNL_CB_OK;
}

static int import_cb(const struct nlmsghdr *nlh, void *data)
{
	return mnl_attr_parse(nlh, sizeof(struct genlmsghdr), import_attr_cb,
			      data);
}

/* The largest request the channel's socket takes */
static size_t request_max(struct baton_tcp *tcp)
{
	int fd = mnl_socket_get_fd(tcp->nl), want = IMPORT_REQ_MAX, have;
	socklen_t sl = sizeof(have);

	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &want, sizeof(want)))
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &want, sizeof(want));
	if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &have, &sl) || have < 4096)
		return 4096;
	/* what netlink_sendmsg() allows, less what we are not sure of */
	return (size_t)have - 1024;
}

/*
 * One request: the connections of rec[off, off + len), renumbered from 0,
 * their sockets' descriptors into fds. It says nothing: the kernel's
 * reason goes to *ack, for the caller's thread to log.
 */
static int import_request(struct baton_tcp *tcp, const char *rec, size_t len,
			  int *fds, size_t n, __u32 flags, struct ko_ack *ack)
{
	struct import_reply r = { .tcp = tcp, .fds = fds, .n = n };
	struct nlmsghdr *nlh;
	size_t off, k = 0;
	char *req;
	int err;

	req = malloc(MNL_NLMSG_HDRLEN + 64 + len);
	if (!req)
		return -ENOMEM;
	nlh = ko_msg(req, tcp, BATON_GENL_CMD_CONN_IMPORT);
	if (flags)
		mnl_attr_put_u32(nlh, BATON_GENL_A_FLAGS, flags);
	for (off = 0; off < len;) {
		size_t span = conn_span(rec, len, off), end = off + span;

		while (off < end) {
			const struct nlattr *a = (const void *)(rec + off);
			struct nlattr *copy = mnl_nlmsg_get_payload_tail(nlh);
			struct nlattr *attr;

			memcpy(copy, a, MNL_ALIGN(a->nla_len));
			nlh->nlmsg_len += MNL_ALIGN(a->nla_len);
			mnl_attr_for_each_nested(attr, copy) {
				if (mnl_attr_get_type(attr) == BATON_CONN_A_INDEX)
					*(__u32 *)mnl_attr_get_payload(attr) = k;
			}
			off += MNL_ALIGN(a->nla_len);
		}
		k++;
	}
	err = ko_call(tcp, nlh, import_cb, &r, ack);
	free(req);
	/* the callback's own error first: ko_call()'s is then errno's */
	if (r.err) {
		snprintf(ack->msg, sizeof(ack->msg),
			 "it made more sockets than asked");
		err = r.err;
	} else if (!err && r.got != n) {
		snprintf(ack->msg, sizeof(ack->msg),
			 "it made %zu sockets of %zu asked", r.got, n);
		err = -EPROTO;
	}
	if (err) {
		/* what it made, not ours to keep: the caller sees errors */
		for (k = 0; k < r.got; k++)
			if (fds[k] >= 0)
				close(fds[k]);
	}
	return err;
}

/* A record's connections, its bytes rec[0, len), imported on one channel */
struct import_part {
	struct bulk_part p;	/* first: run() is given it */
	const char *rec;
	size_t len;
	int *fds;
	__u32 flags;
	size_t answered;	/* fds[0, answered) are the module's answers */
};

/*
 * As many whole connections as a request takes, a request after another,
 * each as large as the part's channel takes
 */
static void *import_part_run(void *arg)
{
	struct import_part *pt = arg;
	size_t off = 0, k = 0, i, max = request_max(pt->p.tcp);

	while (off < pt->len) {
		size_t start = off, conns = 0;

		while (off < pt->len) {
			size_t span = conn_span(pt->rec, pt->len, off);

			if (conns && (off + span - start + 64 > max ||
				      conns == IMPORT_CONNS_MAX))
				break;
			off += span;
			conns++;
		}
		if (off - start + 64 > max) {
			snprintf(pt->p.ack.msg, sizeof(pt->p.ack.msg),
				 "connection %zu takes %zu bytes, more than one request may (%zu)",
				 pt->p.first + k, off - start, max);
			pt->p.err = -EMSGSIZE;
		} else {
			pt->p.err = import_request(pt->p.tcp, pt->rec + start,
						 off - start, pt->fds + k,
						 conns, pt->flags, &pt->p.ack);
		}
		if (pt->p.err) {
			for (i = k; i < pt->p.n; i++)
				pt->fds[i] = pt->p.err;
			return NULL;
		}
		k += conns;
		pt->answered = k;
	}
	return NULL;
}

/* Checks the record's shape and counts its connections */
static long long conns_count(struct baton_tcp *tcp, const char *rec,
			     size_t len)
{
	long long n = 0;
	size_t off = 0;

	while (off < len) {
		const struct nlattr *a = (const void *)(rec + off);

		if (len - off < MNL_ATTR_HDRLEN || a->nla_len < MNL_ATTR_HDRLEN ||
		    a->nla_len > len - off ||
		    mnl_attr_get_type(a) != BATON_GENL_A_CONN ||
		    tcp_conn_index(a) < 0) {
			pr_err(&tcp->log,
			       "TCP connections record is truncated or malformed at byte %zu",
			       off);
			return -EINVAL;
		}
		off += conn_span(rec, len, off);
		n++;
	}
	return n;
}

size_t tcp_conn_span(const void *rec, size_t len, size_t off)
{
	return conn_span(rec, len, off);
}

int baton_tcp_import_conns(struct baton_tcp *tcp, const void *rec,
			   size_t len, int *fds, size_t n)
{
	return baton_tcp_import_conns_flags(tcp, rec, len, fds, n, 0);
}

/*
 * The caller's descriptor table grown now to take n more sockets: grown
 * while threads share it, it waits for an RCU grace period each time
 * (expand_fdtable()), 50 ms in all for 1,000 sockets in the VM
 */
static void fdtable_reserve(struct baton_tcp *tcp, size_t n)
{
	int fd = mnl_socket_get_fd(tcp->nl), low, high;
	struct rlimit rl;
	size_t top;

	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur < 1)
		return;
	low = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (low < 0)
		return;
	/* the sockets, and the parts' channels opened before them */
	top = low + n - 1 + BULK_PARTS_MAX - 1;
	if (top > rl.rlim_cur - 1)
		top = rl.rlim_cur - 1;	/* the import will say EMFILE */
	high = fcntl(fd, F_DUPFD_CLOEXEC, (int)top);
	close(low);
	if (high >= 0)
		close(high);
}

/*
 * The parts side by side; then, in the caller's thread alone, what each
 * has to say: the kernel's reason for a request that failed, and each
 * connection reset after leaving repair mode.
 */
int baton_tcp_import_conns_flags(struct baton_tcp *tcp, const void *rec,
				 size_t len, int *fds, size_t n, __u32 flags)
{
	struct import_part pts[BULK_PARTS_MAX] = {};
	long long count = conns_count(tcp, rec, len);
	size_t parts, off = 0, i, j, k = 0;
	int err = 0;

	if (count >= 0 && (size_t)count != n) {
		pr_err(&tcp->log, "TCP connections record holds %lld connections, not %zu",
		       count, n);
		count = -EINVAL;
	}
	if (count < 0) {
		/* none made: each says so, as the caller reads fds[] */
		for (i = 0; i < n; i++)
			fds[i] = count;
		return count;
	}
	parts = bulk_parts(n);
	if (parts > 1)
		fdtable_reserve(tcp, n);
	for (i = 0; i < parts; i++) {
		struct import_part *pt = &pts[i];
		size_t want = n / parts + (i < n % parts), start = off;

		for (j = 0; j < want; j++)
			off += conn_span(rec, len, off);
		*pt = (struct import_part){
			.p = { .tcp = tcp, .first = k, .n = want },
			.rec = (const char *)rec + start, .len = off - start,
			.fds = fds + k, .flags = flags,
		};
		k += want;
		if (i)
			bulk_start(tcp, &pt->p, import_part_run);
	}
	bulk_finish(pts, sizeof(pts[0]), parts, import_part_run);
	for (i = 0; i < parts; i++) {
		struct import_part *pt = &pts[i];

		if (pt->p.err)
			bulk_say(tcp, "TCP restore", &pt->p,
				 pt->p.first + pt->answered);
		for (j = 0; j < pt->answered; j++)
			if (pt->fds[j] < 0)
				pr_err(&tcp->log,
				       "TCP restore: connection %zu was reset after leaving repair mode: %s",
				       pt->p.first + j, strerror(-pt->fds[j]));
		err = err ?: pt->p.err;
	}
	for (i = 0; !err && i < n; i++)
		if (fds[i] < 0)
			err = fds[i];
	return err;
}
