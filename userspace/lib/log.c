// SPDX-License-Identifier: LGPL-2.1-or-later
/* The library never prints: every message goes to the caller's callback. */
#include <stdio.h>

#include "internal.h"

void baton_logf(const struct baton_log_sink *log, enum baton_log_level level,
		const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	if (!log || !log->fn)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log->fn(log->ctx, level, buf);
}
