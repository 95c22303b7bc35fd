// SPDX-License-Identifier: GPL-2.0-only
/*
 * The coordinator's journal, <run_dir>/<service>/journal: "key=value"
 * lines, so that a coordinator killed mid-upgrade leaves what the next one
 * (and status) needs.
 *
 * The file is reserved whole before an upgrade starts (two slots of
 * JOURNAL_SLOT bytes), and every write goes in place into the older slot:
 * a full disk refuses an upgrade before anything happens, and never stops
 * a journal write in the middle of one. Each slot carries a sequence
 * number and a CRC-32 of its text; a reader takes the newest whole one, so
 * a write cut short leaves the one before.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "batonctl.h"

#define JOURNAL_SLOT	4096
#define JOURNAL_MAGIC	"baton-journal 1\n"

/* -EINVAL for a SERVICE that is not a name: no file is made for it */
int journal_dir(char *buf, size_t len, const char *run_dir,
		const char *service)
{
	if (baton_service_name_check(service))
		return -EINVAL;
	if ((size_t)snprintf(buf, len, "%s/%s", baton_run_dir(run_dir),
			     service) >= len)
		return -ENAMETOOLONG;
	return 0;
}

static int journal_path(char *buf, size_t len, const char *run_dir,
			const char *service, const char *name)
{
	char dir[512];
	int err = journal_dir(dir, sizeof(dir), run_dir, service);

	if (err)
		return err;
	if ((size_t)snprintf(buf, len, "%s/%s", dir, name) >= len)
		return -ENAMETOOLONG;
	return 0;
}

static int mkdir_parents(const char *dir)
{
	char parent[512];

	if (!mkdir(dir, 0755) || errno == EEXIST)
		return 0;
	snprintf(parent, sizeof(parent), "%s", dir);
	*strrchr(parent, '/') = '\0';
	if (mkdir(parent, 0755) < 0 && errno != EEXIST)
		return -errno;
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* A slot's fields, if it is whole: its sequence number, or 0. */
static unsigned long slot_parse(char *text, struct journal *j)
{
	unsigned long seq;
	char *crc_line, *line, *next;
	uLong crc;

	text[JOURNAL_SLOT - 1] = '\0';
	if (strncmp(text, JOURNAL_MAGIC, strlen(JOURNAL_MAGIC)))
		return 0;
	crc_line = strstr(text, "\ncrc=");
	if (!crc_line)
		return 0;
	crc = crc32(0, (const Bytef *)text, crc_line + 1 - text);
	if (strtoul(crc_line + 5, NULL, 16) != crc)
		return 0;
	*crc_line = '\0';
	j->n = 0;
	seq = 0;
	for (line = text + strlen(JOURNAL_MAGIC); *line; line = next) {
		char *eq;

		next = line + strcspn(line, "\n");
		if (*next)
			*next++ = '\0';
		eq = strchr(line, '=');
		if (!eq)
			continue;
		*eq = '\0';
		if (!strcmp(line, "seq")) {
			seq = strtoul(eq + 1, NULL, 10);
			continue;
		}
		if (j->n == JOURNAL_MAX_FIELDS)
			continue;
		snprintf(j->key[j->n], sizeof(j->key[0]), "%s", line);
		snprintf(j->val[j->n], sizeof(j->val[0]), "%s", eq + 1);
		j->n++;
	}
	return seq;
}

/* The newest whole slot of an open journal: its fields into j. */
static int journal_load(int fd, struct journal *j)
{
	char text[JOURNAL_SLOT];
	struct journal slot;
	unsigned long best = 0, seq;
	int i;

	for (i = 0; i < 2; i++) {
		if (pread(fd, text, JOURNAL_SLOT, i * JOURNAL_SLOT) != JOURNAL_SLOT)
			continue;
		seq = slot_parse(text, &slot);
		if (seq <= best)
			continue;
		best = seq;
		j->n = slot.n;
		memcpy(j->key, slot.key, sizeof(j->key));
		memcpy(j->val, slot.val, sizeof(j->val));
	}
	j->seq = best;
	return best ? 0 : -ENOENT;
}

/*
 * One upgrade of a service at a time, and its journal reserved: the lock
 * dies with its holder. j is ready for journal_write() on success.
 */
int journal_open(const char *run_dir, const char *service, const char *op,
		 struct journal *j)
{
	char dir[512], path[600], who[80];
	int fd, err, n;

	memset(j, 0, sizeof(*j));
	j->fd = j->lock = -1;
	j->run_dir = run_dir;
	err = journal_dir(dir, sizeof(dir), run_dir, service) ?:
	      mkdir_parents(dir) ?:
	      journal_path(path, sizeof(path), run_dir, service, "upgrade.lock");
	if (err)
		return err;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		err = errno == EWOULDBLOCK ? -EBUSY : -errno;
		goto close_lock;
	}
	j->lock = fd;
	/*
	 * Who holds it, for the next one to name (journal_busy()): its
	 * journal record is written only later. Said, not needed: a write
	 * that fails leaves the note out.
	 */
	n = snprintf(who, sizeof(who), "%d %llu %s\n", getpid(),
		     proc_start_time(getpid()), op);
	if (!ftruncate(fd, 0) && pwrite(fd, who, n, 0) != n)
		ftruncate(fd, 0);
	snprintf(path + strlen(path) - strlen("upgrade.lock"),
		 sizeof(path) - strlen(dir) - 1, "journal");
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		err = -errno;
		goto close_lock;
	}
	err = posix_fallocate(fd, 0, 2 * JOURNAL_SLOT);
	if (err) {
		err = -err;
		close(fd);
		goto close_lock;
	}
	j->fd = fd;
	/* the newest record, for recover(); and where the next one goes */
	journal_load(fd, j);
	return 0;

close_lock:
	close(j->lock);
	j->lock = -1;
	return err;
}

void journal_close(struct journal *j)
{
	if (j->fd >= 0)
		close(j->fd);
	if (j->lock >= 0)
		close(j->lock);
	j->fd = j->lock = -1;
}

int journal_read(const char *run_dir, const char *service, struct journal *j)
{
	char path[600];
	int fd, err;

	memset(j, 0, sizeof(*j));
	j->fd = j->lock = -1;
	j->run_dir = run_dir;
	err = journal_path(path, sizeof(path), run_dir, service, "journal");
	if (err)
		return err;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	err = journal_load(fd, j);
	close(fd);
	return err;
}

/* Into the slot the newest one is not in; the error is kept in j too. */
int journal_write(struct journal *j)
{
	char text[JOURNAL_SLOT];
	size_t len;
	unsigned int i;
	int n;

	memset(text, 0, sizeof(text));
	j->seq++;
	len = snprintf(text, sizeof(text), JOURNAL_MAGIC "seq=%lu\n", j->seq);
	for (i = 0; i < j->n && len < sizeof(text); i++)
		len += snprintf(text + len, sizeof(text) - len, "%s=%s\n",
				j->key[i], j->val[i]);
	if (len + 16 >= sizeof(text))
		return j->err = -E2BIG;
	snprintf(text + len, sizeof(text) - len, "crc=%08lx\n",
		 crc32(0, (const Bytef *)text, len));
	n = pwrite(j->fd, text, JOURNAL_SLOT, (j->seq % 2) * JOURNAL_SLOT);
	if (n != JOURNAL_SLOT)
		return j->err = n < 0 ? -errno : -EIO;
	return 0;
}

void journal_set(struct journal *j, const char *key, const char *fmt, ...)
{
	unsigned int i;
	va_list ap;

	for (i = 0; i < j->n; i++)
		if (!strcmp(j->key[i], key))
			break;
	if (i == JOURNAL_MAX_FIELDS)
		return;
	if (i == j->n) {
		snprintf(j->key[i], sizeof(j->key[i]), "%s", key);
		j->n++;
	}
	va_start(ap, fmt);
	vsnprintf(j->val[i], sizeof(j->val[i]), fmt, ap);
	va_end(ap);
	/* one line per field, whatever the value says */
	j->val[i][strcspn(j->val[i], "\n")] = '\0';
}

const char *journal_get(const struct journal *j, const char *key)
{
	unsigned int i;

	for (i = 0; i < j->n; i++)
		if (!strcmp(j->key[i], key))
			return j->val[i];
	return NULL;
}

/*
 * The note the lock's holder wrote as it took it: its pid, start time
 * and operation, each a word into its buffer (16, 32 and 16 bytes). 0, or
 * -errno (-ENOENT: no note).
 */
int journal_lock_note(const char *run_dir, const char *service, char *pid,
		      char *start, char *op)
{
	char path[600], line[96];
	ssize_t n;
	int fd, err;

	err = journal_path(path, sizeof(path), run_dir, service, "upgrade.lock");
	if (err)
		return err;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, line, sizeof(line) - 1);
	close(fd);
	if (n <= 0)
		return -ENOENT;
	line[n] = '\0';
	if (sscanf(line, "%15s %31s %15s", pid, start, op) != 3)
		return -ENOENT;
	return 0;
}

void service_name_bad(const char *service, char *why, size_t len)
{
	snprintf(why, len, "'%s' is not a service's name: letters, digits, '_', '-' and '.' (not first), at most %d",
		 service, BATON_SERVICE_NAME_MAX);
}

/*
 * What an operation on a service (upgrade, checkpoint, restore) does
 * first: it takes the service's lock and journal (journal_open()),
 * settles what an earlier one left (recover()), and begins its own
 * record, not yet written: the service, the operation, the coordinator
 * and when. 0; or 1, once stderr said why not, which reason (if given)
 * says too.
 */
int journal_begin(const char *run_dir, const char *service, const char *op,
		  int timeout_ms, bool quiet, struct journal *j, char *reason,
		  size_t reason_len)
{
	char dir[512], why[700];
	int err;

	err = journal_open(run_dir, service, op, j);
	if (err == -EBUSY) {
		journal_busy(run_dir, service, why, sizeof(why));
		fprintf(stderr, "batonctl: %s\n", why);
		goto refused;
	}
	if (err == -EINVAL) {
		service_name_bad(service, why, sizeof(why));
		fprintf(stderr, "batonctl: %s\n", why);
		goto refused;
	}
	if (err) {
		journal_dir(dir, sizeof(dir), run_dir, service);
		snprintf(why, sizeof(why), "cannot reserve %s's journal in %s: %s",
			 service, dir, strerror(-err));
		fprintf(stderr, "batonctl: %s; nothing was changed%s\n", why,
			err == -ENOSPC ? ": free some space there and try again" : "");
		goto refused;
	}
	recover(service, j, timeout_ms, quiet);

	/* a record of its own: the last one stays until the first write */
	j->n = 0;
	journal_set(j, "service", "%s", service);
	journal_set(j, "operation", "%s", op);
	journal_set(j, "coordinator_pid", "%d", getpid());
	journal_set(j, "coordinator_start", "%llu", proc_start_time(getpid()));
	journal_set(j, "started", "%ld", (long)time(NULL));
	return 0;

refused:
	if (reason)
		snprintf(reason, reason_len, "%s", why);
	return 1;
}
