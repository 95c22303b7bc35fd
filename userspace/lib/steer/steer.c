// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Loading bpf/baton_steer.bpf.c (through its skeleton), pinning it under
 * <pin_root>/<service>/ so that batonctl can steer from another process,
 * attaching it to a listener group, and the map updates that steer.
 */
#include <errno.h>
#include <stddef.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "baton_steer.h"
#include "control/control.h"
#include "baton_steer.skel.h"

struct baton_steer {
	struct baton_log_sink log;
	struct baton_steer_bpf *skel;	/* when we loaded it; else pins */
	char dir[PATH_MAX / 2];
	int prog_fd, listeners_fd, conf_fd;
	unsigned int pinned;	/* bits of pin_names[] we pinned ourselves */
};

static const char *const pin_names[] = { "prog", "listeners", "conf" };

static int pin_path(char *buf, size_t len, const struct baton_steer *st,
		    const char *name)
{
	return (size_t)snprintf(buf, len, "%s/%s", st->dir, name) >= len ?
	       -ENAMETOOLONG : 0;
}

/* Another process loaded and pinned it: take its program and maps. */
static int reopen_pins(struct baton_steer *st)
{
	char path[PATH_MAX];
	int err;

	err = pin_path(path, sizeof(path), st, "prog");
	if (err)
		return err;
	st->prog_fd = bpf_obj_get(path);
	if (st->prog_fd < 0)
		return -errno;
	pin_path(path, sizeof(path), st, "listeners");
	st->listeners_fd = bpf_obj_get(path);
	pin_path(path, sizeof(path), st, "conf");
	st->conf_fd = bpf_obj_get(path);
	if (st->listeners_fd < 0 || st->conf_fd < 0) {
		pr_err(&st->log, "%s holds a program but not its maps; remove it and try again",
		       st->dir);
		return -ENOENT;
	}
	return 0;
}

/*
 * Why the kernel refused the program, asked of the kernel itself: a program
 * of three instructions that only reads md->migrating_sk, which kernels
 * without BPF_SK_REUSEPORT_SELECT_OR_MIGRATE (before 5.14) refuse. 1 if it
 * is refused as well (the kernel cannot migrate), 0 if not.
 */
static int cannot_migrate(void)
{
	const struct bpf_insn probe[] = {
		{ .code = BPF_LDX | BPF_MEM | BPF_DW, .dst_reg = BPF_REG_2,
		  .src_reg = BPF_REG_1,
		  .off = offsetof(struct sk_reuseport_md, migrating_sk) },
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0,
		  .imm = SK_PASS },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	LIBBPF_OPTS(bpf_prog_load_opts, opts,
		.expected_attach_type = BPF_SK_REUSEPORT_SELECT_OR_MIGRATE);
	int fd;

	fd = bpf_prog_load(BPF_PROG_TYPE_SK_REUSEPORT, NULL, "GPL", probe,
			   ARRAY_SIZE(probe), &opts);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	/* not allowed to load at all is another story */
	return errno == EINVAL || errno == EACCES;
}

static int load_and_pin(struct baton_steer *st)
{
	char path[PATH_MAX];
	int err;

	st->skel = baton_steer_bpf__open();
	if (!st->skel) {
		pr_err(&st->log, "cannot open the steering program: %s",
		       strerror(errno));
		return -errno ?: -EINVAL;
	}
	err = baton_steer_bpf__load(st->skel);
	if (err && cannot_migrate()) {
		pr_err(&st->log, "this kernel cannot migrate accept queues: steering needs BPF_SK_REUSEPORT_SELECT_OR_MIGRATE (Linux 5.14 or newer); upgrade without --listeners own");
		return -EOPNOTSUPP;
	}
	if (err) {
		/* it can migrate (the probe loaded): not a matter of version */
		pr_err(&st->log, "the kernel refused the steering program (%s): loading it needs CAP_BPF or root, and no LSM or seccomp policy against BPF",
		       strerror(-err));
		return err;
	}
	st->prog_fd = bpf_program__fd(st->skel->progs.baton_steer);
	st->listeners_fd = bpf_map__fd(st->skel->maps.steer_listeners);
	st->conf_fd = bpf_map__fd(st->skel->maps.steer_conf);
	err = mkdir_p(st->dir, 0700);
	if (err) {
		pr_err(&st->log, "cannot create %s (is bpffs mounted on /sys/fs/bpf?): %s",
		       st->dir, strerror(-err));
		return err;
	}
	err = pin_path(path, sizeof(path), st, pin_names[0]) ?:
	      bpf_program__pin(st->skel->progs.baton_steer, path);
	st->pinned |= !err;
	if (!err) {
		pin_path(path, sizeof(path), st, pin_names[1]);
		err = bpf_map__pin(st->skel->maps.steer_listeners, path);
		st->pinned |= !err << 1;
	}
	if (!err) {
		pin_path(path, sizeof(path), st, pin_names[2]);
		err = bpf_map__pin(st->skel->maps.steer_conf, path);
		st->pinned |= !err << 2;
	}
	if (err)
		pr_err(&st->log, "cannot pin the steering program under %s: %s",
		       st->dir, strerror(-err));
	return err;
}

/*
 * What a failed open pinned, and nothing else: another process's pins of
 * the same name (it pinned first, or is pinning now) stay
 */
static void unpin_ours(struct baton_steer *st)
{
	char path[PATH_MAX];
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(pin_names); i++)
		if ((st->pinned & 1u << i) &&
		    !pin_path(path, sizeof(path), st, pin_names[i]))
			unlink(path);
	if (st->pinned)
		rmdir(st->dir);		/* if it is empty now */
	st->pinned = 0;
}

int baton_steer_open(struct baton_steer **out, const struct baton_steer_opts *o)
{
	struct baton_paths paths;
	struct baton_steer *st;
	int err;

	const char *root;

	if (!o || paths_init(&paths, NULL, o->service) ||
	    (o->flags & ~BATON_STEER_F_EXISTING))
		return -EINVAL;
	root = o->pin_root ?: getenv("BATON_PIN_ROOT");
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->log.fn = o->log;
	st->log.ctx = o->log_ctx;
	st->prog_fd = st->listeners_fd = st->conf_fd = -1;
	if ((size_t)snprintf(st->dir, sizeof(st->dir), "%s/%s",
			     root && *root ? root : BATON_STEER_PIN_ROOT,
			     o->service) >= sizeof(st->dir)) {
		err = -ENAMETOOLONG;
		goto close_st;
	}
	err = reopen_pins(st);
	if (err == -ENOENT && st->prog_fd < 0) {
		if (o->flags & BATON_STEER_F_EXISTING)
			pr_err(&st->log, "no steering program is pinned for %s under %s",
			       o->service, st->dir);
		else
			err = load_and_pin(st);
	}
	if (err)
		goto close_st;
	*out = st;
	return 0;

close_st:
	unpin_ours(st);
	baton_steer_close(st);
	return err;
}

static int netns_cookie(int fd, __u64 *cookie)
{
	socklen_t len = sizeof(*cookie);

	return getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, cookie, &len) < 0 ?
	       -errno : 0;
}

/* Ours: in our network namespace, and made by our user. */
static int check_owner(struct baton_steer *st, int fd)
{
	__u64 theirs, ours;
	struct stat sb;
	int probe, err;

	if (fstat(fd, &sb) < 0)
		return -errno;
	if (sb.st_uid != geteuid()) {
		pr_err(&st->log, "fd %d belongs to uid %u, not to uid %u: refused",
		       fd, sb.st_uid, geteuid());
		return -EPERM;
	}
	probe = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (probe < 0)
		return -errno;
	err = netns_cookie(fd, &theirs) ?: netns_cookie(probe, &ours);
	close(probe);
	if (!err && theirs != ours) {
		pr_err(&st->log, "fd %d is in another network namespace: refused",
		       fd);
		return -EXDEV;
	}
	return err;
}

/* A TCP listener with SO_REUSEPORT, ours, or an error and why. */
static int check_listener(struct baton_steer *st, int fd)
{
	int v = 0, proto = 0, reuse = 0;
	socklen_t len = sizeof(v);

	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) < 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) < 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &reuse, &len) < 0) {
		pr_err(&st->log, "fd %d is not a socket", fd);
		return -ENOTSOCK;
	}
	if (!v || proto != IPPROTO_TCP || !reuse) {
		pr_err(&st->log, "fd %d is not a listening TCP socket with SO_REUSEPORT",
		       fd);
		return -EINVAL;
	}
	return check_owner(st, fd);
}

int baton_steer_attach(struct baton_steer *st, int fd)
{
	int err = check_listener(st, fd);

	if (err)
		return err;
	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_EBPF, &st->prog_fd,
		       sizeof(st->prog_fd)) < 0) {
		err = -errno;
		pr_err(&st->log, "cannot attach the steering program to fd %d: %s",
		       fd, strerror(errno));
	}
	return err;
}

int baton_steer_set_listener(struct baton_steer *st, __u32 gen, int fd)
{
	__u64 value = fd;
	int err;

	if (gen >= BATON_STEER_MAX_GEN) {
		pr_err(&st->log, "generation %u: there are %u slots, 0 to %u",
		       gen, BATON_STEER_MAX_GEN, BATON_STEER_MAX_GEN - 1);
		return -ERANGE;
	}
	err = check_listener(st, fd);
	if (err)
		return err;
	if (bpf_map_update_elem(st->listeners_fd, &gen, &value, BPF_ANY) < 0) {
		err = -errno;
		if (err == -EBUSY)
			pr_err(&st->log, "cannot steer to fd %d in generation %u: it is in the map already, in another generation's slot",
			       fd, gen);
		else if (err == -EINVAL)
			pr_err(&st->log, "cannot steer to fd %d in generation %u: it is not a listening TCP socket with SO_REUSEPORT (closed meanwhile?), or not in the group the program is attached to",
			       fd, gen);
		else
			pr_err(&st->log, "cannot steer to fd %d in generation %u: %s",
			       fd, gen, strerror(-err));
	}
	return err;
}

int baton_steer_set(struct baton_steer *st, __u32 active, __u32 canary,
		    __u32 share)
{
	struct baton_steer_conf conf = {
		.active = active, .canary = canary, .canary_share = share,
	};
	__u32 zero = 0;

	if (active >= BATON_STEER_MAX_GEN || canary >= BATON_STEER_MAX_GEN ||
	    share > BATON_STEER_SCALE) {
		pr_err(&st->log, "generations are 0 to %u and a share 0 to 100%%",
		       BATON_STEER_MAX_GEN - 1);
		return -ERANGE;
	}
	/* one update: every new flow sees either the old or the new setting */
	if (bpf_map_update_elem(st->conf_fd, &zero, &conf, BPF_ANY) < 0)
		return -errno;
	return 0;
}

int baton_steer_get(struct baton_steer *st, __u32 *active, __u32 *canary,
		    __u32 *share)
{
	struct baton_steer_conf conf;
	__u32 zero = 0;

	if (bpf_map_lookup_elem(st->conf_fd, &zero, &conf) < 0)
		return -errno;
	*active = conf.active;
	*canary = conf.canary;
	*share = conf.canary_share;
	return 0;
}

int baton_steer_has_listener(struct baton_steer *st, __u32 gen)
{
	__u64 cookie;

	if (gen >= BATON_STEER_MAX_GEN)
		return -ERANGE;
	if (bpf_map_lookup_elem(st->listeners_fd, &gen, &cookie) == 0)
		return 1;
	return errno == ENOENT ? 0 : -errno;
}

int baton_steer_unpin(struct baton_steer *st)
{
	char path[PATH_MAX];
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(pin_names); i++)
		if (!pin_path(path, sizeof(path), st, pin_names[i]))
			unlink(path);
	return rmdir(st->dir) < 0 && errno != ENOENT ? -errno : 0;
}

void baton_steer_close(struct baton_steer *st)
{
	if (!st)
		return;
	if (st->skel) {
		baton_steer_bpf__destroy(st->skel);
	} else {
		if (st->prog_fd >= 0)
			close(st->prog_fd);
		if (st->listeners_fd >= 0)
			close(st->listeners_fd);
		if (st->conf_fd >= 0)
			close(st->conf_fd);
	}
	free(st);
}
