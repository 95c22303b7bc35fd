// SPDX-License-Identifier: GPL-2.0-only
/*
 * batonctl kexec: the kernel restarts under running services, and their
 * clients keep their connections.
 *
 *	load	the next kernel (kexec_file_load()): if the kernel refuses
 *		it, nothing else has happened;
 *	checkpoint  each service, in the order given, into DIR/SERVICE.ckpt
 *		(libbaton's baton_checkpoint_save(), made for a restart): its
 *		connections frozen, let go of in repair mode (nothing reaches
 *		the peers), its process gone;
 *	report	what was done, and the restore command of each service;
 *	exec	sync(), then reboot(RB_KEXEC).
 * If a checkpoint or the exec fails, the services checkpointed so far are
 * restored from their files at once, with the command lines they ran
 * (read from /proc before anything began), the next kernel is unloaded,
 * and batonctl exits with 1.
 *
 * After the restart, the init system restores each service
 * ('batonctl restore SERVICE -i DIR/SERVICE.ckpt -- COMMAND') before it
 * brings up the addresses the connections use: until then nothing in the
 * new kernel answers their peers, which retransmit and wait.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/baton.h>
#include <linux/kexec.h>
#include <linux/magic.h>

#include "batonctl.h"

#define KEXEC_MAX_SERVICES	16
#define KEXEC_DIR		"/var/lib/baton/kexec"
#define CMDLINE_MAX		2048

struct kexec_service {
	const char *name;
	char path[PATH_MAX];
	struct verify cmd;	/* its command line, to restore it with */
	struct baton_upgrade_report r;
	int err;
	pid_t pid;		/* as it answered, before anything began */
	bool saved;		/* its file is whole; its process gone */
	bool restored;		/* brought back after a failure */
	/* its lock and journal, as checkpoint keeps them: held until the
	 * kernel restarts, or until it is restored after a failure */
	struct journal j;
	bool journaled;
};

/* "batonctl restore NAME -i FILE -- COMMAND", quoted (restore_cmd()) */
#define RESTORE_CMD_MAX	(sizeof(((struct kexec_service *)0)->path) + \
			 sizeof(((struct verify *)0)->old_line) + 128)

struct kexec_plan {
	const char *kernel, *initrd, *append, *dir;
	char dir_abs[PATH_MAX];	/* dir, absolute: the next boot's cwd is / */
	char cmdline[CMDLINE_MAX];
	int timeout_ms;
	bool json;
	struct kexec_service svc[KEXEC_MAX_SERVICES];
	unsigned int n;
	bool loaded;
	double load_ms;
	char why[512];
};

static void kexec_usage(FILE *f)
{
	fprintf(f,
"Usage: batonctl kexec SERVICE... --kernel VMLINUZ [--initrd FILE]\n"
"                      [--append ARGS] [--dir DIR] [--timeout-ms N]\n"
"                      [-j|--json]\n"
"\n"
"Restarts the kernel under running services without their clients losing\n"
"a connection. Loads VMLINUZ (kexec_file_load), checkpoints each SERVICE\n"
"in turn into DIR/SERVICE.ckpt (as 'batonctl checkpoint' does, made for a\n"
"restart: its connections closed in repair mode, nothing sent to the\n"
"peers), prints its report, and executes the new kernel. If anything fails\n"
"before that, the services checkpointed so far are restored at once from\n"
"their files with the command lines they ran, the new kernel is unloaded,\n"
"and batonctl exits with 1.\n"
"\n"
"After the restart, restore each service before the addresses its\n"
"connections use come up (the report prints the commands):\n"
"  batonctl restore SERVICE -i DIR/SERVICE.ckpt -- COMMAND\n"
"Until then the peers' segments must find no interface to answer them,\n"
"or they are reset. Needs CAP_SYS_BOOT, CAP_NET_ADMIN and baton.ko.\n"
"\n"
"  --kernel VMLINUZ    the kernel to start (a bzImage)\n"
"  --initrd FILE       its initramfs\n"
"  --append ARGS       added to this kernel's command line (/proc/cmdline)\n"
"                      for the next one\n"
"  --dir DIR           where the checkpoints go (%s): a disk\n"
"                      filesystem that the next kernel mounts; tmpfs and\n"
"                      ramfs are refused, as they go with this kernel\n"
"  --timeout-ms N      how long each checkpoint's steps may take (%d)\n"
"  -j, --json          print the report as one JSON object\n",
		KEXEC_DIR, BATON_UPGRADE_TIMEOUT_MS);
}

/* A directory whose files outlive this kernel: why not, if not */
static int dir_check(struct kexec_plan *p)
{
	struct statfs sf;
	struct stat st;

	if (stat(p->dir, &st) || !S_ISDIR(st.st_mode)) {
		snprintf(p->why, sizeof(p->why), "%s is not a directory%s: give --dir on a disk filesystem the next kernel mounts",
			 p->dir, errno == ENOENT ? " (it does not exist)" : "");
		return -ENOTDIR;
	}
	if (statfs(p->dir, &sf))
		return -errno;
	if (!realpath(p->dir, p->dir_abs))
		return -errno;
	p->dir = p->dir_abs;
	if (sf.f_type == TMPFS_MAGIC || sf.f_type == RAMFS_MAGIC) {
		snprintf(p->why, sizeof(p->why), "%s is in memory (%s), which the restart empties: give --dir on a disk filesystem the next kernel mounts",
			 p->dir, sf.f_type == TMPFS_MAGIC ? "tmpfs" : "ramfs");
		return -EXDEV;
	}
	return 0;
}

/* This kernel's command line, and --append's words after it */
static int cmdline_make(struct kexec_plan *p)
{
	ssize_t n = 0;
	size_t len;
	int fd;

	fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, p->cmdline, sizeof(p->cmdline) - 1);
		close(fd);
	}
	p->cmdline[n > 0 ? n : 0] = '\0';
	p->cmdline[strcspn(p->cmdline, "\n")] = '\0';
	len = strlen(p->cmdline);
	if (p->append &&
	    snprintf(p->cmdline + len, sizeof(p->cmdline) - len, "%s%s",
		     len ? " " : "", p->append) >= (int)(sizeof(p->cmdline) - len)) {
		snprintf(p->why, sizeof(p->why), "the command line would be over %d bytes",
			 CMDLINE_MAX - 1);
		return -E2BIG;
	}
	return 0;
}

/* The next kernel, loaded; nothing else changed if it is refused */
static int kernel_load(struct kexec_plan *p)
{
	int kfd, ifd = -1, err = 0;
	unsigned long flags = 0;
	__u64 t = mono_ns();

	kfd = open(p->kernel, O_RDONLY | O_CLOEXEC);
	if (kfd < 0) {
		err = -errno;
		snprintf(p->why, sizeof(p->why), "cannot open the kernel %s: %s",
			 p->kernel, strerror(errno));
		return err;
	}
	if (p->initrd) {
		ifd = open(p->initrd, O_RDONLY | O_CLOEXEC);
		if (ifd < 0) {
			err = -errno;
			snprintf(p->why, sizeof(p->why), "cannot open the initrd %s: %s",
				 p->initrd, strerror(errno));
			goto close_kernel;
		}
	} else {
		flags |= KEXEC_FILE_NO_INITRAMFS;
	}
	if (syscall(SYS_kexec_file_load, kfd, ifd, strlen(p->cmdline) + 1,
		    p->cmdline, flags)) {
		err = -errno;
		snprintf(p->why, sizeof(p->why), "the kernel refused to load %s: %s%s",
			 p->kernel, strerror(errno),
			 errno == ENOSYS ? " (this kernel has no kexec_file_load: CONFIG_KEXEC_FILE)" :
			 errno == EPERM ? " (needs CAP_SYS_BOOT; kexec may be disabled: /proc/sys/kernel/kexec_load_disabled, or locked down)" :
			 errno == ENOEXEC ? " (not a kernel image this kernel can start: a bzImage)" :
			 errno == EKEYREJECTED || errno == EBADMSG ? " (its signature is refused)" :
			 "");
		goto close_initrd;
	}
	p->loaded = true;
	p->load_ms = ms_between(t, mono_ns());
close_initrd:
	if (ifd >= 0)
		close(ifd);
close_kernel:
	close(kfd);
	return err;
}

static void kernel_unload(struct kexec_plan *p)
{
	if (p->loaded &&
	    !syscall(SYS_kexec_file_load, -1, -1, 0, NULL, KEXEC_FILE_UNLOAD))
		p->loaded = false;
}

/*
 * Each service's lock and journal, as checkpoint takes them, first: what
 * an interrupted upgrade left is settled before anything is read, and
 * nothing changes if one of them is busy.
 */
static int services_lock(const struct ctl_opts *o, struct kexec_plan *p)
{
	unsigned int i;

	for (i = 0; i < p->n; i++) {
		struct kexec_service *s = &p->svc[i];

		if (journal_begin(o->run_dir, s->name, "checkpoint",
				  p->timeout_ms ?: BATON_UPGRADE_TIMEOUT_MS,
				  p->json, &s->j, NULL, 0)) {
			snprintf(p->why, sizeof(p->why),
				 "%s's lock and journal could not be had (said above)",
				 s->name);
			return -EBUSY;
		}
		s->journaled = true;
	}
	return 0;
}

/* Each service's pid and command line, before anything changes */
static int services_find(const struct ctl_opts *o, struct kexec_plan *p)
{
	struct baton_instance_info info;
	unsigned int i;
	int err;

	for (i = 0; i < p->n; i++) {
		struct kexec_service *s = &p->svc[i];

		if (snprintf(s->path, sizeof(s->path), "%s/%s.ckpt", p->dir,
			     s->name) >= (int)sizeof(s->path)) {
			snprintf(p->why, sizeof(p->why), "%s/%s.ckpt: the path is too long",
				 p->dir, s->name);
			return -ENAMETOOLONG;
		}
		err = baton_query(o->run_dir, s->name, 0, &info);
		if (err) {
			snprintf(p->why, sizeof(p->why), "%s does not answer on its control socket (%s): is it running? ('batonctl status %s')",
				 s->name, strerror(-err), s->name);
			return err;
		}
		err = verify_old_command(&s->cmd, info.pid);
		if (err) {
			snprintf(p->why, sizeof(p->why), "cannot read the command line of %s (pid %d), to restore it with if the restart fails: %s",
				 s->name, info.pid, strerror(-err));
			return err;
		}
		s->pid = info.pid;
	}
	return 0;
}

static int checkpoint_one(const struct ctl_opts *o, struct kexec_plan *p,
			  struct kexec_service *s)
{
	struct baton_checkpoint_opts co = {
		.service = s->name, .run_dir = o->run_dir, .path = s->path,
		.timeout_ms = p->timeout_ms, .freeze_ms = BATON_DEADLINE_MAX_MS,
		.flags = BATON_CHECKPOINT_F_RESTART,
		.log = ctl_log,
	};

	file_op_start(o, &co, &s->j);
	if (!p->json)
		fprintf(stderr, "batonctl: checkpointing %s into %s\n", s->name,
			s->path);
	s->err = baton_checkpoint_save(&co, &s->r);
	file_op_record(&s->j, file_op_result(&s->r, s->err), &s->r,
		       s->r.phase == BATON_PHASE_ROLLED_BACK ? s->r.old_pid : 0);
	if (s->err) {
		snprintf(p->why, sizeof(p->why), "the checkpoint of %s failed: %s",
			 s->name, s->r.reason[0] ? s->r.reason :
			 strerror(-s->err));
		return s->err;
	}
	s->saved = true;
	return 0;
}

/*
 * The command that restores s from its file, each word quoted for a
 * shell: whole, or -E2BIG (a cut command restores nothing)
 */
static int restore_cmd(const struct kexec_service *s, char *line, size_t len)
{
	size_t at = 0;

	return shell_quote(line, len, &at, "batonctl") ?:
	       shell_quote(line, len, &at, "restore") ?:
	       shell_quote(line, len, &at, s->name) ?:
	       shell_quote(line, len, &at, "-i") ?:
	       shell_quote(line, len, &at, s->path) ?:
	       shell_quote(line, len, &at, "--") ?:
	       (size_t)snprintf(line + at, len - at, " %s", s->cmd.old_line) <
	       len - at ? 0 : -E2BIG;
}

/* The way back: each service saved so far serves again, from its file */
static void restore_saved(const struct ctl_opts *o, struct kexec_plan *p)
{
	unsigned int i;

	for (i = 0; i < p->n; i++) {
		struct kexec_service *s = &p->svc[i];
		struct baton_checkpoint_opts co = {
			.service = s->name, .run_dir = o->run_dir,
			.path = s->path, .argv = s->cmd.old_argv,
			.timeout_ms = p->timeout_ms, .log = ctl_log,
		};
		struct baton_upgrade_report r;
		char line[RESTORE_CMD_MAX];

		if (!s->saved)
			continue;
		if (!p->json)
			fprintf(stderr, "batonctl: restoring %s: %s\n", s->name,
				s->cmd.old_line);
		s->restored = !baton_checkpoint_restore(&co, &r);
		/* the checkpoint undone: its own record says how */
		if (s->journaled)
			file_op_record(&s->j, s->restored ? "rolled-back" :
				       "failed", &r, s->restored ? r.new_pid : 0);
		if (s->restored)
			continue;
		fprintf(stderr, "batonctl: %s could not be restored (%s): its checkpoint %s is kept; restore it by hand within its freeze",
			s->name, r.reason, s->path);
		if (!restore_cmd(s, line, sizeof(line)))
			fprintf(stderr, ":\n  %s\n", line);
		else
			fprintf(stderr, " (batonctl restore %s -i FILE -- COMMAND; the command is too long to print here)\n",
				s->name);
	}
}

static const char *result_of(const struct kexec_plan *p, int err)
{
	unsigned int i;

	if (!err)
		return "restarting";	/* the last thing it says */
	/* one not restored, or whose instance did not resume: none serves */
	for (i = 0; i < p->n; i++)
		if ((p->svc[i].saved && !p->svc[i].restored) ||
		    (p->svc[i].err &&
		     p->svc[i].r.phase == BATON_PHASE_FAILED))
			return "failed";
	for (i = 0; i < p->n; i++)
		if (p->svc[i].saved)
			return "rolled-back";
	return "refused";
}

static void report(struct kexec_plan *p, int err)
{
	const char *result = result_of(p, err);
	struct out out;
	unsigned int i;

	out_begin(&out, stdout, p->json);
	if (!p->json)
		printf("kexec: %s\n", result);
	out.depth = p->json ? 0 : 1;
	out_str(&out, "result", "result", result);
	if (err && p->why[0])
		out_str(&out, "error", "error", p->why);
	out_str(&out, "kernel", "kernel", p->kernel);
	if (p->initrd)
		out_str(&out, "initrd", "initrd", p->initrd);
	out_str(&out, "command_line", "command line", p->cmdline);
	out_str(&out, "next_kernel", "next kernel", p->loaded ? "loaded" :
		p->load_ms ? "unloaded again" : "not loaded");
	if (p->load_ms)
		out_ms(&out, "load_ms", "loaded in", p->load_ms, NULL);
	out_arr_begin(&out, "services", "services:");
	for (i = 0; i < p->n; i++) {
		struct kexec_service *s = &p->svc[i];

		out_obj_begin(&out, NULL, s->name);
		out_str(&out, "service", "service", s->name);
		out_str(&out, "file", "file", s->path);
		/* as far as it got: what it is now is not checked here */
		out_str(&out, "state", "state",
			s->restored ? "checkpointed, then restored from it" :
			s->saved ? "checkpointed; its process exited" :
			s->err ? (s->r.phase == BATON_PHASE_ROLLED_BACK ?
				  "checkpoint failed; its instance resumed" :
				  "checkpoint failed") :
			s->pid ? "not checkpointed" : "not found");
		if (s->pid)
			out_u64(&out, "pid", "pid", s->pid);
		if (s->saved || s->err) {
			out_u64(&out, "listeners", "listeners", s->r.listeners);
			out_u64(&out, "conns", "connections", s->r.checkpoints);
			out_ms(&out, "checkpoint_ms", "checkpoint",
			       ms_between(s->r.deactivate_ns, s->r.active_ns),
			       "stop, freeze, export, file written");
		}
		if (s->err && s->r.phase == BATON_PHASE_FAILED)
			out_str(&out, "start", "start it again", s->cmd.old_line);
		if (s->saved && !s->restored) {
			char restore[RESTORE_CMD_MAX];

			if (!restore_cmd(s, restore, sizeof(restore)))
				out_str(&out, "restore", "after the restart", restore);
		}
		out_obj_end(&out);
	}
	out_arr_end(&out);
	out_end(&out);
	fflush(stdout);
	fsync(STDOUT_FILENO);
}

int cmd_kexec(const struct ctl_opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "kernel", required_argument, NULL, 'k' },
		{ "initrd", required_argument, NULL, 'i' },
		{ "append", required_argument, NULL, 'a' },
		{ "dir", required_argument, NULL, 'd' },
		{ "timeout-ms", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct kexec_plan *p;
	unsigned int i;
	int c, err;

	p = calloc(1, sizeof(*p));
	if (!p) {
		fprintf(stderr, "batonctl: out of memory\n");
		return 1;
	}
	p->dir = KEXEC_DIR;
	p->json = o->json;
	optind = 0;
	while ((c = getopt_long(argc, argv, "jh", longopts, NULL)) != -1) {
		switch (c) {
		case 'k':
			p->kernel = optarg;
			break;
		case 'i':
			p->initrd = optarg;
			break;
		case 'a':
			p->append = optarg;
			break;
		case 'd':
			p->dir = optarg;
			break;
		case 't':
			p->timeout_ms = timeout_arg("timeout-ms", optarg);
			if (p->timeout_ms < 0)
				goto usage_error;
			break;
		case 'j':
			p->json = true;
			break;
		case 'h':
			kexec_usage(stdout);
			free(p);
			return 0;
		default:
			kexec_usage(stderr);
			goto usage_error;
		}
	}
	if (optind >= argc || !p->kernel) {
		fprintf(stderr, "batonctl: kexec needs one SERVICE or more and --kernel VMLINUZ\n"
			"  e.g.: batonctl kexec kvd --kernel /boot/vmlinuz-$(uname -r) --initrd /boot/initrd.img-$(uname -r)\n");
		goto usage_error;
	}
	if (argc - optind > KEXEC_MAX_SERVICES) {
		fprintf(stderr, "batonctl: kexec takes at most %d services\n",
			KEXEC_MAX_SERVICES);
		goto usage_error;
	}
	for (i = optind; i < (unsigned int)argc; i++) {
		char why[160];
		unsigned int k;

		if (baton_service_name_check(argv[i])) {
			service_name_bad(argv[i], why, sizeof(why));
			fprintf(stderr, "batonctl: %s\n", why);
			goto usage_error;
		}
		for (k = 0; k < p->n; k++)
			if (!strcmp(p->svc[k].name, argv[i])) {
				fprintf(stderr, "batonctl: %s is named twice\n",
					argv[i]);
				goto usage_error;
			}
		p->svc[p->n++].name = argv[i];
	}

	/* nothing changes until the kernel is loaded */
	err = dir_check(p) ?: cmdline_make(p) ?: services_lock(o, p) ?:
	      services_find(o, p) ?: kernel_load(p);
	for (i = 0; !err && i < p->n; i++)
		err = checkpoint_one(o, p, &p->svc[i]);
	if (!err) {
		report(p, 0);
		sync();
		reboot(RB_KEXEC);
		err = -errno;
		snprintf(p->why, sizeof(p->why), "the kernel did not restart: %s",
			 strerror(errno));
	}
	restore_saved(o, p);
	for (i = 0; i < p->n; i++)
		if (p->svc[i].journaled)
			journal_close(&p->svc[i].j);
	kernel_unload(p);
	report(p, err);
	if (!p->json)
		fprintf(stderr, "batonctl: %s\n", p->why[0] ? p->why : strerror(-err));
	free(p);
	return 1;

usage_error:
	free(p);
	return 2;
}
