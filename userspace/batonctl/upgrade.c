// SPDX-License-Identifier: GPL-2.0-only
/* batonctl upgrade: drive one upgrade, keep the journal, print the outcome. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "batonctl.h"

static void usage(FILE *f)
{
	fprintf(f,
"Usage: batonctl upgrade SERVICE [--timeout-ms N] [--blackout-timeout-ms N]\n"
"                        [--drain] [--log FILE] [--listeners take|own]\n"
"                        [--precopy-rounds N] [--precopy-bytes N]\n"
"                        [--verify CMD [--verify-for DURATION]\n"
"                         [--verify-timeout-ms N] [--canary PCT%%]]\n"
"                        [--mode fd|repair [--netns PATH --netns-addr ADDR/PLEN\n"
"                         --netns-dev DEV]] [-j|--json] -- COMMAND [ARG...]\n"
"\n"
"Starts COMMAND as the next version of SERVICE and moves the running\n"
"instance's listening and established connections, and its state, to it.\n"
"The old instance exits once the new one serves. If anything fails before\n"
"then, the old instance serves on as before and batonctl exits with 1.\n"
"\n"
"  --timeout-ms N   how long each step may take (%d)\n"
"  --blackout-timeout-ms N\n"
"                   how long the blackout may take, while clients wait:\n"
"                   past it the old instance serves again (%d)\n"
"  --drain          move the listening sockets only; the old instance\n"
"                   serves its connections until they close\n"
"  --listeners own  the new instance opens its own listeners in the\n"
"                   steered SO_REUSEPORT group (kvd --steer GEN); only\n"
"                   connections move, and new ones switch at activation\n"
"  --mode repair    established connections move as TCP checkpoints\n"
"                   (baton.ko freezes and exports them; TCP_REPAIR alone\n"
"                   without it) rather than as descriptors (--mode fd,\n"
"                   the default); needs CAP_NET_ADMIN\n"
"  --netns PATH     with --mode repair and baton.ko: start COMMAND in the\n"
"                   network namespace PATH opens (/run/netns/NAME,\n"
"                   /proc/PID/ns/net) and move the service there: the new\n"
"                   instance listens there at the old one's addresses, the\n"
"                   connections are restored there, and once it serves the\n"
"                   service address moves from this namespace (the old\n"
"                   instance's) to it, announced on the link\n"
"  --netns-addr ADDR/PLEN\n"
"                   the service address that moves, as on its device here\n"
"                   (10.0.0.5/24, fd00::5/64)\n"
"  --netns-dev DEV  the device in that namespace that takes it: up, on the\n"
"                   same link as the old one's\n"
"  --log FILE       the new instance's standard output and error (the\n"
"                   old instance's, if not given)\n"
"  --precopy-rounds N\n"
"                   at most N rounds of state before the blackout, the\n"
"                   snapshot the first, each next one what changed during\n"
"                   the one before (%d; 1 to %d)\n"
"  --precopy-bytes N\n"
"                   a round of at most N bytes is the last: the blackout\n"
"                   carries what changes during it (%u). Rounds that do\n"
"                   not shrink end too: writes outran the copy, and the\n"
"                   blackout carries a round's worth (the report says so)\n"
"  --verify CMD     after activation, run CMD (/bin/sh -c; BATON_SERVICE\n"
"                   and BATON_PID, the new instance's, in its environment)\n"
"                   every %d ms over the window: if a run exits non-zero,\n"
"                   upgrade back to the old instance's command line\n"
"                   (read from /proc before anything begins) and exit 1\n"
"  --verify-for DURATION\n"
"                   the window: 10s, 500ms, 2m (%d ms)\n"
"  --verify-timeout-ms N\n"
"                   each run's deadline, past which it is killed and\n"
"                   counts as failed (%d)\n"
"  --canary PCT%%    with --listeners own and --verify: before the upgrade,\n"
"                   run COMMAND beside the old instance as SERVICE-canary\n"
"                   (%s=SERVICE-canary in its environment; kvd\n"
"                   honours it), a generation of the steered group that\n"
"                   gets PCT%% of new connections by flow hash, and run\n"
"                   --verify against it (BATON_PID is the canary's) over\n"
"                   the window. If every run passes, the upgrade follows;\n"
"                   if one fails, the share goes back at once, nothing\n"
"                   else begins, and batonctl exits with 1. The canary is\n"
"                   then told to stop: it takes no new connection and\n"
"                   serves those it has until they close\n"
"  -j, --json       print the report as one JSON object\n",
		BATON_UPGRADE_TIMEOUT_MS, BATON_BLACKOUT_TIMEOUT_MS,
		BATON_PRECOPY_ROUNDS, BATON_MAX_ROUNDS, BATON_PRECOPY_BYTES,
		VERIFY_INTERVAL_MS, VERIFY_FOR_MS, VERIFY_TIMEOUT_MS,
		BATON_CANARY_ENV);
}

/*
 * The journal keeps what recovery needs: who coordinates, and which old and
 * new processes (pid and start time) take part. It is written when those
 * are known, after the attach and the spawn, and at the end: not in the
 * blackout, where nothing recovery reads changes.
 */
static void journal_phase(struct journal *j, const char *prefix,
			  const struct baton_upgrade_report *r)
{
	char key[32];

	/* a canary that passed: the upgrade's own record now (canary.c) */
	if (!strcmp(journal_get(j, "result") ?: "", "canary-running"))
		journal_set(j, "result", "in-progress");
	snprintf(key, sizeof(key), "%sphase", prefix);
	journal_set(j, key, "%s", baton_phase_name(r->phase));
	snprintf(key, sizeof(key), "%sold_pid", prefix);
	if (r->old_pid && !journal_get(j, key)) {
		journal_set(j, key, "%d", r->old_pid);
		snprintf(key, sizeof(key), "%sold_start", prefix);
		journal_set(j, key, "%llu", proc_start_time(r->old_pid));
	}
	snprintf(key, sizeof(key), "%snew_pid", prefix);
	if (r->new_pid && !journal_get(j, key)) {
		journal_set(j, key, "%d", r->new_pid);
		snprintf(key, sizeof(key), "%snew_start", prefix);
		journal_set(j, key, "%llu", proc_start_time(r->new_pid));
	}
	journal_set(j, "updated", "%ld", (long)time(NULL));
	journal_write(j);
}

/*
 * Whether pid serves the service now: it answers on the control socket.
 * A report says "serves" of nothing it did not check at the moment.
 */
static bool serves(const struct ctl_opts *o, const char *service, pid_t pid,
		   char *why, size_t len)
{
	struct baton_instance_info info;
	char path[64], stat[256], *p;
	FILE *f;
	int err;

	err = baton_query(o->run_dir, service, BATON_QUERY_TIMEOUT_MS, &info);
	if (!err && info.pid == pid)
		return true;
	if (!proc_start_time(pid)) {
		snprintf(why, len, "is gone");
		return false;
	}
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (f && fgets(stat, sizeof(stat), f) && (p = strrchr(stat, ')')) &&
	    (p[2] == 'T' || p[2] == 't'))
		snprintf(why, len, "is stopped; it goes on when continued (kill -CONT %d)",
			 pid);
	else if (!err)
		snprintf(why, len, "runs, but pid %d answers for %s", info.pid,
			 service);
	else
		snprintf(why, len, "runs, but does not answer on its control socket (%s)",
			 strerror(-err));
	if (f)
		fclose(f);
	return false;
}

static const char *const precopy_ends[] = {
	[BATON_PRECOPY_FIT] = "fit",
	[BATON_PRECOPY_OUTRUN] = "outrun",
	[BATON_PRECOPY_UNTRACKED] = "untracked",
};

static const char *const precopy_why[] = {
	[BATON_PRECOPY_FIT] = "the last fit the budget: the blackout carried what changed during it",
	[BATON_PRECOPY_OUTRUN] = "writes outran the copy (the rounds did not shrink, or were all used): the blackout carried a round's worth of changes",
	[BATON_PRECOPY_UNTRACKED] = "the application keeps no rounds: the blackout carried every change since the snapshot began",
};

/* Phase 1's rounds of state, the snapshot first, and why they ended. */
static void report_rounds(struct out *out, const struct baton_upgrade_report *r)
{
	const char *end = r->precopy_end < sizeof(precopy_ends) / sizeof(precopy_ends[0]) &&
			  precopy_ends[r->precopy_end] ?
			  precopy_ends[r->precopy_end] : "unknown";
	char title[300], label[32], buf[160];
	unsigned int i;

	if (!r->nrounds)
		return;
	snprintf(title, sizeof(title), "phase 1 rounds: %u; %s", r->nrounds,
		 strcmp(end, "unknown") ? precopy_why[r->precopy_end] :
		 "the old instance did not say why they ended");
	out_str(out, "precopy_end", NULL, end);
	out_arr_begin(out, "rounds", title);
	for (i = 0; i < r->nrounds; i++) {
		const struct baton_round *rd = &r->rounds[i];

		out_obj_begin(out, NULL, NULL);
		snprintf(label, sizeof(label), "round %u", i + 1);
		snprintf(buf, sizeof(buf), "%8u records %10.1f KiB %10.3f ms",
			 rd->records, rd->bytes / 1024.0, rd->ns / 1e6);
		out_str(out, NULL, label, buf);
		out_u64(out, "records", NULL, rd->records);
		out_u64(out, "bytes", NULL, rd->bytes);
		out_ms(out, "ms", NULL, rd->ns / 1e6, NULL);
		out_obj_end(out);
	}
	out_arr_end(out);
}

/* What --verify saw and, if it failed, how the way back went. */
static void report_verify(struct out *out, const struct verify *v,
			  const struct baton_upgrade_report *back)
{
	char buf[300];

	out_obj_begin(out, "verify", "verify:");
	out_str(out, "command", "command", v->cmd);
	out_u64(out, "for_ms", NULL, v->for_ms);
	out_str(out, "result", "result", v->failed ? "failed" : "passed");
	out_u64(out, "runs", NULL, v->runs);
	if (v->failed) {
		snprintf(buf, sizeof(buf), "run %u of the window, %.3f s into it: %s",
			 v->runs, v->at_ms / 1000, v->why);
		out_str(out, "failure", "failure", buf);
		out_ms(out, "failed_at_ms", NULL, v->at_ms, NULL);
	} else {
		snprintf(buf, sizeof(buf), "%u runs over %.1f s, each exited 0",
			 v->runs, v->for_ms / 1000.0);
		out_str(out, NULL, "runs", buf);
	}
	out_obj_end(out);
	if (!v->failed)
		return;
	out_obj_begin(out, "rollback", "went back to the old command:");
	out_str(out, "command", "command", v->old_line);
	out_str(out, "result", "result", back ? baton_phase_name(back->phase) :
		"not started");
	if (back) {
		out_u64(out, "old_pid", NULL, back->old_pid);
		out_u64(out, "new_pid", NULL, back->new_pid);
		snprintf(buf, sizeof(buf), "pid %d (the one that failed) to pid %d",
			 back->old_pid, back->new_pid);
		out_str(out, NULL, "from", buf);
		snprintf(buf, sizeof(buf), "%u listeners, %u connections",
			 back->listeners, back->conns);
		out_str(out, NULL, "moved", buf);
		out_u64(out, "listeners", NULL, back->listeners);
		out_u64(out, "conns", NULL, back->conns);
		out_ms(out, "blackout_ms", "blackout",
		       ms_between(back->deactivate_ns, back->active_ns), NULL);
		if (back->error)
			out_str(out, "error", "error", back->reason);
	}
	out_obj_end(out);
}

/* Into another network namespace: whether the address went, and how. */
static void report_netns(struct out *out, const struct upgrade_job *job,
			 const struct baton_upgrade_report *r)
{
	const struct baton_upgrade_opts *uo = &job->uo;
	char buf[300];

	out_obj_begin(out, "netns", "namespace:");
	out_str(out, "path", "into", uo->netns);
	snprintf(buf, sizeof(buf), "%s to %s there: %s", uo->netns_addr,
		 uo->netns_dev, r->netns_moved ? "moved" : "not moved");
	out_str(out, NULL, "address", buf);
	out_str(out, "addr", NULL, uo->netns_addr);
	out_str(out, "dev", NULL, uo->netns_dev);
	out_u64(out, "moved", NULL, r->netns_moved);
	if (r->netns_moved) {
		snprintf(buf, sizeof(buf), "%llu segments held here, delivered there",
			 (unsigned long long)r->netns_delivered);
		out_str(out, NULL, "thawed", buf);
		out_u64(out, "delivered", NULL, r->netns_delivered);
		out_ms(out, "add_ms", "add", r->netns_add_ns / 1e6, NULL);
		out_ms(out, "announce_ms", "announce", r->netns_announce_ns / 1e6,
		       "with the wait for what was in flight");
		out_ms(out, "del_ms", "remove here", r->netns_del_ns / 1e6, NULL);
		out_ms(out, "thaw_ms", "thaw into it", r->netns_thaw_ns / 1e6,
		       NULL);
	}
	out_obj_end(out);
}

/*
 * The outcome: phase's name; with --verify, "reverted" when the way back
 * was taken and "failed" when it could not be.
 */
static const char *outcome(const struct baton_upgrade_report *r,
			   const struct verify *v,
			   const struct baton_upgrade_report *back)
{
	/* the new one serves, where its address is not */
	if (r->phase == BATON_PHASE_DONE && (r->flags & BATON_UPGRADE_F_NETNS) &&
	    !r->netns_moved)
		return "incomplete";
	if (r->phase != BATON_PHASE_DONE || !v->cmd || !v->failed)
		return baton_phase_name(r->phase);
	return back && back->phase == BATON_PHASE_DONE ? "reverted" : "failed";
}

static void report(const struct ctl_opts *o, struct upgrade_job *job,
		   const struct baton_upgrade_report *r, struct journal *j,
		   const struct baton_upgrade_report *back)
{
	const char *service = job->uo.service;
	const struct verify *v = &job->v;
	const char *result = outcome(r, v, back);
	char who[300], why[200];
	pid_t serving = 0;
	const __u64 *t = r->t_ns;
	double blackout = ms_between(r->deactivate_ns, r->active_ns);
	double total = ms_between(t[BATON_PHASE_ATTACHED],
				  t[r->phase] ? t[r->phase] : t[BATON_PHASE_ATTACHED]);
	char buf[160], note[160];
	struct out out;

	journal_set(j, "result", "%s", result);
	journal_set(j, "reason", "%s", r->reason);
	journal_set(j, "conns", "%u", r->conns);
	journal_set(j, "listeners", "%u", r->listeners);
	journal_set(j, "blackout_ms", "%.3f", blackout);
	journal_set(j, "total_ms", "%.3f", total);
	if (job->uo.netns)
		journal_set(j, "netns_moved", "%d", r->netns_moved);

	/* checked now: who answers for the service */
	if (back && back->new_pid &&
	    serves(o, service, back->new_pid, why, sizeof(why))) {
		serving = back->new_pid;
		snprintf(who, sizeof(who), "the old command's new instance (pid %d) serves",
			 serving);
	} else if (r->new_pid && serves(o, service, r->new_pid, why, sizeof(why))) {
		serving = r->new_pid;
		snprintf(who, sizeof(who), "the new instance (pid %d) serves",
			 serving);
	} else if (r->old_pid && serves(o, service, r->old_pid, why, sizeof(why))) {
		serving = r->old_pid;
		snprintf(who, sizeof(who), "the old instance (pid %d) serves",
			 serving);
	} else if (r->phase == BATON_PHASE_DONE) {
		snprintf(who, sizeof(who), "the new instance (pid %d) took over, but %s",
			 r->new_pid, why);
	} else {
		snprintf(who, sizeof(who), "nothing serves %s now: the old instance (pid %d) %s; start %s again",
			 service, r->old_pid, why, service);
	}
	journal_set(j, "serving_pid", "%d", serving);
	journal_set(j, "updated", "%ld", (long)time(NULL));
	journal_write(j);

	snprintf(job->result, sizeof(job->result), "%s", result);
	if (!strcmp(result, "reverted"))
		snprintf(job->reason, sizeof(job->reason),
			 "failed its verification (%s); went back to the old command", v->why);
	else if (!strcmp(result, "failed") && v->failed)
		snprintf(job->reason, sizeof(job->reason),
			 "failed its verification (%s), and going back failed too: %s", v->why, who);
	else if (strcmp(result, "done"))
		snprintf(job->reason, sizeof(job->reason), "%s; %s", r->reason, who);
	job->old_pid = r->old_pid;
	job->new_pid = r->new_pid;
	job->serving = serving;
	if (job->quiet)
		return;

	out_begin(&out, stdout, o->json);
	if (!o->json) {
		if (strcmp(result, "done"))
			printf("upgrade of %s: %s\n", service, result);
		else
			printf("upgrade of %s: done in %.1f ms%s\n", service,
			       total, r->old_lost ? " (the old instance was lost; the new took over)" : "");
	}
	out_str(&out, "service", NULL, service);
	out_str(&out, "result", NULL, result);
	snprintf(buf, sizeof(buf), "pid %d, %s", r->old_pid, r->old_app);
	out_str(&out, "old", "old", buf);
	snprintf(buf, sizeof(buf), "pid %d, %s", r->new_pid, r->new_app);
	out_str(&out, "new", r->new_pid ? "new" : NULL, buf);
	out_u64(&out, "old_pid", NULL, r->old_pid);
	out_u64(&out, "new_pid", NULL, r->new_pid);
	if (r->early_records)
		snprintf(buf, sizeof(buf), "%u listeners, %u connections, %u connection records in phase 1, %u records in the blackout (%.1f KiB)",
			 r->listeners, r->conns, r->early_records, r->records,
			 r->record_bytes / 1024.0);
	else
		snprintf(buf, sizeof(buf), "%u listeners, %u connections, %u records (%.1f KiB)",
			 r->listeners, r->conns, r->records,
			 r->record_bytes / 1024.0);
	/*
	 * what crossed to the new instance, once phase 1 was done (the
	 * phases after DONE are not further on: rolled back, it is undone)
	 */
	out_str(&out, "moved", !t[BATON_PHASE_READY] ? NULL :
		r->phase == BATON_PHASE_ROLLED_BACK ? "moved, undone" :
		"moved", buf);
	out_str(&out, "mode", "mode", r->flags & BATON_UPGRADE_F_REPAIR ?
		"repair" : "fd");
	out_u64(&out, "listeners", NULL, r->listeners);
	out_u64(&out, "conns", NULL, r->conns);
	if (r->flags & BATON_UPGRADE_F_REPAIR) {
		snprintf(buf, sizeof(buf), "%u connections, through %s",
			 r->checkpoints, r->ckpt_format == BATON_CKPT_MODULE ?
			 "baton.ko (frozen)" : r->ckpt_format ?
			 "TCP_REPAIR alone (not frozen)" : "nothing");
		out_str(&out, "checkpointed", t[BATON_PHASE_DEACTIVATED] ?
			"checkpointed" : NULL, buf);
		out_u64(&out, "checkpoints", NULL, r->checkpoints);
		out_str(&out, "checkpoint_path", NULL,
			r->ckpt_format == BATON_CKPT_MODULE ? "module" :
			r->ckpt_format ? "userspace" : "none");
	}
	if (r->flags & BATON_UPGRADE_F_NETNS)
		report_netns(&out, job, r);
	out_u64(&out, "records", NULL, r->records);
	out_u64(&out, "records_phase1", NULL, r->early_records);
	out_u64(&out, "record_bytes", NULL, r->record_bytes);
	if (t[BATON_PHASE_SPAWNED])
		out_ms(&out, "start_ms", "start",
		       ms_between(t[BATON_PHASE_ATTACHED], r->phase1_start_ns),
		       "the new instance started and was welcomed");
	if (t[BATON_PHASE_READY])
		out_ms(&out, "phase1_ms", "phase 1",
		       ms_between(r->phase1_start_ns, t[BATON_PHASE_READY]),
		       "sockets and state moved; the old served on");
	report_rounds(&out, r);
	if (r->active_ns) {
		const struct baton_step *big = NULL;
		unsigned int i;

		/* what took the blackout longest, by the instance that took it */
		for (i = 0; i < r->nsteps; i++)
			if (!big || r->steps[i].ns > big->ns)
				big = &r->steps[i];
		if (big)
			snprintf(note, sizeof(note), "longest step: %s %s, %.3f ms",
				 big->who, big->name, big->ns / 1e6);
		out_ms(&out, "blackout_ms", "blackout", blackout,
		       big ? note : NULL);
		out_obj_begin(&out, "steps_ms", r->nsteps ? "blackout steps:" : NULL);
		out.wide = true;
		for (i = 0; i < r->nsteps; i++) {
			snprintf(buf, sizeof(buf), "%s %s", r->steps[i].who,
				 r->steps[i].name);
			out_ms(&out, buf, buf, r->steps[i].ns / 1e6, NULL);
		}
		out.wide = false;
		out_obj_end(&out);
	}
	if (r->old_lost) {
		const char *state = !(r->activate_flags & BATON_ACTIVATE_F_PEER_LOST) ?
			"whole: phase 2 had come" :
			r->activate_flags & BATON_ACTIVATE_F_STATE_PARTIAL ?
			"part of phase 1's snapshot: connections closed" :
			"phase 1's snapshot, without the changes since: connections closed";

		out_str(&out, "state_taken", "state taken", state);
	}
	if (r->phase == BATON_PHASE_DONE)
		out_ms(&out, "old_exit_ms", "old exited",
		       ms_between(r->activated_ns, t[BATON_PHASE_DONE]),
		       "after the new became active");
	out_ms(&out, "total_ms", NULL, total, NULL);
	if (job->canary.share)
		report_canary(&out, job);
	else if (v->cmd && r->phase == BATON_PHASE_DONE)
		report_verify(&out, v, back);
	out_u64(&out, "mono_start_ns", NULL, t[BATON_PHASE_ATTACHED]);
	out_u64(&out, "mono_end_ns", NULL,
		r->active_ns ? r->active_ns : t[r->phase]);
	if (r->error)
		out_str(&out, "error", "error", r->reason);
	out_u64(&out, "old_lost", NULL, r->old_lost);
	out_u64(&out, "serving_pid", NULL, serving);
	if (j->err)
		out_str(&out, "journal_error", "journal", strerror(-j->err));
	out_end(&out);
	if (j->err)
		fprintf(stderr, "batonctl: %s's journal could not be written (%s): 'batonctl status' shows an older record\n",
			service, strerror(-j->err));
	if (r->phase == BATON_PHASE_ROLLED_BACK && serving == r->old_pid)
		fprintf(stderr, "batonctl: %s was not upgraded: %s.\n"
			"batonctl: the old instance (pid %d) serves as before; no connection was closed.\n"
			"batonctl: check the new version's own log (--log FILE) and try again%s.\n",
			service, r->reason, r->old_pid,
			r->error == -ETIMEDOUT && r->deactivate_ns && !r->active_ns ?
			"; if it was still taking the foreground state, give the blackout longer (--blackout-timeout-ms)" :
			"");
	else if (r->phase == BATON_PHASE_ROLLED_BACK || r->phase == BATON_PHASE_FAILED)
		fprintf(stderr, "batonctl: %s was not upgraded: %s.\n"
			"batonctl: %s\n", service, r->reason, who);
	else if (!strcmp(result, "reverted") && serving == back->new_pid)
		fprintf(stderr, "batonctl: %s failed its verification (%s), so it went back to the old command: %s.\n",
			service, v->why, who);
	else if (!strcmp(result, "incomplete"))
		fprintf(stderr, "batonctl: %s: %s.\n", service, r->reason);
	else if (!strcmp(result, "failed"))
		fprintf(stderr, "batonctl: %s failed its verification (%s), and going back failed too: %s.\n"
			"batonctl: start %s again with the old command: %s\n",
			service, v->why, who, service, v->old_line);
	else if (r->phase == BATON_PHASE_DONE && serving != r->new_pid)
		fprintf(stderr, "batonctl: %s\n", who);
}

/* The steps of one upgrade, the journal kept under prefix: its phase. */
static int drive(struct baton_upgrade *up, struct journal *j,
		 const char *prefix, bool quiet)
{
	const struct baton_upgrade_report *r = baton_upgrade_report(up);
	char key[32];
	int phase;

	journal_phase(j, prefix, r);
	do {
		phase = baton_upgrade_step(up);
		if (phase == BATON_PHASE_SPAWNED)
			journal_phase(j, prefix, r);
		if (!quiet && isatty(STDERR_FILENO) && phase > 0 &&
		    phase != BATON_PHASE_DONE)
			fprintf(stderr, "  ... %s%s\n", prefix[0] ? "going back: " : "",
				baton_phase_name(phase));
	} while (phase > 0 && phase != BATON_PHASE_DONE);
	snprintf(key, sizeof(key), "%sphase", prefix);
	journal_set(j, key, "%s", baton_phase_name(r->phase));
	return r->phase;
}

/*
 * After activation: CMD over the window and, if it fails, an upgrade back
 * to the old instance's command (*back, for the report). The journal says
 * where it stands at each step: "rollback=in-progress" is what recover()
 * looks for if this coordinator dies on the way back.
 */
static void verify_after(struct baton_upgrade_opts *uo, struct verify *v,
			 const struct baton_upgrade_report *r,
			 struct journal *j, struct baton_upgrade **back,
			 bool quiet)
{
	const struct baton_upgrade_report *br;

	journal_set(j, "result", "verifying");
	journal_set(j, "verify_result", "running");
	journal_write(j);
	if (!verify_window(v, uo->service, r->new_pid)) {
		journal_set(j, "verify_result", "passed");
		journal_set(j, "verify_runs", "%u", v->runs);
		return;
	}
	journal_set(j, "verify_result", "failed");
	journal_set(j, "verify_runs", "%u", v->runs);
	journal_set(j, "verify_failure", "run %u, %.3f s into the window: %s",
		    v->runs, v->at_ms / 1000, v->why);
	journal_set(j, "rollback", "in-progress");
	journal_set(j, "result", "rollback-running");
	journal_write(j);
	if (!quiet)
		fprintf(stderr, "batonctl: %s failed its verification (%s): going back to %s\n",
			uo->service, v->why, v->old_line);
	uo->argv = v->old_argv;
	if (baton_upgrade_open(back, uo)) {
		*back = NULL;
		journal_set(j, "rollback", "failed");
		journal_set(j, "rollback_reason", "could not begin");
		return;
	}
	drive(*back, j, "rollback_", quiet);
	br = baton_upgrade_report(*back);
	journal_set(j, "rollback", "%s", br->phase == BATON_PHASE_DONE ?
		    "done" : "failed");
	journal_set(j, "rollback_reason", "%s", br->reason);
}

/*
 * The canary failed, or failed its verification: its share went back and
 * nothing else began. Who serves, as checked now.
 */
static void canary_aborted(const struct ctl_opts *o, struct upgrade_job *job,
			   struct journal *j)
{
	const char *service = job->uo.service;
	const struct canary *c = &job->canary;
	char who[300], why[200];
	pid_t serving = 0;
	struct out out;

	if (job->old_pid && serves(o, service, job->old_pid, why, sizeof(why))) {
		serving = job->old_pid;
		snprintf(who, sizeof(who), "the old instance (pid %d) serves",
			 serving);
	} else {
		snprintf(who, sizeof(who), "the old instance (pid %d) %s",
			 job->old_pid, why);
	}
	snprintf(job->result, sizeof(job->result), "aborted");
	snprintf(job->reason, sizeof(job->reason), "%s", c->why);
	job->serving = serving;
	journal_set(j, "result", "aborted");
	journal_set(j, "reason", "%s", c->why);
	journal_set(j, "serving_pid", "%d", serving);
	journal_set(j, "updated", "%ld", (long)time(NULL));
	journal_write(j);
	if (job->quiet)
		return;
	out_begin(&out, stdout, o->json);
	if (!o->json)
		printf("upgrade of %s: aborted: the canary %s\n", service,
		       strcmp(c->result, "aborted") ? "did not run" :
		       "failed its verification");
	out_str(&out, "service", NULL, service);
	out_str(&out, "result", NULL, "aborted");
	out_u64(&out, "old_pid", NULL, job->old_pid);
	report_canary(&out, job);
	out_str(&out, "serving", "serving", who);
	out_u64(&out, "serving_pid", NULL, serving);
	if (j->err)
		out_str(&out, "journal_error", "journal", strerror(-j->err));
	out_end(&out);
	fprintf(stderr, "batonctl: %s was not upgraded: %s.\n"
		"batonctl: %s; nothing else was changed.\n", service, c->why, who);
}

/* Nothing began: why, and who serves (as checked now), in the same forms. */
static void refused(const struct ctl_opts *o, struct upgrade_job *job,
		    const char *why, struct journal *j)
{
	const char *service = job->uo.service;
	struct baton_instance_info info;
	pid_t serving = 0;
	struct out out;

	if (!baton_query(o->run_dir, service, BATON_QUERY_TIMEOUT_MS, &info))
		serving = info.pid;
	/* none when the journal itself was refused us */
	if (j) {
		journal_set(j, "result", "refused");
		journal_set(j, "reason", "%s", why);
		journal_set(j, "serving_pid", "%d", serving);
		journal_write(j);
	}
	snprintf(job->result, sizeof(job->result), "refused");
	if (why != job->reason)
		snprintf(job->reason, sizeof(job->reason), "%s", why);
	job->serving = serving;
	if (job->quiet)
		return;
	out_begin(&out, stdout, o->json);
	if (!o->json)
		printf("upgrade of %s: refused\n", service);
	out_str(&out, "service", NULL, service);
	out_str(&out, "result", NULL, "refused");
	out_str(&out, "error", "error", why);
	out_u64(&out, "serving_pid", NULL, serving);
	if (!o->json)
		printf("%-14s %s\n", "serving", serving ?
		       "the instance that serves is unchanged" :
		       "no instance answers for the service");
	out_end(&out);
}

int cmd_upgrade(const struct ctl_opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "timeout-ms", required_argument, NULL, 't' },
		{ "blackout-timeout-ms", required_argument, NULL, 'b' },
		{ "drain", no_argument, NULL, 'd' },
		{ "log", required_argument, NULL, 'l' },
		{ "listeners", required_argument, NULL, 'L' },
		{ "precopy-rounds", required_argument, NULL, 'R' },
		{ "precopy-bytes", required_argument, NULL, 'Y' },
		{ "verify", required_argument, NULL, 'v' },
		{ "verify-for", required_argument, NULL, 'V' },
		{ "verify-timeout-ms", required_argument, NULL, 'T' },
		{ "canary", required_argument, NULL, 'C' },
		{ "mode", required_argument, NULL, 'm' },
		{ "netns", required_argument, NULL, 'N' },
		{ "netns-addr", required_argument, NULL, 'A' },
		{ "netns-dev", required_argument, NULL, 'D' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	static struct upgrade_job job = {
		.uo = { .timeout_ms = BATON_UPGRADE_TIMEOUT_MS },
		.v = { .for_ms = VERIFY_FOR_MS, .run_ms = VERIFY_TIMEOUT_MS },
	};
	struct baton_upgrade_opts *uo = &job.uo;
	struct verify *v = &job.v;
	struct ctl_opts opts = *o;
	char *end;
	int c;

	optind = 0;	/* a new argv: reinitialise getopt */
	while ((c = getopt_long(argc, argv, "jh", longopts, NULL)) != -1) {
		switch (c) {
		case 'b':
			uo->blackout_ms = timeout_arg("blackout-timeout-ms",
						      optarg);
			if (uo->blackout_ms < 0)
				return 2;
			break;
		case 't':
			uo->timeout_ms = timeout_arg("timeout-ms", optarg);
			if (uo->timeout_ms < 0)
				return 2;
			break;
		case 'd':
			uo->flags |= BATON_UPGRADE_F_DRAIN;
			break;
		case 'R':
			uo->precopy_rounds = strtoul(optarg, &end, 10);
			if (*end || !uo->precopy_rounds ||
			    uo->precopy_rounds > BATON_MAX_ROUNDS) {
				fprintf(stderr, "batonctl: --precopy-rounds takes 1 to %d (1: the snapshot alone)\n",
					BATON_MAX_ROUNDS);
				return 2;
			}
			break;
		case 'Y':
			errno = 0;
			uo->precopy_bytes = strtoull(optarg, &end, 10);
			/* strtoull() takes " -1" for the largest, and clamps */
			if (*end || !uo->precopy_bytes || errno ||
			    strchr(optarg, '-')) {
				fprintf(stderr, "batonctl: --precopy-bytes takes a positive number of bytes\n");
				return 2;
			}
			break;
		case 'l':
			uo->log_path = optarg;
			break;
		case 'L':
			if (!strcmp(optarg, "own")) {
				uo->flags |= BATON_UPGRADE_F_OWN_LISTENERS;
			} else if (strcmp(optarg, "take")) {
				fprintf(stderr, "batonctl: --listeners is 'take' (hand them over) or 'own' (the new opens its own)\n");
				return 2;
			}
			break;
		case 'v':
			v->cmd = optarg;
			break;
		case 'V':
			v->for_ms = parse_duration_ms(optarg);
			if (v->for_ms < 0) {
				fprintf(stderr, "batonctl: --verify-for takes a duration: 10s, 500ms, 2m\n");
				return 2;
			}
			break;
		case 'T':
			v->run_ms = timeout_arg("verify-timeout-ms", optarg);
			if (v->run_ms < 0)
				return 2;
			break;
		case 'C':
			job.canary.share = steer_parse_share(optarg);
			if (job.canary.share <= 0 ||
			    job.canary.share >= BATON_STEER_SCALE) {
				fprintf(stderr, "batonctl: --canary takes a share of new connections above 0%% and below 100%%, e.g. 10%%\n");
				return 2;
			}
			break;
		case 'm':
			if (!strcmp(optarg, "repair")) {
				uo->flags |= BATON_UPGRADE_F_REPAIR;
			} else if (strcmp(optarg, "fd")) {
				fprintf(stderr, "batonctl: --mode is 'fd' (connections move as descriptors) or 'repair' (as TCP checkpoints)\n");
				return 2;
			}
			break;
		case 'N':
			uo->netns = optarg;
			break;
		case 'A':
			uo->netns_addr = optarg;
			break;
		case 'D':
			uo->netns_dev = optarg;
			break;
		case 'j':
			opts.json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind < 2) {
		fprintf(stderr, "batonctl: upgrade needs a SERVICE and, after --, the new version's COMMAND\n"
			"  e.g.: batonctl upgrade kvd -- kvd-v2 --service kvd\n");
		return 2;
	}
	if ((uo->flags & BATON_UPGRADE_F_REPAIR) &&
	    (uo->flags & BATON_UPGRADE_F_DRAIN)) {
		fprintf(stderr, "batonctl: --drain leaves the connections with the old instance: it does not go with --mode repair\n");
		return 2;
	}
	if (uo->netns && v->cmd) {
		fprintf(stderr, "batonctl: --verify goes back by another upgrade, from where the service then is: with --netns, run that one yourself, from the new namespace (--netns back to this one)\n");
		return 2;
	}
	if (job.canary.share &&
	    (!v->cmd || !(uo->flags & BATON_UPGRADE_F_OWN_LISTENERS) ||
	     (uo->flags & (BATON_UPGRADE_F_DRAIN | BATON_UPGRADE_F_REPAIR)))) {
		fprintf(stderr, "batonctl: --canary runs the new version beside the old in the service's steered group, judged by --verify: it needs --verify CMD and --listeners own, and takes no --drain or --mode repair\n"
			"  e.g.: batonctl upgrade kvd --listeners own --canary 10%% --verify CHECK -- kvd-v2 --listen 127.0.0.1:6379 --steer 2\n");
		return 2;
	}
	if ((uo->netns_addr || uo->netns_dev) && !uo->netns) {
		fprintf(stderr, "batonctl: --netns-addr and --netns-dev go with --netns PATH, the namespace the service moves to\n");
		return 2;
	}
	if (uo->netns && (!(uo->flags & BATON_UPGRADE_F_REPAIR) ||
			  !uo->netns_addr || !uo->netns_dev)) {
		fprintf(stderr, "batonctl: --netns moves the connections by checkpoint and the service address with them: it needs --mode repair, --netns-addr ADDR/PLEN and --netns-dev DEV\n"
			"  e.g.: batonctl upgrade kvd --mode repair --netns /run/netns/blue --netns-addr 10.0.0.5/24 --netns-dev eth0 -- kvd-v2\n");
		return 2;
	}
	uo->service = argv[optind];
	uo->argv = &argv[optind + 1];
	return upgrade_run(&opts, &job) ? 1 : 0;
}

/*
 * One upgrade of job->uo.service to job->uo.argv, journal and --verify
 * included: 0 if it is done, 1 if it is not (job->result and job->reason
 * say why).
 */
int upgrade_run(const struct ctl_opts *o, struct upgrade_job *job)
{
	struct baton_upgrade_opts *uo = &job->uo;
	struct verify *v = &job->v;
	const struct baton_upgrade_report *r;
	struct baton_upgrade *up = NULL, *back = NULL;
	struct baton_instance_info info;
	struct ctl_log logged = {};
	struct journal j = {};
	int err;

	/* ours to set, for a canary: never to pass on by accident */
	unsetenv(BATON_CANARY_ENV);
	snprintf(job->result, sizeof(job->result), "refused");
	job->reason[0] = '\0';
	job->old_pid = job->new_pid = job->serving = 0;
	uo->run_dir = o->run_dir;
	uo->log = ctl_log;
	uo->log_ctx = &logged;

	if (journal_begin(o->run_dir, uo->service, "upgrade", uo->timeout_ms,
			  o->json || job->quiet, &j, job->reason,
			  sizeof(job->reason))) {
		refused(o, job, job->reason, NULL);
		return 1;
	}
	journal_set(&j, "command", "%s", uo->argv[0]);
	journal_set(&j, "result", "in-progress");
	if (uo->netns) {
		/* for recover: where the address was to go (status.c) */
		journal_set(&j, "netns", "%s", uo->netns);
		journal_set(&j, "netns_addr", "%s", uo->netns_addr);
		journal_set(&j, "netns_dev", "%s", uo->netns_dev);
	}
	if (job->plan) {
		journal_set(&j, "plan", "%s", job->plan);
		journal_set(&j, "plan_step", "%s", job->plan_step);
	}
	if (v->cmd) {
		/* the way back is known before anything changes */
		err = baton_query(o->run_dir, uo->service, BATON_QUERY_TIMEOUT_MS,
				  &info) ?: verify_old_command(v, info.pid);
		if (!err)
			job->old_pid = info.pid;
		if (err) {
			char why[160];

			snprintf(why, sizeof(why), "--verify needs the running instance's command line, to go back to it, and it could not be read: %s",
				 strerror(-err));
			refused(o, job, why, &j);
			journal_close(&j);
			return 1;
		}
		journal_set(&j, "old_command", "%s", v->old_line);
		/* what recover shows must not pass for the whole command */
		if (strlen(v->old_line) >= JOURNAL_VAL_LEN)
			journal_set(&j, "old_command_cut", "%d",
				    JOURNAL_VAL_LEN - 1);
		journal_set(&j, "verify", "%s", v->cmd);
		journal_set(&j, "verify_for_ms", "%d", v->for_ms);
	}
	if (job->canary.share && canary_run(o, job, &j)) {
		canary_aborted(o, job, &j);
		journal_close(&j);
		return 1;
	}
	err = baton_upgrade_open(&up, uo);
	if (err) {
		if (job->canary.share)
			canary_end(job, false, &j);
		/* refused: the library said why, or the arguments were wrong */
		refused(o, job, logged.first_err[0] ?
			logged.first_err : strerror(-err), &j);
		journal_close(&j);
		return 1;
	}
	r = baton_upgrade_report(up);
	drive(up, &j, "", o->json || job->quiet);
	if (job->canary.share)
		canary_end(job, r->phase == BATON_PHASE_DONE, &j);
	else if (r->phase == BATON_PHASE_DONE && v->cmd)
		verify_after(uo, v, r, &j, &back, o->json || job->quiet);
	report(o, job, r, &j, back ? baton_upgrade_report(back) : NULL);
	err = strcmp(job->result, "done") ? 1 : 0;
	if (back)
		baton_upgrade_close(back);
	baton_upgrade_close(up);
	journal_close(&j);
	return err;
}
