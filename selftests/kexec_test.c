// SPDX-License-Identifier: GPL-2.0-only
/*
 * batonctl kexec under a live kvd, in the QEMU VM, with 100 clients on
 * the host (scripts/kexec-check.sh: their connections go through QEMU's
 * user-mode network, outside the guest's kernel):
 *  1. keep: the guest's kernel restarts (kexec into the same kernel and
 *     initramfs); hold, network, restore in the next boot. Every
 *     connection goes on, no reply lost, repeated or wrong, every key
 *     read back; a connection made in the hold waits and is served by
 *     the restored kvd; the clients' longest stall is broken down into
 *     checkpoint, kexec to init, hold, restore and the peers' next
 *     retransmission, which add up to it;
 *  2. corrupt: the checkpoint is damaged before the restore: hold and
 *     restore refuse it, kvd starts afresh (--fresh-on-failure), the file
 *     stays; every connection ends with no wrong reply, and a new one is
 *     served by the fresh kvd.
 * The VM's kernel log of both boots is checked (scripts/vm.sh).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "helpers.h"

#define CONNS		"100"
#define KEYS		"1000"
#define RUN_MS		(1100 * 1000)

FIXTURE(kexec) {
	char out[1 << 16];
};

FIXTURE_VARIANT(kexec) {
	bool corrupt;
};

FIXTURE_VARIANT_ADD(kexec, keep) { false };
FIXTURE_VARIANT_ADD(kexec, corrupt) { true };

FIXTURE_SETUP(kexec)
{
}

FIXTURE_TEARDOWN(kexec)
{
}

/* The script's last line: the clients' JSON object */
static const char *last_line(char *out)
{
	char *nl, *line = out;

	while ((nl = strchr(line, '\n')) && nl[1])
		line = nl + 1;
	return line;
}

TEST_F_TIMEOUT(kexec, restart, 1200)
{
	char script[512], vm_dir[300], cwd[256];
	const char *json;
	int p[2], status;
	ssize_t n;
	pid_t pid;

	/* run.sh runs us in selftests/ */
	ASSERT_NE(NULL, getcwd(cwd, sizeof(cwd)));
	snprintf(script, sizeof(script), "%s/../scripts/kexec-check.sh", cwd);
	ASSERT_EQ(0, access(script, X_OK));
	snprintf(vm_dir, sizeof(vm_dir), "%s/kexec-vm", getenv("B") ?: "/tmp");
	ASSERT_EQ(0, pipe(p));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		dup2(p[1], STDOUT_FILENO);
		close(p[0]);
		setenv("VM_DIR", vm_dir, 1);
		if (variant->corrupt)
			execl("/bin/bash", "bash", script, "--corrupt", CONNS,
			      KEYS, (char *)NULL);
		else
			execl("/bin/bash", "bash", script, CONNS, KEYS,
			      (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	n = read_to_eof(p[0], self->out, sizeof(self->out), RUN_MS);
	close(p[0]);
	ASSERT_LT(0, n);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	TH_LOG("%s", self->out);
	json = last_line(self->out);
	EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status));
	EXPECT_EQ(0, json_num(json, "wrong"));
	EXPECT_EQ(100, json_num(json, "conns"));
	if (variant->corrupt) {
		EXPECT_EQ(100, json_num(json, "ended"));
		EXPECT_EQ(1, json_num(json, "fresh_served"));
		return;
	}
	EXPECT_EQ(0, json_num(json, "lost"));
	EXPECT_EQ(0, json_num(json, "keys_wrong"));
	/* connected in the hold, waited, served by the restored kvd */
	EXPECT_EQ(1, json_num(json, "late_in_hold"));
	EXPECT_LT(0, json_num(json, "late_first_reply_ms"));
	EXPECT_LT(0, json_num(json, "longest_stall_ms"));
	EXPECT_LE(0, json_num(json, "first_retransmit_ms"));
}

TEST_HARNESS_MAIN
