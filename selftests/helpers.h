/* SPDX-License-Identifier: GPL-2.0-only */
/* What the selftests share: namespaces, processes, clients. */
#ifndef BATON_SELFTEST_HELPERS_H
#define BATON_SELFTEST_HELPERS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <linux/types.h>

/* A kvd instance of its own: namespace, run directory, listener. */
struct service {
	char rundir[64];
	char log[128];		/* the instances' stderr */
	char sock[128];		/* the control socket */
	int lfd, port;
	pid_t kvd;		/* the first instance, our child */
};

/*
 * batonctl --timeout-ms for an upgrade a test needs to go through: an
 * ASan kvd has taken over 5 s (the default step) to start on a host busy
 * with other runs, and the upgrade then rolled back
 */
#define SURE_STEP_MS	"30000"
/*
 * and its --blackout-timeout-ms: three CI runs at once (load 13) once
 * kept a new instance 2 s (the default) from activating, and the soak's
 * upgrade rolled back
 */
#define SURE_BLACKOUT_MS "20000"
/*
 * How long a test waits for a reply it must get, silence included: an
 * ASan server under such load has gone over 5 s; a hang still fails
 */
#define SURE_REPLY_MS	30000

int service_up(struct service *s, int family, int version);
void service_down(struct service *s);

/*
 * A cgroup of the v1 freezer of the test's own, for a process the kernel
 * must hold: frozen, it neither stops nor exits on a signal (SIGKILL
 * waits for the thaw). The hierarchy is mounted at a new directory under
 * /tmp (the host's own mount of it, or the VM's first).
 */
struct freezer {
	char mnt[64];
	char group[128];	/* "" until made */
};
/* the hierarchy mounted, the group made: 0, or -errno */
int freezer_make(struct freezer *f);
/* pid moved into the group: 0, or -errno */
int freezer_add(const struct freezer *f, pid_t pid);
/* the group frozen, or thawed, as its state then reads: 0, or -errno */
int freezer_set(const struct freezer *f, bool frozen);
/* thawed (what was held goes on, or dies of what is pending), removed */
void freezer_remove(struct freezer *f);

/* a network namespace of its own, with lo up */
int netns_enter(void);
/* that, and a bpffs of its own to pin in, mounted at a new dir */
int bpffs_private(char *dir, size_t len);
void bpffs_remove(const char *dir);
/* argv[0] run to its end (PATH searched); 0 if it exited 0, the failed
 * command on stderr */
int run_argv(const char *const *argv);
/* the same in network namespace ns; the caller stays where it was */
int run_argv_in(int ns, const char *const *argv);
/* a device's segmentation offload limited to segs segments a packet */
int link_gso_max_segs(const char *ifname, unsigned int segs);
/* a fresh run directory, exported as BATON_RUN_DIR; freed by rundir_remove */
int rundir_make(char *buf, size_t len);
void rundir_remove(const char *dir);

/* the binaries under test: $BATON_BIN/<name> */
const char *bin(const char *name, char *buf, size_t len);

/* loopback's address of family, at port, into ss: its length */
socklen_t loopback(int family, int port, struct sockaddr_storage *ss);
/* a loopback listener: on port, or on a free one it returns in *port */
int listener_on(int family, int port);
int listener_make(int family, int *port);
int client_connect(int family, int port);
/*
 * A connect to loopback's port begun, not waited for: its fd. Then its
 * end: 0 once connected (the fd made blocking), -ETIMEDOUT if it still
 * waits after timeout_ms, or the connect's error (-ECONNREFUSED).
 */
int client_connect_start(int family, int port);
/*
 * A TCP checkpoint's attributes (baton_tcp_checkpoint()) but those of
 * type, into out (which may be rec itself): its length
 */
size_t rec_without(const void *rec, size_t len, __u16 type, void *out);
int client_connect_end(int fd, int timeout_ms);

/* kvd-vN serving lfd as service "kvd"; waits for its control socket */
pid_t kvd_start(int version, int lfd, const char *rundir,
		const char *const *extra);
/* the same as service, its control socket and log <rundir>/<service>.sock, .log */
pid_t kvd_start_as(int version, int lfd, const char *rundir,
		   const char *service, const char *const *extra);
int wait_path(const char *path, int timeout_ms);
int stop_and_reap(pid_t pid, int sig);
bool pid_alive(pid_t pid);
int pid_wait_gone(pid_t pid, int timeout_ms);
/* the live processes in our network namespace but us and known: how many */
int netns_others(const pid_t *known, int nknown, pid_t *out, int max);
/*
 * SIGKILLs every other process in our network namespace, which must not
 * be the one the test started in, until none is left: 0, or -errno
 */
int netns_reap(void);

/* a RESP request and its reply; reply is NUL-terminated, length returned */
int resp_send(int fd, int argc, const char *const *argv);
ssize_t resp_reply(int fd, char *buf, size_t len, int timeout_ms);
/* one command, with the whole reply compared; 0 if it matched */
int resp_expect(int fd, const char *want, int argc, ...);
/* INCR c<i> on the i-th of n connections, each to count: how many were not */
int incr_each(const int *fds, int n, int count);
/* len bytes of a pattern that repeats rarely, NUL-terminated; malloc'ed */
char *big_value(size_t len);
/*
 * Clients each INCRementing a counter of its own (c<i> on fds[i]), every
 * reply checked: a thread goes round them until incr_load_stop().
 */
struct incr_load {
	int *fds;
	int *count;		/* each client's counter, as last answered */
	int n;
	volatile bool stop;
	int bad;		/* replies that were not the one expected */
	unsigned long requests;
	pthread_t thread;
	bool running;
};

/* one INCR on client i: 0 if its reply was the next number */
int incr_load_one(struct incr_load *c, int i);
int incr_load_start(struct incr_load *c);
/* stops the thread once it has gone round rounds more times (0: at once) */
int incr_load_stop(struct incr_load *c, int rounds);

/* INFO's process_id and kvd_version */
int kvd_info(int fd, pid_t *pid, int *version);

/* runs $BATON_BIN/batonctl with args; its stdout into out */
int batonctl(char *out, size_t len, const char *const *args);
/* the same in the background: its pid, its stdout on *out_fd */
pid_t batonctl_start(const char *const *args, int *out_fd);
/* one batonctl_start() gave, killed (SIGKILL) and reaped: 0, or -errno */
int batonctl_kill(pid_t pid, int out_fd);
/*
 * batonctl args again and again (every 10 ms, at most 30 s) until its
 * output (in out) holds want: 0, -ETIMEDOUT, or its failure
 */
int batonctl_until(char *out, size_t len, const char *const *args,
		   const char *want);
/* reads fd until EOF: its length, or -ETIMEDOUT if EOF did not come */
ssize_t read_to_eof(int fd, char *buf, size_t len, int timeout_ms);
/* waits for our child pid to exit: its wait status, or -ETIMEDOUT */
int wait_exit(pid_t pid, int timeout_ms);
/* the children of pid, from /proc: how many, at most max */
int children_of(pid_t pid, pid_t *out, int max);
/* the pid of the instance that answers INFO on the service's port */
pid_t serving_pid(const struct service *s, int family);

/* a connection to a control socket (AF_UNIX, SOCK_SEQPACKET) */
int unix_connect(const char *path);
/* fake_peer, which sits beside the running test program */
const char *fake_peer_path(char *buf, size_t len);

/* a number after "key": in batonctl's JSON, or -1 */
long long json_num(const char *json, const char *key);
/* a string after "key": copied into buf, or NULL */
const char *json_str(const char *json, const char *key, char *buf,
		     size_t len);

/* A counter of /proc/net/snmp ("Tcp") or /proc/net/netstat ("TcpExt"), or -1 */
long long counter(const char *file, const char *proto, const char *key);
/*
 * The TCP counters a move must leave alone. Not EstabResets: a socket let
 * go of in repair mode leaves ESTABLISHED for CLOSE, which counts there,
 * though nothing is sent.
 */
struct counters {
	long long timeouts, out_rsts, abort_data, abort_close;
};

void counters_read(struct counters *c);
/*
 * Since before: no reset sent, no abort (printed, with the timeouts,
 * which are not asserted): 0, or -EBADMSG
 */
int counters_unmoved(const struct counters *before);

/*
 * Clients that keep traffic going both ways while their connection moves,
 * each a thread (pthread_create(..., slow_read, &s)). The slow reader:
 * reads everything the window-limited connection gets, READ_CHUNK every
 * READ_EVERY_US, so that the server always has bytes in flight and more
 * unsent, into got, for the caller to check whole.
 */
#define READ_CHUNK	8192
#define READ_EVERY_US	5000
struct slow {
	int fd;
	const char *big;
	char *got;
	size_t want, have;
	int err;
	unsigned long long longest_gap_us;	/* between two reads */
};

void *slow_read(void *arg);

/*
 * The steady sender: an INCR of "steady" every SEND_EVERY_US, its replies
 * read as they come and checked in order (:1, :2, ...), until told to
 * stop and every reply is in.
 */
#define SEND_EVERY_US	2000
struct sender {
	int fd;
	volatile int stop;
	unsigned int sent, answered;
	int err;
	unsigned long long longest_gap_us;	/* between two replies */
};

void *send_steadily(void *arg);

/*
 * The clients repair_test and noverlap_test move, but the steady sender:
 * keys (k1 set, counter at 1), half (half a request sent, in kvd's own
 * record of the connection) and window (a 64 KiB receive buffer, gets
 * GETs of big sent, then two INCR after, nothing read: replies larger
 * than its window stay in the server, sent and unsent). 0, or -errno.
 */
int moved_clients_setup(int family, int port, int *keys, int *half,
			int *window, const char *big, int gets);
/*
 * What repair_test's and noverlap_test's clients must have after their
 * connections moved, each 0 if so, else -EBADMSG and the first difference
 * on stderr: the slow reader, gets replies of its big value (big_len
 * bytes) then ":1" and ":2"; the half request ("SET half wo" + "rld")
 * completes, key k1 is "v1", INCR counter says 2 and INCR after 3.
 */
int slow_check(const struct slow *s, int gets, size_t big_len);
int moved_clients_check(int half, int keys, int window);

/* The instances' log, on stderr as "# " lines: for a test that failed. */
void service_log_tail(const struct service *s, int lines);
#define service_teardown(s)					\
	do {							\
		if (!_metadata->passed)				\
			service_log_tail(s, 30);		\
		service_down(s);				\
	} while (0)

#endif
