// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * What an upgrade reached, and when; if it failed, the first reason, which
 * is the one that counts.
 */
#include <dirent.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <sys/wait.h>
#include <unistd.h>

#include "coordinator/coordinator.h"

static const char *const phase_names[] = {
	[BATON_PHASE_NONE]	  = "none",
	[BATON_PHASE_ATTACHED]	  = "attached",
	[BATON_PHASE_SPAWNED]	  = "spawned",
	[BATON_PHASE_READY]	  = "ready",
	[BATON_PHASE_DEACTIVATED] = "deactivated",
	[BATON_PHASE_ACTIVE]	  = "active",
	[BATON_PHASE_DONE]	  = "done",
	[BATON_PHASE_ROLLED_BACK] = "rolled-back",
	[BATON_PHASE_FAILED]	  = "failed",
};

const char *baton_phase_name(enum baton_phase phase)
{
	return phase < __BATON_PHASE_END ? phase_names[phase] : "unknown";
}

/*
 * The state letter /proc gives pid now ('R', 'S', 'D', 'T', ...; 0 when
 * it is gone); in wchan, if given, the kernel function it sleeps in ("" when
 * it runs or the kernel does not say); in cpu_ms, if given, the CPU time
 * it has used.
 */
char proc_state(pid_t pid, char *wchan, size_t len, unsigned long *cpu_ms)
{
	unsigned long utime, stime;
	char path[64], buf[512], *p;
	long hz;
	ssize_t n;
	int fd;

	if (wchan && len)
		wchan[0] = '\0';
	if (cpu_ms)
		*cpu_ms = 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* "pid (comm) S ...": comm may hold anything, the state follows it */
	p = strrchr(buf, ')');
	if (!p || p + 2 >= buf + n)
		return 0;
	/* after the state: ppid .. cmajflt, then utime and stime in ticks */
	hz = sysconf(_SC_CLK_TCK);
	if (cpu_ms && hz > 0 &&
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
		   &utime, &stime) == 2)
		*cpu_ms = (utime + stime) * 1000 / hz;
	if (wchan && len > 1) {
		snprintf(path, sizeof(path), "/proc/%d/wchan", pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			n = read(fd, wchan, len - 1);
			wchan[n > 0 ? n : 0] = '\0';
			if (!strcmp(wchan, "0"))
				wchan[0] = '\0';
			close(fd);
		}
	}
	return p[2];
}

/*
 * What /proc says of pid now, for a report of a step that timed out:
 * "WHO (pid N): state 'S' in FUNCTION, 12 ms of CPU", which tells a
 * process that never ran from one asleep or busy.
 */
void proc_note(pid_t pid, const char *who, char *buf, size_t len)
{
	unsigned long cpu_ms;
	char wchan[64];
	char state = proc_state(pid, wchan, sizeof(wchan), &cpu_ms);

	if (!state) {
		snprintf(buf, len, "%s (pid %d): gone", who, pid);
		return;
	}
	snprintf(buf, len, "%s (pid %d): state '%c'%s%s, %lu ms of CPU", who,
		 pid, state, wchan[0] ? " in " : "", wchan, cpu_ms);
}

/*
 * An address as /proc/net/tcp{,6} print it: the 32-bit words of the
 * address in network order, each as the number it is in memory here.
 */
static void proc_addr(const struct sockaddr_storage *a, char *buf, size_t len)
{
	const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)a;
	const struct sockaddr_in *a4 = (const struct sockaddr_in *)a;

	if (a->ss_family == AF_INET)
		snprintf(buf, len, "%08X", a4->sin_addr.s_addr);
	else
		snprintf(buf, len, "%08X%08X%08X%08X",
			 a6->sin6_addr.s6_addr32[0], a6->sin6_addr.s6_addr32[1],
			 a6->sin6_addr.s6_addr32[2], a6->sin6_addr.s6_addr32[3]);
}

static bool proc_addr_any(const char *hex)
{
	return strspn(hex, "0") == strlen(hex);
}

/*
 * The inode of a TCP socket listening where a would bind: its port, at
 * its address or either side's wildcard; 0 if none is seen.
 */
static unsigned long listener_inode(const struct sockaddr_storage *a)
{
	static const char *const files[] = { "/proc/net/tcp", "/proc/net/tcp6" };
	unsigned int port = ntohs(a->ss_family == AF_INET6 ?
		((const struct sockaddr_in6 *)a)->sin6_port :
		((const struct sockaddr_in *)a)->sin_port);
	char want[40], line[512], addr[40];
	unsigned long inode = 0;
	unsigned int i;

	proc_addr(a, want, sizeof(want));
	for (i = 0; i < 2 && !inode; i++) {
		bool same = (a->ss_family == AF_INET6) == (i == 1);
		FILE *f = fopen(files[i], "re");

		if (!f)
			continue;
		/* "sl local rem st tx:rx tr:when retr uid timeout inode" */
		while (!inode && fgets(line, sizeof(line), f)) {
			unsigned int lport, st;
			unsigned long ino;

			if (sscanf(line, " %*u: %32[0-9A-Fa-f]:%x %*[0-9A-Fa-f]:%*x %x %*x:%*x %*x:%*x %*x %*u %*u %lu",
				   addr, &lport, &st, &ino) != 4 ||
			    lport != port || st != 0x0a /* TCP_LISTEN */)
				continue;
			if (proc_addr_any(addr) || proc_addr_any(want) ||
			    (same && !strcasecmp(addr, want)))
				inode = ino;
		}
		fclose(f);
	}
	return inode;
}

/* Whether pid holds a descriptor whose link reads want */
static bool holds(pid_t pid, const char *want)
{
	char path[300], link[64];
	struct dirent *f;
	bool found = false;
	DIR *fds;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	fds = opendir(path);
	if (!fds)
		return false;
	while (!found && (f = readdir(fds))) {
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/%d/fd/%s", pid, f->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		found = !strcmp(link, want);
	}
	closedir(fds);
	return found;
}

/*
 * Who listens where a would bind, in this network namespace, for an error
 * that says what to stop: "pid N (comm)"; "a socket of no process visible
 * here" if a listener is seen but not its process; "" if none is seen.
 */
void port_holder(const struct sockaddr_storage *a, char *buf, size_t len)
{
	unsigned long inode = listener_inode(a);
	char want[64], path[64], comm[64] = "";
	struct dirent *p;
	pid_t pid = 0;
	DIR *procs;
	ssize_t n;
	int fd;

	buf[0] = '\0';
	if (!inode)
		return;
	snprintf(want, sizeof(want), "socket:[%lu]", inode);
	procs = opendir("/proc");
	if (!procs)
		return;
	while (!pid && (p = readdir(procs)))
		if (atoi(p->d_name) > 0 && holds(atoi(p->d_name), want))
			pid = atoi(p->d_name);
	closedir(procs);
	if (!pid) {
		snprintf(buf, len, "a socket of no process visible here");
		return;
	}
	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, comm, sizeof(comm) - 1);
		comm[n > 0 ? n : 0] = '\0';
		comm[strcspn(comm, "\n")] = '\0';
		close(fd);
	}
	snprintf(buf, len, "pid %d (%s)", pid, comm);
}

void reach(struct baton_upgrade *up, enum baton_phase phase)
{
	up->r.phase = phase;
	up->r.t_ns[phase] = now_ns();
}

int fail(struct baton_upgrade *up, int err, const char *fmt, ...)
{
	va_list ap;

	if (up->r.error)
		return err;	/* the first reason is the one that counts */
	va_start(ap, fmt);
	vsnprintf(up->r.reason, sizeof(up->r.reason), fmt, ap);
	va_end(ap);
	up->r.error = err;
	pr_err(&up->log, "%s", up->r.reason);
	return err;
}

const struct baton_upgrade_report *
baton_upgrade_report(const struct baton_upgrade *up)
{
	return &up->r;
}

/* The last line of the new instance's log, if it has one. */
static void last_words(const char *path, char *buf, size_t len)
{
	char tail[512];
	ssize_t n;
	char *end, *start;
	int fd;

	buf[0] = '\0';
	if (!path)
		return;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = pread(fd, tail, sizeof(tail) - 1,
		  lseek(fd, 0, SEEK_END) > (off_t)sizeof(tail) - 1 ?
		  lseek(fd, 0, SEEK_END) - (off_t)sizeof(tail) + 1 : 0);
	close(fd);
	if (n <= 0)
		return;
	tail[n] = '\0';
	end = tail + n;
	while (end > tail && end[-1] == '\n')
		*--end = '\0';
	start = strrchr(tail, '\n');
	snprintf(buf, len, "; its log %s ends: %s", path, start ? start + 1 : tail);
}

/* Why the new instance's end of its socket closed before it was active. */
void new_gone_why(struct baton_upgrade *up, char *buf, size_t len)
{
	char words[300];
	pid_t pid = up->r.new_pid;
	int st, tries;

	last_words(up->o.log_path, words, sizeof(words));
	/* its socket closes a moment before it has exited */
	for (tries = 0; tries < 50 && !up->new_reaped; tries++) {
		if (waitpid(pid, &up->new_status, WNOHANG) == pid)
			up->new_reaped = true;
		else
			usleep(2000);
	}
	st = up->new_status;
	if (up->new_reaped && WIFEXITED(st))
		snprintf(buf, len, "the new instance (pid %d) exited with status %d before it was active%s",
			 pid, WEXITSTATUS(st), words);
	else if (up->new_reaped && WIFSIGNALED(st))
		snprintf(buf, len, "the new instance (pid %d) was killed by signal %d (%s) before it was active%s",
			 pid, WTERMSIG(st), strsignal(WTERMSIG(st)), words);
	else
		snprintf(buf, len, "the new instance (pid %d) closed its connection before it was active%s",
			 pid, words);
}

static void put_step(struct baton_step *out, unsigned int *n, const char *who,
		     const char *name, __u64 ns)
{
	if (*n == BATON_MAX_STEPS)
		return;
	snprintf(out[*n].who, sizeof(out[*n].who), "%s", who);
	snprintf(out[*n].name, sizeof(out[*n].name), "%s", name);
	out[*n].ns = ns;
	(*n)++;
}

/*
 * The blackout's steps, placed on its critical path by their clocks
 * (CLOCK_MONOTONIC is one clock for every process): the message to the
 * old instance and its wakeup, the old's steps from when it stopped, the
 * new one's steps from where the old's end (the part of a step the new
 * took while the old still worked is off the path: a step wholly so is
 * left out), and the ACTIVE on its way back. Between them, what no
 * instance timed gets a step of ours ("ctl"): a message in flight and the
 * wakeup it takes. The steps then add up to the blackout. Without both
 * instances' times (an instance that went away) they stay as they came.
 */
void steps_place(struct baton_upgrade *up)
{
	struct baton_upgrade_report *r = &up->r;
	struct baton_step out[BATON_MAX_STEPS];
	__u64 old_ns = 0, new_ns = 0, at, start, end;
	unsigned int i, n = 0;

	for (i = 0; i < r->nsteps; i++) {
		if (!strcmp(r->steps[i].who, "old"))
			old_ns += r->steps[i].ns;
		else if (!strcmp(r->steps[i].who, "new"))
			new_ns += r->steps[i].ns;
	}
	if (!up->old_stop_ns || !r->activated_ns || !r->deactivate_ns ||
	    !r->active_ns || up->old_stop_ns < r->deactivate_ns ||
	    r->activated_ns < up->old_stop_ns + old_ns ||
	    r->active_ns < r->activated_ns || r->activated_ns < new_ns)
		return;
	put_step(out, &n, "ctl", "DEACTIVATE to old",
		 up->old_stop_ns - r->deactivate_ns);
	for (i = 0; i < r->nsteps; i++)
		if (!strcmp(r->steps[i].who, "old"))
			put_step(out, &n, "old", r->steps[i].name, r->steps[i].ns);
	at = up->old_stop_ns + old_ns;
	start = r->activated_ns - new_ns;
	if (start > at) {
		put_step(out, &n, "ctl", "old to new", start - at);
		at = start;
	}
	for (i = 0; i < r->nsteps; i++) {
		if (strcmp(r->steps[i].who, "new"))
			continue;
		end = start + r->steps[i].ns;
		if (end > at) {
			put_step(out, &n, "new", r->steps[i].name, end - at);
			at = end;
		}
		start = end;
	}
	put_step(out, &n, "ctl", "ACTIVE to us", r->active_ns - at);
	memcpy(r->steps, out, n * sizeof(out[0]));
	r->nsteps = n;
}
