/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef BATONCTL_H
#define BATONCTL_H

#include <stdbool.h>
#include <stdio.h>
#include <linux/types.h>

#include "baton.h"
#include "baton_steer.h"

struct ctl_opts {
	bool json;
	const char *run_dir;
};

/* output.c: one set of fields, printed as text or as one JSON object */
struct out {
	FILE *f;
	bool json;
	int depth;
	bool first;
	bool wide;	/* text: labels up to 28 columns, not 18 */
};

void out_begin(struct out *o, FILE *f, bool json);
void out_end(struct out *o);
void out_obj_begin(struct out *o, const char *key, const char *title);
void out_obj_end(struct out *o);
void out_arr_begin(struct out *o, const char *key, const char *title);
void out_arr_end(struct out *o);
void out_str(struct out *o, const char *key, const char *label,
	     const char *v);
void out_u64(struct out *o, const char *key, const char *label, __u64 v);
void out_ms(struct out *o, const char *key, const char *label, double ms,
	    const char *note);
__u64 mono_ns(void);	/* CLOCK_MONOTONIC */
double ms_between(__u64 a, __u64 b);

/* journal.c: <run_dir>/<service>/journal and upgrade.lock */
#define JOURNAL_MAX_FIELDS 64
#define JOURNAL_VAL_LEN	256

struct journal {
	unsigned int n;
	char key[JOURNAL_MAX_FIELDS][32];
	char val[JOURNAL_MAX_FIELDS][JOURNAL_VAL_LEN];
	unsigned long seq;	/* of the newest slot */
	const char *run_dir;	/* as journal_open() or journal_read() had it */
	int fd;			/* open by journal_open() */
	int lock;		/* upgrade.lock, held */
	int err;		/* the last write's failure, or 0 */
};

int journal_dir(char *buf, size_t len, const char *run_dir,
		const char *service);
int journal_open(const char *run_dir, const char *service, const char *op,
		 struct journal *j);
int journal_lock_note(const char *run_dir, const char *service, char *pid,
		      char *start, char *op);
void journal_close(struct journal *j);
int journal_read(const char *run_dir, const char *service, struct journal *j);
int journal_write(struct journal *j);
void journal_set(struct journal *j, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
const char *journal_get(const struct journal *j, const char *key);
int journal_begin(const char *run_dir, const char *service, const char *op,
		  int timeout_ms, bool quiet, struct journal *j, char *reason,
		  size_t reason_len);
/* why SERVICE is refused, when baton_service_name_check() refuses it */
void service_name_bad(const char *service, char *why, size_t len);

/* status.c: a process alive and the same one: pid and start time */
unsigned long long proc_start_time(pid_t pid);
bool proc_is(const char *pid, const char *start);
void journal_busy(const char *run_dir, const char *service, char *why,
		  size_t len);

/* output.c: libbaton's messages, warnings and errors only; ctx, if not
 * NULL, a struct ctl_log that keeps the first error */
struct ctl_log {
	char first_err[256];
};

void ctl_log(void *ctx, enum baton_log_level level, const char *msg);

/* verify.c: upgrade --verify CMD, and the way back if it fails */
#define VERIFY_FOR_MS		10000	/* --verify-for */
#define VERIFY_TIMEOUT_MS	5000	/* --verify-timeout-ms: each run */
#define VERIFY_INTERVAL_MS	500	/* between runs */
#define VERIFY_KILL_MS		10000	/* a run killed at its deadline exits */
#define VERIFY_MAX_ARGS		63

struct verify {
	const char *cmd;	/* NULL: no verification */
	int for_ms;
	int run_ms;
	/* the old instance's command line */
	char old_buf[4096];
	char old_exe[256];
	char *old_argv[VERIFY_MAX_ARGS + 1];
	/* for a shell: each word quoted as it needs (shell_quote()) */
	char old_line[8192];
	/* what the window saw */
	unsigned int runs;
	bool failed;
	double at_ms;		/* the failed run's end, after the window began */
	char why[128];
};

int parse_duration_ms(const char *s);
/* word onto line at *at (a space first, unless at 0), quoted for a shell */
int shell_quote(char *line, size_t len, size_t *at, const char *word);
int verify_old_command(struct verify *v, pid_t pid);
int verify_window(struct verify *v, const char *service, pid_t pid);

/*
 * upgrade.c: one upgrade, as 'batonctl upgrade' runs it and 'batonctl
 * apply' runs each step of a plan: the journal kept, --verify and its way
 * back, the outcome checked.
 */
/* canary.c: upgrade --canary PCT%, before the upgrade proper */
#define CANARY_NO_GEN	BATON_STEER_MAX_GEN

struct canary {
	long share;		/* in 1/BATON_STEER_SCALE; 0: no canary */
	char service[96];	/* SERVICE-canary */
	pid_t pid;		/* our child */
	unsigned long long start;	/* its start time, for the journal */
	__u32 active;		/* the serving generation */
	__u32 gen;		/* the canary's, or CANARY_NO_GEN */
	__u32 taken;		/* generations with a listener before it */
	bool reaped, told, taken_back;
	char end[48];		/* how it ended, once reaped */
	char result[16];	/* passed, aborted, failed */
	char why[400];
};

struct upgrade_job {
	struct baton_upgrade_opts uo;
	struct verify v;
	struct canary canary;
	/* batonctl apply: the plan and this step, for the journal */
	const char *plan;
	const char *plan_step;
	bool quiet;		/* no report or advice of its own */
	/* the outcome: done, reverted, failed, rolled-back, refused, ... */
	char result[32];
	char reason[256];
	pid_t old_pid, new_pid, serving;
};

int upgrade_run(const struct ctl_opts *o, struct upgrade_job *job);

long steer_parse_share(const char *s);
int canary_run(const struct ctl_opts *o, struct upgrade_job *job,
	       struct journal *j);
void canary_end(struct upgrade_job *job, bool upgraded, struct journal *j);
void report_canary(struct out *out, const struct upgrade_job *job);
void canary_recover(const char *service, struct journal *j, bool upgraded,
		    char *said, size_t len);

/* the subcommands */
int cmd_upgrade(const struct ctl_opts *o, int argc, char **argv);
int cmd_status(const struct ctl_opts *o, int argc, char **argv);
int cmd_recover(const struct ctl_opts *o, int argc, char **argv);
int cmd_apply(const struct ctl_opts *o, int argc, char **argv);
int cmd_steer(const struct ctl_opts *o, int argc, char **argv);
int cmd_checkpoint(const struct ctl_opts *o, int argc, char **argv);
int cmd_restore(const struct ctl_opts *o, int argc, char **argv);
int cmd_dump(const struct ctl_opts *o, int argc, char **argv);
int cmd_kexec(const struct ctl_opts *o, int argc, char **argv);
int cmd_hold(const struct ctl_opts *o, int argc, char **argv);

/* checkpoint.c: --timeout-ms and the journal's records, shared with kexec.c */
int timeout_arg(const char *opt, const char *s);
int file_op_begin(const struct ctl_opts *o, const char *op,
		  const struct baton_checkpoint_opts *co, struct journal *j,
		  bool quiet);
void file_op_start(const struct ctl_opts *o,
		   const struct baton_checkpoint_opts *co, struct journal *j);
void file_op_record(struct journal *j, const char *result,
		    const struct baton_upgrade_report *r, pid_t serving);
const char *file_op_result(const struct baton_upgrade_report *r, int err);
int recover(const char *service, struct journal *j, int timeout_ms,
	    bool quiet);

#endif /* BATONCTL_H */
