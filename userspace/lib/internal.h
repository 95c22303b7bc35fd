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

#endif /* BATON_INTERNAL_H */
