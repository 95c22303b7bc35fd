// SPDX-License-Identifier: GPL-2.0-only
/*
 * The handover, end to end, with real kvd processes and TCP clients:
 *  1. a connection holding half a request finishes it on the new version;
 *  2. a connection whose reply the old could not write yet receives all of
 *     it, byte for byte, from the new version;
 *  3. per-connection fields (CLIENT SETNAME) and the keyspace survive;
 *  4. the same connections go v1 -> v2 -> v1 (or v2 -> v1 -> v2);
 *  5. more than 253 connections (several SCM_RIGHTS batches) all survive;
 *  6. the report's blackout steps, the coordinator's messages between the
 *     instances among them, add up to the blackout;
 *  7. connection records go in phase 1: the blackout carries only those of
 *     connections served or closed since, and idle ones go on all the same;
 *  8. phase 1 hands sockets over a few hundred a turn, the old serving in
 *     between: connections that open and close meanwhile, each served in
 *     full, leave every other one its own;
 * over IPv4 and IPv6.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "baton.h"
#include "helpers.h"

#define BIG_LEN		(6 << 20)
#define BIG_GETS	3
#define MANY		600

FIXTURE(handover) {
	struct service svc;
};

FIXTURE_VARIANT(handover) {
	int family;
	int from, to;
};

FIXTURE_VARIANT_ADD(handover, ipv4_v1_v2) { .family = AF_INET, .from = 1, .to = 2 };
FIXTURE_VARIANT_ADD(handover, ipv4_v2_v1) { .family = AF_INET, .from = 2, .to = 1 };
FIXTURE_VARIANT_ADD(handover, ipv6_v1_v2) { .family = AF_INET6, .from = 1, .to = 2 };
FIXTURE_VARIANT_ADD(handover, ipv6_v2_v1) { .family = AF_INET6, .from = 2, .to = 1 };

FIXTURE_SETUP(handover)
{
	ASSERT_EQ(0, service_up(&self->svc, variant->family, variant->from));
}

FIXTURE_TEARDOWN(handover)
{
	char out[4096];
	const char *args[] = { "status", "-j", NULL };

	/* whichever instance serves now is not necessarily our child */
	batonctl(out, sizeof(out), args);
	if (json_num(out, "pid") > 0)
		kill(json_num(out, "pid"), SIGTERM);
	service_down(&self->svc);
}

/*
 * Upgrades to kvd-v<version>; returns batonctl's exit status. These tests
 * move megabytes of foreground state, which under ASan in the emulated VM
 * takes up to a second of the blackout (270-1030 ms seen): its deadline
 * is set far above, so that only a broken handover fails them.
 */
static int upgrade(const char *rundir, int version, char *out, size_t len)
{
	char path[512], log[512], name[16];
	const char *args[] = { "upgrade", "kvd", "-j", "--log", log,
			       "--timeout-ms", SURE_STEP_MS,
			       "--blackout-timeout-ms", "20000", "--",
			       path, "--quiet", NULL };

	snprintf(log, sizeof(log), "%s/kvd.log", rundir);
	snprintf(name, sizeof(name), "kvd-v%d", version);
	bin(name, path, sizeof(path));
	return batonctl(out, len, args);
}

/* Reads one bulk reply of BIG_LEN bytes and compares it. */
static int read_big(int fd, const char *want)
{
	char head[32];
	size_t have = 0, hl = strlen("$6291456\r\n");
	char *buf = malloc(BIG_LEN + 2);
	int err = 0;

	if (!buf)
		return -ENOMEM;
	if (recv(fd, head, hl, MSG_WAITALL) != (ssize_t)hl ||
	    strncmp(head, "$6291456\r\n", hl)) {
		err = -EBADMSG;
		goto free_buf;
	}
	while (have < BIG_LEN + 2) {
		ssize_t n = read(fd, buf + have, BIG_LEN + 2 - have);

		if (n <= 0) {
			err = -ECONNRESET;
			goto free_buf;
		}
		have += n;
	}
	if (memcmp(buf, want, BIG_LEN) || memcmp(buf + BIG_LEN, "\r\n", 2))
		err = -EBADMSG;
free_buf:
	free(buf);
	return err;
}

TEST_F_TIMEOUT(handover, foreground_state_moves_both_ways, 120)
{
	const char *partial = "*3\r\n$3\r\nSET\r\n$4\r\nhalf\r\n$5\r\nwo";
	const char *get_big[] = { "GET", "big" };
	int keys, named, half, unsent, i, version, round;
	char *big = big_value(BIG_LEN);
	pid_t pid, old_pid, new_pid;
	char out[8192];

	ASSERT_NE(NULL, big);
	keys = client_connect(variant->family, self->svc.port);
	named = client_connect(variant->family, self->svc.port);
	half = client_connect(variant->family, self->svc.port);
	unsent = client_connect(variant->family, self->svc.port);
	ASSERT_LE(0, keys);
	ASSERT_LE(0, named);
	ASSERT_LE(0, half);
	ASSERT_LE(0, unsent);
	/* a small window: most of the replies must stay in kvd, unsent */
	ASSERT_EQ(0, setsockopt(unsent, SOL_SOCKET, SO_RCVBUF, &(int){ 65536 },
				sizeof(int)));

	ASSERT_EQ(0, resp_expect(keys, "+OK\r\n", 3, "SET", "k1", "v1"));
	ASSERT_EQ(0, resp_expect(keys, ":1\r\n", 2, "INCR", "counter"));
	ASSERT_EQ(0, resp_expect(named, "+OK\r\n", 3, "CLIENT", "SETNAME", "alice"));
	ASSERT_EQ(0, resp_expect(unsent, "+OK\r\n", 3, "SET", "big", big));

	for (round = 0; round < 2; round++) {
		int to = round == 0 ? variant->to : variant->from;

		/* 1: half a request; 2: replies nobody reads yet */
		ASSERT_EQ((ssize_t)strlen(partial),
			  write(half, partial, strlen(partial)));
		for (i = 0; i < BIG_GETS; i++)
			ASSERT_EQ(0, resp_send(unsent, 2, get_big));
		usleep(200000);	/* let kvd read them and fill its buffers */

		EXPECT_EQ(0, upgrade(self->svc.rundir, to, out, sizeof(out)));
		TH_LOG("round %d: %s", round, out);
		/* the rest reads what the new instance took over */
		ASSERT_NE(NULL, strstr(out, "\"result\":\"done\""));
		EXPECT_EQ(4, json_num(out, "conns"));
		/* in phase 1; the blackout's, of those served since, replace them */
		EXPECT_EQ(4, json_num(out, "records_phase1"));
		EXPECT_GE(4, json_num(out, "records"));
		old_pid = json_num(out, "old_pid");
		new_pid = json_num(out, "new_pid");
		if (round == 0) {
			/* the first old instance was our child */
			EXPECT_EQ(0, waitpid(self->svc.kvd, NULL, 0) == self->svc.kvd ? 0 : -1);
			self->svc.kvd = 0;
		}

		ASSERT_EQ(5, write(half, "rld\r\n", 5));
		EXPECT_EQ(0, resp_reply(half, out, sizeof(out), 5000) < 0);
		EXPECT_STREQ("+OK\r\n", out);
		EXPECT_EQ(0, resp_expect(half, "$5\r\nworld\r\n", 2, "GET", "half"));
		for (i = 0; i < BIG_GETS; i++)
			EXPECT_EQ(0, read_big(unsent, big));
		EXPECT_EQ(0, resp_expect(named, "$5\r\nalice\r\n", 2, "CLIENT", "GETNAME"));
		EXPECT_EQ(0, resp_expect(keys, "$2\r\nv1\r\n", 2, "GET", "k1"));
		EXPECT_EQ(0, resp_expect(keys, round ? ":3\r\n" : ":2\r\n", 2,
					 "INCR", "counter"));
		ASSERT_EQ(0, kvd_info(keys, &pid, &version));
		EXPECT_EQ(to, version);
		EXPECT_EQ(new_pid, pid);
		EXPECT_EQ(0, pid_wait_gone(old_pid, 5000));
	}
	close(keys);
	close(named);
	close(half);
	close(unsent);
	free(big);
}

/*
 * 6: the steps' sum against the blackout, each printed to the microsecond;
 * 0, or -1 if they are not there or do not add up.
 */
static int steps_add_up(const char *json)
{
	const char *p, *end;
	double sum = 0, blackout;
	int n = 0;

	p = strstr(json, "\"blackout_ms\":");
	if (!p)
		return -1;
	blackout = atof(p + strlen("\"blackout_ms\":"));
	p = strstr(json, "\"steps_ms\":{");
	if (!p || !strstr(p, "\"ctl DEACTIVATE to old\":") ||
	    !strstr(p, "\"ctl ACTIVE to us\":"))
		return -1;
	p = strchr(p, '{');
	end = strchr(p, '}');
	while ((p = strstr(p, "\":")) && p < end) {
		sum += atof(p + 2);
		p += 2;
		n++;
	}
	return sum - blackout < (n + 1) * 0.0005 &&
	       blackout - sum < (n + 1) * 0.0005 ? 0 : -1;
}

TEST_F_TIMEOUT(handover, more_than_one_batch, 120)
{
	int fds[MANY], i;
	char key[32], out[8192];

	for (i = 0; i < MANY; i++) {
		fds[i] = client_connect(variant->family, self->svc.port);
		ASSERT_LE(0, fds[i]);
		snprintf(key, sizeof(key), "c%d", i);
		ASSERT_EQ(0, resp_expect(fds[i], ":1\r\n", 2, "INCR", key));
	}
	EXPECT_EQ(0, upgrade(self->svc.rundir, variant->to, out, sizeof(out)));
	EXPECT_EQ(MANY, json_num(out, "conns"));
	EXPECT_EQ(1, json_num(out, "listeners"));
	EXPECT_EQ(0, steps_add_up(out));
	for (i = 0; i < MANY; i++) {
		snprintf(key, sizeof(key), "c%d", i);
		EXPECT_EQ(0, resp_expect(fds[i], ":2\r\n", 2, "INCR", key));
		close(fds[i]);
	}
	waitpid(self->svc.kvd, NULL, 0);
	self->svc.kvd = 0;
}

/*
 * sockets for two of phase 1's turns, within the 1,024 descriptors a
 * process has in the VM
 */
#define TURNS	900

/*
 * Connections opened, served and closed a batch at a time, until stop is
 * readable: a turn's list may hold a batch that is gone by the next turn,
 * its descriptors closed, or some taken again by the next batch
 */
#define CHURN_BATCH	20

static int churn(int family, int port, int stop)
{
	int fds[CHURN_BATCH], n = 0, bad = 0, i;
	char want[32];

	while (recv(stop, want, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN) {
		for (i = 0; i < CHURN_BATCH; i++) {
			fds[i] = client_connect(family, port);
			snprintf(want, sizeof(want), ":%d\r\n", n + 1);
			if (fds[i] < 0 ||
			    resp_expect(fds[i], want, 2, "INCR", "churn"))
				bad++;
			else
				n++;
		}
		for (i = 0; i < CHURN_BATCH; i++)
			if (fds[i] >= 0)
				close(fds[i]);
	}
	return bad ? 1 : n ? 0 : 2;	/* 2: not one served */
}

TEST_F_TIMEOUT(handover, connections_come_and_go_between_turns, 120)
{
	int fds[TURNS], stop[2], i, status;
	char key[32], out[8192];
	pid_t churner;

	for (i = 0; i < TURNS; i++) {
		fds[i] = client_connect(variant->family, self->svc.port);
		ASSERT_LE(0, fds[i]);
		snprintf(key, sizeof(key), "c%d", i);
		ASSERT_EQ(0, resp_expect(fds[i], ":1\r\n", 2, "INCR", key));
	}
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, stop));
	churner = fork();
	ASSERT_LE(0, churner);
	if (!churner) {
		close(stop[0]);
		_exit(churn(variant->family, self->svc.port, stop[1]));
	}
	close(stop[1]);
	usleep(20000);
	EXPECT_EQ(0, upgrade(self->svc.rundir, variant->to, out, sizeof(out)));
	usleep(20000);
	ASSERT_EQ(1, write(stop[0], "x", 1));
	ASSERT_EQ(churner, waitpid(churner, &status, 0));
	close(stop[0]);
	/* each churned connection served in full, before, during and after */
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	EXPECT_LE(TURNS, json_num(out, "conns"));
	/* and each of these is still its own */
	EXPECT_EQ(0, incr_each(fds, TURNS, 2));
	for (i = 0; i < TURNS; i++)
		close(fds[i]);
	waitpid(self->svc.kvd, NULL, 0);
	self->svc.kvd = 0;
}

#define IDLE	100

/*
 * The coordinator here, to act between phase 1 and the blackout: one
 * connection served, one closed, a hundred left alone.
 */
TEST_F_TIMEOUT(handover, idle_connections_cost_nothing, 120)
{
	const char *half = "*3\r\n$3\r\nSET\r\n$4\r\nhalf\r\n$5\r\nwo";
	char path[256], key[32], reply[64];
	char *argv[] = { (char *)bin(variant->to == 1 ? "kvd-v1" : "kvd-v2",
				     path, sizeof(path)), "--quiet", NULL };
	struct baton_upgrade_opts o = {
		.service = "kvd", .argv = argv, .log_path = self->svc.log,
		.timeout_ms = 30000,
	};
	const struct baton_upgrade_report *r;
	int fds[IDLE], busy, gone, i, phase;
	struct baton_upgrade *up;

	for (i = 0; i < IDLE; i++) {
		fds[i] = client_connect(variant->family, self->svc.port);
		ASSERT_LE(0, fds[i]);
		snprintf(key, sizeof(key), "c%d", i);
		ASSERT_EQ(0, resp_expect(fds[i], ":1\r\n", 2, "INCR", key));
	}
	busy = client_connect(variant->family, self->svc.port);
	gone = client_connect(variant->family, self->svc.port);
	ASSERT_LE(0, busy);
	ASSERT_LE(0, gone);
	ASSERT_EQ(0, resp_expect(busy, ":1\r\n", 2, "INCR", "busy"));
	ASSERT_EQ(0, resp_expect(gone, ":1\r\n", 2, "INCR", "gone"));
	/* half a request in busy's phase-1 record, finished before the blackout */
	ASSERT_EQ((ssize_t)strlen(half), write(busy, half, strlen(half)));
	usleep(50000);

	ASSERT_EQ(0, baton_upgrade_open(&up, &o));
	r = baton_upgrade_report(up);
	while ((phase = baton_upgrade_step(up)) > 0 && phase != BATON_PHASE_READY)
		;
	ASSERT_EQ(BATON_PHASE_READY, phase) TH_LOG("%s", r->reason);
	/* the old still serves: one served, one closed (its FIN first) */
	ASSERT_EQ(5, write(busy, "rld\r\n", 5));
	EXPECT_LT(0, resp_reply(busy, reply, sizeof(reply), 5000));
	EXPECT_STREQ("+OK\r\n", reply);
	EXPECT_EQ(0, resp_expect(busy, ":2\r\n", 2, "INCR", "busy"));
	close(gone);
	EXPECT_EQ(0, resp_expect(busy, ":3\r\n", 2, "INCR", "busy"));
	while ((phase = baton_upgrade_step(up)) > 0 && phase != BATON_PHASE_DONE)
		;
	EXPECT_EQ(BATON_PHASE_DONE, phase) TH_LOG("%s", r->reason);
	TH_LOG("%u connections, %u records in phase 1, %u in the blackout (%llu bytes), blackout %.3f ms",
	       r->conns, r->early_records, r->records,
	       (unsigned long long)r->record_bytes,
	       (r->active_ns - r->deactivate_ns) / 1e6);
	EXPECT_EQ(IDLE + 2, r->conns);
	EXPECT_EQ(IDLE + 2, r->early_records);
	/* busy's record, and gone's end */
	EXPECT_EQ(2, r->records);
	baton_upgrade_close(up);

	/*
	 * every idle one goes on, on the new version, and busy too: its
	 * blackout record replaced phase 1's, half request and all
	 */
	EXPECT_EQ(0, incr_each(fds, IDLE, 2));
	EXPECT_EQ(0, resp_expect(busy, ":4\r\n", 2, "INCR", "busy"));
	EXPECT_EQ(0, resp_expect(busy, "$5\r\nworld\r\n", 2, "GET", "half"));
	/* what gone wrote is in the keyspace */
	EXPECT_EQ(0, resp_expect(busy, ":2\r\n", 2, "INCR", "gone"));
	for (i = 0; i < IDLE; i++)
		close(fds[i]);
	close(busy);
	waitpid(self->svc.kvd, NULL, 0);
	self->svc.kvd = 0;
}

TEST_HARNESS_MAIN
