/* SPDX-License-Identifier: GPL-2.0-only */
/* baton-bench: load generator and judge of upgrades. */
#ifndef BATON_BENCH_H
#define BATON_BENCH_H

#include <stdbool.h>
#include <netinet/in.h>
#include <sys/types.h>
#include <time.h>
#include <linux/types.h>

#define MAX_UPGRADES	256
#define MAX_WORKERS	16
#define CONNS_PER_WORKER 4000	/* well under a process's 20,000 files */
#define MAX_PROCS	8	/* --procs: kvd instances upgraded together */

/* latency histogram: 10 us steps to 100 ms, then 1 ms steps to 10 s */
#define FINE_US		10
#define FINE_BINS	10000
#define COARSE_BINS	9900
#define HIST_BINS	(FINE_BINS + COARSE_BINS + 1)

struct hist {
	__u64 n;
	__u64 max_us;
	__u32 bin[HIST_BINS];
};

/*
 * What --plot draws, in a bounded space however long the run: the slowest
 * request of each time bucket (all requests count; the buckets widen, two
 * merged into one, when the run outgrows them), and a uniform sample of
 * requests, each kept with probability 2^-level, the level going up when
 * the sample is full (a request's own level is geometric: see plot.c).
 */
#define PLOT_BUCKETS	2048
#define PLOT_WIDTH_NS	10000000ULL	/* a bucket's first width: 10 ms */
#define PLOT_POINTS	4096		/* the sample, in each worker */
#define PLOT_KEEP	3000		/* the sample, in each panel */

struct plot_point {
	__u64 t_ns;		/* when the request was sent, after the origin */
	__u32 us;		/* its latency */
	__u32 level;
};

struct plot_part {
	__u64 width_ns;		/* of a bucket */
	__u64 requests;		/* every one seen */
	__u32 level;		/* the sample holds those of this level up */
	__u32 npoints;
	__u32 rng;
	__u32 bucket_max_us[PLOT_BUCKETS];
	struct plot_point pt[PLOT_POINTS];
};

enum mode { MODE_BATON, MODE_RESTART, MODE_DRAIN, MODE_REUSEPORT };

struct window {
	__u64 start_ns, end_ns;
};

/* how long replies in flight at the stop may take to come in */
#define BENCH_DRAIN_NS		2000000000ULL
/* a blocking read of a reply that never comes gives up after this */
#define BENCH_READ_TIMEOUT_S	10

struct worker_result {
	__u64 requests;
	__u64 dropped;
	__u64 unanswered;	/* sent, no reply 2 s after the stop */
	__u64 integrity;
	__u64 failed_connects;	/* refused, reset or otherwise failed */
	__u64 refused;		/* connect() refused */
	__u64 resets;		/* reset before the reply */
	__u64 slow_connects;
	__u64 connected;	/* persistent connections up */
	__u64 writes;		/* --writers: SETs answered */
	__u64 read_back;	/* keys read back with their last value */
	__u64 read_wrong;	/* keys read back with another, or unread */
	__u64 stall_max_us[MAX_UPGRADES];
	struct hist normal;	/* requests that overlapped no upgrade */
	struct hist stall;	/* requests that overlapped one */
	struct plot_part plot;	/* with --plot */
	bool done;
};

/* shared between the judge and its workers (MAP_SHARED) */
struct shared {
	volatile int stop;
	volatile int classify;	/* windows are final: judge your samples */
	volatile __u64 origin_ns;	/* --plot: time 0, once all are connected */
	unsigned int nwindows;
	struct window windows[MAX_UPGRADES];
	struct worker_result w[MAX_WORKERS];
};

struct bench_opts {
	unsigned int conns;
	unsigned int procs;	/* --procs: kvd instances, each its own port */
	double rate;
	double connect_rate;
	unsigned int upgrades;
	unsigned int interval_ms;
	int port;
	bool json;
	const char *plot;	/* --plot FILE.svg */
	const char *bin_dir;
	bool own_listeners;	/* kvd --steer, batonctl --listeners own */
	bool repair;		/* batonctl upgrade --mode repair */
	bool netns;		/* --netns: the service moves between A and B */
	unsigned int timeout_ms, blackout_timeout_ms;	/* batonctl's; 0: its own */
	const char *reports;	/* --reports FILE: batonctl's, a line each */
	unsigned int nbaselines;
	enum mode baselines[3];
	unsigned int keys;	/* --keys: preloaded, for the writers */
	unsigned int value_size;
	unsigned int writers;	/* --writers: random SETs, unpaced */
};

struct load_spec {
	unsigned int id;	/* worker index */
	unsigned int first, count;	/* its persistent connections */
	double rate;
	double connect_rate;	/* the connector worker only */
	struct in_addr addr;	/* the service's */
	int port;
	unsigned int keys, value_size;	/* writers: the keyspace */
	unsigned int writers;	/* writers: how many in all; 0: not one */
};

static inline __u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* load.c */
int load_run(const struct load_spec *spec, struct shared *sh);

/* writes.c: the write-heavy load */
int writes_preload(struct in_addr addr, int port, unsigned int keys,
		   unsigned int vsize);
int writes_run(const struct load_spec *spec, struct shared *sh);

/* judge.c */
void hist_add(struct hist *h, __u64 us);
void hist_merge(struct hist *into, const struct hist *h);
double hist_pct_ms(const struct hist *h, double pct);
struct samples {
	__u64 *v;		/* start, end pairs */
	size_t n, cap;
};
int samples_add(struct samples *s, __u64 start, __u64 end);
void samples_judge(const struct samples *s, const struct shared *sh,
		   struct worker_result *r);

/*
 * netns.c, --netns: two namespaces, A and B, each with a veth on a bridge
 * in ours, where the clients are. The service address starts in A; each
 * upgrade moves the service and the address to the other.
 */
#define NETNS_SUBNET	"10.77.0."	/* .1 here, .2 A, .3 B */
#define NETNS_ADDR	NETNS_SUBNET "10"	/* the service's, A's first */
#define NETNS_PLEN	24
#define NETNS_DEV	"bb0"		/* the veth's name in A and in B */

struct bench_netns {
	char name[2][32];	/* ip netns names */
	char path[2][64];	/* /run/netns/NAME: batonctl --netns */
	int fd[2];
	char bridge[16];	/* here */
	bool made;
};

int bench_netns_make(struct bench_netns *n);
void bench_netns_remove(struct bench_netns *n);

/* instances.c */
struct instance_set {
	enum mode mode;
	bool own;		/* each instance its own steered listener */
	bool repair;		/* connections move as TCP checkpoints */
	char run_dir[64];
	char service[32];
	char log[128];
	const char *bin_dir;
	struct in_addr addr;
	int port;
	unsigned int timeout_ms, blackout_timeout_ms;	/* batonctl's */
	const char *reports;	/* --reports FILE, or NULL */
	const struct bench_netns *ns;	/* --netns, else NULL */
	unsigned int ns_cur;	/* --netns: where the service is, 0 (A) or 1 */
	pid_t serving;		/* the instance that serves now */
	unsigned int version;
	pid_t draining[MAX_UPGRADES];	/* drain mode: old instances */
	__u64 drain_since[MAX_UPGRADES];
	__u64 drain_gone[MAX_UPGRADES];
	unsigned int ndraining;
};

struct upgrade_result {
	int ok;
	struct window w;
	double blackout_ms;
	double steps_ms;	/* the report's blackout steps, added up */
	double old_exit_ms;
	long rss_old_kb, rss_new_kb;
	unsigned int rounds;	/* of phase 1's state */
	bool outrun;		/* the rounds ended with writes outrunning them */
	/* --netns: the move's steps after activation (batonctl's report) */
	double ns_add_ms, ns_announce_ms, ns_del_ms, ns_thaw_ms;
	long long ns_delivered;	/* segments held, then delivered in B */
	char error[200];
};

int instances_start(struct instance_set *is, unsigned int index,
		    const char *bin_dir, struct in_addr addr, int port,
		    enum mode mode, bool own);
int instances_upgrade(struct instance_set *is, enum mode mode,
		      struct upgrade_result *r);
int instances_upgrade_all(struct instance_set *is, unsigned int n,
			  enum mode mode, struct upgrade_result *each,
			  struct upgrade_result *r);
void instances_poll_draining(struct instance_set *is);
void instances_stop(struct instance_set *is);
long rss_kb(pid_t pid);

/* netstat.c: the namespace's TCP counters */
struct net_counters {
	__u64 rto;		/* TcpExt TCPTimeouts */
	__u64 loss_probes;	/* TcpExt TCPLossProbes */
	__u64 retrans;		/* Tcp RetransSegs */
};
int net_counters_read(struct net_counters *c);
void net_counters_sub(struct net_counters *after,
		      const struct net_counters *before);

/* plot.c */
void plot_add(struct plot_part *p, __u64 origin_ns, __u64 start, __u64 end);

struct plot_panel {
	const char *name;	/* the mode */
	char note[160];		/* what the panel's title adds */
	double seconds;		/* from the origin to the end of the load */
	__u64 width_ns;
	__u64 requests;
	__u32 level;
	__u32 bucket_max_us[PLOT_BUCKETS];
	struct plot_point *pt;
	unsigned int npt;
	unsigned int nwin;
	struct {
		double start, end;	/* the upgrade, s after the origin */
		double blackout_ms;	/* ending at end; 0 if none */
	} win[MAX_UPGRADES];
};

/* The workers' parts of one mode, merged into a panel. */
int plot_merge(struct plot_panel *panel, const struct shared *sh,
	       unsigned int nworkers);
/* gnuplot draws the panels into path (SVG). */
int plot_write(const char *path, const char *title,
	       const struct plot_panel *panels, unsigned int n);

/* floor.c */
double floor_rtt_us(void);
double floor_scm_us_per_fd(double rtt_us);

#endif
