// SPDX-License-Identifier: GPL-2.0-only
/*
 * batonctl upgrade --verify, with 300 clients connected and sending
 * throughout (each its own counter, every reply checked byte for byte):
 *  1. to a kvd whose PING fails 2 s after activation (--fail-ping-after):
 *     the verification fails, batonctl goes back to the old command line
 *     by itself, and the old version serves every client again, its
 *     counters whole; the journal and 'batonctl status -j' say so;
 *  2. to a good kvd: the verification passes over its window and the new
 *     version stays;
 *  3. a check that hangs (sleep, past --verify-timeout-ms): killed, it
 *     counts as failed, and the upgrade is reverted as in 1; a check the
 *     kernel holds (it freezes itself in a cgroup of the v1 freezer, so
 *     that SIGKILL waits for the thaw): the same, once batonctl has
 *     waited 10 s for it to exit, and it says so;
 *  4. batonctl killed in the window: recover settles it as done, its
 *     verification interrupted;
 * each over IPv4 and IPv6, v1->v2 and v2->v1.
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
#include "helpers.h"

#define CLIENTS 300

FIXTURE(verify) {
	struct service svc;
	int fds[CLIENTS];
	int count[CLIENTS];	/* each client's counter, as last answered */
	struct incr_load load;	/* over every client */
	pid_t serving;		/* for the teardown */
	struct freezer fz;	/* for the check the kernel holds */
};

FIXTURE_VARIANT(verify) {
	int family;
	int from, to;
	bool bad;		/* the new version fails its verification */
	bool hang;		/* the check itself never answers */
	bool held;		/* nor exits on SIGKILL: the kernel holds it */
};

FIXTURE_VARIANT_ADD(verify, ipv4_v1_v2_bad) { AF_INET, 1, 2, true };
FIXTURE_VARIANT_ADD(verify, ipv6_v1_v2_bad) { AF_INET6, 1, 2, true };
FIXTURE_VARIANT_ADD(verify, ipv4_v2_v1_bad) { AF_INET, 2, 1, true };
FIXTURE_VARIANT_ADD(verify, ipv6_v2_v1_bad) { AF_INET6, 2, 1, true };
FIXTURE_VARIANT_ADD(verify, ipv4_v1_v2_good) { AF_INET, 1, 2, false };
FIXTURE_VARIANT_ADD(verify, ipv6_v1_v2_good) { AF_INET6, 1, 2, false };
FIXTURE_VARIANT_ADD(verify, ipv4_v2_v1_good) { AF_INET, 2, 1, false };
FIXTURE_VARIANT_ADD(verify, ipv6_v2_v1_good) { AF_INET6, 2, 1, false };
FIXTURE_VARIANT_ADD(verify, ipv4_v1_v2_hang) { AF_INET, 1, 2, false, true };
FIXTURE_VARIANT_ADD(verify, ipv4_v1_v2_held) { AF_INET, 1, 2, false, true, true };

FIXTURE_SETUP(verify)
{
	int i;

	if (variant->held)
		ASSERT_EQ(0, freezer_make(&self->fz));
	ASSERT_EQ(0, service_up(&self->svc, variant->family, variant->from));
	self->serving = self->svc.kvd;
	self->load.fds = self->fds;
	self->load.count = self->count;
	self->load.n = CLIENTS;
	for (i = 0; i < CLIENTS; i++) {
		self->fds[i] = client_connect(variant->family, self->svc.port);
		ASSERT_LE(0, self->fds[i]);
		ASSERT_EQ(0, incr_load_one(&self->load, i));
	}
	ASSERT_EQ(0, incr_load_start(&self->load));
}

FIXTURE_TEARDOWN(verify)
{
	int i;

	incr_load_stop(&self->load, 0);
	if (variant->held)
		freezer_remove(&self->fz);
	if (self->serving > 0 && self->serving != self->svc.kvd)
		kill(self->serving, SIGTERM);
	for (i = 0; i < CLIENTS; i++)
		close(self->fds[i]);
	service_teardown(&self->svc);
}

TEST_F_TIMEOUT(verify, upgrade, 90)
{
	char path[256], log[256], check[512], out[16384], text[256], held[400] = "";
	const char *host = variant->family == AF_INET6 ? "::1" : "127.0.0.1";
	/* a good version's command ends before --fail-ping-after */
	const char *args[] = { "upgrade", "kvd", "-j", "--log", log,
			       "--timeout-ms", SURE_STEP_MS,
			       "--verify", check, "--verify-timeout-ms",
			       variant->hang ? "1000" : "10000",
			       "--verify-for", variant->bad ? "20s" : "3s",
			       "--", path, "--quiet",
			       variant->bad ? "--fail-ping-after" : NULL, "2000",
			       NULL };
	const char *status_args[] = { "status", "kvd", "-j", NULL };
	pid_t failed, pid;
	int i, version, rc;

	snprintf(log, sizeof(log), "%s", self->svc.log);
	/* held: the shell puts itself in the group and freezes it */
	if (variant->held)
		snprintf(held, sizeof(held), " && echo $$ > %s/tasks && echo FROZEN > %s/freezer.state",
			 self->fz.group, self->fz.group);
	snprintf(check, sizeof(check), "redis-cli -h %s -p %d ping | grep -qx PONG%s%s",
		 host, self->svc.port, held, variant->hang ? " && sleep 30" : "");
	snprintf(text, sizeof(text), "kvd-v%d", variant->to);
	bin(text, path, sizeof(path));

	rc = batonctl(out, sizeof(out), args);
	self->serving = json_num(out, "serving_pid");
	TH_LOG("batonctl exited %d: %s", rc, out);

	/* the clients go on through what follows, every reply checked */
	ASSERT_EQ(0, incr_load_stop(&self->load, 2));
	EXPECT_EQ(0, self->load.bad);
	TH_LOG("%lu requests, each answered right", self->load.requests);

	failed = json_num(out, "new_pid");
	if (variant->hang) {
		EXPECT_NE(NULL, strstr(out, "no answer within its deadline of 1000 ms"));
		EXPECT_EQ(1, json_num(out, "runs"));
	}
	if (variant->held)
		EXPECT_NE(NULL, strstr(out, "killed, it did not exit in 10000 ms: the kernel holds it"));
	if (variant->bad || variant->hang) {
		EXPECT_EQ(1, rc);
		EXPECT_NE(NULL, strstr(out, "\"result\":\"reverted\""));
		EXPECT_NE(NULL, strstr(out, "\"verify\":{\"command\""));
		EXPECT_NE(NULL, strstr(out, "\"result\":\"failed\""));
		EXPECT_NE(NULL, strstr(out, "\"rollback\":{"));
		EXPECT_EQ(0, pid_wait_gone(failed, 5000));
	} else {
		EXPECT_EQ(0, rc);
		EXPECT_NE(NULL, strstr(out, "\"result\":\"done\""));
		EXPECT_NE(NULL, strstr(out, "\"result\":\"passed\""));
		EXPECT_EQ(NULL, strstr(out, "\"rollback\""));
		EXPECT_EQ(failed, self->serving);
	}

	/* every client, served by the version of the outcome */
	for (i = 0; i < CLIENTS; i++) {
		ASSERT_EQ(0, kvd_info(self->fds[i], &pid, &version));
		EXPECT_EQ(self->serving, pid);
		EXPECT_EQ(variant->bad || variant->hang ? variant->from :
			  variant->to, version);
	}
	for (i = 0; i < CLIENTS; i++)
		EXPECT_EQ(0, incr_load_one(&self->load, i));

	/* the journal, as status shows it */
	ASSERT_EQ(0, batonctl(out, sizeof(out), status_args));
	EXPECT_EQ(self->serving, json_num(out, "pid"));
	if (variant->bad || variant->hang) {
		EXPECT_NE(NULL, strstr(out, "\"result\":\"reverted\""));
		EXPECT_NE(NULL, strstr(out, "\"verify_result\":\"failed\""));
		EXPECT_NE(NULL, strstr(out, "\"rollback\":\"done\""));
		EXPECT_NE(NULL, json_str(out, "old_command", text, sizeof(text)));
		snprintf(path, sizeof(path), "kvd-v%d --quiet", variant->from);
		EXPECT_NE(NULL, strstr(text, path)) TH_LOG("old command: %s", text);
	} else {
		EXPECT_NE(NULL, strstr(out, "\"result\":\"done\""));
		EXPECT_NE(NULL, strstr(out, "\"verify_result\":\"passed\""));
		EXPECT_EQ(NULL, strstr(out, "\"rollback\""));
	}
}

/*
 * batonctl killed in --verify's window: status says so, and recover
 * settles it as done (the new version runs), its verification
 * interrupted. Before, recover found nothing to do, and the journal said
 * "verifying" until the next upgrade.
 */
TEST_F_TIMEOUT(verify, killed_while_verifying, 90)
{
	char path[256], log[256], out[16384], name[16];
	const char *args[] = { "upgrade", "kvd", "-j", "--log", log,
			       "--timeout-ms", SURE_STEP_MS, "--verify", "true",
			       "--verify-for", "60s", "--", path, "--quiet",
			       NULL };
	const char *status_args[] = { "status", "kvd", "-j", NULL };
	const char *recover_args[] = { "recover", "kvd", NULL };
	pid_t ctl;
	int fd;

	snprintf(log, sizeof(log), "%s", self->svc.log);
	snprintf(name, sizeof(name), "kvd-v%d", variant->to);
	bin(name, path, sizeof(path));
	ctl = batonctl_start(args, &fd);
	ASSERT_LT(0, ctl);
	ASSERT_EQ(0, batonctl_until(out, sizeof(out), status_args,
				    "\"verify_result\":\"running\""));
	ASSERT_EQ(0, batonctl_kill(ctl, fd));
	self->serving = json_num(out, "pid");

	ASSERT_EQ(0, batonctl(out, sizeof(out), status_args));
	EXPECT_NE(NULL, strstr(out, "\"interrupted\""));
	EXPECT_EQ(0, batonctl(out, sizeof(out), recover_args));
	ASSERT_EQ(0, batonctl(out, sizeof(out), status_args));
	TH_LOG("%s", out);
	EXPECT_NE(NULL, strstr(out, "\"result\":\"done\""));
	EXPECT_NE(NULL, strstr(out, "\"verify_result\":\"interrupted\""));
	EXPECT_EQ(NULL, strstr(out, "\"interrupted\":"));
	ASSERT_EQ(0, incr_load_stop(&self->load, 2));
	EXPECT_EQ(0, self->load.bad);
}

TEST_HARNESS_MAIN
