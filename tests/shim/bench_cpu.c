/*
 * bench_cpu.c — CPU per SCardTransmit: untraced, pcsctap and pcsc-spy in
 * the same run.
 *
 *	bench-cpu READER SHIM N ROUNDS
 *	env: BENCH_PCSCD_PID   pcscd, whose CPU is shown apart (never counted)
 *	     BENCH_SPY_LIB     libpcscspy.so.0: adds the pcsc-spy mode, with
 *	     BENCH_SPY_LIBDIR  a directory holding libpcsclite_nospy.so.1 and
 *	     BENCH_SPY_HOME    where the spy's FIFO ($HOME/pcsc-spy) is made
 *
 * Every measurement is a fresh process (this program exec'd as a child)
 * making N or 2N transmits and then ending normally, so that the trace
 * writer's last import and checkpoint are in it; the slope between N and
 * 2N cancels start-up (binding, the trace's creation, exec).  A round
 * measures every mode at N and at 2N, in an order that rotates from round
 * to round; what tracing adds is the median over the rounds of each
 * round's difference to the untraced slope, so that drift (other work on
 * the machine, CPU frequency) cancels pairwise.  Rounds still differ by
 * more than tracing adds, so the median comes with its distribution-free
 * 95 % interval (order statistics: no assumption about the spread).
 * Most of that spread is from one process to the next, so each round
 * also runs a paired child, which times the application's thread through
 * the real library and through the shim in one process; with the writer
 * thread and the exit from the slope, that is a second, steadier estimate
 * of what pcsctap adds.
 *
 * What is counted: the child's CPU, all its threads (wait4), plus for
 * pcsc-spy the CPU of the pcsc-spy process that reads the spy's FIFO
 * (a fresh one per child: it reads until the child's end closes the FIFO
 * and then exits, so wait4 gives all of its work).  The child also
 * reports its main thread's CPU during the transmit loop and the whole
 * process's, which splits what tracing adds into the application's
 * thread, the writer thread during the loop, and the exit (the writer's
 * final import and the checkpoint into one file).  pcscd's CPU per
 * transmit is printed too: the other side of every transmit, the same in
 * every mode (a check), never in the figures.
 *
 * Each pcsctap child writes a fresh trace (PCSCTAP_TRACE-<child>), as
 * `pcsctap run -o` would, which must hold every one of its transmits.
 *
 * The spy needs a receive PCI: pcsc-lite 1.9.9's crashes on a NULL one.
 * A run whose pcsc-spy did not see every transmit fails (the comparison
 * would be with a spy that logs nothing).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <sqlite3.h>
#include <winscard.h>

#include "bench_util.h"

enum { REAL, SHIM, SPY, N_MODES, PAIRED = N_MODES };
static const char *const names[N_MODES + 1] = { "untraced", "pcsctap", "pcsc-spy", "paired" };

enum { WARMUP = 100, MAX_ROUNDS = 101, PAIRED_BLOCK = 250 };

/* One child's figures, in us. */
struct sample {
	double total;		/* the child, all threads, + the spy's reader */
	double main;		/* the main thread during the loop */
	double others;		/* the other threads during the loop (the writer) */
	double exit;		/* after the loop: exit handlers (final import, checkpoint) */
	double reader;		/* pcsc-spy's reader process */
	double pcscd;
	double paired;		/* PAIRED: per transmit, the shim's blocks' main thread CPU
				 * minus the real's */
};

static const BYTE apdu[] = { 0x00, 0xA4, 0x04, 0x00, 0x00 };

static double
rusage_us(const struct rusage *ru)
{
	return ru->ru_utime.tv_sec * 1e6 + ru->ru_utime.tv_usec + ru->ru_stime.tv_sec * 1e6 +
	       ru->ru_stime.tv_usec;
}

static double
median(double *v, int n)
{
	qsort(v, n, sizeof(double), bench_cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/*
 * How many of @p n sorted values bound the median's distribution-free
 * 95 % interval from each side: d, the interval being [v[d - 1], v[n - d]]
 * (P(X < d) <= 2.5 % for X binomial(n, 1/2)); 0 when n is too small to
 * have one.  15 rounds give d = 4, an interval of 96.5 %.
 */
static int
median_interval_rank(int n)
{
	double pmf = 1, tail = 0;
	int d = 0;

	for (int i = 0; i < n; i++)
		pmf /= 2;
	while (d < n / 2 && tail + pmf <= 0.025) {
		tail += pmf;
		pmf = pmf * (n - d) / (d + 1);
		d++;
	}
	return d;
}

/* ---------------------------------------------------------------------- */
/* The child                                                              */
/* ---------------------------------------------------------------------- */

/* @p n SELECTs through @p fn on @p card; 0 when every one succeeded. */
static int
transmit_n(transmit_fn fn, SCARDHANDLE card, long n)
{
	SCARD_IO_REQUEST recv_pci;
	BYTE resp[258];
	DWORD len;

	for (long i = 0; i < n; i++) {
		len = sizeof(resp);
		if (fn(card, SCARD_PCI_T1, apdu, sizeof(apdu), &recv_pci, resp, &len))
			return 1;
	}
	return 0;
}

/*
 * The paired child: @p n transmits through the real library and @p n
 * through the shim in one process, on one card handle, in alternating
 * blocks (real, shim, shim, real, ...: a drift costs both the same);
 * reports "shim_ns real_ns", the main thread's CPU in each, on @p fd.
 */
static int
paired_child(transmit_fn real, transmit_fn shim, SCARDHANDLE card, long n, int fd)
{
	int64_t spent[2] = { 0, 0 };

	if (!real || !shim || transmit_n(real, card, WARMUP) || transmit_n(shim, card, WARMUP))
		return 1;
	for (long i = 0; i < 2 * (n / PAIRED_BLOCK); i++) {
		int traced = i % 4 == 1 || i % 4 == 2;
		int64_t t0 = bench_clock_ns(CLOCK_THREAD_CPUTIME_ID);

		if (transmit_n(traced ? shim : real, card, PAIRED_BLOCK))
			return 1;
		spent[traced] += bench_clock_ns(CLOCK_THREAD_CPUTIME_ID) - t0;
	}
	dprintf(fd, "%lld %lld\n", (long long)spent[1], (long long)spent[0]);
	close(fd);
	return 0;
}

/*
 * @p n transmits through mode @p m; reports "main_ns loop_ns end_ns" on
 * @p fd (the main thread's and the process's CPU during the loop, the
 * process's CPU at its end), then ends normally.  PAIRED: paired_child().
 */
static int
child(int m, const char *reader, const char *shim, long n, int fd)
{
	SCARDCONTEXT ctx;
	SCARDHANDLE card;
	DWORD active;
	transmit_fn fn, real;
	int64_t t0, p0, t1, p1;

	/* For pcsc-spy these are the spy's (preloaded): it opens its FIFO. */
	if (SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx) ||
	    SCardConnect(ctx, reader, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, &card, &active))
		return 1;
	real = (transmit_fn)dlsym(dlopen("libpcsclite.so.1", RTLD_NOW | RTLD_NOLOAD), "SCardTransmit");
	fn = m == REAL ? real : m == SPY ? SCardTransmit : bench_load_transmit("bench-cpu", shim);
	if (m == PAIRED)
		return paired_child(real, fn, card, n, fd);
	if (!fn || transmit_n(fn, card, WARMUP))
		return 1;
	t0 = bench_clock_ns(CLOCK_THREAD_CPUTIME_ID);
	p0 = bench_clock_ns(CLOCK_PROCESS_CPUTIME_ID);
	if (transmit_n(fn, card, n))
		return 1;
	t1 = bench_clock_ns(CLOCK_THREAD_CPUTIME_ID);
	p1 = bench_clock_ns(CLOCK_PROCESS_CPUTIME_ID);
	dprintf(fd, "%lld %lld %lld\n", (long long)(t1 - t0), (long long)(p1 - p0), (long long)p1);
	close(fd);
	SCardDisconnect(card, SCARD_LEAVE_CARD);
	SCardReleaseContext(ctx);
	return 0;
}

/* ---------------------------------------------------------------------- */
/* The parent                                                             */
/* ---------------------------------------------------------------------- */

static const char *reader_name, *shim_path;
static const char *spy_lib, *spy_libdir, *spy_home, *trace_base;
static int child_no;
static clockid_t pcscd_clock;
static int have_pcscd;

static void
spy_path(char *buf, size_t len, const char *leaf)
{
	snprintf(buf, len, "%s/%s", spy_home, leaf);
}

/* A pcsc-spy reading a fresh FIFO, its output in spy.out. */
static pid_t
start_spy_reader(void)
{
	char fifo[4096], out[4096];
	pid_t pid;
	int fd;

	spy_path(fifo, sizeof(fifo), "pcsc-spy");
	spy_path(out, sizeof(out), "spy.out");
	unlink(fifo);
	if (mkfifo(fifo, 0600) < 0) {
		perror("bench-cpu: mkfifo");
		return -1;
	}
	pid = fork();
	if (pid != 0)
		return pid;
	fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600);
	if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
		_exit(127);
	fd = open("/dev/null", O_RDONLY);
	if (fd < 0 || dup2(fd, 0) < 0)
		_exit(127);
	setenv("HOME", spy_home, 1);
	execlp("pcsc-spy", "pcsc-spy", "-n", (char *)NULL);
	_exit(127);
}

/* The SCardTransmit count of pcsc-spy's summary ("... (N calls) ... SCardTransmit"). */
static long
spy_transmits(void)
{
	char out[4096], line[512];
	long total = 0, calls;
	FILE *f;

	spy_path(out, sizeof(out), "spy.out");
	f = fopen(out, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		const char *p = strstr(line, " calls) ");

		line[strcspn(line, "\n")] = '\0';
		if (p && strlen(line) > 14 && !strcmp(line + strlen(line) - 14, " SCardTransmit") &&
		    sscanf(strrchr(line, '(') ? strrchr(line, '(') + 1 : "", "%ld", &calls) == 1)
			total += calls;
	}
	fclose(f);
	unlink(out);
	return total;
}

/* The transmits (fn 12) in the trace @p path, which is then removed. */
static long
trace_transmits(const char *path)
{
	char side[4200];
	sqlite3_stmt *st = NULL;
	sqlite3 *db = NULL;
	long count = -1;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, "SELECT count(*) FROM calls WHERE fn = 12", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		count = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	unlink(path);
	for (int i = 0; i < 2; i++) {
		snprintf(side, sizeof(side), "%s%s", path, i ? "-shm" : "-wal");
		unlink(side);
	}
	return count;
}

static double
pcscd_us(void)
{
	return have_pcscd ? bench_clock_ns(pcscd_clock) / 1e3 : 0;
}

/* One child in mode @p m making @p n transmits: its figures, or -1. */
static int
run(const char *self, int m, long n, struct sample *s)
{
	char nbuf[32], mbuf[8], fdbuf[16], report[128], trace[4096];
	double pcscd0 = pcscd_us(), pcscd1;
	long long main_ns, loop_ns, end_ns;
	pid_t spy = 0, pid;
	struct rusage ru;
	int p[2], st;
	ssize_t len;

	memset(s, 0, sizeof(*s));
	if (m == SPY && (spy = start_spy_reader()) < 0)
		return -1;
	if (pipe(p) < 0)
		return -1;
	snprintf(nbuf, sizeof(nbuf), "%ld", n);
	snprintf(mbuf, sizeof(mbuf), "%d", m);
	snprintf(fdbuf, sizeof(fdbuf), "%d", p[1]);
	snprintf(trace, sizeof(trace), "%s-%d", trace_base, child_no++);
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		char *argv[] = { (char *)self, (char *)reader_name, (char *)shim_path, "--child",
				 mbuf, nbuf, fdbuf, NULL };

		close(p[0]);
		setenv("PCSCTAP_TRACE", trace, 1);
		if (m == SPY) {
			const char *old = getenv("LD_LIBRARY_PATH");
			char path[8192];

			snprintf(path, sizeof(path), "%s%s%s", spy_libdir, old ? ":" : "", old ? old : "");
			setenv("LD_LIBRARY_PATH", path, 1);
			setenv("LD_PRELOAD", spy_lib, 1);
			setenv("HOME", spy_home, 1);
		}
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	close(p[1]);
	len = read(p[0], report, sizeof(report) - 1);
	close(p[0]);
	if (wait4(pid, &st, 0, &ru) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0 || len <= 0) {
		fprintf(stderr, "bench-cpu: a %s child failed\n", names[m]);
		if (spy > 0) {
			kill(spy, SIGKILL);
			waitpid(spy, &st, 0);
		}
		return -1;
	}
	pcscd1 = pcscd_us();
	report[len] = '\0';
	if (m == PAIRED) {
		long traced = n / PAIRED_BLOCK * PAIRED_BLOCK;	/* whole blocks */

		if (sscanf(report, "%lld %lld", &main_ns, &loop_ns) != 2 ||
		    trace_transmits(trace) != traced + WARMUP) {
			fprintf(stderr, "bench-cpu: the paired child did not trace its transmits\n");
			return -1;
		}
		s->paired = (main_ns - loop_ns) / 1e3 / (double)traced;
		return 0;
	}
	if (sscanf(report, "%lld %lld %lld", &main_ns, &loop_ns, &end_ns) != 3)
		return -1;
	s->total = rusage_us(&ru);
	s->main = main_ns / 1e3;
	s->others = (loop_ns - main_ns) / 1e3;
	s->exit = s->total - end_ns / 1e3;
	s->pcscd = pcscd1 - pcscd0;
	if (m == SHIM && trace_transmits(trace) != n + WARMUP) {
		fprintf(stderr, "bench-cpu: the trace of a pcsctap child lacks transmits: not tracing,"
			" no comparison\n");
		return -1;
	}
	if (spy > 0) {
		char fifo[4096];
		struct rusage sru;
		long seen;
		int fd;

		/* A reader still waiting for a writer (a child that never opened
		 * the FIFO) gets its end of file. */
		spy_path(fifo, sizeof(fifo), "pcsc-spy");
		fd = open(fifo, O_WRONLY | O_NONBLOCK);
		if (fd >= 0)
			close(fd);
		if (wait4(spy, &st, 0, &sru) != spy)
			return -1;
		s->reader = rusage_us(&sru);
		s->total += s->reader;
		seen = spy_transmits();
		if (seen != n + WARMUP) {
			fprintf(stderr, "bench-cpu: pcsc-spy saw %ld transmits, not %ld: the spy is not"
				" logging, no comparison\n", seen, n + WARMUP);
			return -1;
		}
	}
	return 0;
}

static void
print_load(const char *what)
{
	double load[3] = { -1, -1, -1 };

	getloadavg(load, 3);
	printf("%sload %.2f %.2f %.2f", what, load[0], load[1], load[2]);
}

/* The 95 % interval of the median of @p v (sorted), d from
 * median_interval_rank(). */
static void
print_interval(const char *name, const double *v, int n, int d)
{
	if (d)
		printf("  %-9s adds %.2f to %.2f us: the median's 95 %% interval\n", name, v[d - 1],
		       v[n - d]);
	else
		printf("  %-9s adds %.2f to %.2f us over the rounds: too few for an interval\n",
		       name, v[0], v[n - 1]);
}

/* pcsc-spy's addition over pcsctap's (medians; @p spy and @p shim the
 * sorted rounds), and the least ratio at the ends of both intervals. */
static void
print_ratio(const char *how, double spy_med, const double *spy, double shim_med,
	    const double *shim, int n, int d)
{
	if (shim_med <= 0.05) {
		printf("pcsctap%s adds less CPU than this run resolves (%.2f us); pcsc-spy adds"
		       " %.2f us\n", how, shim_med, spy_med);
		return;
	}
	printf("pcsc-spy adds %.1f times what pcsctap%s adds (CPU)", spy_med / shim_med, how);
	if (d && shim[n - d] > 0.05)
		printf("; at the 95 %% intervals' ends at least %.1f times", spy[d - 1] / shim[n - d]);
	printf("\n");
}

#define SLOPE(f) ((b[k].f - a[k].f) / n)

int
main(int argc, char **argv)
{
	static double total[N_MODES][MAX_ROUNDS], mainth[N_MODES][MAX_ROUNDS];
	static double others[N_MODES][MAX_ROUNDS], ex[N_MODES][MAX_ROUNDS];
	static double reader[N_MODES][MAX_ROUNDS], pcscd[N_MODES][MAX_ROUNDS];
	static double add[N_MODES][MAX_ROUNDS], add_main[N_MODES][MAX_ROUNDS];
	static double paired_main[MAX_ROUNDS], paired_add[MAX_ROUNDS];
	double med_add[N_MODES], med_paired;
	const char *pcscd_pid;
	int n_modes, rounds, d;
	long n;

	if (argc == 7 && !strcmp(argv[3], "--child"))
		return child(atoi(argv[4]), argv[1], argv[2], atol(argv[5]), atoi(argv[6]));
	if (argc != 5)
		return 2;
	reader_name = argv[1];
	shim_path = argv[2];
	n = atol(argv[3]);
	rounds = atoi(argv[4]);
	if (n <= 0 || rounds <= 0 || rounds > MAX_ROUNDS)
		return 2;
	spy_lib = getenv("BENCH_SPY_LIB");
	spy_libdir = getenv("BENCH_SPY_LIBDIR");
	spy_home = getenv("BENCH_SPY_HOME");
	trace_base = getenv("PCSCTAP_TRACE");
	if (!trace_base)
		return 2;
	n_modes = spy_lib && spy_libdir && spy_home ? N_MODES : SPY;
	pcscd_pid = getenv("BENCH_PCSCD_PID");
	have_pcscd = pcscd_pid && clock_getcpuclockid(atoi(pcscd_pid), &pcscd_clock) == 0;

	printf("CPU per SCardTransmit: slope between %ld and %ld transmits, a fresh process each,"
	       " %d rounds (", n, 2 * n, rounds);
	print_load("");
	printf(")\n");
	for (int r = 0; r < rounds; r++) {
		struct sample a[N_MODES], b[N_MODES], pair;

		/* Rotate: no mode always runs first, or always at N first. */
		for (int i = 0; i < 2 * n_modes; i++) {
			int k = (i + r) % n_modes;
			int big = (i / n_modes + r) % 2;

			if (run(argv[0], k, big ? 2 * n : n, big ? &b[k] : &a[k]) < 0)
				return 1;
		}
		if (run(argv[0], PAIRED, n, &pair) < 0)
			return 1;
		printf("  round %d:", r + 1);
		for (int k = 0; k < n_modes; k++) {
			total[k][r] = SLOPE(total);
			mainth[k][r] = SLOPE(main);
			others[k][r] = SLOPE(others);
			ex[k][r] = SLOPE(exit);
			reader[k][r] = SLOPE(reader);
			pcscd[k][r] = SLOPE(pcscd);
			printf(" %s %.2f", names[k], total[k][r]);
			if (k != REAL)
				printf(" (%+.2f)", total[k][r] - total[REAL][r]);
		}
		paired_main[r] = pair.paired;
		paired_add[r] = paired_main[r] + others[SHIM][r] + ex[SHIM][r] - ex[REAL][r];
		printf("; paired %+.2f", paired_add[r]);
		printf("; pcscd");
		for (int k = 0; k < n_modes; k++)
			printf(" %.2f", pcscd[k][r]);
		print_load(" us; ");
		printf("\n");
		for (int k = 0; k < n_modes; k++) {
			add[k][r] = total[k][r] - total[REAL][r];
			add_main[k][r] = mainth[k][r] - mainth[REAL][r];
		}
	}
	for (int k = 0; k < n_modes; k++)
		med_add[k] = median(add[k], rounds);	/* sorts add[k] */
	d = median_interval_rank(rounds);
	printf("medians over %d rounds, us of CPU per transmit (", rounds);
	print_load("");
	printf("):\n");
	printf("  %-9s %7.2f  (the application's thread %.2f; pcscd %.2f, not counted)\n",
	       names[REAL], median(total[REAL], rounds), median(mainth[REAL], rounds),
	       median(pcscd[REAL], rounds));
	printf("  %-9s %7.2f, adds %.2f us  (application's thread %+.2f, writer thread during the"
	       " loop %.2f, exit: final import + checkpoint %.2f; pcscd %.2f)\n",
	       names[SHIM], median(total[SHIM], rounds), med_add[SHIM], median(add_main[SHIM], rounds),
	       median(others[SHIM], rounds), median(ex[SHIM], rounds) - median(ex[REAL], rounds),
	       median(pcscd[SHIM], rounds));
	print_interval(names[SHIM], add[SHIM], rounds, d);
	med_paired = median(paired_add, rounds);	/* sorts paired_add */
	/* The application's thread in one process (paired_child()): no
	 * process-to-process spread, which is most of the spread above. */
	printf("  %-9s adds %.2f us  (the application's thread %+.2f paired in one process, blocks"
	       " of %d transmits; writer thread and exit as above)\n", names[SHIM],
	       med_paired, median(paired_main, rounds), PAIRED_BLOCK);
	print_interval(names[SHIM], paired_add, rounds, d);
	if (n_modes == N_MODES) {
		printf("  %-9s %7.2f, adds %.2f us  (application's thread %+.2f, pcsc-spy reader"
		       " process %.2f; pcscd %.2f)\n", names[SPY], median(total[SPY], rounds),
		       med_add[SPY], median(add_main[SPY], rounds), median(reader[SPY], rounds),
		       median(pcscd[SPY], rounds));
		print_interval(names[SPY], add[SPY], rounds, d);
		print_ratio("", med_add[SPY], add[SPY], med_add[SHIM], add[SHIM], rounds, d);
		print_ratio(", the application's thread paired", med_add[SPY], add[SPY], med_paired,
			    paired_add, rounds, d);
	}
	return 0;
}
