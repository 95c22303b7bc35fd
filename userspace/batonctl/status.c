// SPDX-License-Identifier: GPL-2.0-only
/*
 * batonctl status: every service's instance and its last upgrade.
 * batonctl recover: settle an upgrade whose coordinator was killed.
 */
#include <dirent.h>
#include <ifaddrs.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "batonctl.h"

/* how long recover waits for an instance's answer, each time it asks */
#define RECOVER_QUERY_MS	200

/*
 * When pid started, in clock ticks after boot (/proc/PID/stat, field 22),
 * if it runs, and its state (field 3) into *state: 0 if it does not, or
 * is a zombie (an exited instance may wait long to be reaped).
 */
static unsigned long long proc_stat(pid_t pid, char *state)
{
	unsigned long long start = 0;
	char path[64], stat[512], *p;
	FILE *f;

	*state = 0;
	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (fgets(stat, sizeof(stat), f) && (p = strrchr(stat, ')')) &&
	    sscanf(p + 2, "%c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
		   state, &start) == 2 && (*state == 'Z' || *state == 'X'))
		start = 0;
	fclose(f);
	return start;
}

unsigned long long proc_start_time(pid_t pid)
{
	char state;

	return proc_stat(pid, &state);
}

/* The process of record (pid and, if known, start time) still runs. */
bool proc_is(const char *pid, const char *start)
{
	unsigned long long t = pid ? proc_start_time(atoi(pid)) : 0;

	return t && (!start || strtoull(start, NULL, 10) == t);
}

/* Stopped by a signal (SIGSTOP), not traced */
static bool new_stopped(pid_t pid)
{
	char state;

	return proc_stat(pid, &state) && state == 'T';
}

/*
 * Whether addr (ADDR/PLEN, as --netns-addr takes it) is on a device of
 * our network namespace now
 */
static bool addr_here(const char *addr)
{
	char text[INET6_ADDRSTRLEN + 8], *slash;
	struct ifaddrs *ifa, *i;
	struct in6_addr a6;
	struct in_addr a4;
	bool v6, here = false;

	snprintf(text, sizeof(text), "%s", addr);
	slash = strchr(text, '/');
	if (slash)
		*slash = '\0';
	v6 = strchr(text, ':');
	if (!inet_pton(v6 ? AF_INET6 : AF_INET, text, v6 ? (void *)&a6 :
		       (void *)&a4) || getifaddrs(&ifa))
		return false;
	for (i = ifa; i && !here; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != (v6 ? AF_INET6 : AF_INET))
			continue;
		here = v6 ? !memcmp(&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr,
				    &a6, sizeof(a6)) :
			    ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr ==
			    a4.s_addr;
	}
	freeifaddrs(ifa);
	return here;
}

static bool finished(const char *phase)
{
	return !phase || !strcmp(phase, "done") ||
	       !strcmp(phase, "rolled-back") || !strcmp(phase, "failed");
}

/* Where new connections go, if the service's listeners are steered. */
static void print_steering(struct out *out, const char *service)
{
	struct baton_steer_opts so = { .service = service,
				       .flags = BATON_STEER_F_EXISTING };
	__u32 active, canary, share, gen;
	struct baton_steer *st;
	char value[64], key[8];

	if (baton_steer_open(&st, &so))
		return;		/* not steered: nothing to say */
	if (!baton_steer_get(st, &active, &canary, &share)) {
		out_obj_begin(out, "steering", "steering:");
		out_u64(out, "active", "active", active);
		out_u64(out, "canary", share ? "canary" : NULL, canary);
		snprintf(value, sizeof(value), "%.2f%%",
			 share / (BATON_STEER_SCALE / 100.0));
		out_str(out, "canary_share", share ? "canary share" : NULL,
			value);
		value[0] = '\0';
		for (gen = 0; gen < BATON_STEER_MAX_GEN; gen++) {
			if (baton_steer_has_listener(st, gen) != 1)
				continue;
			snprintf(key, sizeof(key), "%s%u", value[0] ? " " : "", gen);
			strncat(value, key, sizeof(value) - strlen(value) - 1);
		}
		out_str(out, "generations", "generations", value);
		out_obj_end(out);
	}
	baton_steer_close(st);
}

static void print_service(struct out *out, const struct ctl_opts *o,
			  const char *service)
{
	struct baton_instance_info info;
	struct journal j;
	char title[160], when[64];
	const char *started, *result;
	unsigned int i;
	bool gone;
	int err;

	err = baton_query(o->run_dir, service, 0, &info);
	if (err)
		snprintf(title, sizeof(title), "%s: not answering (%s)", service,
			 strerror(-err));
	else
		snprintf(title, sizeof(title), "%s: pid %d, %s", service,
			 info.pid, info.app);
	out_obj_begin(out, service, title);
	out_str(out, "service", NULL, service);
	out_u64(out, "serving", NULL, !err);
	if (!err) {
		out_u64(out, "pid", NULL, info.pid);
		out_str(out, "app", NULL, info.app);
		out_u64(out, "state_version", NULL, info.state_version);
	}
	print_steering(out, service);
	if (!journal_read(o->run_dir, service, &j)) {
		started = journal_get(&j, "started");
		if (started) {
			time_t t = atol(started);

			strftime(when, sizeof(when), "%F %T", localtime(&t));
		}
		out_obj_begin(out, "last_upgrade", "last upgrade:");
		if (started)
			out_str(out, "when", "when", when);
		for (i = 0; i < j.n; i++) {
			char label[64], *c;

			if (!strcmp(j.key[i], "started") || !strcmp(j.key[i], "updated") ||
			    (!j.val[i][0] && !out->json))
				continue;
			/* the text says "old pid" where JSON has "old_pid" */
			snprintf(label, sizeof(label), "%s", j.key[i]);
			for (c = label; *c; c++)
				if (*c == '_')
					*c = ' ';
			out_str(out, j.key[i], label, j.val[i]);
		}
		gone = !proc_is(journal_get(&j, "coordinator_pid"),
				journal_get(&j, "coordinator_start"));
		result = journal_get(&j, "result");
		if (gone && (!finished(journal_get(&j, "phase")) ||
			     (result && !strcmp(result, "rollback-running")) ||
			     (result && !strcmp(result, "in-progress") &&
			      journal_get(&j, "operation") &&
			      strcmp(journal_get(&j, "operation"), "upgrade"))))
			out_str(out, "interrupted", "interrupted",
				"its coordinator is gone; run 'batonctl recover' to settle it");
		else if (gone && result && !strcmp(result, "canary-running"))
			out_str(out, "interrupted", "interrupted",
				"its coordinator died in the canary's window: the canary may still take a share of new connections; run 'batonctl recover' to take it back and stop the canary");
		else if (gone && result && !strcmp(result, "verifying"))
			out_str(out, "interrupted", "interrupted",
				"its coordinator died during --verify: the new version serves, its verification unfinished");
		out_obj_end(out);
	}
	out_obj_end(out);
}

int cmd_status(const struct ctl_opts *o, int argc, char **argv)
{
	const char *run_dir = baton_run_dir(o->run_dir);
	struct out out;
	struct dirent *d;
	unsigned int n = 0;
	DIR *dir;

	if (argc > 2) {
		fprintf(stderr, "Usage: batonctl status [SERVICE] [-j|--json]\n");
		return 2;
	}
	if (argc == 2 && baton_service_name_check(argv[1])) {
		char why[160];

		service_name_bad(argv[1], why, sizeof(why));
		fprintf(stderr, "batonctl: %s\n", why);
		return 2;
	}
	out_begin(&out, stdout, o->json);
	out_obj_begin(&out, "services", NULL);
	if (argc == 2) {
		print_service(&out, o, argv[1]);
		n = 1;
	} else if ((dir = opendir(run_dir))) {
		while ((d = readdir(dir))) {
			size_t len = strlen(d->d_name);
			char name[80];

			if (len < 6 || len > 70 || strcmp(d->d_name + len - 5, ".sock"))
				continue;
			snprintf(name, sizeof(name), "%.*s", (int)len - 5, d->d_name);
			if (baton_service_name_check(name))
				continue;	/* not a service's socket */
			print_service(&out, o, name);
			n++;
		}
		closedir(dir);
	}
	out_obj_end(&out);
	if (!n && !o->json)
		printf("no service runs under %s\n", run_dir);
	out_end(&out);
	return 0;
}

/* file is whole, and the checkpoint of record's: of pid old, made since */
static bool file_written(const struct journal *j, const char *file,
			 const char *old)
{
	const char *started = journal_get(j, "started");
	const struct baton_checkpoint_info *in;
	struct baton_checkpoint *ck;
	bool ours;

	if (!file || !old || !started ||
	    baton_checkpoint_load(&ck, file, NULL, NULL))
		return false;
	in = baton_checkpoint_info(ck);
	ours = in->pid == atoi(old) &&
	       in->realtime_ns / 1000000000ULL + 1 >= strtoull(started, NULL, 10);
	baton_checkpoint_free(ck);
	return ours;
}

/*
 * A checkpoint or restore whose batonctl died: the instances settle it
 * themselves, as in an upgrade (a checkpoint's old instance serves on, or
 * exits once the file is whole; a restore's new instance serves, or exits
 * before it said ACTIVE, the file kept and its connections frozen).
 * Wait for that, then write down how it ended and what to do.
 */
static int recover_file_op(const char *service, const char *op,
			   struct journal *j, int timeout_ms, bool quiet)
{
	const char *old = journal_get(j, "old_pid"), *file = journal_get(j, "file");
	const char *old_start = journal_get(j, "old_start");
	const char *step = journal_get(j, "timeout_ms");
	bool serving = false, checkpoint = !strcmp(op, "checkpoint");
	struct baton_instance_info info;
	char next[200], tmp[JOURNAL_VAL_LEN + 32];
	__u64 deadline;

	/* as long as a step of its own could take, the rollback's included */
	if (step && 2 * atoi(step) > timeout_ms)
		timeout_ms = 2 * atoi(step);
	deadline = mono_ns() + timeout_ms * 1000000ULL;
	while (mono_ns() < deadline) {
		serving = !baton_query(j->run_dir, service,
				       RECOVER_QUERY_MS, &info);
		/* a checkpoint's old instance went on, or went */
		if (checkpoint && (!proc_is(old, old_start) ||
				   (serving && info.pid == atoi(old ?: "0"))))
			break;
		if (!checkpoint && serving)
			break;
		usleep(50000);
	}
	if (checkpoint && !old) {
		journal_set(j, "result", "refused");
		snprintf(next, sizeof(next), "nothing served %s when it began",
			 service);
	} else if (checkpoint && serving && info.pid == atoi(old)) {
		/* its file, if it came so far, is of connections served again */
		journal_set(j, "result", "rolled-back");
		snprintf(tmp, sizeof(tmp), "%s.%s.tmp", file ?: "",
			 journal_get(j, "coordinator_pid") ?: "");
		unlink(tmp);
		snprintf(next, sizeof(next), "the old instance (pid %d) serves on, with its connections%s",
			 info.pid, file_written(j, file, old) ?
			 "; the file written is stale: remove it" : "");
	} else if (checkpoint && !proc_is(old, old_start) &&
		   file_written(j, file, old)) {
		journal_set(j, "result", "done");
		snprintf(next, sizeof(next), "the old instance is gone and the file is whole: restore it");
	} else if (checkpoint) {
		journal_set(j, "result", "failed");
		snprintf(next, sizeof(next), "the old instance (pid %s) is %s, and no whole file: start %s afresh",
			 old, proc_is(old, old_start) ? "alive but not answering" : "gone",
			 service);
	} else if (serving) {
		journal_set(j, "result", "done");
		journal_set(j, "serving_pid", "%d", info.pid);
		snprintf(next, sizeof(next), "pid %d serves it", info.pid);
	} else {
		journal_set(j, "result", "failed");
		snprintf(next, sizeof(next), "nothing serves %s; the file is kept: restore it again while its freeze lasts ('batonctl dump' says how long)",
			 service);
	}
	journal_set(j, "reason", "recovered: batonctl (pid %s) died during the %s: %s",
		    journal_get(j, "coordinator_pid") ?: "?", op, next);
	journal_set(j, "updated", "%ld", (long)time(NULL));
	journal_write(j);
	if (!quiet)
		fprintf(stderr, "batonctl: settled an interrupted %s of %s (%s): %s; %s\n",
			op, service, file ?: "?", journal_get(j, "result"), next);
	return 1;
}

/*
 * A hold whose batonctl died: held if its note is in the run directory
 * (the freeze made and noted: restore finds it), else failed, nothing
 * held, to be run again.
 */
static int recover_hold(const char *service, struct journal *j, bool quiet)
{
	struct baton_checkpoint_opts co = {
		.run_dir = j->run_dir, .service = service,
	};
	__u32 id;
	bool held = !baton_checkpoint_held(&co, &id);

	journal_set(j, "result", "%s", held ? "held" : "failed");
	if (held)
		journal_set(j, "freeze_id", "%u", id);
	journal_set(j, "reason", "recovered: batonctl (pid %s) died during the hold: %s",
		    journal_get(j, "coordinator_pid") ?: "?", held ?
		    "the freeze was made and noted; restore will thaw it" :
		    "nothing is held; run the hold again");
	journal_set(j, "updated", "%ld", (long)time(NULL));
	journal_write(j);
	if (!quiet)
		fprintf(stderr, "batonctl: settled an interrupted hold of %s: %s\n",
			service, journal_get(j, "result"));
	return 1;
}

/* The record of an operation whose coordinator died, settled as result */
static void settle(struct journal *j, const char *result, const char *when,
		   const char *why)
{
	journal_set(j, "result", "%s", result);
	journal_set(j, "reason", "recovered: the coordinator (pid %s) died %s: %s",
		    journal_get(j, "coordinator_pid") ?: "?", when, why);
	journal_set(j, "updated", "%ld", (long)time(NULL));
	journal_write(j);
}

/*
 * A coordinator that died mid-upgrade: the instances settle it themselves
 * (before activation the new exits and the old resumes; after it the old
 * exits). Wait for that, then write down how it ended. j is the open
 * journal, holding the last record.
 */
int recover(const char *service, struct journal *j, int timeout_ms, bool quiet)
{
	const char *old, *new, *old_start, *new_start, *result, *back, *op;
	const char *pre = "";
	char key[32], said[400], moved[400] = "";
	int waited;

	/* its coordinator runs on: nothing to settle */
	if (proc_is(journal_get(j, "coordinator_pid"),
		    journal_get(j, "coordinator_start")))
		return 0;
	op = journal_get(j, "operation") ?: "upgrade";
	result = journal_get(j, "result");
	if (!strcmp(op, "hold") || !strcmp(op, "checkpoint") ||
	    !strcmp(op, "restore")) {
		if (!result || strcmp(result, "in-progress"))
			return 0;
		return !strcmp(op, "hold") ? recover_hold(service, j, quiet) :
		       recover_file_op(service, op, j, timeout_ms, quiet);
	}
	/* killed in a canary's window: nothing else had begun */
	if (result && !strcmp(result, "canary-running")) {
		canary_recover(service, j, false, said, sizeof(said));
		settle(j, "aborted", "in the canary's window", said);
		if (!quiet)
			fprintf(stderr, "batonctl: settled an interrupted canary of %s: %s\n",
				service, said);
		return 1;
	}
	/*
	 * Killed in --verify's window, the upgrade done: the verification
	 * never ended, and the new version serves if it still runs
	 */
	if (result && !strcmp(result, "verifying")) {
		bool runs = proc_is(journal_get(j, "new_pid"),
				    journal_get(j, "new_start"));

		journal_set(j, "verify_result", "interrupted");
		settle(j, runs ? "done" : "failed", "during --verify", runs ?
		       "the new version runs, its verification unfinished: check it by hand" :
		       "the new version is gone: start the service again");
		if (!quiet)
			fprintf(stderr, "batonctl: settled an upgrade of %s interrupted during --verify: %s (new pid %s %s)\n",
				service, runs ? "done" : "failed",
				journal_get(j, "new_pid") ?: "?",
				runs ? "running" : "gone");
		return 1;
	}
	/* killed on the way back from a failed --verify: that upgrade */
	back = journal_get(j, "rollback");
	if (back && !strcmp(back, "in-progress"))
		pre = "rollback_";
#define FIELD(name) (snprintf(key, sizeof(key), "%s" name, pre), journal_get(j, key))
	if (!j->seq || (!pre[0] && finished(journal_get(j, "phase"))))
		return 0;
	old = FIELD("old_pid");
	new = FIELD("new_pid");
	old_start = FIELD("old_start");
	new_start = FIELD("new_start");
#undef FIELD
	if (pre[0] && !new) {
		/* the way back never spawned: the new version serves on */
		journal_set(j, "rollback", "not-begun");
		journal_set(j, "result", "failed");
		journal_set(j, "reason", "recovered: the coordinator (pid %s) died before the way back began: the new version serves, though it failed its verification",
			    journal_get(j, "coordinator_pid") ?: "?");
		journal_write(j);
		if (!quiet)
			fprintf(stderr, "batonctl: settled an interrupted rollback of %s: it had not begun; the new version (pid %s) serves, though it failed its verification: upgrade back by hand (old command: %s%s%s%s)\n",
				service, journal_get(j, "new_pid") ?: "?",
				journal_get(j, "old_command") ?: "?",
				journal_get(j, "old_command_cut") ?
				" ... cut: the journal kept its first " : "",
				journal_get(j, "old_command_cut") ?: "",
				journal_get(j, "old_command_cut") ? " bytes" : "");
		return 1;
	}
	/*
	 * Past the blackout's deadline the coordinator stops the new
	 * instance to look at it: killed before it let it go on, it left it
	 * stopped, the service's lock perhaps held, and nothing serving. It
	 * goes on now, and what it does settles the upgrade.
	 */
	if (proc_is(new, new_start) && new_stopped(atoi(new))) {
		kill(atoi(new), SIGCONT);
		if (!quiet)
			fprintf(stderr, "batonctl: the new instance of %s (pid %s) was left stopped by the coordinator that died: it goes on\n",
				service, new);
	}
	for (waited = 0; waited < timeout_ms && proc_is(old, old_start) &&
	     proc_is(new, new_start); waited += 10)
		usleep(10000);
	if (proc_is(old, old_start) && !proc_is(new, new_start))
		result = "rolled-back";
	else if (!proc_is(old, old_start) && proc_is(new, new_start))
		result = "done";
	else
		result = "failed";	/* both still there, or both gone */
	/*
	 * Into another namespace, the address follows the new instance once
	 * it is active: killed before the move was through, the coordinator
	 * left it here, where no socket answers for the connections
	 */
	if (!pre[0] && !strcmp(result, "done") && journal_get(j, "netns") &&
	    !journal_get(j, "netns_moved") &&
	    addr_here(journal_get(j, "netns_addr") ?: "")) {
		result = "failed";
		/* short: the journal keeps 255 bytes a value */
		snprintf(moved, sizeof(moved), "; %s is still here, not on %s in %s: move it by hand",
			 journal_get(j, "netns_addr"),
			 journal_get(j, "netns_dev") ?: "?",
			 journal_get(j, "netns"));
		if (!quiet)
			fprintf(stderr, "batonctl: the new instance of %s (pid %s) runs in %s, but %s is still here, where nothing answers for it; move it:\n"
				"  ip addr del %s dev DEVICE-HERE\n"
				"  nsenter --net=%s ip addr add %s dev %s\n",
				service, new, journal_get(j, "netns"),
				journal_get(j, "netns_addr"),
				journal_get(j, "netns_addr"),
				journal_get(j, "netns"),
				journal_get(j, "netns_addr"),
				journal_get(j, "netns_dev") ?: "?");
	}
	snprintf(key, sizeof(key), "%sphase", pre);
	journal_set(j, "reason", "recovered: the coordinator (pid %s) died in %sphase %s%s",
		    journal_get(j, "coordinator_pid") ?: "?",
		    pre[0] ? "the way back's " : "",
		    journal_get(j, key) ?: "?", moved);
	journal_set(j, key, "%s", result);
	if (pre[0]) {
		/* the way back done: the old command serves */
		journal_set(j, "rollback", "%s", !strcmp(result, "done") ?
			    "done" : "failed");
		result = !strcmp(result, "done") ? "reverted" : "failed";
	}
	journal_set(j, "result", "%s", result);
	/* a canary that had passed: the upgrade's outcome decides its share */
	if (journal_get(j, "canary_pid") &&
	    !strcmp(journal_get(j, "canary_result") ?: "", "passed")) {
		canary_recover(service, j, !strcmp(result, "done"), said,
			       sizeof(said));
		journal_set(j, "canary_recovered", "%s", said);
	}
	journal_write(j);
	if (!quiet)
		fprintf(stderr, "batonctl: settled an interrupted %s of %s: %s (old pid %s %s, new pid %s %s)%s\n",
			pre[0] ? "rollback after a failed --verify" : "upgrade",
			service, result, old ?: "?",
			proc_is(old, old_start) ? "running" : "gone",
			new ?: "?", proc_is(new, new_start) ? "running" : "gone",
			moved);
	return 1;
}

/* Who holds the upgrade lock, from /proc/locks: a pid, or 0. */
static pid_t lock_holder(const char *run_dir, const char *service)
{
	char dir[512], path[600], line[256];
	unsigned long long ino;
	unsigned int maj, min;
	struct stat st;
	pid_t pid = 0, p;
	FILE *f;

	if (journal_dir(dir, sizeof(dir), run_dir, service))
		return 0;
	snprintf(path, sizeof(path), "%s/upgrade.lock", dir);
	if (stat(path, &st) || !(f = fopen("/proc/locks", "re")))
		return 0;
	while (!pid && fgets(line, sizeof(line), f))
		if (sscanf(line, "%*d: FLOCK %*s %*s %d %x:%x:%llu", &p, &maj,
			   &min, &ino) == 4 && ino == st.st_ino &&
		    makedev(maj, min) == st.st_dev)
			pid = p;
	fclose(f);
	return pid;
}

/* The lock is taken: say by whom, and what to do, into why. */
void journal_busy(const char *run_dir, const char *service, char *why,
		  size_t len)
{
	char note_pid[16], note_start[32], note_op[16];
	const char *pid, *op = NULL;
	pid_t holder = lock_holder(run_dir, service);
	struct journal j;

	/*
	 * its own note first: its journal record may not be written yet.
	 * Only if it holds the lock: a note may be an earlier holder's
	 */
	if (!journal_lock_note(run_dir, service, note_pid, note_start,
			       note_op) && proc_is(note_pid, note_start) &&
	    holder == atoi(note_pid)) {
		pid = note_pid;
		op = note_op;
	} else {
		journal_read(run_dir, service, &j);
		pid = journal_get(&j, "coordinator_pid");
		if (proc_is(pid, journal_get(&j, "coordinator_start")))
			op = journal_get(&j, "operation") ?: "upgrade";
	}
	if (op)
		snprintf(why, len, "batonctl (pid %s) is running %s's %s; wait for it, or see 'batonctl status %s'",
			 pid, service, op, service);
	else
		snprintf(why, len, "%s's upgrade lock is held by pid %d, which is not the coordinator of record (pid %s, gone): if it is left over from an interrupted upgrade, stop it and try again",
			 service, holder, pid ?: "?");
}

int cmd_recover(const struct ctl_opts *o, int argc, char **argv)
{
	bool settled, failed;
	struct journal j;
	int err;

	if (argc != 2) {
		fprintf(stderr, "Usage: batonctl recover SERVICE\n");
		return 2;
	}
	err = journal_open(o->run_dir, argv[1], "recover", &j);
	if (err == -EINVAL) {
		char why[160];

		service_name_bad(argv[1], why, sizeof(why));
		fprintf(stderr, "batonctl: %s\n", why);
		return 2;
	}
	if (err == -EBUSY) {
		char why[400];

		journal_busy(o->run_dir, argv[1], why, sizeof(why));
		fprintf(stderr, "batonctl: %s\n", why);
		return 1;
	}
	if (err) {
		fprintf(stderr, "batonctl: cannot open %s's journal: %s\n",
			argv[1], strerror(-err));
		return 1;
	}
	settled = recover(argv[1], &j, BATON_UPGRADE_TIMEOUT_MS, false);
	if (!settled)
		printf("%s: nothing to recover\n", argv[1]);
	/* settled as failed: the reason says what to do by hand */
	failed = settled && !strcmp(journal_get(&j, "result") ?: "", "failed");
	err = j.err;
	journal_close(&j);
	if (err) {
		fprintf(stderr, "batonctl: cannot write %s's journal: %s\n",
			argv[1], strerror(-err));
		return 1;
	}
	return failed;
}
