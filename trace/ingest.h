/*
 * ingest.h — SQL binding: inserting journal records into the trace, and
 * the journals table that makes every import exactly-once.  Used by the
 * live writer (writer.c) and by recovery (recover.c) alike: whoever
 * imports a range of a journal updates that journal's row in the same
 * transaction as the rows it inserts.
 */
#pragma once

#include "journal.h"

#include <sqlite3.h>
#include <stdint.h>

/* Calls inserted by one multi-row INSERT. */
#define INGEST_CALL_ROWS 32
/* Columns of calls at most (a bit each in a uint32_t). */
#define INGEST_CALL_COLS_MAX 32

enum ingest_stmt {
	IS_CALL,
	IS_CALLS,		/* INGEST_CALL_ROWS calls at once */
	IS_STATE,
	IS_MARKER,
	IS_WIRE,
	IS_DROP,
	IS_PROCESS,
	IS_JOURNAL_GET,
	IS_JOURNAL_SET,
	IS_BEGIN,
	IS_COMMIT,
	IS_ROLLBACK,
	IS_DATA_VERSION,
	IS_COUNT,
};

struct ingest {
	sqlite3 *db;
	sqlite3_stmt *st[IS_COUNT];
	/* Per row of IS_CALL (0) and IS_CALLS (1..): the columns currently
	 * bound to a value, so that only those that become absent are bound
	 * NULL. */
	uint32_t call_bound[1 + INGEST_CALL_ROWS];
	/* The integers bound there (where call_bound says so): a value that
	 * does not change from row to row (pid, fn, card, rv, ...) is not
	 * bound again. */
	int64_t call_val[1 + INGEST_CALL_ROWS][INGEST_CALL_COLS_MAX];
	int64_t pid;		/* the process whose events are inserted */
	struct trace_reader_state *states;	/* decoding scratch */
	size_t states_cap;
};

/* The state of one journal's import, as the journals table has it. */
struct ingest_mark {
	uint64_t imported;	/* logical position: everything before is in the trace */
	uint64_t dropped;	/* drops already written as a drops row */
};

int ingest_prepare(struct ingest *in, sqlite3 *db);
void ingest_finalize(struct ingest *in);

/* Step a statement and reset it: SQLITE_OK, or the error. */
int ingest_run(struct ingest *in, int stmt);

/* The journals row of @p id; *found 0 (and @p m zero) when there is none. */
int ingest_mark_get(struct ingest *in, uint64_t id, struct ingest_mark *m, int *found);
/* @p state: NULL while live, "imported" once the file is gone, or why the
 * import stopped (a damaged record). */
int ingest_mark_set(struct ingest *in, uint64_t id, const struct ingest_mark *m,
		    const char *state);

/**
 * Insert the records of @p j from @p m->imported up to @p head (or until
 * @p deadline_ns, checked now and then, 0: no deadline; or @p max_events,
 * 0: no limit), and a drops row
 * for dropped events beyond @p m->dropped.  @p m is advanced to what was
 * inserted; the caller writes it with ingest_mark_set() in the same
 * transaction.
 * @param[out] events how many events were inserted
 * @param[out] corrupt set when a damaged record stopped the import there
 * @retval SQLITE_OK or an SQLite error (the transaction must be rolled back)
 */
int ingest_range(struct ingest *in, const struct journal *j, uint64_t head,
		 uint64_t dropped, int64_t deadline_ns, uint64_t max_events,
		 struct ingest_mark *m, uint64_t *events, int *corrupt);
