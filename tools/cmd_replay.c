/*
 * cmd_replay.c — `pcsctap replay`: a recorded trace becomes a virtual card.
 *
 * It connects to a vpcd-compatible reader (the pcsctap driver or stock
 * vpcd) as a card, answers with the recorded ATR and, for each command,
 * the recorded response (replay_index.h has the matching rule), reports
 * the commands never recorded and prints a summary at exit.  With --check
 * it runs a command under `pcsctap run` against itself and compares the
 * new trace's APDUs with the recorded ones.
 */
#include "commands.h"
#include "apdu.h"
#include "hexutil.h"
#include "replay_card.h"
#include "replay_index.h"
#include "inputs.h"
#include "textout.h"
#include "util.h"
#include "wire.h"

#include <PCSC/winscard.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CMD "replay"
#define DEFAULT_READER "127.0.0.1:35963"
/*
 * Without a recorded ATR, one that offers the protocols the recorded
 * sessions used, so that clients negotiate the same one.
 */
static const struct {
	uint32_t protocols;	/* SCARD_PROTOCOL_T0 1, T1 2 */
	const char *atr;
} default_atrs[] = {
	{ 1, "3B00" },		/* T=0 only (no interface bytes) */
	{ 2, "3B800181" },	/* T=1 only */
	{ 0, "3B80800101" },	/* T=0 and T=1 (as pcsctap card) */
};
#define DEFAULT_WAIT_S 10
/* Unmatched commands, or (--check) APDUs that differ from the recording. */
#define REPLAY_EXIT_DIFFERS 8

struct replay_options {
	struct replay_select sel;
	const char *reader_spec;
	const char *atr;
	int64_t wait_ns;
	bool strict;
	bool once;
	bool check;
	bool quiet;
	const char *output;	/* --check: keep the new trace here */
	char **command;		/* --check: after "--" */
};

static volatile sig_atomic_t stopping;
static volatile sig_atomic_t serving_fd = -1;

static void
on_signal(int sig)
{
	(void)sig;
	stopping = 1;
	/* Ends the blocking read of the connection (async-signal-safe). */
	if (serving_fd >= 0)
		shutdown(serving_fd, SHUT_RDWR);
}

static void
usage(FILE *out)
{
	fprintf(out,
		"usage: pcsctap replay [OPTIONS] TRACE\n"
		"       pcsctap replay --check [OPTIONS] TRACE -- COMMAND [ARG...]\n"
		"\n"
		"Connect to a vpcd-compatible reader as the card recorded in TRACE: its ATR,\n"
		"and for each command APDU the response recorded for it (in context: the\n"
		"commands since the last SELECT or power-up; else the same command anywhere;\n"
		"repeated commands in recorded order).  A summary at exit.\n"
		"\n"
		"  -c, --connect HOST:PORT  the reader (default %s)\n"
		"      --pid PID            only the APDUs of this process\n"
		"      --session ID         only this session (pcsctap sessions)\n"
		"      --reader NAME        only the APDUs sent to this reader\n"
		"      --view VIEW          client (the shim's calls), card (the driver's wire\n"
		"                           trace) or auto (default: client, else card)\n"
		"      --strict             answer only the next recorded exchange, in order\n"
		"      --sw HEX             answer to a command never recorded (default 6D00)\n"
		"      --atr HEX            the ATR (default: the recorded one)\n"
		"      --wait SECONDS       how long to try to reach the reader (default %d)\n"
		"      --once               exit when the reader connection ends\n"
		"      --check              run COMMAND under pcsctap run against the replayed\n"
		"                           card; fail when its APDUs differ from the recording\n"
		"  -o, --output FILE        with --check: keep the new trace in FILE\n"
		"  -q, --quiet              print nothing on stdout\n"
		"\n"
		"Exit status: 0, 8 when a command was not in the recording (or, with --check,\n"
		"the APDUs differ), 1-7 as the other commands (see pcsctap(1)).\n",
		DEFAULT_READER, DEFAULT_WAIT_S);
}

/* ---------------------------------------------------------------------- */
/* Reaching the reader                                                    */

static int
connect_once(const char *spec)
{
	const char *colon = strrchr(spec, ':');
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res = NULL;
	char host[256];
	int fd = -EINVAL, rc;

	if (!colon || colon == spec || !colon[1] || (size_t)(colon - spec) >= sizeof(host))
		return -EINVAL;
	memcpy(host, spec, (size_t)(colon - spec));
	host[colon - spec] = '\0';
	rc = getaddrinfo(host, colon + 1, &hints, &res);
	if (rc != 0)
		return -EHOSTUNREACH;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			fd = -errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		rc = -errno;
		close(fd);
		fd = rc;
	}
	freeaddrinfo(res);
	if (fd >= 0)
		vpcd_socket_tune(fd);
	return fd;
}

/* Try for @p wait_ns (the reader may still be starting). */
static int
connect_reader(const char *spec, int64_t wait_ns)
{
	struct timespec pause = { 0, 100 * 1000 * 1000 };
	int64_t deadline = trace_mono_ns() + wait_ns;
	int fd;

	for (;;) {
		fd = connect_once(spec);
		if (fd >= 0 || fd == -EINVAL || stopping || trace_mono_ns() >= deadline)
			return fd;
		nanosleep(&pause, NULL);
	}
}

static int
reader_error(const char *spec, int rc)
{
	if (rc == -EINVAL) {
		fprintf(stderr, "pcsctap %s: '%s' is not HOST:PORT\n", CMD, spec);
		return PCSCTAP_EXIT_USAGE;
	}
	fprintf(stderr, "pcsctap %s: cannot reach the reader at %s: %s\n", CMD, spec,
		rc == -EHOSTUNREACH ? "unknown host" : strerror(-rc));
	return PCSCTAP_EXIT_RUNTIME;
}

/* ---------------------------------------------------------------------- */
/* Summary                                                                */

static int
summary(struct replay_index *idx)
{
	struct replay_counts c;

	replay_index_counts(idx, &c);
	fprintf(stderr,
		"pcsctap %s: %llu matched (%llu in context, %llu out of context, %llu in order), "
		"%llu unmatched, %llu unused of %llu recorded\n", CMD,
		(unsigned long long)(c.in_context + c.out_of_context + c.in_order),
		(unsigned long long)c.in_context, (unsigned long long)c.out_of_context,
		(unsigned long long)c.in_order, (unsigned long long)c.unmatched,
		(unsigned long long)c.unused, (unsigned long long)c.recorded);
	return c.unmatched ? REPLAY_EXIT_DIFFERS : PCSCTAP_EXIT_OK;
}

static int
serve_reader(struct replay_card *card, const struct replay_options *o)
{
	bool first = true;
	int status = PCSCTAP_EXIT_OK;

	while (!stopping) {
		int fd = connect_reader(o->reader_spec, o->wait_ns);
		int rc;

		if (fd < 0) {
			/* Once served, a reader that went away ends the replay. */
			if (first && !stopping)
				status = reader_error(o->reader_spec, fd);
			break;
		}
		first = false;
		serving_fd = fd;
		if (stopping)
			shutdown(fd, SHUT_RDWR);
		rc = replay_card_serve(card, fd);
		serving_fd = -1;
		close(fd);
		if (rc < 0) {
			fprintf(stderr, "pcsctap %s: the index failed: %s\n", CMD, strerror(-rc));
			return PCSCTAP_EXIT_RUNTIME;
		}
		if (o->once)
			break;
	}
	if (status != PCSCTAP_EXIT_OK)
		return status;
	return summary(card->idx);
}

/* ---------------------------------------------------------------------- */
/* --check                                                                */

struct check_server {
	struct replay_card *card;
	const struct replay_options *o;
	pthread_t thread;
	int fd;			/* the connection being served, -1: none */
	int stop;		/* set by the main thread */
	int connect_rc;		/* <0: the reader could not be reached (errno) */
	int rc;			/* <0: the index failed (errno) */
};

static void *
check_serve(void *arg)
{
	struct check_server *s = arg;

	/*
	 * A reader may close a new connection at once, or (the card before
	 * ours left and we came between two of its polls) pcscd may take us
	 * for that card, powered already, and never power us: then stay
	 * away for more than a poll (0.4 s), so that pcscd sees the reader
	 * empty, and connect again, until the card is powered.
	 */
	struct timespec away = { 1, 0 };
	bool first = true;

	s->card->unpowered_polls_max = 5;
	while (!__atomic_load_n(&s->stop, __ATOMIC_SEQ_CST)) {
		int fd;

		if (!first)
			nanosleep(&away, NULL);
		first = false;
		fd = connect_reader(s->o->reader_spec, s->o->wait_ns);

		if (fd < 0) {
			s->connect_rc = fd;
			break;
		}
		__atomic_store_n(&s->fd, fd, __ATOMIC_SEQ_CST);
		if (!__atomic_load_n(&s->stop, __ATOMIC_SEQ_CST))
			s->rc = replay_card_serve(s->card, fd);
		__atomic_store_n(&s->fd, -1, __ATOMIC_SEQ_CST);
		close(fd);
		if (s->rc < 0 || s->card->ready)
			break;
	}
	/* A closed pipe tells the waiting main thread that we are done. */
	close(s->card->ready_fd);
	s->card->ready_fd = -1;
	return NULL;
}

/*
 * Whether pcscd shows a reader with our card: what the command will look
 * for.  What the card saw (powered, its ATR read) says that pcscd is on its
 * way; only pcscd can say that its clients see the card, whichever way the
 * reader reports presence (polls, or events).
 * @retval 0 seen, -ETIMEDOUT not within @p timeout_ms, <0 a PC/SC error
 */
static int
wait_pcscd_sees(const uint8_t *atr, size_t atr_len, int timeout_ms)
{
	int64_t deadline = trace_mono_ns() + (int64_t)timeout_ms * 1000000;
	SCARDCONTEXT ctx;
	char *names = NULL;
	int ret = -ETIMEDOUT;

	if (SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx) != SCARD_S_SUCCESS)
		return -ECONNREFUSED;
	while (trace_mono_ns() < deadline) {
		SCARD_READERSTATE st[16];
		DWORD len = SCARD_AUTOALLOCATE, n = 0;
		struct timespec pause = { 0, 20 * 1000000 };

		if (SCardListReaders(ctx, NULL, (LPSTR)&names, &len) == SCARD_S_SUCCESS) {
			for (const char *r = names; *r && n < 16; r += strlen(r) + 1)
				st[n++] = (SCARD_READERSTATE){ .szReader = r,
							       .dwCurrentState = SCARD_STATE_UNAWARE };
			if (n && SCardGetStatusChange(ctx, 0, st, n) == SCARD_S_SUCCESS) {
				for (DWORD i = 0; i < n; i++) {
					if ((st[i].dwEventState & SCARD_STATE_PRESENT) &&
					    st[i].cbAtr == atr_len && !memcmp(st[i].rgbAtr, atr, atr_len))
						ret = 0;
				}
			}
			SCardFreeMemory(ctx, names);
			names = NULL;
		}
		if (ret == 0)
			break;
		nanosleep(&pause, NULL);
	}
	SCardReleaseContext(ctx);
	return ret;
}

/* End the server thread (bounded: its connection is shut down). */
static void
check_stop(struct check_server *s)
{
	int fd;

	__atomic_store_n(&s->stop, 1, __ATOMIC_SEQ_CST);
	fd = __atomic_load_n(&s->fd, __ATOMIC_SEQ_CST);
	if (fd >= 0)
		shutdown(fd, SHUT_RDWR);
	pthread_join(s->thread, NULL);
}

static int
run_command(const struct replay_options *o, const char *trace)
{
	size_t n = 0;
	char **argv;
	pid_t pid;
	int status;

	while (o->command[n])
		n++;
	argv = calloc(n + 6, sizeof(*argv));
	if (!argv)
		return -ENOMEM;
	argv[0] = (char *)"pcsctap";
	argv[1] = (char *)"run";
	argv[2] = (char *)"-o";
	argv[3] = (char *)trace;
	argv[4] = (char *)"--";
	memcpy(argv + 5, o->command, n * sizeof(*argv));
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		free(argv);
		return -errno;
	}
	if (pid == 0) {
		execv("/proc/self/exe", argv);
		fprintf(stderr, "pcsctap %s: cannot run pcsctap run: %s\n", CMD, strerror(errno));
		_exit(126);
	}
	free(argv);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

static void
print_exchange(const char *who, const uint8_t *cmd, size_t cmd_len,
	       const uint8_t *resp, size_t resp_len)
{
	char c[256], r[256];

	if (!cmd) {
		fprintf(stderr, "  %-9s (none)\n", who);
		return;
	}
	apdu_format_command(cmd, cmd_len, 24, c, sizeof(c));
	apdu_format_response(resp, resp_len, 24, r, sizeof(r));
	fprintf(stderr, "  %-9s > %s\n  %-9s < %s\n", who, c, "", r);
}

/*
 * Compare the new trace's successful SCardTransmit calls with the
 * recorded exchanges, in order (a command that made no PC/SC call left
 * no trace: no APDUs).  @retval 0 same, 1 different, or an exit status
 * from reading the new trace (as a negative number)
 */
static int
compare_apdus(struct replay_index *idx, const char *path)
{
	struct trace_filter f = { .fn = TRACE_FN_SCardTransmit };
	struct tap_input *in = NULL;
	struct trace_iter *it = NULL;
	struct trace_call_row row;
	struct replay_exchange ex;
	uint64_t cursor = 0, n = 0;
	char *paths[1] = { (char *)path };
	uint8_t *now = NULL;
	int rc, have_old, have_new = 0, result = 0;
	struct stat st;

	if (lstat(path, &st) < 0 && errno == ENOENT)
		goto compare;
	rc = tap_input_open(&in, CMD, paths, 1);
	if (rc != PCSCTAP_EXIT_OK)
		return -rc;
	rc = trace_iter_calls(tap_input_reader(in, 0), &f, &it);
	if (rc < 0) {
		result = -tap_input_fail(in, CMD, 0, rc);
		goto out;
	}
compare:
	for (;;) {
		while (it && (have_new = trace_iter_call_next(it, &row)) > 0 && row.call.rv != 0)
			;
		have_old = replay_index_next(idx, &cursor, &ex);
		if (have_new < 0 || have_old < 0) {
			result = have_new < 0 ? -tap_input_fail(in, CMD, 0, have_new) : -PCSCTAP_EXIT_RUNTIME;
			goto out;
		}
		if (!have_new && !have_old)
			break;
		n++;
		free(now);
		now = NULL;
		if (have_new && replay_normalize(row.call.in.data, row.call.in.len, &now) < 0) {
			result = -PCSCTAP_EXIT_RUNTIME;
			goto out;
		}
		if (have_new && have_old && ex.cmd_len == row.call.in.len &&
		    !memcmp(ex.cmd, now, ex.cmd_len) && ex.resp_len == row.call.out.len &&
		    !memcmp(ex.resp, row.call.out.data, ex.resp_len))
			continue;
		fprintf(stderr, "pcsctap %s: the APDUs differ from the recording at APDU %llu:\n",
			CMD, (unsigned long long)n);
		print_exchange("recorded", have_old ? ex.cmd : NULL, ex.cmd_len, ex.resp, ex.resp_len);
		print_exchange("now", have_new ? now : NULL, have_new ? row.call.in.len : 0,
			       have_new ? row.call.out.data : NULL, have_new ? row.call.out.len : 0);
		result = 1;
		break;
	}
out:
	free(now);
	if (it)
		trace_iter_end(it);
	tap_input_close(in);
	return result;
}

static int
check(struct replay_card *card, const struct replay_options *o)
{
	struct check_server s = { .card = card, .o = o, .fd = -1 };
	char dir[4096] = "", trace[4200];
	const char *tmp = o->sel.tmpdir;
	struct pollfd pfd;
	int pipefd[2], status = PCSCTAP_EXIT_RUNTIME, cmp;
	struct stat st;
	bool ready;
	uint8_t byte;

	if (o->output) {
		if (lstat(o->output, &st) == 0) {
			fprintf(stderr, "pcsctap %s: %s exists; --output names a new trace\n", CMD, o->output);
			return PCSCTAP_EXIT_OUTPUT;
		}
		snprintf(trace, sizeof(trace), "%s", o->output);
	} else {
		snprintf(dir, sizeof(dir), "%s/pcsctap-check.XXXXXX", tmp);
		if (!mkdtemp(dir)) {
			fprintf(stderr, "pcsctap %s: cannot create %s: %s\n", CMD, dir, strerror(errno));
			return PCSCTAP_EXIT_OUTPUT;
		}
		snprintf(trace, sizeof(trace), "%s/check.trace", dir);
	}
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		status = PCSCTAP_EXIT_RUNTIME;
		goto out;
	}
	card->ready_fd = pipefd[1];
	if (pthread_create(&s.thread, NULL, check_serve, &s) != 0) {
		close(pipefd[0]);
		close(pipefd[1]);
		status = PCSCTAP_EXIT_RUNTIME;
		goto out;
	}
	/* Bounded: the reader's pcscd must power the card and poll it again. */
	pfd = (struct pollfd){ .fd = pipefd[0], .events = POLLIN };
	while (poll(&pfd, 1, (int)(o->wait_ns / 1000000) + 15000) < 0 && errno == EINTR)
		;
	ready = (pfd.revents & POLLIN) && read(pipefd[0], &byte, 1) == 1 &&
		wait_pcscd_sees(card->atr, card->atr_len, 10000) == 0;
	if (ready) {
		status = run_command(o, trace);
		if (status < 0) {
			fprintf(stderr, "pcsctap %s: cannot run the command: %s\n", CMD, strerror(-status));
			status = PCSCTAP_EXIT_RUNTIME;
		}
	}
	check_stop(&s);
	close(pipefd[0]);
	if (s.connect_rc < 0) {
		status = reader_error(o->reader_spec, s.connect_rc);
		goto out;
	}
	if (!ready && s.rc == 0) {
		fprintf(stderr, "pcsctap %s: the card at %s never became present to pcscd's clients "
			"(%u connections, %lu messages, %s)\n", CMD, o->reader_spec,
			card->connections, card->messages, card->powered ? "powered" : "never powered");
		status = PCSCTAP_EXIT_RUNTIME;
		goto out;
	}
	if (s.rc < 0) {
		fprintf(stderr, "pcsctap %s: the index failed: %s\n", CMD, strerror(-s.rc));
		status = PCSCTAP_EXIT_RUNTIME;
		goto out;
	}
	summary(card->idx);
	cmp = compare_apdus(card->idx, trace);
	if (cmp < 0)
		status = -cmp;
	else if (cmp > 0)
		status = REPLAY_EXIT_DIFFERS;
	else if (status == PCSCTAP_EXIT_OK)
		fprintf(stderr, "pcsctap %s: the APDUs are those of the recording\n", CMD);
out:
	if (dir[0]) {
		static const char *const suffixes[] = { "", "-wal", "-shm" };

		for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
			char p[4300];

			snprintf(p, sizeof(p), "%s%s", trace, suffixes[i]);
			unlink(p);
		}
		rmdir(dir);
	}
	return status;
}

/* ---------------------------------------------------------------------- */

static int
build_error(struct tap_input *in, int rc, const char *err)
{
	switch (rc) {
	case REPLAY_E_READERS:
		fprintf(stderr, "pcsctap %s: %s\n", CMD, err);
		return PCSCTAP_EXIT_USAGE;
	case REPLAY_E_NO_SESSION:
		fprintf(stderr, "pcsctap %s: %s: %s\n", CMD, tap_input_path(in, 0), err);
		return PCSCTAP_EXIT_INPUT;
	case REPLAY_E_NO_APDUS:
		fprintf(stderr, "pcsctap %s: %s: no APDUs to replay%s\n", CMD, tap_input_path(in, 0),
			" (no successful SCardTransmit or wire APDU in the selection)");
		return PCSCTAP_EXIT_EMPTY;
	case -ENOMEM:
	case -EIO:
	case -ENOSPC:
	case -EACCES:
	case -ENOENT:
	case -EROFS:
	case -ENAMETOOLONG:
		fprintf(stderr, "pcsctap %s: cannot write the index: %s\n", CMD, strerror(-rc));
		return PCSCTAP_EXIT_RUNTIME;
	default:
		return tap_input_fail(in, CMD, 0, rc);
	}
}

static int
parse_options(int argc, char **argv, struct replay_options *o, struct replay_card *card)
{
	enum { O_PID = 256, O_SESSION, O_READER, O_VIEW, O_STRICT, O_SW, O_ATR, O_WAIT,
	       O_ONCE, O_CHECK };
	static const struct option longopts[] = {
		{ "connect", required_argument, NULL, 'c' },
		{ "pid", required_argument, NULL, O_PID },
		{ "session", required_argument, NULL, O_SESSION },
		{ "reader", required_argument, NULL, O_READER },
		{ "view", required_argument, NULL, O_VIEW },
		{ "strict", no_argument, NULL, O_STRICT },
		{ "sw", required_argument, NULL, O_SW },
		{ "atr", required_argument, NULL, O_ATR },
		{ "wait", required_argument, NULL, O_WAIT },
		{ "once", no_argument, NULL, O_ONCE },
		{ "check", no_argument, NULL, O_CHECK },
		{ "output", required_argument, NULL, 'o' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, end = argc;

	/* COMMAND follows "--" (options may come before or after TRACE). */
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--")) {
			end = i;
			o->command = argv + i + 1;
			break;
		}
	}
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(end, argv, "c:o:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': o->reader_spec = optarg; break;
		case O_PID:
			if (parse_pid(CMD, optarg, &o->sel.pid) < 0)
				return PCSCTAP_EXIT_USAGE;
			break;
		case O_SESSION:
			if (parse_int64(optarg, &o->sel.session) < 0 || o->sel.session <= 0) {
				fprintf(stderr, "pcsctap %s: invalid session id '%s'\n", CMD, optarg);
				return PCSCTAP_EXIT_USAGE;
			}
			break;
		case O_READER: o->sel.reader = optarg; break;
		case O_VIEW:
			if (!strcmp(optarg, "client"))
				o->sel.view = REPLAY_VIEW_CLIENT;
			else if (!strcmp(optarg, "card"))
				o->sel.view = REPLAY_VIEW_CARD;
			else if (!strcmp(optarg, "auto"))
				o->sel.view = REPLAY_VIEW_AUTO;
			else {
				fprintf(stderr, "pcsctap %s: --view is client, card or auto, not '%s'\n", CMD, optarg);
				return PCSCTAP_EXIT_USAGE;
			}
			break;
		case O_STRICT: o->strict = true; break;
		case O_SW:
			if (hex_decode(optarg, card->unmatched_sw, sizeof(card->unmatched_sw)) != 2) {
				fprintf(stderr, "pcsctap %s: --sw takes a status word (4 hex digits), not '%s'\n",
					CMD, optarg);
				return PCSCTAP_EXIT_USAGE;
			}
			break;
		case O_ATR: o->atr = optarg; break;
		case O_WAIT:
			if (parse_seconds(optarg, &o->wait_ns) < 0) {
				fprintf(stderr, "pcsctap %s: invalid --wait '%s'\n", CMD, optarg);
				return PCSCTAP_EXIT_USAGE;
			}
			break;
		case O_ONCE: o->once = true; break;
		case O_CHECK: o->check = true; break;
		case 'o': o->output = optarg; break;
		case 'q': o->quiet = true; break;
		case 'h': usage(stdout); return -1;
		default: return bad_option(CMD, argv);
		}
	}
	if (optind + 1 != end) {
		fprintf(stderr, "pcsctap %s: name one trace (see pcsctap %s --help)\n", CMD, CMD);
		return PCSCTAP_EXIT_USAGE;
	}
	if (o->check != (o->command && o->command[0])) {
		fprintf(stderr, "pcsctap %s: --check and '-- COMMAND' go together\n", CMD);
		return PCSCTAP_EXIT_USAGE;
	}
	if (o->output && !o->check) {
		fprintf(stderr, "pcsctap %s: --output is for --check\n", CMD);
		return PCSCTAP_EXIT_USAGE;
	}
	return PCSCTAP_EXIT_OK;
}

int
cmd_replay(int argc, char **argv)
{
	struct replay_options o = {
		.reader_spec = DEFAULT_READER,
		.wait_ns = (int64_t)DEFAULT_WAIT_S * 1000000000,
	};
	struct replay_card card = { .unmatched_sw = { 0x6D, 0x00 }, .ready_fd = -1 };
	struct sigaction sa = { .sa_handler = on_signal };
	struct replay_info info;
	struct tap_input *in = NULL;
	const char *tmp = secure_getenv("TMPDIR");
	char err[512];
	int status, rc;
	ssize_t n;

	status = parse_options(argc, argv, &o, &card);
	if (status < 0)
		return PCSCTAP_EXIT_OK;
	if (status != PCSCTAP_EXIT_OK)
		return status;
	o.sel.tmpdir = tmp && *tmp ? tmp : "/tmp";
	status = tap_input_open(&in, CMD, argv + optind, 1);
	if (status != PCSCTAP_EXIT_OK)
		return status;
	rc = replay_index_build(&card.idx, tap_input_reader(in, 0), &o.sel, &info, err, sizeof(err));
	if (rc < 0) {
		status = build_error(in, rc, err);
		goto out;
	}
	replay_index_set_strict(card.idx, o.strict);
	if (o.atr || !info.atr_len) {
		const char *atr = o.atr;

		for (size_t i = 0; !atr; i++) {
			if (default_atrs[i].protocols == info.protocols || !default_atrs[i].protocols)
				atr = default_atrs[i].atr;
		}
		if (!o.atr)
			fprintf(stderr, "pcsctap %s: the trace holds no ATR; answering %s (--atr sets one)\n",
				CMD, atr);
		n = hex_decode(atr, card.atr, sizeof(card.atr));
		if (n < 2) {
			fprintf(stderr, "pcsctap %s: '%s' is not an ATR (2 to 33 bytes of hex)\n", CMD, o.atr);
			status = PCSCTAP_EXIT_USAGE;
			goto out;
		}
		card.atr_len = (size_t)n;
	} else {
		memcpy(card.atr, info.atr, info.atr_len);
		card.atr_len = info.atr_len;
	}
	if (info.n_too_long)
		fprintf(stderr, "pcsctap %s: %llu recorded responses are longer than a vpcd frame "
			"(%d bytes) and cannot be replayed\n", CMD,
			(unsigned long long)info.n_too_long, VPCD_FRAME_MAX);
	if (!o.quiet) {
		char atr_hex[67];

		/* With --check, stdout is the command's. */
		fprintf(o.check ? stderr : stdout, "replaying %llu exchanges (%s view%s%s), ATR %s\n",
		       (unsigned long long)info.n_exchanges,
		       info.view == REPLAY_VIEW_CARD ? "card" : "client",
		       info.reader[0] ? ", reader " : "", info.reader,
		       hex_encode(card.atr, card.atr_len, atr_hex));
		fflush(stdout);
		card.log = o.check ? stderr : stdout;
	}
	signal(SIGPIPE, SIG_IGN);
	if (o.check) {
		status = check(&card, &o);
		goto out;
	}
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	status = serve_reader(&card, &o);
out:
	replay_index_free(card.idx);
	tap_input_close(in);
	return o.quiet ? status : finish_stdout(CMD, status);
}
