/*
 * bedwait.c — wait, with a bound, until a reader exists and its card is
 * present (or absent).  The test bed's readiness probe: pcscd polls a
 * virtual reader every 400 ms, so a fixed sleep would be either slow or
 * flaky.
 *
 *   bedwait READER present|absent TIMEOUT_MS
 * Exit status: 0 reached, 1 timed out, 2 usage or PC/SC error.
 */
#include <PCSC/winscard.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

int
main(int argc, char **argv)
{
	SCARDCONTEXT ctx;
	SCARD_READERSTATE state;
	DWORD want;
	long deadline;
	LONG rv;

	if (argc != 4 || (strcmp(argv[2], "present") && strcmp(argv[2], "absent"))) {
		fprintf(stderr, "usage: bedwait READER present|absent TIMEOUT_MS\n");
		return 2;
	}
	want = strcmp(argv[2], "present") ? SCARD_STATE_EMPTY : SCARD_STATE_PRESENT;
	deadline = now_ms() + atol(argv[3]);

	/* pcscd may still be binding its socket: retry until the deadline. */
	while ((rv = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx)) != SCARD_S_SUCCESS) {
		struct timespec pause = { 0, 50 * 1000 * 1000 };

		if (now_ms() >= deadline) {
			fprintf(stderr, "bedwait: no PC/SC service: %s\n", pcsc_stringify_error(rv));
			return 1;
		}
		nanosleep(&pause, NULL);
	}
	memset(&state, 0, sizeof(state));
	state.szReader = argv[1];
	state.dwCurrentState = SCARD_STATE_UNAWARE;
	for (;;) {
		long left = deadline - now_ms();

		if (left <= 0)
			break;
		rv = SCardGetStatusChange(ctx, (DWORD)left, &state, 1);
		if (rv == SCARD_E_TIMEOUT)
			break;
		if (rv == SCARD_E_UNKNOWN_READER || rv == SCARD_E_NO_READERS_AVAILABLE) {
			/* The reader is not there yet: pcscd loads it at start. */
			struct timespec pause = { 0, 50 * 1000 * 1000 };

			nanosleep(&pause, NULL);
			state.dwCurrentState = SCARD_STATE_UNAWARE;
			continue;
		}
		if (rv != SCARD_S_SUCCESS) {
			fprintf(stderr, "bedwait: SCardGetStatusChange: %s\n", pcsc_stringify_error(rv));
			SCardReleaseContext(ctx);
			return 2;
		}
		if (state.dwEventState & want) {
			SCardReleaseContext(ctx);
			return 0;
		}
		state.dwCurrentState = state.dwEventState & ~SCARD_STATE_CHANGED;
	}
	fprintf(stderr, "bedwait: '%s' not %s in time\n", argv[1], argv[2]);
	SCardReleaseContext(ctx);
	return 1;
}
