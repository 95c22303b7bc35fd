// SPDX-License-Identifier: GPL-2.0-only
/*
 * The coordinator's journal, <run_dir>/<service>/journal: "key=value"
 * lines, replaced whole (write and rename) at every phase, so that a
 * coordinator killed mid-upgrade leaves what the next one needs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batonctl.h"

int journal_dir(char *buf, size_t len, const char *run_dir,
		const char *service)
{
	if ((size_t)snprintf(buf, len, "%s/%s", baton_run_dir(run_dir),
			     service) >= len)
		return -ENAMETOOLONG;
	return 0;
}

/* One upgrade of a service at a time. The lock dies with its holder. */
int journal_lock(const char *run_dir, const char *service)
{
	char dir[512], path[600];
	int fd, err;

	err = journal_dir(dir, sizeof(dir), run_dir, service);
	if (err)
		return err;
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		char parent[512];

		snprintf(parent, sizeof(parent), "%s", dir);
		*strrchr(parent, '/') = '\0';
		if (mkdir(parent, 0755) < 0 && errno != EEXIST)
			return -errno;
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return -errno;
	}
	snprintf(path, sizeof(path), "%s/upgrade.lock", dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		err = errno == EWOULDBLOCK ? -EBUSY : -errno;
		close(fd);
		return err;
	}
	return fd;
}

int journal_read(const char *run_dir, const char *service, struct journal *j)
{
	char dir[512], path[600], line[256];
	FILE *f;
	int err;

	memset(j, 0, sizeof(*j));
	err = journal_dir(dir, sizeof(dir), run_dir, service);
	if (err)
		return err;
	snprintf(path, sizeof(path), "%s/journal", dir);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f) && j->n < JOURNAL_MAX_FIELDS) {
		char *eq = strchr(line, '=');

		if (!eq)
			continue;
		*eq = '\0';
		eq[strcspn(eq + 1, "\n") + 1] = '\0';
		snprintf(j->key[j->n], sizeof(j->key[0]), "%s", line);
		snprintf(j->val[j->n], sizeof(j->val[0]), "%s", eq + 1);
		j->n++;
	}
	fclose(f);
	return 0;
}

int journal_write(const char *run_dir, const char *service,
		  const struct journal *j)
{
	char dir[512], path[600], tmp[620];
	unsigned int i;
	FILE *f;
	int err;

	err = journal_dir(dir, sizeof(dir), run_dir, service);
	if (err)
		return err;
	snprintf(path, sizeof(path), "%s/journal", dir);
	snprintf(tmp, sizeof(tmp), "%s.%d", path, getpid());
	f = fopen(tmp, "we");
	if (!f)
		return -errno;
	for (i = 0; i < j->n; i++)
		fprintf(f, "%s=%s\n", j->key[i], j->val[i]);
	if (fclose(f) || rename(tmp, path) < 0) {
		err = -errno;
		unlink(tmp);
		return err;
	}
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
