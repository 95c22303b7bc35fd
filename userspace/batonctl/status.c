// SPDX-License-Identifier: GPL-2.0-only
/*
 * batonctl status: every service's instance and its last upgrade.
 * batonctl recover: settle an upgrade whose coordinator was killed.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "batonctl.h"

/* Running, not a zombie: an exited instance may wait long to be reaped. */
static bool alive(const char *pid)
{
	char path[64], stat[256], *p;
	bool running = false;
	FILE *f;

	if (!pid || atoi(pid) <= 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/stat", atoi(pid));
	f = fopen(path, "re");
	if (!f)
		return false;
	if (fgets(stat, sizeof(stat), f) && (p = strrchr(stat, ')')))
		running = p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
	fclose(f);
	return running;
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
	const char *started;
	unsigned int i;
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
		for (i = 0; i < j.n; i++)
			if (strcmp(j.key[i], "started") && strcmp(j.key[i], "updated") &&
			    (j.val[i][0] || out->json))
				out_str(out, j.key[i], j.key[i], j.val[i]);
		if (!finished(journal_get(&j, "phase")) &&
		    !alive(journal_get(&j, "coordinator_pid")))
			out_str(out, "interrupted", "interrupted",
				"its coordinator is gone; run 'batonctl recover' to settle it");
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

/*
 * A coordinator that died mid-upgrade: the instances settle it themselves
 * (before activation the new exits and the old resumes; after it the old
 * exits). Wait for that, then write down how it ended.
 */
int recover(const struct ctl_opts *o, const char *service, int timeout_ms,
	    bool quiet)
{
	struct journal j;
	const char *old, *new, *result;
	int waited;

	if (journal_read(o->run_dir, service, &j) ||
	    finished(journal_get(&j, "phase")) ||
	    alive(journal_get(&j, "coordinator_pid")))
		return 0;
	old = journal_get(&j, "old_pid");
	new = journal_get(&j, "new_pid");
	for (waited = 0; waited < timeout_ms && alive(old) && alive(new);
	     waited += 10)
		usleep(10000);
	if (alive(old) && !alive(new))
		result = "rolled-back";
	else if (!alive(old) && alive(new))
		result = "done";
	else
		result = "failed";	/* both still there, or both gone */
	journal_set(&j, "phase", "%s", result);
	journal_set(&j, "result", "%s", result);
	journal_set(&j, "reason", "recovered: the coordinator (pid %s) died in phase %s",
		    journal_get(&j, "coordinator_pid") ?: "?",
		    journal_get(&j, "phase") ?: "?");
	journal_write(o->run_dir, service, &j);
	if (!quiet)
		fprintf(stderr, "batonctl: settled an interrupted upgrade of %s: %s (old pid %s %s, new pid %s %s)\n",
			service, result, old ?: "?", alive(old) ? "serving" : "gone",
			new ?: "?", alive(new) ? "serving" : "gone");
	return 1;
}

int cmd_recover(const struct ctl_opts *o, int argc, char **argv)
{
	int lock;

	if (argc != 2) {
		fprintf(stderr, "Usage: batonctl recover SERVICE\n");
		return 2;
	}
	lock = journal_lock(o->run_dir, argv[1]);
	if (lock < 0) {
		fprintf(stderr, "batonctl: %s\n", lock == -EBUSY ?
			"an upgrade is running; nothing to recover" :
			strerror(-lock));
		return 1;
	}
	if (!recover(o, argv[1], BATON_UPGRADE_TIMEOUT_MS, false))
		printf("%s: nothing to recover\n", argv[1]);
	close(lock);
	return 0;
}
