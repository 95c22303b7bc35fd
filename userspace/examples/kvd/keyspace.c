// SPDX-License-Identifier: GPL-2.0-only
/* The keyspace: kvd's service-wide state, a chained hash table. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kvd.h"

static size_t hash(const char *k, size_t n)
{
	size_t h = 1469598103934665603ULL;	/* FNV-1a */

	while (n--)
		h = (h ^ (unsigned char)*k++) * 1099511628211ULL;
	return h;
}

int ks_init(struct keyspace *ks)
{
	memset(ks, 0, sizeof(*ks));
	ks->size = 1024;
	ks->tab = calloc(ks->size, sizeof(*ks->tab));
	return ks->tab ? 0 : -ENOMEM;
}

void ks_free(struct keyspace *ks)
{
	size_t i;

	for (i = 0; i < ks->size; i++) {
		struct kv_entry *e = ks->tab[i], *n;

		for (; e; e = n) {
			n = e->next;
			free(e->key);
			free(e->val);
			free(e);
		}
	}
	free(ks->tab);
	buf_free(&ks->dirty);
}

static struct kv_entry **slot(struct keyspace *ks, const char *k, size_t kl)
{
	struct kv_entry **p = &ks->tab[hash(k, kl) & (ks->size - 1)];

	while (*p && ((*p)->klen != kl || memcmp((*p)->key, k, kl)))
		p = &(*p)->next;
	return p;
}

struct kv_entry *ks_get(struct keyspace *ks, const char *k, size_t kl)
{
	return *slot(ks, k, kl);
}

static void grow(struct keyspace *ks)
{
	size_t size = ks->size * 2, i;
	struct kv_entry **tab = calloc(size, sizeof(*tab));

	if (!tab)
		return;		/* slower, still correct */
	for (i = 0; i < ks->size; i++) {
		struct kv_entry *e = ks->tab[i], *n;

		for (; e; e = n) {
			size_t h = hash(e->key, e->klen) & (size - 1);

			n = e->next;
			e->next = tab[h];
			tab[h] = e;
		}
	}
	free(ks->tab);
	ks->tab = tab;
	ks->size = size;
}

/*
 * A key changed: logged once a round (an entry marked with the round's
 * generation is in the log already); a deleted key, each time.
 */
static void mark_dirty(struct keyspace *ks, struct kv_entry *e, const char *k,
		       size_t kl)
{
	__u32 n = kl;

	if (!ks->tracking || (e && e->dirty_gen == ks->gen))
		return;
	if (e)
		e->dirty_gen = ks->gen;
	/* a short delta would lose writes: the handover must fail instead */
	if (buf_append(&ks->dirty, &n, sizeof(n)) ||
	    buf_append(&ks->dirty, k, kl))
		ks->dirty_lost = true;
}

int ks_set(struct keyspace *ks, const char *k, size_t kl, const char *v,
	   size_t vl)
{
	struct kv_entry **p = slot(ks, k, kl), *e = *p;
	char *nv = malloc(vl + 1);

	if (!nv)
		return -ENOMEM;
	memcpy(nv, v, vl);
	nv[vl] = '\0';
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (!e || !(e->key = malloc(kl + 1))) {
			free(e);
			free(nv);
			return -ENOMEM;
		}
		memcpy(e->key, k, kl);
		e->key[kl] = '\0';
		e->klen = kl;
		*p = e;
		/* a snapshot walks the buckets: keep them where they are */
		if (++ks->count > ks->size && !ks->tracking)
			grow(ks);
	} else {
		free(e->val);
	}
	e->val = nv;
	e->vlen = vl;
	mark_dirty(ks, e, k, kl);
	return 0;
}

bool ks_del(struct keyspace *ks, const char *k, size_t kl)
{
	struct kv_entry **p = slot(ks, k, kl), *e = *p;

	if (!e)
		return false;
	*p = e->next;
	free(e->key);
	free(e->val);
	free(e);
	ks->count--;
	mark_dirty(ks, NULL, k, kl);
	return true;
}

void ks_track(struct keyspace *ks, bool on)
{
	ks->tracking = on;
	ks->gen++;		/* no entry is in the new log yet */
	ks->dirty_lost = false;
	ks->dirty.off = ks->dirty.len = 0;
}

/*
 * A round of phase 1 begins: the changes logged so far move to *round (its
 * old contents dropped), and a new log starts empty.
 */
void ks_take_dirty(struct keyspace *ks, struct buf *round)
{
	struct buf t = *round;

	*round = ks->dirty;
	ks->dirty = t;
	ks->dirty.off = ks->dirty.len = 0;
	ks->gen++;
}
