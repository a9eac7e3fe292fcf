/*
 * contend.c — PC/SC clients that contend for one card, for the marker
 * contention tests and benchmark (tests/markers/).
 *
 *	contend holder READER ON_MS OFF_MS SECONDS [CUE CARD_LOG]
 *		loop: SCardBeginTransaction, one APDU, ON_MS pause,
 *		SCardEndTransaction(LEAVE), OFF_MS pause; prints "holding"
 *		once its first transaction is held, then "held B E" per
 *		transaction (CLOCK_MONOTONIC ns while it held the card).
 *		With CUE (a socket path) and CARD_LOG (the test card's log)
 *		it also holds the card on a guest's cue, see below.
 *	contend guest READER ID APDUS GAP_MS DISPOSITION [REPEAT]
 *		REPEAT times: connect shared T=1, APDUS APDUs 80 10 ID k 00
 *		GAP_MS apart, SCardDisconnect(DISPOSITION).  With
 *		CONTEND_CUE=CUE, each disconnect is cued (below).
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
 * Cues make contention certain rather than likely.  A cued guest, after
 * its last APDU, asks the holder at CUE to hold the card ("PID HANDLE")
 * and waits for "holding": the holder began a transaction (or answers
 * during the one it holds).  So the guest's disconnect marker, sent just
 * before its SCardDisconnect, meets the transaction.  The holder ends it
 * only once CARD_LOG shows that marker or the guest says its disconnect
 * returned ("returned"), and prints "cue PID HANDLE HOW" (HOW: marker or
 * returned; gone, no-log or lost when the cue failed).
 * A disconnect(RESET) waits for the transaction's end in pcscd, so there
 * only the card log ends it.
 *
 * Prints "pid N", then one line per call ("connect 0x00000000"), nothing
 * that depends on timing, so a traced run can be compared with an untraced one.  With
 * CONTEND_TIMES=FILE, the microseconds each connect and disconnect took
 * are appended there ("connect 123").  Exit 1 when a call failed.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
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
connect_card(SCARDCONTEXT ctx, const char *reader, SCARDHANDLE *card)
{
	DWORD active;
	double t0 = now_us();
	LONG rv = SCardConnect(ctx, reader, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, card, &active);

	report("connect", rv, t0);
	return rv;
}

static void
disconnect_card(SCARDHANDLE card, DWORD how)
{
	double t0 = now_us();

	report("disconnect", SCardDisconnect(card, how), t0);
}

/* A cue message: "PID HANDLE" (hex), "holding" or "returned". */
#define CUE_MAX 64
/* How long a holder serving a cue waits for its marker at most (s). */
#define CUE_GIVE_UP_S 60
/* How often a holder serving a cue reads the card log. */
#define CUE_POLL_MS 2

/* A guest's cue at the holder: its connection, pid and card handle. */
struct cue {
	int fd;			/* -1: none */
	unsigned long pid;
	unsigned handle;
};

static void
cue_fail(const char *what)
{
	fprintf(stderr, "contend: cue: %s: %s\n", what, strerror(errno));
	failed = 1;
}

/* A SOCK_SEQPACKET socket and the address of @p path; -1 (errno) on failure. */
static int
cue_socket(const char *path, struct sockaddr_un *addr)
{
	*addr = (struct sockaddr_un){ .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(addr->sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(addr->sun_path, path, strlen(path) + 1);
	return socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
}

/* The holder's end, mode 0600; a holder before it left its socket file behind. */
static int
cue_listen(const char *path)
{
	struct sockaddr_un addr;
	int fd = cue_socket(path, &addr), rc;
	mode_t old;

	if (fd < 0)
		return -1;
	(void)unlink(path);
	old = umask(077);
	rc = bind(fd, (struct sockaddr *)&addr, sizeof(addr));
	umask(old);
	if (rc < 0 || listen(fd, 8) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * A guest's cue: ask the holder at @p path to hold the card for the
 * disconnect of @p card, and wait until it does.
 * @retval the connection, to say "returned" on, or -1 (a message on
 * stderr; the contention is not certain then)
 */
static int
cue_hold(const char *path, SCARDHANDLE card)
{
	struct sockaddr_un addr;
	char msg[CUE_MAX];
	int fd = cue_socket(path, &addr);
	ssize_t n;

	if (fd < 0) {
		cue_fail(path);
		return -1;
	}
	n = snprintf(msg, sizeof(msg), "%ld %x", (long)getpid(), (unsigned)card);
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    send(fd, msg, (size_t)n, MSG_NOSIGNAL) != n) {
		cue_fail(path);
		close(fd);
		return -1;
	}
	n = recv(fd, msg, sizeof(msg) - 1, 0);
	if (n <= 0 || (msg[n] = '\0', strcmp(msg, "holding"))) {
		errno = n < 0 ? errno : EPROTO;
		cue_fail("no \"holding\" from the holder");
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * The holder's pause of @p ms, cut short by a guest's cue.
 * @retval the cue (fd -1: none came)
 */
static struct cue
wait_cue(int listen_fd, unsigned ms)
{
	struct pollfd pfd = { .fd = listen_fd, .events = POLLIN };
	struct cue cue = { .fd = -1 };
	char msg[CUE_MAX];
	ssize_t n;

	if (listen_fd < 0) {
		if (ms)
			pause_ms(ms);
		return cue;
	}
	if (poll(&pfd, 1, (int)ms) != 1 || (cue.fd = accept(listen_fd, NULL, NULL)) < 0)
		return cue;
	n = recv(cue.fd, msg, sizeof(msg) - 1, 0);
	if (n <= 0 || (msg[n] = '\0', sscanf(msg, "%lu %x", &cue.pid, &cue.handle) != 2)) {
		errno = n < 0 ? errno : EPROTO;
		cue_fail("a guest's request");
		close(cue.fd);
		cue.fd = -1;
	}
	return cue;
}

/* Is this card log line the guest's disconnect marker (@p want)? */
static int
is_marker(const char *line, const char *want)
{
	const char *text = strrchr(line, '\t');

	return strstr(line, "\tMARKER\t") && text && !strncmp(text + 1, want, strlen(want));
}

/*
 * With the card held: tell the guest of @p cue, then wait until the card
 * log (@p card_log) shows its disconnect marker or the guest says its
 * disconnect returned.  Only lines logged after the answer count: the
 * guest sends nothing before it.
 */
static void
serve_cue(struct cue *cue, const char *card_log)
{
	struct pollfd pfd = { .fd = cue->fd, .events = POLLIN };
	const struct timespec poll_ts = { .tv_nsec = CUE_POLL_MS * 1000000L };
	FILE *log = fopen(card_log, "re");
	const char *how = NULL;
	char want[CUE_MAX], msg[CUE_MAX], *line = NULL;
	size_t cap = 0;
	ssize_t n;
	long pos;

	snprintf(want, sizeof(want), "disconnect pid=%lu handle=0x%x ", cue->pid, cue->handle);
	if (!log || fseek(log, 0, SEEK_END) < 0 || (pos = ftell(log)) < 0) {
		cue_fail(card_log);
		how = "no-log";
	} else if (send(cue->fd, "holding", 7, MSG_NOSIGNAL) != 7) {
		cue_fail("answering a guest");
		how = "gone";
	}
	/* A marker lost on a disconnect(RESET) would leave both waiting: the
	 * guest in pcscd for this transaction, this for the marker.  Give up
	 * long after any delivery ("lost"), so the test fails instead of hanging. */
	for (double give_up = now_us() + CUE_GIVE_UP_S * 1e6; !how;) {
		if (now_us() > give_up) {
			how = "lost";
			break;
		}
		/* Complete lines only: the card may be writing the last one. */
		clearerr(log);
		if (fseek(log, pos, SEEK_SET) < 0)
			break;
		while (!how && (n = getline(&line, &cap, log)) > 0 && line[n - 1] == '\n') {
			pos += (long)n;
			if (is_marker(line, want))
				how = "marker";
		}
		if (!how && poll(&pfd, 1, 0) == 1) {
			n = recv(cue->fd, msg, sizeof(msg), MSG_DONTWAIT);
			how = n > 0 ? "returned" : "gone";
		}
		if (!how)
			nanosleep(&poll_ts, NULL);
	}
	free(line);
	if (log)
		fclose(log);
	close(cue->fd);
	cue->fd = -1;
	printf("cue %lu 0x%x %s\n", cue->pid, cue->handle, how ? how : "no-log");
	fflush(stdout);
}

static void
holder(SCARDCONTEXT ctx, const char *reader, unsigned on, unsigned off, unsigned seconds,
       const char *cue_path, const char *card_log)
{
	double end = now_us() + seconds * 1e6;
	struct cue cue = { .fd = -1 };
	int listen_fd = -1;
	SCARDHANDLE card;
	unsigned cycles = 0;
	DWORD active;

	/* No end: the test stops the holder (SIGTERM) when its guests are done. */

	/* Listening before "holding": a guest started after it finds the socket. */
	if (cue_path && (listen_fd = cue_listen(cue_path)) < 0) {
		cue_fail(cue_path);
		return;
	}
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
			/* ON ms; a cue meanwhile is served in this transaction. */
			if (cue.fd < 0)
				cue = wait_cue(listen_fd, on);
			if (cue.fd >= 0)
				serve_cue(&cue, card_log);
			/* Taken before the end: the card is surely still held. */
			printf("held %.0f %.0f\n", held * 1e3, now_us() * 1e3);
			fflush(stdout);
			(void)SCardEndTransaction(card, SCARD_LEAVE_CARD);
		} else if (cue.fd >= 0) {
			/* Not held: the cue waits for the next try, OFF ms on. */
			pause_ms(off);
		}
		/* OFF ms; a cue meanwhile begins the next transaction at once. */
		if (cue.fd < 0)
			cue = wait_cue(listen_fd, off);
	}
	SCardDisconnect(card, SCARD_LEAVE_CARD);
}

static void
guest(SCARDCONTEXT ctx, const char *reader, BYTE id, unsigned apdus, unsigned gap, DWORD how,
      unsigned repeat, const char *cue_path)
{
	SCARDHANDLE card;
	BYTE k = 0;

	while (repeat--) {
		int cue = -1;

		if (connect_card(ctx, reader, &card))
			continue;
		for (unsigned i = 0; i < apdus; i++) {
			if (i && gap)
				pause_ms(gap);
			report("transmit", apdu(card, 0x10, id, k++), 0);
		}
		/* Here the disconnect marker is next: the holder holds the card for it. */
		if (cue_path)
			cue = cue_hold(cue_path, card);
		disconnect_card(card, how);
		if (cue >= 0) {
			(void)send(cue, "returned", 8, MSG_NOSIGNAL);
			close(cue);
		}
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
				connected = connect_card(ctx, reader, &card) == SCARD_S_SUCCESS;
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
			disconnect_card(card, SCARD_LEAVE_CARD);
			connected = in_transaction = 0;
		}
	}
	if (connected) {
		if (in_transaction)
			report("end", SCardEndTransaction(card, SCARD_LEAVE_CARD), 0);
		disconnect_card(card, SCARD_LEAVE_CARD);
	}
}

int
main(int argc, char **argv)
{
	const char *path = getenv("CONTEND_TIMES"), *cue = getenv("CONTEND_CUE");
	SCARDCONTEXT ctx;

	if (argc < 3) {
		fprintf(stderr, "usage: contend holder|guest|random READER ...\n");
		return 2;
	}
	if (cue && !*cue)
		cue = NULL;
	if (path && !(times = fopen(path, "a")))
		return 2;
	printf("pid %ld\n", (long)getpid());
	fflush(stdout);
	if (SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx))
		return 1;
	if (!strcmp(argv[1], "holder") && (argc == 6 || argc == 8))
		holder(ctx, argv[2], (unsigned)atoi(argv[3]), (unsigned)atoi(argv[4]),
		       (unsigned)atoi(argv[5]), argc == 8 ? argv[6] : NULL,
		       argc == 8 ? argv[7] : NULL);
	else if (!strcmp(argv[1], "guest") && (argc == 7 || argc == 8))
		guest(ctx, argv[2], (BYTE)strtoul(argv[3], NULL, 16), (unsigned)atoi(argv[4]),
		      (unsigned)atoi(argv[5]), disposition(argv[6]),
		      argc == 8 ? (unsigned)atoi(argv[7]) : 1, cue);
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
