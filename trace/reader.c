/*
 * reader.c — the read side of the trace store, for tools/.
 *
 * Every iterator is one prepared statement stepped row by row, so memory
 * stays constant whatever the size of the trace; rows point into SQLite's
 * own column buffers until the next step.  Filters become WHERE terms
 * bound by name.  Time order uses the calls(t_enter_ns) index.
 */
#include "trace.h"
#include "store.h"
#include "sys.h"
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define ID_MAX "9223372036854775807"

struct trace_reader {
	sqlite3 *db;
	char *path;
	int version;
	unsigned temp_seq;	/* names of per-iterator temp tables */
	int64_t recovered_ns;	/* last look for journals to import (following) */
	char errmsg[512];
};

struct trace_iter {
	struct trace_reader *r;
	const struct query *q;
	sqlite3_stmt *st;
	sqlite3_stmt *states_st;	/* reader states of one call */
	struct trace_reader_state *states;
	size_t states_cap;
	size_t *offs;			/* arena offsets + 1 while loading, 0: NULL */
	char *arena;			/* copies of the states' texts and ATRs */
	size_t arena_len;
	size_t arena_cap;
	char temp[32];			/* temp table to drop at the end, or "" */
};

struct sqlbuf {
	char s[2048];
	size_t n;
	int overflow;
};

static void __attribute__((format(printf, 2, 3)))
sql_add(struct sqlbuf *b, const char *fmt, ...)
{
	va_list ap;
	int k;

	va_start(ap, fmt);
	k = vsnprintf(b->s + b->n, sizeof(b->s) - b->n, fmt, ap);
	va_end(ap);
	if (k < 0 || (size_t)k >= sizeof(b->s) - b->n) {
		b->overflow = 1;
		return;
	}
	b->n += (size_t)k;
}

static void __attribute__((format(printf, 2, 3)))
set_err(struct trace_reader *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->errmsg, sizeof(r->errmsg), fmt, ap);
	va_end(ap);
}

int
trace_reader_open(struct trace_reader **out, const char *path, char *err, size_t errlen)
{
	struct trace_reader *r = NULL;
	struct stat st;
	int created = 0;
	int ret = 0;
	int rc;

	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	if (!path || stat(path, &st) < 0) {
		ret = path ? -errno : -EINVAL;
		if (err && errlen)
			snprintf(err, errlen, "%s: %s", path ? path : "(null)", strerror(-ret));
		goto out;
	}
	ret = trace_file_prepare(path, 0, &created);
	if (ret < 0) {
		if (err && errlen)
			snprintf(err, errlen, "%s: %s", path, trace_strerror(ret));
		goto out;
	}
	if (trace_writer_in_process(path)) {
		ret = -EBUSY;
		if (err && errlen)
			snprintf(err, errlen, "%s: this process writes the trace; read it from"
				 " another process", path);
		goto out;
	}
	/* Whatever ended processes left in journals goes in first. */
	trace_recover(path);
	if (st.st_size == 0) {
		ret = TRACE_E_FOREIGN;
		if (err && errlen)
			snprintf(err, errlen, "%s: empty file, not a pcsctap trace", path);
		goto out;
	}
	r = calloc(1, sizeof(*r));
	if (!r || !(r->path = strdup(path))) {
		ret = -ENOMEM;
		if (err && errlen)
			snprintf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	rc = trace_sys.sqlite3_open_v2(path, &r->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		ret = trace_err_from_sqlite(rc);
		if (err && errlen)
			snprintf(err, errlen, "%s: cannot open: %s", path,
				 r->db ? sqlite3_errmsg(r->db) : sqlite3_errstr(rc));
		goto out;
	}
	sqlite3_busy_timeout(r->db, 5000);
	ret = trace_schema_check(r->db, path, &r->version, err, errlen);
	if (ret < 0)
		goto out;
	*out = r;
	r = NULL;
out:
	trace_reader_close(r);
	return ret;
}

void
trace_reader_close(struct trace_reader *r)
{
	if (!r)
		return;
	sqlite3_close_v2(r->db);
	free(r->path);
	free(r);
}

int
trace_reader_schema_version(struct trace_reader *r)
{
	return r ? r->version : 0;
}

const char *
trace_reader_errmsg(struct trace_reader *r)
{
	return r && r->errmsg[0] ? r->errmsg : "no error";
}

/* ---------------------------------------------------------------------- */

/*
 * What an iterator is: its columns and where each lands in the row struct,
 * the WHERE term each filter field becomes, and its order.  One prepare,
 * bind, step and fetch serves every iterator.
 */

/* How a column's value lands in a row struct. */
enum col_kind {
	COL_I64,	/* int64_t or uint64_t */
	COL_INT,	/* int */
	COL_U32,	/* uint32_t */
	COL_TEXT,	/* const char *, NULL for SQL NULL */
	COL_BLOB,	/* struct trace_blob, data NULL for SQL NULL */
	COL_OPT,	/* int64_t or uint64_t; SQL NULL: 0 and its TRACE_HAS_* bit clear */
};

struct col {
	const char *name;	/* as selected */
	int kind;		/* enum col_kind */
	size_t off;		/* of the field in the row struct */
	uint32_t bit;		/* COL_OPT: the field's TRACE_HAS_* bit */
	int since;		/* the schema version that has it: older ones read NULL */
};

/* The fields of struct trace_filter, each bound as the named parameter. */
enum filter_field {
	F_END,
	F_PID,		/* :pid */
	F_FN,		/* :fn */
	F_READER,	/* :reader */
	F_SESSION,	/* :session */
	F_SINCE,	/* :since */
	F_UNTIL,	/* :until */
	F_AFTER,	/* :after */
	F_READER_SESSIONS, /* :reader, calls only: CALL_READER_TERM */
};

/* One filter field and the WHERE term it adds when set. */
struct term {
	int field;		/* enum filter_field, F_END ends the list */
	const char *sql;
};

struct query {
	const char *from;		/* " FROM ... WHERE 1" or " FROM ..." */
	const struct col *cols;
	size_t n_cols;
	const struct term *terms;	/* NULL: the iterator takes no filter */
	const char *order;		/* " ORDER BY ..." */
	size_t clear;			/* bytes of the row zeroed before each row */
	size_t present;			/* COL_OPT: offset of the row's present bits */
};

#define COL(name, kind, type, field) { name, kind, offsetof(type, field), 0, 0 }
#define COL_HAS(name, type, field, bit) { name, COL_OPT, offsetof(type, field), bit, 0 }
#define N(a) (sizeof(a) / sizeof((a)[0]))

/* calls.def's columns as they land in a struct trace_call_row. */
#define CALL_COL(col, kind, field, bit, since) \
	{ "c." #col, kind, offsetof(struct trace_call_row, field), bit, since }
#define READ_CC_PID(col, field, bit, since) CALL_COL(col, COL_I64, pid, 0, since)
#define READ_CC_INT(col, field, bit, since) CALL_COL(col, COL_INT, call.field, 0, since)
#define READ_CC_I64(col, field, bit, since) CALL_COL(col, COL_I64, call.field, 0, since)
#define READ_CC_OPT(col, field, bit, since) CALL_COL(col, COL_OPT, call.field, bit, since)
#define READ_CC_TEXT(col, field, bit, since) CALL_COL(col, COL_TEXT, call.field, 0, since)
#define READ_CC_BLOB(col, field, bit, since) CALL_COL(col, COL_BLOB, call.field, 0, since)

static const struct col call_row_cols[] = {
	COL("c.id", COL_I64, struct trace_call_row, id),
#define TRACE_CALL_COL(col, since, type, kind, field, bit) READ_##kind(col, field, bit, since),
#include "calls.def"
#undef TRACE_CALL_COL
};

/* Its calls and the calls of its sessions (temp.%s: reader_sessions_temp()). */
#define CALL_READER_TERM " AND (c.reader = :reader OR EXISTS (SELECT 1 FROM temp.%s t" \
	" WHERE t.pid = c.pid AND t.card = c.card AND c.id BETWEEN t.lo AND t.hi))"

static const struct term call_terms[] = {
	{ F_PID, " AND c.pid = :pid" },
	{ F_FN, " AND c.fn = :fn" },
	{ F_SINCE, " AND c.t_enter_ns >= :since" },
	{ F_UNTIL, " AND c.t_enter_ns <= :until" },
	{ F_AFTER, " AND c.id > :after" },
	/* The session's calls: same pid and card, from the connect to the
	 * disconnect that ended it. */
	{ F_SESSION, " AND EXISTS (SELECT 1 FROM calls s WHERE s.id = :session AND s.fn = 4"
		" AND s.pid = c.pid AND s.card = c.card AND c.id >= s.id"
		" AND c.id <= coalesce((SELECT min(x.id) FROM calls x WHERE x.pid = s.pid"
		"  AND x.card = s.card AND x.fn = 6 AND x.id > s.id AND " TRACE_CARD_KEYED("x") "), "
		ID_MAX "))" },
	{ F_READER_SESSIONS, CALL_READER_TERM },
	{ F_END, NULL },
};

static const struct query call_query = {
	" FROM calls c WHERE 1", call_row_cols, N(call_row_cols), call_terms,
	" ORDER BY c.t_enter_ns, c.id",
	sizeof(struct trace_call_row), offsetof(struct trace_call_row, call.present),
};

static const struct col session_cols[] = {
	COL("id", COL_I64, struct trace_session, id),
	COL("pid", COL_I64, struct trace_session, pid),
	COL("card", COL_I64, struct trace_session, card),
	COL("reader", COL_TEXT, struct trace_session, reader),
	COL("process", COL_TEXT, struct trace_session, process),
	COL("share_mode", COL_I64, struct trace_session, share_mode),
	COL("preferred_protocols", COL_I64, struct trace_session, preferred_protocols),
	COL("active_protocol", COL_I64, struct trace_session, active_protocol),
	COL("start_ns", COL_I64, struct trace_session, start_ns),
	COL("end_ns", COL_I64, struct trace_session, end_ns),
	COL("start_wall_ns", COL_I64, struct trace_session, start_wall_ns),
	COL("disposition", COL_I64, struct trace_session, disposition),
	COL("n_apdus", COL_I64, struct trace_session, n_apdus),
	COL("n_transactions", COL_I64, struct trace_session, n_transactions),
	COL("n_markers", COL_I64, struct trace_session, n_markers),
};

static const struct term session_terms[] = {
	{ F_PID, " AND pid = :pid" },
	{ F_READER, " AND reader = :reader" },
	{ F_SESSION, " AND id = :session" },
	{ F_SINCE, " AND (end_ns = 0 OR end_ns >= :since)" },
	{ F_UNTIL, " AND start_ns <= :until" },
	{ F_AFTER, " AND id > :after" },
	{ F_END, NULL },
};

static const struct query session_query = {
	" FROM sessions WHERE 1", session_cols, N(session_cols), session_terms,
	" ORDER BY start_ns, id", 0, 0,
};

static const struct col transaction_cols[] = {
	COL("id", COL_I64, struct trace_transaction, id),
	COL("session", COL_I64, struct trace_transaction, session),
	COL("pid", COL_I64, struct trace_transaction, pid),
	COL("card", COL_I64, struct trace_transaction, card),
	COL("start_ns", COL_I64, struct trace_transaction, start_ns),
	COL("end_ns", COL_I64, struct trace_transaction, end_ns),
	COL("disposition", COL_I64, struct trace_transaction, disposition),
};

static const struct term transaction_terms[] = {
	{ F_PID, " AND pid = :pid" },
	{ F_SESSION, " AND session = :session" },
	{ F_READER, " AND EXISTS (SELECT 1 FROM calls s WHERE s.id = t.session"
		" AND s.reader = :reader)" },
	{ F_SINCE, " AND (end_ns = 0 OR end_ns >= :since)" },
	{ F_UNTIL, " AND start_ns <= :until" },
	{ F_AFTER, " AND id > :after" },
	{ F_END, NULL },
};

static const struct query transaction_query = {
	" FROM transactions t WHERE 1", transaction_cols, N(transaction_cols),
	transaction_terms, " ORDER BY start_ns, id", 0, 0,
};

static const struct col marker_cols[] = {
	COL("m.id", COL_I64, struct trace_marker_row, id),
	COL("m.pid", COL_I64, struct trace_marker_row, pid),
	COL("m.tid", COL_I64, struct trace_marker_row, marker.tid),
	COL("m.t_ns", COL_I64, struct trace_marker_row, marker.t_ns),
	COL("m.wall_ns", COL_I64, struct trace_marker_row, marker.wall_ns),
	COL("m.card", COL_I64, struct trace_marker_row, marker.card),
	COL("m.reader", COL_TEXT, struct trace_marker_row, marker.reader),
	COL("m.event", COL_INT, struct trace_marker_row, marker.event),
	COL("m.seq", COL_U32, struct trace_marker_row, marker.seq),
	COL("m.body", COL_BLOB, struct trace_marker_row, marker.body),
	COL("m.rv", COL_I64, struct trace_marker_row, marker.rv),
};

static const struct term marker_terms[] = {
	{ F_PID, " AND m.pid = :pid" },
	{ F_READER, " AND m.reader = :reader" },
	{ F_SESSION, " AND EXISTS (SELECT 1 FROM sessions s WHERE s.id = :session"
		" AND s.pid = m.pid AND s.card = m.card AND m.t_ns >= s.start_ns"
		" AND (s.end_ns = 0 OR m.t_ns <= s.end_ns))" },
	{ F_SINCE, " AND m.t_ns >= :since" },
	{ F_UNTIL, " AND m.t_ns <= :until" },
	{ F_AFTER, " AND m.id > :after" },
	{ F_END, NULL },
};

static const struct query marker_query = {
	" FROM markers m WHERE 1", marker_cols, N(marker_cols), marker_terms,
	" ORDER BY m.t_ns, m.id", 0, 0,
};

static const struct col wire_cols[] = {
	COL("id", COL_I64, struct trace_wire_row, id),
	COL("pid", COL_I64, struct trace_wire_row, pid),
	COL("t_ns", COL_I64, struct trace_wire_row, wire.t_ns),
	COL("t_end_ns", COL_I64, struct trace_wire_row, wire.t_end_ns),
	COL("wall_ns", COL_I64, struct trace_wire_row, wire.wall_ns),
	COL("reader", COL_TEXT, struct trace_wire_row, wire.reader),
	COL("kind", COL_INT, struct trace_wire_row, wire.kind),
	COL("sent", COL_BLOB, struct trace_wire_row, wire.sent),
	COL("received", COL_BLOB, struct trace_wire_row, wire.received),
	COL("detail", COL_TEXT, struct trace_wire_row, wire.detail),
};

static const struct term wire_terms[] = {
	{ F_PID, " AND pid = :pid" },
	{ F_READER, " AND reader = :reader" },
	{ F_SINCE, " AND t_ns >= :since" },
	{ F_UNTIL, " AND t_ns <= :until" },
	{ F_AFTER, " AND id > :after" },
	{ F_END, NULL },
};

static const struct query wire_query = {
	" FROM wire WHERE 1", wire_cols, N(wire_cols), wire_terms,
	" ORDER BY t_ns, id", 0, 0,
};

static const struct col process_cols[] = {
	COL("pid", COL_I64, struct trace_process, pid),
	COL("ppid", COL_I64, struct trace_process, ppid),
	COL("exe", COL_TEXT, struct trace_process, exe),
	COL("argv", COL_TEXT, struct trace_process, argv),
	COL("role", COL_TEXT, struct trace_process, role),
	COL("host", COL_TEXT, struct trace_process, host),
	COL("start_wall_ns", COL_I64, struct trace_process, start_wall_ns),
};

static const struct query process_query = {
	" FROM processes", process_cols, N(process_cols), NULL,
	" ORDER BY start_wall_ns, rowid", 0, 0,
};

static const struct col drop_cols[] = {
	COL("pid", COL_I64, struct trace_drop, pid),
	COL("wall_ns", COL_I64, struct trace_drop, wall_ns),
	COL("count", COL_I64, struct trace_drop, count),
};

static const struct query drop_query = {
	" FROM drops", drop_cols, N(drop_cols), NULL,
	" ORDER BY wall_ns, rowid", 0, 0,
};

/* ---------------------------------------------------------------------- */

static int
bind_name(sqlite3_stmt *st, const char *name, int64_t v)
{
	int i = sqlite3_bind_parameter_index(st, name);

	return i > 0 ? sqlite3_bind_int64(st, i, v) : SQLITE_OK;
}

static int
bind_name_text(sqlite3_stmt *st, const char *name, const char *v)
{
	int i = sqlite3_bind_parameter_index(st, name);

	return i > 0 ? sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT) : SQLITE_OK;
}

static int
filter_has(const struct trace_filter *f, int field)
{
	switch (field) {
	case F_PID:
		return f->pid != 0;
	case F_FN:
		return f->fn != 0;
	case F_READER:
	case F_READER_SESSIONS:
		return f->reader != NULL;
	case F_SESSION:
		return f->session != 0;
	case F_SINCE:
		return f->since_ns != 0;
	case F_UNTIL:
		return f->until_ns != 0;
	case F_AFTER:
		return f->after_id != 0;
	default:
		return 0;
	}
}

/*
 * A reader filter on calls: the calls whose own reader column matches,
 * and the calls of every session on that reader.  The sessions are put
 * in a small temp table first (temp tables work on a read-only
 * connection) so that the big scan only probes it.
 */
static int
reader_sessions_temp(struct trace_iter *it, const char *reader)
{
	struct trace_reader *r = it->r;
	sqlite3_stmt *st = NULL;
	char sql[512];
	int rc, ret = 0;

	snprintf(it->temp, sizeof(it->temp), "rsel%u", ++r->temp_seq);
	snprintf(sql, sizeof(sql),
		 "CREATE TEMP TABLE %s(pid INTEGER, card INTEGER, lo INTEGER, hi INTEGER)", it->temp);
	rc = trace_sys.sqlite3_exec(r->db, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		goto fail;
	snprintf(sql, sizeof(sql),
		 "INSERT INTO %s SELECT pid, card, id, coalesce(end_id, " ID_MAX ")"
		 " FROM sessions WHERE reader = ?", it->temp);
	rc = trace_sys.sqlite3_prepare_v2(r->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		goto fail;
	sqlite3_bind_text(st, 1, reader, -1, SQLITE_STATIC);
	rc = trace_sys.sqlite3_step(st);
	if (rc != SQLITE_DONE)
		goto fail;
	goto out;
fail:
	set_err(r, "%s: %s", r->path, sqlite3_errmsg(r->db));
	ret = trace_err_from_sqlite(rc);
out:
	sqlite3_finalize(st);
	return ret;
}

/* SELECT <columns> FROM ... WHERE 1 <a term per set filter field> ORDER BY ... */
static int
build_sql(struct trace_iter *it, const struct trace_filter *f, struct sqlbuf *b)
{
	const struct query *q = it->q;
	int ret;

	for (size_t i = 0; i < q->n_cols; i++)
		sql_add(b, "%s%s", i ? ", " : "SELECT ",
			q->cols[i].since > it->r->version ? "NULL" : q->cols[i].name);
	sql_add(b, "%s", q->from);
	for (const struct term *t = q->terms; f && t && t->field != F_END; t++) {
		if (!filter_has(f, t->field))
			continue;
		if (t->field != F_READER_SESSIONS) {
			sql_add(b, "%s", t->sql);
			continue;
		}
		ret = reader_sessions_temp(it, f->reader);
		if (ret < 0)
			return ret;
		sql_add(b, CALL_READER_TERM, it->temp);
	}
	sql_add(b, "%s", q->order);
	return 0;
}

/* A new iterator over @p q's rows that match @p f (NULL: all rows). */
static int
iter_open(struct trace_reader *r, const struct query *q, const struct trace_filter *f,
	  struct trace_iter **out)
{
	struct trace_iter *it = NULL;
	struct sqlbuf b = { .n = 0 };
	int ret = 0;
	int rc;

	*out = NULL;
	if (!r)
		return -EINVAL;
	it = calloc(1, sizeof(*it));
	if (!it) {
		set_err(r, "out of memory");
		return -ENOMEM;
	}
	it->r = r;
	it->q = q;
	ret = build_sql(it, f, &b);
	if (ret < 0)
		goto out;
	if (b.overflow) {
		set_err(r, "query too long");
		ret = TRACE_E_SQLITE;
		goto out;
	}
	rc = trace_sys.sqlite3_prepare_v2(r->db, b.s, -1, &it->st, NULL);
	if (rc != SQLITE_OK) {
		set_err(r, "%s: %s", r->path, sqlite3_errmsg(r->db));
		ret = trace_err_from_sqlite(rc);
		goto out;
	}
	if (f) {
		bind_name(it->st, ":pid", f->pid);
		bind_name(it->st, ":fn", f->fn);
		bind_name(it->st, ":since", f->since_ns);
		bind_name(it->st, ":until", f->until_ns);
		bind_name(it->st, ":after", f->after_id);
		bind_name(it->st, ":session", f->session);
		bind_name_text(it->st, ":reader", f->reader);
	}
out:
	if (ret < 0) {
		trace_iter_end(it);
		it = NULL;
	}
	*out = it;
	return ret;
}

static int64_t
col_opt(sqlite3_stmt *st, int i, uint32_t *present, uint32_t bit)
{
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return 0;
	*present |= bit;
	return sqlite3_column_int64(st, i);
}

static const char *
col_text(sqlite3_stmt *st, int i)
{
	return (const char *)sqlite3_column_text(st, i);
}

static struct trace_blob
col_blob(sqlite3_stmt *st, int i)
{
	struct trace_blob b = { NULL, 0 };
	static const uint8_t empty[1];

	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return b;
	b.data = sqlite3_column_blob(st, i);
	b.len = (size_t)sqlite3_column_bytes(st, i);
	if (!b.data)
		b.data = empty;
	return b;
}

/* Copy the current row's columns into the fields of @p row. */
static void
fetch_row(sqlite3_stmt *st, const struct query *q, void *row)
{
	char *base = row;
	uint32_t *present = (uint32_t *)(base + q->present);

	if (q->clear)
		memset(row, 0, q->clear);
	for (size_t n = 0; n < q->n_cols; n++) {
		const struct col *c = &q->cols[n];
		void *p = base + c->off;
		int i = (int)n;

		switch (c->kind) {
		case COL_I64:
			*(int64_t *)p = sqlite3_column_int64(st, i);
			break;
		case COL_INT:
			*(int *)p = sqlite3_column_int(st, i);
			break;
		case COL_U32:
			*(uint32_t *)p = (uint32_t)sqlite3_column_int64(st, i);
			break;
		case COL_TEXT:
			*(const char **)p = col_text(st, i);
			break;
		case COL_BLOB:
			*(struct trace_blob *)p = col_blob(st, i);
			break;
		case COL_OPT:
			*(int64_t *)p = col_opt(st, i, present, c->bit);
			break;
		}
	}
}

/* Step @p it, an iterator over @p q, and fill @p row: 1 row, 0 end, <0 error. */
static int
iter_next(struct trace_iter *it, const struct query *q, void *row)
{
	int rc;

	if (!it || it->q != q || !it->st)
		return -EINVAL;
	rc = trace_sys.sqlite3_step(it->st);
	if (rc == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW) {
		set_err(it->r, "%s: %s", it->r->path, sqlite3_errmsg(it->r->db));
		return trace_err_from_sqlite(rc);
	}
	fetch_row(it->st, q, row);
	return 1;
}

int
trace_iter_calls(struct trace_reader *r, const struct trace_filter *f, struct trace_iter **out)
{
	int64_t now = trace_mono_ns();
	int ret;

	/* Following a live trace: what a process that crashed meanwhile left
	 * in its journal is imported too (looked for once a second). */
	if (f && f->after_id && now - r->recovered_ns >= 1000000000) {
		r->recovered_ns = now;
		trace_recover(r->path);
	}
	ret = iter_open(r, &call_query, f, out);
	if (ret < 0)
		return ret;
	ret = trace_sys.sqlite3_prepare_v2(r->db,
		"SELECT reader, current_state, event_state, atr FROM reader_states"
		" WHERE call_id = ? ORDER BY idx", -1, &(*out)->states_st, NULL);
	ret = trace_err_from_sqlite(ret);
	if (ret < 0) {
		set_err(r, "%s: %s", r->path, sqlite3_errmsg(r->db));
		trace_iter_end(*out);
		*out = NULL;
	}
	return ret;
}

/*
 * A column's text or blob is only valid until the next step, so the states
 * of one call are copied into a per-iterator arena (reused row after row).
 */
static int
arena_add(struct trace_iter *it, const void *p, size_t n, size_t *off)
{
	if (it->arena_len + n > it->arena_cap) {
		size_t cap = it->arena_cap ? it->arena_cap : 256;
		char *a;

		while (cap < it->arena_len + n)
			cap *= 2;
		a = realloc(it->arena, cap);
		if (!a)
			return -ENOMEM;
		it->arena = a;
		it->arena_cap = cap;
	}
	*off = it->arena_len;
	if (n)
		memcpy(it->arena + it->arena_len, p, n);
	it->arena_len += n;
	return 0;
}

static int
load_states(struct trace_iter *it, int64_t call_id, struct trace_call *c)
{
	sqlite3_stmt *st = it->states_st;
	size_t *offs = NULL;
	size_t n = 0;
	int rc, ret = 0;

	sqlite3_reset(st);
	sqlite3_bind_int64(st, 1, call_id);
	it->arena_len = 0;
	while ((rc = trace_sys.sqlite3_step(st)) == SQLITE_ROW) {
		const char *txt = col_text(st, 0);
		struct trace_blob atr = col_blob(st, 3);
		size_t roff = 0, aoff = 0;

		if (n == it->states_cap) {
			size_t cap = it->states_cap ? it->states_cap * 2 : 8;
			struct trace_reader_state *p = realloc(it->states, cap * sizeof(*p));
			size_t *o = realloc(it->offs, cap * 2 * sizeof(*o));

			if (p)
				it->states = p;
			if (o)
				it->offs = o;
			if (!p || !o) {
				ret = -ENOMEM;
				goto out;
			}
			it->states_cap = cap;
		}
		offs = it->offs;
		if ((txt && arena_add(it, txt, strlen(txt) + 1, &roff) < 0) ||
		    (atr.data && arena_add(it, atr.data, atr.len, &aoff) < 0)) {
			ret = -ENOMEM;
			goto out;
		}
		offs[2 * n] = txt ? roff + 1 : 0;
		offs[2 * n + 1] = atr.data ? aoff + 1 : 0;
		it->states[n].current_state = (uint32_t)sqlite3_column_int64(st, 1);
		it->states[n].event_state = (uint32_t)sqlite3_column_int64(st, 2);
		it->states[n].atr.len = atr.len;
		n++;
	}
	if (rc != SQLITE_DONE) {
		set_err(it->r, "%s: %s", it->r->path, sqlite3_errmsg(it->r->db));
		ret = trace_err_from_sqlite(rc);
		goto out;
	}
	/* The arena may have moved while growing: point into it only now. */
	for (size_t i = 0; i < n; i++) {
		it->states[i].reader = offs[2 * i] ? it->arena + offs[2 * i] - 1 : NULL;
		it->states[i].atr.data = offs[2 * i + 1] ?
			(const uint8_t *)it->arena + offs[2 * i + 1] - 1 : NULL;
	}
	c->states = n ? it->states : NULL;
	c->n_states = n;
out:
	return ret;
}

int
trace_iter_call_next(struct trace_iter *it, struct trace_call_row *row)
{
	int ret;

	ret = iter_next(it, &call_query, row);
	if (ret > 0 && row->call.fn == TRACE_FN_SCardGetStatusChange) {
		ret = load_states(it, row->id, &row->call);
		if (ret == 0)
			ret = 1;
	}
	return ret;
}

int
trace_iter_sessions(struct trace_reader *r, const struct trace_filter *f, struct trace_iter **out)
{
	return iter_open(r, &session_query, f, out);
}

int
trace_iter_session_next(struct trace_iter *it, struct trace_session *row)
{
	return iter_next(it, &session_query, row);
}

int
trace_iter_transactions(struct trace_reader *r, const struct trace_filter *f, struct trace_iter **out)
{
	return iter_open(r, &transaction_query, f, out);
}

int
trace_iter_transaction_next(struct trace_iter *it, struct trace_transaction *row)
{
	return iter_next(it, &transaction_query, row);
}

int
trace_iter_markers(struct trace_reader *r, const struct trace_filter *f, struct trace_iter **out)
{
	return iter_open(r, &marker_query, f, out);
}

int
trace_iter_marker_next(struct trace_iter *it, struct trace_marker_row *row)
{
	return iter_next(it, &marker_query, row);
}

int
trace_iter_wire(struct trace_reader *r, const struct trace_filter *f, struct trace_iter **out)
{
	return iter_open(r, &wire_query, f, out);
}

int
trace_iter_wire_next(struct trace_iter *it, struct trace_wire_row *row)
{
	return iter_next(it, &wire_query, row);
}

int
trace_iter_processes(struct trace_reader *r, struct trace_iter **out)
{
	return iter_open(r, &process_query, NULL, out);
}

int
trace_iter_process_next(struct trace_iter *it, struct trace_process *row)
{
	return iter_next(it, &process_query, row);
}

int
trace_iter_drops(struct trace_reader *r, struct trace_iter **out)
{
	return iter_open(r, &drop_query, NULL, out);
}

int
trace_iter_drop_next(struct trace_iter *it, struct trace_drop *row)
{
	return iter_next(it, &drop_query, row);
}

void
trace_iter_end(struct trace_iter *it)
{
	char sql[64];

	if (!it)
		return;
	sqlite3_finalize(it->st);
	sqlite3_finalize(it->states_st);
	if (it->temp[0]) {
		snprintf(sql, sizeof(sql), "DROP TABLE IF EXISTS temp.%s", it->temp);
		sqlite3_exec(it->r->db, sql, NULL, NULL, NULL);
	}
	free(it->states);
	free(it->offs);
	free(it->arena);
	free(it);
}
