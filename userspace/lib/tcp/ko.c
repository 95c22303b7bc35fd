// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * One request to baton.ko and its replies, with the kernel's extended
 * ack: its reason and the offset of the attribute it blames.
 */
#include <errno.h>
#include <string.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>

#include <linux/baton.h>
#include "internal.h"
#include "tcp/ko.h"

struct nlmsghdr *ko_msg(void *buf, struct baton_tcp *tcp, __u8 cmd)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct genlmsghdr *g;

	nlh->nlmsg_type = tcp->family;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->cmd = cmd;
	g->version = BATON_GENL_VERSION;
	return nlh;
}

/*
 * The extended ack's message and offset, if the kernel sent them: after
 * the error (and the request, unless capped), or after a dump's DONE.
 */
static void ko_ack_parse(const struct nlmsghdr *nlh, struct ko_ack *ack)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *attr;
	size_t off = sizeof(*e);

	ack->msg[0] = 0;
	ack->off = 0;
	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return;
	if (nlh->nlmsg_type == NLMSG_DONE)
		off = sizeof(int);
	else if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		off += e->msg.nlmsg_len - sizeof(e->msg);
	if (mnl_nlmsg_get_payload_len(nlh) < off)
		return;
	mnl_attr_for_each_payload((const void *)((const char *)e + off),
				  mnl_nlmsg_get_payload_len(nlh) - off) {
		switch (mnl_attr_get_type(attr)) {
		case NLMSGERR_ATTR_MSG:
			if (mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) >= 0)
				snprintf(ack->msg, sizeof(ack->msg), "%s",
					 mnl_attr_get_str(attr));
			break;
		case NLMSGERR_ATTR_OFFS:
			if (mnl_attr_validate(attr, MNL_TYPE_U32) >= 0)
				ack->off = mnl_attr_get_u32(attr);
			break;
		case NLMSGERR_ATTR_MISS_TYPE:
			if (!ack->msg[0] &&
			    mnl_attr_validate(attr, MNL_TYPE_U32) >= 0)
				snprintf(ack->msg, sizeof(ack->msg),
					 "attribute %u is missing",
					 mnl_attr_get_u32(attr));
			break;
		}
	}
}

/* Room in the socket's send buffer for a large request */
static void ko_sndbuf_fit(struct baton_tcp *tcp, size_t len)
{
	int fd = mnl_socket_get_fd(tcp->nl), have, want;
	socklen_t sl = sizeof(have);

	if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &have, &sl) ||
	    len + 4096 <= (size_t)have)
		return;
	want = len + 4096;
	/* beyond wmem_max only with CAP_NET_ADMIN; the send says if not */
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &want, sizeof(want)))
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &want, sizeof(want));
}

int ko_call(struct baton_tcp *tcp, struct nlmsghdr *req, mnl_cb_t cb,
	    void *data, struct ko_ack *ack)
{
	static __thread char buf[KO_RECV_BUF] __attribute__((aligned(8)));
	struct ko_ack own;
	unsigned int seq = ++tcp->seq;
	ssize_t n;
	int ret;

	/* a dump ends with NLMSG_DONE, which carries its error */
	req->nlmsg_flags |= NLM_F_REQUEST;
	if (!(req->nlmsg_flags & NLM_F_DUMP))
		req->nlmsg_flags |= NLM_F_ACK;
	req->nlmsg_seq = seq;
	ko_sndbuf_fit(tcp, req->nlmsg_len);
	if (mnl_socket_sendto(tcp->nl, req, req->nlmsg_len) < 0) {
		ret = -errno;
		pr_err(&tcp->log, "baton.ko: sending a request of %u bytes: %s",
		       req->nlmsg_len, strerror(-ret));
		return ret;
	}
	for (;;) {
		const struct nlmsghdr *nlh = (const void *)buf;

		n = mnl_socket_recvfrom(tcp->nl, buf, sizeof(buf));
		if (n < 0)
			return -errno;
		for (ret = n; mnl_nlmsg_ok(nlh, ret);
		     nlh = mnl_nlmsg_next(nlh, &ret)) {
			int err = 0;

			if (nlh->nlmsg_type == NLMSG_ERROR &&
			    mnl_nlmsg_get_payload_len(nlh) >= sizeof(struct nlmsgerr))
				err = ((const struct nlmsgerr *)
				       mnl_nlmsg_get_payload(nlh))->error;
			else if (nlh->nlmsg_type == NLMSG_DONE &&
				 mnl_nlmsg_get_payload_len(nlh) >= sizeof(int))
				err = *(const int *)mnl_nlmsg_get_payload(nlh);
			if (err < 0) {
				ko_ack_parse(nlh, ack ?: &own);
				if (!ack && own.msg[0])
					pr_err(&tcp->log, "baton.ko: %s", own.msg);
				return err;
			}
		}
		ret = mnl_cb_run(buf, n, seq, tcp->portid, cb, data);
		if (ret < 0)
			return -errno ?: -EPROTO;
		if (ret == MNL_CB_STOP)
			return 0;
	}
}
