/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Shared between libbaton's files; not installed. */
#ifndef BATON_INTERNAL_H
#define BATON_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <limits.h>
#include <time.h>

#include "baton.h"

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#endif

/* log.c */
struct baton_log_sink {
	baton_log_fn fn;
	void *ctx;
};

void baton_logf(const struct baton_log_sink *log, enum baton_log_level level,
		const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#define pr_err(l, ...)	 baton_logf(l, BATON_LOG_ERR, __VA_ARGS__)
#define pr_warn(l, ...)	 baton_logf(l, BATON_LOG_WARN, __VA_ARGS__)
#define pr_info(l, ...)	 baton_logf(l, BATON_LOG_INFO, __VA_ARGS__)
#define pr_debug(l, ...) baton_logf(l, BATON_LOG_DEBUG, __VA_ARGS__)

static inline __u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

struct baton_msg;
struct nlattr;

/* control.c: the well-known socket, peers, single-access resources */
struct baton_paths {
	char dir[PATH_MAX / 2];
	char sock[PATH_MAX];
	char lock[PATH_MAX];
	char pid[PATH_MAX];
};

int paths_init(struct baton_paths *p, const char *run_dir,
	       const char *service);
int mkdir_p(const char *dir, mode_t mode);
int ctl_listen(const char *path);
int ctl_connect(const char *path);
int ctl_peer_check(int sock, struct ucred *cred);
int ctl_set_timeout(int sock, int timeout_ms);
int lock_acquire(const char *path);
int pidfile_write(const char *path);
struct versions {
	__u32 proto, proto_min;		/* protocol spoken, oldest spoken */
	__u32 state, compat, min;	/* state written, oldest reader, oldest read */
};

void versions_of(const struct nlattr **tb, struct versions *v);
int versions_put(struct baton_msg *m, const struct versions *v);
int versions_check(const struct versions *writer, const struct versions *reader,
		   char *why, size_t len);

#endif /* BATON_INTERNAL_H */
