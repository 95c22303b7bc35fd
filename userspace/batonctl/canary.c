// SPDX-License-Identifier: GPL-2.0-only
/*
 * batonctl upgrade --canary PCT% --verify CMD, with --listeners own: before
 * the upgrade, COMMAND runs beside the serving instance as a canary, under
 * the name SERVICE-canary (BATON_CANARY_ENV), its listener a generation of
 * SERVICE's steered group. It gets PCT% of the new connections, by flow
 * hash, while CMD runs over the window (BATON_SERVICE and BATON_PID are the
 * canary's). If every run passes, the upgrade proper follows: its new
 * instance takes the canary's generation, then, at activation, all of it.
 * If one fails, the share goes back to the serving generation at once and
 * nothing else begins. Either way the canary is then told to stop: what
 * waits in its queue goes to the active generation, and it serves the
 * connections it has until they close, so no client of it notices.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "batonctl.h"

#define CANARY_SUFFIX		"-canary"
#define CANARY_POLL_MS		5
#define CANARY_EXIT_WAIT_MS	1000	/* for the report: whether it went */

extern char **environ;

/* "5%", "5", "0.5%" -> 1/BATON_STEER_SCALE; -1 if it is not 0 to 100 */
long steer_parse_share(const char *s)
{
	char *end;
	double pct = strtod(s, &end);

	if (end == s || (*end && strcmp(end, "%")) || pct < 0 || pct > 100)
		return -1;
	return (long)(pct * (BATON_STEER_SCALE / 100) + 0.5);
}

/* How a child ended, for a sentence */
static void exit_words(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exit status %d", WEXITSTATUS(status));
	else
		snprintf(buf, len, "killed by signal %d", WTERMSIG(status));
}

/*
 * Where the canary writes: --log, else where the serving instance does
 * (as for an upgrade's new instance), else nowhere. Never our own
 * output: it may outlive us while it drains, and hold a pipe open.
 */
static int canary_output(const struct upgrade_job *job, int stream)
{
	char path[64];
	int fd;

	if (job->uo.log_path)
		return open(job->uo.log_path,
			    O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", job->old_pid, stream);
	fd = job->old_pid ? open(path, O_WRONLY | O_APPEND | O_CLOEXEC) : -1;
	return fd >= 0 ? fd : open("/dev/null", O_WRONLY | O_CLOEXEC);
}

/*
 * COMMAND, in a session of its own, with our environment plus
 * BATON_CANARY_ENV and BATON_RUN_DIR, stdin from /dev/null, its output
 * as canary_output() says, and no other descriptor of ours (the upgrade
 * lock least of all).
 */
static int canary_spawn(const struct ctl_opts *o, struct upgrade_job *job)
{
	struct canary *c = &job->canary;
	const char *log = job->uo.log_path;
	char env_canary[128], env_run[4200];
	int null, out = -1, errfd = -1, err = 0;
	size_t n = 0, i, k = 0;
	char **envp;
	pid_t pid;

	while (environ[n])
		n++;
	envp = calloc(n + 3, sizeof(*envp));
	if (!envp)
		return -ENOMEM;
	snprintf(env_canary, sizeof(env_canary), "%s=%s", BATON_CANARY_ENV,
		 c->service);
	snprintf(env_run, sizeof(env_run), "BATON_RUN_DIR=%s",
		 baton_run_dir(o->run_dir));
	for (i = 0; i < n; i++)
		if (strncmp(environ[i], BATON_CANARY_ENV "=",
			    strlen(BATON_CANARY_ENV) + 1) &&
		    strncmp(environ[i], "BATON_RUN_DIR=", 14))
			envp[k++] = environ[i];
	envp[k++] = env_canary;
	envp[k++] = env_run;
	envp[k] = NULL;
	null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (null < 0) {
		err = -errno;
		snprintf(c->why, sizeof(c->why), "cannot open /dev/null: %s",
			 strerror(-err));
		goto free_env;
	}
	out = canary_output(job, STDOUT_FILENO);
	errfd = canary_output(job, STDERR_FILENO);
	if (out < 0 || errfd < 0) {
		err = -errno;
		snprintf(c->why, sizeof(c->why), "cannot open %s for the canary's output: %s",
			 log ?: "/dev/null", strerror(-err));
		goto close_stdio;
	}
	pid = fork();
	if (pid < 0) {
		err = -errno;
		snprintf(c->why, sizeof(c->why), "cannot fork: %s",
			 strerror(-err));
		goto close_stdio;
	}
	if (!pid) {
		setsid();
		dup2(null, STDIN_FILENO);
		dup2(out, STDOUT_FILENO);
		dup2(errfd, STDERR_FILENO);
		/* ours are all close-on-exec; this is for what a library left */
		close_range(3, ~0U, 0);
		execvpe(job->uo.argv[0], job->uo.argv, envp);
		fprintf(stderr, "batonctl: cannot run %s as %s's canary: %s\n",
			job->uo.argv[0], job->uo.service, strerror(errno));
		_exit(127);
	}
	c->pid = pid;
	c->start = proc_start_time(pid);
close_stdio:
	if (errfd >= 0)
		close(errfd);
	if (out >= 0)
		close(out);
	close(null);
free_env:
	free(envp);
	return err;
}

/* Reaped now if it ended: true, its end in c->why's words */
static bool canary_ended(struct canary *c)
{
	int status;

	if (c->reaped)
		return true;
	if (waitpid(c->pid, &status, WNOHANG) != c->pid)
		return false;
	c->reaped = true;
	exit_words(status, c->end, sizeof(c->end));
	return true;
}

/*
 * Until the canary answers on its control socket and a generation other
 * than the active one has a listener in the group: that one is its.
 */
static int canary_join(const struct ctl_opts *o, struct upgrade_job *job,
		       struct baton_steer *st)
{
	struct canary *c = &job->canary;
	__u64 end = mono_ns() + job->uo.timeout_ms * 1000000ULL;
	struct baton_instance_info info;
	__u32 g;

	for (;;) {
		int found = 0;

		if (canary_ended(c)) {
			snprintf(c->why, sizeof(c->why),
				 "the canary (pid %d) ended before it served (%s): its log says why (--log); if an earlier canary still serves its last clients, 'batonctl status %s' shows it",
				 c->pid, c->end, c->service);
			return -ECHILD;
		}
		/* a slot that was empty before the canary started */
		for (g = 0; g < BATON_STEER_MAX_GEN; g++)
			if (!(c->taken & (1U << g)) &&
			    baton_steer_has_listener(st, g) > 0) {
				c->gen = g;
				found++;
			}
		if (found > 1) {
			snprintf(c->why, sizeof(c->why),
				 "%d generations of %s's steered group gained a listener while the canary (pid %d) started: which is its is not known; nothing was steered",
				 found, job->uo.service, c->pid);
			c->gen = CANARY_NO_GEN;
			return -EEXIST;
		}
		if (found &&
		    !baton_query(o->run_dir, c->service, BATON_QUERY_TIMEOUT_MS,
				 &info) && info.pid == c->pid)
			return 0;
		c->gen = CANARY_NO_GEN;
		if (mono_ns() >= end && found) {
			snprintf(c->why, sizeof(c->why),
				 "the canary (pid %d) joined the steered group, but did not answer as %s on its control socket within %d ms (--timeout-ms)",
				 c->pid, c->service, job->uo.timeout_ms);
			return -ETIMEDOUT;
		}
		if (mono_ns() >= end) {
			snprintf(c->why, sizeof(c->why),
				 "the canary (pid %d) did not join %s's steered group within %d ms: does COMMAND honour %s? (kvd does, given --steer GEN with a generation other than the serving %u)",
				 c->pid, job->uo.service, job->uo.timeout_ms,
				 BATON_CANARY_ENV, c->active);
			return -ETIMEDOUT;
		}
		usleep(CANARY_POLL_MS * 1000);
	}
}

static struct baton_steer *steer_open(const char *service)
{
	struct baton_steer_opts so = {
		.service = service, .flags = BATON_STEER_F_EXISTING,
	};
	struct baton_steer *st;

	return baton_steer_open(&st, &so) ? NULL : st;
}

/*
 * No share to a canary any more, from whatever is active now (an upgrade
 * may have changed it); *had says whether there was one
 */
static int share_clear(struct baton_steer *st, bool *had)
{
	__u32 active, to, share;
	int err;

	err = baton_steer_get(st, &active, &to, &share);
	if (err)
		return err;
	*had = share;
	return share ? baton_steer_set(st, active, active, 0) : 0;
}

/*
 * Its share back to the serving generation if take_back, then SIGTERM:
 * it stops taking connections and serves the ones it has to their end.
 * Whether it went within CANARY_EXIT_WAIT_MS is noted for the report.
 */
static void canary_stop(struct upgrade_job *job, struct baton_steer *st,
			bool take_back)
{
	struct canary *c = &job->canary;
	bool had;
	__u64 end;
	int err;

	if (take_back) {
		err = share_clear(st, &had);
		c->taken_back = !err;
		if (err)
			snprintf(c->why + strlen(c->why),
				 sizeof(c->why) - strlen(c->why),
				 "%sits share could not be taken back (%s): run 'batonctl steer %s --abort'",
				 c->why[0] ? "; " : "", strerror(-err),
				 job->uo.service);
	}
	if (!c->pid || canary_ended(c))
		return;
	kill(c->pid, SIGTERM);
	c->told = true;
	end = mono_ns() + CANARY_EXIT_WAIT_MS * 1000000ULL;
	while (!canary_ended(c) && mono_ns() < end)
		usleep(CANARY_POLL_MS * 1000);
}

/*
 * The canary's window: 0 if it passed (the canary still serves its
 * share; canary_end() stops it after the upgrade), else -errno with
 * c->why, the share taken back and the canary told to stop.
 */
int canary_run(const struct ctl_opts *o, struct upgrade_job *job,
	       struct journal *j)
{
	struct canary *c = &job->canary;
	struct verify *v = &job->v;
	struct baton_steer *st;
	__u32 to, share, g;
	int err;

	snprintf(c->service, sizeof(c->service), "%s" CANARY_SUFFIX,
		 job->uo.service);
	snprintf(c->result, sizeof(c->result), "failed");
	c->gen = CANARY_NO_GEN;
	st = steer_open(job->uo.service);
	if (!st) {
		snprintf(c->why, sizeof(c->why),
			 "--canary steers a share of %s's new connections, and %s has no steered group: start it with its listeners steered (kvd --steer GEN)",
			 job->uo.service, job->uo.service);
		return -ENOENT;
	}
	err = baton_steer_get(st, &c->active, &to, &share);
	if (err) {
		snprintf(c->why, sizeof(c->why), "cannot read %s's steering: %s",
			 job->uo.service, strerror(-err));
		goto close_steer;
	}
	if (share) {
		err = -EBUSY;
		snprintf(c->why, sizeof(c->why),
			 "%s already sends %.2f%% of its new connections to generation %u: 'batonctl steer %s --abort' first",
			 job->uo.service, share / (BATON_STEER_SCALE / 100.0),
			 to, job->uo.service);
		goto close_steer;
	}
	for (g = 0; g < BATON_STEER_MAX_GEN; g++)
		if (baton_steer_has_listener(st, g) > 0)
			c->taken |= 1U << g;
	err = canary_spawn(o, job);
	if (err)
		goto close_steer;
	journal_set(j, "result", "canary-running");
	journal_set(j, "canary", "%s", c->service);
	journal_set(j, "canary_share", "%.2f%%",
		    c->share / (BATON_STEER_SCALE / 100.0));
	journal_set(j, "canary_pid", "%d", c->pid);
	journal_set(j, "canary_start", "%llu", c->start);
	journal_set(j, "canary_result", "starting");
	journal_write(j);
	err = canary_join(o, job, st);
	if (err)
		goto stop;
	/* written before the share moves: recover looks for it */
	journal_set(j, "canary_generation", "%u", c->gen);
	journal_set(j, "canary_result", "steering");
	journal_write(j);
	err = baton_steer_set(st, c->active, c->gen, c->share);
	if (err) {
		snprintf(c->why, sizeof(c->why),
			 "cannot steer %.2f%% of new connections to generation %u: %s",
			 c->share / (BATON_STEER_SCALE / 100.0), c->gen,
			 strerror(-err));
		goto stop;
	}
	journal_set(j, "canary_result", "verifying");
	journal_write(j);
	err = verify_window(v, c->service, c->pid);
	journal_set(j, "verify_runs", "%u", v->runs);
	if (!err) {
		snprintf(c->result, sizeof(c->result), "passed");
		/*
		 * result stays canary-running until the upgrade's first
		 * phase is in the journal (journal_phase()): killed in its
		 * attach, recover takes the share back
		 */
		journal_set(j, "canary_result", "passed");
		journal_set(j, "verify_result", "passed");
		journal_write(j);
		baton_steer_close(st);
		return 0;
	}
	snprintf(c->result, sizeof(c->result), "aborted");
	snprintf(c->why, sizeof(c->why), "the canary failed its verification, run %u, %.3f s into the window: %s",
		 v->runs, v->at_ms / 1000, v->why);
	journal_set(j, "verify_result", "failed");
	journal_set(j, "verify_failure", "run %u, %.3f s into the window: %s",
		    v->runs, v->at_ms / 1000, v->why);
stop:
	canary_stop(job, st, c->gen != CANARY_NO_GEN);
	journal_set(j, "canary_result", "%s", c->result);
close_steer:
	baton_steer_close(st);
	return err;
}

/*
 * After the upgrade proper: if it is done, the new instance has taken the
 * canary's generation and all new connections; if not, the share goes
 * back. The canary is told to stop either way.
 */
void canary_end(struct upgrade_job *job, bool upgraded, struct journal *j)
{
	struct canary *c = &job->canary;
	struct baton_steer *st = upgraded ? NULL : steer_open(job->uo.service);

	if (!upgraded && !st)
		snprintf(c->why, sizeof(c->why),
			 "its share could not be taken back (the steering is gone): run 'batonctl steer %s --abort'",
			 job->uo.service);
	if (!upgraded)
		snprintf(c->result, sizeof(c->result), "aborted");
	canary_stop(job, st, st != NULL);
	baton_steer_close(st);
	journal_set(j, "canary_result", "%s", c->result);
}

/* What the canary was and how it ended: the report's "canary" object. */
void report_canary(struct out *out, const struct upgrade_job *job)
{
	const struct canary *c = &job->canary;
	const struct verify *v = &job->v;
	char buf[400];

	out_obj_begin(out, "canary", "canary:");
	out_str(out, "service", "service", c->service);
	if (c->pid)
		out_u64(out, "pid", NULL, c->pid);
	snprintf(buf, sizeof(buf), "%.2f", c->share / (BATON_STEER_SCALE / 100.0));
	out_str(out, "share_pct", NULL, buf);
	if (c->gen != CANARY_NO_GEN) {
		snprintf(buf, sizeof(buf), "pid %d, generation %u, %.2f%% of new connections",
			 c->pid, c->gen, c->share / (BATON_STEER_SCALE / 100.0));
		out_str(out, NULL, "ran", buf);
		out_u64(out, "generation", NULL, c->gen);
	}
	out_str(out, "result", "result", c->result);
	out_str(out, "verify", "verify", v->cmd);
	out_u64(out, "runs", NULL, v->runs);
	if (v->failed) {
		snprintf(buf, sizeof(buf), "run %u of the window, %.3f s into it: %s",
			 v->runs, v->at_ms / 1000, v->why);
		out_str(out, "failure", "failure", buf);
	} else if (v->runs) {
		snprintf(buf, sizeof(buf), "%u runs over %.1f s, each exited 0",
			 v->runs, v->for_ms / 1000.0);
		out_str(out, NULL, "runs", buf);
	}
	out_u64(out, "share_taken_back", NULL, c->taken_back);
	/* checked when it was told to stop, and up to a second after */
	if (!c->pid)
		snprintf(buf, sizeof(buf), "never started");
	else if (c->reaped)
		snprintf(buf, sizeof(buf), "exited (%s)", c->end);
	else if (c->told)
		snprintf(buf, sizeof(buf), "sent SIGTERM, and running %d ms later (a canary then serves its connections until they close)",
			 CANARY_EXIT_WAIT_MS);
	else
		snprintf(buf, sizeof(buf), "running");
	out_str(out, "state", "now", buf);
	out_u64(out, "exited", NULL, c->reaped);
	if (c->why[0] && strcmp(c->result, "passed"))
		out_str(out, "error", "error", c->why);
	out_obj_end(out);
}

/*
 * batonctl recover, after a coordinator that died with a canary running:
 * its share taken back unless the upgrade was done, and the canary, if it
 * is still the process the journal names, told to stop. What was done, in
 * words, into said.
 */
void canary_recover(const char *service, struct journal *j, bool upgraded,
		    char *said, size_t len)
{
	const char *pid = journal_get(j, "canary_pid");
	const char *back = "the new instance has its generation";
	char failed[200];
	struct baton_steer *st;
	bool told = false, had;

	if (!upgraded) {
		/* any share: the journal may not have said it was set */
		snprintf(failed, sizeof(failed),
			 "its share could not be taken back: run 'batonctl steer %s --abort'",
			 service);
		back = failed;
		st = steer_open(service);
		if (st && !share_clear(st, &had))
			back = had ? "its share was taken back" :
			       "no share was set";
		baton_steer_close(st);
	}
	if (pid && proc_is(pid, journal_get(j, "canary_start")))
		told = !kill(atoi(pid), SIGTERM);
	journal_set(j, "canary_result", "%s", upgraded ? "passed" : "aborted");
	snprintf(said, len, "the canary %s: %s; %s", journal_get(j, "canary") ?: "?",
		 back, told ? "it was told to stop, and serves its connections until they close" :
		 "it had gone");
}
