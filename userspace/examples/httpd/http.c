// SPDX-License-Identifier: GPL-2.0-only
/*
 * HTTP/1.1 requests (RFC 9112) and their responses: GET and HEAD of the
 * regular files under the root; keep-alive unless the client says close
 * (or speaks HTTP/1.0 without asking for it); no request bodies.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "httpd.h"

struct request {
	const char *method, *target;
	size_t method_len, target_len;
	int minor;		/* HTTP/1.<minor> */
	bool close, keep_alive;	/* the Connection header */
	bool body;		/* Content-Length > 0, or Transfer-Encoding */
};

static const struct {
	const char *ext, *type;
} types[] = {
	{ "html", "text/html" },
	{ "htm", "text/html" },
	{ "txt", "text/plain" },
	{ "css", "text/css" },
	{ "js", "text/javascript" },
	{ "json", "application/json" },
	{ "svg", "image/svg+xml" },
	{ "png", "image/png" },
	{ "jpg", "image/jpeg" },
};

static const char *content_type(const char *path)
{
	const char *dot = strrchr(path, '.');
	size_t i;

	for (i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
		if (!strcasecmp(dot + 1, types[i].ext))
			return types[i].type;
	return "application/octet-stream";
}

static const char *date_now(struct httpd *h)
{
	time_t now = time(NULL);
	struct tm tm;

	if (now != h->date_sec) {
		gmtime_r(&now, &tm);
		strftime(h->date, sizeof(h->date), "%a, %d %b %Y %H:%M:%S GMT",
			 &tm);
		h->date_sec = now;
	}
	return h->date;
}

int http_open(struct httpd *h, const char *path, struct file_id *fid)
{
	struct open_how how = {
		.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	struct stat st;
	int fd, err;

	fd = syscall(SYS_openat2, h->root, path, &how, sizeof(how));
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		err = -errno;
		goto close_fd;
	}
	if (!S_ISREG(st.st_mode)) {
		err = -ENOENT;
		goto close_fd;
	}
	fid->dev = st.st_dev;
	fid->ino = st.st_ino;
	fid->size = st.st_size;
	fid->mtime_ns = st.st_mtim.tv_sec * 1000000000ULL + st.st_mtim.tv_nsec;
	return fd;
close_fd:
	close(fd);
	return err;
}

/* "name: value" matches name (any case), value trimmed into *v. */
static bool header_is(const char *line, size_t len, const char *name,
		      const char **v, size_t *vlen)
{
	size_t n = strlen(name);

	if (len <= n || line[n] != ':' || strncasecmp(line, name, n))
		return false;
	line += n + 1;
	len -= n + 1;
	while (len && (*line == ' ' || *line == '\t'))
		line++, len--;
	while (len && (line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	*v = line;
	*vlen = len;
	return true;
}

/* Does the comma-separated list hold token (any case)? */
static bool has_token(const char *v, size_t len, const char *token)
{
	size_t n = strlen(token);

	while (len) {
		size_t w = 0;

		while (len && (*v == ' ' || *v == ',' || *v == '\t'))
			v++, len--;
		while (w < len && v[w] != ',' && v[w] != ' ' && v[w] != '\t')
			w++;
		if (w == n && !strncasecmp(v, token, n))
			return true;
		v += w;
		len -= w;
	}
	return false;
}

/* The request line and the headers of a head ending at end. */
static int parse_head(const char *p, const char *end, struct request *r)
{
	const char *eol = memchr(p, '\r', end - p), *sp1, *sp2;

	if (!eol || eol[1] != '\n')
		return -EPROTO;
	sp1 = memchr(p, ' ', eol - p);
	sp2 = sp1 ? memchr(sp1 + 1, ' ', eol - sp1 - 1) : NULL;
	if (!sp1 || !sp2 || sp1 == p || sp2 == sp1 + 1 ||
	    eol - sp2 - 1 != 8 || strncmp(sp2 + 1, "HTTP/1.", 7) ||
	    (sp2[8] != '0' && sp2[8] != '1'))
		return -EPROTO;
	r->method = p;
	r->method_len = sp1 - p;
	r->target = sp1 + 1;
	r->target_len = sp2 - sp1 - 1;
	r->minor = sp2[8] - '0';
	for (p = eol + 2; p < end; p = eol + 2) {
		const char *v;
		size_t vlen;

		eol = memchr(p, '\r', end - p);
		if (!eol || eol[1] != '\n')
			return -EPROTO;
		if (eol == p)
			break;		/* the empty line */
		if (header_is(p, eol - p, "Connection", &v, &vlen)) {
			r->close |= has_token(v, vlen, "close");
			r->keep_alive |= has_token(v, vlen, "keep-alive");
		} else if (header_is(p, eol - p, "Content-Length", &v, &vlen)) {
			r->body |= vlen != 1 || v[0] != '0';
		} else if (header_is(p, eol - p, "Transfer-Encoding", &v, &vlen)) {
			r->body = true;
		}
	}
	return 0;
}

static int unhex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/*
 * The target's path, decoded, without its leading '/', "index.html" for a
 * directory's; -EPROTO for what is not a plain path under the root.
 */
static int target_path(const struct request *r, char *path, size_t size)
{
	const char *t = r->target, *end = t + r->target_len;
	size_t n = 0;

	if (t == end || *t != '/')
		return -EPROTO;
	for (t++; t < end && *t != '?' && *t != '#'; t++) {
		char c = *t;

		if (c == '%') {
			int hi = t + 2 < end ? unhex(t[1]) : -1;
			int lo = hi >= 0 ? unhex(t[2]) : -1;

			if (lo < 0)
				return -EPROTO;
			c = hi << 4 | lo;
			t += 2;
		}
		if (c == '\0' || n + 1 >= size)
			return -EPROTO;
		path[n++] = c;
	}
	path[n] = '\0';
	/* no "." or ".." segment: openat2() would refuse "..", say 400 */
	for (t = path;; t = end + 1) {
		end = strchrnul(t, '/');
		if ((end - t == 1 && t[0] == '.') ||
		    (end - t == 2 && t[0] == '.' && t[1] == '.'))
			return -EPROTO;
		if (!*end)
			break;
	}
	if (!n || path[n - 1] == '/') {
		if (n + sizeof("index.html") > size)
			return -EPROTO;
		strcpy(path + n, "index.html");
	}
	return 0;
}

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Content Too Large";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	default: return "Error";
	}
}

/* The status line and the headers every response has. */
static int put_head(struct httpd *h, struct conn *c, int status,
		    const char *type, __u64 length)
{
	return buf_printf(&c->base.out,
			   "HTTP/1.1 %d %s\r\n"
			   "Server: baton-httpd/%d\r\n"
			   "Date: %s\r\n"
			   "Content-Type: %s\r\n"
			   "Content-Length: %llu\r\n"
			   "Connection: %s\r\n"
			   "X-Connection-Requests: %llu\r\n"
			   "%s"
			   "\r\n",
			   status, reason(status), HTTPD_VERSION, date_now(h),
			   type, (unsigned long long)length,
			   c->closing ? "close" : "keep-alive",
			   (unsigned long long)c->requests,
			   status == 405 ? "Allow: GET, HEAD\r\n" : "");
}

static int put_error(struct httpd *h, struct conn *c, int status, bool head)
{
	char body[64];
	int n = snprintf(body, sizeof(body), "%d %s\n", status, reason(status));

	return put_head(h, c, status, "text/plain", n) ?:
	       (head ? 0 : buf_append(&c->base.out, body, n));
}

/* A file's response: its head now, its bytes by flush(). */
static int put_file(struct httpd *h, struct conn *c, const char *path,
		    bool head)
{
	int fd = http_open(h, path, &c->fid);

	if (fd == -ENOENT || fd == -ENOTDIR || fd == -EACCES ||
	    fd == -ELOOP || fd == -EXDEV || fd == -ENAMETOOLONG)
		return put_error(h, c, 404, head);
	if (fd < 0)
		return put_error(h, c, 500, head);
	if (head || !c->fid.size) {
		close(fd);
		return put_head(h, c, 200, content_type(path), c->fid.size);
	}
	c->file = fd;
	snprintf(c->path, sizeof(c->path), "%s", path);
	c->off = 0;
	c->end = c->fid.size;
	return put_head(h, c, 200, content_type(path), c->fid.size);
}

/*
 * Answers the request at the front of c->base.in: 1 when it did, 0 if the
 * request is not whole yet, -errno if the connection must go.
 */
int http_respond(struct httpd *h, struct conn *c)
{
	struct buf *in = &c->base.in;
	struct request r = {};
	char path[HTTPD_MAX_PATH];
	const char *p, *end;
	size_t avail;
	bool head;
	int err;

	/* empty lines before a request are allowed (RFC 9112, 2.2) */
	while (buf_pending(in) >= 2 && !memcmp(in->data + in->off, "\r\n", 2))
		buf_consume(in, 2);
	p = in->data + in->off;
	avail = buf_pending(in);
	end = avail >= 4 ? memmem(p, avail, "\r\n\r\n", 4) : NULL;
	if (!end && avail <= HTTPD_MAX_HEAD)
		return 0;
	c->requests++;
	h->requests++;
	if (!end) {
		c->closing = true;
		buf_consume(in, avail);
		return put_error(h, c, 431, false) ?: 1;
	}
	end += 4;
	err = parse_head(p, end, &r);
	buf_consume(in, end - p);
	if (err) {
		c->closing = true;
		return put_error(h, c, 400, false) ?: 1;
	}
	head = r.method_len == 4 && !memcmp(r.method, "HEAD", 4);
	c->closing = r.close || (r.minor == 0 && !r.keep_alive) || r.body;
	if (r.body)	/* its length is not ours to trust: say so and close */
		return put_error(h, c, 413, head) ?: 1;
	if (!head && !(r.method_len == 3 && !memcmp(r.method, "GET", 3)))
		return put_error(h, c, 405, false) ?: 1;
	if (target_path(&r, path, sizeof(path))) {
		c->closing = true;
		return put_error(h, c, 400, head) ?: 1;
	}
	return put_file(h, c, path, head) ?: 1;
}
