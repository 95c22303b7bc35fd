/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the harnesses share: CHECK(), which says which invariant broke and
 * aborts (libFuzzer keeps the input), and the test for -errno.
 */
#ifndef BATON_FUZZ_H
#define BATON_FUZZ_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)							\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "%s:%d: %s: check failed: %s\n",	\
				__FILE__, __LINE__, __func__, #cond);	\
			abort();					\
		}							\
	} while (0)

/* 0 or a negative errno, as every library function returns */
static inline int is_ret(int err)
{
	return err <= 0 && err > -4096;
}

#endif /* BATON_FUZZ_H */
