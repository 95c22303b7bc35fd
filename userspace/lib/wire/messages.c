// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The protocol's messages that more than one place sends or reads, each
 * built by one function and read by one: HELLO, WELCOME and INFO, ERROR,
 * the replies to a request, and the messages that say nothing but their
 * type and flags. The versions a peer speaks and writes travel in HELLO
 * and WELCOME.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "wire/wire.h"

void versions_of(const struct nlattr **tb, struct versions *v)
{
	v->proto = attr_u32(tb, BATON_A_PROTO, 0);
	v->proto_min = attr_u32(tb, BATON_A_PROTO_MIN, v->proto);
	v->state = attr_u32(tb, BATON_A_STATE_VERSION, 0);
	v->compat = attr_u32(tb, BATON_A_STATE_COMPAT, v->state);
	v->min = attr_u32(tb, BATON_A_STATE_MIN, v->state);
}

int versions_put(struct baton_msg *m, const struct versions *v)
{
	return msg_put_u32(m, BATON_A_PROTO, v->proto) ?:
	       msg_put_u32(m, BATON_A_PROTO_MIN, v->proto_min) ?:
	       msg_put_u32(m, BATON_A_STATE_VERSION, v->state) ?:
	       msg_put_u32(m, BATON_A_STATE_COMPAT, v->compat) ?:
	       msg_put_u32(m, BATON_A_STATE_MIN, v->min);
}

/*
 * Can the reader read what the writer writes? The writer says which state
 * version it writes and the oldest reader that reads it; the reader says
 * which version it is and the oldest writer it reads.
 */
int versions_check(const struct versions *w, const struct versions *r,
		   char *why, size_t len)
{
	if (!w->proto || !r->proto || w->proto < r->proto_min ||
	    r->proto < w->proto_min) {
		snprintf(why, len,
			 "protocols %u (oldest %u) and %u (oldest %u) have no version in common",
			 w->proto, w->proto_min, r->proto, r->proto_min);
		return -EPROTONOSUPPORT;
	}
	if (!w->state || w->state < r->min) {
		snprintf(why, len,
			 "state version %u is older than %u, the oldest the new instance reads",
			 w->state, r->min);
		return -EPROTONOSUPPORT;
	}
	if (w->compat > r->state) {
		snprintf(why, len,
			 "state version %u needs a reader of version %u or newer; the new instance is %u",
			 w->state, w->compat, r->state);
		return -EPROTONOSUPPORT;
	}
	return 0;
}

int msg_send_error(int sock, struct baton_msg *m, int err,
		   const char *fmt, ...)
{
	char text[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	msg_close_fds(m);
	msg_init(m, BATON_MSG_ERROR);
	if (msg_put_u32(m, BATON_A_ERRNO, err < 0 ? -err : err) ||
	    msg_put_str(m, BATON_A_TEXT, text))
		return -EMSGSIZE;
	return msg_send(sock, m);
}

/* For a received ERROR: its text, and the errno it carries as -errno. */
int msg_error_text(const struct nlattr **tb, char *buf, size_t len)
{
	__u32 e = attr_u32(tb, BATON_A_ERRNO, EPROTO);

	snprintf(buf, len, "%s", attr_str(tb, BATON_A_TEXT, strerror(e)));
	return e && e < 4096 ? -(int)e : -EPROTO;
}

/* HELLO: the first message of every peer of a serving instance. */
int hello_put(struct baton_msg *m, const struct hello *h)
{
	int err;

	msg_init(m, BATON_MSG_HELLO);
	err = msg_put_u32(m, BATON_A_ROLE, h->role);
	if (!err && h->pid)
		err = msg_put_u32(m, BATON_A_PID, h->pid);
	if (!err && h->app)
		err = msg_put_str(m, BATON_A_APP, h->app);
	if (!err && h->timeout_ms)
		err = msg_put_u32(m, BATON_A_TIMEOUT_MS, h->timeout_ms);
	if (!err && h->takes)
		err = msg_put_u32(m, BATON_A_TAKES, h->takes);
	if (!err)
		err = h->ver.state ? versions_put(m, &h->ver) :
		      msg_put_u32(m, BATON_A_PROTO, h->ver.proto);
	return err;
}

/* -EPROTO unless m is a well-formed HELLO that says its role. */
int hello_get(const struct baton_msg *m, const struct nlattr **tb,
	      struct hello *h)
{
	if (m->nlh->nlmsg_type != BATON_MSG_HELLO || msg_parse(m, tb) ||
	    !tb[BATON_A_ROLE])
		return -EPROTO;
	h->role = mnl_attr_get_u32(tb[BATON_A_ROLE]);
	h->pid = attr_u32(tb, BATON_A_PID, 0);
	h->app = attr_str(tb, BATON_A_APP, "?");
	h->timeout_ms = attr_u32(tb, BATON_A_TIMEOUT_MS, 0);
	h->takes = attr_u32(tb, BATON_A_TAKES, 0);
	versions_of(tb, &h->ver);
	return 0;
}

/* WELCOME, to a coordinator or a new instance, and INFO, to a query. */
int welcome_put(struct baton_msg *m, __u16 type, const struct welcome *w)
{
	int err;

	msg_init(m, type);
	err = msg_put_u32(m, BATON_A_PID, w->pid) ?:
	      msg_put_str(m, BATON_A_SERVICE, w->service) ?:
	      msg_put_str(m, BATON_A_APP, w->app);
	if (!err && w->time_ns)
		err = msg_put_u64(m, BATON_A_TIME_NS, w->time_ns);
	return err ?: versions_put(m, &w->ver);
}

void welcome_get(const struct nlattr **tb, struct welcome *w)
{
	w->pid = attr_u32(tb, BATON_A_PID, 0);
	w->service = attr_str(tb, BATON_A_SERVICE, "?");
	w->app = attr_str(tb, BATON_A_APP, "?");
	w->time_ns = attr_u64(tb, BATON_A_TIME_NS, 0);
	versions_of(tb, &w->ver);
}

/*
 * The answer to a request: 0 if it is the message wanted, parsed into
 * r->tb. Otherwise -errno, and r->how says why: nothing (whole) came, the
 * peer refused with an ERROR (its errno; its text in r->text), or it sent
 * another message (-EPROTO; its name in r->text).
 */
int msg_reply(int sock, struct baton_msg *m, int timeout_ms, __u16 want,
	      struct reply *r)
{
	int err;

	r->how = REPLY_NONE;
	r->text[0] = '\0';
	err = msg_read(sock, m, timeout_ms, r->tb);
	if (err)
		return err;
	msg_close_fds(m);	/* an answer carries none */
	if (m->nlh->nlmsg_type == want) {
		r->how = REPLY_WANTED;
		return 0;
	}
	if (m->nlh->nlmsg_type == BATON_MSG_ERROR) {
		r->how = REPLY_ERROR;
		return msg_error_text(r->tb, r->text, sizeof(r->text));
	}
	r->how = REPLY_OTHER;
	snprintf(r->text, sizeof(r->text), "%s",
		 msg_type_name(m->nlh->nlmsg_type));
	return -EPROTO;
}

/* A message that says nothing but its type, and its flags if any. */
int msg_send_simple(int sock, struct baton_msg *m, __u16 type, __u32 flags)
{
	msg_init(m, type);
	return (flags ? msg_put_u32(m, BATON_A_FLAGS, flags) : 0) ?:
	       msg_send(sock, m);
}

void steps_begin(struct steps *st)
{
	st->n = 0;
	st->last_ns = now_ns();
}

/*
 * The time since the last mark, as the step name. The steps stay end to
 * end, so that the coordinator can place them in time: a step of the same
 * name as the last is added to it (a record blob sent in parts), and once
 * the list is full the last one takes the rest.
 */
void steps_mark(struct steps *st, const char *name)
{
	__u64 now = now_ns();
	struct baton_step *last = st->n ? &st->s[st->n - 1] : NULL;

	if (!last || (st->n < BATON_MAX_STEPS && strcmp(last->name, name))) {
		last = &st->s[st->n++];
		snprintf(last->name, sizeof(last->name), "%s", name);
		last->ns = 0;
	}
	last->ns += now - st->last_ns;
	st->last_ns = now;
}

int steps_put(struct baton_msg *m, const struct steps *st)
{
	unsigned int i;
	int err = 0;

	for (i = 0; i < st->n && !err; i++) {
		struct nlattr *nest = msg_nest_start(m, BATON_A_STEP);

		if (!nest)
			return -EMSGSIZE;
		err = msg_put_str(m, BATON_STEP_A_NAME, st->s[i].name) ?:
		      msg_put_u64(m, BATON_STEP_A_NS, st->s[i].ns);
		msg_nest_end(m, nest);
	}
	return err;
}

struct step_ctx {
	struct baton_step *step;
	bool named, timed;
};

static int step_attr_cb(const struct nlattr *attr, void *data)
{
	struct step_ctx *ctx = data;

	switch (mnl_attr_get_type(attr)) {
	case BATON_STEP_A_NAME:
		if (attr_check(attr, MNL_TYPE_NUL_STRING))
			return MNL_CB_ERROR;
		snprintf(ctx->step->name, sizeof(ctx->step->name), "%s",
			 mnl_attr_get_str(attr));
		ctx->named = true;
		break;
	case BATON_STEP_A_NS:
		if (attr_check(attr, MNL_TYPE_U64))
			return MNL_CB_ERROR;
		ctx->step->ns = mnl_attr_get_u64(attr);
		ctx->timed = true;
		break;
	}
	return MNL_CB_OK;	/* newer than us: skipped */
}

/* A malformed step is left out: the steps are for people, not the protocol */
void steps_get(const struct baton_msg *m, const char *who,
	       struct baton_step *out, unsigned int *n)
{
	const struct nlattr *attr;

	mnl_attr_for_each(attr, m->nlh, 0) {
		struct step_ctx ctx = { .step = &out[*n] };

		if (*n >= BATON_MAX_STEPS)
			return;
		if (mnl_attr_get_type(attr) != BATON_A_STEP)
			continue;
		memset(ctx.step, 0, sizeof(*ctx.step));
		if (mnl_attr_parse_nested(attr, step_attr_cb, &ctx) < 0 ||
		    !ctx.named || !ctx.timed)
			continue;
		snprintf(ctx.step->who, sizeof(ctx.step->who), "%s", who);
		(*n)++;
	}
}

int rounds_put(struct baton_msg *m, const struct rounds *rs)
{
	unsigned int i;
	int err = 0;

	for (i = 0; i < rs->n && !err; i++) {
		struct nlattr *nest = msg_nest_start(m, BATON_A_ROUND);

		if (!nest)
			return -EMSGSIZE;
		err = msg_put_u32(m, BATON_ROUND_A_RECORDS, rs->r[i].records) ?:
		      msg_put_u64(m, BATON_ROUND_A_BYTES, rs->r[i].bytes) ?:
		      msg_put_u64(m, BATON_ROUND_A_NS, rs->r[i].ns);
		msg_nest_end(m, nest);
	}
	return err ?: (rs->end ? msg_put_u32(m, BATON_A_PRECOPY_END, rs->end) : 0);
}

static int round_attr_cb(const struct nlattr *attr, void *data)
{
	struct baton_round *r = data;

	switch (mnl_attr_get_type(attr)) {
	case BATON_ROUND_A_RECORDS:
		if (attr_check(attr, MNL_TYPE_U32))
			return MNL_CB_ERROR;
		r->records = mnl_attr_get_u32(attr);
		break;
	case BATON_ROUND_A_BYTES:
		if (attr_check(attr, MNL_TYPE_U64))
			return MNL_CB_ERROR;
		r->bytes = mnl_attr_get_u64(attr);
		break;
	case BATON_ROUND_A_NS:
		if (attr_check(attr, MNL_TYPE_U64))
			return MNL_CB_ERROR;
		r->ns = mnl_attr_get_u64(attr);
		break;
	}
	return MNL_CB_OK;	/* newer than us: skipped */
}

void rounds_get(const struct baton_msg *m, const struct nlattr **tb,
		struct rounds *rs)
{
	const struct nlattr *attr;

	rs->n = 0;
	rs->end = attr_u32(tb, BATON_A_PRECOPY_END, 0);
	mnl_attr_for_each(attr, m->nlh, 0) {
		struct baton_round *r = &rs->r[rs->n];

		if (rs->n >= BATON_MAX_ROUNDS)
			return;
		if (mnl_attr_get_type(attr) != BATON_A_ROUND)
			continue;
		memset(r, 0, sizeof(*r));
		if (mnl_attr_parse_nested(attr, round_attr_cb, r) < 0)
			continue;
		rs->n++;
	}
}
