// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The channel to baton.ko: resolve the "baton" generic netlink family,
 * then export and import a socket's congestion and RTT state.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>

#include <linux/baton.h>
#include "tcp/tcp.h"

#define GENL_BUF	TCP_GENL_BUF

struct baton_tcp_genl_reply {
	struct baton_tcp *tcp;
	void *buf;		/* where the export's attributes go */
	size_t len, used;
	int err;
};

/* The text of an extended ack, if the kernel sent one */
static const char *extack_msg(const struct nlmsghdr *nlh)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *attr;
	size_t off = sizeof(*e);

	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return NULL;
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		off += e->msg.nlmsg_len - sizeof(e->msg);
	if (mnl_nlmsg_get_payload_len(nlh) < off)
		return NULL;
	mnl_attr_for_each_payload((const void *)((const char *)e + off),
				  mnl_nlmsg_get_payload_len(nlh) - off) {
		if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG &&
		    mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) >= 0)
			return mnl_attr_get_str(attr);
	}
	return NULL;
}

/* Sends one request and runs cb on each reply; 0 or -errno */
static int genl_call(struct baton_tcp *tcp, struct nlmsghdr *req,
		     mnl_cb_t cb, void *data)
{
	char buf[GENL_BUF] __attribute__((aligned(8)));
	unsigned int seq = ++tcp->seq;
	ssize_t n;
	int ret;

	req->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
	req->nlmsg_seq = seq;
	if (mnl_socket_sendto(tcp->nl, req, req->nlmsg_len) < 0)
		return -errno;

	for (;;) {
		const struct nlmsghdr *nlh = (const void *)buf;

		n = mnl_socket_recvfrom(tcp->nl, buf, sizeof(buf));
		if (n < 0)
			return -errno;
		if (mnl_nlmsg_ok(nlh, n) && nlh->nlmsg_type == NLMSG_ERROR &&
		    mnl_nlmsg_get_payload_len(nlh) >= sizeof(struct nlmsgerr)) {
			const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
			const char *why = extack_msg(nlh);

			if (e->error && why)
				pr_err(&tcp->log, "baton.ko: %s", why);
			if (e->error)
				return e->error;
		}
		ret = mnl_cb_run(buf, n, seq, tcp->portid, cb, data);
		if (ret < 0)
			return -errno;
		if (ret == MNL_CB_STOP)
			return 0;
	}
}

static int family_attr_cb(const struct nlattr *attr, void *data)
{
	struct baton_tcp *tcp = data;

	switch (mnl_attr_get_type(attr)) {
	case CTRL_ATTR_FAMILY_ID:
		if (mnl_attr_validate(attr, MNL_TYPE_U16) < 0)
			return MNL_CB_ERROR;
		tcp->family = mnl_attr_get_u16(attr);
		break;
	case CTRL_ATTR_VERSION:
		if (mnl_attr_validate(attr, MNL_TYPE_U32) < 0)
			return MNL_CB_ERROR;
		tcp->version = mnl_attr_get_u32(attr);
		break;
	case CTRL_ATTR_MAXATTR:
		if (mnl_attr_validate(attr, MNL_TYPE_U32) < 0)
			return MNL_CB_ERROR;
		tcp->maxattr = mnl_attr_get_u32(attr);
		break;
	}
	return MNL_CB_OK;
}

static int family_cb(const struct nlmsghdr *nlh, void *data)
{
	return mnl_attr_parse(nlh, sizeof(struct genlmsghdr), family_attr_cb,
			      data);
}

static struct nlmsghdr *genl_msg(char *buf, __u16 type, __u8 cmd, __u8 ver)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct genlmsghdr *g;

	nlh->nlmsg_type = type;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->cmd = cmd;
	g->version = ver;
	return nlh;
}

static int family_resolve(struct baton_tcp *tcp, bool need_module)
{
	char buf[GENL_BUF] __attribute__((aligned(8)));
	struct nlmsghdr *nlh = genl_msg(buf, GENL_ID_CTRL,
					CTRL_CMD_GETFAMILY, 1);
	int err;

	mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, BATON_GENL_NAME);
	err = genl_call(tcp, nlh, family_cb, tcp);
	if (err == -ENOENT && !need_module) {
		tcp->family = 0;	/* TCP_REPAIR alone */
		return 0;
	}
	if (err == -ENOENT) {
		pr_err(&tcp->log,
		       "the baton kernel module is not loaded: insmod baton.ko");
		return err;
	}
	if (err)
		return err;
	if (!tcp->family || !tcp->maxattr) {
		pr_err(&tcp->log, "the baton family's description is incomplete");
		return -EPROTO;
	}
	return 0;
}

/* tcp's own generic netlink socket, bound */
static int tcp_socket(struct baton_tcp *tcp)
{
	int one = 1, err;

	tcp->nl = mnl_socket_open2(NETLINK_GENERIC, SOCK_CLOEXEC);
	if (!tcp->nl) {
		err = -errno;
		pr_err(&tcp->log, "generic netlink socket: %s", strerror(-err));
		return err;
	}
	/* the kernel's reason travels with its error */
	mnl_socket_setsockopt(tcp->nl, NETLINK_EXT_ACK, &one, sizeof(one));
	mnl_socket_setsockopt(tcp->nl, NETLINK_CAP_ACK, &one, sizeof(one));
	if (mnl_socket_bind(tcp->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		err = -errno;
		pr_err(&tcp->log, "generic netlink bind: %s", strerror(-err));
		mnl_socket_close(tcp->nl);
		return err;
	}
	tcp->portid = mnl_socket_get_portid(tcp->nl);
	return 0;
}

static int tcp_open(struct baton_tcp **tcpp, baton_log_fn log, void *log_ctx,
		    bool need_module)
{
	struct baton_tcp *tcp;
	int err;

	tcp = calloc(1, sizeof(*tcp));
	if (!tcp)
		return -ENOMEM;
	tcp->log.fn = log;
	tcp->log.ctx = log_ctx;
	err = tcp_socket(tcp);
	if (err)
		goto free_tcp;
	err = family_resolve(tcp, need_module);
	if (err)
		goto close_nl;
	*tcpp = tcp;
	return 0;

close_nl:
	mnl_socket_close(tcp->nl);
free_tcp:
	free(tcp);
	return err;
}

int baton_tcp_open(struct baton_tcp **tcpp, baton_log_fn log, void *log_ctx)
{
	return tcp_open(tcpp, log, log_ctx, true);
}

int tcp_open_any(struct baton_tcp **tcpp, const struct baton_log_sink *log)
{
	return tcp_open(tcpp, log->fn, log->ctx, false);
}

/* The network namespace a socket works in (SO_NETNS_COOKIE, Linux 5.14) */
static int netns_cookie(const struct mnl_socket *nl, __u64 *cookie)
{
	socklen_t len = sizeof(*cookie);

	if (getsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_NETNS_COOKIE,
		       cookie, &len))
		return -errno;
	return 0;
}

int tcp_clone(const struct baton_tcp *tcp, struct baton_tcp **clonep)
{
	struct baton_tcp *clone;
	__u64 want, have;
	int err;

	clone = calloc(1, sizeof(*clone));
	if (!clone)
		return -ENOMEM;
	*clone = *tcp;
	clone->log.fn = NULL;	/* it says nothing: its caller does */
	clone->seq = 0;
	err = tcp_socket(clone);
	if (err)
		goto free_clone;
	/*
	 * in tcp's network namespace, which the module works in, or none:
	 * the caller may have moved to another since it opened tcp
	 */
	err = netns_cookie(tcp->nl, &want) ?: netns_cookie(clone->nl, &have);
	if (!err && have != want)
		err = -EXDEV;
	if (err)
		goto close_nl;
	*clonep = clone;
	return 0;

close_nl:
	mnl_socket_close(clone->nl);
free_clone:
	free(clone);
	return err;
}

void baton_tcp_close(struct baton_tcp *tcp)
{
	if (!tcp)
		return;
	mnl_socket_close(tcp->nl);
	free(tcp);
}

/*
 * Whether an attribute is TCP state: ours (FIRST..LAST), or one a newer
 * module added after the attributes we know, which it will take back.
 * The commands' other attributes (FLOW..CONN) are not state.
 */
static bool is_state(__u16 type)
{
	return (type >= BATON_GENL_A_STATE_FIRST &&
		type <= BATON_GENL_A_STATE_LAST) || type > BATON_GENL_A_MAX;
}

/* Copies every state attribute of the reply into the caller's buffer */
static int export_attr_cb(const struct nlattr *attr, void *data)
{
	struct baton_tcp_genl_reply *r = data;
	__u16 type = mnl_attr_get_type(attr);

	if (!is_state(type))
		return MNL_CB_OK;	/* FD: ours, not state */
	if (attr_check(attr, MNL_TYPE_U32)) {
		pr_err(&r->tcp->log, "baton.ko sent attribute %u of %u bytes",
		       type, mnl_attr_get_payload_len(attr));
		r->err = -EPROTO;
		return MNL_CB_ERROR;
	}
	if (r->used + MNL_ATTR_HDRLEN + sizeof(__u32) > r->len) {
		r->err = -ENOSPC;
		return MNL_CB_ERROR;
	}
	memcpy((char *)r->buf + r->used, attr, attr->nla_len);
	r->used += MNL_ALIGN(attr->nla_len);
	return MNL_CB_OK;
}

static int export_cb(const struct nlmsghdr *nlh, void *data)
{
	return mnl_attr_parse(nlh, sizeof(struct genlmsghdr), export_attr_cb,
			      data);
}

int baton_tcp_export(struct baton_tcp *tcp, int fd, void *buf, size_t len)
{
	char req[GENL_BUF] __attribute__((aligned(8)));
	struct baton_tcp_genl_reply r = { .tcp = tcp, .buf = buf, .len = len };
	struct nlmsghdr *nlh;
	int err;

	if (fd < 0)
		return -EBADF;
	nlh = genl_msg(req, tcp->family, BATON_GENL_CMD_TCP_EXPORT,
		       BATON_GENL_VERSION);
	mnl_attr_put_u32(nlh, BATON_GENL_A_FD, fd);
	err = genl_call(tcp, nlh, export_cb, &r);
	if (r.err)
		return r.err;
	return err ?: (int)r.used;
}

struct import_ctx {
	struct baton_tcp *tcp;
	struct nlmsghdr *nlh;
	int skipped;
	int err;
};

static int import_attr_cb(const struct nlattr *attr, void *data)
{
	struct import_ctx *c = data;
	__u16 type = mnl_attr_get_type(attr);

	/* newer than this module, or not state: the module would refuse it */
	if (!is_state(type) || type > c->tcp->maxattr) {
		c->skipped++;
		return MNL_CB_OK;
	}
	if (attr_check(attr, MNL_TYPE_U32)) {
		pr_err(&c->tcp->log,
		       "TCP state record: attribute %u has %u bytes, not 4",
		       type, mnl_attr_get_payload_len(attr));
		c->err = -EINVAL;
		return MNL_CB_ERROR;
	}
	if (!mnl_attr_put_u32_check(c->nlh, GENL_BUF, type,
				    mnl_attr_get_u32(attr))) {
		pr_err(&c->tcp->log, "TCP state record: too many attributes");
		c->err = -E2BIG;
		return MNL_CB_ERROR;
	}
	return MNL_CB_OK;
}

int tcp_import_build(struct baton_tcp *tcp, void *buf, int fd,
		     const void *rec, size_t len)
{
	struct import_ctx c = { .tcp = tcp };
	int err;

	if (fd < 0)
		return -EBADF;
	c.nlh = genl_msg(buf, tcp->family, BATON_GENL_CMD_TCP_IMPORT,
			 BATON_GENL_VERSION);
	mnl_attr_put_u32(c.nlh, BATON_GENL_A_FD, fd);
	/* a record fills the buffer with whole attributes, or is refused */
	err = attrs_walk(rec, len, import_attr_cb, &c);
	if (c.err)
		return c.err;
	if (err) {
		pr_err(&tcp->log, "TCP state record is truncated or malformed");
		return err;
	}
	return c.skipped;
}

int baton_tcp_import(struct baton_tcp *tcp, int fd, const void *rec,
		     size_t len)
{
	char req[GENL_BUF] __attribute__((aligned(8)));
	int skipped, err;

	skipped = tcp_import_build(tcp, req, fd, rec, len);
	if (skipped < 0)
		return skipped;
	err = genl_call(tcp, (struct nlmsghdr *)req, NULL, NULL);
	return err ?: skipped;
}
