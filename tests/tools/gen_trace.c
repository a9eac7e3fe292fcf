/*
 * gen_trace.c — writes a synthetic but realistic trace with the trace
 * writer API, for the tools' tests and benchmark.
 *
 *   gen_trace [--calls N] [--processes P] [--wire FILE] [--apdus-per-session K] OUT
 *
 * Each process: EstablishContext, ListReaders, GetStatusChange, then
 * sessions (Connect, Status, BeginTransaction, K Transmits, Control,
 * GetAttrib, EndTransaction, Disconnect) with markers, alternating between
 * two readers, a failing Connect and a failing Transmit, ReleaseContext.
 * Times are synthetic (from "now"), so the content is deterministic apart
 * from the pids.  --wire writes the driver's view of the same APDUs.
 */
#include "wire.h"
#include "trace.h"

#include <errno.h>
#include <stdbool.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FLUSH_EVERY 20000

static const char *const readers[] = { "Virtual PCD 00 00", "Virtual PCD 00 01" };
static const uint8_t atr[] = { 0x3B, 0x80, 0x80, 0x01, 0x01 };

struct apdu_pair {
	const char *cmd;
	const char *resp;
};

/* Command/response pairs cycled through in every session. */
static const struct apdu_pair script[] = {
	{ "00A4040007A000000003000000", "6F10840AA0000000030000A5029000" },
	{ "80CA9F7F00", "9F7F2A40906743" "0000000000000000000000000000000000000000" "9000" },
	{ "8050000008" "0102030405060708" "00", "00000000000000000000FF020001" "0203040506070809" "0A0B0C0D0E0F1011" "9000" },
	{ "00B0000010", "000102030405060708090A0B0C0D0E0F9000" },
	{ "0020008108" "FFFFFFFFFFFFFFFF", "63C2" },
	{ "00A4000C023F01", "6A82" },
	{ "002A9E9A0000030102030000", "AABBCC9000" },
	{ "00C0000020", "6110" },
	{ "0084000008", "1122334455667788" "9000" },
};

struct gen {
	struct trace_writer *w;
	struct trace_writer *wire;
	int64_t t;		/* synthetic monotonic time */
	int64_t wall0, mono0;
	uint64_t rnd;
	long left;		/* calls still to write */
	long since_flush;
	uint32_t seq;
	int apdus_per_session;
};

static size_t
unhex(const char *s, uint8_t *out)
{
	size_t n = 0;

	for (; s[0] && s[1]; s += 2)
		out[n++] = (uint8_t)strtoul((char[]){ s[0], s[1], 0 }, NULL, 16);
	return n;
}

static int64_t
now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Deterministic durations: 20 us .. 2 ms, with a long tail. */
static int64_t
duration(struct gen *g)
{
	g->rnd = g->rnd * 6364136223846793005ull + 1442695040888963407ull;
	return 20000 + (int64_t)((g->rnd >> 33) % 400000) * (((g->rnd >> 20) & 63) == 0 ? 5 : 1);
}

static void
pace(struct gen *g)
{
	if (++g->since_flush < FLUSH_EVERY)
		return;
	/* The writer drops when its queue is full: wait for it instead. */
	trace_writer_flush(g->w, 600000);
	if (g->wire)
		trace_writer_flush(g->wire, 600000);
	g->since_flush = 0;
}

static void
emit(struct gen *g, struct trace_call *c)
{
	int64_t d = duration(g);

	c->tid = getpid() + 1;
	c->t_enter_ns = g->t;
	c->t_return_ns = g->t + d;
	c->wall_ns = g->wall0 + (g->t - g->mono0);
	trace_write_call(g->w, c);
	g->t += d + 15000;
	g->left--;
	pace(g);
}

static void
emit_marker(struct gen *g, int event, uint64_t card, const char *reader)
{
	struct marker m = {
		.version = MARKER_VERSION, .event = (uint8_t)event,
		.present = MARKER_HAS(MARKER_TAG_PID) | MARKER_HAS(MARKER_TAG_HANDLE) |
			   MARKER_HAS(MARKER_TAG_SEQ) | MARKER_HAS(MARKER_TAG_PROCESS) |
			   MARKER_HAS(MARKER_TAG_TIMESTAMP),
		.pid = (uint32_t)getpid(), .handle = (uint32_t)card, .seq = ++g->seq,
		.timestamp_ns = (uint64_t)g->t,
	};
	uint8_t body[MARKER_MAX_BODY];
	ssize_t n;
	struct trace_marker tm = { 0 };

	snprintf(m.process, sizeof(m.process), "gen_trace");
	n = marker_encode(&m, body, sizeof(body));
	if (n < 0)
		return;
	tm.tid = getpid() + 1;
	tm.t_ns = g->t;
	tm.wall_ns = g->wall0 + (g->t - g->mono0);
	tm.card = card;
	tm.reader = reader;
	tm.event = event;
	tm.seq = m.seq;
	tm.body.data = body;
	tm.body.len = (size_t)n;
	tm.rv = 0;
	trace_write_marker(g->w, &tm);
	if (g->wire) {
		struct trace_wire wv = {
			.t_ns = g->t + 1000, .t_end_ns = g->t + 2000,
			.wall_ns = tm.wall_ns + 1000, .reader = reader,
			.kind = TRACE_WIRE_MARKER, .sent = { body, (size_t)n },
		};

		trace_write_wire(g->wire, &wv);
	}
	g->t += 5000;
}

static void
wire_apdu(struct gen *g, const char *reader, const uint8_t *cmd, size_t cmd_len,
	  const uint8_t *resp, size_t resp_len, int64_t t0, int64_t t1)
{
	struct trace_wire wv = {
		.t_ns = t0 + 3000, .t_end_ns = t1 - 3000,
		.wall_ns = g->wall0 + (t0 + 3000 - g->mono0), .reader = reader,
		.kind = TRACE_WIRE_APDU, .sent = { cmd, cmd_len }, .received = { resp, resp_len },
	};

	if (g->wire)
		trace_write_wire(g->wire, &wv);
}

static void
session(struct gen *g, uint64_t ctx, int n)
{
	const char *reader = readers[n % 2];
	uint64_t card = 0x10000 + (uint64_t)n;
	uint8_t cmd[300], resp[300];
	struct trace_call c;

	memset(&c, 0, sizeof(c));
	c.fn = TRACE_FN_SCardConnect;
	c.present = TRACE_HAS_CONTEXT | TRACE_HAS_CARD | TRACE_HAS_SHARE_MODE |
		    TRACE_HAS_PREFERRED_PROTOCOLS | TRACE_HAS_ACTIVE_PROTOCOL;
	c.context = ctx;
	c.card = card;
	c.reader = reader;
	c.share_mode = 2;
	c.preferred_protocols = 3;
	c.active_protocol = 2;
	emit(g, &c);
	emit_marker(g, MARKER_CONNECT, card, reader);

	memset(&c, 0, sizeof(c));
	c.fn = TRACE_FN_SCardStatus;
	c.present = TRACE_HAS_CARD | TRACE_HAS_STATE | TRACE_HAS_ACTIVE_PROTOCOL;
	c.card = card;
	c.reader = reader;
	c.state = 0x34;
	c.active_protocol = 2;
	c.out.data = atr;
	c.out.len = sizeof(atr);
	emit(g, &c);

	memset(&c, 0, sizeof(c));
	c.fn = TRACE_FN_SCardBeginTransaction;
	c.present = TRACE_HAS_CARD;
	c.card = card;
	emit(g, &c);
	emit_marker(g, MARKER_BEGIN_TRANSACTION, card, reader);

	for (int i = 0; i < g->apdus_per_session && g->left > 8; i++) {
		const struct apdu_pair *p = &script[i % (sizeof(script) / sizeof(script[0]))];
		int64_t t0 = g->t;

		memset(&c, 0, sizeof(c));
		c.fn = TRACE_FN_SCardTransmit;
		c.present = TRACE_HAS_CARD | TRACE_HAS_SEND_PCI | TRACE_HAS_RECV_PCI;
		c.card = card;
		c.send_pci = 2;
		c.recv_pci = 2;
		c.in.data = cmd;
		c.in.len = unhex(p->cmd, cmd);
		c.out.data = resp;
		c.out.len = unhex(p->resp, resp);
		emit(g, &c);
		wire_apdu(g, reader, cmd, c.in.len, resp, c.out.len, t0, g->t);
	}

	memset(&c, 0, sizeof(c));
	c.fn = TRACE_FN_SCardControl;
	c.present = TRACE_HAS_CARD | TRACE_HAS_CODE;
	c.card = card;
	c.code = 0x42000D48;
	c.in.data = resp;
	c.in.len = 0;
	c.out.data = (const uint8_t *)"\x12\x04\x42\x33\x00\x12";
	c.out.len = 6;
	emit(g, &c);

	memset(&c, 0, sizeof(c));
	c.fn = TRACE_FN_SCardGetAttrib;
	c.present = TRACE_HAS_CARD | TRACE_HAS_CODE;
	c.card = card;
	c.code = 0x90303;
	c.out.data = atr;
	c.out.len = sizeof(atr);
	emit(g, &c);

	memset(&c, 0, sizeof(c));
	c.fn = TRACE_FN_SCardEndTransaction;
	c.present = TRACE_HAS_CARD | TRACE_HAS_DISPOSITION;
	c.card = card;
	c.disposition = 0;
	emit_marker(g, MARKER_END_TRANSACTION, card, reader);
	emit(g, &c);

	memset(&c, 0, sizeof(c));
	c.fn = TRACE_FN_SCardDisconnect;
	c.present = TRACE_HAS_CARD | TRACE_HAS_DISPOSITION;
	c.card = card;
	c.disposition = n % 3 == 2 ? 1 : 0;
	emit_marker(g, MARKER_DISCONNECT, card, reader);
	emit(g, &c);
}

static int
run_process(const char *path, const char *wire_path, long calls, int index, int apdus)
{
	struct trace_writer_options opt = { .role = "shim" };
	struct trace_writer_options wopt = { .role = "driver" };
	struct gen g = { 0 };
	struct trace_call c;
	struct trace_writer_stats st;
	uint8_t readers_ms[64];
	struct trace_reader_state rs[2] = {
		{ readers[0], 0, 0x22, { atr, sizeof(atr) } },
		{ readers[1], 0, 0x10, { NULL, 0 } },
	};
	uint64_t ctx = 0x1000 + (uint64_t)index;
	int n = 0, rc = 1;

	g.mono0 = now_ns(CLOCK_MONOTONIC);
	g.wall0 = now_ns(CLOCK_REALTIME);
	/* Synthetic times run ahead of the clock, so processes interleave. */
	g.t = g.mono0 + (int64_t)index * 7000;
	g.rnd = (uint64_t)index + 1;
	g.left = calls;
	g.apdus_per_session = apdus;
	if (trace_writer_open(&g.w, path, &opt) < 0)
		goto out;
	if (wire_path && trace_writer_open(&g.wire, wire_path, &wopt) < 0)
		goto out;
	if (g.wire) {
		struct trace_wire pw = {
			.t_ns = g.t - 100000, .t_end_ns = g.t - 90000, .wall_ns = g.wall0 - 100000,
			.reader = readers[0], .kind = TRACE_WIRE_POWER_ON, .received = { atr, sizeof(atr) },
		};

		trace_write_wire(g.wire, &pw);
	}

	memset(&c, 0, sizeof(c));
	c.fn = TRACE_FN_SCardEstablishContext;
	c.present = TRACE_HAS_SCOPE | TRACE_HAS_CONTEXT;
	c.scope = 2;
	c.context = ctx;
	emit(&g, &c);

	memset(&c, 0, sizeof(c));
	c.fn = TRACE_FN_SCardListReaders;
	c.present = TRACE_HAS_CONTEXT;
	c.context = ctx;
	memcpy(readers_ms, "Virtual PCD 00 00\0Virtual PCD 00 01\0\0", 37);
	c.out.data = readers_ms;
	c.out.len = 37;
	c.extra = "size=auto";
	emit(&g, &c);

	memset(&c, 0, sizeof(c));
	c.fn = TRACE_FN_SCardGetStatusChange;
	c.present = TRACE_HAS_CONTEXT | TRACE_HAS_TIMEOUT;
	c.context = ctx;
	c.timeout = 1000;
	c.states = rs;
	c.n_states = 2;
	emit(&g, &c);

	memset(&c, 0, sizeof(c));
	c.fn = TRACE_FN_SCardConnect;
	c.present = TRACE_HAS_CONTEXT | TRACE_HAS_SHARE_MODE | TRACE_HAS_PREFERRED_PROTOCOLS;
	c.context = ctx;
	c.reader = "No Such Reader";
	c.share_mode = 1;
	c.preferred_protocols = 1;
	c.rv = 0x80100009;	/* SCARD_E_UNKNOWN_READER */
	emit(&g, &c);

	while (g.left > 12)
		session(&g, ctx, index * 100000 + n++);

	/* A card pulled mid-session: the Transmit fails and nothing comes back. */
	memset(&c, 0, sizeof(c));
	c.fn = TRACE_FN_SCardTransmit;
	c.present = TRACE_HAS_CARD | TRACE_HAS_SEND_PCI;
	c.card = 0x10000;
	c.send_pci = 2;
	c.in.data = (const uint8_t *)"\x00\xB0\x00\x00\x04";
	c.in.len = 5;
	c.rv = 0x80100069;	/* SCARD_W_REMOVED_CARD */
	emit(&g, &c);

	memset(&c, 0, sizeof(c));
	c.fn = TRACE_FN_SCardReleaseContext;
	c.present = TRACE_HAS_CONTEXT;
	c.context = ctx;
	emit(&g, &c);

	if (trace_writer_flush(g.w, 600000) < 0 || (g.wire && trace_writer_flush(g.wire, 600000) < 0))
		goto out;
	trace_writer_get_stats(g.w, &st);
	if (st.dropped) {
		fprintf(stderr, "gen_trace: %llu events dropped\n", (unsigned long long)st.dropped);
		goto out;
	}
	rc = 0;
out:
	if (g.wire)
		trace_writer_close(g.wire);
	if (g.w)
		trace_writer_close(g.w);
	return rc;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "calls", required_argument, NULL, 'n' },
		{ "processes", required_argument, NULL, 'p' },
		{ "wire", required_argument, NULL, 'w' },
		{ "apdus-per-session", required_argument, NULL, 'a' },
		{ "empty", no_argument, NULL, 'e' },
		{ NULL, 0, NULL, 0 },
	};
	long calls = 200;
	int procs = 1, apdus = 9, opt, rc = 0;
	const char *wire = NULL;
	bool empty = false;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'n': calls = atol(optarg); break;
		case 'p': procs = atoi(optarg); break;
		case 'w': wire = optarg; break;
		case 'a': apdus = atoi(optarg); break;
		case 'e': empty = true; break;
		default: return 1;
		}
	}
	if (optind != argc - 1 || procs < 1 || calls < 20) {
		fprintf(stderr, "usage: gen_trace [--calls N>=20] [--processes P] [--wire FILE] OUT\n");
		return 1;
	}
	if (empty) {
		/* A trace with its schema and process row but no event. */
		struct trace_writer *w;

		if (trace_writer_open(&w, argv[optind], NULL) < 0)
			return 1;
		trace_writer_close(w);
		return 0;
	}
	if (procs == 1)
		return run_process(argv[optind], wire, calls, 0, apdus) ? 1 : 0;
	/* One writer per process, as the shim has; only the first feeds --wire. */
	for (int i = 0; i < procs; i++) {
		pid_t pid = fork();

		if (pid < 0)
			return 1;
		if (pid == 0)
			_exit(run_process(argv[optind], i == 0 ? wire : NULL, calls / procs, i, apdus));
		/* Sequential: the trace then holds distinct process rows, each whole. */
		{
			int st;

			if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
				rc = 1;
		}
	}
	return rc;
}
