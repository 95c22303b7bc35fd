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
#define BTK_TCPF_SYNCED (TCPF_ESTABLISHED | TCPF_FIN_WAIT1 |		\
			   TCPF_FIN_WAIT2 | TCPF_CLOSE_WAIT |		\
			   TCPF_CLOSING | TCPF_LAST_ACK)

static bool btk_tcp_synced(const struct sock *sk)
{
	return (1 << sk->sk_state) & BTK_TCPF_SYNCED;
}

/*
 * The kernel's values, unscaled, of a locked socket. The caller puts
 * each within the range the import accepts, so that whatever an export
 * produced imports.
 */
void btk_tcp_read(struct sock *sk, struct btk_tcp_state *st)
{
	const struct tcp_sock *tp = tcp_sk(sk);
	u32 min_rtt;

	btk_tcp_set(st, BATON_GENL_A_CWND, tcp_snd_cwnd(tp));
	btk_tcp_set(st, BATON_GENL_A_SSTHRESH, tp->snd_ssthresh);
	btk_tcp_set(st, BATON_GENL_A_CWND_CNT, tp->snd_cwnd_cnt);
	/* 0 until the first window reduction: nothing to carry */
	if (tp->prior_cwnd)
		btk_tcp_set(st, BATON_GENL_A_PRIOR_CWND, tp->prior_cwnd);
	/* the kernel keeps srtt << 3 and the deviations << 2 */
	btk_tcp_set(st, BATON_GENL_A_SRTT_US, tp->srtt_us >> 3);
	btk_tcp_set(st, BATON_GENL_A_MDEV_US, tp->mdev_us >> 2);
	btk_tcp_set(st, BATON_GENL_A_MDEV_MAX_US, tp->mdev_max_us >> 2);
	btk_tcp_set(st, BATON_GENL_A_RTTVAR_US, tp->rttvar_us >> 2);
	min_rtt = tcp_min_rtt(tp);
	if (min_rtt != ~0U)	/* no sample yet: nothing to carry */
		btk_tcp_set(st, BATON_GENL_A_RTT_MIN_US, min_rtt);
	btk_tcp_set(st, BATON_GENL_A_RTO_US,
		    jiffies_to_usecs(inet_csk(sk)->icsk_rto));
}

int btk_tcp_export(struct sock *sk, struct btk_tcp_state *st,
		   struct netlink_ext_ack *extack)
{
	int err = 0;

	lock_sock(sk);
	if (btk_tcp_synced(sk)) {
		btk_tcp_read(sk, st);
	} else {
		NL_SET_ERR_MSG(extack, "socket is not a connected TCP socket");
		err = -ENOTCONN;
	}
	release_sock(sk);
	return err;
}

/* The checks that depend on the socket; the policy did the others */
static int btk_tcp_check(const struct sock *sk,
			 struct netlink_ext_ack *extack)
{
	if (!tcp_sk(sk)->repair) {
		NL_SET_ERR_MSG(extack,
			       "socket is not in repair mode (set TCP_REPAIR first)");
		return -EPERM;
	}
	if (!btk_tcp_synced(sk)) {
		NL_SET_ERR_MSG(extack,
			       "socket is not connected (connect() it in repair mode first)");
		return -ENOTCONN;
	}
	return 0;
}

/*
 * The congestion module starts over from the imported window and RTT,
 * as after setsockopt(TCP_CONGESTION): its private state (CUBIC's epoch
 * and HyStart round, BBR's pacing rate and minimum RTT) was derived from
 * the values the import replaced. Its init may set the window and
 * threshold to its own defaults: the imported ones are written again.
 * It is then told the state the connection is in.
 */
static void btk_tcp_ca_restart(struct sock *sk,
			       const struct btk_tcp_state *st)
{
	struct inet_connection_sock *icsk = inet_csk(sk);
	const struct tcp_congestion_ops *ca = icsk->icsk_ca_ops;
	struct tcp_sock *tp = tcp_sk(sk);
	u32 cwnd = tcp_snd_cwnd(tp), ssthresh = tp->snd_ssthresh;

	if (ca->release)
		ca->release(sk);
	memset(icsk->icsk_ca_priv, 0, sizeof(icsk->icsk_ca_priv));
	tp->prior_ssthresh = 0;
	if (ca->init)
		ca->init(sk);
	if (btk_tcp_has(st, BATON_GENL_A_CWND))
		tcp_snd_cwnd_set(tp, cwnd);
	if (btk_tcp_has(st, BATON_GENL_A_SSTHRESH))
		tp->snd_ssthresh = ssthresh;
	if (ca->set_state && icsk->icsk_ca_state != TCP_CA_Open)
		ca->set_state(sk, icsk->icsk_ca_state);
}

/*
 * A retransmission timer armed before the import (by the send queue a
 * restore wrote in repair mode: an RTO or loss probe computed without
 * an RTT) now fires after the imported RTO, as if the data had been
 * sent with it. A zero window probe keeps its own schedule.
 */
static void btk_tcp_rearm(struct sock *sk)
{
	struct inet_connection_sock *icsk = inet_csk(sk);

	switch (icsk->icsk_pending) {
	case ICSK_TIME_RETRANS:
	case ICSK_TIME_LOSS_PROBE:
	case ICSK_TIME_REO_TIMEOUT:
		if (tcp_sk(sk)->packets_out)
			inet_csk_reset_xmit_timer(sk, ICSK_TIME_RETRANS,
						  icsk->icsk_rto, TCP_RTO_MAX);
		break;
	}
}

/*
 * The segment size from the MSS and the path MTU. connect() in repair
 * mode sized segments with the default MSS (536); TCP_REPAIR_OPTIONS
 * sets the real one after it, and nothing sizes them again until the
 * path MTU changes: a restored connection would send 536-byte segments.
 */
void btk_tcp_resize(struct sock *sk)
{
	tcp_sync_mss(sk, inet_csk(sk)->icsk_pmtu_cookie);
}

/*
 * Values the socket cannot take are brought within what it can: the
 * window and its prior value to the socket's clamp, CUBIC's increase
 * counter (legitimately up to 100 windows) to the window, the RTO and
 * the variance floors up to the socket's minimum RTO.
 */
static void btk_tcp_write(struct sock *sk, const struct btk_tcp_state *st)
{
	struct tcp_sock *tp = tcp_sk(sk);
	u32 rto_min_us = tcp_rto_min_us(sk);
	const u32 *v = st->val;

	/* a route may lock the clamp; the window is never 0 */
	u32 cwnd_max = max(tp->snd_cwnd_clamp, 1U);

	if (btk_tcp_has(st, BATON_GENL_A_CWND)) {
		tcp_snd_cwnd_set(tp, min(v[BATON_GENL_A_CWND], cwnd_max));
		tp->snd_cwnd_stamp = tcp_jiffies32;
		/*
		 * The connection was sending a moment ago: the first send
		 * must not take it for idle and restart the window.
		 */
		tp->lsndtime = tcp_jiffies32;
	}
	if (btk_tcp_has(st, BATON_GENL_A_SSTHRESH))
		tp->snd_ssthresh = v[BATON_GENL_A_SSTHRESH];
	if (btk_tcp_has(st, BATON_GENL_A_CWND_CNT))
		tp->snd_cwnd_cnt = min(v[BATON_GENL_A_CWND_CNT],
				       tcp_snd_cwnd(tp));
	if (btk_tcp_has(st, BATON_GENL_A_PRIOR_CWND))
		tp->prior_cwnd = min(v[BATON_GENL_A_PRIOR_CWND], cwnd_max);
	if (btk_tcp_has(st, BATON_GENL_A_SRTT_US)) {
		tp->srtt_us = v[BATON_GENL_A_SRTT_US] << 3;
		/* the next RTT period starts with the next segment sent */
		tp->rtt_seq = tp->snd_nxt;
	}
	if (btk_tcp_has(st, BATON_GENL_A_MDEV_US))
		tp->mdev_us = v[BATON_GENL_A_MDEV_US] << 2;
	/* as tcp_rtt_estimator() keeps them: never below the minimum RTO */
	if (btk_tcp_has(st, BATON_GENL_A_MDEV_MAX_US))
		tp->mdev_max_us = max(v[BATON_GENL_A_MDEV_MAX_US] << 2,
				      rto_min_us);
	if (btk_tcp_has(st, BATON_GENL_A_RTTVAR_US))
		tp->rttvar_us = max(v[BATON_GENL_A_RTTVAR_US] << 2, rto_min_us);
	/*
	 * With an RTT, the floors hold whether the variance came too or
	 * not: a socket whose route had cached metrics starts it at 0, and
	 * once there is an RTT tcp_rtt_estimator() never raises it from
	 * there: the RTO would be the bare RTT for good
	 */
	if (btk_tcp_has(st, BATON_GENL_A_SRTT_US)) {
		tp->mdev_max_us = max(tp->mdev_max_us, rto_min_us);
		tp->rttvar_us = max(tp->rttvar_us, rto_min_us);
	}
	if (btk_tcp_has(st, BATON_GENL_A_RTT_MIN_US))
		minmax_reset(&tp->rtt_min, tcp_jiffies32,
			     v[BATON_GENL_A_RTT_MIN_US]);
	if (btk_tcp_has(st, BATON_GENL_A_RTO_US))
		inet_csk(sk)->icsk_rto =
			max_t(u32, usecs_to_jiffies(v[BATON_GENL_A_RTO_US]),
			      tcp_rto_min(sk));

	btk_tcp_ca_restart(sk, st);
	btk_tcp_rearm(sk);
	btk_tcp_resize(sk);
}

int btk_tcp_import(struct sock *sk, const struct btk_tcp_state *st,
		   struct netlink_ext_ack *extack)
{
	int err;

	lock_sock(sk);
	err = btk_tcp_check(sk, extack);
	if (!err)
		btk_tcp_write(sk, st);
	release_sock(sk);
	return err;
}
