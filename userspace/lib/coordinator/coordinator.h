/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * struct baton_upgrade, one upgrade as the coordinator drives it, shared
 * by the files of this folder.
 */
#ifndef BATON_LIB_COORDINATOR_H
#define BATON_LIB_COORDINATOR_H

#include "control/control.h"

struct baton_upgrade {
	struct baton_upgrade_opts o;
	struct baton_paths paths;
	struct baton_log_sink log;
	struct baton_msg *msg;
	struct baton_upgrade_report r;
	int old;		/* connection to the old instance */
	int new;		/* our end of the new instance's BATON_CTL_FD */
	int stdio[2];		/* the old's stdout and stderr, for the new */
	/* the old's listeners and control socket, from UPGRADE on */
	struct held_socket *held;
	unsigned int nheld, cap;
	bool successor_seen;	/* the old said the new one connected */
	bool deactivate_sent;	/* the blackout began */
	__u64 spin_until;	/* wait_msg() polls, not sleeps, till then */
	bool sparing_new;	/* past the blackout, the new one activating */
	bool new_reaped;	/* its exit status is in new_status */
	int new_status;
	__u64 old_gone_ns;	/* the old closed its end */
	bool forward_next;	/* gone as the new one started: the next
				 * step goes forward (roll_forward()) */
	__u64 old_stop_ns;	/* the old's DEACTIVATED: when it stopped */
	char resumed_why[160];	/* the old's RESUMED said why */
	char lost_why[320];	/* the new one's PEER_LOST said why */
	struct versions old_ver;	/* what the old's WELCOME said */
	__u32 freeze_id;	/* the old's DEACTIVATED: its freeze, or 0 */
	struct netns_move *mv;	/* into another namespace: netns.c */
};

enum from { FROM_OLD, FROM_NEW };

/* upgrade.c: an upgrade's handle, attached to the old instance; its end */
int upgrade_new(struct baton_upgrade **up, const struct baton_upgrade_opts *o);
int checkpoint_upgrade_new(struct baton_upgrade **up,
			   const struct baton_checkpoint_opts *o,
			   unsigned int flags);
int attach(struct baton_upgrade *up);
int step_done(struct baton_upgrade *up);

/* report.c: how far it came, and why it stopped */
void reach(struct baton_upgrade *up, enum baton_phase phase);
int fail(struct baton_upgrade *up, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void new_gone_why(struct baton_upgrade *up, char *buf, size_t len);
void steps_place(struct baton_upgrade *up);
char proc_state(pid_t pid, char *wchan, size_t len, unsigned long *cpu_ms);
void proc_note(pid_t pid, const char *who, char *buf, size_t len);
void port_holder(const struct sockaddr_storage *a, char *buf, size_t len);

/* wait.c: the two instances' messages, within a step's deadline */
void drop_held(struct baton_upgrade *up);
__u64 deadline_in(int ms);
int wait_msg(struct baton_upgrade *up, __u64 deadline, enum from *from,
	     const struct nlattr **tb);
int expect(struct baton_upgrade *up, enum from side, __u16 want,
	   __u64 deadline, const struct nlattr **tb);
void deactivated(struct baton_upgrade *up, const struct nlattr **tb);

/*
 * spawn.c: the new instance, and how it ended. spawn() announces the
 * upgrade to the old instance first; spawn_new() only starts argv.
 */
int announce(struct baton_upgrade *up);
int spawn(struct baton_upgrade *up);
int spawn_new(struct baton_upgrade *up);
void reap_new(struct baton_upgrade *up);
enum new_fate { NEW_GONE, NEW_ACTIVE, NEW_LOCKED };
enum new_fate new_active_unread(struct baton_upgrade *up,
				const struct nlattr **tb, bool spare_locked);

/*
 * netns.c: into another network namespace. prepare checks and opens all
 * it needs before anything begins; move, once the new one is ACTIVE,
 * takes the service address there and thaws the old's freeze into it.
 */
struct netns_move;
int netns_prepare(struct baton_upgrade *up);
int netns_move(struct baton_upgrade *up);
int netns_check_old(struct baton_upgrade *up);
int netns_child_fd(const struct baton_upgrade *up);
void netns_free(struct baton_upgrade *up);

/* blackout.c: from READY to ACTIVE, and the ways back or forward */
int step_blackout(struct baton_upgrade *up);
int new_overdue(struct baton_upgrade *up, const struct nlattr **tb,
		int (*wait)(void *ctx, int ms, const struct nlattr **tb),
		void *ctx);
int roll_back(struct baton_upgrade *up, int err);
int roll_forward(struct baton_upgrade *up);

/*
 * ckpt_file.c: a checkpoint file (baton_proto.h's BATON_FILE_VERSION):
 * written whole by file_write(), read and checked whole by file_load()
 * (why says what is wrong with it)
 */
struct file_blob {
	__u32 kind;		/* enum baton_blob_kind */
	__u32 records;
	int memfd;		/* sealed: blob_send() sends it as it is */
};

struct file_listener {
	__u64 id;
	struct sockaddr_storage local;
	socklen_t local_len;
	__u32 v6only;
	__u32 file_flags;	/* O_NONBLOCK or 0 */
};

struct baton_checkpoint {
	struct baton_checkpoint_info info;
	struct versions ver;	/* the state's, as the old instance wrote it */
	struct file_listener *lsn;
	struct file_blob *blobs;	/* in the order they were handed over */
	struct baton_checkpoint_sock *conns;	/* file_load()'s view of them */
	unsigned int nlsn, nblobs, nconns;
	bool other_boot;	/* file_check_here(): made before this boot */
};

/* FILE_END as file_write() makes it: BYTES, then CRC32 */
#define FILE_END_LEN	(REC_HDRLEN + MNL_ATTR_HDRLEN + sizeof(__u64) + \
			 MNL_ATTR_HDRLEN + sizeof(__u32))

struct baton_tcp;
__u32 crc32_add(__u32 crc, const void *buf, size_t len);
int file_write(int fd, const struct baton_checkpoint *ck);
int file_load(struct baton_checkpoint *ck, const char *path, char *why,
	      size_t len);
/* takes memfd, on success */
int file_blob_add(struct baton_checkpoint *ck, __u32 kind, __u32 records,
		  int memfd);
void file_free(struct baton_checkpoint *ck);
void file_here(struct baton_checkpoint_info *in, const struct baton_tcp *tcp);
/* ckpt_restore.c: a file's listener listening again (freebind: its
 * address may not be up yet) */
int file_listener_open(const struct file_listener *l, bool freebind, int *out);
/* ckpt_hold.c: the freeze baton_checkpoint_hold() noted, or 0 */
__u32 hold_note_read(const struct baton_paths *paths);
int file_check_here(struct baton_checkpoint *ck, struct baton_tcp *tcp,
		    char *why, size_t len);

#endif /* BATON_LIB_COORDINATOR_H */
