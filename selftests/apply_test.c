// SPDX-License-Identifier: GPL-2.0-only
/*
 * batonctl apply PLAN over three kvd services (kvd-a, kvd-b, kvd-c, in
 * that order), each with clients connected and sending throughout (each
 * its own counter, every reply checked byte for byte):
 *  1. kvd-b's new version fails its verification (--fail-ping-after):
 *     kvd-b is reverted, kvd-a, done before it, is undone (its old version
 *     serves again), kvd-c is never touched (the same pid); the report,
 *     the journals and 'batonctl status -j' say exactly that;
 *  2. every new version passes: all three done;
 *  3. a plan that is not valid YAML, and one with an unknown key: refused
 *     with the line (and column), nothing touched;
 * each over IPv4 and IPv6, v1->v2 and v2->v1.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "helpers.h"

#define SERVICES	3
#define CLIENTS		50	/* each service's */
#define ALL		(SERVICES * CLIENTS)

static const char *const names[SERVICES] = { "kvd-a", "kvd-b", "kvd-c" };

FIXTURE(apply) {
	struct service svc[SERVICES];	/* one run directory, svc[0]'s */
	char plan[128];
	int fds[ALL];		/* service i's clients: i * CLIENTS on */
	int count[ALL];		/* each client's counter, as last answered */
	pid_t first[SERVICES];	/* the instances before the plan */
	struct incr_load load;	/* over every client */
};

FIXTURE_VARIANT(apply) {
	int family;
	int from, to;
	bool fail;		/* kvd-b's new version fails its verification */
};

FIXTURE_VARIANT_ADD(apply, ipv4_v1_v2_middle_fails) { AF_INET, 1, 2, true };
FIXTURE_VARIANT_ADD(apply, ipv6_v2_v1_middle_fails) { AF_INET6, 2, 1, true };
FIXTURE_VARIANT_ADD(apply, ipv4_v1_v2_all_pass) { AF_INET, 1, 2, false };
FIXTURE_VARIANT_ADD(apply, ipv6_v2_v1_all_pass) { AF_INET6, 2, 1, false };

FIXTURE_SETUP(apply)
{
	struct service *s;
	char dir[64];
	int i, k;

	ASSERT_EQ(0, netns_enter());
	ASSERT_EQ(0, rundir_make(dir, sizeof(dir)));
	snprintf(self->plan, sizeof(self->plan), "%s/plan.yaml", dir);
	self->load.fds = self->fds;
	self->load.count = self->count;
	self->load.n = ALL;
	for (k = 0; k < SERVICES; k++) {
		s = &self->svc[k];
		snprintf(s->rundir, sizeof(s->rundir), "%s", dir);
		snprintf(s->log, sizeof(s->log), "%s/%s.log", dir, names[k]);
		snprintf(s->sock, sizeof(s->sock), "%s/%s.sock", dir, names[k]);
		s->lfd = listener_make(variant->family, &s->port);
		ASSERT_LE(0, s->lfd);
		s->kvd = kvd_start_as(variant->from, s->lfd, s->rundir, names[k], NULL);
		ASSERT_LT(0, s->kvd);
		self->first[k] = s->kvd;
		for (i = k * CLIENTS; i < (k + 1) * CLIENTS; i++) {
			self->fds[i] = client_connect(variant->family, s->port);
			ASSERT_LE(0, self->fds[i]);
			ASSERT_EQ(0, incr_load_one(&self->load, i));
		}
	}
	ASSERT_EQ(0, incr_load_start(&self->load));
}

FIXTURE_TEARDOWN(apply)
{
	int i, k;

	incr_load_stop(&self->load, 0);
	for (i = 0; i < ALL; i++)
		close(self->fds[i]);
	for (k = 0; k < SERVICES; k++) {
		if (!_metadata->passed)
			service_log_tail(&self->svc[k], 20);
		if (self->svc[k].kvd > 0)
			stop_and_reap(self->svc[k].kvd, SIGKILL);
	}
	/* the instances the upgrades started, which are not our children */
	netns_reap();
	for (k = 0; k < SERVICES; k++)
		close(self->svc[k].lfd);
	rundir_remove(self->svc[0].rundir);
}

/* The plan: each service to variant->to, kvd-b failing if bad. */
static int plan_write(FIXTURE_DATA(apply) *self,
		      const FIXTURE_VARIANT(apply) *variant)
{
	const char *host = variant->family == AF_INET6 ? "::1" : "127.0.0.1";
	char path[512], name[16];
	FILE *f = fopen(self->plan, "we");
	bool fails;
	int k;

	if (!f)
		return -errno;
	snprintf(name, sizeof(name), "kvd-v%d", variant->to);
	bin(name, path, sizeof(path));
	fprintf(f, "# three services, in this order\nservices:\n");
	for (k = 0; k < SERVICES; k++) {
		fails = variant->fail && k == 1;
		fprintf(f, "  - name: %s\n"
			   "    command: [%s, --quiet, --service, %s%s]\n"
			   "    verify: 'redis-cli -h %s -p %d ping | grep -qx PONG'\n"
			   "    verify_for: %s\n"
			   "    verify_timeout_ms: 10000\n"
			   "    timeout_ms: %s\n"
			   "    log: %s\n",
			names[k], path, names[k],
			fails ? ", --fail-ping-after, \"1000\"" : "",
			host, self->svc[k].port, fails ? "20s" : "1500ms",
			SURE_STEP_MS, self->svc[k].log);
	}
	return fclose(f) ? -errno : 0;
}

/* The report's object for service k: from its name on. */
static const char *service_json(const char *out, int k)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "{\"service\":\"%s\"", names[k]);
	p = strstr(out, pat);
	return p ? p : "";
}

TEST_F_TIMEOUT(apply, plan, 120)
{
	const char *args[] = { "apply", self->plan, "-j", NULL };
	const char *want[SERVICES];
	char out[16384], status[16384], text[256];
	const char *status_args[] = { "status", NULL, "-j", NULL };
	pid_t serving[SERVICES], pid;
	struct timespec t0, t1;
	int i, k, rc, version;

	ASSERT_EQ(0, plan_write(self, variant));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = batonctl(out, sizeof(out), args);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	TH_LOG("batonctl exited %d after %.2f s: %s", rc,
	       t1.tv_sec - t0.tv_sec + (t1.tv_nsec - t0.tv_nsec) / 1e9, out);
	for (k = 0; k < SERVICES; k++)
		serving[k] = json_num(service_json(out, k), "serving_pid");

	/* the clients go on through what follows, every reply checked */
	ASSERT_EQ(0, incr_load_stop(&self->load, 2));
	EXPECT_EQ(0, self->load.bad);
	TH_LOG("%lu requests, each answered right", self->load.requests);

	if (variant->fail) {
		want[0] = "undone";
		want[1] = "failed";
		want[2] = "untouched";
		EXPECT_EQ(1, rc);
		EXPECT_NE(NULL, strstr(out, "\"result\":\"failed\",\"services\":["));
		EXPECT_NE(NULL, strstr(service_json(out, 1), "failed its verification"));
		EXPECT_NE(NULL, strstr(service_json(out, 0), "because kvd-b failed"));
		EXPECT_NE(NULL, strstr(service_json(out, 2), "after kvd-b, which failed"));
		/* kvd-a: a new instance of its old command; kvd-c: the same one */
		EXPECT_NE(self->first[0], serving[0]);
		EXPECT_EQ(self->first[2], serving[2]);
		EXPECT_EQ(0, json_num(service_json(out, 2), "new_pid"));
	} else {
		want[0] = want[1] = want[2] = "done";
		EXPECT_EQ(0, rc);
		EXPECT_NE(NULL, strstr(out, "\"result\":\"done\",\"services\":["));
	}
	for (k = 0; k < SERVICES; k++) {
		EXPECT_NE(NULL, json_str(service_json(out, k), "result", text, sizeof(text)));
		EXPECT_STREQ(want[k], text);
		if (strcmp(want[k], "untouched")) {
			EXPECT_NE(self->first[k], serving[k]);
			EXPECT_EQ(self->first[k],
				  json_num(service_json(out, k), "old_pid"));
		}
		EXPECT_LT(0, serving[k]);
	}

	/* every client, served by the version of the outcome, counters whole */
	for (i = 0; i < ALL; i++) {
		k = i / CLIENTS;
		ASSERT_EQ(0, kvd_info(self->fds[i], &pid, &version));
		EXPECT_EQ(serving[k], pid);
		EXPECT_EQ(variant->fail ? variant->from : variant->to, version);
	}
	for (i = 0; i < ALL; i++)
		EXPECT_EQ(0, incr_load_one(&self->load, i));

	/* each journal, as status shows it */
	for (k = 0; k < SERVICES; k++) {
		status_args[1] = names[k];
		ASSERT_EQ(0, batonctl(status, sizeof(status), status_args));
		EXPECT_EQ(serving[k], json_num(status, "pid"));
		if (!strcmp(want[k], "untouched")) {
			EXPECT_EQ(NULL, strstr(status, "\"plan\""));
			EXPECT_EQ(NULL, strstr(status, "\"last_upgrade\""));
			continue;
		}
		EXPECT_NE(NULL, json_str(status, "plan", text, sizeof(text)));
		EXPECT_STREQ(self->plan, text);
		EXPECT_NE(NULL, json_str(status, "plan_step", text, sizeof(text)));
		if (!strcmp(want[k], "undone")) {
			EXPECT_STREQ("1 of 3: undone, because kvd-b failed", text);
			EXPECT_NE(NULL, strstr(status, "\"result\":\"done\""));
		} else if (!strcmp(want[k], "failed")) {
			EXPECT_STREQ("2 of 3: upgrade", text);
			EXPECT_NE(NULL, strstr(status, "\"result\":\"reverted\""));
			EXPECT_NE(NULL, strstr(status, "\"verify_result\":\"failed\""));
		} else {
			EXPECT_NE(NULL, strstr(text, ": upgrade"));
			EXPECT_NE(NULL, strstr(status, "\"result\":\"done\""));
			EXPECT_NE(NULL, strstr(status, "\"verify_result\":\"passed\""));
		}
	}
}

/* A plan refused: rc 2, its error naming what and where, nothing touched. */
static void refused(struct __test_metadata *_metadata,
		    FIXTURE_DATA(apply) *self, const char *plan,
		    const char *err_want)
{
	const char *args[] = { "apply", self->plan, NULL };
	char out[4096], err[4096], path[256];
	int rc, i, k, fd, saved, version;
	ssize_t n;
	pid_t pid;
	FILE *f;

	f = fopen(self->plan, "we");
	ASSERT_NE(NULL, f);
	fputs(plan, f);
	ASSERT_EQ(0, fclose(f));
	/* batonctl's standard error, through a file of the test's */
	snprintf(path, sizeof(path), "%s/apply.err", self->svc[0].rundir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ASSERT_LE(0, fd);
	saved = dup(2);
	ASSERT_LE(0, saved);
	ASSERT_LE(0, dup2(fd, 2));
	rc = batonctl(out, sizeof(out), args);
	ASSERT_LE(0, dup2(saved, 2));
	close(saved);
	n = pread(fd, err, sizeof(err) - 1, 0);
	close(fd);
	ASSERT_LE(0, n);
	err[n] = '\0';
	TH_LOG("batonctl exited %d: %s", rc, err);
	EXPECT_EQ(2, rc);
	EXPECT_NE(NULL, strstr(err, err_want));
	EXPECT_NE(NULL, strstr(err, "nothing was changed"));
	EXPECT_STREQ("", out);

	/* every client, by the instance it had, its counter whole */
	ASSERT_EQ(0, incr_load_stop(&self->load, 2));
	EXPECT_EQ(0, self->load.bad);
	for (i = 0; i < ALL; i++) {
		k = i / CLIENTS;
		ASSERT_EQ(0, kvd_info(self->fds[i], &pid, &version));
		EXPECT_EQ(self->first[k], pid);
		EXPECT_EQ(0, incr_load_one(&self->load, i));
	}
	for (k = 0; k < SERVICES; k++) {
		snprintf(path, sizeof(path), "%s/%s/journal", self->svc[0].rundir,
			 names[k]);
		EXPECT_NE(0, access(path, F_OK));
	}
}

TEST_F(apply, malformed)
{
	char want[300];

	snprintf(want, sizeof(want), "%s:4:9: not valid YAML", self->plan);
	refused(_metadata, self,
		"services:\n"
		"  - name: kvd-a\n"
		"    command: [kvd-v2, --quiet\n"
		"  - name: kvd-b\n", want);
}

TEST_F(apply, unknown_key)
{
	char want[300];

	snprintf(want, sizeof(want), "%s:4:5: unknown key 'colour' in a service",
		 self->plan);
	refused(_metadata, self,
		"services:\n"
		"  - name: kvd-a\n"
		"    command: [kvd-v2, --quiet]\n"
		"    colour: blue\n", want);
}

/* a name that is not one is refused with the plan, before anything moves */
TEST_F(apply, bad_name)
{
	char want[300];

	snprintf(want, sizeof(want), "%s:2: '../kvd-a' is not a service's name",
		 self->plan);
	refused(_metadata, self,
		"services:\n"
		"  - name: ../kvd-a\n"
		"    command: [kvd-v2, --quiet]\n", want);
}

/* as on the command line: at most an hour (the library refused more) */
TEST_F(apply, timeout_over_an_hour)
{
	char want[300];

	snprintf(want, sizeof(want), "%s:4:17: 'timeout_ms' takes a number of milliseconds from 1 to 3600000",
		 self->plan);
	refused(_metadata, self,
		"services:\n"
		"  - name: kvd-a\n"
		"    command: [kvd-v2, --quiet]\n"
		"    timeout_ms: 7200000\n", want);
}

TEST_HARNESS_MAIN
