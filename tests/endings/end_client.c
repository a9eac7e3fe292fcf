/*
 * end_client.c — a PC/SC client that makes a known set of calls and then
 * ends in a chosen way: the application of the issue-10 acceptance tests
 * (tests/endings/endings.sh), which check that every call that returned
 * is in the trace however the process ends.
 *
 *   end-client HOW [DIR]
 *
 * The calls (reader: $BED_READER): SCardEstablishContext,
 * SCardListReaders, SCardConnect, then SCardTransmit of the five APDUs of
 * apdus[] — 8 calls, "the burst".  One line per call on stdout (what it
 * called and got, never handle values), flushed at once so that a process
 * that dies keeps its output.  Then HOW:
 *
 *   return      return 0 from main
 *   exit-thread exit(5) from a second thread while main waits in join
 *   _exit       _exit(3)
 *   abort       abort()
 *   segv        a store into a PROT_NONE page (a real fault)
 *   sigterm     raise(SIGTERM), default action
 *   sigbus      a load from a mapping past the end of its empty file
 *   sigkill     kill(getpid(), SIGKILL)
 *   exec-true   execl("/bin/true")
 *   exec-self   exec this program again with HOW "return" (a traced
 *               PC/SC program replaces a traced one: two bursts, one pid)
 *   fork        fork; the child makes a burst of its own (its own
 *               context) and _exit(0)s; the parent waits, then returns 0
 *   daemon      daemon(); the daemon writes its pid to DIR/daemon.pid,
 *               makes the burst, writes DIR/daemon.done, aborts.  The
 *               first process makes no PC/SC call.
 *   closeall    close_range(3, ~0U) after the burst (as daemons do), then
 *               opens DIR/file0..3, writes known bytes to each, makes a
 *               second burst, closes the files, returns 0
 *
 * Exit status: the ending's; 1 when a call failed (the line says which).
 */
#include "client_lines.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

/* The APDUs of a burst: the card logs each, the test counts them. */
static const char *const apdus[] = {
	"00A4040000", "00CA000001", "00CA000002", "00CA000003", "00CA000004",
};

#define N_FILES 4


static int failures;

static void
report(const char *step, LONG rv, const BYTE *resp, DWORD len)
{
	failures += client_line(step, rv, resp, len);
}

/* The 8 calls; the context and card stay open, as a dying process leaves them. */
static void
burst(const char *reader)
{
	SCARDCONTEXT ctx;
	SCARDHANDLE card;
	char readers[1024];
	DWORD len = sizeof(readers), protocol;
	LONG rv;

	report("establish", SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx), NULL, 0);
	rv = SCardListReaders(ctx, NULL, readers, &len);
	report("list", rv, NULL, 0);
	report("connect", SCardConnect(ctx, reader, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1,
				       &card, &protocol), NULL, 0);
	for (size_t i = 0; i < sizeof(apdus) / sizeof(apdus[0]); i++) {
		BYTE apdu[16], resp[258];
		size_t n = client_parse_hex(apdus[i], apdu, sizeof(apdu));
		char step[32];

		len = sizeof(resp);
		rv = SCardTransmit(card, SCARD_PCI_T1, apdu, (DWORD)n, NULL, resp, &len);
		snprintf(step, sizeof(step), "transmit:%s", apdus[i]);
		report(step, rv, resp, len);
	}
}

static void *
exit_from_thread(void *arg)
{
	exit(5);
}

/*
 * A store into a page without access: a real SIGSEGV (a store through
 * NULL would be undefined behaviour, which UBSan stops before it faults).
 */
static void
sigsegv_now(void)
{
	volatile int *p = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p != MAP_FAILED)
		*p = 1;
}

static void
sigbus_now(void)
{
	FILE *f = tmpfile();
	volatile char *p;

	if (!f)
		return;
	/* One page of a file of 0 bytes: touching it is a bus error. */
	p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fileno(f), 0);
	if (p != MAP_FAILED)
		(void)p[0];
}

/* The known bytes of DIR/fileI. */
static int
write_files(const char *dir, int fds[N_FILES])
{
	for (int i = 0; i < N_FILES; i++) {
		char path[4096], line[64];
		int n;

		snprintf(path, sizeof(path), "%s/file%d", dir, i);
		fds[i] = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fds[i] < 0) {
			printf("open %s: %s\n", path, strerror(errno));
			return -1;
		}
		printf("file%d fd=%d\n", i, fds[i]);
		n = snprintf(line, sizeof(line), "file %d of end-client, line 1\n", i);
		if (write(fds[i], line, (size_t)n) != n)
			return -1;
	}
	fflush(stdout);
	return 0;
}

/* A second line into each file after more PC/SC calls, then close. */
static int
finish_files(int fds[N_FILES])
{
	for (int i = 0; i < N_FILES; i++) {
		char line[64];
		int n = snprintf(line, sizeof(line), "file %d of end-client, line 2\n", i);

		if (write(fds[i], line, (size_t)n) != n || close(fds[i]) != 0)
			return -1;
	}
	return 0;
}

static int
write_file(const char *dir, const char *name, const char *text)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

int
main(int argc, char **argv)
{
	const char *reader = getenv("BED_READER");
	const char *how = argc > 1 ? argv[1] : "";
	const char *dir = argc > 2 ? argv[2] : NULL;
	pthread_t t;
	pid_t child;
	int status, fds[N_FILES];

	if (!reader) {
		fprintf(stderr, "end-client: BED_READER is not set\n");
		return 2;
	}
	if ((!strcmp(how, "daemon") || !strcmp(how, "closeall")) && !dir) {
		fprintf(stderr, "end-client: %s needs a directory\n", how);
		return 2;
	}
	if (!strcmp(how, "daemon")) {
		char pid[32];

		if (daemon(1, 0) != 0)
			return 2;
		snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
		if (write_file(dir, "daemon.pid", pid) != 0)
			return 2;
		burst(reader);
		write_file(dir, "daemon.done", failures ? "failed\n" : "ok\n");
		abort();
	}

	burst(reader);

	if (!strcmp(how, "return")) {
		return failures ? 1 : 0;
	} else if (!strcmp(how, "exit-thread")) {
		if (pthread_create(&t, NULL, exit_from_thread, NULL) == 0)
			pthread_join(t, NULL);
	} else if (!strcmp(how, "_exit")) {
		_exit(3);
	} else if (!strcmp(how, "abort")) {
		abort();
	} else if (!strcmp(how, "segv")) {
		sigsegv_now();
	} else if (!strcmp(how, "sigterm")) {
		raise(SIGTERM);
	} else if (!strcmp(how, "sigbus")) {
		sigbus_now();
	} else if (!strcmp(how, "sigkill")) {
		kill(getpid(), SIGKILL);
	} else if (!strcmp(how, "exec-true")) {
		execl("/bin/true", "true", (char *)NULL);
	} else if (!strcmp(how, "exec-self")) {
		execl("/proc/self/exe", argv[0], "return", (char *)NULL);
	} else if (!strcmp(how, "fork")) {
		child = fork();
		if (child == 0) {
			burst(reader);
			_exit(failures ? 1 : 0);
		}
		if (child < 0 || waitpid(child, &status, 0) != child)
			return 2;
		printf("child exit=%d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
		return failures ? 1 : 0;
	} else if (!strcmp(how, "closeall")) {
		close_range(3, ~0U, 0);
		if (write_files(dir, fds) != 0)
			return 2;
		burst(reader);
		if (finish_files(fds) != 0)
			return 2;
		return failures ? 1 : 0;
	}
	fprintf(stderr, "end-client: '%s' did not end the process\n", how);
	return 2;
}
