/*
 * ingest.c — journal records into SQL rows (see ingest.h).
 *
 * Calls are inserted INGEST_CALL_ROWS rows per INSERT when that many
 * plain calls (no reader states) follow each other: the statement's
 * set-up is paid once and its cursors stay at the right edge of the table
 * and indexes.  Text and blobs are bound SQLITE_STATIC straight from the
 * journal mapping, which stays put until the statement has run.
 */
#include "ingest.h"
#include "calls.h"
#include "sys.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(CALL_COLS <= INGEST_CALL_COLS_MAX, "a bit per column of calls");

static const char *const stmt_sql[IS_COUNT] = {
	[IS_CALL] = NULL,	/* built by calls_sql() */
	[IS_CALLS] = NULL,
	[IS_STATE] = "INSERT INTO reader_states(call_id, idx, reader, current_state,"
		" event_state, atr) VALUES(?,?,?,?,?,?)",
	[IS_MARKER] = "INSERT INTO markers(pid, tid, t_ns, wall_ns, card, reader, event,"
		" seq, body, rv) VALUES(?,?,?,?,?,?,?,?,?,?)",
	[IS_WIRE] = "INSERT INTO wire(pid, t_ns, t_end_ns, wall_ns, reader, kind, sent,"
		" received, detail) VALUES(?,?,?,?,?,?,?,?,?)",
	[IS_DROP] = "INSERT INTO drops(pid, wall_ns, count) VALUES(?,?,?)",
	[IS_PROCESS] = "INSERT INTO processes(pid, ppid, exe, name, argv, role, host,"
		" start_wall_ns) VALUES(?,?,?,?,?,?,?,?)",
	[IS_JOURNAL_GET] = "SELECT imported, dropped FROM journals WHERE id = ?",
	[IS_JOURNAL_SET] = "INSERT INTO journals(id, pid, imported, dropped, state)"
		" VALUES(?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET imported = excluded.imported,"
		" dropped = excluded.dropped, state = excluded.state",
	[IS_BEGIN] = "BEGIN IMMEDIATE",
	[IS_COMMIT] = "COMMIT",
	[IS_ROLLBACK] = "ROLLBACK",
	[IS_DATA_VERSION] = "PRAGMA data_version",
};

/*
 * "INSERT OR FAIL INTO calls(<calls.def>) VALUES(?,...)" with @p rows rows.
 * OR FAIL: a constraint that fails (none can: NOT NULL columns are always
 * bound) would leave the rows before it in place instead of undoing them,
 * so SQLite keeps no statement journal (the pages each multi-row INSERT
 * touches copied once more); a failed statement rolls back the whole
 * transaction here anyway (import_journal, recover.c).
 */
static char *
calls_sql(int rows)
{
	size_t len = 64 + (size_t)rows * (CALL_COLS * 2 + 3);
	char *s, *p;

	for (int i = 0; i < CALL_COLS; i++)
		len += strlen(call_cols[i].name) + 2;
	s = malloc(len);
	if (!s)
		return NULL;
	p = stpcpy(s, "INSERT OR FAIL INTO calls(");
	for (int i = 0; i < CALL_COLS; i++)
		p = stpcpy(stpcpy(p, i ? ", " : ""), call_cols[i].name);
	p = stpcpy(p, ") VALUES");
	for (int r = 0; r < rows; r++) {
		p = stpcpy(p, r ? ",(" : "(");
		for (int i = 0; i < CALL_COLS; i++)
			p = stpcpy(p, i ? ",?" : "?");
		p = stpcpy(p, ")");
	}
	return s;
}

int
ingest_prepare(struct ingest *in, sqlite3 *db)
{
	char *one = calls_sql(1), *many = calls_sql(INGEST_CALL_ROWS);
	int rc = one && many ? SQLITE_OK : SQLITE_NOMEM;

	in->db = db;
	memset(in->call_bound, 0, sizeof(in->call_bound));
	for (int i = 0; i < IS_COUNT && rc == SQLITE_OK; i++) {
		const char *sql = i == IS_CALL ? one : i == IS_CALLS ? many : stmt_sql[i];

		if (!in->st[i])
			rc = trace_sys.sqlite3_prepare_v2(db, sql, -1, &in->st[i], NULL);
	}
	free(one);
	free(many);
	return rc;
}

void
ingest_finalize(struct ingest *in)
{
	for (int i = 0; i < IS_COUNT; i++) {
		sqlite3_finalize(in->st[i]);
		in->st[i] = NULL;
	}
	/* A statement prepared afresh has every parameter NULL. */
	memset(in->call_bound, 0, sizeof(in->call_bound));
	free(in->states);
	in->states = NULL;
	in->states_cap = 0;
	in->db = NULL;
}

int
ingest_run(struct ingest *in, int stmt)
{
	sqlite3_stmt *st = in->st[stmt];
	int rc = trace_sys.sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

static void
bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

static void
bind_blob(sqlite3_stmt *st, int i, struct trace_blob b)
{
	if (b.data)
		sqlite3_bind_blob64(st, i, b.len ? (const void *)b.data : "", b.len, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

/*
 * Bind one call as the row whose first parameter is @p base + 1, column by
 * column as calls.def has them.  A column is bound NULL only if it held a
 * value in the previous row bound there (*@p bound: bit i for column i),
 * and an integer only if it differs from the one bound there (@p val):
 * a steady stream of one function binds no NULLs and few integers.  Text
 * and blobs point into the journal, so they are bound every time.
 */
static void
bind_call(struct ingest *in, sqlite3_stmt *st, int base, uint32_t *bound, int64_t *val,
	  const struct trace_call *c)
{
	uint32_t now = 0;

	for (int i = 0; i < CALL_COLS; i++) {
		const char *f = (const char *)c + call_cols[i].off;
		int idx = base + i + 1;
		int present = 1;
		int is_int = 1;
		int64_t v = 0;

		switch (call_cols[i].kind) {
		case CC_PID:
			v = in->pid;
			break;
		case CC_INT:
			v = *(const int *)f;
			break;
		case CC_I64:
			v = *(const int64_t *)f;
			break;
		case CC_OPT:
			present = (c->present & call_cols[i].bit) != 0;
			if (present)
				memcpy(&v, f, sizeof(v));
			break;
		case CC_TEXT:
			is_int = 0;
			present = *(const char *const *)f != NULL;
			if (present)
				sqlite3_bind_text(st, idx, *(const char *const *)f, -1, SQLITE_STATIC);
			break;
		case CC_BLOB:
			is_int = 0;
			present = ((const struct trace_blob *)f)->data != NULL;
			if (present)
				bind_blob(st, idx, *(const struct trace_blob *)f);
			break;
		}
		if (present && is_int && (!(*bound & (1u << i)) || val[i] != v)) {
			sqlite3_bind_int64(st, idx, v);
			val[i] = v;
		}
		if (present)
			now |= 1u << i;
		else if (*bound & (1u << i))
			sqlite3_bind_null(st, idx);
	}
	*bound = now;
}

static int
insert_call(struct ingest *in, const struct trace_call *c)
{
	sqlite3_stmt *st = in->st[IS_CALL];
	int64_t call_id;
	int rc;

	bind_call(in, st, 0, &in->call_bound[0], in->call_val[0], c);
	rc = ingest_run(in, IS_CALL);
	if (rc != SQLITE_OK || !c->n_states)
		goto out;
	call_id = sqlite3_last_insert_rowid(in->db);
	st = in->st[IS_STATE];
	for (size_t i = 0; i < c->n_states && rc == SQLITE_OK; i++) {
		const struct trace_reader_state *s = &c->states[i];

		sqlite3_bind_int64(st, 1, call_id);
		sqlite3_bind_int64(st, 2, (int64_t)i);
		bind_text(st, 3, s->reader);
		sqlite3_bind_int64(st, 4, s->current_state);
		sqlite3_bind_int64(st, 5, s->event_state);
		bind_blob(st, 6, s->atr);
		rc = ingest_run(in, IS_STATE);
	}
out:
	return rc;
}

static int
insert_calls(struct ingest *in, const struct trace_call *calls)
{
	sqlite3_stmt *st = in->st[IS_CALLS];

	for (int r = 0; r < INGEST_CALL_ROWS; r++)
		bind_call(in, st, r * CALL_COLS, &in->call_bound[1 + r], in->call_val[1 + r], &calls[r]);
	return ingest_run(in, IS_CALLS);
}

static int
insert_marker(struct ingest *in, const struct trace_marker *m)
{
	sqlite3_stmt *st = in->st[IS_MARKER];

	sqlite3_bind_int64(st, 1, in->pid);
	sqlite3_bind_int64(st, 2, m->tid);
	sqlite3_bind_int64(st, 3, m->t_ns);
	sqlite3_bind_int64(st, 4, m->wall_ns);
	sqlite3_bind_int64(st, 5, (int64_t)m->card);
	bind_text(st, 6, m->reader);
	sqlite3_bind_int(st, 7, m->event);
	sqlite3_bind_int64(st, 8, m->seq);
	bind_blob(st, 9, m->body);
	sqlite3_bind_int64(st, 10, m->rv);
	return ingest_run(in, IS_MARKER);
}

static int
insert_wire(struct ingest *in, const struct trace_wire *x)
{
	sqlite3_stmt *st = in->st[IS_WIRE];

	sqlite3_bind_int64(st, 1, in->pid);
	sqlite3_bind_int64(st, 2, x->t_ns);
	sqlite3_bind_int64(st, 3, x->t_end_ns);
	sqlite3_bind_int64(st, 4, x->wall_ns);
	bind_text(st, 5, x->reader);
	sqlite3_bind_int(st, 6, x->kind);
	bind_blob(st, 7, x->sent);
	bind_blob(st, 8, x->received);
	bind_text(st, 9, x->detail);
	return ingest_run(in, IS_WIRE);
}

static int
insert_process(struct ingest *in, const struct journal_process *p)
{
	sqlite3_stmt *st = in->st[IS_PROCESS];

	sqlite3_bind_int64(st, 1, in->pid);
	sqlite3_bind_int64(st, 2, p->ppid);
	bind_text(st, 3, p->exe);
	bind_text(st, 4, p->name);
	bind_text(st, 5, p->argv);
	bind_text(st, 6, p->role);
	bind_text(st, 7, p->host);
	sqlite3_bind_int64(st, 8, p->start_wall_ns);
	return ingest_run(in, IS_PROCESS);
}

static int
insert_drop(struct ingest *in, uint64_t count)
{
	sqlite3_stmt *st = in->st[IS_DROP];

	sqlite3_bind_int64(st, 1, in->pid);
	sqlite3_bind_int64(st, 2, trace_wall_ns());
	sqlite3_bind_int64(st, 3, (int64_t)count);
	return ingest_run(in, IS_DROP);
}

static int
insert_event(struct ingest *in, const struct journal_event *ev)
{
	switch (ev->kind) {
	case JR_CALL:
		return insert_call(in, &ev->u.call);
	case JR_MARKER:
		return insert_marker(in, &ev->u.marker);
	case JR_WIRE:
		return insert_wire(in, &ev->u.wire);
	case JR_PROCESS:
		return insert_process(in, &ev->u.process);
	default:
		return SQLITE_OK;
	}
}

int
ingest_mark_get(struct ingest *in, uint64_t id, struct ingest_mark *m, int *found)
{
	sqlite3_stmt *st = in->st[IS_JOURNAL_GET];
	int rc;

	memset(m, 0, sizeof(*m));
	*found = 0;
	sqlite3_bind_int64(st, 1, (int64_t)id);
	rc = trace_sys.sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		m->imported = (uint64_t)sqlite3_column_int64(st, 0);
		m->dropped = (uint64_t)sqlite3_column_int64(st, 1);
		*found = 1;
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
}

int
ingest_mark_set(struct ingest *in, uint64_t id, const struct ingest_mark *m, const char *state)
{
	sqlite3_stmt *st = in->st[IS_JOURNAL_SET];

	sqlite3_bind_int64(st, 1, (int64_t)id);
	sqlite3_bind_int64(st, 2, in->pid);
	sqlite3_bind_int64(st, 3, (int64_t)m->imported);
	sqlite3_bind_int64(st, 4, (int64_t)m->dropped);
	bind_text(st, 5, state);
	return ingest_run(in, IS_JOURNAL_SET);
}

/* A call with no reader-state rows: one row of calls and nothing else. */
static int
plain_call(const struct journal_event *ev)
{
	return ev->kind == JR_CALL && !ev->u.call.n_states;
}

/* The pending plain calls one row at a time (fewer than a full INSERT). */
static int
insert_pending(struct ingest *in, const struct trace_call *pending, int n)
{
	int rc = SQLITE_OK;

	for (int i = 0; i < n && rc == SQLITE_OK; i++)
		rc = insert_call(in, &pending[i]);
	return rc;
}

int
ingest_range(struct ingest *in, const struct journal *j, uint64_t head,
	     uint64_t dropped, int64_t deadline_ns, uint64_t max_events,
	     struct ingest_mark *m, uint64_t *events, int *corrupt)
{
	struct trace_call pending[INGEST_CALL_ROWS];
	struct journal_event ev;
	uint64_t pos = m->imported, next, n = 0, check = 256;
	int n_pending = 0;
	int rc = SQLITE_OK;
	int r;

	*corrupt = 0;
	*events = 0;
	while (pos < head && (!max_events || n + n_pending < max_events)) {
		r = journal_decode(j, pos, head, &ev, &next, &in->states, &in->states_cap);
		if (r == -ENOMEM) {
			rc = SQLITE_NOMEM;
			break;
		}
		if (r < 0) {
			*corrupt = 1;
			break;
		}
		if (r == 1 && plain_call(&ev)) {
			pending[n_pending++] = ev.u.call;
			if (n_pending == INGEST_CALL_ROWS) {
				rc = insert_calls(in, pending);
				if (rc != SQLITE_OK)
					break;
				n += n_pending;
				n_pending = 0;
			}
		} else if (r == 1) {
			rc = insert_pending(in, pending, n_pending);
			if (rc == SQLITE_OK)
				rc = insert_event(in, &ev);
			if (rc != SQLITE_OK)
				break;
			n += n_pending + (ev.kind != JR_PROCESS);
			n_pending = 0;
		}
		pos = next;
		/* Keep each transaction short: durability within the slice. */
		if (deadline_ns && n + n_pending >= check) {
			check = n + n_pending + 256;
			if (trace_mono_ns() >= deadline_ns)
				break;
		}
	}
	if (rc == SQLITE_OK && n_pending) {
		rc = insert_pending(in, pending, n_pending);
		n += n_pending;
	}
	if (rc != SQLITE_OK)
		goto out;
	if (dropped > m->dropped) {
		rc = insert_drop(in, dropped - m->dropped);
		if (rc != SQLITE_OK)
			goto out;
		m->dropped = dropped;
	}
	m->imported = pos;
	*events = n;
out:
	return rc;
}
