// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Checkpoint files (baton_proto.h, BATON_FILE_VERSION): written by
 * file_write() alone and read by file_load() alone, which checks the whole
 * file (its format version, every record whole, the checksum, each blob's
 * frame, each connection's checkpoint) before anything uses it; and the
 * machine a checkpoint belongs to, recorded by file_here() and compared
 * by file_check_here().
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <linux/baton.h>
#include "coordinator/coordinator.h"
#include "tcp/tcp.h"

#define BOOT_ID_PATH	"/proc/sys/kernel/random/boot_id"

/* CRC-32 (IEEE 802.3, reflected 0xedb88320), as zlib's crc32() */
__u32 crc32_add(__u32 crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	int k;

	crc = ~crc;
	while (len--) {
		crc ^= *p++;
		for (k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xedb88320U & -(crc & 1));
	}
	return ~crc;
}

struct sum {
	int fd;
	__u32 crc;
	__u64 bytes;
};

static int sum_write(struct sum *s, const void *buf, size_t len)
{
	const char *p = buf;
	size_t off = 0;

	s->crc = crc32_add(s->crc, buf, len);
	s->bytes += len;
	while (off < len) {
		ssize_t n = write(s->fd, p + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		off += n;
	}
	return 0;
}

static int put_str(struct baton_rec_writer *w, __u16 type, const char *s)
{
	return baton_rec_put_str(w, type, s);
}

/* FILE and the LISTENERs */
static int frame_head(struct baton_rec_writer *w, const struct baton_checkpoint *ck)
{
	const struct baton_checkpoint_info *in = &ck->info;
	unsigned int i;
	int err;

	err = writer_open_rec(w, BATON_REC_FILE, 0) ?:
	      baton_rec_put_u32(w, BATON_A_FILE_VERSION, BATON_FILE_VERSION) ?:
	      put_str(w, BATON_A_SERVICE, in->service) ?:
	      put_str(w, BATON_A_APP, in->app) ?:
	      baton_rec_put_u32(w, BATON_A_PID, in->pid) ?:
	      baton_rec_put_u32(w, BATON_A_PROTO, ck->ver.proto) ?:
	      baton_rec_put_u32(w, BATON_A_PROTO_MIN, ck->ver.proto_min) ?:
	      baton_rec_put_u32(w, BATON_A_STATE_VERSION, ck->ver.state) ?:
	      baton_rec_put_u32(w, BATON_A_STATE_COMPAT, ck->ver.compat) ?:
	      baton_rec_put_u32(w, BATON_A_STATE_MIN, ck->ver.min) ?:
	      baton_rec_put_u64(w, BATON_A_REALTIME_NS, in->realtime_ns) ?:
	      baton_rec_put_u64(w, BATON_A_DEADLINE_NS, in->deadline_ns) ?:
	      baton_rec_put_u32(w, BATON_A_FREEZE_ID, in->freeze_id) ?:
	      baton_rec_put_u32(w, BATON_A_FREEZE_MS, in->freeze_ms) ?:
	      baton_rec_put_u32(w, BATON_A_CKPT_FORMAT, in->ckpt_format) ?:
	      baton_rec_put_u32(w, BATON_A_LISTENERS, ck->nlsn) ?:
	      baton_rec_put_u32(w, BATON_A_CONNS, in->conns) ?:
	      baton_rec_put_u32(w, BATON_A_RECORDS, ck->nblobs) ?:
	      put_str(w, BATON_A_KERNEL, in->kernel) ?:
	      put_str(w, BATON_A_BOOT_ID, in->boot_id) ?:
	      baton_rec_put_u64(w, BATON_A_NETNS, in->netns) ?:
	      baton_rec_put_u32(w, BATON_A_GENL_VERSION, in->genl_version) ?:
	      baton_rec_put_u32(w, BATON_A_GENL_MAXATTR, in->genl_maxattr) ?:
	      (in->flags ? baton_rec_put_u32(w, BATON_A_FLAGS, in->flags) : 0) ?:
	      writer_close_rec(w);
	for (i = 0; !err && i < ck->nlsn; i++) {
		const struct file_listener *l = &ck->lsn[i];

		err = writer_open_rec(w, BATON_REC_LISTENER, l->id) ?:
		      baton_rec_put_bytes(w, BATON_SOCK_A_LOCAL, &l->local,
					  l->local_len) ?:
		      baton_rec_put_u32(w, BATON_SOCK_A_V6ONLY, l->v6only) ?:
		      baton_rec_put_u32(w, BATON_SOCK_A_FILE_FLAGS,
					l->file_flags) ?:
		      writer_close_rec(w);
	}
	return err;
}

static int blob_copy(struct sum *s, int memfd)
{
	struct stat st;
	void *map;
	int err;

	if (fstat(memfd, &st) < 0)
		return -errno;
	if (!st.st_size)
		return -EBADMSG;
	map = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, memfd, 0);
	if (map == MAP_FAILED)
		return -errno;
	err = sum_write(s, map, st.st_size);
	munmap(map, st.st_size);
	return err;
}

int file_write(int fd, const struct baton_checkpoint *ck)
{
	struct baton_rec_writer w = {};
	struct sum s = { .fd = fd };
	unsigned int i;
	int err;

	err = frame_head(&w, ck) ?: sum_write(&s, w.buf, w.len);
	for (i = 0; !err && i < ck->nblobs; i++)
		err = blob_copy(&s, ck->blobs[i].memfd);
	w.len = 0;
	err = err ?: writer_open_rec(&w, BATON_REC_FILE_END, 0) ?:
	      baton_rec_put_u64(&w, BATON_A_BYTES, s.bytes) ?:
	      baton_rec_put_u32(&w, BATON_A_CRC32, s.crc) ?:
	      writer_close_rec(&w) ?: sum_write(&s, w.buf, w.len);
	writer_free(&w);
	if (!err && fsync(fd) < 0)
		err = -errno;
	return err;
}

int file_blob_add(struct baton_checkpoint *ck, __u32 kind, __u32 records,
		  int memfd)
{
	struct file_blob *b;

	b = realloc(ck->blobs, (ck->nblobs + 1) * sizeof(*b));
	if (!b)
		return -ENOMEM;
	ck->blobs = b;
	b[ck->nblobs++] = (struct file_blob){ kind, records, memfd };
	return 0;
}

void file_free(struct baton_checkpoint *ck)
{
	unsigned int i;

	for (i = 0; i < ck->nblobs; i++)
		if (ck->blobs[i].memfd >= 0)
			close(ck->blobs[i].memfd);
	free(ck->blobs);
	free(ck->lsn);
	free(ck->conns);
	memset(ck, 0, sizeof(*ck));
}

static __u64 netns_inode(void)
{
	struct stat st;

	return stat("/proc/self/ns/net", &st) ? 0 : st.st_ino;
}

static void boot_id(char *buf, size_t len)
{
	ssize_t n = -1;
	int fd;

	fd = open(BOOT_ID_PATH, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, buf, len - 1);
		close(fd);
	}
	buf[n > 0 ? n : 0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
}

/*
 * What the kernel's encodings of this checkpoint depend on, here and now;
 * baton.ko's family through tcp, if not NULL
 */
void file_here(struct baton_checkpoint_info *in, const struct baton_tcp *tcp)
{
	struct utsname u;

	if (!uname(&u))
		snprintf(in->kernel, sizeof(in->kernel), "%s", u.release);
	boot_id(in->boot_id, sizeof(in->boot_id));
	in->netns = netns_inode();
	in->genl_version = tcp ? tcp->version : 0;
	in->genl_maxattr = tcp ? tcp->maxattr : 0;
}

/*
 * One made for a restart (BATON_CHECKPOINT_F_RESTART), in a later boot:
 * nothing of the old kernel's is left (freeze, namespace, clock), and the
 * encodings of its connections are baton.ko's family's, which must be the
 * one that exported them
 */
static int check_other_boot(struct baton_checkpoint *ck,
			    const struct baton_checkpoint_info *here,
			    char *why, size_t len)
{
	const struct baton_checkpoint_info *in = &ck->info;

	if (in->conns && here->genl_version != in->genl_version) {
		snprintf(why, len, "its connections were exported by baton.ko's family version %u (kernel %s), and the baton.ko loaded here speaks version %u (kernel %s): load a baton.ko of version %u",
			 in->genl_version, in->kernel, here->genl_version,
			 here->kernel, in->genl_version);
		return -EPROTONOSUPPORT;
	}
	ck->other_boot = true;
	return 0;
}

/*
 * Whether its connections can be restored here: why not, if not. One
 * made for a restart and restored in another boot is marked other_boot.
 */
int file_check_here(struct baton_checkpoint *ck, struct baton_tcp *tcp,
		    char *why, size_t len)
{
	const struct baton_checkpoint_info *in = &ck->info;
	struct baton_checkpoint_info here = {};
	struct baton_freeze_stats fs;
	__u64 now = now_ns();

	file_here(&here, tcp);
	if (strcmp(here.boot_id, in->boot_id)) {
		if (in->flags & BATON_CHECKPOINT_F_RESTART)
			return check_other_boot(ck, &here, why, len);
		snprintf(why, len, "it was made before the machine restarted (boot %s, now %s), not for a restart ('batonctl kexec' makes those): its connections are gone",
			 in->boot_id, here.boot_id);
		return -ESTALE;
	}
	if (here.netns != in->netns) {
		snprintf(why, len, "it was made in network namespace %llu, and this is %llu: its connections are frozen there; restore it from that namespace",
			 (unsigned long long)in->netns,
			 (unsigned long long)here.netns);
		return -EXDEV;
	}
	if (in->conns && now >= in->deadline_ns) {
		snprintf(why, len, "its freeze expired %.1f s ago (it lasted %u ms): baton.ko let the peers' segments through to no socket, and they were reset",
			 (now - in->deadline_ns) / 1e9, in->freeze_ms);
		return -ETIME;
	}
	if (in->conns && here.genl_version != in->genl_version) {
		snprintf(why, len, "baton.ko's family is version %u here, and the connections were exported by version %u",
			 here.genl_version, in->genl_version);
		return -EPROTONOSUPPORT;
	}
	/* a freeze is known by its id alone: none at all is a sure sign */
	if (in->conns && tcp && !baton_tcp_freeze_stats(tcp, &fs) &&
	    !fs.freezes) {
		snprintf(why, len, "no freeze is in force in this network namespace: the checkpoint was restored already, or baton.ko was reloaded since");
		return -ESTALE;
	}
	return 0;
}

/* The file mapped, and where the reading is */
struct reader {
	const char *path;
	const char *map;
	size_t size, off;
	char *why;
	size_t why_len;
};

static int bad(struct reader *r, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int bad(struct reader *r, int err, const char *fmt, ...)
{
	int n = snprintf(r->why, r->why_len, "%s: ", r->path);
	va_list ap;

	if (n < 0 || (size_t)n >= r->why_len)
		return err;
	va_start(ap, fmt);
	vsnprintf(r->why + n, r->why_len - n, fmt, ap);
	va_end(ap);
	return err;
}

static const struct nlmsghdr *rec_at(const struct reader *r)
{
	return (const struct nlmsghdr *)(r->map + r->off);
}

/*
 * Whether the file ends as a whole one does, with the FILE_END record
 * file_write() makes: if it does, a record that runs past the end was
 * damaged, not cut short
 */
static bool ends_whole(const struct reader *r)
{
	size_t end = FILE_END_LEN;
	const struct nlmsghdr *nlh;

	if (r->size < end || (r->size - end) % NLMSG_ALIGNTO)
		return false;
	nlh = (const void *)(r->map + r->size - end);
	return nlh->nlmsg_type == BATON_REC_FILE_END && nlh->nlmsg_len == end;
}

/* The next record, whole; NULL at the end of the file */
static int rec_next(struct reader *r, const struct nlmsghdr **nlh)
{
	size_t left = r->size - r->off;

	*nlh = NULL;
	if (!left)
		return 0;
	if (!rec_ok(rec_at(r), left > INT_MAX ? INT_MAX : left) &&
	    ends_whole(r))
		return bad(r, -EBADMSG, "corrupt: the length of the record at byte %zu runs past the end (%zu): damaged since it was written",
			   r->off, r->size);
	if (!rec_ok(rec_at(r), left > INT_MAX ? INT_MAX : left))
		return bad(r, -EBADMSG, "truncated: it ends inside the record at byte %zu of %zu (an interrupted write or copy?)",
			   r->off, r->size);
	if (rec_attrs_ok(rec_at(r)))
		return bad(r, -EBADMSG, "corrupt: the record at byte %zu holds malformed attributes",
			   r->off);
	*nlh = rec_at(r);
	r->off += MNL_ALIGN((*nlh)->nlmsg_len);
	if (r->off > r->size)
		r->off = r->size;
	return 0;
}

static void str_of(char *dst, size_t len, const struct nlattr *a)
{
	snprintf(dst, len, "%s", a ? (const char *)mnl_attr_get_payload(a) : "");
}

static int head_parse(struct reader *r, const struct nlmsghdr *nlh,
		      struct baton_checkpoint *ck)
{
	const struct nlattr *tb[BATON_A_MAX + 1];
	struct baton_checkpoint_info *in = &ck->info;
	static const int need[] = {
		BATON_A_SERVICE, BATON_A_PROTO, BATON_A_STATE_VERSION,
		BATON_A_CKPT_FORMAT, BATON_A_CONNS, BATON_A_LISTENERS,
		BATON_A_RECORDS, BATON_A_BOOT_ID, BATON_A_NETNS,
		BATON_A_DEADLINE_NS,
	};
	unsigned int i;

	if (frame_parse(nlh, tb))
		return bad(r, -EBADMSG, "corrupt: its FILE record holds a malformed attribute");
	if (!tb[BATON_A_FILE_VERSION])
		return bad(r, -EINVAL, "not a baton checkpoint file: its first record says no format version");
	in->file_version = mnl_attr_get_u32(tb[BATON_A_FILE_VERSION]);
	if (in->file_version != BATON_FILE_VERSION)
		return bad(r, -EPROTONOSUPPORT, "a checkpoint of format version %u; this libbaton reads version %u only: restore it with the baton release that wrote it",
			   in->file_version, BATON_FILE_VERSION);
	for (i = 0; i < ARRAY_SIZE(need); i++)
		if (!tb[need[i]])
			return bad(r, -EBADMSG, "corrupt: its FILE record lacks attribute %d",
				   need[i]);
	str_of(in->service, sizeof(in->service), tb[BATON_A_SERVICE]);
	str_of(in->app, sizeof(in->app), tb[BATON_A_APP]);
	str_of(in->kernel, sizeof(in->kernel), tb[BATON_A_KERNEL]);
	str_of(in->boot_id, sizeof(in->boot_id), tb[BATON_A_BOOT_ID]);
	in->pid = attr_u32(tb, BATON_A_PID, 0);
	versions_of(tb, &ck->ver);
	in->proto = ck->ver.proto;
	in->state_version = ck->ver.state;
	in->state_compat = ck->ver.compat;
	in->state_min = ck->ver.min;
	in->realtime_ns = attr_u64(tb, BATON_A_REALTIME_NS, 0);
	in->deadline_ns = attr_u64(tb, BATON_A_DEADLINE_NS, 0);
	in->freeze_id = attr_u32(tb, BATON_A_FREEZE_ID, 0);
	in->freeze_ms = attr_u32(tb, BATON_A_FREEZE_MS, 0);
	in->ckpt_format = attr_u32(tb, BATON_A_CKPT_FORMAT, 0);
	in->listeners = attr_u32(tb, BATON_A_LISTENERS, 0);
	in->conns = attr_u32(tb, BATON_A_CONNS, 0);
	in->blobs = attr_u32(tb, BATON_A_RECORDS, 0);
	in->netns = attr_u64(tb, BATON_A_NETNS, 0);
	in->genl_version = attr_u32(tb, BATON_A_GENL_VERSION, 0);
	in->genl_maxattr = attr_u32(tb, BATON_A_GENL_MAXATTR, 0);
	in->flags = attr_u32(tb, BATON_A_FLAGS, 0);
	if (in->flags & ~BATON_CHECKPOINT_F_ALL)
		return bad(r, -EPROTONOSUPPORT, "made with flags %#x, which this libbaton does not know: restore it with the baton release that wrote it",
			   in->flags & ~BATON_CHECKPOINT_F_ALL);
	return 0;
}

struct lsn_ctx {
	struct file_listener *l;
	bool local;
	int err;
};

static int lsn_attr_cb(const struct nlattr *a, void *data)
{
	struct lsn_ctx *c = data;
	size_t n = mnl_attr_get_payload_len(a);
	int err = 0;

	switch (mnl_attr_get_type(a)) {
	case BATON_SOCK_A_LOCAL:
		if (n != sizeof(struct sockaddr_in) &&
		    n != sizeof(struct sockaddr_in6)) {
			err = -EINVAL;
			break;
		}
		memcpy(&c->l->local, mnl_attr_get_payload(a), n);
		c->l->local_len = n;
		c->local = c->l->local.ss_family == (n == sizeof(struct sockaddr_in) ?
						     AF_INET : AF_INET6);
		err = c->local ? 0 : -EINVAL;
		break;
	case BATON_SOCK_A_V6ONLY:
		err = attr_check(a, MNL_TYPE_U32);
		if (!err)
			c->l->v6only = mnl_attr_get_u32(a);
		break;
	case BATON_SOCK_A_FILE_FLAGS:
		err = attr_check(a, MNL_TYPE_U32);
		if (!err)
			c->l->file_flags = mnl_attr_get_u32(a);
		if (!err && (c->l->file_flags & ~O_NONBLOCK))
			err = -EINVAL;
		break;
	default:
		break;		/* newer than us */
	}
	if (err) {
		c->err = err;
		return MNL_CB_ERROR;
	}
	return MNL_CB_OK;
}

static int lsn_parse(struct reader *r, const struct nlmsghdr *nlh,
		     struct baton_checkpoint *ck)
{
	struct file_listener *l;
	struct lsn_ctx c = {};
	unsigned int i;

	if (ck->nlsn == ck->info.listeners)
		return bad(r, -EBADMSG, "corrupt: more listeners than its FILE record says (%u)",
			   ck->info.listeners);
	l = &ck->lsn[ck->nlsn];
	memset(l, 0, sizeof(*l));
	memcpy(&l->id, (const char *)nlh + NLMSG_HDRLEN, sizeof(l->id));
	/* what the new instance would refuse, once all was made for it */
	if (!l->id)
		return bad(r, -EBADMSG, "corrupt: a listener without an id");
	for (i = 0; i < ck->nlsn; i++)
		if (ck->lsn[i].id == l->id)
			return bad(r, -EBADMSG, "corrupt: listener %llu twice",
				   (unsigned long long)l->id);
	c.l = l;
	if (attrs_walk((const char *)nlh + REC_HDRLEN,
		       nlh->nlmsg_len - REC_HDRLEN, lsn_attr_cb, &c) ||
	    c.err || !c.local)
		return bad(r, -EBADMSG, "corrupt: listener %llu's address is malformed or missing",
			   (unsigned long long)l->id);
	ck->nlsn++;
	return 0;
}

/* One TCP checkpoint of the TCP blob, for the dump's view and the checks */
struct conns_ctx {
	struct baton_checkpoint *ck;
	struct reader *r;
	size_t start;		/* the blob's, in the file */
	struct ckpt_data d;
	__u32 format;
};

static int conn_one(void *data, const struct baton_rec *rec)
{
	struct conns_ctx *c = data;
	struct baton_checkpoint *ck = c->ck;
	struct baton_checkpoint_sock *s;
	struct ckpt_rec cr;
	const void *conn;
	int err;

	if (ck->nconns == ck->info.conns)
		return -EBADMSG;
	err = tcp_ckpt_parse(rec, &cr, &c->d);
	if (err == -EADDRNOTAVAIL)
		return bad(c->r, -EBADMSG, "corrupt: connection %llu's addresses are not those of its TCP checkpoint (the blob at byte %zu)",
			   (unsigned long long)cr.id, c->start);
	if (err)
		return err;
	conn = c->d.buf + cr.off;
	if (cr.format != c->format)
		return -EBADMSG;
	s = &ck->conns[ck->nconns++];
	memset(s, 0, sizeof(*s));
	s->id = cr.id;
	s->kind = BATON_SOCK_CONN;
	s->local = cr.local;
	s->peer = cr.peer;
	if (cr.format == BATON_CKPT_MODULE)
		tcp_conn_queues(conn, cr.len, &s->sendq, &s->unsent, &s->recvq);
	c->d.len = 0;	/* each checked, none kept */
	return 0;
}

static int noop_rec(void *data, const struct baton_rec *rec)
{
	(void)data;
	(void)rec;
	return 0;
}

static const char *kind_name(__u32 kind)
{
	static const char *const names[] = {
		[BATON_BLOB_STATE] = "state", [BATON_BLOB_DELTA] = "state changes",
		[BATON_BLOB_CONNS] = "connection records",
		[BATON_BLOB_TCP] = "TCP checkpoints",
	};

	return kind < ARRAY_SIZE(names) && names[kind] ? names[kind] : "?";
}

/* A blob, BEGIN to END: its frame and records checked, in a sealed memfd */
static int blob_parse(struct reader *r, const struct nlmsghdr *begin,
		      struct baton_checkpoint *ck)
{
	const struct nlattr *tb[BATON_A_MAX + 1];
	size_t start = (const char *)begin - r->map;
	const struct nlmsghdr *nlh = begin;
	struct conns_ctx cc = { .ck = ck, .r = r, .start = start,
				.format = ck->info.ckpt_format };
	__u32 kind, n = 0;
	int err, memfd;

	if (frame_parse(begin, tb) || !tb[BATON_A_BLOB_KIND])
		return bad(r, -EBADMSG, "corrupt: the blob at byte %zu says not what it holds",
			   start);
	kind = mnl_attr_get_u32(tb[BATON_A_BLOB_KIND]);
	if (kind < BATON_BLOB_STATE || kind > BATON_BLOB_TCP)
		return bad(r, -EBADMSG, "corrupt: the blob at byte %zu is of unknown kind %u",
			   start, kind);
	/* the new instance keeps one of each: a second would go unread */
	for (n = 0; (kind == BATON_BLOB_TCP || kind == BATON_BLOB_CONNS) &&
		    n < ck->nblobs; n++)
		if (ck->blobs[n].kind == kind)
			return bad(r, -EBADMSG, "corrupt: a second blob of %s at byte %zu (a file has one)",
				   kind_name(kind), start);
	n = 0;
	while (nlh && nlh->nlmsg_type != BATON_REC_END) {
		err = rec_next(r, &nlh);
		if (err)
			return err;
	}
	if (!nlh)
		return bad(r, -EBADMSG, "truncated: the blob of %s at byte %zu has no end",
			   kind_name(kind), start);
	err = memfd_sealed(r->map + start, r->off - start, &memfd);
	if (err)
		return bad(r, err, "cannot hold the blob of %s: %s",
			   kind_name(kind), strerror(-err));
	err = file_blob_add(ck, kind, 0, memfd);
	if (err) {
		close(memfd);
		return bad(r, err, "out of memory");
	}
	err = blob_read(memfd, kind, kind == BATON_BLOB_TCP ? conn_one : noop_rec,
			&cc, &n);
	ckpt_data_free(&cc.d);
	if (err && r->why[0])
		return -EBADMSG;	/* conn_one() said why */
	if (err == -ENOMEM)
		return bad(r, err, "out of memory reading the blob of %s",
			   kind_name(kind));
	if (err)
		return bad(r, -EBADMSG, "corrupt: the blob of %s at byte %zu is malformed: %s",
			   kind_name(kind), start, strerror(-err));
	ck->blobs[ck->nblobs - 1].records = n;
	return 0;
}

/* FILE_END: the bytes before it, and their checksum */
static int end_check(struct reader *r, const struct nlmsghdr *nlh)
{
	const struct nlattr *tb[BATON_A_MAX + 1];
	size_t at = (const char *)nlh - r->map;
	__u32 crc;

	if (frame_parse(nlh, tb) || !tb[BATON_A_BYTES] || !tb[BATON_A_CRC32])
		return bad(r, -EBADMSG, "corrupt: its FILE_END record is malformed");
	if (mnl_attr_get_u64(tb[BATON_A_BYTES]) != at)
		return bad(r, -EBADMSG, "corrupt: its FILE_END says %llu bytes came before it, not %zu",
			   (unsigned long long)mnl_attr_get_u64(tb[BATON_A_BYTES]),
			   at);
	if (r->off != r->size)
		return bad(r, -EBADMSG, "corrupt: %zu bytes follow its FILE_END",
			   r->size - r->off);
	crc = crc32_add(0, r->map, at);
	if (crc != mnl_attr_get_u32(tb[BATON_A_CRC32]))
		return bad(r, -EBADMSG, "corrupt: its checksum is %08x and its FILE_END says %08x: changed or damaged since it was written",
			   crc, mnl_attr_get_u32(tb[BATON_A_CRC32]));
	return 0;
}

/* Everything after FILE: the end found and checked first, then the parts */
static int body_parse(struct reader *r, struct baton_checkpoint *ck)
{
	const struct nlmsghdr *nlh;
	size_t body = r->off;
	int err;

	do {
		err = rec_next(r, &nlh);
		if (err)
			return err;
	} while (nlh && nlh->nlmsg_type != BATON_REC_FILE_END);
	if (!nlh)
		return bad(r, -EBADMSG, "truncated: it ends at byte %zu without its FILE_END record (an interrupted write or copy?)",
			   r->size);
	err = end_check(r, nlh);
	if (err)
		return err;
	r->off = body;
	for (;;) {
		err = rec_next(r, &nlh);
		if (err)
			return err;
		switch (nlh->nlmsg_type) {
		case BATON_REC_FILE_END:
			return 0;
		case BATON_REC_LISTENER:
			err = ck->nblobs ? -EBADMSG : lsn_parse(r, nlh, ck);
			break;
		case BATON_REC_BEGIN:
			err = ck->nblobs == ck->info.blobs ? -EBADMSG :
			      blob_parse(r, nlh, ck);
			break;
		default:
			err = -EBADMSG;
		}
		if (err)
			return r->why[0] ? err :
			       bad(r, err, "corrupt: a record of type %u out of place at byte %zu",
				   nlh->nlmsg_type, (size_t)((const char *)nlh - r->map));
	}
}

static int counts_check(struct reader *r, const struct baton_checkpoint *ck)
{
	const struct baton_checkpoint_info *in = &ck->info;

	if (ck->nlsn != in->listeners || ck->nblobs != in->blobs ||
	    ck->nconns != in->conns)
		return bad(r, -EBADMSG, "corrupt: it holds %u listeners, %u blobs and %u connections, and says %u, %u and %u",
			   ck->nlsn, ck->nblobs, ck->nconns, in->listeners,
			   in->blobs, in->conns);
	if (in->conns && in->ckpt_format != BATON_CKPT_MODULE)
		return bad(r, -EPROTONOSUPPORT, "its connections were checkpointed without baton.ko (format %u): nothing held them frozen",
			   in->ckpt_format);
	return 0;
}

int file_load(struct baton_checkpoint *ck, const char *path, char *why,
	      size_t len)
{
	struct reader r = { .path = path, .why = why, .why_len = len };
	const struct nlmsghdr *nlh;
	struct stat st;
	void *map;
	int fd, err;

	memset(ck, 0, sizeof(*ck));
	why[0] = '\0';
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		err = -errno;
		snprintf(why, len, "cannot open %s: %s", path, strerror(-err));
		goto close_fd;
	}
	r.size = st.st_size;
	if (!S_ISREG(st.st_mode) || r.size < REC_HDRLEN) {
		err = bad(&r, -EINVAL, "not a baton checkpoint file: %s",
			  S_ISREG(st.st_mode) ? "too short to hold one record" :
						"not a regular file");
		goto close_fd;
	}
	map = mmap(NULL, r.size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED) {
		err = -errno;
		snprintf(why, len, "cannot read %s: %s", path, strerror(-err));
		goto close_fd;
	}
	r.map = map;
	if (rec_at(&r)->nlmsg_type != BATON_REC_FILE) {
		err = bad(&r, -EINVAL, "not a baton checkpoint file: it does not begin with a FILE record");
		goto unmap;
	}
	err = rec_next(&r, &nlh) ?: head_parse(&r, nlh, ck);
	if (err)
		goto unmap;
	/* each a record of its own: more than fit is a lie */
	if (ck->info.listeners > r.size / REC_HDRLEN ||
	    ck->info.conns > r.size / REC_HDRLEN) {
		err = bad(&r, -EBADMSG, "corrupt: its FILE record says %u listeners and %u connections, more than %zu bytes hold",
			  ck->info.listeners, ck->info.conns, r.size);
		goto unmap;
	}
	ck->lsn = calloc(ck->info.listeners ?: 1, sizeof(*ck->lsn));
	ck->conns = calloc(ck->info.conns ?: 1, sizeof(*ck->conns));
	if (!ck->lsn || !ck->conns) {
		err = bad(&r, -ENOMEM, "out of memory");
		goto unmap;
	}
	ck->info.bytes = r.size;
	err = body_parse(&r, ck) ?: counts_check(&r, ck);
unmap:
	munmap(map, r.size);
close_fd:
	if (fd >= 0)
		close(fd);
	if (err)
		file_free(ck);
	return err;
}

const char *baton_addr_text(const struct sockaddr_storage *ss, char *buf,
			    size_t len)
{
	const struct sockaddr_in *sin = (const void *)ss;
	const struct sockaddr_in6 *sin6 = (const void *)ss;
	char host[INET6_ADDRSTRLEN] = "?";

	if (ss->ss_family == AF_INET) {
		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, ntohs(sin->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, ntohs(sin6->sin6_port));
	} else {
		snprintf(buf, len, "(family %u)", ss->ss_family);
	}
	return buf;
}

/* dump's API */
int baton_checkpoint_load(struct baton_checkpoint **out, const char *path,
			  baton_log_fn log, void *log_ctx)
{
	struct baton_log_sink sink = { log, log_ctx };
	struct baton_checkpoint *ck;
	char why[512];
	int err;

	if (!out || !path)
		return -EINVAL;
	ck = calloc(1, sizeof(*ck));
	if (!ck)
		return -ENOMEM;
	err = file_load(ck, path, why, sizeof(why));
	if (err) {
		pr_err(&sink, "%s", why);
		free(ck);
		return err;
	}
	*out = ck;
	return 0;
}

const struct baton_checkpoint_info *
baton_checkpoint_info(const struct baton_checkpoint *ck)
{
	return &ck->info;
}

int baton_checkpoint_sock(const struct baton_checkpoint *ck, unsigned int i,
			  struct baton_checkpoint_sock *s)
{
	if (i < ck->nlsn) {
		memset(s, 0, sizeof(*s));
		s->id = ck->lsn[i].id;
		s->kind = BATON_SOCK_LISTENER;
		s->local = ck->lsn[i].local;
		return 0;
	}
	i -= ck->nlsn;
	if (i >= ck->nconns)
		return -ENOENT;
	*s = ck->conns[i];
	return 0;
}

void baton_checkpoint_free(struct baton_checkpoint *ck)
{
	if (!ck)
		return;
	file_free(ck);
	free(ck);
}
