// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The protocol's attributes (enum baton_attr): one table of their types,
 * for control messages and the frames of record blobs alike, the checks
 * every received attribute passes before anything reads it, and the
 * names of the messages, for people.
 */
#include <errno.h>
#include <string.h>

#include "wire/wire.h"

struct attr_policy {
	enum mnl_attr_data_type type;
};

static const struct attr_policy baton_policy[BATON_A_MAX + 1] = {
	[BATON_A_PROTO]		= { MNL_TYPE_U32 },
	[BATON_A_PROTO_MIN]	= { MNL_TYPE_U32 },
	[BATON_A_ROLE]		= { MNL_TYPE_U32 },
	[BATON_A_PID]		= { MNL_TYPE_U32 },
	[BATON_A_SERVICE]	= { MNL_TYPE_NUL_STRING },
	[BATON_A_APP]		= { MNL_TYPE_NUL_STRING },
	[BATON_A_STATE_VERSION]	= { MNL_TYPE_U32 },
	[BATON_A_STATE_COMPAT]	= { MNL_TYPE_U32 },
	[BATON_A_STATE_MIN]	= { MNL_TYPE_U32 },
	[BATON_A_ERRNO]		= { MNL_TYPE_U32 },
	[BATON_A_TEXT]		= { MNL_TYPE_NUL_STRING },
	[BATON_A_FLAGS]		= { MNL_TYPE_U32 },
	[BATON_A_SOCK]		= { MNL_TYPE_NESTED },
	[BATON_A_BLOB_KIND]	= { MNL_TYPE_U32 },
	[BATON_A_LISTENERS]	= { MNL_TYPE_U32 },
	[BATON_A_CONNS]		= { MNL_TYPE_U32 },
	[BATON_A_RECORDS]	= { MNL_TYPE_U32 },
	[BATON_A_BYTES]		= { MNL_TYPE_U64 },
	[BATON_A_TIME_NS]	= { MNL_TYPE_U64 },
	[BATON_A_TIMEOUT_MS]	= { MNL_TYPE_U32 },
	[BATON_A_BLACKOUT_MS]	= { MNL_TYPE_U32 },
	[BATON_A_DEADLINE_NS]	= { MNL_TYPE_U64 },
	[BATON_A_STDIO]		= { MNL_TYPE_U32 },
	[BATON_A_STEP]		= { MNL_TYPE_NESTED },
	[BATON_A_ROUNDS]	= { MNL_TYPE_U32 },
	[BATON_A_ROUND_BYTES]	= { MNL_TYPE_U64 },
	[BATON_A_ROUND]		= { MNL_TYPE_NESTED },
	[BATON_A_PRECOPY_END]	= { MNL_TYPE_U32 },
	[BATON_A_FREEZE_ID]	= { MNL_TYPE_U32 },
	[BATON_A_CHECKPOINTS]	= { MNL_TYPE_U32 },
	[BATON_A_CKPT_FORMAT]	= { MNL_TYPE_U32 },
	[BATON_A_FREEZE_MS]	= { MNL_TYPE_U32 },
	[BATON_A_FILE_VERSION]	= { MNL_TYPE_U32 },
	[BATON_A_KERNEL]	= { MNL_TYPE_NUL_STRING },
	[BATON_A_BOOT_ID]	= { MNL_TYPE_NUL_STRING },
	[BATON_A_NETNS]		= { MNL_TYPE_U64 },
	[BATON_A_GENL_VERSION]	= { MNL_TYPE_U32 },
	[BATON_A_GENL_MAXATTR]	= { MNL_TYPE_U32 },
	[BATON_A_REALTIME_NS]	= { MNL_TYPE_U64 },
	[BATON_A_CRC32]		= { MNL_TYPE_U32 },
	[BATON_A_TAKES]		= { MNL_TYPE_U32 },
	[BATON_A_EARLY_RECORDS]	= { MNL_TYPE_U32 },
};

static const char *const msg_names[] = {
	[BATON_MSG_HELLO]	  = "HELLO",
	[BATON_MSG_WELCOME]	  = "WELCOME",
	[BATON_MSG_ERROR]	  = "ERROR",
	[BATON_MSG_UPGRADE]	  = "UPGRADE",
	[BATON_MSG_UPGRADE_ACK]	  = "UPGRADE_ACK",
	[BATON_MSG_SOCKETS]	  = "SOCKETS",
	[BATON_MSG_BLOB]	  = "BLOB",
	[BATON_MSG_PHASE1_DONE]	  = "PHASE1_DONE",
	[BATON_MSG_READY]	  = "READY",
	[BATON_MSG_DEACTIVATE]	  = "DEACTIVATE",
	[BATON_MSG_PHASE2_DONE]	  = "PHASE2_DONE",
	[BATON_MSG_DEACTIVATED]	  = "DEACTIVATED",
	[BATON_MSG_ACTIVATE]	  = "ACTIVATE",
	[BATON_MSG_ACTIVE]	  = "ACTIVE",
	[BATON_MSG_RESUME]	  = "RESUME",
	[BATON_MSG_RESUMED]	  = "RESUMED",
	[BATON_MSG_PEER_LOST]	  = "PEER_LOST",
	[BATON_MSG_INFO]	  = "INFO",
	[BATON_MSG_SYNC]	  = "SYNC",
	[BATON_MSG_EXPECT]	  = "EXPECT",
	[BATON_MSG_SUCCESSOR]	  = "SUCCESSOR",
	[BATON_MSG_START]	  = "START",
};

const char *msg_type_name(__u16 type)
{
	if (type < ARRAY_SIZE(msg_names) && msg_names[type])
		return msg_names[type];
	return "unknown message";
}

/* The type a known attribute has (MNL_TYPE_UNSPEC: none we know) */
enum mnl_attr_data_type attr_type(__u16 type)
{
	return type <= BATON_A_MAX ? baton_policy[type].type : MNL_TYPE_UNSPEC;
}

/* Whether it may come more than once: left to its reader, not in tb */
bool attr_repeated(__u16 type)
{
	/* SOCK (sockets.c), STEP and ROUND (messages.c) */
	return type == BATON_A_SOCK || type == BATON_A_STEP ||
	       type == BATON_A_ROUND;
}

/*
 * Stricter than libmnl's checks, which let a u32 be longer than four
 * bytes: a known attribute has exactly its type's length.
 */
int attr_check(const struct nlattr *attr, enum mnl_attr_data_type type)
{
	size_t len = mnl_attr_get_payload_len(attr);

	switch (type) {
	case MNL_TYPE_U32:
		return len == sizeof(__u32) ? 0 : -EINVAL;
	case MNL_TYPE_U64:
		return len == sizeof(__u64) ? 0 : -EINVAL;
	default:
		return mnl_attr_validate(attr, type) < 0 ? -EINVAL : 0;
	}
}

struct parse_ctx {
	const struct nlattr **tb;
	int err;
};

static int baton_attr_cb(const struct nlattr *attr, void *data)
{
	struct parse_ctx *ctx = data;
	__u16 type = mnl_attr_get_type(attr);
	const struct attr_policy *p;

	if (type > BATON_A_MAX || type == BATON_A_UNSPEC)
		return MNL_CB_OK;	/* newer than us: skipped */
	p = &baton_policy[type];
	if (attr_check(attr, p->type)) {
		ctx->err = -EINVAL;
		return MNL_CB_ERROR;
	}
	if (!attr_repeated(type))
		ctx->tb[type] = attr;
	return MNL_CB_OK;
}

/* Walks every attribute and fails unless they fill the payload exactly. */
int attrs_walk(const void *payload, size_t len, mnl_attr_cb_t cb,
		      void *data)
{
	const struct nlattr *a = payload;
	size_t left = len;

	while (left >= sizeof(*a)) {
		size_t alen = a->nla_len;

		if (alen < sizeof(*a) || alen > left)
			return -EINVAL;
		if (cb(a, data) < 0)
			return -EINVAL;
		alen = MNL_ALIGN(alen);
		if (alen >= left)
			return 0;
		left -= alen;
		a = (const struct nlattr *)((const char *)a + alen);
	}
	return left ? -EINVAL : 0;
}

/*
 * Checks every attribute of a payload against the table and points tb at
 * each known one; a repeated one (BATON_A_SOCK) is left to its reader.
 */
int attrs_parse(const void *payload, size_t len, const struct nlattr **tb)
{
	struct parse_ctx ctx = { .tb = tb };
	int err;

	memset(tb, 0, sizeof(*tb) * (BATON_A_MAX + 1));
	err = attrs_walk(payload, len, baton_attr_cb, &ctx);
	return ctx.err ? ctx.err : err;
}

int msg_parse(const struct baton_msg *m, const struct nlattr **tb)
{
	return attrs_parse(mnl_nlmsg_get_payload(m->nlh),
			   mnl_nlmsg_get_payload_len(m->nlh), tb);
}

/*
 * msg_recv(), then msg_parse(): one message, whole and checked, or -errno;
 * the descriptors of one refused are closed, as msg_recv() closes them
 */
int msg_read(int sock, struct baton_msg *m, int timeout_ms,
	     const struct nlattr **tb)
{
	int err = msg_recv(sock, m, timeout_ms);

	if (err)
		return err;
	err = msg_parse(m, tb);
	if (err)
		msg_close_fds(m);
	return err;
}

__u32 attr_u32(const struct nlattr **tb, int type, __u32 def)
{
	return tb[type] ? mnl_attr_get_u32(tb[type]) : def;
}

__u64 attr_u64(const struct nlattr **tb, int type, __u64 def)
{
	return tb[type] ? mnl_attr_get_u64(tb[type]) : def;
}

const char *attr_str(const struct nlattr **tb, int type, const char *def)
{
	return tb[type] ? mnl_attr_get_str(tb[type]) : def;
}
