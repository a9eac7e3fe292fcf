/*
 * contend.c — PC/SC clients that contend for one card, for the marker
 * contention tests and benchmark (tests/markers/).
 *
 *	contend holder READER ON_MS OFF_MS SECONDS
 *		loop: SCardBeginTransaction, one APDU, ON_MS pause,
 *		SCardEndTransaction(LEAVE), OFF_MS pause; prints "holding"
 *		once its first transaction is held, then "held B E" per
 *		transaction (CLOCK_MONOTONIC ns while it held the card).
 *	contend guest READER ID APDUS GAP_MS DISPOSITION [REPEAT]
 *		REPEAT times: connect shared T=1, APDUS APDUs 80 10 ID k 00
 *		GAP_MS apart, SCardDisconnect(DISPOSITION).
 *	contend pair READER N
 *		one process, two handles, N rounds: B connects, A begins a
 *		transaction, B disconnects (LEAVE) while A holds the card, A
 *		ends it, B connects and disconnects again; prints the median
 *		microseconds of "connect", "disconnect-held" (B's disconnect
 *		during A's transaction) and "disconnect" (the free one).
 *	contend random READER ID SEED STEPS
 *		a seeded schedule of connects, transactions, transmits
 *		(80 20 ID k 00), disconnects and short pauses.
 *
 * Prints "pid N", then one line per call ("connect 0x00000000"), nothing
 * that depends on timing, so a traced run can be compared with an untraced one.  With
 * CONTEND_TIMES=FILE, the microseconds each connect and disconnect took
 * are appended there ("connect 123").  Exit 1 when a call failed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <winscard.h>

static FILE *times;
static int failed;

static double
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void
pause_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0)
		;
}

static void
report(const char *what, LONG rv, double t0)
{
	if (times && t0 > 0)
		fprintf(times, "%s %.0f\n", what, now_us() - t0);
	printf("%s 0x%08lX\n", what, (unsigned long)rv);
	fflush(stdout);
	failed |= rv != SCARD_S_SUCCESS;
}

static LONG
apdu(SCARDHANDLE card, BYTE ins, BYTE id, BYTE k)
{
	const BYTE cmd[5] = { 0x80, ins, id, k, 0x00 };
	BYTE resp[258];
	DWORD len = sizeof(resp);

	return SCardTransmit(card, SCARD_PCI_T1, cmd, sizeof(cmd), NULL, resp, &len);
}

static DWORD
disposition(const char *s)
{
	static const char *const names[] = { "leave", "reset", "unpower", "eject" };

	for (DWORD i = 0; i < 4; i++)
		if (!strcmp(s, names[i]))
			return i;
	fprintf(stderr, "contend: unknown disposition %s\n", s);
	exit(2);
}

static LONG
connect(SCARDCONTEXT ctx, const char *reader, SCARDHANDLE *card)
{
	DWORD active;
	double t0 = now_us();
	LONG rv = SCardConnect(ctx, reader, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, card, &active);

	report("connect", rv, t0);
	return rv;
}

static void
disconnect(SCARDHANDLE card, DWORD how)
{
	double t0 = now_us();

	report("disconnect", SCardDisconnect(card, how), t0);
}

static void
holder(SCARDCONTEXT ctx, const char *reader, unsigned on, unsigned off, unsigned seconds)
{
	double end = now_us() + seconds * 1e6;
	SCARDHANDLE card;
	unsigned cycles = 0;
	DWORD active;

	/* No end: the test stops the holder (SIGTERM) when its guests are done. */

	if (SCardConnect(ctx, reader, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, &card, &active)) {
		failed = 1;
		return;
	}
	while (now_us() < end) {
		LONG rv = SCardBeginTransaction(card);

		/* A guest's reset: pcscd refuses this handle until it reconnects. */
		if (rv == SCARD_W_RESET_CARD &&
		    SCardReconnect(card, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, SCARD_LEAVE_CARD,
				   &active) == SCARD_S_SUCCESS)
			rv = SCardBeginTransaction(card);
		if (rv == SCARD_S_SUCCESS) {
			double held = now_us();

			if (!cycles++) {
				printf("holding\n");
				fflush(stdout);
			}
			(void)apdu(card, 0x30, 0xEE, (BYTE)cycles);
			if (on)
				pause_ms(on);
			/* Taken before the end: the card is surely still held. */
			printf("held %.0f %.0f\n", held * 1e3, now_us() * 1e3);
			fflush(stdout);
			(void)SCardEndTransaction(card, SCARD_LEAVE_CARD);
		}
		if (off)
			pause_ms(off);
	}
	SCardDisconnect(card, SCARD_LEAVE_CARD);
}

static void
guest(SCARDCONTEXT ctx, const char *reader, BYTE id, unsigned apdus, unsigned gap, DWORD how,
      unsigned repeat)
{
	SCARDHANDLE card;
	BYTE k = 0;

	while (repeat--) {
		if (connect(ctx, reader, &card))
			continue;
		for (unsigned i = 0; i < apdus; i++) {
			if (i && gap)
				pause_ms(gap);
			report("transmit", apdu(card, 0x10, id, k++), 0);
		}
		disconnect(card, how);
	}
}

static int
by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), by_value);
	return n ? v[n / 2] : 0;
}

static void
pair(SCARDCONTEXT ctx, const char *reader, unsigned rounds)
{
	double *t = calloc(3 * (size_t)rounds, sizeof(*t)), t0;
	SCARDHANDLE a, b;
	DWORD active;

	if (!t || SCardConnect(ctx, reader, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, &a, &active)) {
		failed = 1;
		free(t);
		return;
	}
	for (unsigned i = 0; i < rounds; i++) {
		t0 = now_us();
		failed |= SCardConnect(ctx, reader, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, &b, &active) != 0;
		t[i] = now_us() - t0;
		failed |= SCardBeginTransaction(a) != 0;
		t0 = now_us();
		failed |= SCardDisconnect(b, SCARD_LEAVE_CARD) != 0;
		t[rounds + i] = now_us() - t0;
		failed |= SCardEndTransaction(a, SCARD_LEAVE_CARD) != 0;
		failed |= SCardConnect(ctx, reader, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, &b, &active) != 0;
		t0 = now_us();
		failed |= SCardDisconnect(b, SCARD_LEAVE_CARD) != 0;
		t[2 * rounds + i] = now_us() - t0;
	}
	SCardDisconnect(a, SCARD_LEAVE_CARD);
	printf("connect %.0f\ndisconnect-held %.0f\ndisconnect %.0f\n", median(t, rounds),
	       median(t + rounds, rounds), median(t + 2 * rounds, rounds));
	free(t);
}

static void
random_schedule(SCARDCONTEXT ctx, const char *reader, BYTE id, unsigned seed, unsigned steps)
{
	SCARDHANDLE card = 0;
	int connected = 0, in_transaction = 0;
	BYTE k = 0;

	srand(seed);
	for (unsigned i = 0; i < steps; i++) {
		int r = rand() % 100;

		if (!connected) {
			if (r < 70)
				connected = connect(ctx, reader, &card) == SCARD_S_SUCCESS;
			else
				pause_ms((unsigned)(rand() % 20));
		} else if (r < 40) {
			report("transmit", apdu(card, 0x20, id, k++), 0);
		} else if (r < 55 && !in_transaction) {
			LONG rv = SCardBeginTransaction(card);

			report("begin", rv, 0);
			in_transaction = rv == SCARD_S_SUCCESS;
		} else if (r < 70 && in_transaction) {
			report("end", SCardEndTransaction(card, SCARD_LEAVE_CARD), 0);
			in_transaction = 0;
		} else if (r < 80) {
			/* Long inside a transaction, so that the others meet it. */
			pause_ms((unsigned)(rand() % 30) + (in_transaction ? 40 : 0));
		} else if (r < 90 || i + 1 == steps) {
			if (in_transaction)
				report("end", SCardEndTransaction(card, SCARD_LEAVE_CARD), 0);
			/*
			 * A pause first, so that another process may have begun a
			 * transaction; LEAVE: a reset would fail the others' next
			 * calls (W_RESET_CARD).
			 */
			pause_ms((unsigned)(rand() % 20));
			disconnect(card, SCARD_LEAVE_CARD);
			connected = in_transaction = 0;
		}
	}
	if (connected) {
		if (in_transaction)
			report("end", SCardEndTransaction(card, SCARD_LEAVE_CARD), 0);
		disconnect(card, SCARD_LEAVE_CARD);
	}
}

int
main(int argc, char **argv)
{
	const char *path = getenv("CONTEND_TIMES");
	SCARDCONTEXT ctx;

	if (argc < 3) {
		fprintf(stderr, "usage: contend holder|guest|random READER ...\n");
		return 2;
	}
	if (path && !(times = fopen(path, "a")))
		return 2;
	printf("pid %ld\n", (long)getpid());
	fflush(stdout);
	if (SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx))
		return 1;
	if (!strcmp(argv[1], "holder") && argc == 6)
		holder(ctx, argv[2], (unsigned)atoi(argv[3]), (unsigned)atoi(argv[4]),
		       (unsigned)atoi(argv[5]));
	else if (!strcmp(argv[1], "guest") && (argc == 7 || argc == 8))
		guest(ctx, argv[2], (BYTE)strtoul(argv[3], NULL, 16), (unsigned)atoi(argv[4]),
		      (unsigned)atoi(argv[5]), disposition(argv[6]),
		      argc == 8 ? (unsigned)atoi(argv[7]) : 1);
	else if (!strcmp(argv[1], "pair") && argc == 4)
		pair(ctx, argv[2], (unsigned)atoi(argv[3]));
	else if (!strcmp(argv[1], "random") && argc == 6)
		random_schedule(ctx, argv[2], (BYTE)strtoul(argv[3], NULL, 16),
				(unsigned)atoi(argv[4]), (unsigned)atoi(argv[5]));
	else {
		fprintf(stderr, "contend: bad arguments\n");
		return 2;
	}
	SCardReleaseContext(ctx);
	if (times)
		fclose(times);
	return failed;
}
