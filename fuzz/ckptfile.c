// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * 1. Feeds: a checkpoint file (batonctl restore and dump read one a user
 *    hands them). The first byte's bit 0 makes the FILE_END at the end,
 *    if there is one of file_write()'s size, say the right BYTES and
 *    CRC32 for what comes before, so that the fuzzer gets past the
 *    checksum; the rest is the file, read by file_load() from disk.
 * 2. Checks that file_load() answers 0 or -errno, with a reason when it
 *    refuses, and holds nothing after a refusal.
 * 3. On success: the listeners, blobs and connections it holds are the
 *    counts the file says, every blob's memfd is sealed, and the file
 *    written again by file_write() loads again the same.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coordinator/coordinator.h"
#include "fuzz.h"

#define SEALS	(F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

/* data into a file of our own: its path in path */
static void file_of(char *path, const void *data, size_t size)
{
	int fd;

	strcpy(path, "/tmp/baton-fuzz-ckpt.XXXXXX");
	fd = mkstemp(path);
	CHECK(fd >= 0);
	CHECK(write(fd, data, size) == (ssize_t)size);
	close(fd);
}

/* the FILE_END's BYTES and CRC32 made right, where they are */
static void end_fix(uint8_t *buf, size_t size)
{
	const struct nlmsghdr *nlh;
	__u64 bytes;
	__u32 crc;

	if (size < FILE_END_LEN || (size - FILE_END_LEN) % NLMSG_ALIGNTO)
		return;
	bytes = size - FILE_END_LEN;
	nlh = (const void *)(buf + bytes);
	if (nlh->nlmsg_type != BATON_REC_FILE_END ||
	    nlh->nlmsg_len != FILE_END_LEN)
		return;
	crc = crc32_add(0, buf, bytes);
	memcpy(buf + bytes + REC_HDRLEN + MNL_ATTR_HDRLEN, &bytes, sizeof(bytes));
	memcpy(buf + bytes + REC_HDRLEN + 2 * MNL_ATTR_HDRLEN + sizeof(bytes),
	       &crc, sizeof(crc));
}

static void same(const struct baton_checkpoint *a,
		 const struct baton_checkpoint *b)
{
	const struct baton_checkpoint_info *x = &a->info, *y = &b->info;
	unsigned int i;

	CHECK(!strcmp(x->service, y->service) && !strcmp(x->app, y->app));
	CHECK(!strcmp(x->kernel, y->kernel) && !strcmp(x->boot_id, y->boot_id));
	CHECK(x->pid == y->pid && x->netns == y->netns);
	CHECK(!memcmp(&a->ver, &b->ver, sizeof(a->ver)));
	CHECK(x->freeze_id == y->freeze_id && x->deadline_ns == y->deadline_ns);
	CHECK(a->nlsn == b->nlsn && a->nblobs == b->nblobs &&
	      a->nconns == b->nconns);
	for (i = 0; i < a->nlsn; i++)
		CHECK(a->lsn[i].id == b->lsn[i].id &&
		      a->lsn[i].local_len == b->lsn[i].local_len &&
		      !memcmp(&a->lsn[i].local, &b->lsn[i].local,
			      a->lsn[i].local_len));
	for (i = 0; i < a->nblobs; i++)
		CHECK(a->blobs[i].kind == b->blobs[i].kind &&
		      a->blobs[i].records == b->blobs[i].records);
	for (i = 0; i < a->nconns; i++)
		CHECK(!memcmp(&a->conns[i], &b->conns[i], sizeof(a->conns[i])));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct baton_checkpoint ck, again;
	char path[64], why[512];
	unsigned int i;
	uint8_t *buf;
	int err, fd;

	if (size < 1)
		return 0;
	buf = malloc(size);
	CHECK(buf);
	memcpy(buf, data + 1, size - 1);
	if (data[0] & 1)
		end_fix(buf, size - 1);
	file_of(path, buf, size - 1);
	free(buf);
	err = file_load(&ck, path, why, sizeof(why));
	CHECK(is_ret(err));
	if (err) {
		CHECK(why[0] && !ck.nblobs && !ck.blobs && !ck.lsn);
		unlink(path);
		return 0;
	}
	CHECK(ck.nlsn == ck.info.listeners && ck.nblobs == ck.info.blobs &&
	      ck.nconns == ck.info.conns);
	for (i = 0; i < ck.nblobs; i++)
		CHECK((fcntl(ck.blobs[i].memfd, F_GET_SEALS) & SEALS) == SEALS);
	fd = open(path, O_WRONLY | O_TRUNC);
	CHECK(fd >= 0);
	CHECK(file_write(fd, &ck) == 0);
	close(fd);
	CHECK(file_load(&again, path, why, sizeof(why)) == 0);
	same(&ck, &again);
	file_free(&again);
	file_free(&ck);
	unlink(path);
	return 0;
}
