// SPDX-License-Identifier: GPL-2.0-only
/*
 * batonctl apply PLAN: several services upgraded in the plan's order, each
 * as 'batonctl upgrade' does it (upgrade_run(), --verify included). At the
 * first that is not done, the ones before it go back to their old command
 * lines, in reverse order, and the ones after it are never touched.
 *
 * The plan is YAML, read with libyaml:
 *
 *	services:
 *	  - name: kvd-a
 *	    command: [/usr/bin/kvd-v2, --service, kvd-a]
 *	    verify: redis-cli -p 6379 ping | grep -qx PONG
 *	    verify_for: 10s
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "batonctl.h"

#define PLAN_MAX_SERVICES	32

enum plan_state { PLAN_UNTOUCHED, PLAN_DONE, PLAN_FAILED, PLAN_UNDONE,
		  PLAN_UNDO_FAILED };

static const char *const plan_states[] = {
	[PLAN_UNTOUCHED] = "untouched",
	[PLAN_DONE] = "done",
	[PLAN_FAILED] = "failed",
	[PLAN_UNDONE] = "undone",
	[PLAN_UNDO_FAILED] = "undo-failed",
};

struct plan_service {
	char *name;
	char *argv[VERIFY_MAX_ARGS + 1];
	unsigned int argc;
	char *verify;
	int verify_for_ms;
	int verify_timeout_ms;
	int timeout_ms;
	char *log;
	unsigned long line;	/* where it begins in the plan */
	/* what apply did */
	enum plan_state state;
	char why[512];
	pid_t old_pid, new_pid, serving;
	struct verify old;	/* its command line before the plan */
};

struct plan {
	struct plan_service svc[PLAN_MAX_SERVICES];
	unsigned int n;
	char err[512];
};

/* The next event, or -EINVAL with where the YAML itself is wrong. */
static int plan_next(yaml_parser_t *p, yaml_event_t *e, struct plan *plan,
		     const char *path)
{
	if (yaml_parser_parse(p, e))
		return 0;
	snprintf(plan->err, sizeof(plan->err), "%s:%zu:%zu: not valid YAML: %s%s%s",
		 path, p->problem_mark.line + 1, p->problem_mark.column + 1,
		 p->problem ?: "unknown error", p->context ? " " : "",
		 p->context ?: "");
	return -EINVAL;
}

/* What is wrong at e, after the file, line and column: -EINVAL */
static int __attribute__((format(printf, 4, 5)))
plan_error(struct plan *plan, const char *path, const yaml_event_t *e,
	   const char *fmt, ...)
{
	char msg[384];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(plan->err, sizeof(plan->err), "%s:%zu:%zu: %s", path,
		 e->start_mark.line + 1, e->start_mark.column + 1, msg);
	return -EINVAL;
}

static const char *scalar(const yaml_event_t *e)
{
	return (const char *)e->data.scalar.value;
}

/* A scalar value for key, copied: *out, or -EINVAL */
static int plan_scalar(yaml_parser_t *p, struct plan *plan, const char *path,
		       const char *key, char **out)
{
	yaml_event_t e;
	int err = plan_next(p, &e, plan, path);

	if (err)
		return err;
	if (e.type != YAML_SCALAR_EVENT || !e.data.scalar.length) {
		err = plan_error(plan, path, &e, "'%s' takes a value of one line", key);
		goto delete_event;
	}
	*out = strdup(scalar(&e));
	if (!*out)
		err = -ENOMEM;
delete_event:
	yaml_event_delete(&e);
	return err;
}

/*
 * A list's beginning, where key's value must be one: 0, or -EINVAL with
 * hint, which names what the list holds.
 */
static int plan_list(yaml_parser_t *p, struct plan *plan, const char *path,
		     const char *key, const char *hint)
{
	yaml_event_t e;
	int err = plan_next(p, &e, plan, path);

	if (err)
		return err;
	if (e.type != YAML_SEQUENCE_START_EVENT)
		err = plan_error(plan, path, &e, "'%s' is a list of %s", key, hint);
	yaml_event_delete(&e);
	return err;
}

/*
 * A list's next item, of type want: 1 with *e its first event (the
 * caller's to delete), 0 at the list's end, or -EINVAL.
 */
static int plan_item(yaml_parser_t *p, yaml_event_t *e, struct plan *plan,
		     const char *path, yaml_event_type_t want,
		     const char *key, const char *hint)
{
	int err = plan_next(p, e, plan, path);

	if (err)
		return err;
	if (e->type == want)
		return 1;
	if (e->type != YAML_SEQUENCE_END_EVENT)
		err = plan_error(plan, path, e, "'%s' is a list of %s", key, hint);
	yaml_event_delete(e);
	return err;
}

/* command: a list of arguments, the program first */
static int plan_command(yaml_parser_t *p, struct plan *plan, const char *path,
			struct plan_service *s)
{
	static const char hint[] = "strings: the program, then its arguments, e.g. [kvd-v2, --service, kvd]";
	yaml_event_t e;
	int err;

	err = plan_list(p, plan, path, "command", hint);
	while (!err && (err = plan_item(p, &e, plan, path, YAML_SCALAR_EVENT,
					"command", hint)) > 0) {
		if (s->argc == VERIFY_MAX_ARGS)
			err = plan_error(plan, path, &e, "a command has at most %d arguments",
					 VERIFY_MAX_ARGS);
		else if (!(s->argv[s->argc++] = strdup(scalar(&e))))
			err = -ENOMEM;
		else
			err = 0;
		yaml_event_delete(&e);
	}
	if (!err && !s->argc) {
		snprintf(plan->err, sizeof(plan->err), "%s:%lu: the service that begins here has an empty 'command': it needs at least the program",
			 path, s->line);
		err = -EINVAL;
	}
	return err;
}

/* A number of milliseconds or a duration ("10s"), by the key's name. */
static int plan_duration(yaml_parser_t *p, struct plan *plan, const char *path,
			 const char *key, int *ms)
{
	yaml_event_t e;
	char *end;
	int err = plan_next(p, &e, plan, path);

	if (err)
		return err;
	if (e.type != YAML_SCALAR_EVENT) {
		err = -EINVAL;
	} else if (strstr(key, "_ms")) {
		long v = strtol(scalar(&e), &end, 10);

		/* as on the command line (timeout_arg()) */
		err = *end || end == scalar(&e) || v <= 0 ||
		      v > BATON_TIMEOUT_MS_MAX ? -EINVAL : 0;
		*ms = v;
	} else {
		*ms = parse_duration_ms(scalar(&e));
		err = *ms < 0 ? -EINVAL : 0;
	}
	if (err)
		plan_error(plan, path, &e, strstr(key, "_ms") ?
			   "'%s' takes a number of milliseconds from 1 to 3600000" :
			   "'%s' takes a duration: 10s, 500ms, 2m", key);
	yaml_event_delete(&e);
	return err;
}

/* A service's keys */
enum plan_key { KEY_NAME, KEY_COMMAND, KEY_VERIFY, KEY_VERIFY_FOR,
		KEY_VERIFY_TIMEOUT_MS, KEY_TIMEOUT_MS, KEY_LOG, KEY_COUNT };

static const char *const plan_keys[KEY_COUNT] = {
	[KEY_NAME] = "name",
	[KEY_COMMAND] = "command",
	[KEY_VERIFY] = "verify",
	[KEY_VERIFY_FOR] = "verify_for",
	[KEY_VERIFY_TIMEOUT_MS] = "verify_timeout_ms",
	[KEY_TIMEOUT_MS] = "timeout_ms",
	[KEY_LOG] = "log",
};

/* "unknown key 'KEY' in a service: the keys are name, command, ..." */
static int plan_unknown(struct plan *plan, const char *path,
			const yaml_event_t *e)
{
	char keys[128];
	size_t len = 0;
	unsigned int k;

	for (k = 0; k < KEY_COUNT && len < sizeof(keys); k++)
		len += snprintf(keys + len, sizeof(keys) - len, "%s%s",
				k ? ", " : "", plan_keys[k]);
	return plan_error(plan, path, e, "unknown key '%s' in a service: the keys are %s",
			  e->type == YAML_SCALAR_EVENT ? scalar(e) : "(not a word)",
			  keys);
}

/* One service's value for key k. */
static int plan_value(yaml_parser_t *p, struct plan *plan, const char *path,
		      struct plan_service *s, enum plan_key k)
{
	const char *key = plan_keys[k];

	switch (k) {
	case KEY_NAME:
		return plan_scalar(p, plan, path, key, &s->name);
	case KEY_COMMAND:
		return plan_command(p, plan, path, s);
	case KEY_VERIFY:
		return plan_scalar(p, plan, path, key, &s->verify);
	case KEY_VERIFY_FOR:
		return plan_duration(p, plan, path, key, &s->verify_for_ms);
	case KEY_VERIFY_TIMEOUT_MS:
		return plan_duration(p, plan, path, key, &s->verify_timeout_ms);
	case KEY_TIMEOUT_MS:
		return plan_duration(p, plan, path, key, &s->timeout_ms);
	case KEY_LOG:
		return plan_scalar(p, plan, path, key, &s->log);
	default:
		return -EINVAL;
	}
}

/* One service: a mapping of known keys, each once, name and command required. */
static int plan_service(yaml_parser_t *p, struct plan *plan, const char *path,
			struct plan_service *s)
{
	unsigned int seen = 0, k;
	yaml_event_t e;
	int err;

	s->verify_for_ms = VERIFY_FOR_MS;
	s->verify_timeout_ms = VERIFY_TIMEOUT_MS;
	s->timeout_ms = BATON_UPGRADE_TIMEOUT_MS;
	for (;;) {
		err = plan_next(p, &e, plan, path);
		if (err)
			return err;
		if (e.type == YAML_MAPPING_END_EVENT)
			break;
		for (k = 0; e.type == YAML_SCALAR_EVENT && k < KEY_COUNT &&
			    strcmp(scalar(&e), plan_keys[k]); k++)
			;
		if (e.type != YAML_SCALAR_EVENT || k == KEY_COUNT)
			err = plan_unknown(plan, path, &e);
		else if (seen & 1U << k)
			err = plan_error(plan, path, &e, "'%s' is given twice in one service", plan_keys[k]);
		else
			err = plan_value(p, plan, path, s, k);
		if (err)
			goto delete_event;
		seen |= 1U << k;
		yaml_event_delete(&e);
	}
	if (!s->name || !s->argc) {
		snprintf(plan->err, sizeof(plan->err), "%s:%lu: the service that begins here needs %s",
			 path, s->line, !s->name ? "a 'name'" : "a 'command'");
		err = -EINVAL;
	} else if (baton_service_name_check(s->name)) {
		char why[160];

		service_name_bad(s->name, why, sizeof(why));
		snprintf(plan->err, sizeof(plan->err), "%s:%lu: %s", path,
			 s->line, why);
		err = -EINVAL;
	}
delete_event:
	yaml_event_delete(&e);
	return err;
}

/* services: a list of mappings */
static int plan_services(yaml_parser_t *p, struct plan *plan, const char *path)
{
	static const char hint[] = "services, each a mapping (- name: ..., command: [...])";
	struct plan_service *s;
	yaml_event_t e;
	unsigned int i;
	int err;

	err = plan_list(p, plan, path, "services", hint);
	while (!err && (err = plan_item(p, &e, plan, path,
					YAML_MAPPING_START_EVENT,
					"services", hint)) > 0) {
		err = 0;
		if (plan->n == PLAN_MAX_SERVICES)
			err = plan_error(plan, path, &e, "a plan has at most %d services",
					 PLAN_MAX_SERVICES);
		else
			plan->svc[plan->n].line = e.start_mark.line + 1;
		yaml_event_delete(&e);
		if (err)
			break;
		s = &plan->svc[plan->n++];
		err = plan_service(p, plan, path, s);
		for (i = 0; !err && i < plan->n - 1; i++)
			if (!strcmp(plan->svc[i].name, s->name)) {
				snprintf(plan->err, sizeof(plan->err),
					 "%s:%lu: service '%s' is in the plan twice (line %lu too)",
					 path, s->line, s->name, plan->svc[i].line);
				err = -EINVAL;
			}
	}
	if (!err && !plan->n) {
		snprintf(plan->err, sizeof(plan->err), "%s: 'services' is empty", path);
		err = -EINVAL;
	}
	return err;
}

/*
 * The plan at path, whole, or -errno with plan->err saying where it is
 * wrong: a document of one mapping whose only key is 'services'.
 */
static int plan_read(struct plan *plan, const char *path)
{
	yaml_parser_t p;
	yaml_event_t e;
	bool services = false;
	int err;
	FILE *f;

	f = fopen(path, "re");
	if (!f) {
		err = -errno;
		snprintf(plan->err, sizeof(plan->err), "cannot open the plan %s: %s",
			 path, strerror(errno));
		return err;
	}
	if (!yaml_parser_initialize(&p)) {
		err = -ENOMEM;
		goto close_file;
	}
	yaml_parser_set_input_file(&p, f);
	/* stream start, document start, the mapping */
	err = plan_next(&p, &e, plan, path);
	while (!err && (e.type == YAML_STREAM_START_EVENT ||
			e.type == YAML_DOCUMENT_START_EVENT)) {
		yaml_event_delete(&e);
		err = plan_next(&p, &e, plan, path);
	}
	if (err)
		goto delete_parser;
	if (e.type != YAML_MAPPING_START_EVENT) {
		err = plan_error(plan, path, &e, "a plan is a mapping with one key, 'services', a list of services");
		goto delete_event;
	}
	for (;;) {
		yaml_event_delete(&e);
		err = plan_next(&p, &e, plan, path);
		if (err)
			goto delete_parser;
		if (e.type == YAML_MAPPING_END_EVENT)
			break;
		if (e.type != YAML_SCALAR_EVENT || strcmp(scalar(&e), "services")) {
			err = plan_error(plan, path, &e, "unknown key '%s' in the plan: its only key is 'services'",
					 e.type == YAML_SCALAR_EVENT ? scalar(&e) : "(not a word)");
			goto delete_event;
		}
		if (services) {
			err = plan_error(plan, path, &e, "'services' is given twice");
			goto delete_event;
		}
		services = true;
		err = plan_services(&p, plan, path);
		if (err)
			goto delete_event;
	}
	if (!services)
		err = plan_error(plan, path, &e, "the plan has no 'services'");
	yaml_event_delete(&e);
	/* one document: what follows it, if anything, must parse and be empty */
	while (!err) {
		err = plan_next(&p, &e, plan, path);
		if (err)
			break;
		if (e.type == YAML_STREAM_END_EVENT) {
			yaml_event_delete(&e);
			break;
		}
		if (e.type != YAML_DOCUMENT_END_EVENT)
			err = plan_error(plan, path, &e, "a plan is one document");
		yaml_event_delete(&e);
	}
	goto delete_parser;
delete_event:
	yaml_event_delete(&e);
delete_parser:
	yaml_parser_delete(&p);
close_file:
	fclose(f);
	return err;
}

static void plan_free(struct plan *plan)
{
	unsigned int i, k;

	for (i = 0; i < plan->n; i++) {
		struct plan_service *s = &plan->svc[i];

		free(s->name);
		free(s->verify);
		free(s->log);
		for (k = 0; k < s->argc; k++)
			free(s->argv[k]);
	}
}

/*
 * One step, as 'batonctl upgrade' runs it: 0 if it is done. The forward
 * one, with its verify, keeps the pids of the plan's upgrade; the undo's
 * only changes who serves.
 */
static int apply_step(const struct ctl_opts *o, const char *path,
		      struct plan_service *s, char *const *argv,
		      const char *step, bool forward)
{
	static struct upgrade_job job;
	int err;

	memset(&job, 0, sizeof(job));
	job.uo.service = s->name;
	job.uo.argv = argv;
	job.uo.timeout_ms = s->timeout_ms;
	job.uo.log_path = s->log;
	if (forward && s->verify) {
		job.v.cmd = s->verify;
		job.v.for_ms = s->verify_for_ms;
		job.v.run_ms = s->verify_timeout_ms;
	}
	job.plan = path;
	job.plan_step = step;
	job.quiet = true;
	err = upgrade_run(o, &job);
	if (forward) {
		s->old_pid = job.old_pid;
		s->new_pid = job.new_pid;
	}
	s->serving = job.serving;
	if (err)
		snprintf(s->why, sizeof(s->why), "%s: %s", job.result, job.reason);
	return err;
}

static void apply_report(const struct ctl_opts *o, const char *path,
			 struct plan *plan, const char *result)
{
	char title[128], label[96], pids[96];
	unsigned int i;
	struct out out;

	out_begin(&out, stdout, o->json);
	if (!o->json)
		printf("plan %s: %s\n", path, result);
	out_str(&out, "plan", NULL, path);
	out_str(&out, "result", NULL, result);
	snprintf(title, sizeof(title), "services, in the plan's order (%u):", plan->n);
	out_arr_begin(&out, "services", title);
	for (i = 0; i < plan->n; i++) {
		const struct plan_service *s = &plan->svc[i];

		out_obj_begin(&out, NULL, NULL);
		snprintf(label, sizeof(label), "%u. %s", i + 1, s->name);
		out_str(&out, "service", NULL, s->name);
		out_str(&out, "result", label, plan_states[s->state]);
		if (s->why[0])
			out_str(&out, "why", "   why", s->why);
		if (s->old_pid)
			snprintf(pids, sizeof(pids), "%d to %d; %d serves",
				 s->old_pid, s->new_pid, s->serving);
		else
			snprintf(pids, sizeof(pids), "%d serves", s->serving);
		out_str(&out, NULL, "   pids", pids);
		out_u64(&out, "old_pid", NULL, s->old_pid);
		out_u64(&out, "new_pid", NULL, s->new_pid);
		out_u64(&out, "serving_pid", NULL, s->serving);
		out_obj_end(&out);
	}
	out_arr_end(&out);
	out_end(&out);
}

static void usage(FILE *f)
{
	fprintf(f,
"Usage: batonctl apply PLAN [-j|--json]\n"
"\n"
"Upgrades the services PLAN lists, in its order, each as 'batonctl upgrade'\n"
"does it, with its own --verify. At the first that is not done (refused,\n"
"rolled back, or failed its verification and reverted), the ones already\n"
"done go back to their old command lines, last first, the ones after it\n"
"are never touched, and batonctl exits with 1.\n"
"\n"
"PLAN is YAML: one key, 'services', a list of services, each with\n"
"  name: SERVICE               the service, as 'batonctl upgrade' knows it\n"
"  command: [PROGRAM, ARG...]  its new version's command line\n"
"  verify: CMD                 optional: as upgrade's --verify\n"
"  verify_for: DURATION        the window: 10s, 500ms, 2m (%d ms)\n"
"  verify_timeout_ms: N        each run's deadline (%d)\n"
"  timeout_ms: N               how long each step may take (%d)\n"
"  log: FILE                   the new instance's standard output and error\n"
"\n"
"For example:\n"
"  services:\n"
"    - name: kvd\n"
"      command: [/usr/sbin/kvd-v2, --service, kvd]\n"
"      verify: redis-cli -p 6379 ping | grep -qx PONG\n"
"      verify_for: 10s\n",
		VERIFY_FOR_MS, VERIFY_TIMEOUT_MS, BATON_UPGRADE_TIMEOUT_MS);
}

int cmd_apply(const struct ctl_opts *o, int argc, char **argv)
{
	static struct plan plan;
	const char *path, *result = "done";
	struct baton_instance_info info;
	char step[JOURNAL_VAL_LEN], whole[PATH_MAX], undo_why[512];
	unsigned int i, k, failed = 0;
	int err;

	if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		usage(stdout);
		return 0;
	}
	if (argc != 2) {
		usage(stderr);
		return 2;
	}
	/* the journals name the plan by its whole path */
	path = realpath(argv[1], whole) ?: argv[1];
	memset(&plan, 0, sizeof(plan));
	err = plan_read(&plan, path);
	if (err) {
		fprintf(stderr, "batonctl: %s\nbatonctl: nothing was changed; mend the plan and try again ('batonctl apply --help' shows its form)\n",
			plan.err[0] ? plan.err : strerror(-err));
		plan_free(&plan);
		return 2;
	}

	/* every way back is known before anything changes */
	for (i = 0; i < plan.n; i++) {
		struct plan_service *s = &plan.svc[i];

		err = baton_query(o->run_dir, s->name, BATON_QUERY_TIMEOUT_MS, &info);
		if (!err)
			err = verify_old_command(&s->old, info.pid);
		if (err) {
			fprintf(stderr, "batonctl: %s:%lu: the running instance of %s, and its command line (to go back to), could not be read: %s\n"
				"batonctl: nothing was changed; check that %s runs ('batonctl status %s')\n",
				path, s->line, s->name, strerror(-err), s->name, s->name);
			plan_free(&plan);
			return 1;
		}
	}

	for (i = 0; i < plan.n; i++) {
		struct plan_service *s = &plan.svc[i];

		snprintf(step, sizeof(step), "%u of %u: upgrade", i + 1, plan.n);
		if (!o->json)
			fprintf(stderr, "batonctl: %s: upgrading %s\n", path, s->name);
		if (apply_step(o, path, s, s->argv, step, true)) {
			s->state = PLAN_FAILED;
			failed = i + 1;
			break;
		}
		s->state = PLAN_DONE;
	}
	if (failed) {
		result = "failed";
		fprintf(stderr, "batonctl: %s: %s was not upgraded (%s): undoing the %u before it, leaving the %u after it untouched\n",
			path, plan.svc[failed - 1].name, plan.svc[failed - 1].why,
			failed - 1, plan.n - failed);
		for (k = failed - 1; k-- > 0;) {
			struct plan_service *s = &plan.svc[k];

			snprintf(step, sizeof(step), "%u of %u: undone, because %s failed",
				 k + 1, plan.n, plan.svc[failed - 1].name);
			if (!o->json)
				fprintf(stderr, "batonctl: %s: undoing %s (back to %s)\n",
					path, s->name, s->old.old_line);
			if (apply_step(o, path, s, s->old.old_argv, step, false)) {
				int n;

				s->state = PLAN_UNDO_FAILED;
				snprintf(undo_why, sizeof(undo_why), "%s", s->why);
				/*
				 * one serves still (the new version): upgrade
				 * it back. A command cut short would run
				 * something else: whole, or on stderr alone
				 */
				if (s->serving)
					n = snprintf(s->why, sizeof(s->why), "going back failed (%s); pid %d serves it: go back with: batonctl upgrade %s -- %s",
						     undo_why, s->serving, s->name,
						     s->old.old_line);
				else
					n = snprintf(s->why, sizeof(s->why), "going back failed (%s): start it again with: %s",
						     undo_why, s->old.old_line);
				if (n >= (int)sizeof(s->why)) {
					fprintf(stderr, "batonctl: %s: %s: %s%s%s%s\n",
						s->name, s->serving ? "go back with" :
						"start it again with",
						s->serving ? "batonctl upgrade " : "",
						s->serving ? s->name : "",
						s->serving ? " -- " : "",
						s->old.old_line);
					snprintf(s->why, sizeof(s->why), "going back failed (%s): its command is too long for here; it is on the standard error",
						 undo_why);
				}
				fprintf(stderr, "batonctl: %s: %s\n", s->name, s->why);
				continue;
			}
			s->state = PLAN_UNDONE;
			snprintf(s->why, sizeof(s->why), "back to %s, because %s failed",
				 s->old.old_line, plan.svc[failed - 1].name);
		}
		for (k = failed; k < plan.n; k++) {
			struct plan_service *s = &plan.svc[k];

			snprintf(s->why, sizeof(s->why), "after %s, which failed",
				 plan.svc[failed - 1].name);
			/* checked now: who answers for it */
			if (!baton_query(o->run_dir, s->name, BATON_QUERY_TIMEOUT_MS,
					 &info))
				s->serving = info.pid;
		}
	}
	apply_report(o, path, &plan, result);
	plan_free(&plan);
	return failed ? 1 : 0;
}
