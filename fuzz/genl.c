// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * 1. Feeds: requests to baton.ko's generic netlink family, inside the VM
 *    (scripts/vm.sh). The first byte is the command (any, the unknown
 *    ones too), the second's bit 0 asks for a dump; the rest are the
 *    request's attributes as they are, after the header ko_msg() puts.
 *    The descriptors they may name are real: a TCP listener, an
 *    established IPv4 and IPv6 pair, a UDP socket and a file.
 * 2. Checks that ko_call() answers 0 or -errno and that every reply is a
 *    well-formed message of the family's attributes. The kernel must not
 *    oops or WARN: scripts/vm.sh checks its log after the run.
 * 3. Keeps the module's state bounded: a freeze is thawed and a socket an
 *    import installed is closed before the next input.
 * 4. Guides libFuzzer by the kernel's answers, which its coverage of
 *    this program cannot see: each distinct (command, errno, extended
 *    ack's message and offset, reply attributes) bumps a counter of its
 *    own among libFuzzer's extra counters.
 * 5. Arguments: scripts/vm.sh gives none, so BATON_FUZZ_ARGS (libFuzzer's
 *    arguments, comma-separated) stands for them when there are none.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/genetlink.h>

#include <linux/baton.h>
#include "tcp/ko.h"
#include "fuzz.h"

/* libFuzzer reads this section as more coverage */
static uint8_t answers[1 << 14]
	__attribute__((section("__libfuzzer_extra_counters"), used));

static struct baton_tcp *tcp;
static int devnull = -1;
static int lowest_free;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static char *args[64];
	char *env = getenv("BATON_FUZZ_ARGS"), *tok, *save;
	int n = 0;

	if (*argc != 1 || !env)
		return 0;
	args[n++] = (*argv)[0];
	env = strdup(env);
	for (tok = strtok_r(env, ",", &save); tok && n < 63;
	     tok = strtok_r(NULL, ",", &save))
		args[n++] = tok;
	args[n] = NULL;
	*argc = n;
	*argv = args;
	return 0;
}

static void tcp_pair(int family)
{
	struct sockaddr_storage ss = { .ss_family = family };
	socklen_t sl = family == AF_INET ? sizeof(struct sockaddr_in) :
					   sizeof(struct sockaddr_in6);
	int l, c, a;

	if (family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_addr.s_addr =
			htonl(INADDR_LOOPBACK);
	else
		((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_loopback;
	l = socket(family, SOCK_STREAM, 0);
	CHECK(l >= 0 && bind(l, (struct sockaddr *)&ss, sl) == 0 &&
	      listen(l, 8) == 0 &&
	      getsockname(l, (struct sockaddr *)&ss, &sl) == 0);
	c = socket(family, SOCK_STREAM, 0);
	CHECK(c >= 0 && connect(c, (struct sockaddr *)&ss, sl) == 0);
	a = accept(l, NULL, NULL);
	CHECK(a >= 0);
	CHECK(write(c, "ping", 4) == 4 && write(a, "pong", 4) == 4);
}

static void setup(void)
{
	CHECK(baton_tcp_open(&tcp, NULL, NULL) == 0);
	tcp_pair(AF_INET);
	tcp_pair(AF_INET6);
	CHECK(socket(AF_INET, SOCK_DGRAM, 0) >= 0);
	devnull = open("/dev/null", O_RDONLY);
	CHECK(devnull >= 0);
	lowest_free = dup(devnull);
	CHECK(lowest_free >= 0);
	close(lowest_free);
}

struct answer {
	__u32 freeze_id;
	bool frozen;
	__u32 hash;		/* of the reply's attribute types, in order */
};

static __u32 fnv(__u32 h, const void *p, size_t len)
{
	const uint8_t *b = p;

	while (len--)
		h = (h ^ *b++) * 16777619u;
	return h;
}

static int conn_cb(const struct nlattr *attr, void *data)
{
	(void)data;
	/* a socket an import installed: ours to close */
	if (mnl_attr_get_type(attr) == BATON_CONN_A_FD &&
	    mnl_attr_get_payload_len(attr) == sizeof(__u32) &&
	    (int)mnl_attr_get_u32(attr) >= lowest_free)
		close(mnl_attr_get_u32(attr));
	return MNL_CB_OK;
}

static int attr_cb(const struct nlattr *attr, void *data)
{
	struct answer *r = data;
	__u16 type = mnl_attr_get_type(attr);

	CHECK(type <= BATON_GENL_A_MAX);
	r->hash = fnv(r->hash, &type, sizeof(type));
	switch (mnl_attr_get_type(attr)) {
	case BATON_GENL_A_FREEZE_ID:
		CHECK(mnl_attr_get_payload_len(attr) == sizeof(__u32));
		r->freeze_id = mnl_attr_get_u32(attr);
		r->frozen = true;
		break;
	case BATON_GENL_A_CONN:
		CHECK(mnl_attr_parse_nested(attr, conn_cb, NULL) >= 0);
		break;
	}
	return MNL_CB_OK;
}

static int reply_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct genlmsghdr *g = mnl_nlmsg_get_payload(nlh);

	CHECK(nlh->nlmsg_type == tcp->family);
	CHECK(mnl_nlmsg_get_payload_len(nlh) >= sizeof(*g));
	CHECK(g->cmd > BATON_GENL_CMD_UNSPEC && g->cmd <= BATON_GENL_CMD_MAX);
	CHECK(mnl_attr_parse(nlh, sizeof(*g), attr_cb, data) >= 0);
	return MNL_CB_OK;
}

static void thaw(__u32 id)
{
	char buf[256] __attribute__((aligned(8)));
	struct nlmsghdr *nlh = ko_msg(buf, tcp, BATON_GENL_CMD_THAW);
	struct answer r = {};
	struct ko_ack ack;
	int err;

	mnl_attr_put_u32(nlh, BATON_GENL_A_FREEZE_ID, id);
	err = ko_call(tcp, nlh, reply_cb, &r, &ack);
	/* at its deadline the module thawed it on its own */
	CHECK(err == 0 || err == -ENOENT);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char buf[8192] __attribute__((aligned(8)));
	struct nlmsghdr *nlh;
	struct answer r = { .hash = 2166136261u };
	struct ko_ack ack;
	int err, probe;
	__u32 h;

	if (!tcp)
		setup();
	if (size < 2 || size - 2 > sizeof(buf) - 64)
		return 0;
	nlh = ko_msg(buf, tcp, data[0]);
	memset(mnl_nlmsg_get_payload_tail(nlh), 0, MNL_ALIGN(size - 2));
	memcpy(mnl_nlmsg_get_payload_tail(nlh), data + 2, size - 2);
	nlh->nlmsg_len += MNL_ALIGN(size - 2);
	if (data[1] & 1)
		nlh->nlmsg_flags |= NLM_F_DUMP;
	err = ko_call(tcp, nlh, reply_cb, &r, &ack);
	CHECK(is_ret(err));
	CHECK(!err || memchr(ack.msg, 0, sizeof(ack.msg)));
	h = fnv(2166136261u, data, 1);
	h = fnv(h, &err, sizeof(err));
	h = fnv(h, &r.hash, sizeof(r.hash));
	if (err)
		h = fnv(fnv(h, &ack.off, sizeof(ack.off)), ack.msg,
			strlen(ack.msg));
	answers[h % sizeof(answers)]++;
	if (!err && r.frozen)
		thaw(r.freeze_id);
	probe = dup(devnull);
	CHECK(probe == lowest_free);	/* nothing an import made is left */
	close(probe);
	return 0;
}
