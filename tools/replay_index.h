/*
 * replay_index.h — the recorded card of `pcsctap replay`: the exchanges
 * (command APDU, response) picked from a trace, indexed on disk, and the
 * matching rule that answers a new command from them.
 *
 * Memory stays constant in the trace size: the trace is streamed once into
 * an unlinked temporary file of records (in recorded order) plus an
 * open-addressing hash table of command digests in a second one, both read
 * and written with pread/pwrite, never mapped.
 *
 * The matching rule (docs: pcsctap.1, REPLAY):
 *   - a command's context is the sequence of commands sent since the last
 *     SELECT (the SELECT included) or since the card was powered or reset;
 *   - PIN commands (VERIFY, CHANGE REFERENCE DATA, RESET RETRY COUNTER)
 *     are compared redacted, so any PIN of the same length matches;
 *   - in context: the recorded exchanges with the same context and
 *     command answer in recorded order, the last one again once used up;
 *   - out of context: failing that, the recorded exchanges with the same
 *     command anywhere, in recorded order, the last one again;
 *   - strict order (REPLAY_STRICT): only the next recorded exchange
 *     answers, and only when its command is the one sent.
 */
#pragma once

#include "trace.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Errors of the build beyond errno values and TRACE_E_*. */
enum replay_error {
	REPLAY_E_READERS = -6001,	/* APDUs of several readers and no reader chosen */
	REPLAY_E_NO_APDUS = -6002,	/* nothing to replay in the selection */
	REPLAY_E_NO_SESSION = -6003,	/* --session names no session of the trace */
};

/* Which view of a trace the exchanges come from. */
enum replay_view {
	REPLAY_VIEW_AUTO = 0,	/* client if the selection has APDUs there, else card */
	REPLAY_VIEW_CLIENT,	/* the shim's calls: SCardTransmit data_in/data_out */
	REPLAY_VIEW_CARD,	/* the driver's wire rows: APDU sent/received */
};

struct replay_select {
	enum replay_view view;
	int64_t pid;		/* 0: any */
	int64_t session;	/* 0: any (client view only) */
	const char *reader;	/* NULL: any, but only one reader may have APDUs */
	const char *tmpdir;	/* where the index files live (unlinked) */
};

/* What the build found. */
struct replay_info {
	enum replay_view view;	/* the view used */
	uint64_t n_exchanges;
	uint64_t n_too_long;	/* responses longer than a vpcd frame: left out */
	uint8_t atr[33];	/* the first ATR of the selection */
	size_t atr_len;		/* 0 when the trace holds none */
	char reader[256];	/* the reader the APDUs were sent to ("" unknown) */
	uint32_t protocols;	/* client view: the active protocols of its connects */
};

enum replay_match {
	REPLAY_UNMATCHED = 0,
	REPLAY_IN_CONTEXT,
	REPLAY_OUT_OF_CONTEXT,
	REPLAY_IN_ORDER,	/* strict mode */
};

struct replay_index;

/**
 * Read the selected exchanges of @p r into a new index.
 * @param[out] err a one-line reason on failure
 * @retval 0 success
 * @retval <0 negative errno, TRACE_E_* (reading the trace) or REPLAY_E_*
 */
int replay_index_build(struct replay_index **out, struct trace_reader *r,
		       const struct replay_select *sel, struct replay_info *info,
		       char *err, size_t errlen);
void replay_index_free(struct replay_index *idx);

/* Answer only the next recorded exchange, in recorded order. */
void replay_index_set_strict(struct replay_index *idx, bool strict);

/* The card was powered up, reset or powered down: contexts start again. */
void replay_index_power(struct replay_index *idx);

/**
 * Answer @p cmd by the matching rule.
 * @param[out] resp the recorded response (up to 65538 bytes, see
 *             REPLAY_RESPONSE_MAX); untouched when unmatched
 * @param[out] id the trace row id of the exchange that answered
 * @retval enum replay_match, or a negative errno (I/O on the index)
 */
#define REPLAY_RESPONSE_MAX 65538
int replay_index_answer(struct replay_index *idx, const uint8_t *cmd, size_t len,
			uint8_t *resp, size_t *resp_len, int64_t *id);

struct replay_counts {
	uint64_t in_context;
	uint64_t out_of_context;
	uint64_t in_order;
	uint64_t unmatched;
	uint64_t recorded;
	uint64_t unused;	/* recorded exchanges that never answered */
};
void replay_index_counts(const struct replay_index *idx, struct replay_counts *c);

/* One recorded exchange, in recorded order (for comparisons). */
struct replay_exchange {
	int64_t id;
	uint8_t *cmd;		/* PIN data redacted; valid until the next call */
	size_t cmd_len;
	uint8_t *resp;
	size_t resp_len;
};

/**
 * The exchange after @p *cursor (0: the first), advancing it.
 * @retval 1 an exchange, 0 the end, <0 negative errno
 */
int replay_index_next(struct replay_index *idx, uint64_t *cursor, struct replay_exchange *ex);

/**
 * A command as the index compares it: a heap copy with PIN data redacted
 * (free() it).  @retval 0, or -ENOMEM
 */
int replay_normalize(const uint8_t *cmd, size_t len, uint8_t **out);
