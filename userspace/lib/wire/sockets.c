// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * SOCKETS messages: up to BATON_MAX_FDS_PER_MSG sockets, each described by a
 * BATON_A_SOCK nest (id, kind, addresses) in the order of the SCM_RIGHTS
 * descriptors that travel with it.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wire/wire.h"

/* The first sock_set a set has room for, and how it grows */
#define SOCK_SET_MIN	1024

static unsigned int sock_set_hash(struct sock_key k, unsigned int mask)
{
	__u64 h = (k.id ^ (__u64)k.kind << 61) * 0x9e3779b97f4a7c15ULL;

	return (h >> 32) & mask;
}

static void sock_set_put(struct sock_key *slot, unsigned int mask,
			 struct sock_key k)
{
	unsigned int i = sock_set_hash(k, mask);

	while (slot[i].kind)
		i = (i + 1) & mask;
	slot[i] = k;
}

bool sock_set_has(const struct sock_set *s, struct sock_key k)
{
	unsigned int mask = s->cap - 1, i;

	if (!s->cap)
		return false;
	for (i = sock_set_hash(k, mask); s->slot[i].kind; i = (i + 1) & mask)
		if (s->slot[i].id == k.id && s->slot[i].kind == k.kind)
			return true;
	return false;
}

/* Half full at most, so that a lookup ends at a free slot soon */
int sock_set_add(struct sock_set *s, struct sock_key k)
{
	struct sock_key *slot;
	unsigned int cap, i;

	if (!k.kind)
		return -EINVAL;
	if (sock_set_has(s, k))
		return 0;	/* there already */
	if (2 * (s->n + 1) > s->cap) {
		cap = s->cap ? 2 * s->cap : SOCK_SET_MIN;
		slot = calloc(cap, sizeof(*slot));
		if (!slot)
			return -ENOMEM;
		for (i = 0; i < s->cap; i++)
			if (s->slot[i].kind)
				sock_set_put(slot, cap - 1, s->slot[i]);
		free(s->slot);
		s->slot = slot;
		s->cap = cap;
	}
	sock_set_put(s->slot, s->cap - 1, k);
	s->n++;
	return 1;
}

void sock_set_free(struct sock_set *s)
{
	free(s->slot);
	memset(s, 0, sizeof(*s));
}

int sockets_put(struct baton_msg *m, const struct held_socket *s)
{
	const struct baton_sockinfo *si = &s->si;
	struct nlattr *nest;
	int err;

	nest = msg_nest_start(m, BATON_A_SOCK);
	if (!nest)
		return -EMSGSIZE;
	err = msg_put_u64(m, BATON_SOCK_A_ID, si->id) ?:
	      msg_put_u32(m, BATON_SOCK_A_KIND, si->kind);
	if (!err && si->local_len)
		err = msg_put(m, BATON_SOCK_A_LOCAL, si->local_len, &si->local);
	if (!err && si->peer_len)
		err = msg_put(m, BATON_SOCK_A_PEER, si->peer_len, &si->peer);
	if (err)
		return err;
	msg_nest_end(m, nest);
	return msg_add_fd(m, s->fd);
}

/* Fills in the addresses a SOCKETS entry did not carry. */
void sockets_addresses(struct held_socket *s)
{
	struct baton_sockinfo *si = &s->si;

	if (!si->local_len) {
		si->local_len = sizeof(si->local);
		if (getsockname(s->fd, (struct sockaddr *)&si->local,
				&si->local_len) < 0)
			si->local_len = 0;
	}
	if (si->kind == BATON_SOCK_CONN && !si->peer_len) {
		si->peer_len = sizeof(si->peer);
		/* a connection the client already closed has no peer */
		if (getpeername(s->fd, (struct sockaddr *)&si->peer,
				&si->peer_len) < 0)
			si->peer_len = 0;
	}
}

int sockets_listen_at(const struct sockaddr_storage *local, socklen_t len,
		      bool nonblock, bool freebind, int v6only, int *out)
{
	bool v6 = local->ss_family == AF_INET6;
	int fd, one = 1, err;

	fd = socket(local->ss_family, SOCK_STREAM | SOCK_CLOEXEC |
		    (nonblock ? SOCK_NONBLOCK : 0), 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    (freebind &&
	     setsockopt(fd, v6 ? IPPROTO_IPV6 : IPPROTO_IP,
			v6 ? IPV6_FREEBIND : IP_FREEBIND, &one, sizeof(one))) ||
	    (v6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only,
			      sizeof(v6only))) ||
	    bind(fd, (const struct sockaddr *)local, len) ||
	    listen(fd, SOMAXCONN)) {
		err = -errno;
		close(fd);
		return err;
	}
	*out = fd;
	return 0;
}

/* Sends n sockets in as many SOCKETS messages as it takes. */
int sockets_send(int sock, struct baton_msg *m, const struct held_socket *s,
		 unsigned int n)
{
	unsigned int i;
	int err;

	for (i = 0; i < n; i++) {
		if (i % BATON_MAX_FDS_PER_MSG == 0)
			msg_init(m, BATON_MSG_SOCKETS);
		err = sockets_put(m, &s[i]);
		if (err == -EMSGSIZE && m->nfds) {
			/* addresses larger than planned: flush and go on */
			err = msg_send(sock, m);
			m->nfds = 0;
			if (err)
				return err;
			msg_init(m, BATON_MSG_SOCKETS);
			err = sockets_put(m, &s[i]);
		}
		if (err)
			goto forget_fds;
		if (m->nfds == BATON_MAX_FDS_PER_MSG || i + 1 == n) {
			err = msg_send(sock, m);
			m->nfds = 0;	/* the descriptors are the caller's */
			if (err)
				return err;
		}
	}
	return 0;

forget_fds:
	m->nfds = 0;
	return err;
}

struct sock_ctx {
	struct baton_sockinfo *si;
	int err;
};

/* An address: a family at least, and no more than any address holds */
static int sockaddr_get(const struct nlattr *attr, struct sockaddr_storage *ss,
			socklen_t *len)
{
	size_t n = mnl_attr_get_payload_len(attr);

	if (n < sizeof(sa_family_t) || n > sizeof(*ss))
		return -EINVAL;
	memcpy(ss, mnl_attr_get_payload(attr), n);
	*len = n;
	return 0;
}

static int sock_attr_cb(const struct nlattr *attr, void *data)
{
	struct sock_ctx *ctx = data;
	struct baton_sockinfo *si = ctx->si;

	switch (mnl_attr_get_type(attr)) {
	case BATON_SOCK_A_ID:
		if (attr_check(attr, MNL_TYPE_U64))
			goto invalid;
		si->id = mnl_attr_get_u64(attr);
		break;
	case BATON_SOCK_A_KIND:
		if (attr_check(attr, MNL_TYPE_U32))
			goto invalid;
		si->kind = mnl_attr_get_u32(attr);
		if (si->kind != BATON_SOCK_LISTENER &&
		    si->kind != BATON_SOCK_CONN &&
		    si->kind != BATON_SOCK_CONTROL)
			goto invalid;
		break;
	case BATON_SOCK_A_LOCAL:
		if (sockaddr_get(attr, &si->local, &si->local_len))
			goto invalid;
		break;
	case BATON_SOCK_A_PEER:
		if (sockaddr_get(attr, &si->peer, &si->peer_len))
			goto invalid;
		break;
	default:
		break;		/* newer than us */
	}
	return MNL_CB_OK;
invalid:
	ctx->err = -EINVAL;
	return MNL_CB_ERROR;
}

static int sock_nest_cb(const struct nlattr *attr, void *data)
{
	struct {
		struct held_socket *out;
		unsigned int n, max;
		int err;
	} *ctx = data;
	struct sock_ctx sc;

	if (mnl_attr_get_type(attr) != BATON_A_SOCK)
		return MNL_CB_OK;
	if (ctx->n >= ctx->max) {
		ctx->err = -EBADMSG;	/* more entries than descriptors */
		return MNL_CB_ERROR;
	}
	memset(&ctx->out[ctx->n], 0, sizeof(ctx->out[ctx->n]));
	sc.si = &ctx->out[ctx->n].si;
	sc.err = 0;
	/* every attribute whole, and nothing after them */
	if (attrs_walk(mnl_attr_get_payload(attr),
		       mnl_attr_get_payload_len(attr), sock_attr_cb, &sc) ||
	    sc.err ||
	    !sc.si->id || !sc.si->kind) {
		ctx->err = sc.err ?: -EINVAL;
		return MNL_CB_ERROR;
	}
	ctx->n++;
	return MNL_CB_OK;
}

/*
 * Pairs the nests of a received SOCKETS message with its descriptors; on
 * success the descriptors move to out[] and belong to the caller.
 */
int sockets_parse(struct baton_msg *m, struct held_socket *out,
		  unsigned int *n)
{
	struct {
		struct held_socket *out;
		unsigned int n, max;
		int err;
	} ctx = { out, 0, m->nfds, 0 };
	unsigned int i;

	if (mnl_attr_parse(m->nlh, 0, sock_nest_cb, &ctx) < 0 || ctx.err)
		goto close_fds;
	if (ctx.n != m->nfds) {
		ctx.err = -EBADMSG;
		goto close_fds;
	}
	for (i = 0; i < ctx.n; i++)
		out[i].fd = m->fds[i];
	m->nfds = 0;
	*n = ctx.n;
	return 0;

close_fds:
	msg_close_fds(m);
	return ctx.err ?: -EINVAL;
}
