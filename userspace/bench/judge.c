// SPDX-License-Identifier: GPL-2.0-only
/*
 * The judge's arithmetic: latency histograms, and which requests overlapped
 * an upgrade (a stall) and which did not (the reference).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

static unsigned int bin_of(__u64 us)
{
	if (us < (__u64)FINE_BINS * FINE_US)
		return us / FINE_US;
	us /= 1000;			/* ms */
	if (us - 100 < COARSE_BINS)
		return FINE_BINS + (us - 100);
	return HIST_BINS - 1;
}

static double bin_ms(unsigned int b)
{
	if (b < FINE_BINS)
		return (b + 1) * FINE_US / 1000.0;
	return 100 + (b - FINE_BINS) + 1;
}

void hist_add(struct hist *h, __u64 us)
{
	h->bin[bin_of(us)]++;
	h->n++;
	if (us > h->max_us)
		h->max_us = us;
}

void hist_merge(struct hist *into, const struct hist *h)
{
	unsigned int i;

	for (i = 0; i < HIST_BINS; i++)
		into->bin[i] += h->bin[i];
	into->n += h->n;
	if (h->max_us > into->max_us)
		into->max_us = h->max_us;
}

/*
 * The upper edge of the bin holding the pct-th percentile (nearest rank:
 * the ceil(n * pct / 100)-th value), in ms; in the last bin, which holds
 * everything from 10 s up, the maximum is its edge.
 */
double hist_pct_ms(const struct hist *h, double pct)
{
	__u64 rank = (__u64)ceil(h->n * pct / 100.0), seen = 0;
	unsigned int i;

	if (!h->n)
		return 0;
	if (!rank)
		rank = 1;
	for (i = 0; i < HIST_BINS - 1; i++) {
		seen += h->bin[i];
		if (seen >= rank) {
			double ms = bin_ms(i);

			return ms < h->max_us / 1000.0 ? ms : h->max_us / 1000.0;
		}
	}
	return h->max_us / 1000.0;
}

int samples_add(struct samples *s, __u64 start, __u64 end)
{
	if (s->n + 2 > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 1 << 16;
		__u64 *v = realloc(s->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = start;
	s->v[s->n++] = end;
	return 0;
}

/* Each request lands in the reference, or in the stall of its upgrade. */
void samples_judge(const struct samples *s, const struct shared *sh,
		   struct worker_result *r)
{
	size_t i;

	for (i = 0; i < s->n; i += 2) {
		__u64 start = s->v[i], end = s->v[i + 1];
		__u64 us = (end - start) / 1000;
		unsigned int u;
		bool overlap = false;

		for (u = 0; u < sh->nwindows; u++) {
			const struct window *w = &sh->windows[u];

			if (start < w->end_ns && end > w->start_ns) {
				overlap = true;
				if (us > r->stall_max_us[u])
					r->stall_max_us[u] = us;
			}
		}
		hist_add(overlap ? &r->stall : &r->normal, us);
	}
}
