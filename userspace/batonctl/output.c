// SPDX-License-Identifier: GPL-2.0-only
/* Text and JSON from the same calls, so that both always show the same. */
#include <stdio.h>
#include <time.h>

#include "batonctl.h"

/* The text's label column */
static int label_width(const struct out *o)
{
	return o->wide ? 28 : 18;
}

/*
 * The length of the well-formed UTF-8 sequence at s (RFC 3629: no
 * overlong form, no surrogate, nothing past U+10FFFF), or 0
 */
static int utf8_len(const unsigned char *s)
{
	unsigned char lo = 0x80, hi = 0xbf;
	int n, i;

	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

/*
 * A JSON string: what is not UTF-8 (an application's log line, a value
 * cut short in the middle of a character) becomes U+FFFD
 */
static void json_string(FILE *f, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	int n;

	fputc('"', f);
	while (*s) {
		if (*s == '"' || *s == '\\') {
			fprintf(f, "\\%c", *s++);
		} else if (*s < 0x20) {
			fprintf(f, "\\u%04x", *s++);
		} else if (*s < 0x80) {
			fputc(*s++, f);
		} else if ((n = utf8_len(s))) {
			fwrite(s, 1, n, f);
			s += n;
		} else {
			fputs("\\ufffd", f);
			s++;
		}
	}
	fputc('"', f);
}

static void json_key(struct out *o, const char *key)
{
	if (!o->first)
		fputc(',', o->f);
	json_string(o->f, key);
	fputc(':', o->f);
	o->first = false;
}

void out_begin(struct out *o, FILE *f, bool json)
{
	o->f = f;
	o->json = json;
	o->depth = 0;
	o->first = true;
	o->wide = false;
	if (json)
		fputc('{', f);
}

void out_end(struct out *o)
{
	if (o->json)
		fputs("}\n", o->f);
	fflush(o->f);
}

/* key NULL: an element of an array */
void out_obj_begin(struct out *o, const char *key, const char *title)
{
	if (o->json) {
		if (key)
			json_key(o, key);
		else if (!o->first)
			fputc(',', o->f);
		fputc('{', o->f);
		o->first = true;
	} else if (title) {
		fprintf(o->f, "%*s%s\n", o->depth * 2, "", title);
	}
	o->depth++;
}

void out_obj_end(struct out *o)
{
	if (o->json)
		fputc('}', o->f);
	o->first = false;
	o->depth--;
}

void out_arr_begin(struct out *o, const char *key, const char *title)
{
	if (o->json) {
		json_key(o, key);
		fputc('[', o->f);
		o->first = true;
	} else if (title) {
		fprintf(o->f, "%*s%s\n", o->depth * 2, "", title);
	}
	o->depth++;
}

void out_arr_end(struct out *o)
{
	if (o->json)
		fputc(']', o->f);
	o->first = false;
	o->depth--;
}

/* key NULL: the text's alone, a line that sums up the fields around it */
void out_str(struct out *o, const char *key, const char *label,
	     const char *v)
{
	if (o->json && key) {
		json_key(o, key);
		json_string(o->f, v);
	} else if (!o->json && label) {
		fprintf(o->f, "%*s%-*s %s\n", o->depth * 2, "",
			label_width(o), label, v);
	}
}

void out_u64(struct out *o, const char *key, const char *label, __u64 v)
{
	if (o->json) {
		json_key(o, key);
		fprintf(o->f, "%llu", (unsigned long long)v);
	} else if (label) {
		fprintf(o->f, "%*s%-*s %llu\n", o->depth * 2, "",
			label_width(o), label, (unsigned long long)v);
	}
}

void out_ms(struct out *o, const char *key, const char *label, double ms,
	    const char *note)
{
	if (o->json) {
		json_key(o, key);
		fprintf(o->f, "%.3f", ms);
	} else if (label) {
		fprintf(o->f, "%*s%-*s %8.3f ms%s%s\n", o->depth * 2, "",
			label_width(o), label, ms, note ? "   " : "",
			note ? note : "");
	}
}

void ctl_log(void *ctx, enum baton_log_level level, const char *msg)
{
	struct ctl_log *l = ctx;

	if (l && level == BATON_LOG_ERR && !l->first_err[0])
		snprintf(l->first_err, sizeof(l->first_err), "%s", msg);
	if (level <= BATON_LOG_WARN)
		fprintf(stderr, "batonctl: %s\n", msg);
}

__u64 mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* from a to b, in ms; 0 if either is unknown */
double ms_between(__u64 a, __u64 b)
{
	return a && b && b >= a ? (b - a) / 1e6 : 0;
}
