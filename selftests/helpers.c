// SPDX-License-Identifier: GPL-2.0-only
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <ftw.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>

#include "helpers.h"

/*
 * A network namespace and a bpffs of our own, in a mount namespace of our
 * own: pins never meet another test's. The bpffs's path into dir.
 */
int bpffs_private(char *dir, size_t len)
{
	int err = netns_enter();

	if (err)
		return err;
	if (unshare(CLONE_NEWNS) ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		return -errno;
	snprintf(dir, len, "/tmp/baton-bpffs.XXXXXX");
	if (!mkdtemp(dir) || mount("bpf", dir, "bpf", 0, NULL))
		return -errno;
	return 0;
}

void bpffs_remove(const char *dir)
{
	umount(dir);
	rmdir(dir);
}

/* the network namespace the test started in, before netns_enter() */
static char outer_ns[64];

int netns_enter(void)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	int fd, err = 0;

	if (!outer_ns[0] &&
	    readlink("/proc/self/ns/net", outer_ns, sizeof(outer_ns) - 1) < 0)
		return -errno;
	if (unshare(CLONE_NEWNET) < 0)
		return -errno;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		err = -errno;
	ifr.ifr_flags |= IFF_UP;
	if (!err && ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		err = -errno;
	close(fd);
	return err;
}

int run_argv(const char *const *argv)
{
	int status;
	pid_t pid;

	pid = fork();
	if (pid < 0)
		return -errno;
	if (!pid) {
		execvp(argv[0], (char *const *)argv);
		fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "failed:");
		for (int i = 0; argv[i]; i++)
			fprintf(stderr, " %s", argv[i]);
		fprintf(stderr, "\n");
		return -EIO;
	}
	return 0;
}

int run_argv_in(int ns, const char *const *argv)
{
	int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	int err;

	if (home < 0)
		return -errno;
	err = setns(ns, CLONE_NEWNET) ? -errno : run_argv(argv);
	if (setns(home, CLONE_NEWNET))
		err = -errno;
	close(home);
	return err;
}

static int gso_segs_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nlattr *attr;

	mnl_attr_for_each(attr, nlh, sizeof(struct ifinfomsg))
		if (mnl_attr_get_type(attr) == IFLA_GSO_MAX_SEGS)
			*(unsigned int *)data = mnl_attr_get_u32(attr);
	return MNL_CB_OK;
}

/* RTM_NEWLINK with segs, or RTM_GETLINK into *segs: one request */
static int link_request(struct mnl_socket *nl, int type, int ifindex,
			unsigned int *segs)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifm;
	ssize_t n;

	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = type;
	ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_family = AF_UNSPEC;
	ifm->ifi_index = ifindex;
	if (type == RTM_NEWLINK)
		mnl_attr_put_u32(nlh, IFLA_GSO_MAX_SEGS, *segs);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	do {
		n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (n < 0)
			return -errno;
		n = mnl_cb_run(buf, n, type, mnl_socket_get_portid(nl),
			       type == RTM_GETLINK ? gso_segs_cb : NULL, segs);
	} while (n > 0);
	return n < 0 ? -errno : 0;
}

int link_gso_max_segs(const char *ifname, unsigned int segs)
{
	int ifindex = if_nametoindex(ifname), err;
	unsigned int now = 0;
	struct mnl_socket *nl;

	if (!ifindex)
		return -ENODEV;
	nl = mnl_socket_open(NETLINK_ROUTE);
	if (!nl)
		return -errno;
	err = mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) ? -errno : 0;
	/* set, then read back: a kernel may take the attribute and ignore it */
	err = err ?: link_request(nl, RTM_NEWLINK, ifindex, &segs) ?:
	      link_request(nl, RTM_GETLINK, ifindex, &now);
	if (!err && now != segs)
		err = -EOPNOTSUPP;
	mnl_socket_close(nl);
	return err;
}

int rundir_make(char *buf, size_t len)
{
	snprintf(buf, len, "/tmp/baton-selftest.XXXXXX");
	if (!mkdtemp(buf))
		return -errno;
	return setenv("BATON_RUN_DIR", buf, 1) ? -errno : 0;
}

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void rundir_remove(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

const char *bin(const char *name, char *buf, size_t len)
{
	const char *dir = getenv("BATON_BIN");

	snprintf(buf, len, "%s/%s", dir ? dir : "../build/asan", name);
	return buf;
}

socklen_t loopback(int family, int port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_addr = in6addr_loopback;
		s6->sin6_port = htons(port);
		return sizeof(*s6);
	}
	((struct sockaddr_in *)ss)->sin_family = AF_INET;
	((struct sockaddr_in *)ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	((struct sockaddr_in *)ss)->sin_port = htons(port);
	return sizeof(struct sockaddr_in);
}

int listener_on(int family, int port)
{
	struct sockaddr_storage ss;
	socklen_t len = loopback(family, port, &ss);
	int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 4096) < 0) {
		close(fd);
		return -errno;
	}
	return fd;
}

int listener_make(int family, int *port)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd = listener_on(family, 0);

	if (fd < 0)
		return fd;
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
		close(fd);
		return -errno;
	}
	*port = ntohs(family == AF_INET6 ?
		      ((struct sockaddr_in6 *)&ss)->sin6_port :
		      ((struct sockaddr_in *)&ss)->sin_port);
	return fd;
}

int client_connect(int family, int port)
{
	struct sockaddr_storage ss;
	socklen_t len = loopback(family, port, &ss);
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
		close(fd);
		return -errno;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

size_t rec_without(const void *rec, size_t len, __u16 type, void *out)
{
	const struct nlattr *attr;
	size_t off = 0;

	mnl_attr_for_each_payload(rec, len) {
		size_t step = MNL_ALIGN(attr->nla_len);

		if (mnl_attr_get_type(attr) == type)
			continue;
		memmove((char *)out + off, attr, step);
		off += step;
	}
	return off;
}

int client_connect_start(int family, int port)
{
	struct sockaddr_storage ss;
	socklen_t len = loopback(family, port, &ss);
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&ss, len) < 0 &&
	    errno != EINPROGRESS) {
		close(fd);
		return -errno;
	}
	return fd;
}

int client_connect_end(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	socklen_t len = sizeof(int);
	int err, fl;

	err = poll(&p, 1, timeout_ms);
	if (err < 0)
		return -errno;
	if (!err)
		return -ETIMEDOUT;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len))
		return -errno;
	if (err)
		return -err;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK))
		return -errno;
	return 0;
}

int wait_path(const char *path, int timeout_ms)
{
	for (; timeout_ms > 0; timeout_ms -= 5) {
		if (access(path, F_OK) == 0)
			return 0;
		usleep(5000);
	}
	return -ETIMEDOUT;
}

pid_t kvd_start(int version, int lfd, const char *rundir,
		const char *const *extra)
{
	return kvd_start_as(version, lfd, rundir, "kvd", extra);
}

pid_t kvd_start_as(int version, int lfd, const char *rundir,
		   const char *service, const char *const *extra)
{
	char path[512], name[16], fdstr[16], sock[512], log[512];
	const char *argv[32] = { path, "--quiet", "--listen-fd", fdstr };
	int argc = lfd >= 0 ? 4 : 2;	/* lfd < 0: kvd opens its own */
	pid_t pid;

	snprintf(sock, sizeof(sock), "%s/%s.sock", rundir, service);
	unlink(sock);
	snprintf(log, sizeof(log), "%s/%s.log", rundir, service);
	snprintf(fdstr, sizeof(fdstr), "%d", lfd);
	snprintf(name, sizeof(name), "kvd-v%d", version);
	bin(name, path, sizeof(path));
	if (strcmp(service, "kvd")) {
		argv[argc++] = "--service";
		argv[argc++] = service;
	}
	while (extra && *extra && argc < 30)
		argv[argc++] = *extra++;
	argv[argc] = NULL;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		if (fd >= 0)
			dup2(fd, 2);
		if (lfd >= 0)
			fcntl(lfd, F_SETFD, 0);	/* inherited on purpose */
		execv(path, (char *const *)argv);
		_exit(127);
	}
	if (wait_path(sock, 5000)) {
		stop_and_reap(pid, SIGKILL);
		return -ETIMEDOUT;
	}
	return pid;
}

/* text into path, at once: 0, or -errno */
static int write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), err = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		err = -errno;
	close(fd);
	return err;
}

int freezer_make(struct freezer *f)
{
	strcpy(f->mnt, "/tmp/baton-freezer-XXXXXX");
	f->group[0] = '\0';
	if (!mkdtemp(f->mnt)) {
		f->mnt[0] = '\0';
		return -errno;
	}
	if (mount("none", f->mnt, "cgroup", 0, "freezer"))
		return -errno;
	snprintf(f->group, sizeof(f->group), "%s/baton-held-%d", f->mnt,
		 getpid());
	if (mkdir(f->group, 0755)) {
		f->group[0] = '\0';
		return -errno;
	}
	return 0;
}

int freezer_add(const struct freezer *f, pid_t pid)
{
	char path[192], text[16];

	snprintf(path, sizeof(path), "%s/tasks", f->group);
	snprintf(text, sizeof(text), "%d", pid);
	return write_text(path, text);
}

int freezer_set(const struct freezer *f, bool frozen)
{
	const char *want = frozen ? "FROZEN" : "THAWED";
	char path[192], state[16];
	int i, err, fd;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/freezer.state", f->group);
	err = write_text(path, want);
	for (i = 0; !err && i < 500; i++) {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		n = read(fd, state, sizeof(state) - 1);
		close(fd);
		state[n > 0 ? n : 0] = '\0';
		if (!strncmp(state, want, strlen(want)))
			return 0;
		usleep(10000);
	}
	return err ?: -ETIMEDOUT;
}

void freezer_remove(struct freezer *f)
{
	if (f->group[0]) {
		freezer_set(f, false);
		usleep(200000);		/* what was killed meanwhile goes */
		rmdir(f->group);
		f->group[0] = '\0';
	}
	if (f->mnt[0]) {
		umount(f->mnt);
		rmdir(f->mnt);
		f->mnt[0] = '\0';
	}
}

/* A zombie is gone too: nothing may reap it here. */
bool pid_alive(pid_t pid)
{
	char path[64], stat[256], *p;
	FILE *f;
	bool alive = false;

	if (pid <= 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	if (fgets(stat, sizeof(stat), f) && (p = strrchr(stat, ')')))
		alive = p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
	fclose(f);
	return alive;
}

int netns_others(const pid_t *known, int nknown, pid_t *out, int max)
{
	char ours[64] = "", theirs[64], path[64];
	struct dirent *d;
	int n = 0, i;
	DIR *dir;

	if (readlink("/proc/self/ns/net", ours, sizeof(ours) - 1) < 0)
		return -errno;
	dir = opendir("/proc");
	if (!dir)
		return -errno;
	while ((d = readdir(dir)) && n < max) {
		pid_t pid = atoi(d->d_name);
		ssize_t len;

		if (pid <= 0 || pid == getpid() || !pid_alive(pid))
			continue;
		for (i = 0; i < nknown && known[i] != pid; i++)
			;
		if (i < nknown)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
		len = readlink(path, theirs, sizeof(theirs) - 1);
		if (len < 0)
			continue;
		theirs[len] = '\0';
		if (!strcmp(ours, theirs))
			out[n++] = pid;
	}
	closedir(dir);
	return n;
}

int netns_reap(void)
{
	char ours[64] = "";
	pid_t left[64];
	int n, i, rounds;

	/* never outside a namespace netns_enter() made */
	if (readlink("/proc/self/ns/net", ours, sizeof(ours) - 1) < 0)
		return -errno;
	if (!outer_ns[0] || !strcmp(ours, outer_ns))
		return -EPERM;
	for (rounds = 0; rounds < 10; rounds++) {
		n = netns_others(NULL, 0, left, 64);
		if (n <= 0)
			return n;
		for (i = 0; i < n; i++)
			kill(left[i], SIGKILL);
		for (i = 0; i < n; i++)
			pid_wait_gone(left[i], 2000);
	}
	return -EBUSY;
}

int pid_wait_gone(pid_t pid, int timeout_ms)
{
	for (; timeout_ms > 0; timeout_ms -= 5) {
		if (!pid_alive(pid))
			return 0;
		usleep(5000);
	}
	return -ETIMEDOUT;
}

int stop_and_reap(pid_t pid, int sig)
{
	int status = 0;

	if (pid <= 0)
		return -EINVAL;
	kill(pid, sig);
	if (waitpid(pid, &status, 0) < 0) {
		/* not our child (started by batonctl): wait for it to go */
		return pid_wait_gone(pid, 5000);
	}
	return status;
}

int resp_send(int fd, int argc, const char *const *argv)
{
	char head[64];
	int i, n;

	/* a peer that reset the connection: -EIO, never SIGPIPE */
	n = snprintf(head, sizeof(head), "*%d\r\n", argc);
	if (send(fd, head, n, MSG_NOSIGNAL) != n)
		return -EIO;
	for (i = 0; i < argc; i++) {
		size_t len = strlen(argv[i]);

		n = snprintf(head, sizeof(head), "$%zu\r\n", len);
		if (send(fd, head, n, MSG_NOSIGNAL) != n ||
		    send(fd, argv[i], len, MSG_NOSIGNAL) != (ssize_t)len ||
		    send(fd, "\r\n", 2, MSG_NOSIGNAL) != 2)
			return -EIO;
	}
	return 0;
}

/* How long the reply at the front of buf is, or 0 if it is not all there. */
static size_t reply_len(const char *buf, size_t have)
{
	const char *nl = memchr(buf, '\n', have);
	long n;

	if (!nl)
		return 0;
	if (buf[0] != '$')
		return nl - buf + 1;
	n = atol(buf + 1);
	if (n < 0)
		return nl - buf + 1;
	if (have < (size_t)(nl - buf + 1) + n + 2)
		return 0;
	return nl - buf + 1 + n + 2;
}

ssize_t resp_reply(int fd, char *buf, size_t len, int timeout_ms)
{
	size_t have = 0;

	while (have < len - 1) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (have && reply_len(buf, have))
			break;
		if (poll(&p, 1, timeout_ms) <= 0)
			return -ETIMEDOUT;
		n = read(fd, buf + have, len - 1 - have);
		if (n <= 0)
			return n < 0 ? -errno : -ECONNRESET;
		have += n;
	}
	buf[have] = '\0';
	return have;
}

int resp_expect(int fd, const char *want, int argc, ...)
{
	const char *argv[16];
	char reply[4096];
	va_list ap;
	ssize_t n;
	int i;

	va_start(ap, argc);
	for (i = 0; i < argc && i < 16; i++)
		argv[i] = va_arg(ap, const char *);
	va_end(ap);
	if (resp_send(fd, argc, argv))
		return -EIO;
	/* a reply missed is a stream out of step: give it the sure time */
	n = resp_reply(fd, reply, sizeof(reply), SURE_REPLY_MS);
	if (n < 0)
		return n;
	if (strcmp(reply, want)) {
		fprintf(stderr, "# %s: wanted %s got %s", argv[0], want, reply);
		return -EBADMSG;
	}
	return 0;
}

char *big_value(size_t len)
{
	char *v = malloc(len + 1);
	size_t i;

	for (i = 0; v && i < len; i++)
		v[i] = 'a' + (i * 7 + i / 4096) % 26;
	if (v)
		v[len] = '\0';
	return v;
}

int incr_each(const int *fds, int n, int count)
{
	char key[16], want[16];
	int i, bad = 0;

	snprintf(want, sizeof(want), ":%d\r\n", count);
	for (i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "c%d", i);
		bad += resp_expect(fds[i], want, 2, "INCR", key) != 0;
	}
	return bad;
}

int incr_load_one(struct incr_load *c, int i)
{
	char key[16], want[16];
	int err;

	snprintf(key, sizeof(key), "c%d", i);
	snprintf(want, sizeof(want), ":%d\r\n", c->count[i] + 1);
	err = resp_expect(c->fds[i], want, 2, "INCR", key);
	if (!err)
		c->count[i]++;
	return err;
}

/* Round after round over every client until told to stop. */
static void *incr_load_run(void *arg)
{
	struct incr_load *c = arg;
	int i;

	while (!c->stop)
		for (i = 0; i < c->n && !c->stop; i++) {
			c->bad += incr_load_one(c, i) != 0;
			__atomic_fetch_add(&c->requests, 1, __ATOMIC_RELAXED);
		}
	return NULL;
}

int incr_load_start(struct incr_load *c)
{
	int err;

	c->stop = false;
	err = pthread_create(&c->thread, NULL, incr_load_run, c);
	if (err)
		return -err;
	c->running = true;
	return 0;
}

int incr_load_stop(struct incr_load *c, int rounds)
{
	unsigned long until = __atomic_load_n(&c->requests, __ATOMIC_RELAXED) +
			      (unsigned long)rounds * c->n;

	if (!c->running)
		return 0;
	while (__atomic_load_n(&c->requests, __ATOMIC_RELAXED) < until)
		usleep(10000);
	c->stop = true;
	c->running = false;
	return -pthread_join(c->thread, NULL);
}

static int kvd_info_within(int fd, pid_t *pid, int *version, int timeout_ms);

int kvd_info(int fd, pid_t *pid, int *version)
{
	return kvd_info_within(fd, pid, version, SURE_REPLY_MS);
}

static int kvd_info_within(int fd, pid_t *pid, int *version, int timeout_ms)
{
	const char *argv[] = { "INFO" };
	char reply[4096], *p;
	ssize_t n;

	if (resp_send(fd, 1, argv))
		return -EIO;
	n = resp_reply(fd, reply, sizeof(reply), timeout_ms);
	if (n < 0)
		return n;
	p = strstr(reply, "process_id:");
	if (!p)
		return -EBADMSG;
	*pid = atoi(p + strlen("process_id:"));
	p = strstr(reply, "kvd_version:");
	if (!p)
		return -EBADMSG;
	*version = atoi(p + strlen("kvd_version:"));
	return 0;
}

long long json_num(const char *json, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(json, pat);
	return p ? atoll(p + strlen(pat)) : -1;
}

int service_up(struct service *s, int family, int version)
{
	int err = netns_enter() ?: rundir_make(s->rundir, sizeof(s->rundir));

	if (err)
		return err;
	snprintf(s->log, sizeof(s->log), "%s/kvd.log", s->rundir);
	snprintf(s->sock, sizeof(s->sock), "%s/kvd.sock", s->rundir);
	s->lfd = listener_make(family, &s->port);
	if (s->lfd < 0)
		return s->lfd;
	s->kvd = kvd_start(version, s->lfd, s->rundir, NULL);
	return s->kvd < 0 ? s->kvd : 0;
}

void service_down(struct service *s)
{
	if (s->kvd > 0)
		stop_and_reap(s->kvd, SIGKILL);
	/* the instances upgrades started, which are not our children */
	netns_reap();
	close(s->lfd);
	rundir_remove(s->rundir);
}

pid_t batonctl_start(const char *const *args, int *out_fd)
{
	const char *argv[32];
	char path[512];
	int pipefd[2], argc = 1;
	pid_t pid;

	bin("batonctl", path, sizeof(path));
	argv[0] = path;
	while (*args && argc < 31)
		argv[argc++] = *args++;
	argv[argc] = NULL;
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		close(pipefd[0]);
		close(pipefd[1]);
		return -errno;
	}
	if (pid == 0) {
		dup2(pipefd[1], 1);
		execv(path, (char *const *)argv);
		_exit(127);
	}
	close(pipefd[1]);
	*out_fd = pipefd[0];
	return pid;
}

int batonctl_kill(pid_t pid, int out_fd)
{
	int err = 0;

	if (kill(pid, SIGKILL) || waitpid(pid, NULL, 0) != pid)
		err = -errno;
	close(out_fd);
	return err;
}

int batonctl_until(char *out, size_t len, const char *const *args,
		   const char *want)
{
	int i, rc;

	for (i = 0; i < 3000; i++) {
		rc = batonctl(out, len, args);
		if (rc)
			return rc < 0 ? rc : -EPROTO;
		if (strstr(out, want))
			return 0;
		usleep(10000);
	}
	return -ETIMEDOUT;
}

static unsigned long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

ssize_t read_to_eof(int fd, char *buf, size_t len, int timeout_ms)
{
	unsigned long long end = mono_ms() + timeout_ms;
	size_t have = 0;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		unsigned long long now = mono_ms();
		ssize_t n;

		if (now >= end || poll(&p, 1, end - now) <= 0) {
			buf[have] = '\0';
			return -ETIMEDOUT;
		}
		n = read(fd, buf + have, len - 1 - have);
		if (n <= 0)
			break;
		have += n;
		if (have == len - 1)
			have = 0;	/* keep the tail */
	}
	buf[have] = '\0';
	return have;
}

/* longer than any batonctl a test runs, shorter than the program's deadline */
#define BATONCTL_DEADLINE_MS	(600 * 1000)

int batonctl(char *out, size_t len, const char *const *args)
{
	int fd, status;
	ssize_t n;
	pid_t pid;

	pid = batonctl_start(args, &fd);
	if (pid < 0)
		return pid;
	n = read_to_eof(fd, out, len, BATONCTL_DEADLINE_MS);
	close(fd);
	if (n < 0)
		kill(pid, SIGKILL);
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	if (n < 0)
		return n;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

int wait_exit(pid_t pid, int timeout_ms)
{
	int status;

	for (; timeout_ms > 0; timeout_ms -= 5) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return status;
		if (r < 0)
			return -errno;
		usleep(5000);
	}
	return -ETIMEDOUT;
}

int children_of(pid_t parent, pid_t *out, int max)
{
	struct dirent *d;
	int n = 0;
	DIR *dir = opendir("/proc");

	if (!dir)
		return -errno;
	while ((d = readdir(dir)) && n < max) {
		char path[64], stat[512], *p;
		int ppid, pid;
		FILE *f;

		if (d->d_name[0] < '1' || d->d_name[0] > '9')
			continue;
		pid = atoi(d->d_name);
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		f = fopen(path, "re");
		if (!f)
			continue;
		if (fgets(stat, sizeof(stat), f) && (p = strrchr(stat, ')')) &&
		    sscanf(p + 2, "%*c %d", &ppid) == 1 && ppid == parent)
			out[n++] = pid;
		fclose(f);
	}
	closedir(dir);
	return n;
}

pid_t serving_pid(const struct service *s, int family)
{
	int fd = client_connect(family, s->port), version;
	pid_t pid = 0;

	if (fd < 0)
		return fd;
	/* a listener nobody serves still takes the connection: not long */
	if (kvd_info_within(fd, &pid, &version, 1000))
		pid = -EBADMSG;
	close(fd);
	return pid;
}

const char *json_str(const char *json, const char *key, char *buf,
		     size_t len)
{
	char pat[64];
	const char *p, *end;

	snprintf(pat, sizeof(pat), "\"%s\":\"", key);
	p = strstr(json, pat);
	if (!p)
		return NULL;
	p += strlen(pat);
	end = strchr(p, '"');
	if (!end)
		return NULL;
	snprintf(buf, len, "%.*s", (int)(end - p), p);
	return buf;
}

void service_log_tail(const struct service *s, int lines)
{
	static char buf[1 << 16];
	char *p, *q;
	size_t n;
	int seen;
	FILE *f = fopen(s->log, "re");

	if (!f)
		return;
	/* the last 64 KiB are enough for the last lines */
	if (fseek(f, -(long)sizeof(buf) + 1, SEEK_END))
		rewind(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = buf;	/* the start of the lines-th line from the end */
	for (seen = 0, q = buf + n; q > buf + 1 && seen < lines; q--)
		if (q[-2] == '\n' && ++seen == lines)
			p = q - 1;
	fprintf(stderr, "# the last lines of %s:\n", s->log);
	while (*p) {
		char *nl = strchr(p, '\n');

		fprintf(stderr, "#   %.*s\n", nl ? (int)(nl - p) : (int)strlen(p), p);
		if (!nl)
			break;
		p = nl + 1;
	}
}

int unix_connect(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

const char *fake_peer_path(char *buf, size_t len)
{
	char self[512], *slash;
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	self[n > 0 ? n : 0] = '\0';	/* readlink() does not terminate */
	slash = strrchr(self, '/');
	if (slash)
		*slash = '\0';
	snprintf(buf, len, "%s/fake_peer", self);
	return buf;
}

static unsigned long long mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000ULL + ts.tv_nsec / 1000;
}

/* A counter of /proc/net/snmp ("Tcp") or /proc/net/netstat ("TcpExt") */
long long counter(const char *file, const char *proto, const char *key)
{
	char names[4096], values[4096], *n, *v, *sn, *sv;
	size_t plen = strlen(proto);
	long long found = -1;
	FILE *f = fopen(file, "r");

	if (!f)
		return -1;
	while (fgets(names, sizeof(names), f) && fgets(values, sizeof(values), f)) {
		if (strncmp(names, proto, plen) || names[plen] != ':')
			continue;
		n = strtok_r(names + plen + 1, " \n", &sn);
		v = strtok_r(values + plen + 1, " \n", &sv);
		for (; n && v; n = strtok_r(NULL, " \n", &sn),
			       v = strtok_r(NULL, " \n", &sv))
			if (!strcmp(n, key))
				found = atoll(v);
	}
	fclose(f);
	return found;
}

void counters_read(struct counters *c)
{
	c->timeouts = counter("/proc/net/netstat", "TcpExt", "TCPTimeouts");
	c->abort_data = counter("/proc/net/netstat", "TcpExt", "TCPAbortOnData");
	c->abort_close = counter("/proc/net/netstat", "TcpExt", "TCPAbortOnClose");
	c->out_rsts = counter("/proc/net/snmp", "Tcp", "OutRsts");
}


/* The slow reader (helpers.h) */
void *slow_read(void *arg)
{
	struct slow *s = arg;
	struct pollfd p = { .fd = s->fd, .events = POLLIN };
	unsigned long long last = mono_us();

	while (s->have < s->want) {
		unsigned long long now;
		ssize_t n;

		if (poll(&p, 1, 20000) != 1) {
			s->err = -ETIMEDOUT;
			break;
		}
		n = read(s->fd, s->got + s->have,
			 s->want - s->have < READ_CHUNK ? s->want - s->have :
							  READ_CHUNK);
		if (n <= 0) {
			s->err = n < 0 ? -errno : -ECONNRESET;
			break;
		}
		s->have += n;
		now = mono_us();
		if (now - last > s->longest_gap_us)
			s->longest_gap_us = now - last;
		last = now;
		usleep(READ_EVERY_US);
	}
	return NULL;
}

/* The steady sender (helpers.h) */
void *send_steadily(void *arg)
{
	static const char req[] = "*2\r\n$4\r\nINCR\r\n$6\r\nsteady\r\n";
	struct sender *s = arg;
	char buf[4096], want[32];
	size_t have = 0, wl;
	unsigned long long last = mono_us(), now;
	int idle = 0;

	while (!s->err && (!s->stop || s->answered < s->sent)) {
		struct pollfd p = { .fd = s->fd, .events = POLLIN };
		bool more = !s->stop;
		ssize_t n;

		if (more && write(s->fd, req, sizeof(req) - 1) !=
			    sizeof(req) - 1) {
			s->err = -EIO;
			break;
		}
		if (more)
			s->sent++;
		if (poll(&p, 1, SEND_EVERY_US / 1000) == 1) {
			n = read(s->fd, buf + have, sizeof(buf) - 1 - have);
			if (n <= 0) {
				s->err = -ECONNRESET;
				break;
			}
			have += n;
			idle = 0;
			now = mono_us();
			if (now - last > s->longest_gap_us)
				s->longest_gap_us = now - last;
			last = now;
		} else if (s->stop && ++idle > 5000 / (SEND_EVERY_US / 1000)) {
			s->err = -ETIMEDOUT;	/* 5 s without a reply */
		}
		for (;;) {
			wl = snprintf(want, sizeof(want), ":%u\r\n",
				      s->answered + 1);
			if (have < wl)
				break;
			if (memcmp(buf, want, wl)) {
				s->err = -EBADMSG;	/* lost or repeated */
				break;
			}
			memmove(buf, buf + wl, have - wl);
			have -= wl;
			s->answered++;
		}
	}
	return NULL;
}

int slow_check(const struct slow *s, int gets, size_t big_len)
{
	char head[32];
	size_t hl = snprintf(head, sizeof(head), "$%zu\r\n", big_len);
	size_t one = hl + big_len + 2;
	const char *r;
	int i;

	if (s->err || s->have != s->want || s->want != gets * one + 8) {
		fprintf(stderr, "# slow reader: error %d, %zu bytes of %zu\n",
			s->err, s->have, s->want);
		return -EBADMSG;
	}
	for (i = 0; i < gets; i++) {
		r = s->got + i * one;
		if (memcmp(r, head, hl) || memcmp(r + hl, s->big, big_len) ||
		    memcmp(r + hl + big_len, "\r\n", 2)) {
			fprintf(stderr, "# slow reader: reply %d differs\n", i);
			return -EBADMSG;
		}
	}
	if (memcmp(s->got + gets * one, ":1\r\n:2\r\n", 8)) {
		fprintf(stderr, "# slow reader: the INCRs after differ\n");
		return -EBADMSG;
	}
	return 0;
}

int moved_clients_check(int half, int keys, int window)
{
	char out[256];

	if (write(half, "rld\r\n", 5) != 5 ||
	    resp_reply(half, out, sizeof(out), 5000) <= 0 ||
	    strcmp(out, "+OK\r\n")) {
		fprintf(stderr, "# the half request did not complete\n");
		return -EBADMSG;
	}
	if (resp_expect(half, "$5\r\nworld\r\n", 2, "GET", "half") ||
	    resp_expect(keys, "$2\r\nv1\r\n", 2, "GET", "k1") ||
	    resp_expect(keys, ":2\r\n", 2, "INCR", "counter") ||
	    resp_expect(window, ":3\r\n", 2, "INCR", "after")) {
		fprintf(stderr, "# a key or a counter was not as it was\n");
		return -EBADMSG;
	}
	return 0;
}

int moved_clients_setup(int family, int port, int *keys, int *half,
			int *window, const char *big, int gets)
{
	static const char partial[] = "*3\r\n$3\r\nSET\r\n$4\r\nhalf\r\n$5\r\nwo";
	const char *get_big[] = { "GET", "big" };
	const char *incr_after[] = { "INCR", "after" };
	int i, err;

	*keys = client_connect(family, port);
	*half = client_connect(family, port);
	*window = client_connect(family, port);
	if (*keys < 0 || *half < 0 || *window < 0)
		return -ECONNREFUSED;
	if (setsockopt(*window, SOL_SOCKET, SO_RCVBUF, &(int){ 65536 },
		       sizeof(int)))
		return -errno;
	err = resp_expect(*keys, "+OK\r\n", 3, "SET", "k1", "v1") ?:
	      resp_expect(*keys, ":1\r\n", 2, "INCR", "counter") ?:
	      resp_expect(*window, "+OK\r\n", 3, "SET", "big", big);
	if (err)
		return err;
	if (write(*half, partial, sizeof(partial) - 1) != sizeof(partial) - 1)
		return -EIO;
	for (i = 0; !err && i < gets; i++)
		err = resp_send(*window, 2, get_big);
	return err ?: resp_send(*window, 2, incr_after) ?:
	       resp_send(*window, 2, incr_after);
}

int counters_unmoved(const struct counters *before)
{
	struct counters after;

	counters_read(&after);
	fprintf(stderr, "# TCPTimeouts %lld -> %lld, OutRsts %lld -> %lld\n",
		before->timeouts, after.timeouts, before->out_rsts,
		after.out_rsts);
	if (after.out_rsts != before->out_rsts ||
	    after.abort_data != before->abort_data ||
	    after.abort_close != before->abort_close) {
		fprintf(stderr, "# TCPAbortOnData %lld -> %lld, TCPAbortOnClose %lld -> %lld\n",
			before->abort_data, after.abort_data,
			before->abort_close, after.abort_close);
		return -EBADMSG;
	}
	return 0;
}
