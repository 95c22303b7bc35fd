// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * 1. Feeds: one control message as a peer sends it. The first byte's low
 *    three bits say how many descriptors (0-7) travel with it; the rest
 *    is the packet, sent on a SOCK_SEQPACKET pair and taken by msg_recv().
 * 2. Checks that msg_recv() and every reader of a message (msg_parse,
 *    hello_get, welcome_get, msg_error_text, steps_get, sockets_parse)
 *    answer 0 or -errno, and never read past the message: the rest of its
 *    buffer is poisoned for ASan.
 * 3. Checks that every attribute msg_parse() hands on lies inside the
 *    message and has its type's exact length.
 * 4. Checks round trips: what hello_get, welcome_get, steps_get and
 *    sockets_parse read, built again by the message's own builder, reads
 *    back the same.
 * 5. Checks that no descriptor leaks, whatever the message was.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <sanitizer/asan_interface.h>

#include "wire/wire.h"
#include "fuzz.h"

static int pair[2] = { -1, -1 };
static int devnull = -1;
static int lowest_free;		/* the descriptor a leak would take */
static struct baton_msg *m, *m2;

static void setup(void)
{
	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) == 0);
	devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	CHECK(devnull >= 0);
	m = msg_alloc();
	m2 = msg_alloc();
	CHECK(m && m2);
	lowest_free = dup(devnull);
	CHECK(lowest_free >= 0);
	close(lowest_free);
}

static int send_packet(const uint8_t *data, size_t size, unsigned int nfds)
{
	char cbuf[CMSG_SPACE(sizeof(int) * 8)] = {};
	struct iovec iov = { (void *)data, size };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	unsigned int i;

	if (nfds) {
		struct cmsghdr *c;

		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		for (i = 0; i < nfds; i++)
			memcpy(CMSG_DATA(c) + i * sizeof(int), &devnull,
			       sizeof(int));
	}
	return sendmsg(pair[0], &mh, MSG_DONTWAIT) == (ssize_t)size ? 0 : -1;
}

/* a known attribute's payload length, as the library's table says; 0: a string */
static size_t attr_len(int type)
{
	switch (attr_type(type)) {
	case MNL_TYPE_U32:
		return 4;
	case MNL_TYPE_U64:
		return 8;
	default:
		return 0;
	}
}

static void check_tb(const struct baton_msg *msg, const struct nlattr **tb)
{
	const char *start = mnl_nlmsg_get_payload(msg->nlh);
	const char *end = (const char *)msg->nlh + msg->nlh->nlmsg_len;
	int t;

	for (t = 0; t <= BATON_A_MAX; t++) {
		const char *a = (const char *)tb[t];

		if (!a)
			continue;
		CHECK(t != BATON_A_UNSPEC && !attr_repeated(t));
		CHECK(a >= start && a + tb[t]->nla_len <= end);
		CHECK(mnl_attr_get_type(tb[t]) == t);
		if (attr_len(t))
			CHECK(mnl_attr_get_payload_len(tb[t]) == attr_len(t));
		else
			CHECK(strnlen(mnl_attr_get_str(tb[t]),
				      mnl_attr_get_payload_len(tb[t])) <
			      mnl_attr_get_payload_len(tb[t]));
	}
}

static void same_versions(const struct versions *a, const struct versions *b)
{
	CHECK(a->proto == b->proto && a->proto_min == b->proto_min &&
	      a->state == b->state && a->compat == b->compat &&
	      a->min == b->min);
}

static void hello_again(const struct baton_msg *msg)
{
	const struct nlattr *tb[BATON_A_MAX + 1], *tb2[BATON_A_MAX + 1];
	struct hello h, h2;
	int err;

	err = hello_get(msg, tb, &h);
	CHECK(err == 0 || err == -EPROTO);
	if (err)
		return;
	err = hello_put(m2, &h);
	CHECK(err == 0 || err == -EMSGSIZE);
	if (err)
		return;
	CHECK(hello_get(m2, tb2, &h2) == 0);
	CHECK(h.role == h2.role && h.pid == h2.pid &&
	      h.timeout_ms == h2.timeout_ms && !strcmp(h.app, h2.app) &&
	      h.ver.proto == h2.ver.proto);
	/* without a state version, HELLO says its protocol alone */
	if (h.ver.state)
		same_versions(&h.ver, &h2.ver);
}

static void welcome_again(const struct baton_msg *msg, const struct nlattr **tb)
{
	const struct nlattr *tb2[BATON_A_MAX + 1];
	struct welcome w, w2;
	int err;

	welcome_get(tb, &w);
	err = welcome_put(m2, msg->nlh->nlmsg_type, &w);
	CHECK(err == 0 || err == -EMSGSIZE);
	if (err)
		return;
	CHECK(msg_parse(m2, tb2) == 0);
	check_tb(m2, tb2);
	welcome_get(tb2, &w2);
	CHECK(w.pid == w2.pid && w.time_ns == w2.time_ns &&
	      !strcmp(w.service, w2.service) && !strcmp(w.app, w2.app));
	same_versions(&w.ver, &w2.ver);
}

static void steps_again(const struct baton_msg *msg)
{
	static struct steps st;
	struct baton_step again[BATON_MAX_STEPS];
	unsigned int n = 0, n2 = 0, i;
	int err;

	steps_get(msg, "old", st.s, &n);
	CHECK(n <= BATON_MAX_STEPS);
	for (i = 0; i < n; i++)
		CHECK(memchr(st.s[i].name, 0, sizeof(st.s[i].name)) &&
		      !strcmp(st.s[i].who, "old"));
	st.n = n;
	msg_init(m2, BATON_MSG_PHASE2_DONE);
	err = steps_put(m2, &st);
	CHECK(err == 0 || err == -EMSGSIZE);
	if (err)
		return;
	steps_get(m2, "old", again, &n2);
	CHECK(n2 == n);
	for (i = 0; i < n; i++)
		CHECK(!strcmp(again[i].name, st.s[i].name) &&
		      again[i].ns == st.s[i].ns);
}

static void sockets_again(struct baton_msg *msg)
{
	static struct held_socket s[BATON_MAX_FDS_PER_MSG];
	static struct held_socket s2[BATON_MAX_FDS_PER_MSG];
	unsigned int had = msg->nfds, n = 0, n2 = 0, i;
	int err;

	err = sockets_parse(msg, s, &n);
	CHECK(is_ret(err));
	CHECK(msg->nfds == 0);
	if (err)
		return;
	CHECK(n == had);
	msg_init(m2, BATON_MSG_SOCKETS);
	for (i = 0; i < n && !err; i++) {
		CHECK(s[i].si.kind >= BATON_SOCK_LISTENER &&
		      s[i].si.kind <= BATON_SOCK_CONTROL && s[i].si.id);
		CHECK(s[i].si.local_len <= sizeof(s[i].si.local) &&
		      s[i].si.peer_len <= sizeof(s[i].si.peer));
		err = sockets_put(m2, &s[i]);
		CHECK(err == 0 || err == -EMSGSIZE);
	}
	if (err) {
		m2->nfds = 0;		/* still s[]'s */
		goto close_fds;
	}
	CHECK(sockets_parse(m2, s2, &n2) == 0 && n2 == n);
	for (i = 0; i < n; i++) {
		CHECK(s2[i].fd == s[i].fd && s2[i].si.id == s[i].si.id &&
		      s2[i].si.kind == s[i].si.kind &&
		      s2[i].si.local_len == s[i].si.local_len &&
		      s2[i].si.peer_len == s[i].si.peer_len);
		CHECK(!memcmp(&s2[i].si.local, &s[i].si.local,
			      s[i].si.local_len) &&
		      !memcmp(&s2[i].si.peer, &s[i].si.peer,
			      s[i].si.peer_len));
	}
close_fds:
	for (i = 0; i < n; i++)
		close(s[i].fd);
}

static void read_all(struct baton_msg *msg)
{
	const struct nlattr *tb[BATON_A_MAX + 1];
	char text[256];
	int err;

	err = msg_parse(msg, tb);
	CHECK(err == 0 || err == -EINVAL);
	CHECK(msg_type_name(msg->nlh->nlmsg_type) != NULL);
	if (err)
		return;
	check_tb(msg, tb);
	steps_again(msg);
	switch (msg->nlh->nlmsg_type) {
	case BATON_MSG_HELLO:
		hello_again(msg);
		break;
	case BATON_MSG_WELCOME:
	case BATON_MSG_INFO:
		welcome_again(msg, tb);
		break;
	case BATON_MSG_ERROR:
		err = msg_error_text(tb, text, sizeof(text));
		CHECK(err < 0 && is_ret(err));
		CHECK(memchr(text, 0, sizeof(text)));
		break;
	case BATON_MSG_SOCKETS:
		sockets_again(msg);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int err, probe;

	if (!m)
		setup();
	if (size < 1)
		return 0;
	if (send_packet(data + 1, size - 1, data[0] & 7))
		return 0;	/* too large for the socket: not a message */
	err = msg_recv(pair[1], m, 0);
	CHECK(is_ret(err));
	if (err) {
		CHECK(m->nfds == 0);
	} else {
		size_t len = m->nlh->nlmsg_len;

		CHECK(len == size - 1 && m->nfds == (data[0] & 7u));
		ASAN_POISON_MEMORY_REGION(m->buf + len, sizeof(m->buf) - len);
		read_all(m);
		ASAN_UNPOISON_MEMORY_REGION(m->buf + len, sizeof(m->buf) - len);
	}
	msg_close_fds(m);
	probe = dup(devnull);
	CHECK(probe == lowest_free);	/* nothing else left open */
	close(probe);
	return 0;
}
