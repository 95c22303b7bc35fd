// SPDX-License-Identifier: GPL-2.0-only
/*
 * No overlap (batonctl checkpoint, then batonctl restore): the serving
 * instance's connections and state go into a file and it exits; a second
 * later the next instance starts from the file. In the VM, with baton.ko,
 * which holds the connections frozen in between. Real kvd processes and
 * clients, over IPv4 and IPv6, both ways between versions:
 *  1. clients with traffic both ways (a steady sender's INCRs throughout,
 *     the pause included; a slow reader of replies larger than its
 *     window, with bytes sent and unsent in the server; half a request;
 *     keys set before): checkpoint, the old instance exits, 1 s while the
 *     clients keep sending, restore. Every connection goes on byte-exact
 *     (every INCR answered once and in order, every reply byte), no RST
 *     on either side (the namespace's counters), the keyspace whole; dump
 *     shows what the file holds. A client that connects in the gap
 *     waits (baton.ko holds its SYN), neither refused nor timed out, and
 *     is served by the restored instance. The clients' longest stall and
 *     the times of the checkpoint and the restore are printed, not
 *     asserted;
 *  2. bad files, each a copy of a good one: a byte flipped, cut in half,
 *     another format version, not a checkpoint at all. Restore refuses
 *     each with an error naming the cause, starts nothing (no process,
 *     nothing listens, nothing answers on the control socket) and leaves
 *     the file as it was; the same while another process listens on
 *     the service's port, the error naming that process; then the good
 *     file restores, and a client that sent while it waited gets its
 *     answer and goes on; restoring it again is refused (its freeze is
 *     thawed), and it goes on still;
 *  3. batonctl checkpoint killed (SIGKILL) 0 and 60 ms after its record
 *     is in the journal, and as soon as its file is in place:
 *     batonctl recover settles it from the journal, as rolled back (the
 *     old instance serves) or done (the file is whole, and restores);
 *     status never says in progress or failed, and a client's INCR sent
 *     after each kill is answered, in order, on the same connection;
 *  4. a restored instance still activating at the blackout's deadline,
 *     the service's lock held (kvd --activate-delay), is given the
 *     grace and serves every connection.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "helpers.h"
#include "baton_proto.h"

#define BIG_LEN		(256 << 10)
#define BIG_GETS	6
#define PAUSE_US	1000000		/* no instance at all */
/*
 * Steps of 30 s, as fault_test's: with two more VMs on the host, a
 * checkpoint's phase 1 once went 5 s without a message (its state and the
 * clients' replies alike) and rolled back. The freeze covers the gap
 * with such steps, under TCG too: the most baton.ko allows.
 */
#define STEP_MS		"30000"
#define FREEZE		"60s"
/* the FILE record's first attribute, FILE_VERSION: its value */
#define FILE_VERSION_OFF	28

FIXTURE(noverlap) {
	struct service svc;
	char file[128];
};

FIXTURE_VARIANT(noverlap) {
	int family;
	int from, to;
};

FIXTURE_VARIANT_ADD(noverlap, ipv4_v1_v2) { .family = AF_INET, .from = 1, .to = 2 };
FIXTURE_VARIANT_ADD(noverlap, ipv4_v2_v1) { .family = AF_INET, .from = 2, .to = 1 };
FIXTURE_VARIANT_ADD(noverlap, ipv6_v1_v2) { .family = AF_INET6, .from = 1, .to = 2 };
FIXTURE_VARIANT_ADD(noverlap, ipv6_v2_v1) { .family = AF_INET6, .from = 2, .to = 1 };

FIXTURE_SETUP(noverlap)
{
	signal(SIGPIPE, SIG_IGN);
	ASSERT_EQ(0, service_up(&self->svc, variant->family, variant->from));
	/* kvd holds the listener: with the old gone, nothing does */
	close(self->svc.lfd);
	self->svc.lfd = -1;
	snprintf(self->file, sizeof(self->file), "%s/kvd.ckpt",
		 self->svc.rundir);
}

FIXTURE_TEARDOWN(noverlap)
{
	service_teardown(&self->svc);
}

static double ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1e3 + (t.tv_nsec - t0->tv_nsec) / 1e6;
}

/* batonctl checkpoint kvd -o file: its exit status; JSON in out */
static int checkpoint(const char *file, char *out, size_t len)
{
	const char *args[] = { "checkpoint", "kvd", "-j", "-o", file,
			       "--freeze", FREEZE, "--timeout-ms", STEP_MS,
			       NULL };

	return batonctl(out, len, args);
}

/*
 * batonctl restore kvd -i file --timeout-ms step_ms -- kvd-v<version>
 * [kvd_arg]: its exit status
 */
static int restore_within(const struct service *svc, const char *file,
			  int version, const char *step_ms,
			  const char *kvd_arg, char *out, size_t len)
{
	char path[512], name[16];
	const char *args[] = { "restore", "kvd", "-j", "-i", file, "--log",
			       svc->log, "--timeout-ms", step_ms, "--", path,
			       "--quiet", kvd_arg, NULL };

	snprintf(name, sizeof(name), "kvd-v%d", version);
	bin(name, path, sizeof(path));
	return batonctl(out, len, args);
}

static int restore(const struct service *svc, const char *file, int version,
		   char *out, size_t len)
{
	return restore_within(svc, file, version, STEP_MS, NULL, out, len);
}

/* The old instance checkpointed, and gone */
static void checkpoint_ok(struct __test_metadata *_metadata,
			  struct service *svc, const char *file, int conns)
{
	char out[8192];
	struct timespec t0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	EXPECT_EQ(0, checkpoint(file, out, sizeof(out)));
	TH_LOG("checkpoint: %.1f ms (batonctl's whole run); %s", ms_since(&t0),
	       out);
	EXPECT_NE(NULL, strstr(out, "\"result\":\"done\""));
	EXPECT_EQ(conns, json_num(out, "checkpoints"));
	EXPECT_EQ(1, json_num(out, "listeners"));
	/* it exits once the file is whole */
	EXPECT_TRUE(WIFEXITED(wait_exit(svc->kvd, 10000)));
	svc->kvd = 0;
}

static char *file_read(const char *path, size_t *len)
{
	struct stat st;
	char *buf;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) || !(buf = malloc(st.st_size + 1)) ||
	    read(fd, buf, st.st_size) != st.st_size) {
		close(fd);
		return NULL;
	}
	close(fd);
	*len = st.st_size;
	return buf;
}

static int file_write(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	int ok;

	if (fd < 0)
		return -errno;
	ok = write(fd, buf, len) == (ssize_t)len;
	close(fd);
	return ok ? 0 : -EIO;
}

static char last_reason[512];

/*
 * batonctl status -j kvd: the last operation's result into buf, its name
 * into op, its reason into last_reason
 */
static const char *last_result(char *buf, size_t len, char *op, size_t oplen)
{
	const char *args[] = { "status", "-j", "kvd", NULL };
	char out[8192];

	buf[0] = op[0] = last_reason[0] = '\0';
	batonctl(out, sizeof(out), args);
	json_str(out, "operation", op, oplen);
	json_str(out, "reason", last_reason, sizeof(last_reason));
	return json_str(out, "result", buf, len);
}

TEST_F_TIMEOUT(noverlap, every_byte_once, 240)
{
	const char *dump_args[] = { "dump", "-j", self->file, NULL };
	char *big = big_value(BIG_LEN), out[16384], result[64], op[32];
	size_t one = strlen("$262144\r\n") + BIG_LEN + 2;
	struct counters before;
	int keys, half, window, version, late;
	struct slow slow = {};
	struct sender snd = {};
	struct timespec t0;
	pthread_t rt, st;
	pid_t pid;

	ASSERT_NE(NULL, big);
	ASSERT_EQ(0, moved_clients_setup(variant->family, self->svc.port,
					 &keys, &half, &window, big, BIG_GETS));
	snd.fd = client_connect(variant->family, self->svc.port);
	ASSERT_LE(0, snd.fd);
	usleep(100000);
	counters_read(&before);
	ASSERT_LE(0, before.out_rsts);

	slow.fd = window;
	slow.big = big;
	slow.want = BIG_GETS * one + 2 * strlen(":1\r\n");
	slow.got = malloc(slow.want);
	ASSERT_NE(NULL, slow.got);
	ASSERT_EQ(0, pthread_create(&rt, NULL, slow_read, &slow));
	ASSERT_EQ(0, pthread_create(&st, NULL, send_steadily, &snd));
	usleep(300000);

	checkpoint_ok(_metadata, &self->svc, self->file, 4);
	EXPECT_NE(NULL, last_result(result, sizeof(result), op, sizeof(op)));
	EXPECT_STREQ("checkpoint", op);
	EXPECT_STREQ("done", result);
	/* a new client in the gap: its SYN waits, neither refused nor lost */
	late = client_connect_start(variant->family, self->svc.port);
	ASSERT_LE(0, late) TH_LOG("connect: %s", strerror(-late));
	/* no instance at all, and the clients go on sending */
	usleep(PAUSE_US);
	EXPECT_EQ(-ETIMEDOUT, client_connect_end(late, 0));

	clock_gettime(CLOCK_MONOTONIC, &t0);
	EXPECT_EQ(0, restore(&self->svc, self->file, variant->to, out,
			     sizeof(out)));
	TH_LOG("restore: %.1f ms (batonctl's whole run); %s", ms_since(&t0),
	       out);
	EXPECT_NE(NULL, strstr(out, "\"result\":\"done\""));
	EXPECT_EQ(4, json_num(out, "conns"));
	EXPECT_EQ(4, json_num(out, "records"));

	/* the late client's SYN reached the restored listener */
	EXPECT_EQ(0, client_connect_end(late, 10000));
	EXPECT_EQ(0, kvd_info(late, &pid, &version));
	EXPECT_EQ(variant->to, version);
	close(late);

	usleep(300000);	/* the sender goes on after the thaw */
	snd.stop = 1;
	pthread_join(st, NULL);
	pthread_join(rt, NULL);
	/* the file stays, and says what it held */
	EXPECT_EQ(0, batonctl(out, sizeof(out), dump_args));
	TH_LOG("dump: %s", out);
	EXPECT_EQ(4, json_num(out, "conns"));
	EXPECT_EQ(1, json_num(out, "listeners"));
	EXPECT_EQ(variant->from, json_num(out, "state_version"));

	EXPECT_EQ(0, snd.err);
	EXPECT_EQ(snd.sent, snd.answered);
	TH_LOG("steady sender: %u INCRs, %u answered; longest stall %.1f ms; slow reader's %.1f ms",
	       snd.sent, snd.answered, snd.longest_gap_us / 1e3,
	       slow.longest_gap_us / 1e3);
	EXPECT_EQ(0, slow_check(&slow, BIG_GETS, BIG_LEN));
	EXPECT_EQ(0, moved_clients_check(half, keys, window));
	ASSERT_EQ(0, kvd_info(keys, &pid, &version));
	EXPECT_EQ(variant->to, version);

	EXPECT_EQ(0, counters_unmoved(&before));
	close(keys);
	close(half);
	close(window);
	close(snd.fd);
	free(slow.got);
	free(big);
}

/* Nothing of the service runs, listens or answers */
static void nothing_started(struct __test_metadata *_metadata,
			    const struct service *svc, int family)
{
	const char *args[] = { "status", "-j", "kvd", NULL };
	pid_t others[4];
	char out[4096];
	int fd;

	EXPECT_EQ(0, netns_others(NULL, 0, others, 4));
	/* no answer: the SYN waits (baton.ko holds the port) or is refused */
	fd = client_connect_start(family, svc->port);
	ASSERT_LE(0, fd);
	EXPECT_NE(0, client_connect_end(fd, 200));
	close(fd);
	batonctl(out, sizeof(out), args);
	EXPECT_GE(0, json_num(out, "pid"));
}

TEST_F_TIMEOUT(noverlap, bad_files_refused, 240)
{
	static const struct {
		const char *name, *cause;
	} bad[] = {
		{ "corrupt", "corrupt: " },
		{ "truncated", "truncated" },
		{ "foreign", "format version 2;" },
		{ "other", "not a baton checkpoint file" },
	};
	char path[160], out[8192], err[512];
	size_t len, blen, klen;
	char *good, *b, *kept;
	unsigned int i;
	int c, squat;

	c = client_connect(variant->family, self->svc.port);
	ASSERT_LE(0, c);
	ASSERT_EQ(0, resp_expect(c, ":1\r\n", 2, "INCR", "c"));
	checkpoint_ok(_metadata, &self->svc, self->file, 1);
	/* held by the freeze, to be answered by the restored instance */
	ASSERT_EQ(0, resp_send(c, 2, (const char *[]){ "INCR", "c" }));
	good = file_read(self->file, &len);
	ASSERT_NE(NULL, good);
	ASSERT_LT(FILE_VERSION_OFF + 4, len);

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		b = malloc(len);
		ASSERT_NE(NULL, b);
		memcpy(b, good, len);
		blen = len;
		if (!strcmp(bad[i].name, "corrupt"))
			b[len / 2] ^= 0x40;
		else if (!strcmp(bad[i].name, "truncated"))
			blen = len / 2;
		else if (!strcmp(bad[i].name, "foreign"))
			memcpy(b + FILE_VERSION_OFF, &(__u32){ 2 }, 4);
		else
			blen = snprintf(b, len, "not a checkpoint\n");
		snprintf(path, sizeof(path), "%s/%s.ckpt", self->svc.rundir,
			 bad[i].name);
		ASSERT_EQ(0, file_write(path, b, blen));

		EXPECT_EQ(1, restore(&self->svc, path, variant->to, out,
				     sizeof(out)));
		TH_LOG("%s: %s", bad[i].name, out);
		EXPECT_NE(NULL, strstr(out, "\"result\":\"refused\""));
		EXPECT_NE(NULL, json_str(out, "error", err, sizeof(err)));
		EXPECT_NE(NULL, strstr(err, bad[i].cause));
		nothing_started(_metadata, &self->svc, variant->family);
		/* kept, as it was */
		kept = file_read(path, &klen);
		ASSERT_NE(NULL, kept);
		EXPECT_EQ(blen, klen);
		EXPECT_EQ(0, klen == blen ? memcmp(kept, b, blen) : -1);
		free(kept);
		free(b);
	}
	kept = file_read(self->file, &klen);
	ASSERT_NE(NULL, kept);
	EXPECT_EQ(len, klen);
	EXPECT_EQ(0, klen == len ? memcmp(kept, good, len) : -1);
	free(kept);

	/*
	 * its address taken by another listener meanwhile: refused, naming
	 * who holds the port; nothing started, the file as it was
	 */
	squat = listener_on(variant->family, self->svc.port);
	ASSERT_LE(0, squat);
	ASSERT_EQ(0, fcntl(squat, F_SETFD, FD_CLOEXEC));	/* ours alone */
	EXPECT_EQ(1, restore(&self->svc, self->file, variant->to, out,
			     sizeof(out)));
	TH_LOG("address taken: %s", out);
	EXPECT_NE(NULL, strstr(out, "\"result\":\"refused\""));
	EXPECT_NE(NULL, json_str(out, "error", err, sizeof(err)));
	snprintf(path, sizeof(path), "pid %d (noverlap_test) listens there; stop it",
		 getpid());
	EXPECT_NE(NULL, strstr(err, path));
	EXPECT_EQ(0, netns_others(NULL, 0, (pid_t[4]){}, 4));
	close(squat);
	kept = file_read(self->file, &klen);
	ASSERT_NE(NULL, kept);
	EXPECT_EQ(0, klen == len ? memcmp(kept, good, len) : -1);
	free(kept);

	/* the good one still restores, and the client goes on */
	EXPECT_EQ(0, restore(&self->svc, self->file, variant->to, out,
			     sizeof(out)));
	TH_LOG("%s", out);
	EXPECT_NE(NULL, strstr(out, "\"result\":\"done\""));
	EXPECT_LT(0, resp_reply(c, out, sizeof(out), 10000));
	EXPECT_STREQ(":2\r\n", out);
	EXPECT_EQ(0, resp_expect(c, ":3\r\n", 2, "INCR", "c"));
	/* once more: spent, its freeze thawed; refused, nothing made */
	EXPECT_EQ(1, restore(&self->svc, self->file, variant->to, out,
			     sizeof(out)));
	EXPECT_NE(NULL, strstr(out, "\"result\":\"refused\""));
	EXPECT_NE(NULL, strstr(out, "restored already"));
	EXPECT_EQ(0, resp_expect(c, ":4\r\n", 2, "INCR", "c"));
	close(c);
	free(good);
}

/* The journal holds a record of batonctl pid's: it has begun */
static int journal_begun(const struct service *svc, pid_t pid, int timeout_ms)
{
	char path[160], want[48], *text;
	size_t len;
	int waited;

	snprintf(path, sizeof(path), "%s/kvd/journal", svc->rundir);
	snprintf(want, sizeof(want), "\ncoordinator_pid=%d\n", pid);
	for (waited = 0; waited < timeout_ms; waited += 5) {
		text = file_read(path, &len);
		if (text && memmem(text, len, want, strlen(want))) {
			free(text);
			return 0;
		}
		free(text);
		usleep(5000);
	}
	return -ETIMEDOUT;
}

TEST_F_TIMEOUT(noverlap, batonctl_killed, 300)
{
	/* after its journal record: at once, 60 ms on; once the file is in place */
	static const int delay_ms[] = { 0, 60, -1 };
	const char *ckpt_args[] = { "checkpoint", "kvd", "-j", "-o", self->file,
				    "--freeze", FREEZE, "--timeout-ms", STEP_MS,
				    NULL };
	const char *recover_args[] = { "recover", "kvd", NULL };
	char out[8192], result[64], op[32], want[16];
	unsigned int i;
	int c, fd, n = 1;
	pid_t pid, serving;

	c = client_connect(variant->family, self->svc.port);
	ASSERT_LE(0, c);
	ASSERT_EQ(0, resp_expect(c, ":1\r\n", 2, "INCR", "c"));
	for (i = 0; i < ARRAY_SIZE(delay_ms); i++) {
		unlink(self->file);
		serving = serving_pid(&self->svc, variant->family);
		ASSERT_LT(0, serving);
		pid = batonctl_start(ckpt_args, &fd);
		ASSERT_LT(0, pid);
		/* killed once it began: its record is in the journal */
		EXPECT_EQ(0, journal_begun(&self->svc, pid, 20000));
		if (delay_ms[i] >= 0)
			usleep(delay_ms[i] * 1000);
		else
			EXPECT_EQ(0, wait_path(self->file, 20000));
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		close(fd);
		/* answered by whichever instance serves it next */
		ASSERT_EQ(0, resp_send(c, 2, (const char *[]){ "INCR", "c" }));
		n++;

		EXPECT_EQ(0, batonctl(out, sizeof(out), recover_args));
		EXPECT_NE(NULL, last_result(result, sizeof(result), op, sizeof(op)));
		TH_LOG("killed %d ms after its journal record%s: %s %s (%s)",
		       delay_ms[i] < 0 ? 0 : delay_ms[i],
		       delay_ms[i] < 0 ? ", the file in place" : "", op,
		       result, last_reason);
		EXPECT_STREQ("checkpoint", op);
		EXPECT_TRUE(!strcmp(result, "done") ||
			    !strcmp(result, "rolled-back"));
		if (!strcmp(result, "done")) {
			/* the old instance exits once the file is whole */
			if (serving == self->svc.kvd) {
				EXPECT_TRUE(WIFEXITED(wait_exit(serving, 10000)));
				self->svc.kvd = 0;
			} else {
				EXPECT_EQ(0, pid_wait_gone(serving, 10000));
			}
			EXPECT_EQ(0, restore(&self->svc, self->file,
					     variant->to, out, sizeof(out)));
			TH_LOG("restore: %s", out);
			EXPECT_NE(NULL, last_result(result, sizeof(result), op,
						    sizeof(op)));
			EXPECT_STREQ("restore", op);
			EXPECT_STREQ("done", result);
		}
		snprintf(want, sizeof(want), ":%d\r\n", n);
		EXPECT_LT(0, resp_reply(c, out, sizeof(out), 10000));
		EXPECT_STREQ(want, out);
		if (strcmp(want, out))
			break;
	}
	/* still the same connection, answered in order */
	snprintf(want, sizeof(want), ":%d\r\n", ++n);
	EXPECT_EQ(0, resp_expect(c, want, 2, "INCR", "c"));
	close(c);
}

#define SLOW_CONNS	8

/*
 * A restored instance still activating when the blackout's deadline
 * passes (the step's, 10 s here: an ASan kvd under TCG once took 5 s for
 * phase 1), the service's lock held (kvd --activate-delay: 10.5 s,
 * within the deadline and half a freeze's slack, 0.5 s left for the rest
 * of its activation): it is given the grace, as in an upgrade, and serves
 * every connection. Killed instead, it would close them, and no old
 * instance is left to serve them.
 */
TEST_F_TIMEOUT(noverlap, slow_restore_given_grace, 120)
{
	struct counters before;
	char out[8192], key[16];
	int fds[SLOW_CONNS], i, version;
	pid_t pid;

	for (i = 0; i < SLOW_CONNS; i++) {
		fds[i] = client_connect(variant->family, self->svc.port);
		ASSERT_LE(0, fds[i]);
		snprintf(key, sizeof(key), "c%d", i);
		ASSERT_EQ(0, resp_expect(fds[i], ":1\r\n", 2, "INCR", key));
	}
	counters_read(&before);
	checkpoint_ok(_metadata, &self->svc, self->file, SLOW_CONNS);
	EXPECT_EQ(0, restore_within(&self->svc, self->file, variant->to,
				    "10000", "--activate-delay=10500", out,
				    sizeof(out)));
	TH_LOG("%s", out);
	EXPECT_NE(NULL, strstr(out, "\"result\":\"done\""));
	EXPECT_EQ(SLOW_CONNS, json_num(out, "conns"));
	for (i = 0; i < SLOW_CONNS; i++) {
		snprintf(key, sizeof(key), "c%d", i);
		EXPECT_EQ(0, resp_expect(fds[i], ":2\r\n", 2, "INCR", key));
	}
	ASSERT_EQ(0, kvd_info(fds[0], &pid, &version));
	EXPECT_EQ(variant->to, version);
	EXPECT_EQ(0, counters_unmoved(&before));
	for (i = 0; i < SLOW_CONNS; i++)
		close(fds[i]);
}

TEST_HARNESS_MAIN
