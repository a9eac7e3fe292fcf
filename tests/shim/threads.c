/*
 * threads.c — 8 threads transmitting at once, each on its own context and
 * shared connection.  Usage: threads READER ROUNDS.  Exit 0 when every
 * call succeeded; the shell test then counts the calls in the trace.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <winscard.h>

#define N_THREADS 8

static const char *reader;
static int rounds;
static pthread_barrier_t barrier;

static void *
worker(void *arg)
{
	static const BYTE select[] = { 0x00, 0xA4, 0x04, 0x00, 0x00 };
	SCARDCONTEXT ctx;
	SCARDHANDLE card;
	DWORD active, len;
	BYTE resp[258];
	long failures = 0;

	if (SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx) ||
	    SCardConnect(ctx, reader, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, &card, &active))
		return (void *)1L;
	pthread_barrier_wait(&barrier);
	for (int i = 0; i < rounds; i++) {
		len = sizeof(resp);
		if (SCardTransmit(card, SCARD_PCI_T1, select, sizeof(select), NULL, resp, &len) ||
		    len != 2 || resp[0] != 0x90)
			failures++;
	}
	if (SCardDisconnect(card, SCARD_LEAVE_CARD) || SCardReleaseContext(ctx))
		failures++;
	return (void *)failures;
}

int
main(int argc, char **argv)
{
	pthread_t t[N_THREADS];
	long failures = 0;
	void *r;

	if (argc != 3)
		return 2;
	reader = argv[1];
	rounds = atoi(argv[2]);
	pthread_barrier_init(&barrier, NULL, N_THREADS);
	for (int i = 0; i < N_THREADS; i++)
		pthread_create(&t[i], NULL, worker, NULL);
	for (int i = 0; i < N_THREADS; i++) {
		pthread_join(t[i], &r);
		failures += (long)r;
	}
	printf("threads=%d rounds=%d failures=%ld\n", N_THREADS, rounds, failures);
	return failures != 0;
}
