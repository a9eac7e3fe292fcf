/*
 * test_writer.c — the asynchronous writer: every field reaches the trace,
 * flush and close semantics, counters, periodic commits, overflow into
 * drop records, many threads.
 */
#include "helpers.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include <unistd.h>

TestSuite(writer, .init = th_setup, .fini = th_teardown, .timeout = 60);

Test(writer, every_call_field_round_trips)
{
	struct trace_writer *w = NULL;
	struct trace_reader *r = NULL;
	struct trace_iter *it = NULL;
	struct trace_call_row row;
	uint8_t atr[] = { 0x3b, 0x80, 0x80, 0x01, 0x01 };
	struct trace_reader_state states[2] = {
		{ "Reader A 00 00", 0, 0x22, { atr, sizeof(atr) } },
		{ "\\\\?PnP?\\Notification", 0x10, 0x10, { NULL, 0 } },
	};
	uint8_t in[3] = { 1, 2, 3 };
	struct trace_call c = {
		.fn = TRACE_FN_SCardGetStatusChange, .tid = 77, .t_enter_ns = 1000,
		.t_return_ns = 2000, .wall_ns = 3000, .rv = 0x8010000a,
		.present = TRACE_HAS_CONTEXT | TRACE_HAS_TIMEOUT,
		.context = 0xdeadbeef, .timeout = 500, .states = states, .n_states = 2,
		.extra = "rgReaderStates=2", .shim_ns = 4321,
	};
	struct trace_call c2 = {
		.fn = TRACE_FN_SCardConnect, .tid = 78, .t_enter_ns = 4000, .t_return_ns = 5000,
		.present = TRACE_HAS_CONTEXT | TRACE_HAS_CARD | TRACE_HAS_SHARE_MODE |
			   TRACE_HAS_PREFERRED_PROTOCOLS | TRACE_HAS_ACTIVE_PROTOCOL,
		.context = 1, .card = 0xffffffffffffff01ull, .reader = "Reader A 00 00",
		.share_mode = 2, .preferred_protocols = 3, .active_protocol = 1,
		.in = { in, 3 }, .out = { in, 0 }, .redacted = 1,
	};

	cr_assert_eq(trace_writer_open(&w, th_trace, NULL), 0);
	trace_write_call(w, &c);
	trace_write_call(w, &c2);
	cr_assert_eq(trace_writer_flush(w, 10000), 0);
	trace_writer_close(w);

	cr_assert_eq(trace_reader_open(&r, th_trace, NULL, 0), 0);
	cr_assert_eq(trace_reader_schema_version(r), TRACE_SCHEMA_VERSION);
	cr_assert_eq(trace_iter_calls(r, NULL, &it), 0);
	cr_assert_eq(trace_iter_call_next(it, &row), 1);
	cr_assert_eq(row.pid, getpid());
	cr_assert_eq(row.call.fn, TRACE_FN_SCardGetStatusChange);
	cr_assert_eq(row.call.tid, 77);
	cr_assert_eq(row.call.t_enter_ns, 1000);
	cr_assert_eq(row.call.t_return_ns, 2000);
	cr_assert_eq(row.call.shim_ns, 4321);
	cr_assert_eq(row.call.wall_ns, 3000);
	cr_assert_eq(row.call.rv, 0x8010000a);
	cr_assert_eq(row.call.present, TRACE_HAS_CONTEXT | TRACE_HAS_TIMEOUT);
	cr_assert_eq(row.call.context, 0xdeadbeef);
	cr_assert_eq(row.call.timeout, 500);
	cr_assert_null(row.call.reader);
	cr_assert_null(row.call.in.data);
	cr_assert_str_eq(row.call.extra, "rgReaderStates=2");
	cr_assert_eq(row.call.n_states, 2);
	cr_assert_str_eq(row.call.states[0].reader, "Reader A 00 00");
	cr_assert_eq(row.call.states[0].event_state, 0x22);
	cr_assert_eq(row.call.states[0].atr.len, sizeof(atr));
	cr_assert_arr_eq(row.call.states[0].atr.data, atr, sizeof(atr));
	cr_assert_eq(row.call.states[1].current_state, 0x10);
	cr_assert_null(row.call.states[1].atr.data);

	cr_assert_eq(trace_iter_call_next(it, &row), 1);
	cr_assert_eq(row.call.fn, TRACE_FN_SCardConnect);
	cr_assert_eq(row.call.card, 0xffffffffffffff01ull);
	cr_assert_str_eq(row.call.reader, "Reader A 00 00");
	cr_assert_eq(row.call.share_mode, 2);
	cr_assert_eq(row.call.preferred_protocols, 3);
	cr_assert_eq(row.call.active_protocol, 1);
	cr_assert_eq(row.call.in.len, 3);
	cr_assert_arr_eq(row.call.in.data, in, 3);
	cr_assert_not_null(row.call.out.data, "an empty buffer is not an absent one");
	cr_assert_eq(row.call.out.len, 0);
	cr_assert_eq(row.call.redacted, 1);
	cr_assert_eq(trace_iter_call_next(it, &row), 0);
	trace_iter_end(it);
	trace_reader_close(r);
}

/*
 * Many calls whose fields come and go from one call to the next, with a
 * marker and a GetStatusChange in between: the writer inserts runs of calls
 * in multi-row statements and binds NULL only where a column changes to
 * absent, so every row must still read back exactly as it was written.
 */
static void
varied_call(struct trace_call *c, int i, uint8_t *buf)
{
	static const char *const readers[] = { NULL, "Reader A 00 00", "Reader B 01 00" };
	static const char *const extras[] = { NULL, "cbRecvLength=258", NULL, "x=1 y=2" };
	uint32_t bits = (uint32_t)(i * 2654435761u) >> 20;

	memset(c, 0, sizeof(*c));
	c->fn = 1 + i % TRACE_FN_MAX;
	c->tid = 1000 + i % 7;
	c->t_enter_ns = 10000 + i;
	c->t_return_ns = 20000 + i;
	c->wall_ns = 30000 + i;
	c->rv = i % 5 ? 0 : 0x80100069;
	c->present = bits & 0xfff;
	c->context = 1000000 + i;
	c->card = 2000000 + i;
	c->share_mode = 1 + i;
	c->preferred_protocols = 2 + i;
	c->active_protocol = 3 + i;
	c->disposition = 4 + i;
	c->scope = 5 + i;
	c->timeout = 6 + i;
	c->code = 7 + i;
	c->state = 8 + i;
	c->send_pci = 9 + i;
	c->recv_pci = 10 + i;
	c->reader = readers[i % 3];
	c->extra = extras[i % 4];
	buf[0] = (uint8_t)i;
	buf[1] = (uint8_t)(i >> 8);
	if (i % 5 != 0)
		c->in = (struct trace_blob){ buf, 1 + (size_t)i % 2 };
	if (i % 7 != 3)
		c->out = (struct trace_blob){ buf, (size_t)i % 3 };
	c->redacted = i % 11 == 0;
}

Test(writer, varied_calls_round_trip)
{
	enum { N = 300 };
	struct trace_writer *w = NULL;
	struct trace_reader *r = NULL;
	struct trace_iter *it = NULL;
	struct trace_call_row row;
	struct trace_call c;
	uint8_t buf[N][2];
	int i;

	cr_assert_eq(trace_writer_open(&w, th_trace, NULL), 0);
	for (i = 0; i < N; i++) {
		varied_call(&c, i, buf[i]);
		trace_write_call(w, &c);
		if (i == 100) {
			struct trace_marker m = { .tid = 1, .t_ns = 1, .event = 1 };

			trace_write_marker(w, &m);
		}
		if (i == 200) {
			struct trace_reader_state st = { "Reader A 00 00", 1, 2, { NULL, 0 } };
			struct trace_call g = {
				.fn = TRACE_FN_SCardGetStatusChange, .t_enter_ns = 10000 + i,
				.states = &st, .n_states = 1,
			};

			trace_write_call(w, &g);
		}
	}
	cr_assert_eq(trace_writer_flush(w, 10000), 0);
	trace_writer_close(w);

	cr_assert_eq(trace_reader_open(&r, th_trace, NULL, 0), 0);
	cr_assert_eq(trace_iter_calls(r, NULL, &it), 0);
	for (i = 0; i < N; i++) {
		uint32_t p;

		cr_assert_eq(trace_iter_call_next(it, &row), 1, "call %d", i);
		if (row.call.n_states) {
			cr_assert_eq(i, 201);
			cr_assert_eq(row.call.fn, TRACE_FN_SCardGetStatusChange);
			cr_assert_eq(row.call.present, 0);
			cr_assert_null(row.call.reader);
			cr_assert_eq(trace_iter_call_next(it, &row), 1, "call %d", i);
		}
		varied_call(&c, i, buf[i]);
		p = c.present;
		cr_assert_eq(row.call.fn, c.fn, "call %d", i);
		cr_assert_eq(row.call.tid, c.tid, "call %d", i);
		cr_assert_eq(row.call.t_enter_ns, c.t_enter_ns, "call %d", i);
		cr_assert_eq(row.call.t_return_ns, c.t_return_ns, "call %d", i);
		cr_assert_eq(row.call.wall_ns, c.wall_ns, "call %d", i);
		cr_assert_eq(row.call.rv, c.rv, "call %d", i);
		cr_assert_eq(row.call.present, p, "call %d: %#x, not %#x", i, row.call.present, p);
#define FIELD(bit, f) \
		if (p & (bit)) \
			cr_assert_eq(row.call.f, c.f, "call %d: " #f, i)
		FIELD(TRACE_HAS_CONTEXT, context);
		FIELD(TRACE_HAS_CARD, card);
		FIELD(TRACE_HAS_SHARE_MODE, share_mode);
		FIELD(TRACE_HAS_PREFERRED_PROTOCOLS, preferred_protocols);
		FIELD(TRACE_HAS_ACTIVE_PROTOCOL, active_protocol);
		FIELD(TRACE_HAS_DISPOSITION, disposition);
		FIELD(TRACE_HAS_SCOPE, scope);
		FIELD(TRACE_HAS_TIMEOUT, timeout);
		FIELD(TRACE_HAS_CODE, code);
		FIELD(TRACE_HAS_STATE, state);
		FIELD(TRACE_HAS_SEND_PCI, send_pci);
		FIELD(TRACE_HAS_RECV_PCI, recv_pci);
#undef FIELD
		if (c.reader)
			cr_assert_str_eq(row.call.reader, c.reader, "call %d", i);
		else
			cr_assert_null(row.call.reader, "call %d", i);
		if (c.extra)
			cr_assert_str_eq(row.call.extra, c.extra, "call %d", i);
		else
			cr_assert_null(row.call.extra, "call %d", i);
		cr_assert_eq(!row.call.in.data, !c.in.data, "call %d: in", i);
		cr_assert_eq(row.call.in.len, c.in.len, "call %d: in", i);
		if (c.in.len)
			cr_assert_arr_eq(row.call.in.data, c.in.data, c.in.len, "call %d", i);
		cr_assert_eq(!row.call.out.data, !c.out.data, "call %d: out", i);
		cr_assert_eq(row.call.out.len, c.out.len, "call %d: out", i);
		if (c.out.len)
			cr_assert_arr_eq(row.call.out.data, c.out.data, c.out.len, "call %d", i);
		cr_assert_eq(row.call.redacted, c.redacted, "call %d", i);
	}
	cr_assert_eq(trace_iter_call_next(it, &row), 0);
	trace_iter_end(it);
	trace_reader_close(r);
	cr_assert_eq(th_sql_int(th_trace, "SELECT count(*) FROM markers"), 1);
}

Test(writer, markers_wire_and_processes)
{
	struct trace_writer *w = NULL;
	struct trace_writer_options opt = { .role = "driver" };
	struct trace_reader *r = NULL;
	struct trace_iter *it = NULL;
	struct trace_marker_row mr;
	struct trace_wire_row wr;
	struct trace_process p;
	uint8_t body[] = { 1, 2, 3, 4 };
	uint8_t rsp[] = { 0x90, 0x00 };
	struct trace_marker m = {
		.tid = 5, .t_ns = 10, .wall_ns = 11, .card = 9, .reader = "R", .event = 3,
		.seq = 42, .body = { body, sizeof(body) }, .rv = 0,
	};
	struct trace_wire x = {
		.t_ns = 20, .t_end_ns = 21, .wall_ns = 22, .reader = "R", .kind = TRACE_WIRE_APDU,
		.sent = { body, 4 }, .received = { rsp, 2 }, .detail = NULL,
	};

	cr_assert_eq(trace_writer_open(&w, th_trace, &opt), 0);
	trace_write_marker(w, &m);
	trace_write_wire(w, &x);
	trace_writer_close(w);

	cr_assert_eq(trace_reader_open(&r, th_trace, NULL, 0), 0);
	cr_assert_eq(trace_iter_markers(r, NULL, &it), 0);
	cr_assert_eq(trace_iter_marker_next(it, &mr), 1);
	cr_assert_eq(mr.pid, getpid());
	cr_assert_eq(mr.marker.seq, 42);
	cr_assert_eq(mr.marker.event, 3);
	cr_assert_eq(mr.marker.card, 9);
	cr_assert_str_eq(mr.marker.reader, "R");
	cr_assert_arr_eq(mr.marker.body.data, body, 4);
	cr_assert_eq(trace_iter_marker_next(it, &mr), 0);
	trace_iter_end(it);

	cr_assert_eq(trace_iter_wire(r, NULL, &it), 0);
	cr_assert_eq(trace_iter_wire_next(it, &wr), 1);
	cr_assert_eq(wr.wire.kind, TRACE_WIRE_APDU);
	cr_assert_eq(wr.wire.t_end_ns, 21);
	cr_assert_arr_eq(wr.wire.received.data, rsp, 2);
	cr_assert_null(wr.wire.detail);
	cr_assert_eq(trace_iter_wire_next(it, &wr), 0);
	trace_iter_end(it);

	cr_assert_eq(trace_iter_processes(r, &it), 0);
	cr_assert_eq(trace_iter_process_next(it, &p), 1);
	cr_assert_eq(p.pid, getpid());
	cr_assert_eq(p.ppid, getppid());
	cr_assert_str_eq(p.role, "driver");
	cr_assert(strstr(p.exe, "test_writer") != NULL, "exe %s", p.exe);
	/* Criterion renames its workers: argv need only be there. */
	cr_assert(p.argv && *p.argv, "argv");
	cr_assert_gt(p.start_wall_ns, 0);
	cr_assert_eq(trace_iter_process_next(it, &p), 0);
	trace_iter_end(it);
	trace_reader_close(r);
}

Test(writer, commits_without_flush)
{
	struct trace_writer *w = NULL;
	struct trace_call c;
	uint8_t cmd[5], rsp[2];
	int64_t n = 0;

	cr_assert_eq(trace_writer_open(&w, th_trace, NULL), 0);
	th_transmit(&c, cmd, rsp, 1);
	trace_write_call(w, &c);
	/* Committed by the periodic commit, without flush or close.  The
	 * bound is generous: a test must not fail on a slow machine. */
	for (int i = 0; i < 500 && n != 1; i++) {
		usleep(20000);
		n = th_sql_int(th_trace, "SELECT count(*) FROM calls");
	}
	cr_assert_eq(n, 1);
	trace_writer_close(w);
}

Test(writer, stats_and_flush)
{
	struct trace_writer *w = NULL;
	struct trace_writer_stats s;
	struct trace_call c;
	uint8_t cmd[5], rsp[2];

	cr_assert_eq(trace_writer_open(&w, th_trace, NULL), 0);
	for (int i = 0; i < 1000; i++) {
		th_transmit(&c, cmd, rsp, i);
		trace_write_call(w, &c);
	}
	cr_assert_eq(trace_writer_flush(w, 20000), 0);
	trace_writer_get_stats(w, &s);
	cr_assert_eq(s.enqueued, 1000);
	cr_assert_eq(s.written, 1000);
	cr_assert_eq(s.dropped, 0);
	cr_assert_geq(s.commits, 1);
	cr_assert_geq(s.queue_peak_events, 1);
	cr_assert_eq(th_sql_int(th_trace, "SELECT count(*) FROM calls"), 1000);
	cr_assert_eq(th_sql_int(th_trace, "SELECT count(DISTINCT code) FROM calls"), 1000);
	trace_writer_close(w);
	/* A NULL writer is a no-op everywhere (the shim may have none). */
	trace_write_call(NULL, &c);
	cr_assert_eq(trace_writer_flush(NULL, 10), 0);
	trace_writer_close(NULL);
}

/*
 * Overflow: another connection holds the write lock, so the writer cannot
 * drain; a tiny queue overflows, and every dropped event is counted in a
 * drops row once the lock is released.
 */
Test(writer, overflow_is_recorded)
{
	struct trace_writer_options opt = { .queue_max_events = 10, .busy_timeout_ms = 100000 };
	struct trace_writer *w = NULL;
	struct trace_writer_stats s;
	struct trace_call c;
	uint8_t cmd[5], rsp[2];
	char *err;

	cr_assert_eq(trace_writer_open(&w, th_trace, &opt), 0);
	cr_assert_eq(trace_writer_flush(w, 10000), 0);
	/* Another process (the writer thread may hold the lock for a moment:
	 * it waits for it). */
	cr_assert_eq(th_lock_begin(th_trace, "BEGIN IMMEDIATE"), 0);
	th_stderr_begin();
	for (int i = 0; i < 100; i++) {
		th_transmit(&c, cmd, rsp, i);
		trace_write_call(w, &c);
	}
	err = th_stderr_end();
	cr_assert_eq(th_count_warnings(err), 1, "one warning for the overflow: %s", err);
	cr_assert(strstr(err, "journal full"), "%s", err);
	free(err);
	th_lock_end();
	/* The drops before the flush are committed as a drops row. */
	cr_assert_eq(trace_writer_flush(w, 20000), 0);
	trace_writer_get_stats(w, &s);
	trace_writer_close(w);
	cr_assert_gt(s.dropped, 0);
	cr_assert_eq(s.enqueued + s.dropped, 100);
	cr_assert_eq(th_sql_int(th_trace, "SELECT count(*) FROM calls"), (int64_t)s.enqueued);
	cr_assert_eq(th_sql_int(th_trace, "SELECT sum(count) FROM drops"), (int64_t)s.dropped);
	cr_assert_eq(th_sql_int(th_trace, "SELECT count(DISTINCT pid) FROM drops"), 1);
}

#define THREADS 8
#define PER_THREAD 5000

static void *
hammer(void *arg)
{
	struct trace_writer *w = arg;
	struct trace_call c;
	uint8_t cmd[5], rsp[2];

	for (int i = 0; i < PER_THREAD; i++) {
		th_transmit(&c, cmd, rsp, i);
		trace_write_call(w, &c);
	}
	return NULL;
}

Test(writer, many_threads)
{
	struct trace_writer_options opt = { .queue_max_events = THREADS * PER_THREAD };
	struct trace_writer *w = NULL;
	pthread_t t[THREADS];

	cr_assert_eq(trace_writer_open(&w, th_trace, &opt), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, hammer, w);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	trace_writer_close(w);
	cr_assert_eq(th_sql_int(th_trace, "SELECT count(*) FROM calls"), THREADS * PER_THREAD);
	cr_assert_eq(th_sql_int(th_trace, "SELECT count(*) FROM (SELECT tid FROM calls GROUP BY tid"
				      " HAVING count(*) = 5000 AND count(DISTINCT code) = 5000)"),
		     THREADS);
	cr_assert_eq(th_sql_int(th_trace, "SELECT count(*) FROM drops"), 0);
}

Test(writer, two_writers_one_process)
{
	struct trace_writer *a = NULL, *b = NULL;
	struct trace_call c;
	uint8_t cmd[5], rsp[2];

	cr_assert_eq(trace_writer_open(&a, th_trace, NULL), 0);
	cr_assert_eq(trace_writer_open(&b, th_trace, NULL), 0);
	for (int i = 0; i < 2000; i++) {
		th_transmit(&c, cmd, rsp, i);
		trace_write_call(i % 2 ? a : b, &c);
	}
	trace_writer_close(a);
	trace_writer_close(b);
	cr_assert_eq(th_sql_int(th_trace, "SELECT count(*) FROM calls"), 2000);
	cr_assert_eq(th_sql_text(th_trace, "PRAGMA integrity_check") != NULL, 1);
	cr_assert_str_eq(th_sql_text(th_trace, "PRAGMA integrity_check"), "ok");
}
