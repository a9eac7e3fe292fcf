/*
 * recover.h — importing the journals that dead processes left beside a
 * trace (see journal.h), exactly once whoever else recovers at the same
 * time: the import position lives in the trace's journals table and is
 * re-read inside each import transaction (BEGIN IMMEDIATE serialises the
 * importers).  A journal is removed once it is wholly in the trace; its
 * journals row stays, so a late second recoverer imports nothing.
 */
#pragma once

#include "ingest.h"

/* How the importer gets and leaves its write transactions. */
struct recover_ops {
	/* BEGIN IMMEDIATE on in->db (which it may reopen): SQLITE_OK or an error. */
	int (*begin)(void *ctx);
	/* Between two transactions (a chance to yield). */
	void (*between)(void *ctx);
	void *ctx;
};

struct recover_stats {
	unsigned journals;	/* journals wholly imported and removed */
	uint64_t events;	/* events imported */
	unsigned live;		/* journals of live processes, left alone */
	unsigned left;		/* journals left alone for another reason (warned) */
	unsigned claimed;	/* journals another recoverer was importing, left to it */
};

/*
 * Import every dead journal of @p trace_path except the one with id
 * @p own_id (0: none).  Warnings go through trace_warnf, one per journal
 * left alone.
 * @retval SQLITE_OK, or the SQLite error that stopped it (journals not
 *         yet imported stay for the next opener)
 */
int recover_journals(struct ingest *in, const struct recover_ops *ops,
		     const char *trace_path, uint64_t own_id, struct recover_stats *stats);

/* Journals of ended processes beside @p trace_path (and those this user
 * cannot read), and the bytes of events they hold. */
void recover_pending(const char *trace_path, unsigned *journals, uint64_t *bytes);
