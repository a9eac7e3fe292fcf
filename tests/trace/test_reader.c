/*
 * test_reader.c — the read API and the views: calls in time order with
 * every filter, sessions and transactions derived from connect/disconnect
 * and begin/end, the apdus view with reader and process names, and
 * constant memory while streaming a large trace.
 */
#include "helpers.h"
#include "rss.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int64_t t_base;

TestSuite(reader, .init = th_setup, .fini = th_teardown, .timeout = 120);

static void
call(struct trace_writer *w, int fn, uint64_t card, const char *reader, int64_t t, int64_t rv)
{
	static const uint8_t cmd[] = { 0x00, 0xb0, 0x00, 0x00, 0x10 };
	static const uint8_t rsp[] = { 0x6a, 0x82 };
	struct trace_call c = {
		.fn = fn, .tid = 1, .t_enter_ns = t_base + t, .t_return_ns = t_base + t + 5,
		.wall_ns = 1, .rv = rv, .present = TRACE_HAS_CARD, .card = card, .reader = reader,
	};

	if (fn == TRACE_FN_SCardConnect) {
		c.present |= TRACE_HAS_SHARE_MODE | TRACE_HAS_PREFERRED_PROTOCOLS |
			     TRACE_HAS_ACTIVE_PROTOCOL | TRACE_HAS_CONTEXT;
		c.share_mode = 2;
		c.preferred_protocols = 3;
		c.active_protocol = 2;
	}
	if (fn == TRACE_FN_SCardDisconnect || fn == TRACE_FN_SCardEndTransaction) {
		c.present |= TRACE_HAS_DISPOSITION;
		c.disposition = 1;
	}
	if (fn == TRACE_FN_SCardTransmit) {
		c.present |= TRACE_HAS_SEND_PCI;
		c.send_pci = 2;
		c.in.data = cmd;
		c.in.len = sizeof(cmd);
		c.out.data = rsp;
		c.out.len = sizeof(rsp);
	}
	trace_write_call(w, &c);
}

/*
 * Two sessions on reader A (card 1, then card 1 again after disconnect),
 * one on reader B (card 2, never disconnected), a failed connect, and a
 * transaction in the first session.  Times are deliberately not in id
 * order for the last two calls.
 */
static void
scenario(void)
{
	struct trace_writer *w = NULL;
	struct trace_marker m = { .t_ns = 0, .card = 1, .reader = "A", .event = 1, .rv = 0 };

	t_base = 1000000000;
	cr_assert_eq(trace_writer_open(&w, th_trace, NULL), 0);
	call(w, TRACE_FN_SCardConnect, 1, "A", 10, 0);			/* id 1 */
	m.t_ns = t_base + 12;
	trace_write_marker(w, &m);
	call(w, TRACE_FN_SCardBeginTransaction, 1, NULL, 20, 0);	/* 2 */
	call(w, TRACE_FN_SCardTransmit, 1, NULL, 30, 0);		/* 3 */
	call(w, TRACE_FN_SCardTransmit, 1, NULL, 40, 0);		/* 4 */
	call(w, TRACE_FN_SCardEndTransaction, 1, NULL, 50, 0);		/* 5 */
	call(w, TRACE_FN_SCardConnect, 2, "B", 55, 0);			/* 6 */
	call(w, TRACE_FN_SCardDisconnect, 1, NULL, 60, 0);		/* 7 */
	call(w, TRACE_FN_SCardConnect, 9, "A", 65, 0x80100069);		/* 8: failed */
	call(w, TRACE_FN_SCardConnect, 1, "A", 70, 0);			/* 9 */
	call(w, TRACE_FN_SCardTransmit, 1, NULL, 80, 0);		/* 10 */
	call(w, TRACE_FN_SCardTransmit, 2, NULL, 75, 0);		/* 11: earlier */
	call(w, TRACE_FN_SCardDisconnect, 1, NULL, 90, 0);		/* 12 */
	trace_writer_close(w);
}

static int
collect(struct trace_reader *r, const struct trace_filter *f, int64_t *ids, int max)
{
	struct trace_iter *it = NULL;
	struct trace_call_row row;
	int n = 0, rc;

	cr_assert_eq(trace_iter_calls(r, f, &it), 0, "%s", trace_reader_errmsg(r));
	while ((rc = trace_iter_call_next(it, &row)) == 1) {
		cr_assert_lt(n, max);
		ids[n++] = row.id;
	}
	cr_assert_eq(rc, 0);
	trace_iter_end(it);
	return n;
}

#define EXPECT(f, ...)								\
	do {									\
		int64_t want[] = { __VA_ARGS__ };				\
		int64_t got[64];						\
		int n = collect(r, (f), got, 64);				\
		cr_assert_eq(n, (int)(sizeof(want) / sizeof(want[0])), "count %d", n); \
		cr_assert_arr_eq(got, want, sizeof(want));			\
	} while (0)

Test(reader, call_filters)
{
	struct trace_reader *r = NULL;
	struct trace_filter f;

	scenario();
	cr_assert_eq(trace_reader_open(&r, th_trace, NULL, 0), 0);
	/* Time order: 11 (t=75) before 10 (t=80). */
	EXPECT(NULL, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 10, 12);
	f = (struct trace_filter){ .fn = TRACE_FN_SCardTransmit };
	EXPECT(&f, 3, 4, 11, 10);
	f = (struct trace_filter){ .pid = getpid(), .fn = TRACE_FN_SCardConnect };
	EXPECT(&f, 1, 6, 8, 9);
	f = (struct trace_filter){ .pid = getpid() + 1 };
	{
		int64_t got[4];

		cr_assert_eq(collect(r, &f, got, 4), 0);
	}
	f = (struct trace_filter){ .session = 1 };
	EXPECT(&f, 1, 2, 3, 4, 5, 7);
	f = (struct trace_filter){ .session = 9 };
	EXPECT(&f, 9, 10, 12);
	f = (struct trace_filter){ .session = 6 };
	EXPECT(&f, 6, 11);
	f = (struct trace_filter){ .reader = "A" };
	EXPECT(&f, 1, 2, 3, 4, 5, 7, 8, 9, 10, 12);
	f = (struct trace_filter){ .reader = "B", .fn = TRACE_FN_SCardTransmit };
	EXPECT(&f, 11);
	f = (struct trace_filter){ .since_ns = t_base + 40, .until_ns = t_base + 60 };
	EXPECT(&f, 4, 5, 6, 7);
	f = (struct trace_filter){ .after_id = 9 };
	EXPECT(&f, 11, 10, 12);
	/* Two iterators at once, one with a reader filter. */
	{
		struct trace_iter *a = NULL, *b = NULL;
		struct trace_call_row ra, rb;
		struct trace_filter fa = { .reader = "A" }, fb = { .reader = "B" };

		cr_assert_eq(trace_iter_calls(r, &fa, &a), 0);
		cr_assert_eq(trace_iter_calls(r, &fb, &b), 0);
		cr_assert_eq(trace_iter_call_next(a, &ra), 1);
		cr_assert_eq(trace_iter_call_next(b, &rb), 1);
		cr_assert_eq(ra.id, 1);
		cr_assert_eq(rb.id, 6);
		trace_iter_end(a);
		trace_iter_end(b);
	}
	trace_reader_close(r);
}

Test(reader, sessions_and_transactions)
{
	struct trace_reader *r = NULL;
	struct trace_iter *it = NULL;
	struct trace_session s;
	struct trace_transaction t;
	struct trace_filter f;

	scenario();
	cr_assert_eq(trace_reader_open(&r, th_trace, NULL, 0), 0);
	cr_assert_eq(trace_iter_sessions(r, NULL, &it), 0);
	cr_assert_eq(trace_iter_session_next(it, &s), 1);
	cr_assert_eq(s.id, 1);
	cr_assert_eq(s.pid, getpid());
	cr_assert_eq(s.card, 1);
	cr_assert_str_eq(s.reader, "A");
	cr_assert(strstr(s.process, "test_reader") != NULL, "%s", s.process);
	cr_assert_eq(s.share_mode, 2);
	cr_assert_eq(s.active_protocol, 2);
	cr_assert_eq(s.start_ns, t_base + 10);
	cr_assert_eq(s.end_ns, t_base + 65);
	cr_assert_eq(s.disposition, 1);
	cr_assert_eq(s.n_apdus, 2);
	cr_assert_eq(s.n_transactions, 1);
	cr_assert_eq(s.n_markers, 1);
	cr_assert_eq(trace_iter_session_next(it, &s), 1);
	cr_assert_eq(s.id, 6);
	cr_assert_str_eq(s.reader, "B");
	cr_assert_eq(s.end_ns, 0);
	cr_assert_eq(s.disposition, -1);
	cr_assert_eq(s.n_apdus, 1);
	cr_assert_eq(trace_iter_session_next(it, &s), 1);
	cr_assert_eq(s.id, 9);
	cr_assert_eq(s.n_apdus, 1);
	cr_assert_eq(s.n_markers, 0);
	cr_assert_eq(s.end_ns, t_base + 95);
	cr_assert_eq(trace_iter_session_next(it, &s), 0);
	trace_iter_end(it);

	f = (struct trace_filter){ .reader = "B" };
	cr_assert_eq(trace_iter_sessions(r, &f, &it), 0);
	cr_assert_eq(trace_iter_session_next(it, &s), 1);
	cr_assert_eq(s.id, 6);
	cr_assert_eq(trace_iter_session_next(it, &s), 0);
	trace_iter_end(it);

	cr_assert_eq(trace_iter_transactions(r, NULL, &it), 0);
	cr_assert_eq(trace_iter_transaction_next(it, &t), 1);
	cr_assert_eq(t.id, 2);
	cr_assert_eq(t.session, 1);
	cr_assert_eq(t.card, 1);
	cr_assert_eq(t.start_ns, t_base + 20);
	cr_assert_eq(t.end_ns, t_base + 55);
	cr_assert_eq(t.disposition, 1);
	cr_assert_eq(trace_iter_transaction_next(it, &t), 0);
	trace_iter_end(it);

	f = (struct trace_filter){ .session = 9 };
	cr_assert_eq(trace_iter_transactions(r, &f, &it), 0);
	cr_assert_eq(trace_iter_transaction_next(it, &t), 0);
	trace_iter_end(it);

	f = (struct trace_filter){ .session = 1 };
	{
		struct trace_marker_row mr;

		cr_assert_eq(trace_iter_markers(r, &f, &it), 0);
		cr_assert_eq(trace_iter_marker_next(it, &mr), 1);
		cr_assert_eq(mr.marker.event, 1);
		cr_assert_eq(trace_iter_marker_next(it, &mr), 0);
		trace_iter_end(it);
	}
	trace_reader_close(r);
}

Test(reader, apdus_view_names)
{
	scenario();
	cr_assert_eq(th_sql_int(th_trace, "SELECT count(*) FROM apdus"), 4);
	cr_assert_eq(th_sql_int(th_trace, "SELECT count(*) FROM apdus WHERE reader = 'A'"), 3);
	cr_assert_str_eq(th_sql_text(th_trace, "SELECT reader FROM apdus WHERE call_id = 11"), "B");
	cr_assert(strstr(th_sql_text(th_trace, "SELECT process FROM apdus LIMIT 1"), "test_reader"));
	cr_assert_str_eq(th_sql_text(th_trace, "SELECT hex(command) || '/' || hex(response)"
				      " FROM apdus WHERE call_id = 3"), "00B0000010/6A82");
	cr_assert_eq(th_sql_int(th_trace, "SELECT protocol FROM apdus WHERE call_id = 3"), 2);
	cr_assert_str_eq(th_sql_text(th_trace, "SELECT function FROM calls_v WHERE id = 2"),
			 "SCardBeginTransaction");
}

/* Bad arguments give errors, not crashes. */
Test(reader, misuse)
{
	struct trace_reader *r = NULL;
	struct trace_iter *it = NULL;
	struct trace_call_row row;
	struct trace_session s;

	scenario();
	cr_assert_eq(trace_reader_open(&r, th_trace, NULL, 0), 0);
	cr_assert_lt(trace_iter_calls(NULL, NULL, &it), 0);
	cr_assert_eq(trace_iter_sessions(r, NULL, &it), 0);
	cr_assert_lt(trace_iter_call_next(it, &row), 0, "wrong iterator kind");
	cr_assert_eq(trace_iter_session_next(it, &s), 1);
	trace_iter_end(it);
	trace_iter_end(NULL);
	trace_reader_close(r);
	trace_reader_close(NULL);
}

/* Streaming 1M calls: memory after 10% and at the end are the same. */
Test(reader, streaming_constant_memory)
{
	struct trace_reader *r = NULL;
	struct trace_iter *it = NULL;
	struct trace_call_row row;
	sqlite3 *db = NULL;
	int64_t n = 0, total = 1000000;
	long at10 = 0, end;

	/* Fill quickly in SQL, as the writer would have. */
	{
		struct trace_writer *w = NULL;

		cr_assert_eq(trace_writer_open(&w, th_trace, NULL), 0);
		trace_writer_close(w);
	}
	cr_assert_eq(sqlite3_open(th_trace, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db,
		"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000)"
		" INSERT INTO calls(pid, tid, fn, t_enter_ns, t_return_ns, rv, card, data_in, data_out)"
		" SELECT 1, 1, 12, i * 1000, i * 1000 + 10, 0, i / 100, randomblob(16), x'9000' FROM n",
		NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	cr_assert_eq(trace_reader_open(&r, th_trace, NULL, 0), 0);
	cr_assert_eq(trace_iter_calls(r, NULL, &it), 0);
	while (trace_iter_call_next(it, &row) == 1) {
		if (++n == total / 10)
			at10 = rss_kib();
	}
	end = rss_kib();
	trace_iter_end(it);
	trace_reader_close(r);
	cr_assert_eq(n, total);
	cr_log_info("RSS at 10%%: %ld KiB, at the end: %ld KiB", at10, end);
	/* SQLite's page cache is bounded (2 MiB by default); allow for it. */
	cr_assert_leq(end - at10, 4096, "memory grew by %ld KiB while streaming", end - at10);
}
