// SPDX-License-Identifier: GPL-2.0-only
/*
 * --plot: each request's latency against the time it was sent, one panel
 * per mode, the upgrade windows shaded and the blackouts marked, drawn by
 * gnuplot into an SVG file.
 *
 * The memory is bounded however long the run: each worker keeps the
 * slowest request of each of PLOT_BUCKETS time buckets (a run that
 * outgrows them merges them two by two, doubling their width) and a sample
 * of at most PLOT_POINTS requests. Each request draws a level, k with
 * probability 2^-(k+1); the sample holds the requests of level L and up,
 * and L goes up by one (dropping about half) whenever it is full. The
 * sample is then uniform, 1 request in 2^L, and the workers' samples merge
 * by taking the highest L among them.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

static __u32 xorshift(__u32 *s)
{
	__u32 x = *s ? *s : 0x9e3779b9u ^ (__u32)getpid();

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

/* Twice the width, half the buckets: each the slower of two. */
static void widen(struct plot_part *p)
{
	unsigned int i;

	for (i = 0; i < PLOT_BUCKETS / 2; i++) {
		__u32 a = p->bucket_max_us[2 * i], b = p->bucket_max_us[2 * i + 1];

		p->bucket_max_us[i] = a > b ? a : b;
	}
	memset(p->bucket_max_us + PLOT_BUCKETS / 2, 0,
	       sizeof(p->bucket_max_us) / 2);
	p->width_ns *= 2;
}

/* Keeps only the sample's points of p->level and up. */
static void thin(struct plot_part *p)
{
	unsigned int i, n = 0;

	for (i = 0; i < p->npoints; i++)
		if (p->pt[i].level >= p->level)
			p->pt[n++] = p->pt[i];
	p->npoints = n;
}

void plot_add(struct plot_part *p, __u64 origin_ns, __u64 start, __u64 end)
{
	__u64 t = start - origin_ns, us = (end - start) / 1000;
	__u32 r, level;

	if (!origin_ns || start < origin_ns)
		return;		/* still connecting: not drawn */
	if (us > UINT32_MAX)
		us = UINT32_MAX;
	if (!p->width_ns)
		p->width_ns = PLOT_WIDTH_NS;
	while (t / p->width_ns >= PLOT_BUCKETS)
		widen(p);
	if (us > p->bucket_max_us[t / p->width_ns])
		p->bucket_max_us[t / p->width_ns] = us;
	p->requests++;
	r = xorshift(&p->rng);
	level = r ? __builtin_ctz(r) : 32;
	while (level >= p->level && p->npoints == PLOT_POINTS) {
		p->level++;
		thin(p);
	}
	if (level < p->level)
		return;
	p->pt[p->npoints++] = (struct plot_point){ t, us, level };
}

int plot_merge(struct plot_panel *panel, const struct shared *sh,
	       unsigned int nworkers)
{
	unsigned int i, j, n;

	panel->width_ns = PLOT_WIDTH_NS;
	for (i = 0; i < nworkers; i++) {
		const struct plot_part *p = &sh->w[i].plot;

		if (p->width_ns > panel->width_ns)
			panel->width_ns = p->width_ns;
		if (p->level > panel->level)
			panel->level = p->level;
		panel->requests += p->requests;
	}
	for (i = 0; i < nworkers; i++) {
		const struct plot_part *p = &sh->w[i].plot;
		__u64 ratio = p->width_ns ? panel->width_ns / p->width_ns : 1;

		for (j = 0; j < PLOT_BUCKETS; j++) {
			__u32 *b = &panel->bucket_max_us[j / ratio];

			if (p->bucket_max_us[j] > *b)
				*b = p->bucket_max_us[j];
		}
	}
	/* the same level everywhere, and no more than a panel draws */
	for (;; panel->level++) {
		for (n = 0, i = 0; i < nworkers; i++)
			for (j = 0; j < sh->w[i].plot.npoints; j++)
				n += sh->w[i].plot.pt[j].level >= panel->level;
		if (n <= PLOT_KEEP)
			break;
	}
	panel->pt = malloc((n ? n : 1) * sizeof(*panel->pt));
	if (!panel->pt)
		return -ENOMEM;
	for (i = 0; i < nworkers; i++)
		for (j = 0; j < sh->w[i].plot.npoints; j++)
			if (sh->w[i].plot.pt[j].level >= panel->level)
				panel->pt[panel->npt++] = sh->w[i].plot.pt[j];
	return 0;
}

static void span(const struct plot_panel *p, double *lo, double *hi)
{
	unsigned int i;

	for (i = 0; i < p->npt; i++) {
		double ms = p->pt[i].us / 1000.0;

		if (ms < *lo)
			*lo = ms;
		if (ms > *hi)
			*hi = ms;
	}
	for (i = 0; i < PLOT_BUCKETS; i++)
		if (p->bucket_max_us[i] / 1000.0 > *hi)
			*hi = p->bucket_max_us[i] / 1000.0;
}

static void sample_note(const struct plot_panel *p, char *buf, size_t len)
{
	if (!p->level)
		snprintf(buf, len, "each of %llu requests",
			 (unsigned long long)p->requests);
	else
		snprintf(buf, len, "1 in %llu of %llu requests (a uniform sample)",
			 1ULL << p->level, (unsigned long long)p->requests);
}

static void write_panel(FILE *g, const struct plot_panel *p, unsigned int k,
			bool last, double ytop, double key_y)
{
	double bucket_ms = p->width_ns / 1e6;
	char sample[96];
	unsigned int i;

	fprintf(g, "$P%u << EOD\n", k);
	for (i = 0; i < p->npt; i++)
		fprintf(g, "%.4f %.3f\n", p->pt[i].t_ns / 1e9,
			p->pt[i].us / 1000.0);
	fprintf(g, "EOD\n$B%u << EOD\n", k);
	for (i = 0; i < PLOT_BUCKETS; i++) {
		if (p->bucket_max_us[i])
			fprintf(g, "%.4f %.3f\n", i * p->width_ns / 1e9,
				p->bucket_max_us[i] / 1000.0);
		else if (i && p->bucket_max_us[i - 1])
			fprintf(g, "\n");	/* a gap: nothing was sent */
	}
	fprintf(g, "EOD\n$K%u << EOD\n", k);
	for (i = 0; i < p->nwin; i++)
		if (p->win[i].blackout_ms > 0)
			fprintf(g, "%.4f %g\n", p->win[i].end -
				p->win[i].blackout_ms / 2000, ytop);
	fprintf(g, "EOD\n");

	sample_note(p, sample, sizeof(sample));
	fprintf(g, "unset object\nset title \"{/:Bold %s}   %s; drawn: %s\"\n",
		p->name, p->note, sample);
	for (i = 0; i < p->nwin; i++)
		fprintf(g, "set object rect from %.4f, graph 0 to %.4f, graph 1 behind fc rgb \"#fdae6b\" fs solid 0.5 border lc rgb \"#fd8d3c\" lw 0.5\n",
			p->win[i].start, p->win[i].end);
	/* one key, above the first panel: the same for all */
	if (k == 0)
		fprintf(g, "set key at screen 0.5, screen %g center top horizontal box lc rgb \"#cccccc\" font \",11\" samplen 2\n",
			key_y);
	else
		fprintf(g, "unset key\n");
	if (last)
		fprintf(g, "set xlabel \"seconds since every client was connected\"\n");
	fprintf(g, "plot keyentry with boxes fc rgb \"#fdae6b\" fs solid 0.5 title \"upgrade window\", \\\n");
	fprintf(g, "  $B%u using 1:2 with steps lw 1 lc rgb \"#08306b\" title \"the slowest in each %g ms\", \\\n",
		k, bucket_ms);
	fprintf(g, "  $P%u using 1:2 with points pt 7 ps 0.25 lc rgb \"#802171b5\" title \"a request\", \\\n",
		k);
	/* a blackout is too short to see at this scale: marked above it */
	fprintf(g, "  $K%u using 1:2 with points pt 11 ps 1.1 lc rgb \"#cb181d\" title \"a blackout\"",
		k);
	fprintf(g, "\n");
}

int plot_write(const char *path, const char *title,
	       const struct plot_panel *panels, unsigned int n)
{
	double lo = 1e9, hi = 0, xmax = 0, ylo, yhi;
	int pipefd[2], status;
	unsigned int i, height;
	pid_t pid;
	FILE *g;

	for (i = 0; i < n; i++) {
		span(&panels[i], &lo, &hi);
		if (panels[i].seconds > xmax)
			xmax = panels[i].seconds;
	}
	if (hi <= 0)
		return -ENODATA;
	ylo = pow(10, floor(log10(lo > 0.001 ? lo : 0.001)));
	yhi = pow(10, ceil(log10(hi * 1.5)));
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		close(pipefd[0]);
		close(pipefd[1]);
		return -errno;
	}
	if (pid == 0) {
		dup2(pipefd[0], 0);
		execlp("gnuplot", "gnuplot", NULL);
		_exit(127);
	}
	close(pipefd[0]);
	g = fdopen(pipefd[1], "w");
	if (!g) {
		close(pipefd[1]);
		waitpid(pid, NULL, 0);
		return -ENOMEM;
	}
	/* the title and the key, n panels of 300 px, the x label */
	height = 75 + 300 * n + 45;
	fprintf(g, "set terminal svg size 1100,%u dynamic enhanced font \"sans,12\" background rgb \"white\"\n",
		height);
	fprintf(g, "set output \"%s\"\n", path);
	fprintf(g, "set encoding utf8\n");
	fprintf(g, "set multiplot title \"%s\" font \",15\"\n", title);
	fprintf(g, "set lmargin at screen %g\nset rmargin at screen %g\n",
		80.0 / 1100, 1 - 25.0 / 1100);
	fprintf(g, "set logscale y\nset format y \"%%g\"\n");
	fprintf(g, "set yrange [%g:%g]\nset xrange [0:%g]\n", ylo, yhi,
		ceil(xmax));
	fprintf(g, "set ylabel \"latency, ms\"\n");
	fprintf(g, "set grid ytics xtics lc rgb \"#e0e0e0\"\n");
	for (i = 0; i < n; i++) {
		/* each panel: its title 30 px, the plot, its tick labels 30 px */
		double top = 75.0 + 300 * i + 30, bottom = 75.0 + 300 * (i + 1) - 30;

		fprintf(g, "set tmargin at screen %g\nset bmargin at screen %g\n",
			1 - top / height, 1 - bottom / height);
		write_panel(g, &panels[i], i, i == n - 1, yhi / 1.6,
			    1 - 42.0 / height);
	}
	fprintf(g, "unset multiplot\n");
	fclose(g);
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
		fprintf(stderr, "baton-bench: gnuplot did not run: install it ('make deps' installs gnuplot-nox)\n");
		return -ENOENT;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "baton-bench: gnuplot failed (its messages are above); %s may be incomplete\n",
			path);
		return -EIO;
	}
	return 0;
}
