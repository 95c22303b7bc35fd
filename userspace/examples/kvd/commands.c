// SPDX-License-Identifier: GPL-2.0-only
/*
 * RESP2 requests (arrays of bulk strings, or inline) and the commands kvd
 * answers: enough for redis-cli and redis-benchmark.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "kvd.h"

#define MAX_ARGS 1024

struct arg {
	const char *p;
	size_t n;
};

/* a line ends with "\r\n" (or "\n" inline); returns its length or -1 */
static long line_len(const char *p, size_t avail)
{
	const char *nl = memchr(p, '\n', avail);

	return nl ? nl - p : -1;
}

static int parse_num(const char *p, long n, long long *out)
{
	char tmp[24];
	char *end;

	if (n <= 0 || n >= (long)sizeof(tmp))
		return -EPROTO;
	memcpy(tmp, p, n);
	tmp[n] = '\0';
	if (tmp[n - 1] == '\r')
		tmp[n - 1] = '\0';
	errno = 0;
	*out = strtoll(tmp, &end, 10);
	return errno || *end || end == tmp ? -EPROTO : 0;
}

/*
 * Parses one request at the front of c->base.in into args. Returns the
 * bytes it takes, 0 if it is not all there yet, or -EPROTO.
 */
static long parse_request(struct kvd_conn *c, struct arg *args, int *argc)
{
	const char *p = c->base.in.data + c->base.in.off;
	size_t avail = buf_pending(&c->base.in), pos;
	long long count, len;
	long l;
	int i;

	*argc = 0;
	if (p[0] != '*') {		/* inline: words up to the newline */
		const char *s, *end;

		l = line_len(p, avail);
		if (l < 0)
			return avail > 65536 ? -EPROTO : 0;
		end = p + l;
		if (l && end[-1] == '\r')
			end--;
		for (s = p; s < end && *argc < MAX_ARGS;) {
			while (s < end && isspace((unsigned char)*s))
				s++;
			if (s == end)
				break;
			args[*argc].p = s;
			while (s < end && !isspace((unsigned char)*s))
				s++;
			args[*argc].n = s - args[*argc].p;
			(*argc)++;
		}
		return l + 1;
	}
	l = line_len(p, avail);
	if (l < 0)
		return 0;
	if (parse_num(p + 1, l - 1, &count) || count > MAX_ARGS)
		return -EPROTO;
	pos = l + 1;
	for (i = 0; i < count; i++) {
		if (pos >= avail)
			return 0;
		l = line_len(p + pos, avail - pos);
		if (l < 0)
			return 0;
		if (p[pos] != '$' || parse_num(p + pos + 1, l - 1, &len) ||
		    len < 0 || len > KVD_MAX_QUERY)
			return -EPROTO;
		pos += l + 1;
		if (avail - pos < (size_t)len + 2)
			return 0;
		args[i].p = p + pos;
		args[i].n = len;
		pos += len + 2;
	}
	*argc = count;
	return pos;
}

static bool is(const struct arg *a, const char *word)
{
	return a->n == strlen(word) && !strncasecmp(a->p, word, a->n);
}

static void reply_bulk(struct kvd_conn *c, const char *p, size_t n)
{
	buf_printf(&c->base.out, "$%zu\r\n", n);
	buf_append(&c->base.out, p, n);
	buf_append(&c->base.out, "\r\n", 2);
}

static void reply_int(struct kvd_conn *c, long long v)
{
	buf_printf(&c->base.out, ":%lld\r\n", v);
}

static const char *conn_name(struct kvd_conn *c)
{
#if KVD_VERSION == 1
	return c->name;
#else
	return c->client_name;
#endif
}

static void cmd_info(struct kvd *kvd, struct kvd_conn *c)
{
	struct buf b = {};

	buf_printf(&b, "# Server\r\nredis_version:7.0.0\r\nkvd_version:%d\r\n"
		   "process_id:%d\r\nuptime_in_seconds:%ld\r\n\r\n"
		   "# Clients\r\nconnected_clients:%u\r\n\r\n"
		   "# Stats\r\ntotal_commands_processed:%llu\r\n\r\n"
		   "# Keyspace\r\ndb0:keys=%zu,expires=0,avg_ttl=0\r\n",
		   KVD_VERSION, getpid(), time(NULL) - kvd->start_time,
		   kvd->srv.nconns, (unsigned long long)kvd->total_cmds,
		   kvd->ks.count);
	reply_bulk(c, b.data, b.len);
	buf_free(&b);
}

static void cmd_client(struct kvd_conn *c, struct arg *a, int argc)
{
	char *name = (char *)conn_name(c);

	if (argc == 3 && is(&a[1], "SETNAME")) {
		if (a[2].n >= 64 || memchr(a[2].p, ' ', a[2].n)) {
			buf_printf(&c->base.out, "-ERR client names are at most 63 characters, without spaces\r\n");
			return;
		}
		memcpy(name, a[2].p, a[2].n);
		name[a[2].n] = '\0';
		buf_printf(&c->base.out, "+OK\r\n");
	} else if (argc == 2 && is(&a[1], "GETNAME")) {
		if (*name)
			reply_bulk(c, name, strlen(name));
		else
			buf_printf(&c->base.out, "$-1\r\n");
	} else if (argc == 2 && is(&a[1], "ID")) {
		reply_int(c, c->base.id);
#if KVD_VERSION >= 2
	} else if (argc == 2 && is(&a[1], "INFO")) {
		char line[160];
		int n = snprintf(line, sizeof(line), "id=%llu name=%s cmds=%llu\n",
				 (unsigned long long)c->base.id, name,
				 (unsigned long long)c->cmds);

		reply_bulk(c, line, n);
#endif
	} else {
		buf_printf(&c->base.out, "-ERR unknown CLIENT subcommand or wrong number of arguments\r\n");
	}
}

static void cmd_incr(struct kvd *kvd, struct kvd_conn *c, struct arg *k)
{
	struct kv_entry *e = ks_get(&kvd->ks, k->p, k->n);
	long long v = 0;
	char num[24];
	int n;

	if (e) {
		char *end;

		errno = 0;
		v = strtoll(e->val, &end, 10);
		if (errno || *end || end == e->val || v == LLONG_MAX) {
			buf_printf(&c->base.out, "-ERR value is not an integer or out of range\r\n");
			return;
		}
	}
	n = snprintf(num, sizeof(num), "%lld", ++v);
	if (ks_set(&kvd->ks, k->p, k->n, num, n)) {
		buf_printf(&c->base.out, "-ERR out of memory\r\n");
		return;
	}
	reply_int(c, v);
}

static void execute(struct kvd *kvd, struct kvd_conn *c, struct arg *a,
		    int argc)
{
	struct kv_entry *e;
	int i, n = 0;

	if (is(&a[0], "PING") && argc <= 2) {
		if (kvd->fail_ping_ms >= 0 && kvd->serving_ns &&
		    kvd_now_ns() - kvd->serving_ns >= kvd->fail_ping_ms * 1000000ULL)
			buf_printf(&c->base.out, "-ERR failing on purpose (--fail-ping-after)\r\n");
		else if (argc == 2)
			reply_bulk(c, a[1].p, a[1].n);
		else
			buf_printf(&c->base.out, "+PONG\r\n");
	} else if (is(&a[0], "ECHO") && argc == 2) {
		reply_bulk(c, a[1].p, a[1].n);
	} else if (is(&a[0], "GET") && argc == 2) {
		e = ks_get(&kvd->ks, a[1].p, a[1].n);
		if (e)
			reply_bulk(c, e->val, e->vlen);
		else
			buf_printf(&c->base.out, "$-1\r\n");
	} else if (is(&a[0], "SET") && argc == 3) {
		if (ks_set(&kvd->ks, a[1].p, a[1].n, a[2].p, a[2].n))
			buf_printf(&c->base.out, "-ERR out of memory\r\n");
		else
			buf_printf(&c->base.out, "+OK\r\n");
	} else if (is(&a[0], "DEL") && argc >= 2) {
		for (i = 1; i < argc; i++)
			n += ks_del(&kvd->ks, a[i].p, a[i].n);
		reply_int(c, n);
	} else if (is(&a[0], "EXISTS") && argc >= 2) {
		for (i = 1; i < argc; i++)
			n += !!ks_get(&kvd->ks, a[i].p, a[i].n);
		reply_int(c, n);
	} else if (is(&a[0], "INCR") && argc == 2) {
		cmd_incr(kvd, c, &a[1]);
	} else if (is(&a[0], "DBSIZE") && argc == 1) {
		reply_int(c, kvd->ks.count);
	} else if (is(&a[0], "CLIENT") && argc >= 2) {
		cmd_client(c, a, argc);
	} else if (is(&a[0], "INFO") && argc <= 2) {
		cmd_info(kvd, c);
	} else if (is(&a[0], "CONFIG") && argc >= 2 && is(&a[1], "GET")) {
		buf_printf(&c->base.out, "*0\r\n");	/* nothing to configure */
	} else if (is(&a[0], "COMMAND")) {
		buf_printf(&c->base.out, "*0\r\n");
	} else if (is(&a[0], "SELECT") && argc == 2) {
		if (a[1].n == 1 && a[1].p[0] == '0')
			buf_printf(&c->base.out, "+OK\r\n");
		else
			buf_printf(&c->base.out, "-ERR DB index is out of range\r\n");
	} else if (is(&a[0], "QUIT")) {
		buf_printf(&c->base.out, "+OK\r\n");
		c->closing = true;
	} else {
		buf_printf(&c->base.out, "-ERR unknown command '%.*s', or wrong number of arguments\r\n",
			   (int)(a[0].n > 64 ? 64 : a[0].n), a[0].p);
	}
}

/* Returns 1 if a request ran, 0 if it is incomplete, -errno to close. */
int resp_execute(struct kvd *kvd, struct kvd_conn *c)
{
	struct arg args[MAX_ARGS];
	long used;
	int argc;

	used = parse_request(c, args, &argc);
	if (used < 0) {
		buf_printf(&c->base.out, "-ERR Protocol error\r\n");
		c->closing = true;
		return 1;
	}
	if (used == 0)
		return 0;
	if (argc > 0) {
		execute(kvd, c, args, argc);
		kvd->total_cmds++;
#if KVD_VERSION >= 2
		c->cmds++;
#endif
	}
	buf_consume(&c->base.in, used);
	return 1;
}
