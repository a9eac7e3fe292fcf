/*
 * bench_transmit.c — what tracing costs an SCardTransmit loop.
 *
 *	[LD_PRELOAD=libpcscspy.so.0] bench-transmit READER SHIM ROUNDS BATCH [spy]
 *
 * One process, one shared T=1 connection, three SCardTransmit entry points
 * called alternately in batches of BATCH: the real libpcsclite (looked up
 * in its own handle), libpcsctap.so (dlopened; traces to PCSCTAP_TRACE;
 * run with LIBPCSCLITE_DELEGATE and PCSCTAP_REAL_LIBRARY so that it binds
 * to the real library, not to the spy) and, with "spy", the linked
 * SCardTransmit, which LD_PRELOAD makes pcsc-lite's spy (writing to the
 * FIFO that pcsc-spy reads; the spy must be preloaded, as it refuses to
 * bind when dlopened next to a linked libpcsclite).  All end in the same
 * real library instance, so they share the handle.  Alternating within one run keeps drift (CPU
 * frequency, the card, pcscd) out of the ratios.  Prints the median batch
 * time per APDU of each and the overheads relative to the real library.
 *
 *	[LD_PRELOAD=libpcscspy.so.0] bench-transmit READER SHIM cpu N [SPY_READER_PID]
 *
 * CPU instead of time: for each mode, child processes make N and 2N
 * transmits and end normally (the trace writer thread finishes its work
 * before exit); the CPU each child used, all its threads (wait4), plus for
 * pcsc-spy the CPU of the pcsc-spy process that reads its FIFO, gives the
 * slope per transmit between N and 2N, so that start-up (binding, the
 * trace's creation) cancels.  Prints each mode's CPU per transmit, what
 * tracing adds to the untraced figure, and the ratio of pcsc-spy's
 * addition to pcsctap's.  Medians of ROUNDS_CPU (5) repetitions.
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <winscard.h>

typedef LONG (*transmit_fn)(SCARDHANDLE, const SCARD_IO_REQUEST *, LPCBYTE, DWORD,
			    SCARD_IO_REQUEST *, LPBYTE, LPDWORD);

enum { REAL, SHIM, SPY, N_MODES };
static const char *const names[N_MODES] = { "untraced", "pcsctap", "pcsc-spy" };

static double
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static transmit_fn
load(const char *path)
{
	LONG (*establish)(DWORD, LPCVOID, LPCVOID, LPSCARDCONTEXT);
	LONG (*release)(SCARDCONTEXT);
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	SCARDCONTEXT ctx;

	if (!h) {
		fprintf(stderr, "bench: %s\n", dlerror());
		exit(1);
	}
	/* libpcscspy binds the real library in its SCardEstablishContext. */
	establish = (LONG (*)(DWORD, LPCVOID, LPCVOID, LPSCARDCONTEXT))dlsym(h, "SCardEstablishContext");
	release = (LONG (*)(SCARDCONTEXT))dlsym(h, "SCardReleaseContext");
	if (establish(SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx) == SCARD_S_SUCCESS)
		release(ctx);
	return (transmit_fn)dlsym(h, "SCardTransmit");
}

/* CPU of the process @p pid so far (utime + stime from /proc), in us. */
static double
proc_cpu_us(pid_t pid)
{
	unsigned long ut = 0, st = 0;
	char path[64], buf[1024], *p;
	FILE *f;

	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	p = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
	fclose(f);
	/* After "pid (comm)": state is field 3, utime 14, stime 15. */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return 0;
	return (ut + st) * 1e6 / sysconf(_SC_CLK_TCK);
}

/* One child: @p n transmits through mode @p m, then a normal exit. */
static int
cpu_child(int m, const char *reader, const char *shim, long n)
{
	static const BYTE apdu[] = { 0x00, 0xA4, 0x04, 0x00, 0x00 };
	transmit_fn fn = m == REAL ? (transmit_fn)dlsym(dlopen("libpcsclite.so.1", RTLD_NOW | RTLD_NOLOAD),
						       "SCardTransmit")
		       : m == SHIM ? load(shim) : SCardTransmit;
	SCARD_IO_REQUEST recv_pci;
	SCARDCONTEXT ctx;
	SCARDHANDLE card;
	DWORD active, len;
	BYTE resp[258];

	if (SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx) ||
	    SCardConnect(ctx, reader, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, &card, &active))
		return 1;
	for (long i = 0; i < n; i++) {
		len = sizeof(resp);
		if (fn(card, SCARD_PCI_T1, apdu, sizeof(apdu), &recv_pci, resp, &len))
			return 1;
	}
	SCardDisconnect(card, SCARD_LEAVE_CARD);
	SCardReleaseContext(ctx);
	return 0;
}

/* CPU (us) of a child making @p n transmits in mode @p m, or -1. */
static double
cpu_run(int m, const char *reader, const char *shim, long n, pid_t spy_reader)
{
	double spy0 = m == SPY ? proc_cpu_us(spy_reader) : 0;
	struct rusage ru;
	pid_t pid;
	int st;

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0)
		_exit(cpu_child(m, reader, shim, n));
	if (wait4(pid, &st, 0, &ru) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return -1;
	/* The spy's reader may still be draining the FIFO. */
	if (m == SPY)
		usleep(200000);
	return ru.ru_utime.tv_sec * 1e6 + ru.ru_utime.tv_usec + ru.ru_stime.tv_sec * 1e6 +
	       ru.ru_stime.tv_usec + (m == SPY ? proc_cpu_us(spy_reader) - spy0 : 0);
}

#define ROUNDS_CPU 5

static int
cpu_bench(const char *reader, const char *shim, long n, int n_modes, pid_t spy_reader)
{
	double slope[N_MODES][ROUNDS_CPU], med[N_MODES];
	double load[3] = { -1, -1, -1 };

	getloadavg(load, 3);
	printf("CPU per SCardTransmit, slope between %ld and %ld transmits (all threads of the"
	       " process%s; load %.2f %.2f %.2f):\n", n, 2 * n,
	       n_modes == N_MODES ? ", + the pcsc-spy reader for pcsc-spy" : "",
	       load[0], load[1], load[2]);
	for (int r = 0; r < ROUNDS_CPU; r++) {
		for (int m = 0; m < n_modes; m++) {
			double a = cpu_run(m, reader, shim, n, spy_reader);
			double b = cpu_run(m, reader, shim, 2 * n, spy_reader);

			if (a < 0 || b < 0) {
				fprintf(stderr, "bench: a %s run failed\n", names[m]);
				return 1;
			}
			slope[m][r] = (b - a) / n;
		}
	}
	for (int m = 0; m < n_modes; m++) {
		qsort(slope[m], ROUNDS_CPU, sizeof(double), cmp_double);
		med[m] = slope[m][ROUNDS_CPU / 2];
		printf("  %-9s %7.2f us CPU/transmit", names[m], med[m]);
		if (m != REAL)
			printf(", %+.2f us over untraced", med[m] - med[REAL]);
		printf("  (median of %d)\n", ROUNDS_CPU);
	}
	if (n_modes == N_MODES)
		printf("  pcsc-spy adds %.1f times what pcsctap adds\n",
		       (med[SPY] - med[REAL]) / (med[SHIM] - med[REAL]));
	return 0;
}

int
main(int argc, char **argv)
{
	static const BYTE apdu[] = { 0x00, 0xA4, 0x04, 0x00, 0x00 };
	transmit_fn fn[N_MODES] = { NULL, NULL, SCardTransmit };
	double *samples[N_MODES], *ratio[N_MODES], median[N_MODES], overhead[N_MODES];
	SCARDCONTEXT ctx;
	SCARDHANDLE card;
	DWORD active, len;
	/* Not NULL: pcsc-lite 1.9.9's spy crashes on a NULL pioRecvPci. */
	SCARD_IO_REQUEST recv_pci;
	BYTE resp[258];
	int rounds, batch, n_modes;

	if (argc >= 5 && !strcmp(argv[3], "cpu"))
		return cpu_bench(argv[1], argv[2], atol(argv[4]),
				 getenv("LD_PRELOAD") && strstr(getenv("LD_PRELOAD"), "pcscspy") ? N_MODES : SPY,
				 argc > 5 ? atoi(argv[5]) : 0);
	if (argc != 5 && argc != 6)
		return 2;
	rounds = atoi(argv[3]);
	batch = atoi(argv[4]);
	n_modes = argc == 6 && !strcmp(argv[5], "spy") ? N_MODES : SPY;
	fn[REAL] = (transmit_fn)dlsym(dlopen("libpcsclite.so.1", RTLD_NOW | RTLD_NOLOAD), "SCardTransmit");
	fn[SHIM] = load(argv[2]);
	if (SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx) ||
	    SCardConnect(ctx, argv[1], SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, &card, &active))
		return 1;
	for (int m = 0; m < n_modes; m++) {
		samples[m] = calloc(rounds, sizeof(double));
		/* Warm up: binding, trace creation, the spy's FIFO. */
		for (int i = 0; i < batch; i++) {
			len = sizeof(resp);
			fn[m](card, SCARD_PCI_T1, apdu, sizeof(apdu), &recv_pci, resp, &len);
		}
	}
	for (int r = 0; r < rounds; r++) {
		for (int k = 0; k < n_modes; k++) {
			/* Rotate the order too: no mode always runs first. */
			int m = (r + k) % n_modes;
			double t0 = now_us();

			for (int i = 0; i < batch; i++) {
				len = sizeof(resp);
				if (fn[m](card, SCARD_PCI_T1, apdu, sizeof(apdu), &recv_pci, resp, &len)) {
					fprintf(stderr, "bench: transmit failed (%s): 0x%lX\n", names[m], (unsigned long)fn[m](card, SCARD_PCI_T1, apdu, sizeof(apdu), &recv_pci, resp, &len));
					return 1;
				}
			}
			samples[m][r] = (now_us() - t0) / batch;
		}
	}
	for (int m = 1; m < n_modes; m++) {
		ratio[m] = calloc(rounds, sizeof(double));
		for (int r = 0; r < rounds; r++)
			ratio[m][r] = samples[m][r] / samples[REAL][r];
	}
	for (int m = 0; m < n_modes; m++) {
		qsort(samples[m], rounds, sizeof(double), cmp_double);
		median[m] = samples[m][rounds / 2];
		printf("%-9s %8.1f us/APDU (median of %d batches of %d)\n",
		       names[m], median[m], rounds, batch);
	}
	/* Paired: each round's batches ran back to back, so drift cancels. */
	for (int m = 1; m < n_modes; m++) {
		qsort(ratio[m], rounds, sizeof(double), cmp_double);
		overhead[m] = ratio[m][rounds / 2] - 1;
		printf("%s overhead: %+.2f %% (median of paired batch ratios)\n",
		       names[m], 100 * overhead[m]);
	}
	if (n_modes == N_MODES)
		printf("pcsctap overhead / pcsc-spy overhead: %.3f\n", overhead[SHIM] / overhead[SPY]);
	SCardDisconnect(card, SCARD_LEAVE_CARD);
	SCardReleaseContext(ctx);
	return 0;
}
