// SPDX-License-Identifier: GPL-2.0-only
/*
 * The host's side of scripts/kexec-check.sh: clients outside the VM whose
 * kernel restarts under them (their connections end in QEMU's user-mode
 * network, which talks TCP to the guest's kernel):
 *  1. CONNS connections to 127.0.0.1:PORT, and KEYS keys SET through
 *     them, each value its own;
 *  2. every connection INCRs a counter of its own, 10 times a second,
 *     each reply checked to be the next number; after 3 s of that, "go"
 *     in SHARE (the guest then runs batonctl kexec);
 *  3. once the guest says "hold.json" (its ports frozen, before the
 *     restore), one more connection, late: it must wait, not be refused,
 *     and be served by the restored kvd;
 *  4. on until the guest says "up2" (restored, its link up) and every
 *     connection, the late one too, has had 3 replies since; then every
 *     counter once more, and every key read back;
 *  5. a JSON object: requests, wrong replies, connections lost, the
 *     longest wait for a reply, and its parts from the times of the
 *     guest's files in SHARE (the host's clock): checkpoint (as
 *     kexec.json says), kexec to init (kexec.json to init2), hold (to
 *     hold.json),
 *     network up and restore (to restore.json), and the peers' next
 *     retransmission (up2 to each connection's first reply), then
 *     "done" in SHARE.
 * Exit status 0 only if no connection was lost and every reply was right.
 *
 * With "fresh" (the guest corrupts the checkpoint, and its restore starts
 * kvd afresh): every connection must end (reset or closed, none answered
 * wrong), and a new one find kvd serving with none of the keys.
 *
 *	kexec_clients PORT CONNS KEYS SHARE [fresh]
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "helpers.h"

#define INTERVAL_MS	100	/* between a connection's requests */
#define WARMUP_MS	3000
#define AFTER_REPLIES	3	/* each connection's, after up2 */
#define DEADLINE_S	300	/* from go to the last reply wanted */
#define REPLY_MS	60000	/* for each of the keys': the VM may be starved */

struct client {
	int fd;
	long long counter;	/* the last reply */
	double sent_ms;		/* the pending request's; 0: none */
	double next_ms;		/* when the next one goes */
	double longest_ms;	/* request to reply */
	double first_after_ms;	/* the first reply after up2; 0: none */
	unsigned int after;	/* replies since up2 */
	char buf[256];
	size_t have;
	bool lost;
	bool ended;		/* by a reset or a close */
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* A file's mtime in SHARE, in ms of CLOCK_REALTIME; 0 if it is not there */
static double file_ms(const char *share, const char *name)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", share, name);
	if (stat(path, &st))
		return 0;
	return st.st_mtim.tv_sec * 1e3 + st.st_mtim.tv_nsec / 1e6;
}

/* A number of the guest's JSON report NAME in SHARE; -1 if it is not there */
static double report_num(const char *share, const char *name, const char *key)
{
	char path[512], buf[4096], *p;
	ssize_t n = -1;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", share, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
	}
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strstr(buf, key);
	return p ? strtod(p + strlen(key), NULL) : -1;
}

static int file_touch(const char *share, const char *name)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", share, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

static int incr_send(struct client *c, int i)
{
	char key[32];
	const char *argv[] = { "INCR", key };

	snprintf(key, sizeof(key), "c%d", i);
	c->sent_ms = now_ms();
	return resp_send(c->fd, 2, argv);
}

/* What came in on c: 1 for a whole right reply, 0 for not yet, -1 wrong */
static int incr_read(struct client *c)
{
	char *nl;
	ssize_t n;

	n = read(c->fd, c->buf + c->have, sizeof(c->buf) - 1 - c->have);
	if (n <= 0) {
		if (n < 0 && errno == EAGAIN)
			return 0;
		c->ended = true;	/* reset or closed: no wrong reply */
		return -1;
	}
	c->have += n;
	c->buf[c->have] = '\0';
	nl = strchr(c->buf, '\n');
	if (!nl)
		return 0;
	if (c->buf[0] != ':' || atoll(c->buf + 1) != c->counter + 1 ||
	    (size_t)(nl + 1 - c->buf) != c->have)
		return -1;
	c->counter++;
	c->have = 0;
	return 1;
}

/* KEYS keys SET, or (check) each read back and compared */
static int keys_set(int fd, int keys, bool check)
{
	char key[32], val[64], want[96], got[256];
	const char *argv[] = { "GET", key }, *set[] = { "SET", key, val };
	ssize_t n;
	int i;

	for (i = 0; i < keys; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		snprintf(val, sizeof(val), "value-%d-%d", i, i * 7919);
		if (check)
			snprintf(want, sizeof(want), "$%zu\r\n%s\r\n",
				 strlen(val), val);
		else
			snprintf(want, sizeof(want), "+OK\r\n");
		/* the emulated VM, busy, may take seconds */
		n = (check ? resp_send(fd, 2, argv) : resp_send(fd, 3, set)) ?:
		    resp_reply(fd, got, sizeof(got), REPLY_MS);
		if (n <= 0 || strcmp(got, want)) {
			fprintf(stderr, "kexec_clients: %s %s: %s%s\n",
				check ? "GET" : "SET", key,
				n == -ETIMEDOUT ? "no reply within the deadline" :
				n == -ECONNRESET ? "the connection ended" :
				n < 0 ? strerror(-n) : "the reply was ",
				n > 0 ? got : "");
			return -EBADMSG;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	double t0, go = 0, up2 = 0, first_after = 0,
	       last_first_after = 0, longest = 0, late_ms = 0,
	       late_reply_ms = 0;
	unsigned long requests = 0, wrong = 0, lost = 0, keys_bad = 0;
	struct client *cl;
	const char *share;
	int port, conns, keys, ep, i, nc, fresh_ok = 0;
	bool all_after, all_lost, fresh, late_in_hold = false;

	if (argc != 5 && (argc != 6 || strcmp(argv[5], "fresh"))) {
		fprintf(stderr, "usage: kexec_clients PORT CONNS KEYS SHARE [fresh]\n");
		return 2;
	}
	/* a connection the guest reset is counted, not fatal */
	signal(SIGPIPE, SIG_IGN);
	fresh = argc == 6;
	port = atoi(argv[1]);
	conns = atoi(argv[2]);
	keys = atoi(argv[3]);
	share = argv[4];
	cl = calloc(conns + 1, sizeof(*cl));	/* and the late one */
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (!cl || ep < 0)
		return 2;
	for (i = 0; i < conns; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = i };

		cl[i].fd = client_connect(AF_INET, port);
		if (cl[i].fd < 0) {
			fprintf(stderr, "kexec_clients: connect %d: %s\n", i,
				strerror(-cl[i].fd));
			return 1;
		}
		if (i == 0 && keys_set(cl[0].fd, keys, false)) {
			fprintf(stderr, "kexec_clients: SET of the keys failed\n");
			return 1;
		}
		fcntl(cl[i].fd, F_SETFL, O_NONBLOCK);
		epoll_ctl(ep, EPOLL_CTL_ADD, cl[i].fd, &ev);
	}
	fprintf(stderr, "kexec_clients: %d connections, %d keys\n", conns, keys);
	cl[conns].fd = -1;
	nc = conns;
	t0 = now_ms();
	for (;;) {
		struct epoll_event evs[64];
		double t = now_ms();
		int n;

		if (!go && t - t0 > WARMUP_MS) {
			if (file_touch(share, "go"))
				return 2;
			go = file_ms(share, "go");
			fprintf(stderr, "kexec_clients: go\n");
		}
		if (!up2 && go && (up2 = file_ms(share, "up2"))) {
			fprintf(stderr, "kexec_clients: the guest is back\n");
			/*
			 * fresh: a connection whose request the old kernel had
			 * acknowledged has nothing for its peer to send again:
			 * it learns of the restart at its next request
			 */
			for (i = 0; fresh && i < conns; i++)
				if (!cl[i].lost && incr_send(&cl[i], i))
					cl[i].ended = cl[i].lost = true;
		}
		/* the late one: the restore not yet made, its port held */
		if (!fresh && go && !late_ms && !up2 &&
		    file_ms(share, "hold.json")) {
			struct epoll_event ev = { .events = EPOLLIN,
						  .data.u32 = conns };

			late_in_hold = !file_ms(share, "restore.json");
			late_ms = now_ms();
			cl[conns].fd = client_connect(AF_INET, port);
			cl[conns].lost = cl[conns].fd < 0;
			if (!cl[conns].lost) {
				fcntl(cl[conns].fd, F_SETFL, O_NONBLOCK);
				epoll_ctl(ep, EPOLL_CTL_ADD, cl[conns].fd, &ev);
			}
			nc = conns + 1;
			fprintf(stderr, "kexec_clients: the late connection%s\n",
				late_in_hold ? ", in the hold" :
				": the restore came first");
		}
		all_after = up2;
		all_lost = true;
		for (i = 0; i < nc; i++) {
			struct client *c = &cl[i];

			if (!c->lost && c->after < AFTER_REPLIES)
				all_after = false;
			if (!c->lost)
				all_lost = false;
			if (!c->lost && !c->sent_ms && t >= c->next_ms) {
				if (incr_send(c, i)) {
					c->lost = true;
					continue;
				}
				requests++;
			}
		}
		if (fresh ? up2 && all_lost : all_after)
			break;
		if (go && t - go > DEADLINE_S * 1e3) {
			fprintf(stderr, "kexec_clients: not every connection answered within %d s of go\n",
				DEADLINE_S);
			break;
		}
		if (file_ms(share, "failed")) {
			fprintf(stderr, "kexec_clients: the guest failed\n");
			break;
		}
		n = epoll_wait(ep, evs, 64, 10);
		for (i = 0; i < n; i++) {
			struct client *c = &cl[evs[i].data.u32];
			int r = incr_read(c);

			if (!r)
				continue;
			t = now_ms();
			if (r < 0) {
				if (!c->ended)
					wrong++;
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				c->lost = true;
				continue;
			}
			if (t - c->sent_ms > c->longest_ms)
				c->longest_ms = t - c->sent_ms;
			if (up2 && !c->first_after_ms)
				c->first_after_ms = t;
			if (c == &cl[conns] && !late_reply_ms)
				late_reply_ms = t;
			if (up2)
				c->after++;
			c->sent_ms = 0;
			c->next_ms = t + INTERVAL_MS;
		}
	}
	for (i = 0; i < nc; i++) {
		struct client *c = &cl[i];

		if (c->lost) {
			lost++;
			continue;
		}
		if (c->longest_ms > longest)
			longest = c->longest_ms;
		if (c->first_after_ms &&
		    (!first_after || c->first_after_ms < first_after))
			first_after = c->first_after_ms;
		if (c->first_after_ms > last_first_after)
			last_first_after = c->first_after_ms;
	}
	/* a fresh kvd: none of the keys, every counter from 1 */
	if (fresh) {
		const char *get[] = { "GET", "k0" }, *incr[] = { "INCR", "c0" };
		char got[256];
		int fd = client_connect(AF_INET, port);

		fresh_ok = fd >= 0 && !resp_send(fd, 2, get) &&
			   resp_reply(fd, got, sizeof(got), REPLY_MS) > 0 &&
			   !strcmp(got, "$-1\r\n") && !resp_send(fd, 2, incr) &&
			   resp_reply(fd, got, sizeof(got), REPLY_MS) > 0 &&
			   !strcmp(got, ":1\r\n");
		if (fd >= 0)
			close(fd);
	}
	/* every key, as it was SET before the restart */
	if (!fresh && !cl[0].lost) {
		fcntl(cl[0].fd, F_SETFL, 0);
		if (cl[0].sent_ms) {
			char buf[256];

			resp_reply(cl[0].fd, buf, sizeof(buf), REPLY_MS);
		}
		keys_bad = keys_set(cl[0].fd, keys, true) ? 1 : 0;
	}
	file_touch(share, "done");
	for (i = 0; i < nc; i++)
		if (cl[i].fd >= 0)
			close(cl[i].fd);
	free(cl);
	close(ep);
	if (fresh) {
		printf("{\"mode\":\"fresh\",\"conns\":%d,\"requests\":%lu,"
		       "\"wrong\":%lu,\"ended\":%lu,\"fresh_served\":%d}\n",
		       conns, requests, wrong, lost, fresh_ok);
		return wrong || lost != (unsigned long)conns || !fresh_ok ? 1 : 0;
	}
	printf("{\"conns\":%d,\"keys\":%d,\"requests\":%lu,\"wrong\":%lu,"
	       "\"lost\":%lu,\"keys_wrong\":%lu,\"late_in_hold\":%d,"
	       "\"late_first_reply_ms\":%.0f,\"longest_stall_ms\":%.0f,"
	       "\"checkpoint_ms\":%.0f,\"kexec_to_init_ms\":%.0f,"
	       "\"hold_ms\":%.0f,\"restore_ms\":%.0f,"
	       "\"first_retransmit_ms\":%.0f,\"last_retransmit_ms\":%.0f}\n",
	       conns, keys, requests, wrong, lost, keys_bad, late_in_hold,
	       late_reply_ms ? late_reply_ms - late_ms : -1, longest,
	       report_num(share, "kexec.json", "\"checkpoint_ms\":"),
	       file_ms(share, "init2") - file_ms(share, "kexec.json"),
	       file_ms(share, "hold.json") - file_ms(share, "init2"),
	       file_ms(share, "restore.json") - file_ms(share, "hold.json"),
	       first_after ? first_after - up2 : -1,
	       last_first_after ? last_first_after - up2 : -1);
	return lost || wrong || keys_bad || !up2 || !late_in_hold ? 1 : 0;
}
