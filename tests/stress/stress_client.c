/*
 * stress_client.c — many threads transmitting at once through one reader.
 *
 *   stress-client READER THREADS TRANSMITS
 *
 * Each thread has its own context and shared connection and sends
 * TRANSMITS tagged APDUs (00 CA <thread> <n>), checking each answer.
 * Prints "pid P" and "transmits ok=N failed=M" and exits 0 only when
 * nothing failed, so a test can compare what the clients did with what
 * the trace holds.
 */
#include <PCSC/winscard.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct worker {
	pthread_t thread;
	const char *reader;
	int index;
	long transmits;
	long ok;
	long failed;
	LONG first_error;
};

static void *
work(void *data)
{
	struct worker *w = data;
	SCARDCONTEXT ctx;
	SCARDHANDLE card;
	DWORD protocol;
	LONG rv;

	rv = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx);
	if (rv != SCARD_S_SUCCESS)
		goto fail_all;
	rv = SCardConnect(ctx, w->reader, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, &card, &protocol);
	if (rv != SCARD_S_SUCCESS) {
		SCardReleaseContext(ctx);
		goto fail_all;
	}
	for (long i = 0; i < w->transmits; i++) {
		BYTE apdu[] = { 0x00, 0xCA, (BYTE)w->index, (BYTE)i, 0x00 }, resp[258];
		DWORD len = sizeof(resp);

		rv = SCardTransmit(card, SCARD_PCI_T1, apdu, sizeof(apdu), NULL, resp, &len);
		if (rv == SCARD_S_SUCCESS && len == 2 && resp[0] == 0x90 && resp[1] == 0x00) {
			w->ok++;
		} else {
			if (!w->failed)
				w->first_error = rv;
			w->failed++;
		}
	}
	SCardDisconnect(card, SCARD_LEAVE_CARD);
	SCardReleaseContext(ctx);
	return NULL;
fail_all:
	w->first_error = rv;
	w->failed = w->transmits;
	return NULL;
}

int
main(int argc, char **argv)
{
	struct worker *workers;
	long ok = 0, failed = 0;
	int n;

	if (argc != 4) {
		fprintf(stderr, "usage: stress-client READER THREADS TRANSMITS\n");
		return 2;
	}
	n = atoi(argv[2]);
	workers = calloc((size_t)n, sizeof(*workers));
	if (n <= 0 || !workers)
		return 2;
	for (int i = 0; i < n; i++) {
		workers[i].reader = argv[1];
		workers[i].index = i;
		workers[i].transmits = atol(argv[3]);
		if (pthread_create(&workers[i].thread, NULL, work, &workers[i]) != 0)
			return 2;
	}
	for (int i = 0; i < n; i++) {
		pthread_join(workers[i].thread, NULL);
		ok += workers[i].ok;
		failed += workers[i].failed;
		if (workers[i].failed)
			fprintf(stderr, "stress-client: thread %d: %ld failed, first rv 0x%08lX\n",
				i, workers[i].failed, (unsigned long)workers[i].first_error);
	}
	/* The pid ties this output to the trace's rows. */
	printf("pid %ld\n", (long)getpid());
	printf("transmits ok=%ld failed=%ld\n", ok, failed);
	free(workers);
	return failed ? 1 : 0;
}
