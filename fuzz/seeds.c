// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * 1. Writes the seed corpora, DIR/NAME/ for each harness, from the
 *    library's own builders: the messages the tests exchange (hello_put,
 *    welcome_put, msg_send_error's ERROR, steps_put, sockets_put), blobs
 *    of each kind (the record writer), TCP checkpoint records
 *    (tcp_rec_build) with and without queues and baton.ko's state, and
 *    one request of each command to baton.ko's family, its attributes
 *    put as the library puts them (libmnl), for the genl harness.
 * 2. Each file is what the harness takes: its leading byte first (see the
 *    harness's comment), then the bytes. Run by "make -C fuzz seeds".
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/tcp.h>

#include <linux/baton.h>
#include "wire/wire.h"
#include "tcp/tcp.h"
#include "tcp/ko.h"
#include "coordinator/coordinator.h"
#include "fuzz.h"

static const char *top;

static void seed(const char *harness, const char *name, uint8_t lead,
		 const void *data, size_t len)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", top, harness);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/%s", top, harness, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	CHECK(fd >= 0);
	CHECK(write(fd, &lead, 1) == 1);
	CHECK(write(fd, data, len) == (ssize_t)len);
	close(fd);
}

static void msg_seed(const char *name, const struct baton_msg *m)
{
	seed("msg", name, m->nfds, m->buf, m->nlh->nlmsg_len);
}

static void msg_seeds(void)
{
	struct versions ver = { 3, 1, 2, 1, 1 };
	struct hello h = { .role = BATON_ROLE_COORDINATOR, .pid = 1234,
			   .app = "kvd 2.0", .timeout_ms = 5000, .ver = ver };
	struct welcome w = { 42, "kvd", "kvd 1.0", 123456789, ver };
	struct held_socket s = { .fd = 0 };
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6,
				   .sin6_port = htons(8080),
				   .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_port = htons(80),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct steps st = { .n = 0 };
	struct baton_msg *m = msg_alloc();

	CHECK(m);
	CHECK(hello_put(m, &h) == 0);
	msg_seed("hello", m);
	h.ver.state = 0;
	h.pid = 0;
	h.app = NULL;
	h.timeout_ms = 0;
	CHECK(hello_put(m, &h) == 0);
	msg_seed("hello-proto", m);
	/* a new instance's, with what it takes */
	h.role = BATON_ROLE_SUCCESSOR;
	h.takes = BATON_TAKES_CONNS_EARLY;
	CHECK(hello_put(m, &h) == 0);
	msg_seed("hello-takes", m);
	CHECK(welcome_put(m, BATON_MSG_WELCOME, &w) == 0);
	msg_seed("welcome", m);
	w.time_ns = 0;
	CHECK(welcome_put(m, BATON_MSG_INFO, &w) == 0);
	msg_seed("info", m);

	msg_init(m, BATON_MSG_ERROR);
	CHECK(msg_put_u32(m, BATON_A_ERRNO, EPROTONOSUPPORT) == 0 &&
	      msg_put_str(m, BATON_A_TEXT, "state version 1 is older than 2") == 0);
	msg_seed("error", m);

	msg_init(m, BATON_MSG_SOCKETS);
	s.si.id = 1;
	s.si.kind = BATON_SOCK_LISTENER;
	s.si.local_len = sizeof(a6);
	memcpy(&s.si.local, &a6, sizeof(a6));
	CHECK(sockets_put(m, &s) == 0);
	s.si.id = 7;
	s.si.kind = BATON_SOCK_CONN;
	s.si.local_len = s.si.peer_len = sizeof(a4);
	memcpy(&s.si.local, &a4, sizeof(a4));
	memcpy(&s.si.peer, &a4, sizeof(a4));
	CHECK(sockets_put(m, &s) == 0);
	msg_seed("sockets", m);
	m->nfds = 0;		/* not ours */

	/* fixed figures: the seeds stay the same from one run to the next */
	st.n = 2;
	snprintf(st.s[0].name, sizeof(st.s[0].name), "freeze");
	st.s[0].ns = 120000;
	snprintf(st.s[1].name, sizeof(st.s[1].name), "export");
	st.s[1].ns = 2400000;
	msg_init(m, BATON_MSG_PHASE2_DONE);
	CHECK(msg_put_u32(m, BATON_A_CONNS, 2) == 0 && steps_put(m, &st) == 0);
	msg_seed("phase2-done", m);

	msg_init(m, BATON_MSG_BLOB);
	CHECK(msg_put_u32(m, BATON_A_BLOB_KIND, BATON_BLOB_STATE) == 0 &&
	      msg_put_u32(m, BATON_A_RECORDS, 3) == 0 &&
	      msg_put_u64(m, BATON_A_BYTES, 200) == 0);
	m->nfds = 1;
	msg_seed("blob", m);
	m->nfds = 0;

	msg_init(m, BATON_MSG_UPGRADE);
	CHECK(msg_put_u32(m, BATON_A_FLAGS, 0) == 0 &&
	      msg_put_u32(m, BATON_A_TIMEOUT_MS, 5000) == 0 &&
	      msg_put_u32(m, BATON_A_BLACKOUT_MS, 50) == 0 &&
	      msg_put_u64(m, BATON_A_DEADLINE_NS, 1000000) == 0 &&
	      msg_put_u32(m, BATON_A_STDIO, 2) == 0);
	msg_seed("upgrade", m);
	msg_free(m);
}

/* the blob of kind with n records, as a memfd's bytes */
static void blob_seed(const char *name, enum baton_blob_kind kind, int n)
{
	static const uint8_t leads[] = {
		[BATON_BLOB_STATE] = 0, [BATON_BLOB_DELTA] = 1,
		[BATON_BLOB_CONNS] = 2,
	};
	struct baton_rec_writer w;
	char buf[4096], big[300];
	ssize_t len;
	int i, fd;

	memset(big, 'v', sizeof(big));
	CHECK(writer_init(&w, kind, "kvd", 2) == 0);
	for (i = 0; i < n; i++) {
		CHECK(baton_rec_begin(&w, 100 + i) == 0);
		CHECK(baton_rec_put_str(&w, 1, "key") == 0 &&
		      baton_rec_put_bytes(&w, 2, big, 10 + 37 * i) == 0 &&
		      baton_rec_put_u64(&w, 3, i) == 0 &&
		      baton_rec_put_u32(&w, 4, i) == 0);
		CHECK(baton_rec_end(&w) == 0);
	}
	CHECK(writer_finish(&w, &fd) == 0);
	writer_free(&w);
	len = pread(fd, buf, sizeof(buf), 0);
	CHECK(len > 0 && len < (ssize_t)sizeof(buf));
	close(fd);
	seed("records", name, leads[kind], buf, len);
}

static void record_seeds(void)
{
	blob_seed("state-0", BATON_BLOB_STATE, 0);
	blob_seed("state-3", BATON_BLOB_STATE, 3);
	blob_seed("delta-1", BATON_BLOB_DELTA, 1);
	blob_seed("conns-4", BATON_BLOB_CONNS, 4);
}

/* baton.ko's state of a connection, as TCP_EXPORT answers it */
static size_t kernel_state(char *buf, size_t len, __u32 cwnd)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);

	mnl_attr_put_u32(nlh, BATON_GENL_A_CWND, cwnd);
	mnl_attr_put_u32(nlh, BATON_GENL_A_SSTHRESH, 0x7fffffff);
	mnl_attr_put_u32(nlh, BATON_GENL_A_PRIOR_CWND, cwnd);
	mnl_attr_put_u32(nlh, BATON_GENL_A_SRTT_US, 800);
	mnl_attr_put_u32(nlh, BATON_GENL_A_MDEV_US, 100);
	mnl_attr_put_u32(nlh, BATON_GENL_A_RTT_MIN_US, 50);
	mnl_attr_put_u32(nlh, BATON_GENL_A_RTO_US, 200000);
	CHECK(nlh->nlmsg_len <= len);
	len = mnl_nlmsg_get_payload_len(nlh);
	memmove(buf, mnl_nlmsg_get_payload(nlh), len);
	return len;
}

static void ckpt_seed(const char *name, const struct tcp_ckpt *c)
{
	void *rec;
	size_t len;

	CHECK(tcp_rec_build(c, &rec, &len) == 0);
	/* a module that knows every attribute of this header */
	seed("checkpoint", name, BATON_GENL_A_MAX, rec, len);
	free(rec);
}

static void checkpoint_seeds(void)
{
	static const char data[] = "GET /index.html HTTP/1.1\r\n\r\nHTTP/1.1 200 OK";
	char kernel[256] __attribute__((aligned(8)));
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_port = htons(80),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6,
				   .sin6_port = htons(8080),
				   .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	struct tcp_ckpt c = {
		.family = AF_INET, .snd_seq = 1000, .rcv_seq = 0xfffffff0,
		.mss = 65483, .options = TCPI_OPT_TIMESTAMPS | TCPI_OPT_WSCALE |
					 TCPI_OPT_SACK,
		.snd_wscale = 7, .rcv_wscale = 7, .timestamp = 123456,
		.win = { .snd_wl1 = 1, .snd_wnd = 65536, .max_window = 65536,
			 .rcv_wnd = 65536, .rcv_wup = 1 },
		.sendq = data + 28, .sent = 5, .unsent = 10,
		.recvq = data, .inq = 28,
		.kernel = kernel,
	};

	memcpy(&c.local, &a4, sizeof(a4));
	a4.sin_port = htons(40000);
	memcpy(&c.peer, &a4, sizeof(a4));
	c.klen = kernel_state(kernel, sizeof(kernel), 10);
	ckpt_seed("ipv4-queues", &c);

	c.family = AF_INET6;
	memcpy(&c.local, &a6, sizeof(a6));
	a6.sin6_port = htons(40001);
	memcpy(&c.peer, &a6, sizeof(a6));
	c.options = TCPI_OPT_SACK;
	c.sent = c.unsent = c.inq = 0;
	c.klen = 0;
	ckpt_seed("ipv6-idle", &c);
}

/* a request's attributes: the genl harness takes them after its two bytes */
static void genl_seed(const char *name, __u8 cmd, bool dump,
		      const struct nlmsghdr *nlh)
{
	char buf[4096];

	CHECK(mnl_nlmsg_get_payload_len(nlh) + 2 <= sizeof(buf));
	buf[0] = cmd;
	buf[1] = dump;
	memcpy(buf + 2, mnl_nlmsg_get_payload(nlh),
	       mnl_nlmsg_get_payload_len(nlh));
	seed("genl", name, buf[0], buf + 1, mnl_nlmsg_get_payload_len(nlh) + 1);
}

/*
 * The descriptors the genl harness opens: 3 its netlink socket, 4-6 an
 * IPv4 listener, client and server, 7-9 the same in IPv6.
 */
static void genl_seeds(void)
{
	char buf[4096] __attribute__((aligned(8)));
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_port = htons(80),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct tcp_repair_window win = { .snd_wnd = 65536, .rcv_wnd = 65536 };
	struct nlmsghdr *nlh;
	struct nlattr *nest, *state;

	nlh = mnl_nlmsg_put_header(buf);
	mnl_attr_put_u32(nlh, BATON_GENL_A_FD, 5);
	genl_seed("tcp-export", BATON_GENL_CMD_TCP_EXPORT, false, nlh);
	mnl_attr_put_u32(nlh, BATON_GENL_A_CWND, 10);
	mnl_attr_put_u32(nlh, BATON_GENL_A_SSTHRESH, 20);
	mnl_attr_put_u32(nlh, BATON_GENL_A_SRTT_US, 1000);
	genl_seed("tcp-import", BATON_GENL_CMD_TCP_IMPORT, false, nlh);

	nlh = mnl_nlmsg_put_header(buf);
	nest = mnl_attr_nest_start(nlh, BATON_GENL_A_FLOW);
	mnl_attr_put_u32(nlh, BATON_FLOW_A_FD, 5);
	mnl_attr_nest_end(nlh, nest);
	nest = mnl_attr_nest_start(nlh, BATON_GENL_A_FLOW);
	mnl_attr_put_u32(nlh, BATON_FLOW_A_FD, 4);
	mnl_attr_put(nlh, BATON_FLOW_A_LOCAL, sizeof(a4), &a4);
	mnl_attr_put(nlh, BATON_FLOW_A_PEER, sizeof(a4), &a4);
	mnl_attr_nest_end(nlh, nest);
	mnl_attr_put_u32(nlh, BATON_GENL_A_DEADLINE_MS, 100);
	mnl_attr_put_u32(nlh, BATON_GENL_A_FLOW_PACKETS, 16);
	genl_seed("freeze", BATON_GENL_CMD_FREEZE, false, nlh);

	nlh = mnl_nlmsg_put_header(buf);
	mnl_attr_put_u32(nlh, BATON_GENL_A_FREEZE_ID, 1);
	genl_seed("thaw", BATON_GENL_CMD_THAW, false, nlh);
	nlh = mnl_nlmsg_put_header(buf);
	genl_seed("freeze-stats", BATON_GENL_CMD_FREEZE_STATS, false, nlh);

	nlh = mnl_nlmsg_put_header(buf);
	mnl_attr_put_u32(nlh, BATON_GENL_A_FD, 6);
	mnl_attr_put_u32(nlh, BATON_GENL_A_FD, 9);
	genl_seed("conn-export", BATON_GENL_CMD_CONN_EXPORT, true, nlh);

	nlh = mnl_nlmsg_put_header(buf);
	nest = mnl_attr_nest_start(nlh, BATON_GENL_A_CONN);
	mnl_attr_put_u32(nlh, BATON_CONN_A_INDEX, 0);
	mnl_attr_put(nlh, BATON_CONN_A_LOCAL, sizeof(a4), &a4);
	a4.sin_port = htons(40000);
	mnl_attr_put(nlh, BATON_CONN_A_PEER, sizeof(a4), &a4);
	mnl_attr_put_u32(nlh, BATON_CONN_A_SND_SEQ, 1000);
	mnl_attr_put_u32(nlh, BATON_CONN_A_RCV_SEQ, 2000);
	mnl_attr_put_u32(nlh, BATON_CONN_A_MSS, 1460);
	mnl_attr_put_u32(nlh, BATON_CONN_A_OPTIONS,
			 TCPI_OPT_SACK | TCPI_OPT_WSCALE);
	mnl_attr_put_u32(nlh, BATON_CONN_A_SND_WSCALE, 7);
	mnl_attr_put_u32(nlh, BATON_CONN_A_RCV_WSCALE, 7);
	mnl_attr_put(nlh, BATON_CONN_A_WINDOW, sizeof(win), &win);
	mnl_attr_put_u32(nlh, BATON_CONN_A_SENDQ_LEN, 0);
	mnl_attr_put_u32(nlh, BATON_CONN_A_UNSENT_LEN, 4);
	mnl_attr_put_u32(nlh, BATON_CONN_A_RECVQ_LEN, 4);
	mnl_attr_put(nlh, BATON_CONN_A_UNSENT, 4, "ping");
	mnl_attr_put(nlh, BATON_CONN_A_RECVQ, 4, "pong");
	state = mnl_attr_nest_start(nlh, BATON_CONN_A_STATE);
	mnl_attr_put_u32(nlh, BATON_GENL_A_CWND, 10);
	mnl_attr_put_u32(nlh, BATON_GENL_A_SRTT_US, 1000);
	mnl_attr_nest_end(nlh, state);
	mnl_attr_nest_end(nlh, nest);
	genl_seed("conn-import", BATON_GENL_CMD_CONN_IMPORT, false, nlh);
}

/* A checkpoint file as file_write() writes it: a listener, two blobs */
static void ckptfile_seed(void)
{
	struct baton_checkpoint ck = {
		.info = { .service = "kvd", .app = "kvd 2", .pid = 42,
			  .kernel = "6.1.0-56-amd64",
			  .boot_id = "f6ef0fa4-c4ff-42f7-bfcc-59068713c3c3",
			  .netns = 4026531840ULL, .genl_version = 1,
			  .genl_maxattr = 19, .freeze_ms = 60000,
			  .deadline_ns = 123456789000ULL },
		.ver = { .proto = 2, .proto_min = 2, .state = 2, .compat = 1,
			 .min = 1 },
	};
	struct file_listener l = { .id = 7, .local_len = sizeof(struct sockaddr_in6) };
	struct sockaddr_in6 *a6 = (void *)&l.local;
	enum baton_blob_kind kinds[] = { BATON_BLOB_STATE, BATON_BLOB_CONNS };
	char path[] = "/tmp/baton-seed-ckpt.XXXXXX", buf[8192];
	struct baton_rec_writer w;
	unsigned int i;
	ssize_t len;
	int fd, memfd;

	a6->sin6_family = AF_INET6;
	a6->sin6_port = htons(6379);
	a6->sin6_addr.s6_addr[15] = 1;
	ck.lsn = &l;
	ck.nlsn = ck.info.listeners = 1;
	for (i = 0; i < 2; i++) {
		CHECK(writer_init(&w, kinds[i], "kvd", 2) == 0);
		CHECK(baton_rec_begin(&w, 100 + i) == 0 &&
		      baton_rec_put_str(&w, 1, "key") == 0 &&
		      baton_rec_put_u32(&w, 2, i) == 0 &&
		      baton_rec_end(&w) == 0);
		CHECK(writer_finish(&w, &memfd) == 0);
		writer_free(&w);
		CHECK(file_blob_add(&ck, kinds[i], 1, memfd) == 0);
	}
	ck.info.blobs = ck.nblobs;
	fd = mkstemp(path);
	CHECK(fd >= 0);
	CHECK(file_write(fd, &ck) == 0);
	len = pread(fd, buf, sizeof(buf), 0);
	CHECK(len > 0 && len < (ssize_t)sizeof(buf));
	close(fd);
	unlink(path);
	/* the checksum made right again, as the fuzzer changes it */
	seed("ckptfile", "kvd-state-conns", 1, buf, len);
	ck.lsn = NULL;		/* on the stack */
	file_free(&ck);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: seeds DIR\n");
		return 2;
	}
	top = argv[1];
	mkdir(top, 0755);
	msg_seeds();
	record_seeds();
	checkpoint_seeds();
	ckptfile_seed();
	genl_seeds();
	return 0;
}
