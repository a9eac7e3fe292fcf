/*
 * step_client.c — a PC/SC client that runs a script of steps given on the
 * command line and prints one line per step: what it called and what it
 * got (return code, response bytes), never handle values, which differ
 * from run to run.  Fault tests run the same script with and without the
 * shim and compare the two outputs and exit codes.
 *
 *   step-client STEP...
 *     establish | release
 *     connect[:shared|exclusive|direct]   (reader: $BED_READER)
 *     reconnect | disconnect:leave|reset|unpower
 *     transmit:HEX                        one APDU
 *     loop:N:HEX                          N APDUs; prints "loop i=..." each 100
 *     begin | end:leave
 *     status
 *     wait:FILE                           until FILE exists (the test's cue),
 *                                         after writing our pid to FILE.ready
 *     sleep:MS
 * Exit status: 0 when every step returned SCARD_S_SUCCESS, 1 otherwise.
 */
#include "client_lines.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static SCARDCONTEXT ctx;
static SCARDHANDLE card;
static int failures;

static void
report(const char *step, LONG rv, const BYTE *resp, DWORD len)
{
	failures += client_line(step, rv, resp, len);
}

static LONG
transmit(const char *hex, BYTE *resp, DWORD *len)
{
	BYTE apdu[300];
	size_t n = client_parse_hex(hex, apdu, sizeof(apdu));

	*len = 258;
	return SCardTransmit(card, SCARD_PCI_T1, apdu, (DWORD)n, NULL, resp, len);
}

static void
pause_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static DWORD
disposition(const char *name)
{
	if (!strcmp(name, "reset"))
		return SCARD_RESET_CARD;
	if (!strcmp(name, "unpower"))
		return SCARD_UNPOWER_CARD;
	return SCARD_LEAVE_CARD;
}

int
main(int argc, char **argv)
{
	const char *reader = getenv("BED_READER");
	BYTE resp[258];
	DWORD len, protocol;

	if (!reader) {
		fprintf(stderr, "step-client: BED_READER is not set\n");
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		char *step = argv[i], *arg = strchr(step, ':');

		if (arg)
			arg++;
		if (!strcmp(step, "establish")) {
			report(step, SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx), NULL, 0);
		} else if (!strcmp(step, "release")) {
			report(step, SCardReleaseContext(ctx), NULL, 0);
		} else if (!strncmp(step, "connect", 7)) {
			DWORD share = SCARD_SHARE_SHARED;

			if (arg && !strcmp(arg, "exclusive"))
				share = SCARD_SHARE_EXCLUSIVE;
			else if (arg && !strcmp(arg, "direct"))
				share = SCARD_SHARE_DIRECT;
			report(step, SCardConnect(ctx, reader, share, SCARD_PROTOCOL_T1, &card, &protocol),
			       NULL, 0);
		} else if (!strcmp(step, "reconnect")) {
			report(step, SCardReconnect(card, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1,
						    SCARD_LEAVE_CARD, &protocol), NULL, 0);
		} else if (!strncmp(step, "disconnect", 10)) {
			report(step, SCardDisconnect(card, disposition(arg ? arg : "leave")), NULL, 0);
		} else if (!strncmp(step, "transmit:", 9)) {
			LONG rv = transmit(arg, resp, &len);

			report(step, rv, resp, len);
		} else if (!strncmp(step, "loop:", 5)) {
			long n = atol(arg);
			const char *hex = strchr(arg, ':');
			LONG rv = SCARD_S_SUCCESS;

			for (long k = 0; hex && k < n; k++) {
				rv = transmit(hex + 1, resp, &len);
				if (rv != SCARD_S_SUCCESS)
					break;
				if (k % 100 == 0) {
					printf("loop i=%ld\n", k);
					fflush(stdout);
				}
			}
			report("loop", rv, NULL, 0);
		} else if (!strcmp(step, "begin")) {
			report(step, SCardBeginTransaction(card), NULL, 0);
		} else if (!strncmp(step, "end", 3)) {
			report(step, SCardEndTransaction(card, disposition(arg ? arg : "leave")), NULL, 0);
		} else if (!strcmp(step, "status")) {
			char name[256];
			DWORD name_len = sizeof(name), state, atr_len = sizeof(resp);

			LONG rv = SCardStatus(card, name, &name_len, &state, &protocol, resp, &atr_len);

			/* The call first: atr_len is an output. */
			report(step, rv, resp, atr_len);
		} else if (!strncmp(step, "wait:", 5)) {
			char ready[512], tmp[520];
			FILE *f;

			snprintf(ready, sizeof(ready), "%s.ready", arg);
			snprintf(tmp, sizeof(tmp), "%s.tmp", ready);
			/*
			 * Our pid, so that a test can signal this very process;
			 * renamed into place, so that it is never seen half written.
			 */
			f = fopen(tmp, "w");
			if (f) {
				fprintf(f, "%ld\n", (long)getpid());
				if (fclose(f) == 0)
					rename(tmp, ready);
			}
			while (access(arg, F_OK) != 0)
				pause_ms(10);
			printf("%s\n", step);
			fflush(stdout);
		} else if (!strncmp(step, "sleep:", 6)) {
			pause_ms(atol(arg));
		} else {
			fprintf(stderr, "step-client: unknown step '%s'\n", step);
			return 2;
		}
	}
	return failures ? 1 : 0;
}
