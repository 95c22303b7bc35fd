// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * 1. Feeds: a TCP checkpoint record as restore.c reads it from a blob.
 *    The first byte's low five bits are the last attribute the module
 *    knows (struct baton_tcp's maxattr); the rest is the record, copied
 *    to a buffer of its exact length, aligned as a blob's records are.
 * 2. Checks that tcp_rec_parse() answers 0 or -errno, reads nothing past
 *    the record (ASan), and on success found every attribute a restore
 *    needs, addresses of the record's family and a whole window, and
 *    summed each queue's chunks right.
 * 3. Checks a round trip: the record built again by tcp_rec_build() from
 *    what was parsed parses to the same values, queues and kernel state.
 * 4. Checks the module's attribute callback: tcp_import_build() answers
 *    -errno or a request of TCP_IMPORT whose attributes are the FD and
 *    u32 state attributes the module knows, every other one counted as
 *    skipped.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <linux/genetlink.h>

#include <linux/baton.h>
#include "tcp/tcp.h"
#include "fuzz.h"

#define FD	5

struct walk {
	__u32 bytes[BATON_TCP_A_MAX + 1];
	char *q[BATON_TCP_A_MAX + 1];	/* each queue, its chunks joined */
	unsigned int n;			/* attributes */
};

static int walk_cb(const struct nlattr *attr, void *data)
{
	struct walk *w = data;
	__u16 type = mnl_attr_get_type(attr);
	size_t len = mnl_attr_get_payload_len(attr);

	w->n++;
	if (type == BATON_TCP_A_SENDQ || type == BATON_TCP_A_UNSENT ||
	    type == BATON_TCP_A_RECVQ) {
		w->q[type] = realloc(w->q[type], w->bytes[type] + len + 1);
		CHECK(w->q[type]);
		memcpy(w->q[type] + w->bytes[type], mnl_attr_get_payload(attr),
		       len);
	}
	if (type && type <= BATON_TCP_A_MAX)
		w->bytes[type] += len;
	return MNL_CB_OK;
}

static void walk_free(struct walk *w)
{
	unsigned int i;

	for (i = 0; i <= BATON_TCP_A_MAX; i++)
		free(w->q[i]);
}

static __u32 u32_of(const struct tcp_rec *r, int type)
{
	return r->tb[type] ? mnl_attr_get_u32(r->tb[type]) : 0;
}

static void parsed_ok(const struct tcp_rec *r, const char *rec, size_t len,
		      struct walk *w)
{
	static const int queues[] = {
		BATON_TCP_A_SENDQ, BATON_TCP_A_UNSENT, BATON_TCP_A_RECVQ,
	};
	int family, i;

	CHECK(attrs_walk(rec, len, walk_cb, w) == 0);
	for (i = 1; i <= BATON_TCP_A_MAX; i++) {
		const char *a = (const char *)r->tb[i];

		if (a)
			CHECK(a >= rec && a + r->tb[i]->nla_len <= rec + len &&
			      mnl_attr_get_type(r->tb[i]) == i);
	}
	CHECK(r->tb[BATON_TCP_A_FAMILY] && r->tb[BATON_TCP_A_LOCAL] &&
	      r->tb[BATON_TCP_A_PEER] && r->tb[BATON_TCP_A_SND_SEQ] &&
	      r->tb[BATON_TCP_A_RCV_SEQ] && r->tb[BATON_TCP_A_MSS] &&
	      r->tb[BATON_TCP_A_OPTIONS] && r->tb[BATON_TCP_A_WINDOW]);
	family = u32_of(r, BATON_TCP_A_FAMILY);
	CHECK(family == AF_INET || family == AF_INET6);
	CHECK(mnl_attr_get_payload_len(r->tb[BATON_TCP_A_LOCAL]) ==
	      (unsigned int)sockaddr_size(family));
	CHECK(mnl_attr_get_payload_len(r->tb[BATON_TCP_A_WINDOW]) ==
	      sizeof(struct tcp_repair_window));
	for (i = 0; i < (int)ARRAY_SIZE(queues); i++)
		CHECK(r->bytes[queues[i]] == w->bytes[queues[i]]);
}

static void build_again(const struct tcp_rec *r, const struct walk *w)
{
	struct tcp_rec r2 = { .tcp = r->tcp };
	struct walk w2 = {};
	struct tcp_ckpt c = {};
	char *sendq = NULL;
	void *rec;
	size_t len;
	int err;

	c.family = u32_of(r, BATON_TCP_A_FAMILY);
	memcpy(&c.local, mnl_attr_get_payload(r->tb[BATON_TCP_A_LOCAL]),
	       sockaddr_size(c.family));
	memcpy(&c.peer, mnl_attr_get_payload(r->tb[BATON_TCP_A_PEER]),
	       sockaddr_size(c.family));
	c.snd_seq = u32_of(r, BATON_TCP_A_SND_SEQ);
	c.rcv_seq = u32_of(r, BATON_TCP_A_RCV_SEQ);
	c.mss = u32_of(r, BATON_TCP_A_MSS);
	c.options = u32_of(r, BATON_TCP_A_OPTIONS);
	c.snd_wscale = u32_of(r, BATON_TCP_A_SND_WSCALE);
	c.rcv_wscale = u32_of(r, BATON_TCP_A_RCV_WSCALE);
	c.timestamp = u32_of(r, BATON_TCP_A_TIMESTAMP);
	memcpy(&c.win, mnl_attr_get_payload(r->tb[BATON_TCP_A_WINDOW]),
	       sizeof(c.win));
	c.sent = w->bytes[BATON_TCP_A_SENDQ];
	c.unsent = w->bytes[BATON_TCP_A_UNSENT];
	c.inq = w->bytes[BATON_TCP_A_RECVQ];
	sendq = malloc(c.sent + c.unsent + 1);
	CHECK(sendq);
	if (c.sent)
		memcpy(sendq, w->q[BATON_TCP_A_SENDQ], c.sent);
	if (c.unsent)
		memcpy(sendq + c.sent, w->q[BATON_TCP_A_UNSENT], c.unsent);
	c.sendq = sendq;
	c.recvq = w->q[BATON_TCP_A_RECVQ];
	if (r->tb[BATON_TCP_A_KERNEL]) {
		c.kernel = mnl_attr_get_payload(r->tb[BATON_TCP_A_KERNEL]);
		c.klen = mnl_attr_get_payload_len(r->tb[BATON_TCP_A_KERNEL]);
	}
	err = tcp_rec_build(&c, &rec, &len);
	CHECK(err == 0 || (err == -EINVAL && c.klen > KERNEL_REC_MAX));
	if (err)
		goto free_sendq;
	CHECK(tcp_rec_parse(&r2, rec, len) == 0);
	parsed_ok(&r2, rec, len, &w2);
	CHECK(u32_of(&r2, BATON_TCP_A_FAMILY) == (__u32)c.family &&
	      u32_of(&r2, BATON_TCP_A_SND_SEQ) == c.snd_seq &&
	      u32_of(&r2, BATON_TCP_A_RCV_SEQ) == c.rcv_seq &&
	      u32_of(&r2, BATON_TCP_A_MSS) == c.mss &&
	      u32_of(&r2, BATON_TCP_A_OPTIONS) == c.options &&
	      u32_of(&r2, BATON_TCP_A_SND_WSCALE) == c.snd_wscale &&
	      u32_of(&r2, BATON_TCP_A_RCV_WSCALE) == c.rcv_wscale);
	/* the timestamp travels with the option that says it is there */
	CHECK(!r2.tb[BATON_TCP_A_TIMESTAMP] ==
	      !(c.options & TCPI_OPT_TIMESTAMPS));
	if (r2.tb[BATON_TCP_A_TIMESTAMP])
		CHECK(u32_of(&r2, BATON_TCP_A_TIMESTAMP) == c.timestamp);
	CHECK(!memcmp(mnl_attr_get_payload(r2.tb[BATON_TCP_A_LOCAL]), &c.local,
		      sockaddr_size(c.family)) &&
	      !memcmp(mnl_attr_get_payload(r2.tb[BATON_TCP_A_PEER]), &c.peer,
		      sockaddr_size(c.family)) &&
	      !memcmp(mnl_attr_get_payload(r2.tb[BATON_TCP_A_WINDOW]), &c.win,
		      sizeof(c.win)));
	CHECK(w2.bytes[BATON_TCP_A_SENDQ] == c.sent &&
	      w2.bytes[BATON_TCP_A_UNSENT] == c.unsent &&
	      w2.bytes[BATON_TCP_A_RECVQ] == c.inq);
	CHECK(!c.sent || !memcmp(w2.q[BATON_TCP_A_SENDQ], sendq, c.sent));
	CHECK(!c.unsent ||
	      !memcmp(w2.q[BATON_TCP_A_UNSENT], sendq + c.sent, c.unsent));
	CHECK(!c.inq || !memcmp(w2.q[BATON_TCP_A_RECVQ], c.recvq, c.inq));
	CHECK(r2.tb[BATON_TCP_A_KERNEL] &&
	      mnl_attr_get_payload_len(r2.tb[BATON_TCP_A_KERNEL]) ==
	      MNL_ALIGN(c.klen) &&
	      (!c.klen || !memcmp(mnl_attr_get_payload(r2.tb[BATON_TCP_A_KERNEL]),
		      c.kernel, c.klen)));
	free(rec);
free_sendq:
	free(sendq);
	walk_free(&w2);
}

struct req_ctx {
	unsigned int n;
	__u32 maxattr;
};

static int req_cb(const struct nlattr *attr, void *data)
{
	struct req_ctx *c = data;
	__u16 type = mnl_attr_get_type(attr);

	CHECK(mnl_attr_get_payload_len(attr) == sizeof(__u32));
	if (c->n++ == 0)
		CHECK(type == BATON_GENL_A_FD &&
		      mnl_attr_get_u32(attr) == FD);
	else
		CHECK(type >= BATON_GENL_A_STATE_FIRST && type <= c->maxattr);
	return MNL_CB_OK;
}

static int count_cb(const struct nlattr *attr, void *data)
{
	(void)attr;
	(*(unsigned int *)data)++;
	return MNL_CB_OK;
}

static void import_check(struct baton_tcp *tcp, const struct nlattr *kernel)
{
	static char buf[TCP_GENL_BUF] __attribute__((aligned(8)));
	const struct nlmsghdr *nlh = (const void *)buf;
	const struct genlmsghdr *g;
	struct req_ctx c = { .maxattr = tcp->maxattr };
	unsigned int attrs = 0;
	int skipped;

	skipped = tcp_import_build(tcp, buf, FD, mnl_attr_get_payload(kernel),
				   mnl_attr_get_payload_len(kernel));
	CHECK(is_ret(skipped) || skipped > 0);
	if (skipped < 0)
		return;
	CHECK(nlh->nlmsg_len <= sizeof(buf));
	g = mnl_nlmsg_get_payload(nlh);
	CHECK(g->cmd == BATON_GENL_CMD_TCP_IMPORT &&
	      g->version == BATON_GENL_VERSION);
	CHECK(mnl_attr_parse(nlh, sizeof(*g), req_cb, &c) >= 0);
	CHECK(attrs_walk(mnl_attr_get_payload(kernel),
			 mnl_attr_get_payload_len(kernel), count_cb,
			 &attrs) == 0);
	CHECK(c.n == 1 + attrs - skipped);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct baton_tcp tcp = { .family = 0x20 };
	struct tcp_rec r = { .tcp = &tcp };
	struct walk w = {};
	char *rec;
	int err;

	if (size < 1)
		return 0;
	tcp.maxattr = data[0] & 0x1f;
	rec = malloc(size - 1 ?: 1);
	CHECK(rec);
	memcpy(rec, data + 1, size - 1);
	err = tcp_rec_parse(&r, rec, size - 1);
	CHECK(is_ret(err));
	if (!err) {
		parsed_ok(&r, rec, size - 1, &w);
		build_again(&r, &w);
		if (r.tb[BATON_TCP_A_KERNEL])
			import_check(&tcp, r.tb[BATON_TCP_A_KERNEL]);
	}
	walk_free(&w);
	free(rec);
	return 0;
}
