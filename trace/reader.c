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
	char errmsg[512];
};

enum iter_kind {
	IT_CALLS,
	IT_SESSIONS,
	IT_TRANSACTIONS,
	IT_MARKERS,
	IT_WIRE,
	IT_PROCESSES,
	IT_DROPS,
};

struct trace_iter {
	struct trace_reader *r;
	int kind;
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
iter_new(struct trace_reader *r, int kind, struct trace_iter **out)
{
	struct trace_iter *it;

	*out = NULL;
	if (!r)
		return -EINVAL;
	it = calloc(1, sizeof(*it));
	if (!it) {
		set_err(r, "out of memory");
		return -ENOMEM;
	}
	it->r = r;
	it->kind = kind;
	*out = it;
	return 0;
}

static int
iter_prepare(struct trace_iter *it, struct sqlbuf *b, const struct trace_filter *f)
{
	struct trace_reader *r = it->r;
	int rc;

	if (b->overflow) {
		set_err(r, "query too long");
		return TRACE_E_SQLITE;
	}
	rc = trace_sys.sqlite3_prepare_v2(r->db, b->s, -1, &it->st, NULL);
	if (rc != SQLITE_OK) {
		set_err(r, "%s: %s", r->path, sqlite3_errmsg(r->db));
		return trace_err_from_sqlite(rc);
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
	return 0;
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

int
trace_iter_calls(struct trace_reader *r, const struct trace_filter *f, struct trace_iter **out)
{
	struct trace_iter *it = NULL;
	struct sqlbuf b = { .n = 0 };
	int ret;

	ret = iter_new(r, IT_CALLS, &it);
	if (ret < 0)
		goto out;
	sql_add(&b, "SELECT c.id, c.pid, c.tid, c.fn, c.t_enter_ns, c.t_return_ns, c.wall_ns, c.rv,"
		" c.context, c.card, c.reader, c.share_mode, c.preferred_protocols,"
		" c.active_protocol, c.disposition, c.scope, c.timeout, c.code, c.state,"
		" c.send_pci, c.recv_pci, c.data_in, c.data_out, c.redacted, c.extra"
		" FROM calls c WHERE 1");
	if (f && f->pid)
		sql_add(&b, " AND c.pid = :pid");
	if (f && f->fn)
		sql_add(&b, " AND c.fn = :fn");
	if (f && f->since_ns)
		sql_add(&b, " AND c.t_enter_ns >= :since");
	if (f && f->until_ns)
		sql_add(&b, " AND c.t_enter_ns <= :until");
	if (f && f->after_id)
		sql_add(&b, " AND c.id > :after");
	if (f && f->session) {
		/* The session's calls: same pid and card, from the connect to
		 * the disconnect that ended it. */
		sql_add(&b, " AND EXISTS (SELECT 1 FROM calls s WHERE s.id = :session AND s.fn = 4"
			" AND s.pid = c.pid AND s.card = c.card AND c.id >= s.id"
			" AND c.id <= coalesce((SELECT min(x.id) FROM calls x WHERE x.pid = s.pid"
			"  AND x.card = s.card AND x.fn = 6 AND x.id > s.id), " ID_MAX "))");
	}
	if (f && f->reader) {
		ret = reader_sessions_temp(it, f->reader);
		if (ret < 0)
			goto out;
		sql_add(&b, " AND (c.reader = :reader OR EXISTS (SELECT 1 FROM temp.%s t"
			" WHERE t.pid = c.pid AND t.card = c.card AND c.id BETWEEN t.lo AND t.hi))",
			it->temp);
	}
	sql_add(&b, " ORDER BY c.t_enter_ns, c.id");
	ret = iter_prepare(it, &b, f);
	if (ret < 0)
		goto out;
	ret = trace_sys.sqlite3_prepare_v2(r->db,
		"SELECT reader, current_state, event_state, atr FROM reader_states"
		" WHERE call_id = ? ORDER BY idx", -1, &it->states_st, NULL);
	ret = trace_err_from_sqlite(ret);
	if (ret < 0)
		set_err(r, "%s: %s", r->path, sqlite3_errmsg(r->db));
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

static int
step(struct trace_iter *it)
{
	int rc;

	if (!it || !it->st)
		return -EINVAL;
	rc = trace_sys.sqlite3_step(it->st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	set_err(it->r, "%s: %s", it->r->path, sqlite3_errmsg(it->r->db));
	return trace_err_from_sqlite(rc);
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
	struct trace_call *c = &row->call;
	sqlite3_stmt *st;
	int ret;

	if (!it || it->kind != IT_CALLS)
		return -EINVAL;
	ret = step(it);
	if (ret <= 0)
		return ret;
	st = it->st;
	memset(row, 0, sizeof(*row));
	row->id = sqlite3_column_int64(st, 0);
	row->pid = sqlite3_column_int64(st, 1);
	c->tid = sqlite3_column_int64(st, 2);
	c->fn = sqlite3_column_int(st, 3);
	c->t_enter_ns = sqlite3_column_int64(st, 4);
	c->t_return_ns = sqlite3_column_int64(st, 5);
	c->wall_ns = sqlite3_column_int64(st, 6);
	c->rv = sqlite3_column_int64(st, 7);
	c->context = (uint64_t)col_opt(st, 8, &c->present, TRACE_HAS_CONTEXT);
	c->card = (uint64_t)col_opt(st, 9, &c->present, TRACE_HAS_CARD);
	c->reader = col_text(st, 10);
	c->share_mode = col_opt(st, 11, &c->present, TRACE_HAS_SHARE_MODE);
	c->preferred_protocols = col_opt(st, 12, &c->present, TRACE_HAS_PREFERRED_PROTOCOLS);
	c->active_protocol = col_opt(st, 13, &c->present, TRACE_HAS_ACTIVE_PROTOCOL);
	c->disposition = col_opt(st, 14, &c->present, TRACE_HAS_DISPOSITION);
	c->scope = col_opt(st, 15, &c->present, TRACE_HAS_SCOPE);
	c->timeout = col_opt(st, 16, &c->present, TRACE_HAS_TIMEOUT);
	c->code = col_opt(st, 17, &c->present, TRACE_HAS_CODE);
	c->state = col_opt(st, 18, &c->present, TRACE_HAS_STATE);
	c->send_pci = col_opt(st, 19, &c->present, TRACE_HAS_SEND_PCI);
	c->recv_pci = col_opt(st, 20, &c->present, TRACE_HAS_RECV_PCI);
	c->in = col_blob(st, 21);
	c->out = col_blob(st, 22);
	c->redacted = sqlite3_column_int(st, 23);
	c->extra = col_text(st, 24);
	if (c->fn == TRACE_FN_SCardGetStatusChange) {
		ret = load_states(it, row->id, c);
		if (ret < 0)
			return ret;
	}
	return 1;
}

int
trace_iter_sessions(struct trace_reader *r, const struct trace_filter *f, struct trace_iter **out)
{
	struct trace_iter *it = NULL;
	struct sqlbuf b = { .n = 0 };
	int ret;

	ret = iter_new(r, IT_SESSIONS, &it);
	if (ret < 0)
		goto out;
	sql_add(&b, "SELECT id, pid, card, reader, process, share_mode, preferred_protocols,"
		" active_protocol, start_ns, end_ns, start_wall_ns, disposition, n_apdus,"
		" n_transactions, n_markers FROM sessions WHERE 1");
	if (f && f->pid)
		sql_add(&b, " AND pid = :pid");
	if (f && f->reader)
		sql_add(&b, " AND reader = :reader");
	if (f && f->session)
		sql_add(&b, " AND id = :session");
	if (f && f->since_ns)
		sql_add(&b, " AND (end_ns = 0 OR end_ns >= :since)");
	if (f && f->until_ns)
		sql_add(&b, " AND start_ns <= :until");
	if (f && f->after_id)
		sql_add(&b, " AND id > :after");
	sql_add(&b, " ORDER BY start_ns, id");
	ret = iter_prepare(it, &b, f);
out:
	if (ret < 0) {
		trace_iter_end(it);
		it = NULL;
	}
	*out = it;
	return ret;
}

int
trace_iter_session_next(struct trace_iter *it, struct trace_session *s)
{
	sqlite3_stmt *st;
	int ret;

	if (!it || it->kind != IT_SESSIONS)
		return -EINVAL;
	ret = step(it);
	if (ret <= 0)
		return ret;
	st = it->st;
	s->id = sqlite3_column_int64(st, 0);
	s->pid = sqlite3_column_int64(st, 1);
	s->card = (uint64_t)sqlite3_column_int64(st, 2);
	s->reader = col_text(st, 3);
	s->process = col_text(st, 4);
	s->share_mode = sqlite3_column_int64(st, 5);
	s->preferred_protocols = sqlite3_column_int64(st, 6);
	s->active_protocol = sqlite3_column_int64(st, 7);
	s->start_ns = sqlite3_column_int64(st, 8);
	s->end_ns = sqlite3_column_int64(st, 9);
	s->start_wall_ns = sqlite3_column_int64(st, 10);
	s->disposition = sqlite3_column_int64(st, 11);
	s->n_apdus = sqlite3_column_int64(st, 12);
	s->n_transactions = sqlite3_column_int64(st, 13);
	s->n_markers = sqlite3_column_int64(st, 14);
	return 1;
}

int
trace_iter_transactions(struct trace_reader *r, const struct trace_filter *f, struct trace_iter **out)
{
	struct trace_iter *it = NULL;
	struct sqlbuf b = { .n = 0 };
	int ret;

	ret = iter_new(r, IT_TRANSACTIONS, &it);
	if (ret < 0)
		goto out;
	sql_add(&b, "SELECT id, session, pid, card, start_ns, end_ns, disposition"
		" FROM transactions t WHERE 1");
	if (f && f->pid)
		sql_add(&b, " AND pid = :pid");
	if (f && f->session)
		sql_add(&b, " AND session = :session");
	if (f && f->reader)
		sql_add(&b, " AND EXISTS (SELECT 1 FROM calls s WHERE s.id = t.session AND s.reader = :reader)");
	if (f && f->since_ns)
		sql_add(&b, " AND (end_ns = 0 OR end_ns >= :since)");
	if (f && f->until_ns)
		sql_add(&b, " AND start_ns <= :until");
	if (f && f->after_id)
		sql_add(&b, " AND id > :after");
	sql_add(&b, " ORDER BY start_ns, id");
	ret = iter_prepare(it, &b, f);
out:
	if (ret < 0) {
		trace_iter_end(it);
		it = NULL;
	}
	*out = it;
	return ret;
}

int
trace_iter_transaction_next(struct trace_iter *it, struct trace_transaction *t)
{
	sqlite3_stmt *st;
	int ret;

	if (!it || it->kind != IT_TRANSACTIONS)
		return -EINVAL;
	ret = step(it);
	if (ret <= 0)
		return ret;
	st = it->st;
	t->id = sqlite3_column_int64(st, 0);
	t->session = sqlite3_column_int64(st, 1);
	t->pid = sqlite3_column_int64(st, 2);
	t->card = (uint64_t)sqlite3_column_int64(st, 3);
	t->start_ns = sqlite3_column_int64(st, 4);
	t->end_ns = sqlite3_column_int64(st, 5);
	t->disposition = sqlite3_column_int64(st, 6);
	return 1;
}

int
trace_iter_markers(struct trace_reader *r, const struct trace_filter *f, struct trace_iter **out)
{
	struct trace_iter *it = NULL;
	struct sqlbuf b = { .n = 0 };
	int ret;

	ret = iter_new(r, IT_MARKERS, &it);
	if (ret < 0)
		goto out;
	sql_add(&b, "SELECT m.id, m.pid, m.tid, m.t_ns, m.wall_ns, m.card, m.reader, m.event,"
		" m.seq, m.body, m.rv FROM markers m WHERE 1");
	if (f && f->pid)
		sql_add(&b, " AND m.pid = :pid");
	if (f && f->reader)
		sql_add(&b, " AND m.reader = :reader");
	if (f && f->session)
		sql_add(&b, " AND EXISTS (SELECT 1 FROM sessions s WHERE s.id = :session"
			" AND s.pid = m.pid AND s.card = m.card AND m.t_ns >= s.start_ns"
			" AND (s.end_ns = 0 OR m.t_ns <= s.end_ns))");
	if (f && f->since_ns)
		sql_add(&b, " AND m.t_ns >= :since");
	if (f && f->until_ns)
		sql_add(&b, " AND m.t_ns <= :until");
	if (f && f->after_id)
		sql_add(&b, " AND m.id > :after");
	sql_add(&b, " ORDER BY m.t_ns, m.id");
	ret = iter_prepare(it, &b, f);
out:
	if (ret < 0) {
		trace_iter_end(it);
		it = NULL;
	}
	*out = it;
	return ret;
}

int
trace_iter_marker_next(struct trace_iter *it, struct trace_marker_row *row)
{
	struct trace_marker *m = &row->marker;
	sqlite3_stmt *st;
	int ret;

	if (!it || it->kind != IT_MARKERS)
		return -EINVAL;
	ret = step(it);
	if (ret <= 0)
		return ret;
	st = it->st;
	row->id = sqlite3_column_int64(st, 0);
	row->pid = sqlite3_column_int64(st, 1);
	m->tid = sqlite3_column_int64(st, 2);
	m->t_ns = sqlite3_column_int64(st, 3);
	m->wall_ns = sqlite3_column_int64(st, 4);
	m->card = (uint64_t)sqlite3_column_int64(st, 5);
	m->reader = col_text(st, 6);
	m->event = sqlite3_column_int(st, 7);
	m->seq = (uint32_t)sqlite3_column_int64(st, 8);
	m->body = col_blob(st, 9);
	m->rv = sqlite3_column_int64(st, 10);
	return 1;
}

int
trace_iter_wire(struct trace_reader *r, const struct trace_filter *f, struct trace_iter **out)
{
	struct trace_iter *it = NULL;
	struct sqlbuf b = { .n = 0 };
	int ret;

	ret = iter_new(r, IT_WIRE, &it);
	if (ret < 0)
		goto out;
	sql_add(&b, "SELECT id, pid, t_ns, t_end_ns, wall_ns, reader, kind, sent, received, detail"
		" FROM wire WHERE 1");
	if (f && f->pid)
		sql_add(&b, " AND pid = :pid");
	if (f && f->reader)
		sql_add(&b, " AND reader = :reader");
	if (f && f->since_ns)
		sql_add(&b, " AND t_ns >= :since");
	if (f && f->until_ns)
		sql_add(&b, " AND t_ns <= :until");
	if (f && f->after_id)
		sql_add(&b, " AND id > :after");
	sql_add(&b, " ORDER BY t_ns, id");
	ret = iter_prepare(it, &b, f);
out:
	if (ret < 0) {
		trace_iter_end(it);
		it = NULL;
	}
	*out = it;
	return ret;
}

int
trace_iter_wire_next(struct trace_iter *it, struct trace_wire_row *row)
{
	struct trace_wire *x = &row->wire;
	sqlite3_stmt *st;
	int ret;

	if (!it || it->kind != IT_WIRE)
		return -EINVAL;
	ret = step(it);
	if (ret <= 0)
		return ret;
	st = it->st;
	row->id = sqlite3_column_int64(st, 0);
	row->pid = sqlite3_column_int64(st, 1);
	x->t_ns = sqlite3_column_int64(st, 2);
	x->t_end_ns = sqlite3_column_int64(st, 3);
	x->wall_ns = sqlite3_column_int64(st, 4);
	x->reader = col_text(st, 5);
	x->kind = sqlite3_column_int(st, 6);
	x->sent = col_blob(st, 7);
	x->received = col_blob(st, 8);
	x->detail = col_text(st, 9);
	return 1;
}

int
trace_iter_processes(struct trace_reader *r, struct trace_iter **out)
{
	struct trace_iter *it = NULL;
	struct sqlbuf b = { .n = 0 };
	int ret;

	ret = iter_new(r, IT_PROCESSES, &it);
	if (ret < 0)
		goto out;
	sql_add(&b, "SELECT pid, ppid, exe, argv, role, host, start_wall_ns FROM processes"
		" ORDER BY start_wall_ns, rowid");
	ret = iter_prepare(it, &b, NULL);
out:
	if (ret < 0) {
		trace_iter_end(it);
		it = NULL;
	}
	*out = it;
	return ret;
}

int
trace_iter_process_next(struct trace_iter *it, struct trace_process *p)
{
	sqlite3_stmt *st;
	int ret;

	if (!it || it->kind != IT_PROCESSES)
		return -EINVAL;
	ret = step(it);
	if (ret <= 0)
		return ret;
	st = it->st;
	p->pid = sqlite3_column_int64(st, 0);
	p->ppid = sqlite3_column_int64(st, 1);
	p->exe = col_text(st, 2);
	p->argv = col_text(st, 3);
	p->role = col_text(st, 4);
	p->host = col_text(st, 5);
	p->start_wall_ns = sqlite3_column_int64(st, 6);
	return 1;
}

int
trace_iter_drops(struct trace_reader *r, struct trace_iter **out)
{
	struct trace_iter *it = NULL;
	struct sqlbuf b = { .n = 0 };
	int ret;

	ret = iter_new(r, IT_DROPS, &it);
	if (ret < 0)
		goto out;
	sql_add(&b, "SELECT pid, wall_ns, count FROM drops ORDER BY wall_ns, rowid");
	ret = iter_prepare(it, &b, NULL);
out:
	if (ret < 0) {
		trace_iter_end(it);
		it = NULL;
	}
	*out = it;
	return ret;
}

int
trace_iter_drop_next(struct trace_iter *it, struct trace_drop *d)
{
	int ret;

	if (!it || it->kind != IT_DROPS)
		return -EINVAL;
	ret = step(it);
	if (ret <= 0)
		return ret;
	d->pid = sqlite3_column_int64(it->st, 0);
	d->wall_ns = sqlite3_column_int64(it->st, 1);
	d->count = sqlite3_column_int64(it->st, 2);
	return 1;
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
