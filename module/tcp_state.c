// SPDX-License-Identifier: GPL-2.0
/*
 * Read and write the congestion and RTT state of a TCP socket. The
 * socket lock is held across each, so a record is one consistent moment
 * and an import is all or nothing.
 */
#include <linux/jiffies.h>
#include <linux/win_minmax.h>
#include <net/tcp.h>
#include "internal.h"

/* States with a synchronized sequence space: the state means something */
#define BATON_TCPF_SYNCED (TCPF_ESTABLISHED | TCPF_FIN_WAIT1 |		\
			   TCPF_FIN_WAIT2 | TCPF_CLOSE_WAIT |		\
			   TCPF_CLOSING | TCPF_LAST_ACK)

static bool baton_tcp_synced(const struct sock *sk)
{
	return (1 << sk->sk_state) & BATON_TCPF_SYNCED;
}

int baton_tcp_export(struct sock *sk, struct baton_tcp_state *st,
		     struct netlink_ext_ack *extack)
{
	const struct tcp_sock *tp = tcp_sk(sk);
	u32 min_rtt;
	int err = 0;

	lock_sock(sk);
	if (!baton_tcp_synced(sk)) {
		NL_SET_ERR_MSG(extack, "socket is not a connected TCP socket");
		err = -ENOTCONN;
		goto unlock;
	}

	baton_tcp_set(st, BATON_GENL_A_CWND, tcp_snd_cwnd(tp));
	baton_tcp_set(st, BATON_GENL_A_SSTHRESH, tp->snd_ssthresh);
	baton_tcp_set(st, BATON_GENL_A_CWND_CNT, tp->snd_cwnd_cnt);
	baton_tcp_set(st, BATON_GENL_A_PRIOR_CWND, tp->prior_cwnd);
	/* the kernel keeps srtt << 3 and the deviations << 2 */
	baton_tcp_set(st, BATON_GENL_A_SRTT_US, tp->srtt_us >> 3);
	baton_tcp_set(st, BATON_GENL_A_MDEV_US, tp->mdev_us >> 2);
	baton_tcp_set(st, BATON_GENL_A_MDEV_MAX_US, tp->mdev_max_us >> 2);
	baton_tcp_set(st, BATON_GENL_A_RTTVAR_US, tp->rttvar_us >> 2);
	min_rtt = tcp_min_rtt(tp);
	if (min_rtt != ~0U)	/* no sample yet: nothing to carry */
		baton_tcp_set(st, BATON_GENL_A_RTT_MIN_US, min_rtt);
	baton_tcp_set(st, BATON_GENL_A_RTO_US,
		      jiffies_to_usecs(inet_csk(sk)->icsk_rto));
unlock:
	release_sock(sk);
	return err;
}

/* The checks that depend on the socket; the policy did the others */
static int baton_tcp_check(const struct sock *sk,
			   const struct baton_tcp_state *st,
			   struct netlink_ext_ack *extack)
{
	const struct tcp_sock *tp = tcp_sk(sk);
	u32 cwnd = tcp_snd_cwnd(tp);

	if (!tp->repair) {
		NL_SET_ERR_MSG(extack,
			       "socket is not in repair mode (set TCP_REPAIR first)");
		return -EPERM;
	}
	if (!baton_tcp_synced(sk)) {
		NL_SET_ERR_MSG(extack,
			       "socket is not connected (connect() it in repair mode first)");
		return -ENOTCONN;
	}
	if (baton_tcp_has(st, BATON_GENL_A_CWND))
		cwnd = st->val[BATON_GENL_A_CWND];
	if (cwnd > tp->snd_cwnd_clamp ||
	    (baton_tcp_has(st, BATON_GENL_A_PRIOR_CWND) &&
	     st->val[BATON_GENL_A_PRIOR_CWND] > tp->snd_cwnd_clamp)) {
		NL_SET_ERR_MSG(extack,
			       "congestion window above the socket's clamp");
		return -ERANGE;
	}
	if (baton_tcp_has(st, BATON_GENL_A_CWND_CNT) &&
	    st->val[BATON_GENL_A_CWND_CNT] > cwnd) {
		NL_SET_ERR_MSG(extack,
			       "window increase counter above the congestion window");
		return -ERANGE;
	}
	return 0;
}

static void baton_tcp_write(struct sock *sk, const struct baton_tcp_state *st)
{
	struct tcp_sock *tp = tcp_sk(sk);
	const u32 *v = st->val;

	if (baton_tcp_has(st, BATON_GENL_A_CWND)) {
		tcp_snd_cwnd_set(tp, v[BATON_GENL_A_CWND]);
		tp->snd_cwnd_stamp = tcp_jiffies32;
		/*
		 * The connection was sending a moment ago: the first send
		 * must not take it for idle and restart the window.
		 */
		tp->lsndtime = tcp_jiffies32;
	}
	if (baton_tcp_has(st, BATON_GENL_A_SSTHRESH))
		tp->snd_ssthresh = v[BATON_GENL_A_SSTHRESH];
	if (baton_tcp_has(st, BATON_GENL_A_CWND_CNT))
		tp->snd_cwnd_cnt = v[BATON_GENL_A_CWND_CNT];
	if (baton_tcp_has(st, BATON_GENL_A_PRIOR_CWND))
		tp->prior_cwnd = v[BATON_GENL_A_PRIOR_CWND];
	if (baton_tcp_has(st, BATON_GENL_A_SRTT_US)) {
		tp->srtt_us = v[BATON_GENL_A_SRTT_US] << 3;
		/* the next RTT period starts with the next segment sent */
		tp->rtt_seq = tp->snd_nxt;
	}
	if (baton_tcp_has(st, BATON_GENL_A_MDEV_US))
		tp->mdev_us = v[BATON_GENL_A_MDEV_US] << 2;
	if (baton_tcp_has(st, BATON_GENL_A_MDEV_MAX_US))
		tp->mdev_max_us = v[BATON_GENL_A_MDEV_MAX_US] << 2;
	if (baton_tcp_has(st, BATON_GENL_A_RTTVAR_US))
		tp->rttvar_us = v[BATON_GENL_A_RTTVAR_US] << 2;
	if (baton_tcp_has(st, BATON_GENL_A_RTT_MIN_US))
		minmax_reset(&tp->rtt_min, tcp_jiffies32,
			     v[BATON_GENL_A_RTT_MIN_US]);
	if (baton_tcp_has(st, BATON_GENL_A_RTO_US))
		inet_csk(sk)->icsk_rto = usecs_to_jiffies(v[BATON_GENL_A_RTO_US]);
}

int baton_tcp_import(struct sock *sk, const struct baton_tcp_state *st,
		     struct netlink_ext_ack *extack)
{
	int err;

	lock_sock(sk);
	err = baton_tcp_check(sk, st, extack);
	if (!err)
		baton_tcp_write(sk, st);
	release_sock(sk);
	return err;
}
