/* SPDX-License-Identifier: GPL-2.0-only */
/* What the selftests share: namespaces, processes, clients. */
#ifndef BATON_SELFTEST_HELPERS_H
#define BATON_SELFTEST_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* A kvd instance of its own: namespace, run directory, listener. */
struct service {
	char rundir[64];
	char log[128];		/* the instances' stderr */
	char sock[128];		/* the control socket */
	int lfd, port;
	pid_t kvd;		/* the first instance, our child */
};

int service_up(struct service *s, int family, int version);
void service_down(struct service *s);

/* a network namespace of its own, with lo up */
int netns_enter(void);
/* a fresh run directory, exported as BATON_RUN_DIR; freed by rundir_remove */
int rundir_make(char *buf, size_t len);
void rundir_remove(const char *dir);

/* the binaries under test: $BATON_BIN/<name> */
const char *bin(const char *name, char *buf, size_t len);

int listener_make(int family, int *port);
int client_connect(int family, int port);

/* kvd-vN serving lfd as service "kvd"; waits for its control socket */
pid_t kvd_start(int version, int lfd, const char *rundir,
		const char *const *extra);
int wait_path(const char *path, int timeout_ms);
int stop_and_reap(pid_t pid, int sig);
bool pid_alive(pid_t pid);
int pid_wait_gone(pid_t pid, int timeout_ms);

/* a RESP request and its reply; reply is NUL-terminated, length returned */
int resp_send(int fd, int argc, const char *const *argv);
ssize_t resp_reply(int fd, char *buf, size_t len, int timeout_ms);
/* one command, with the whole reply compared; 0 if it matched */
int resp_expect(int fd, const char *want, int argc, ...);
/* INFO's process_id and kvd_version */
int kvd_info(int fd, pid_t *pid, int *version);

/* runs $BATON_BIN/batonctl with args; its stdout into out */
int batonctl(char *out, size_t len, const char *const *args);

#endif

/* a number after "key": in batonctl's JSON, or -1 */
long long json_num(const char *json, const char *key);
