/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Growable byte buffers, for the examples' requests and replies: bytes are
 * appended at the end and consumed from the front.
 */
#ifndef BATON_EXAMPLES_BUF_H
#define BATON_EXAMPLES_BUF_H

#include <stddef.h>

struct buf {
	char *data;
	size_t off;		/* consumed from the front */
	size_t len;		/* valid bytes from data[0] */
	size_t cap;
};

int buf_append(struct buf *b, const void *p, size_t n);
int buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void buf_consume(struct buf *b, size_t n);
void buf_free(struct buf *b);
static inline size_t buf_pending(const struct buf *b)
{
	return b->len - b->off;
}

#endif /* BATON_EXAMPLES_BUF_H */
