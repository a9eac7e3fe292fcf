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
#include "sys.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CALL_COLS 24
#define CALLS_INSERT "INSERT INTO calls(pid, tid, fn, t_enter_ns, t_return_ns, wall_ns, rv," \
	" context, card, reader, share_mode, preferred_protocols, active_protocol," \
	" disposition, scope, timeout, code, state, send_pci, recv_pci," \
	" data_in, data_out, redacted, extra) VALUES"
#define CALLS_ROW "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"

static const char *const stmt_sql[IS_COUNT] = {
	[IS_CALL] = CALLS_INSERT CALLS_ROW,
	[IS_CALLS] = NULL,	/* built by calls_sql() */
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

/* CALLS_INSERT, then INGEST_CALL_ROWS times CALLS_ROW separated by commas. */
static char *
calls_sql(void)
{
	char *s = malloc(sizeof(CALLS_INSERT) + INGEST_CALL_ROWS * sizeof(CALLS_ROW));
	char *p = s;

	if (!s)
		return NULL;
	p = stpcpy(p, CALLS_INSERT);
	for (int r = 0; r < INGEST_CALL_ROWS; r++)
		p = stpcpy(stpcpy(p, r ? "," : ""), CALLS_ROW);
	return s;
}

int
ingest_prepare(struct ingest *in, sqlite3 *db)
{
	char *many = calls_sql();
	int rc = many ? SQLITE_OK : SQLITE_NOMEM;

	in->db = db;
	memset(in->call_bound, 0, sizeof(in->call_bound));
	for (int i = 0; i < IS_COUNT && rc == SQLITE_OK; i++) {
		if (!in->st[i])
			rc = trace_sys.sqlite3_prepare_v2(db, i == IS_CALLS ? many : stmt_sql[i],
							  -1, &in->st[i], NULL);
	}
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

/* Bits of call_bound beyond enum trace_call_field: the text/blob columns. */
enum call_bound {
	BOUND_READER = 1u << 24,
	BOUND_IN = 1u << 25,
	BOUND_OUT = 1u << 26,
	BOUND_EXTRA = 1u << 27,
};

/*
 * Bind one call as the row whose first parameter is @p base + 1.  A column
 * is bound NULL only if it held a value in the previous row bound there: a
 * steady stream of one function binds no NULLs at all.
 */
static void
bind_call(struct ingest *in, sqlite3_stmt *st, int base, uint32_t *bound,
	  const struct trace_call *c)
{
	uint32_t now = c->present & 0xfff;
	uint32_t stale;

	if (c->reader)
		now |= BOUND_READER;
	if (c->in.data)
		now |= BOUND_IN;
	if (c->out.data)
		now |= BOUND_OUT;
	if (c->extra)
		now |= BOUND_EXTRA;
	stale = *bound & ~now;
	*bound = now;

	sqlite3_bind_int64(st, base + 1, in->pid);
	sqlite3_bind_int64(st, base + 2, c->tid);
	sqlite3_bind_int(st, base + 3, c->fn);
	sqlite3_bind_int64(st, base + 4, c->t_enter_ns);
	sqlite3_bind_int64(st, base + 5, c->t_return_ns);
	sqlite3_bind_int64(st, base + 6, c->wall_ns);
	sqlite3_bind_int64(st, base + 7, c->rv);
	sqlite3_bind_int(st, base + 23, c->redacted ? 1 : 0);
	if (now & TRACE_HAS_CONTEXT)
		sqlite3_bind_int64(st, base + 8, (int64_t)c->context);
	if (now & TRACE_HAS_CARD)
		sqlite3_bind_int64(st, base + 9, (int64_t)c->card);
	if (now & BOUND_READER)
		sqlite3_bind_text(st, base + 10, c->reader, -1, SQLITE_STATIC);
	if (now & TRACE_HAS_SHARE_MODE)
		sqlite3_bind_int64(st, base + 11, c->share_mode);
	if (now & TRACE_HAS_PREFERRED_PROTOCOLS)
		sqlite3_bind_int64(st, base + 12, c->preferred_protocols);
	if (now & TRACE_HAS_ACTIVE_PROTOCOL)
		sqlite3_bind_int64(st, base + 13, c->active_protocol);
	if (now & TRACE_HAS_DISPOSITION)
		sqlite3_bind_int64(st, base + 14, c->disposition);
	if (now & TRACE_HAS_SCOPE)
		sqlite3_bind_int64(st, base + 15, c->scope);
	if (now & TRACE_HAS_TIMEOUT)
		sqlite3_bind_int64(st, base + 16, c->timeout);
	if (now & TRACE_HAS_CODE)
		sqlite3_bind_int64(st, base + 17, c->code);
	if (now & TRACE_HAS_STATE)
		sqlite3_bind_int64(st, base + 18, c->state);
	if (now & TRACE_HAS_SEND_PCI)
		sqlite3_bind_int64(st, base + 19, c->send_pci);
	if (now & TRACE_HAS_RECV_PCI)
		sqlite3_bind_int64(st, base + 20, c->recv_pci);
	if (now & BOUND_IN)
		bind_blob(st, base + 21, c->in);
	if (now & BOUND_OUT)
		bind_blob(st, base + 22, c->out);
	if (now & BOUND_EXTRA)
		sqlite3_bind_text(st, base + 24, c->extra, -1, SQLITE_STATIC);
	if (__builtin_expect(stale != 0, 0)) {
		/* The column of each bit (enum trace_call_field, call_bound). */
		static const int col[28] = {
			8, 9, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
			0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
			10, 21, 22, 24,
		};

		for (int b = 0; b < 28; b++) {
			if ((stale & (1u << b)) && col[b])
				sqlite3_bind_null(st, base + col[b]);
		}
	}
}

static int
insert_call(struct ingest *in, const struct trace_call *c)
{
	sqlite3_stmt *st = in->st[IS_CALL];
	int64_t call_id;
	int rc;

	bind_call(in, st, 0, &in->call_bound[0], c);
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
		bind_call(in, st, r * CALL_COLS, &in->call_bound[1 + r], &calls[r]);
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
