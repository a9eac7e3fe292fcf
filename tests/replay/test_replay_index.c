/*
 * test_replay_index.c — the matching rule of `pcsctap replay` on traces
 * written with the trace writer: answers in context, out of context,
 * repeats in recorded order, power-ups, PINs, strict order, selections.
 */
#include "replay_index.h"
#include "hexutil.h"
#include "trace.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define READER "Replay Test 00 00"
#define OTHER "Replay Test 00 01"

struct step {
	const char *reader;	/* Connect: the reader; NULL: a Transmit */
	const char *cmd;
	const char *resp;
	int redacted;
};

/* The recorded session: two files behind two SELECTs, a challenge twice, a PIN. */
static const struct step session[] = {
	{ READER, NULL, NULL, 0 },
	{ NULL, "00A4040002AAAA", "9000", 0 },
	{ NULL, "00B0000002", "11119000", 0 },
	{ NULL, "00B0000002", "22229000", 0 },
	{ NULL, "00A4040002BBBB", "9000", 0 },
	{ NULL, "00B0000002", "33339000", 0 },
	{ NULL, "0084000008", "01010101010101019000", 0 },
	{ NULL, "0084000008", "02020202020202029000", 0 },
	{ NULL, "0020008104FFFFFFFF", "9000", 1 },
};

static char dir[] = "/tmp/test-replay.XXXXXX";
static char path[64];
static struct trace_reader *reader;
static struct replay_index *idx;
static struct replay_info info;

static void
write_trace(const struct step *steps, size_t n)
{
	struct trace_writer *w;
	uint8_t in[64], out[64];
	int64_t t = 1000;
	uint64_t card = 0;

	cr_assert(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/t.trace", dir);
	cr_assert_eq(trace_writer_open(&w, path, &(struct trace_writer_options){ .role = "test" }), 0);
	for (size_t i = 0; i < n; i++) {
		struct trace_call c = { .tid = 1, .t_enter_ns = t, .t_return_ns = t + 10, .wall_ns = t };

		if (steps[i].reader) {
			c.fn = TRACE_FN_SCardConnect;
			c.reader = steps[i].reader;
			c.card = ++card;
			c.active_protocol = 2;
			c.present = TRACE_HAS_CARD | TRACE_HAS_ACTIVE_PROTOCOL;
		} else {
			c.fn = TRACE_FN_SCardTransmit;
			c.card = card;
			c.present = TRACE_HAS_CARD;
			c.in = (struct trace_blob){ in, (size_t)hex_decode(steps[i].cmd, in, sizeof(in)) };
			c.out = (struct trace_blob){ out, (size_t)hex_decode(steps[i].resp, out, sizeof(out)) };
			c.redacted = steps[i].redacted;
		}
		trace_write_call(w, &c);
		t += 100;
	}
	cr_assert_eq(trace_writer_flush(w, 10000), 0);
	trace_writer_close(w);
	cr_assert_eq(trace_reader_open(&reader, path, NULL, 0), 0);
}

static int
build(const struct replay_select *sel)
{
	char err[256];

	return replay_index_build(&idx, reader, sel, &info, err, sizeof(err));
}

static void
setup(void)
{
	write_trace(session, sizeof(session) / sizeof(session[0]));
	cr_assert_eq(build(&(struct replay_select){ .tmpdir = dir }), 0);
}

static void
teardown(void)
{
	static const char *const suffixes[] = { "", "-wal", "-shm" };
	char p[80];

	replay_index_free(idx);
	idx = NULL;
	if (reader)
		trace_reader_close(reader);
	reader = NULL;
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", path, suffixes[i]);
		unlink(p);
	}
	rmdir(dir);
	strcpy(dir, "/tmp/test-replay.XXXXXX");
}

/* Send @p cmd; expect the match kind and, when answered, @p want. */
static void
expect(const char *cmd, int match, const char *want)
{
	uint8_t c[64], resp[REPLAY_RESPONSE_MAX];
	char got[2 * 64 + 1];
	size_t resp_len = 0;
	int64_t id = 0;
	ssize_t n = hex_decode(cmd, c, sizeof(c));
	int rc = replay_index_answer(idx, c, (size_t)n, resp, &resp_len, &id);

	cr_assert_eq(rc, match, "%s: match %d, want %d", cmd, rc, match);
	if (match == REPLAY_UNMATCHED)
		return;
	hex_encode(resp, resp_len, got);
	cr_assert_str_eq(got, want, "%s: answered %s, want %s", cmd, got, want);
	cr_assert_gt(id, 0);
}

TestSuite(replay_index, .init = setup, .fini = teardown);

Test(replay_index, info_of_the_selection)
{
	cr_assert_eq(info.n_exchanges, 8);
	cr_assert_str_eq(info.reader, READER);
	cr_assert_eq(info.view, REPLAY_VIEW_CLIENT);
	cr_assert_eq(info.protocols, 2);
	cr_assert_eq(info.atr_len, 0, "this trace holds no ATR");
}

Test(replay_index, same_sequence_all_in_context)
{
	struct replay_counts c;

	for (size_t i = 1; i < sizeof(session) / sizeof(session[0]); i++)
		expect(session[i].cmd, REPLAY_IN_CONTEXT, session[i].resp);
	replay_index_counts(idx, &c);
	cr_assert_eq(c.in_context, 8);
	cr_assert_eq(c.unused, 0);
	cr_assert_eq(c.unmatched, 0);
}

/* One command sent and what must answer it; cmd NULL: a power-up. */
struct sent {
	const char *cmd;
	int match;
	const char *resp;
};

#define POWER_UP { NULL, 0, NULL }
#define PLAY(table) play(table, sizeof(table) / sizeof(table[0]))

static void
play(const struct sent *table, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (table[i].cmd)
			expect(table[i].cmd, table[i].match, table[i].resp);
		else
			replay_index_power(idx);
	}
}

Test(replay_index, the_same_command_answers_by_its_context)
{
	static const struct sent sent[] = {
		/* READ BINARY after SELECT BBBB is 3333, not the first READ's 1111. */
		{ "00A4040002BBBB", REPLAY_OUT_OF_CONTEXT, "9000" },
		{ "00B0000002", REPLAY_IN_CONTEXT, "33339000" },
		{ "00A4040002AAAA", REPLAY_OUT_OF_CONTEXT, "9000" },
		{ "00B0000002", REPLAY_IN_CONTEXT, "11119000" },
		{ "00B0000002", REPLAY_IN_CONTEXT, "22229000" },
		/* Never recorded in this context: the READs anywhere, in order. */
		{ "00B0000002", REPLAY_OUT_OF_CONTEXT, "11119000" },
		{ "00B0000002", REPLAY_OUT_OF_CONTEXT, "22229000" },
		{ "00B0000002", REPLAY_OUT_OF_CONTEXT, "33339000" },
		/* Used up: the last one again. */
		{ "00B0000002", REPLAY_OUT_OF_CONTEXT, "33339000" },
	};

	PLAY(sent);
}

Test(replay_index, a_power_up_starts_the_context_again)
{
	static const struct sent sent[] = {
		{ "00A4040002AAAA", REPLAY_IN_CONTEXT, "9000" },
		{ "00B0000002", REPLAY_IN_CONTEXT, "11119000" },
		POWER_UP,
		/* A second run of the same client gets the same answers. */
		{ "00A4040002AAAA", REPLAY_IN_CONTEXT, "9000" },
		{ "00B0000002", REPLAY_IN_CONTEXT, "11119000" },
		{ "00B0000002", REPLAY_IN_CONTEXT, "22229000" },
	};

	PLAY(sent);
}

Test(replay_index, repeated_commands_in_recorded_order)
{
	static const struct sent sent[] = {
		{ "0084000008", REPLAY_OUT_OF_CONTEXT, "01010101010101019000" },
		{ "0084000008", REPLAY_OUT_OF_CONTEXT, "02020202020202029000" },
		{ "0084000008", REPLAY_OUT_OF_CONTEXT, "02020202020202029000" },
	};

	PLAY(sent);
}

Test(replay_index, any_pin_of_the_recorded_length)
{
	static const struct sent sent[] = {
		{ "00200081043132333435", REPLAY_UNMATCHED, NULL },	/* Lc 4, 5 data bytes */
		{ "002000810439393939", REPLAY_OUT_OF_CONTEXT, "9000" },
		{ "00200081053132333435", REPLAY_UNMATCHED, NULL },
		{ "002000810400000000", REPLAY_OUT_OF_CONTEXT, "9000" },
	};

	PLAY(sent);
}

Test(replay_index, unknown_commands_are_counted)
{
	static const struct sent sent[] = {
		{ "00DEAD0000", REPLAY_UNMATCHED, NULL },
		{ "00", REPLAY_UNMATCHED, NULL },
		{ "00A4040002AAAA", REPLAY_OUT_OF_CONTEXT, "9000" },
	};
	struct replay_counts c;

	PLAY(sent);
	replay_index_counts(idx, &c);
	cr_assert_eq(c.unmatched, 2);
	cr_assert_eq(c.out_of_context, 1);
	cr_assert_eq(c.recorded, 8);
	cr_assert_eq(c.unused, 7);
}

Test(replay_index, strict_order)
{
	static const struct sent sent[] = {
		{ "00A4040002AAAA", REPLAY_IN_ORDER, "9000" },
		{ "00A4040002BBBB", REPLAY_UNMATCHED, NULL },	/* not next: no advance */
		{ "00B0000002", REPLAY_IN_ORDER, "11119000" },
		{ "00B0000002", REPLAY_IN_ORDER, "22229000" },
		POWER_UP,					/* order is kept across it */
		{ "00A4040002BBBB", REPLAY_IN_ORDER, "9000" },
		{ "00B0000002", REPLAY_IN_ORDER, "33339000" },
		{ "0084000008", REPLAY_IN_ORDER, "01010101010101019000" },
		{ "0084000008", REPLAY_IN_ORDER, "02020202020202029000" },
		{ "00200081040A0B0C0D", REPLAY_IN_ORDER, "9000" },
		{ "00A4040002AAAA", REPLAY_UNMATCHED, NULL },	/* the end */
	};

	replay_index_set_strict(idx, true);
	PLAY(sent);
}

Test(replay_index, the_exchanges_in_recorded_order)
{
	struct replay_exchange ex;
	uint64_t cursor = 0;
	char hex[2 * 64 + 1];
	size_t n = 1;

	while (replay_index_next(idx, &cursor, &ex) == 1) {
		cr_assert_str_eq(hex_encode(ex.cmd, ex.cmd_len, hex), session[n].cmd);
		cr_assert_str_eq(hex_encode(ex.resp, ex.resp_len, hex), session[n].resp);
		n++;
	}
	cr_assert_eq(n, sizeof(session) / sizeof(session[0]));
}

static const struct step two_readers[] = {
	{ READER, NULL, NULL, 0 },
	{ NULL, "00A4040002AAAA", "9000", 0 },
	{ OTHER, NULL, NULL, 0 },
	{ NULL, "00A4040002AAAA", "6A82", 0 },
};

static void
setup_two(void)
{
	write_trace(two_readers, sizeof(two_readers) / sizeof(two_readers[0]));
}

Test(replay_index_select, two_readers_need_a_choice, .init = setup_two, .fini = teardown)
{
	cr_assert_eq(build(&(struct replay_select){ .tmpdir = dir }), REPLAY_E_READERS);
	cr_assert_eq(build(&(struct replay_select){ .tmpdir = dir, .reader = OTHER }), 0);
	cr_assert_eq(info.n_exchanges, 1);
	expect("00A4040002AAAA", REPLAY_IN_CONTEXT, "6A82");
}

Test(replay_index_select, nothing_selected, .init = setup_two, .fini = teardown)
{
	cr_assert_eq(build(&(struct replay_select){ .tmpdir = dir, .pid = 1 }), REPLAY_E_NO_APDUS);
	cr_assert_eq(build(&(struct replay_select){ .tmpdir = dir, .session = 999 }), REPLAY_E_NO_SESSION);
	cr_assert_eq(build(&(struct replay_select){ .tmpdir = dir, .view = REPLAY_VIEW_CARD }),
		     REPLAY_E_NO_APDUS, "the shim's trace has no wire rows");
	cr_assert_eq(build(&(struct replay_select){ .tmpdir = "/nonexistent" }), -ENOENT);
}
