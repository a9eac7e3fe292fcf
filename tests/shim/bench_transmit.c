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
 * CPU per transmit is bench_cpu.c's.
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <winscard.h>

#include "bench_util.h"

enum { REAL, SHIM, SPY, N_MODES };
static const char *const names[N_MODES] = { "untraced", "pcsctap", "pcsc-spy" };

static double
clock_us(clockid_t clk)
{
	return bench_clock_ns(clk) / 1e3;
}

static double
now_us(void)
{
	return clock_us(CLOCK_MONOTONIC);
}

int
main(int argc, char **argv)
{
	static const BYTE apdu[] = { 0x00, 0xA4, 0x04, 0x00, 0x00 };
	transmit_fn fn[N_MODES] = { NULL, NULL, SCardTransmit };
	double *samples[N_MODES], *ratio[N_MODES], median[N_MODES], overhead[N_MODES];
	double *cpu[N_MODES], *cpu_add[N_MODES];
	SCARDCONTEXT ctx;
	SCARDHANDLE card;
	DWORD active, len;
	/* Not NULL: pcsc-lite 1.9.9's spy crashes on a NULL pioRecvPci. */
	SCARD_IO_REQUEST recv_pci;
	BYTE resp[258];
	int rounds, batch, n_modes;

	if (argc != 5 && argc != 6)
		return 2;
	rounds = atoi(argv[3]);
	batch = atoi(argv[4]);
	n_modes = argc == 6 && !strcmp(argv[5], "spy") ? N_MODES : SPY;
	fn[REAL] = (transmit_fn)dlsym(dlopen("libpcsclite.so.1", RTLD_NOW | RTLD_NOLOAD), "SCardTransmit");
	fn[SHIM] = bench_load_transmit("bench", argv[2]);
	if (!fn[SHIM])
		return 1;
	if (SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx) ||
	    SCardConnect(ctx, argv[1], SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, &card, &active))
		return 1;
	for (int m = 0; m < n_modes; m++) {
		samples[m] = calloc(rounds, sizeof(double));
		cpu[m] = calloc(rounds, sizeof(double));
		cpu_add[m] = calloc(rounds, sizeof(double));
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
			double t0 = now_us(), c0 = clock_us(CLOCK_THREAD_CPUTIME_ID);

			for (int i = 0; i < batch; i++) {
				len = sizeof(resp);
				if (fn[m](card, SCARD_PCI_T1, apdu, sizeof(apdu), &recv_pci, resp, &len)) {
					fprintf(stderr, "bench: transmit failed (%s): 0x%lX\n", names[m], (unsigned long)fn[m](card, SCARD_PCI_T1, apdu, sizeof(apdu), &recv_pci, resp, &len));
					return 1;
				}
			}
			samples[m][r] = (now_us() - t0) / batch;
			cpu[m][r] = (clock_us(CLOCK_THREAD_CPUTIME_ID) - c0) / batch;
		}
	}
	for (int m = 1; m < n_modes; m++) {
		ratio[m] = calloc(rounds, sizeof(double));
		for (int r = 0; r < rounds; r++) {
			ratio[m][r] = samples[m][r] / samples[REAL][r];
			cpu_add[m][r] = cpu[m][r] - cpu[REAL][r];
		}
	}
	for (int m = 0; m < n_modes; m++) {
		qsort(samples[m], rounds, sizeof(double), bench_cmp_double);
		median[m] = samples[m][rounds / 2];
		printf("%-9s %8.1f us/APDU (median of %d batches of %d)\n",
		       names[m], median[m], rounds, batch);
	}
	/* Paired: each round's batches ran back to back, so drift cancels. */
	for (int m = 1; m < n_modes; m++) {
		qsort(ratio[m], rounds, sizeof(double), bench_cmp_double);
		overhead[m] = ratio[m][rounds / 2] - 1;
		printf("%s overhead: %+.2f %% (median of paired batch ratios)\n",
		       names[m], 100 * overhead[m]);
	}
	if (n_modes == N_MODES)
		printf("pcsctap overhead / pcsc-spy overhead: %.3f\n", overhead[SHIM] / overhead[SPY]);
	/* The application's thread alone, paired batch by batch: the same
	 * process (so the untraced calls pay the writer thread's presence
	 * too: glibc's multi-threaded paths), drift cancelled at the scale
	 * of a batch.  The writer's own CPU is bench_cpu.c's. */
	for (int m = 1; m < n_modes; m++) {
		qsort(cpu_add[m], rounds, sizeof(double), bench_cmp_double);
		printf("%s on the application's thread: %+.2f us CPU/APDU (median of paired batches)\n",
		       names[m], cpu_add[m][rounds / 2]);
	}
	SCardDisconnect(card, SCARD_LEAVE_CARD);
	SCardReleaseContext(ctx);
	return 0;
}
