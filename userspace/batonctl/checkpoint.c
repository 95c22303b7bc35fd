// SPDX-License-Identifier: GPL-2.0-only
/*
 * batonctl checkpoint, restore and dump: a service's connections and state
 * in a file while no instance runs (libbaton's baton_checkpoint_*()).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>
#include <linux/baton.h>

#include "batonctl.h"

static void checkpoint_usage(FILE *f)
{
	fprintf(f,
"Usage: batonctl checkpoint SERVICE -o FILE [--freeze DURATION]\n"
"                           [--timeout-ms N] [-j|--json]\n"
"\n"
"Writes the running instance's established connections, frozen by baton.ko,\n"
"and its state into FILE, then lets the instance exit: it closes its\n"
"sockets in repair mode, and its clients see nothing, neither FIN nor RST.\n"
"Their segments wait in baton.ko until 'batonctl restore' thaws them into\n"
"the next instance. Its listeners close: connection attempts in between\n"
"are refused, as for a stopped service; restore listens again at the same\n"
"addresses. If anything fails before FILE is whole on disk, the instance\n"
"serves on as before and batonctl exits with 1. Needs CAP_NET_ADMIN.\n"
"\n"
"  -o, --output FILE   where the checkpoint goes (written beside it, then\n"
"                      renamed into place)\n"
"  --freeze DURATION   how long baton.ko holds the connections: restore\n"
"                      within it. Past it the module lets their segments\n"
"                      through to no socket, and the peers are reset.\n"
"                      10s, 500ms, 1m; at most and by default %d ms\n"
"  --timeout-ms N      how long each step may take (%d)\n"
"  -j, --json          print the report as one JSON object\n",
		BATON_DEADLINE_MAX_MS, BATON_UPGRADE_TIMEOUT_MS);
}

static void restore_usage(FILE *f)
{
	fprintf(f,
"Usage: batonctl restore SERVICE -i FILE [--timeout-ms N] [--log LOGFILE]\n"
"                        [--fresh-on-failure] [-j|--json] -- COMMAND [ARG...]\n"
"\n"
"Starts COMMAND as SERVICE from the checkpoint FILE: it listens where the\n"
"checkpointed instance did, loads its state, restores its connections and\n"
"thaws them, and every client goes on where it was, with what it sent in\n"
"between. FILE is checked whole first: a corrupt, truncated or foreign\n"
"one, or one whose freeze has expired, is refused before anything is\n"
"made. FILE is never changed or removed: if the restore fails, it is there\n"
"for another try, which must come before its freeze expires ('batonctl\n"
"dump FILE' says when). Needs CAP_NET_ADMIN and SERVICE stopped.\n"
"\n"
"  -i, --input FILE    the checkpoint\n"
"  --timeout-ms N      how long each step may take (%d)\n"
"  --log LOGFILE       COMMAND's standard output and error (/dev/null)\n"
"  --fresh-on-failure  if the restore fails, give up on FILE's connections\n"
"                      (a hold is released: their peers are reset) and\n"
"                      start COMMAND afresh, without its state: the\n"
"                      service serves again. FILE is kept for inspection.\n"
"                      The exit status is still 1\n"
"  -j, --json          print the report as one JSON object\n",
		BATON_UPGRADE_TIMEOUT_MS);
}

static void dump_usage(FILE *f)
{
	fprintf(f,
"Usage: batonctl dump FILE [-j|--json]\n"
"\n"
"Prints a checkpoint: its format version, the service and its state's\n"
"versions, what the kernel's encodings depend on (release, boot, network\n"
"namespace, baton.ko's family), the freeze and when it expires, and each\n"
"listener and connection with its addresses and queued bytes. FILE is\n"
"checked whole, as restore checks it.\n"
"\n"
"  -j, --json          the same fields as one JSON object\n");
}

/* --freeze's value in ms, or -EINVAL, said */
static int freeze_arg(const char *s)
{
	int ms = parse_duration_ms(s);

	if (ms >= 0 && ms <= BATON_DEADLINE_MAX_MS)
		return ms;
	fprintf(stderr, "batonctl: --freeze takes a duration up to %d ms: 10s, 500ms, 1m\n",
		BATON_DEADLINE_MAX_MS);
	return -EINVAL;
}

/* --timeout-ms's value, or -EINVAL, said */
int timeout_arg(const char *opt, const char *s)
{
	char *end;
	long ms;

	errno = 0;
	ms = strtol(s, &end, 10);
	/* "30s" is no 30 ms */
	if (!errno && end != s && !*end && ms > 0 && ms <= BATON_TIMEOUT_MS_MAX)
		return ms;
	fprintf(stderr, "batonctl: --%s takes a number of milliseconds from 1 to %d\n",
		opt, BATON_TIMEOUT_MS_MAX);
	return -EINVAL;
}


/* path made absolute, for a recover run elsewhere; the file need not exist */
static const char *abs_path(const char *path, char *buf, size_t len)
{
	char cwd[PATH_MAX];

	if (path[0] == '/' || !getcwd(cwd, sizeof(cwd)) ||
	    (size_t)snprintf(buf, len, "%s/%s", cwd, path) >= len)
		return path;
	return buf;
}

/*
 * checkpoint and restore keep the service's journal as an upgrade does:
 * its lock held throughout (one operation on a service at a time), a
 * record before anything changes and one with the outcome, so that
 * status shows them and recover settles one whose batonctl died. 0, or 1
 * (said why) if the journal is not to be had.
 */
int file_op_begin(const struct ctl_opts *o, const char *op,
		  const struct baton_checkpoint_opts *co, struct journal *j,
		  bool quiet)
{
	if (journal_begin(o->run_dir, co->service, op,
			  co->timeout_ms ?: BATON_UPGRADE_TIMEOUT_MS, quiet, j,
			  NULL, 0))
		return 1;
	file_op_start(o, co, j);
	return 0;
}

/* The first record of a file operation, whose journal_begin() is done */
void file_op_start(const struct ctl_opts *o,
		   const struct baton_checkpoint_opts *co, struct journal *j)
{
	struct baton_instance_info info;
	char path[PATH_MAX];

	journal_set(j, "file", "%s", abs_path(co->path, path, sizeof(path)));
	journal_set(j, "timeout_ms", "%d", co->timeout_ms ?: BATON_UPGRADE_TIMEOUT_MS);
	if (co->argv)
		journal_set(j, "command", "%s", co->argv[0]);
	else if (!baton_query(o->run_dir, co->service, BATON_QUERY_TIMEOUT_MS,
			      &info)) {
		journal_set(j, "old_pid", "%d", info.pid);
		journal_set(j, "old_start", "%llu", proc_start_time(info.pid));
	}
	journal_set(j, "result", "in-progress");
	journal_write(j);
}

/* The outcome, into the journal, which stays open */
void file_op_record(struct journal *j, const char *result,
		    const struct baton_upgrade_report *r, pid_t serving)
{
	journal_set(j, "result", "%s", result);
	journal_set(j, "reason", "%s", r->reason);
	journal_set(j, "listeners", "%u", r->listeners);
	journal_set(j, "conns", "%u", r->checkpoints ?: r->conns);
	if (r->new_pid)
		journal_set(j, "new_pid", "%d", r->new_pid);
	journal_set(j, "serving_pid", "%d", serving);
	journal_set(j, "updated", "%ld", (long)time(NULL));
	journal_write(j);
}

const char *file_op_result(const struct baton_upgrade_report *r, int err)
{
	if (!err && r->phase == BATON_PHASE_DONE)
		return "done";
	if (r->phase == BATON_PHASE_ROLLED_BACK)
		return "rolled-back";
	return r->phase <= BATON_PHASE_ATTACHED ? "refused" : "failed";
}

/* A report's title and the fields both have: its result */
static const char *report_begin(struct out *out, bool json, const char *what,
				const struct baton_checkpoint_opts *co,
				const struct baton_upgrade_report *r, int err)
{
	const char *result = file_op_result(r, err);

	out_begin(out, stdout, json);
	if (!json)
		printf("%s of %s: %s\n", what, co->service, result);
	out->depth = json ? 0 : 1;
	out_str(out, "service", "service", co->service);
	out_str(out, "file", "file", co->path);
	out_str(out, "result", "result", result);
	if (r->reason[0])
		out_str(out, "error", "error", r->reason);
	out_u64(out, "listeners", "listeners", r->listeners);
	out_u64(out, "checkpoints", "connections", r->checkpoints);
	return result;
}

int cmd_checkpoint(const struct ctl_opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "freeze", required_argument, NULL, 'f' },
		{ "timeout-ms", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct baton_checkpoint_opts co = { .run_dir = o->run_dir };
	struct baton_upgrade_report r = {};
	struct ctl_log logged = {};
	bool json = o->json, usage;
	const char *result;
	struct journal j;
	struct out out;
	int c, ms, err;

	optind = 0;
	while ((c = getopt_long(argc, argv, "o:jh", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			co.path = optarg;
			break;
		case 'f':
			ms = freeze_arg(optarg);
			if (ms < 0)
				return 2;
			co.freeze_ms = ms;
			break;
		case 't':
			co.timeout_ms = timeout_arg("timeout-ms", optarg);
			if (co.timeout_ms < 0)
				return 2;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			checkpoint_usage(stdout);
			return 0;
		default:
			checkpoint_usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 1 || !co.path) {
		fprintf(stderr, "batonctl: checkpoint needs a SERVICE and -o FILE\n"
			"  e.g.: batonctl checkpoint kvd -o /var/lib/kvd.ckpt\n");
		return 2;
	}
	co.service = argv[optind];
	co.freeze_ms = co.freeze_ms ?: BATON_DEADLINE_MAX_MS;
	co.log = ctl_log;
	co.log_ctx = &logged;
	if (file_op_begin(o, "checkpoint", &co, &j, json))
		return 1;
	err = baton_checkpoint_save(&co, &r);
	usage = err == -EINVAL && !r.reason[0];
	if (err && !r.reason[0])
		snprintf(r.reason, sizeof(r.reason), "%s", strerror(-err));
	result = file_op_result(&r, err);
	file_op_record(&j, result, &r, r.phase == BATON_PHASE_ROLLED_BACK ?
		       r.old_pid : 0);
	journal_close(&j);
	if (usage) {
		fprintf(stderr, "batonctl: checkpoint: %s\n", strerror(-err));
		return 2;
	}
	report_begin(&out, json, "checkpoint", &co, &r, err);
	if (j.err)
		out_str(&out, "journal_error", "journal", strerror(-j.err));
	out_u64(&out, "old_pid", "old pid", r.old_pid);
	out_u64(&out, "freeze_ms", "frozen for (ms)", co.freeze_ms);
	out_ms(&out, "checkpoint_ms", "checkpoint", ms_between(r.deactivate_ns, r.active_ns),
	       "stop, freeze, export, file written");
	out_ms(&out, "old_exit_ms", "old exit", ms_between(r.active_ns, r.t_ns[BATON_PHASE_DONE]),
	       NULL);
	out_ms(&out, "total_ms", "total", ms_between(r.t_ns[BATON_PHASE_ATTACHED],
						     r.t_ns[BATON_PHASE_DONE]), NULL);
	out_end(&out);
	if (err && !json)
		fprintf(stderr, "batonctl: %s: no checkpoint was written%s\n",
			co.service, r.phase == BATON_PHASE_ROLLED_BACK ?
			", and the instance serves on as before" : "");
	else if (!json)
		fprintf(stderr, "batonctl: restore it within %.0f s: batonctl restore %s -i %s -- COMMAND\n",
			co.freeze_ms / 1e3, co.service, co.path);
	return err ? 1 : 0;
}

static void hold_usage(FILE *f)
{
	fprintf(f,
"Usage: batonctl hold SERVICE -i FILE [--freeze DURATION] [-j|--json]\n"
"\n"
"In the boot after 'batonctl kexec', before the network comes up: baton.ko\n"
"freezes the connections of the checkpoint FILE by their addresses and\n"
"ports, so that what their peers send once the network is up waits in the\n"
"kernel, unanswered, until 'batonctl restore' brings the connections back\n"
"and thaws it. Without it the new kernel, which has no socket for them,\n"
"would reset the peers. Only a checkpoint made for a restart, in an\n"
"earlier boot, is held; nothing else is made or changed. Needs\n"
"CAP_NET_ADMIN and baton.ko.\n"
"\n"
"  -i, --input FILE    the checkpoint\n"
"  --freeze DURATION   how long baton.ko holds them: restore within it.\n"
"                      10s, 500ms, 1m; at most and by default %d ms\n"
"  -j, --json          print the report as one JSON object\n",
		BATON_DEADLINE_MAX_MS);
}

int cmd_hold(const struct ctl_opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "input", required_argument, NULL, 'i' },
		{ "freeze", required_argument, NULL, 'f' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct baton_checkpoint_opts co = { .run_dir = o->run_dir };
	const struct baton_checkpoint_info *in;
	struct baton_checkpoint *ck = NULL;
	struct ctl_log logged = {};
	bool json = o->json;
	struct journal j;
	__u32 id = 0;
	struct out out;
	int c, ms, err;

	optind = 0;
	while ((c = getopt_long(argc, argv, "i:jh", longopts, NULL)) != -1) {
		switch (c) {
		case 'i':
			co.path = optarg;
			break;
		case 'f':
			ms = freeze_arg(optarg);
			if (ms < 0)
				return 2;
			co.freeze_ms = ms;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			hold_usage(stdout);
			return 0;
		default:
			hold_usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 1 || !co.path) {
		fprintf(stderr, "batonctl: hold needs a SERVICE and -i FILE\n"
			"  e.g.: batonctl hold kvd -i /var/lib/baton/kexec/kvd.ckpt\n");
		return 2;
	}
	co.service = argv[optind];
	co.freeze_ms = co.freeze_ms ?: BATON_DEADLINE_MAX_MS;
	co.log = ctl_log;
	co.log_ctx = &logged;
	if (file_op_begin(o, "hold", &co, &j, json))
		return 1;
	err = baton_checkpoint_hold(&co, &id);
	journal_set(&j, "result", "%s", err ? "failed" : "held");
	journal_set(&j, "reason", "%s", !err ? "" : logged.first_err[0] ?
		    logged.first_err : strerror(-err));
	journal_set(&j, "freeze_id", "%u", id);
	journal_set(&j, "updated", "%ld", (long)time(NULL));
	journal_write(&j);
	journal_close(&j);
	out_begin(&out, stdout, json);
	if (!json)
		printf("hold of %s: %s\n", co.service, err ? "failed" : "held");
	out.depth = json ? 0 : 1;
	out_str(&out, "service", "service", co.service);
	out_str(&out, "file", "file", co.path);
	out_str(&out, "result", "result", err ? "failed" : "held");
	if (err)
		out_str(&out, "error", "error", logged.first_err[0] ?
			logged.first_err : strerror(-err));
	if (!err && !baton_checkpoint_load(&ck, co.path, NULL, NULL)) {
		in = baton_checkpoint_info(ck);
		out_u64(&out, "conns", "connections", in->conns);
	}
	out_u64(&out, "freeze_id", "freeze", id);
	out_u64(&out, "freeze_ms", "held for (ms)", err ? 0 : co.freeze_ms);
	out_end(&out);
	baton_checkpoint_free(ck);
	if (!err && !json)
		fprintf(stderr, "batonctl: bring the network up, then within %.0f s: batonctl restore %s -i %s -- COMMAND\n",
			co.freeze_ms / 1e3, co.service, co.path);
	return err ? 1 : 0;
}

/* Whether a checkpoint was made in this boot: its clock is ours */
static bool this_boot(const struct baton_checkpoint_info *in)
{
	char id[40] = "";
	ssize_t n = -1;
	int fd;

	fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, id, sizeof(id) - 1);
		close(fd);
	}
	id[n > 0 ? n : 0] = '\0';
	id[strcspn(id, "\n")] = '\0';
	return !strcmp(id, in->boot_id);
}

/*
 * --fresh-on-failure: COMMAND started as a fresh instance, detached as
 * the coordinator starts one; its pid once it answers on its control
 * socket, or -errno
 */
static pid_t start_fresh(const struct ctl_opts *o,
			 const struct baton_checkpoint_opts *co)
{
	struct baton_instance_info info;
	int ms = co->timeout_ms ?: BATON_UPGRADE_TIMEOUT_MS, fd, status;
	pid_t pid;

	pid = fork();
	if (pid < 0)
		return -errno;
	if (!pid) {
		setsid();
		fd = open("/dev/null", O_RDWR);
		if (fd >= 0)
			dup2(fd, STDIN_FILENO);
		if (co->log_path)
			fd = open(co->log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
		}
		/* where we look for it (--run-dir), and nothing else of ours */
		if (setenv("BATON_RUN_DIR", baton_run_dir(o->run_dir), 1))
			_exit(127);
		close_range(STDERR_FILENO + 1, ~0U, 0);
		execvp(co->argv[0], co->argv);
		_exit(127);
	}
	for (; ms > 0; ms -= 50) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return -ECHILD;
		if (!baton_query(o->run_dir, co->service, 0, &info) &&
		    info.pid == pid)
			return pid;
		usleep(50000);
	}
	return -ETIMEDOUT;
}

int cmd_restore(const struct ctl_opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "input", required_argument, NULL, 'i' },
		{ "timeout-ms", required_argument, NULL, 't' },
		{ "log", required_argument, NULL, 'l' },
		{ "fresh-on-failure", no_argument, NULL, 'F' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct baton_checkpoint_opts co = { .run_dir = o->run_dir };
	struct baton_checkpoint *ck;
	struct baton_upgrade_report r = {};
	struct ctl_log logged = {};
	bool json = o->json, fresh = false;
	pid_t fresh_pid = 0;
	const char *result;
	struct journal j;
	struct out out;
	int c, err;

	optind = 0;
	while ((c = getopt_long(argc, argv, "i:jh", longopts, NULL)) != -1) {
		switch (c) {
		case 'i':
			co.path = optarg;
			break;
		case 't':
			co.timeout_ms = timeout_arg("timeout-ms", optarg);
			if (co.timeout_ms < 0)
				return 2;
			break;
		case 'l':
			co.log_path = optarg;
			break;
		case 'F':
			fresh = true;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			restore_usage(stdout);
			return 0;
		default:
			restore_usage(stderr);
			return 2;
		}
	}
	if (argc - optind < 2 || !co.path) {
		fprintf(stderr, "batonctl: restore needs a SERVICE, -i FILE and, after --, the COMMAND that serves it\n"
			"  e.g.: batonctl restore kvd -i /var/lib/kvd.ckpt -- kvd-v2 --service kvd\n");
		return 2;
	}
	co.service = argv[optind];
	co.argv = &argv[optind + 1];
	co.log = ctl_log;
	co.log_ctx = &logged;
	if (file_op_begin(o, "restore", &co, &j, json))
		return 1;
	err = baton_checkpoint_restore(&co, &r);
	/* nothing serves the checkpoint: the service starts over */
	if (err && fresh && r.phase != BATON_PHASE_ACTIVE) {
		baton_checkpoint_release(&co);
		fresh_pid = start_fresh(o, &co);
	}
	result = file_op_result(&r, err);
	if (fresh_pid > 0)
		journal_set(&j, "fresh_pid", "%d", fresh_pid);
	file_op_record(&j, result, &r, !err ? r.new_pid :
		       fresh_pid > 0 ? fresh_pid : 0);
	journal_close(&j);
	report_begin(&out, json, "restore", &co, &r, err);
	if (j.err)
		out_str(&out, "journal_error", "journal", strerror(-j.err));
	out_u64(&out, "new_pid", "new pid", r.new_pid);
	out_u64(&out, "conns", "restored", r.conns);
	out_u64(&out, "records", "records", r.records);
	out_ms(&out, "restore_ms", "restore", ms_between(r.t_ns[BATON_PHASE_ATTACHED],
							 r.active_ns),
	       "start, state, connections, thaw");
	out_ms(&out, "phase2_ms", "connections part", ms_between(r.deactivate_ns, r.active_ns),
	       "restored and thawed");
	if (fresh_pid > 0)
		out_u64(&out, "fresh_pid", "started afresh", fresh_pid);
	else if (fresh_pid < 0)
		out_str(&out, "fresh_error", "fresh start failed",
			fresh_pid == -ECHILD ? "COMMAND exited" :
			fresh_pid == -ETIMEDOUT ? "COMMAND did not answer on its control socket in time" :
			strerror(-fresh_pid));
	out_end(&out);
	if (fresh_pid > 0 && !json)
		fprintf(stderr, "batonctl: %s was started afresh (pid %d, answering), without the checkpoint's state; its connections are lost\n",
			co.service, fresh_pid);
	if (err && !baton_checkpoint_load(&ck, co.path, NULL, NULL)) {
		const struct baton_checkpoint_info *in = baton_checkpoint_info(ck);
		__u64 now = mono_ns();

		if (in->conns && now < in->deadline_ns && this_boot(in))
			fprintf(stderr, "batonctl: %s is kept; its connections stay frozen for %.1f s more: restore it again before then\n",
				co.path, (in->deadline_ns - now) / 1e9);
		baton_checkpoint_free(ck);
	} else if (err) {
		fprintf(stderr, "batonctl: %s is kept as it is, for inspection ('batonctl dump %s')\n",
			co.path, co.path);
	}
	return err ? 1 : 0;
}

static const char *format_name(__u32 format)
{
	return format == BATON_CKPT_MODULE ? "baton.ko" :
	       format == BATON_CKPT_TCP ? "TCP_REPAIR" : "none";
}

static void dump_socks(struct out *out, const struct baton_checkpoint *ck)
{
	const struct baton_checkpoint_info *in = baton_checkpoint_info(ck);
	struct baton_checkpoint_sock s;
	unsigned int i;
	char a[64], p[64], title[64];

	out_arr_begin(out, "listeners", in->listeners ? "listeners:" : NULL);
	for (i = 0; !baton_checkpoint_sock(ck, i, &s) &&
		    s.kind == BATON_SOCK_LISTENER; i++) {
		snprintf(title, sizeof(title), "listener %llu:",
			 (unsigned long long)s.id);
		out_obj_begin(out, NULL, title);
		out_u64(out, "id", NULL, s.id);
		out_str(out, "local", "local", baton_addr_text(&s.local, a, sizeof(a)));
		out_obj_end(out);
	}
	out_arr_end(out);
	out_arr_begin(out, "connections", in->conns ? "connections:" : NULL);
	for (; !baton_checkpoint_sock(ck, i, &s); i++) {
		snprintf(title, sizeof(title), "connection %llu: %s -> %s",
			 (unsigned long long)s.id,
			 baton_addr_text(&s.local, a, sizeof(a)),
			 baton_addr_text(&s.peer, p, sizeof(p)));
		out_obj_begin(out, NULL, title);
		out_u64(out, "id", NULL, s.id);
		out_str(out, "local", NULL, a);
		out_str(out, "peer", NULL, p);
		out_u64(out, "sendq", "sent, unacked", s.sendq);
		out_u64(out, "unsent", "never sent", s.unsent);
		out_u64(out, "recvq", "received, unread", s.recvq);
		out_obj_end(out);
	}
	out_arr_end(out);
}

int cmd_dump(const struct ctl_opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	const struct baton_checkpoint_info *in;
	struct baton_checkpoint *ck;
	struct ctl_log logged = {};
	bool json = o->json;
	char when[64], v[96];
	struct out out;
	struct tm tm;
	time_t secs;
	__u64 now;
	int c, err;

	optind = 0;
	while ((c = getopt_long(argc, argv, "jh", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'h':
			dump_usage(stdout);
			return 0;
		default:
			dump_usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 1) {
		fprintf(stderr, "batonctl: dump needs one FILE, a checkpoint\n");
		return 2;
	}
	err = baton_checkpoint_load(&ck, argv[optind], ctl_log, &logged);
	if (err)
		return 1;	/* ctl_log said why */
	in = baton_checkpoint_info(ck);
	secs = in->realtime_ns / 1000000000ULL;
	gmtime_r(&secs, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
	now = mono_ns();
	out_begin(&out, stdout, json);
	if (!json)
		printf("checkpoint %s\n", argv[optind]);
	out.depth = json ? 0 : 1;
	out.wide = true;
	out_u64(&out, "file_version", "format version", in->file_version);
	out_u64(&out, "bytes", "bytes", in->bytes);
	out_str(&out, "service", "service", in->service);
	out_str(&out, "app", "application", in->app);
	out_u64(&out, "pid", "checkpointed pid", in->pid);
	out_str(&out, "written", "written", when);
	out_u64(&out, "realtime_ns", NULL, in->realtime_ns);
	out_u64(&out, "proto", "protocol", in->proto);
	snprintf(v, sizeof(v), "%u (read by %u and newer; reads %u and newer)",
		 in->state_version, in->state_compat, in->state_min);
	out_str(&out, NULL, "state version", v);
	out_u64(&out, "state_version", NULL, in->state_version);
	out_u64(&out, "state_compat", NULL, in->state_compat);
	out_u64(&out, "state_min", NULL, in->state_min);
	out_u64(&out, "blobs", "state blobs", in->blobs);
	out_str(&out, "kernel", "kernel", in->kernel);
	out_str(&out, "boot_id", "boot", in->boot_id);
	out_u64(&out, "netns", "network namespace", in->netns);
	out_u64(&out, "genl_version", "baton.ko family version", in->genl_version);
	out_u64(&out, "genl_maxattr", "baton.ko attributes", in->genl_maxattr);
	out_str(&out, "ckpt_format", "connections by", format_name(in->ckpt_format));
	out_str(&out, "made_for", "made for",
		in->flags & BATON_CHECKPOINT_F_RESTART ? "a restart" : "this boot");
	out_u64(&out, "freeze_id", "freeze", in->freeze_id);
	out_u64(&out, "freeze_ms", "frozen for (ms)", in->freeze_ms);
	out_ms(&out, "thaw_in_ms", "thaws in",
	       ((double)in->deadline_ns - (double)now) / 1e6,
	       in->deadline_ns > now ? "(this boot)" : "expired, if on this boot");
	out_u64(&out, "listeners", NULL, in->listeners);
	out_u64(&out, "conns", NULL, in->conns);
	dump_socks(&out, ck);
	out_end(&out);
	baton_checkpoint_free(ck);
	return 0;
}
