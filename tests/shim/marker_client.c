/*
 * marker_client.c — drive a scripted PC/SC session for the marker tests.
 *
 *	marker_client READER STEP...
 *
 * STEP: connect:{shared|exclusive}:{t0|t1|raw|t01}, transmit, begin, end:D,
 * reconnect:{shared|exclusive}:{t0|t1|t01}:D, disconnect:D, wait (read a
 * line from stdin), pause (sleep forever, for SIGKILL), where D is leave,
 * reset, unpower or eject.  Prints "STEP rv" per step; exit 1 on a failure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <winscard.h>

static DWORD
word(const char *s, const char *const *names, const DWORD *values, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strncmp(s, names[i], strlen(names[i])))
			return values[i];
	fprintf(stderr, "unknown word %s\n", s);
	exit(2);
}

static DWORD
share(const char *s)
{
	static const char *const n[] = { "shared", "exclusive" };
	static const DWORD v[] = { SCARD_SHARE_SHARED, SCARD_SHARE_EXCLUSIVE };

	return word(s, n, v, 2);
}

static DWORD
proto(const char *s)
{
	static const char *const n[] = { "t01", "t0", "t1", "raw" };
	static const DWORD v[] = { SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1, SCARD_PROTOCOL_T0,
				   SCARD_PROTOCOL_T1, SCARD_PROTOCOL_RAW };

	return word(s, n, v, 4);
}

static DWORD
disposition(const char *s)
{
	static const char *const n[] = { "leave", "reset", "unpower", "eject" };
	static const DWORD v[] = { SCARD_LEAVE_CARD, SCARD_RESET_CARD, SCARD_UNPOWER_CARD, SCARD_EJECT_CARD };

	return word(s, n, v, 4);
}

int
main(int argc, char **argv)
{
	SCARDCONTEXT ctx;
	SCARDHANDLE card = 0;
	DWORD active = 0, len;
	BYTE resp[258];
	char line[16];
	LONG rv;
	int failed = 0;

	if (SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx))
		return 1;
	for (int i = 2; i < argc; i++) {
		char *s = argv[i], *a = strchr(s, ':'), *b = a ? strchr(a + 1, ':') : NULL, *c = b ? strchr(b + 1, ':') : NULL;

		if (!strncmp(s, "connect", 7)) {
			rv = SCardConnect(ctx, argv[1], share(a + 1), proto(b + 1), &card, &active);
		} else if (!strcmp(s, "transmit")) {
			len = sizeof(resp);
			rv = SCardTransmit(card, active == SCARD_PROTOCOL_T0 ? SCARD_PCI_T0 :
					   active == SCARD_PROTOCOL_RAW ? SCARD_PCI_RAW : SCARD_PCI_T1,
					   (const BYTE *)"\x00\xA4\x04\x00\x00", 5, NULL, resp, &len);
		} else if (!strcmp(s, "begin")) {
			rv = SCardBeginTransaction(card);
		} else if (!strncmp(s, "end:", 4)) {
			rv = SCardEndTransaction(card, disposition(a + 1));
		} else if (!strncmp(s, "reconnect", 9)) {
			rv = SCardReconnect(card, share(a + 1), proto(b + 1), disposition(c + 1), &active);
		} else if (!strncmp(s, "disconnect", 10)) {
			rv = SCardDisconnect(card, disposition(a + 1));
		} else if (!strcmp(s, "wait")) {
			rv = fgets(line, sizeof(line), stdin) ? 0 : 1;
		} else if (!strcmp(s, "pause")) {
			printf("paused\n");
			fflush(stdout);
			for (;;)
				pause();
		} else {
			fprintf(stderr, "unknown step %s\n", s);
			return 2;
		}
		printf("%s 0x%08lX\n", s, (unsigned long)rv);
		fflush(stdout);
		failed |= rv != SCARD_S_SUCCESS;
	}
	SCardReleaseContext(ctx);
	return failed;
}
