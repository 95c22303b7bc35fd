// SPDX-License-Identifier: GPL-2.0-only
/*
 * httpd, the HTTP example, upgraded under keep-alive clients:
 *  1. a client that has sent half a request finishes it on the new version
 *     and gets the whole response, byte for byte;
 *  2. a client in the middle of a large file's response (the old had sent
 *     part of it) receives the rest from the new version, byte for byte,
 *     the file moving as a path and an offset, not as bytes;
 *  3. both go on with their next request on the same connection, which
 *     counts its requests across the upgrade;
 *  4. a file replaced while a connection sends it makes the upgrade roll
 *     back, and the old version finishes the old file;
 * over IPv4 and IPv6, v1 -> v2 and v2 -> v1.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "helpers.h"

#define BIG_LEN		(16 << 20)	/* above the largest send buffer */
#define PAGE		"<!DOCTYPE html><p>baton</p>\n"
#define WINDOW		65536		/* the slow reader's receive buffer */

struct http_service {
	char rundir[64];
	char root[128];
	char log[128];
	int lfd, port;
	pid_t first;		/* the first instance, our child */
};

FIXTURE(httpd) {
	struct http_service s;
	char *big;
};

FIXTURE_VARIANT(httpd) {
	int family;
	int from, to;
};

FIXTURE_VARIANT_ADD(httpd, ipv4_v1_v2) { .family = AF_INET, .from = 1, .to = 2 };
FIXTURE_VARIANT_ADD(httpd, ipv4_v2_v1) { .family = AF_INET, .from = 2, .to = 1 };
FIXTURE_VARIANT_ADD(httpd, ipv6_v1_v2) { .family = AF_INET6, .from = 1, .to = 2 };
FIXTURE_VARIANT_ADD(httpd, ipv6_v2_v1) { .family = AF_INET6, .from = 2, .to = 1 };

static char *pattern(unsigned int seed)
{
	char *p = malloc(BIG_LEN);
	size_t i;

	for (i = 0; p && i < BIG_LEN; i++)
		p[i] = 'a' + (i * 7 + i / 4093 + seed) % 26;
	return p;
}

static int write_file(const char *dir, const char *name, const void *p,
		      size_t len)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (write(fd, p, len) != (ssize_t)len) {
		close(fd);
		return -EIO;
	}
	return close(fd) ? -errno : 0;
}

/* httpd-v<version> serving s->lfd; waits for its control socket. */
static pid_t httpd_start(struct http_service *s, int version)
{
	char path[512], name[16], fdstr[16], sock[256];
	const char *argv[] = { path, "--quiet", "--listen-fd", fdstr,
			       "--root", s->root, NULL };
	pid_t pid;

	snprintf(sock, sizeof(sock), "%s/httpd.sock", s->rundir);
	snprintf(fdstr, sizeof(fdstr), "%d", s->lfd);
	snprintf(name, sizeof(name), "httpd-v%d", version);
	bin(name, path, sizeof(path));
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int fd = open(s->log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		if (fd >= 0)
			dup2(fd, 2);
		fcntl(s->lfd, F_SETFD, 0);	/* inherited on purpose */
		execv(path, (char *const *)argv);
		_exit(127);
	}
	if (wait_path(sock, SURE_REPLY_MS)) {
		stop_and_reap(pid, SIGKILL);
		return -ETIMEDOUT;
	}
	return pid;
}

/* Upgrades to httpd-v<version>; returns batonctl's exit status. */
static int upgrade(struct http_service *s, int version, char *out, size_t len)
{
	char path[512], name[16];
	const char *args[] = { "-j", "upgrade", "httpd", "--log", s->log,
			       "--timeout-ms", SURE_STEP_MS,
			       "--blackout-timeout-ms", SURE_BLACKOUT_MS, "--",
			       path, "--quiet", "--root", s->root, NULL };

	snprintf(name, sizeof(name), "httpd-v%d", version);
	bin(name, path, sizeof(path));
	return batonctl(out, len, args);
}

FIXTURE_SETUP(httpd)
{
	struct http_service *s = &self->s;

	ASSERT_EQ(0, netns_enter());
	ASSERT_EQ(0, rundir_make(s->rundir, sizeof(s->rundir)));
	snprintf(s->root, sizeof(s->root), "%s/www", s->rundir);
	snprintf(s->log, sizeof(s->log), "%s/httpd.log", s->rundir);
	ASSERT_EQ(0, mkdir(s->root, 0755));
	self->big = pattern(0);
	ASSERT_NE(NULL, self->big);
	ASSERT_EQ(0, write_file(s->root, "big.txt", self->big, BIG_LEN));
	ASSERT_EQ(0, write_file(s->root, "index.html", PAGE, strlen(PAGE)));
	s->lfd = listener_make(variant->family, &s->port);
	ASSERT_LE(0, s->lfd);
	s->first = httpd_start(s, variant->from);
	ASSERT_LT(0, s->first);
}

FIXTURE_TEARDOWN(httpd)
{
	const char *args[] = { "status", "-j", NULL };
	char out[4096];

	if (!_metadata->passed) {
		struct service log = {};

		snprintf(log.log, sizeof(log.log), "%s", self->s.log);
		service_log_tail(&log, 30);
	}
	/* whichever instance serves now is not necessarily our child */
	batonctl(out, sizeof(out), args);
	if (json_num(out, "pid") > 0)
		kill(json_num(out, "pid"), SIGTERM);
	if (self->s.first > 0)
		stop_and_reap(self->s.first, SIGKILL);
	netns_reap();
	close(self->s.lfd);
	rundir_remove(self->s.rundir);
	free(self->big);
}

struct response {
	char head[2048];
	int status;
	long long length;	/* Content-Length */
	long long requests;	/* X-Connection-Requests */
	int version;		/* of the Server: baton-httpd/N that sent it */
};

static long long header_num(const char *head, const char *name)
{
	const char *p = strcasestr(head, name);

	return p ? atoll(p + strlen(name)) : -1;
}

/* Reads exactly len bytes, or fails after timeout_ms without progress. */
static int read_exact(int fd, char *buf, size_t len, int timeout_ms)
{
	size_t have = 0;

	while (have < len) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, timeout_ms) <= 0)
			return -ETIMEDOUT;
		n = read(fd, buf + have, len - have);
		if (n <= 0)
			return n < 0 ? -errno : -ECONNRESET;
		have += n;
	}
	return 0;
}

/* Reads a response head, byte by byte up to its empty line. */
static int read_head(int fd, struct response *r)
{
	size_t n = 0;
	int err;

	memset(r, 0, sizeof(*r));
	while (n < sizeof(r->head) - 1) {
		err = read_exact(fd, r->head + n, 1, SURE_REPLY_MS);
		if (err)
			return err;
		n++;
		if (n >= 4 && !memcmp(r->head + n - 4, "\r\n\r\n", 4))
			break;
	}
	if (strncmp(r->head, "HTTP/1.1 ", 9))
		return -EBADMSG;
	r->status = atoi(r->head + 9);
	r->length = header_num(r->head, "\r\nContent-Length: ");
	r->requests = header_num(r->head, "\r\nX-Connection-Requests: ");
	r->version = header_num(r->head, "\r\nServer: baton-httpd/");
	return 0;
}

/* A whole response; its body must be want, byte for byte. */
static int expect_response(int fd, struct response *r, const char *want,
			   size_t want_len)
{
	char *body;
	int err = read_head(fd, r);

	if (err)
		return err;
	if (r->status != 200 || r->length != (long long)want_len)
		return -EBADMSG;
	body = malloc(want_len + 1);
	if (!body)
		return -ENOMEM;
	err = read_exact(fd, body, want_len, SURE_REPLY_MS);
	if (!err && memcmp(body, want, want_len))
		err = -EBADMSG;
	free(body);
	return err;
}

static int send_str(int fd, const char *s)
{
	return write(fd, s, strlen(s)) == (ssize_t)strlen(s) ? 0 : -EIO;
}

/* A client that asked for big.txt, read part of it and stopped reading. */
static int slow_reader(const struct http_service *s, int family,
		       struct response *r, char *part, size_t part_len)
{
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6,
				   .sin6_addr = IN6ADDR_LOOPBACK_INIT,
				   .sin6_port = htons(s->port) };
	struct sockaddr_in a4 = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				  .sin_port = htons(s->port) };
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int err;

	if (fd < 0)
		return -errno;
	/* before connect(): a small window, and most of the file stays put */
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &(int){ WINDOW }, sizeof(int));
	if (family == AF_INET6)
		err = connect(fd, (struct sockaddr *)&a6, sizeof(a6));
	else
		err = connect(fd, (struct sockaddr *)&a4, sizeof(a4));
	err = err ? -errno : 0;
	err = err ?: send_str(fd, "GET /big.txt HTTP/1.1\r\nHost: t\r\n\r\n") ?:
	      read_head(fd, r) ?:
	      read_exact(fd, part, part_len, SURE_REPLY_MS);
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

TEST_F_TIMEOUT(httpd, half_request_and_half_response_move, 120)
{
	struct http_service *s = &self->s;
	size_t part = 1 << 20;
	char *got = malloc(BIG_LEN);
	struct response r;
	char out[8192];
	int half, slow;
	pid_t old_pid;

	ASSERT_NE(NULL, got);
	/* 1: a keep-alive client, one request served, half of the next sent */
	half = client_connect(variant->family, s->port);
	ASSERT_LE(0, half);
	ASSERT_EQ(0, send_str(half, "GET / HTTP/1.1\r\nHost: t\r\n\r\n"));
	ASSERT_EQ(0, expect_response(half, &r, PAGE, strlen(PAGE)));
	EXPECT_EQ(1, r.requests);
	EXPECT_EQ(variant->from, r.version);
	ASSERT_EQ(0, send_str(half, "GET /big.txt HTTP/1.1\r\nHo"));

	/* 2: a client 1 MiB into a 16 MiB response, reading no more */
	slow = slow_reader(s, variant->family, &r, got, part);
	ASSERT_LE(0, slow);
	EXPECT_EQ(BIG_LEN, r.length);
	EXPECT_EQ(variant->from, r.version);
	usleep(200000);	/* the old fills the socket, then waits */

	EXPECT_EQ(0, upgrade(s, variant->to, out, sizeof(out)));
	EXPECT_NE(NULL, strstr(out, "\"result\":\"done\""));
	EXPECT_EQ(2, json_num(out, "conns"));
	EXPECT_EQ(2, json_num(out, "records_phase1"));
	/* those served since, again in the blackout */
	EXPECT_GE(2, json_num(out, "records"));
	/* the rest of the file moved as its name and offset, not its bytes */
	EXPECT_GT(4096, json_num(out, "record_bytes"));
	old_pid = json_num(out, "old_pid");
	EXPECT_EQ(s->first, old_pid);
	EXPECT_EQ(s->first, waitpid(s->first, NULL, 0));
	s->first = 0;

	/* the old is gone: whatever comes now, the new one sends */
	EXPECT_EQ(0, read_exact(slow, got + part, BIG_LEN - part,
				SURE_REPLY_MS));
	EXPECT_EQ(0, memcmp(got, self->big, BIG_LEN));
	ASSERT_EQ(0, send_str(half, "st: t\r\n\r\n"));
	EXPECT_EQ(0, expect_response(half, &r, self->big, BIG_LEN));
	EXPECT_EQ(2, r.requests);
	EXPECT_EQ(variant->to, r.version);

	/* 3: and the next request on each, on the new version */
	ASSERT_EQ(0, send_str(slow, "GET /index.html HTTP/1.1\r\nHost: t\r\n\r\n"));
	EXPECT_EQ(0, expect_response(slow, &r, PAGE, strlen(PAGE)));
	EXPECT_EQ(2, r.requests);
	EXPECT_EQ(variant->to, r.version);
	ASSERT_EQ(0, send_str(half, "GET / HTTP/1.1\r\nHost: t\r\n\r\n"));
	EXPECT_EQ(0, expect_response(half, &r, PAGE, strlen(PAGE)));
	EXPECT_EQ(3, r.requests);
	close(half);
	close(slow);
	free(got);
}

TEST_F_TIMEOUT(httpd, replaced_file_rolls_back, 120)
{
	struct http_service *s = &self->s;
	char *other = pattern(1), *got = malloc(BIG_LEN);
	size_t part = 1 << 20;
	char tmp[256], dst[256], out[8192];
	struct response r;
	int slow;

	ASSERT_NE(NULL, other);
	ASSERT_NE(NULL, got);
	slow = slow_reader(s, variant->family, &r, got, part);
	ASSERT_LE(0, slow);
	usleep(200000);
	/* as a deployment does: a new file renamed over the old one */
	ASSERT_EQ(0, write_file(s->root, "big.txt.new", other, BIG_LEN));
	snprintf(tmp, sizeof(tmp), "%s/big.txt.new", s->root);
	snprintf(dst, sizeof(dst), "%s/big.txt", s->root);
	ASSERT_EQ(0, rename(tmp, dst));

	EXPECT_NE(0, upgrade(s, variant->to, out, sizeof(out)));
	EXPECT_NE(NULL, strstr(out, "\"result\":\"rolled-back\""));
	EXPECT_EQ(s->first, json_num(out, "serving_pid"));

	/* the old one goes on with the file it had open */
	EXPECT_EQ(0, read_exact(slow, got + part, BIG_LEN - part,
				SURE_REPLY_MS));
	EXPECT_EQ(0, memcmp(got, self->big, BIG_LEN));
	/* and the next request gets the new file, from the old version */
	ASSERT_EQ(0, send_str(slow, "GET /big.txt HTTP/1.1\r\nHost: t\r\n\r\n"));
	EXPECT_EQ(0, expect_response(slow, &r, other, BIG_LEN));
	EXPECT_EQ(variant->from, r.version);
	EXPECT_EQ(2, r.requests);
	close(slow);
	free(other);
	free(got);
}

TEST_HARNESS_MAIN
