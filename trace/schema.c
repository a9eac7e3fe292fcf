/*
 * schema.c — the trace schema (docs/trace-schema.md): creation, migration of
 * older versions, the checks a reader makes, and opening a connection for
 * writing with the pragmas the writer relies on.
 *
 * Insert speed matters (the writer must sustain hundreds of thousands of
 * calls per second), so only two indexes are maintained at insert time:
 * calls(pid, card, fn, id) without the transmits (TRACE_CARD_KEYED) for
 * the sessions/transactions views and the per-session filters, and
 * calls(t_enter_ns) for time-ordered streaming.  Both grow mostly at their
 * right edge.
 */
#include "trace.h"
#include "util.h"
#include "store.h"
#include "sys.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* How long to retry the switch to WAL while another process holds a lock. */
#define TRACE_WAL_SWITCH_WAIT_MS 1000

#define CARD_KEYED(t) " AND " TRACE_CARD_KEYED(t)

/* Version 0 → 1: the tables and indexes of the first release (its views
 * are made anew by version 3). */
static const char schema_v1[] =
	"CREATE TABLE IF NOT EXISTS functions(id INTEGER PRIMARY KEY, name TEXT NOT NULL);"
	"CREATE TABLE IF NOT EXISTS processes("
	" pid INTEGER NOT NULL, ppid INTEGER, exe TEXT, name TEXT, argv TEXT,"
	" role TEXT, host TEXT, start_wall_ns INTEGER);"
	"CREATE INDEX IF NOT EXISTS processes_pid ON processes(pid);"
	"CREATE TABLE IF NOT EXISTS calls(id INTEGER PRIMARY KEY"
#define DDL_1(col, type) ", " #col " " type
#define DDL_2(col, type)
#define TRACE_CALL_COL(col, since, type, kind, field, bit) DDL_##since(col, type)
#include "calls.def"
#undef TRACE_CALL_COL
#undef DDL_1
#undef DDL_2
	");"
	"CREATE INDEX IF NOT EXISTS calls_card ON calls(pid, card, fn, id) WHERE card IS NOT NULL;"
	"CREATE INDEX IF NOT EXISTS calls_time ON calls(t_enter_ns);"
	"CREATE TABLE IF NOT EXISTS reader_states("
	" call_id INTEGER NOT NULL, idx INTEGER NOT NULL, reader TEXT,"
	" current_state INTEGER, event_state INTEGER, atr BLOB,"
	" PRIMARY KEY(call_id, idx)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS markers("
	" id INTEGER PRIMARY KEY, pid INTEGER NOT NULL, tid INTEGER, t_ns INTEGER,"
	" wall_ns INTEGER, card INTEGER, reader TEXT, event INTEGER, seq INTEGER,"
	" body BLOB, rv INTEGER);"
	"CREATE INDEX IF NOT EXISTS markers_card ON markers(pid, card, t_ns);"
	"CREATE TABLE IF NOT EXISTS wire("
	" id INTEGER PRIMARY KEY, pid INTEGER NOT NULL, t_ns INTEGER, t_end_ns INTEGER,"
	" wall_ns INTEGER, reader TEXT, kind INTEGER, sent BLOB, received BLOB, detail TEXT);"
	"CREATE TABLE IF NOT EXISTS drops(pid INTEGER NOT NULL, wall_ns INTEGER, count INTEGER NOT NULL);";

/*
 * Version 1 → 2: the journals table (docs/trace-schema.md, "Durability"):
 * how far each process's journal is imported, updated in the same
 * transaction as the rows imported, and kept after the journal is gone;
 * and the calls columns of version 2 (calls.def: shim_ns).
 */
static const char schema_v2[] =
	"CREATE TABLE IF NOT EXISTS journals("
	" id INTEGER PRIMARY KEY, pid INTEGER NOT NULL, imported INTEGER NOT NULL,"
	" dropped INTEGER NOT NULL DEFAULT 0, state TEXT);"
#define DDL_1(col, type)
#define DDL_2(col, type) "ALTER TABLE calls ADD COLUMN " #col " " type ";"
#define TRACE_CALL_COL(col, since, type, kind, field, bit) DDL_##since(col, type)
#include "calls.def"
#undef TRACE_CALL_COL
#undef DDL_1
#undef DDL_2
	;

/*
 * Version 2 → 3: calls_card leaves out the transmits, most of the rows
 * (every index costs the writer on each insert); the views find a
 * session's transmits through the rowid range between its connect and
 * its disconnect instead.  The views, defined here once, are made anew.
 */
static const char schema_v3[] =
	"DROP INDEX IF EXISTS calls_card;"
	"CREATE INDEX calls_card ON calls(pid, card, fn, id) WHERE " TRACE_CARD_KEYED("calls") ";"
	"DROP VIEW IF EXISTS calls_v; DROP VIEW IF EXISTS sessions;"
	"DROP VIEW IF EXISTS transactions; DROP VIEW IF EXISTS apdus;"
	"DROP VIEW IF EXISTS controls; DROP VIEW IF EXISTS attributes;"
	/* Views for people at the sqlite3 prompt and for the reader. */
	"CREATE VIEW calls_v AS"
	" SELECT c.*, f.name AS function,"
	"  (SELECT p.name FROM processes p WHERE p.pid = c.pid ORDER BY p.rowid DESC LIMIT 1) AS process"
	" FROM calls c LEFT JOIN functions f ON f.id = c.fn;"
	"CREATE VIEW sessions AS"
	" SELECT s.id, s.pid, s.card, s.reader,"
	"  (SELECT p.name FROM processes p WHERE p.pid = s.pid ORDER BY p.rowid DESC LIMIT 1) AS process,"
	"  s.share_mode, s.preferred_protocols, s.active_protocol,"
	"  s.t_enter_ns AS start_ns, coalesce(d.t_return_ns, 0) AS end_ns,"
	"  s.wall_ns AS start_wall_ns, coalesce(d.disposition, -1) AS disposition,"
	"  (SELECT count(*) FROM calls a WHERE a.pid = s.pid AND a.card = s.card AND a.fn = 12"
	"    AND a.id > s.id AND a.id < coalesce(s.end_id, 9223372036854775807)) AS n_apdus,"
	"  (SELECT count(*) FROM calls a WHERE a.pid = s.pid AND a.card = s.card AND a.fn = 7" CARD_KEYED("a")
	"    AND a.rv = 0 AND a.id > s.id AND a.id < coalesce(s.end_id, 9223372036854775807)) AS n_transactions,"
	"  (SELECT count(*) FROM markers m WHERE m.pid = s.pid AND m.card = s.card AND m.rv = 0"
	"    AND m.t_ns >= s.t_enter_ns"
	"    AND (d.id IS NULL OR m.t_ns <= d.t_return_ns)) AS n_markers,"
	"  s.end_id AS end_id"
	" FROM (SELECT c.*, (SELECT min(x.id) FROM calls x WHERE x.pid = c.pid AND x.card = c.card"
	"        AND x.fn = 6 AND x.id > c.id" CARD_KEYED("x") ") AS end_id"
	"       FROM calls c WHERE c.fn = 4 AND c.rv = 0" CARD_KEYED("c") ") s"
	" LEFT JOIN calls d ON d.id = s.end_id;"
	"CREATE VIEW transactions AS"
	" SELECT b.id,"
	"  (SELECT max(x.id) FROM calls x WHERE x.pid = b.pid AND x.card = b.card AND x.fn = 4"
	"    AND x.rv = 0 AND x.id < b.id" CARD_KEYED("x") ") AS session,"
	"  b.pid, b.card, b.t_enter_ns AS start_ns, coalesce(e.t_return_ns, 0) AS end_ns,"
	"  coalesce(e.disposition, -1) AS disposition, b.end_id AS end_id"
	" FROM (SELECT c.*, (SELECT min(x.id) FROM calls x WHERE x.pid = c.pid AND x.card = c.card"
	"        AND x.fn = 8 AND x.id > c.id" CARD_KEYED("x") ") AS end_id"
	"       FROM calls c WHERE c.fn = 7 AND c.rv = 0" CARD_KEYED("c") ") b"
	" LEFT JOIN calls e ON e.id = b.end_id;"
	"CREATE VIEW apdus AS"
	" SELECT c.id AS call_id, c.pid, c.card,"
	"  (SELECT x.reader FROM calls x WHERE x.pid = c.pid AND x.card = c.card AND x.fn = 4"
	"    AND x.rv = 0 AND x.id < c.id" CARD_KEYED("x") " ORDER BY x.id DESC LIMIT 1) AS reader,"
	"  (SELECT p.name FROM processes p WHERE p.pid = c.pid ORDER BY p.rowid DESC LIMIT 1) AS process,"
	"  c.t_enter_ns AS t_ns, c.send_pci AS protocol, c.data_in AS command,"
	"  c.data_out AS response, c.rv, c.redacted"
	" FROM calls c WHERE c.fn = 12;"
	"CREATE VIEW controls AS"
	" SELECT c.id AS call_id, c.pid, c.card, c.code, c.data_in, c.data_out, c.rv"
	" FROM calls c WHERE c.fn = 11;"
	"CREATE VIEW attributes AS"
	" SELECT c.id AS call_id, c.pid, c.card, c.fn, c.code AS attr_id,"
	"  CASE c.fn WHEN 17 THEN c.data_out ELSE c.data_in END AS value, c.rv"
	" FROM calls c WHERE c.fn IN (17, 18);";

/* migrations[v] brings a database from version v to v + 1. */
static const char *const migrations[TRACE_SCHEMA_VERSION] = {
	schema_v1,
	schema_v2,
	schema_v3,
};

static void
seterr(char *err, size_t errlen, const char *path, const char *prefix, const char *what)
{
	if (err && errlen)
		snprintf(err, errlen, "%s: %s%s", path, prefix, what);
}

/*
 * The three facts that identify a trace, read in ONE statement: one
 * statement is one read transaction, so a trace that another process is
 * creating right now is seen either before or after its schema commit,
 * never half way (tables present but the application id not yet set).
 */
static int
header(sqlite3 *db, int64_t *app_id, int64_t *version, int64_t *objects)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = trace_sys.sqlite3_prepare_v2(db,
		"SELECT (SELECT application_id FROM pragma_application_id),"
		" (SELECT user_version FROM pragma_user_version),"
		" (SELECT count(*) FROM sqlite_master)", -1, &st, NULL);
	if (rc != SQLITE_OK)
		goto out;
	rc = trace_sys.sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*app_id = sqlite3_column_int64(st, 0);
		*version = sqlite3_column_int64(st, 1);
		*objects = sqlite3_column_int64(st, 2);
		rc = SQLITE_OK;
	}
out:
	sqlite3_finalize(st);
	return rc;
}

/*
 * Read the header of @p db and refuse what this pcsctap cannot use: a
 * database that is not a trace (a writer may also make a trace of a new,
 * empty database) or a schema newer than TRACE_SCHEMA_VERSION.
 * @param[out] ver the schema version (user_version)
 */
static int
check_header(sqlite3 *db, const char *path, int writing, int64_t *ver,
	     char *err, size_t errlen)
{
	int64_t app_id = 0, objects = 0;
	int foreign;
	int rc, ret = 0;

	rc = header(db, &app_id, ver, &objects);
	if (rc != SQLITE_OK) {
		ret = trace_err_from_sqlite(rc);
		seterr(err, errlen, path, "",
		       ret == TRACE_E_NOT_SQLITE ? "not an SQLite database" : sqlite3_errmsg(db));
		goto out;
	}
	if (writing)
		foreign = app_id != TRACE_APPLICATION_ID && (app_id != 0 || objects > 0);
	else
		foreign = app_id != TRACE_APPLICATION_ID || *ver < 1;
	if (foreign) {
		ret = TRACE_E_FOREIGN;
		seterr(err, errlen, path, "", "an SQLite database, but not a pcsctap trace");
		goto out;
	}
	if (*ver > TRACE_SCHEMA_VERSION) {
		ret = TRACE_E_NEWER_SCHEMA;
		if (err && errlen)
			snprintf(err, errlen,
				 "%s: trace schema version %lld is newer than this pcsctap "
				 "%s (%d); %s",
				 path, (long long)*ver, writing ? "writes" : "understands",
				 TRACE_SCHEMA_VERSION,
				 writing ? "not appending to it" : "use a newer pcsctap");
		goto out;
	}
out:
	return ret;
}

int
trace_schema_check(sqlite3 *db, const char *path, int *version,
		   char *err, size_t errlen)
{
	int64_t ver = 0;
	int ret;

	ret = check_header(db, path, 0, &ver, err, errlen);
	*version = (int)ver;
	return ret;
}

static int
migrate(sqlite3 *db, const char *path, char *err, size_t errlen)
{
	int64_t app_id = 0, ver = 0, objects = 0;
	char sql[160];
	int rc, ret = 0;
	int began = 0;

	/* Take the write lock first, then look again: another process may be
	 * creating the same trace right now. */
	rc = trace_sys.sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		goto fail;
	began = 1;
	rc = header(db, &app_id, &ver, &objects);
	if (rc != SQLITE_OK)
		goto fail;
	if (ver >= TRACE_SCHEMA_VERSION)
		goto commit;
	if (app_id != TRACE_APPLICATION_ID && objects > 0) {
		ret = TRACE_E_FOREIGN;
		seterr(err, errlen, path, "", "an SQLite database, but not a pcsctap trace");
		goto out;
	}
	for (int64_t v = ver; v < TRACE_SCHEMA_VERSION; v++) {
		rc = trace_sys.sqlite3_exec(db, migrations[v], NULL, NULL, NULL);
		if (rc != SQLITE_OK)
			goto fail;
	}
	for (int fn = 1; fn <= TRACE_FN_MAX; fn++) {
		snprintf(sql, sizeof(sql), "INSERT OR REPLACE INTO functions VALUES(%d, '%s')",
			 fn, trace_fn_name(fn));
		rc = trace_sys.sqlite3_exec(db, sql, NULL, NULL, NULL);
		if (rc != SQLITE_OK)
			goto fail;
	}
	snprintf(sql, sizeof(sql), "PRAGMA application_id = %d; PRAGMA user_version = %d",
		 TRACE_APPLICATION_ID, TRACE_SCHEMA_VERSION);
	rc = trace_sys.sqlite3_exec(db, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		goto fail;
commit:
	rc = trace_sys.sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		goto fail;
	began = 0;
	goto out;
fail:
	ret = trace_err_from_sqlite(rc);
	seterr(err, errlen, path, "cannot create the trace schema: ", sqlite3_errmsg(db));
out:
	if (began)
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return ret;
}

/*
 * Switching to WAL needs an exclusive lock, and SQLite does not always
 * wait for it through the busy handler: while another process creates the
 * same trace the switch can fail at once with SQLITE_BUSY.  Retry within
 * the busy timeout (WAL, once set, is persistent: later opens find it).
 */
static int
switch_to_wal(sqlite3 *db, char **msg)
{
	int64_t deadline = trace_mono_ns() + (int64_t)TRACE_WAL_SWITCH_WAIT_MS * 1000000;
	int rc;

	for (;;) {
		sqlite3_free(*msg);
		*msg = NULL;
		rc = trace_sys.sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, msg);
		if ((rc != SQLITE_BUSY && rc != SQLITE_LOCKED) || trace_mono_ns() >= deadline)
			return rc;
		usleep(1000);
	}
}

int
trace_schema_setup(sqlite3 *db, const char *path, char *err, size_t errlen)
{
	int64_t ver = 0;
	char *msg = NULL;
	int rc, ret = 0;

	ret = check_header(db, path, 1, &ver, err, errlen);
	if (ret < 0)
		goto out;
	/* WAL: readers never block the writer, a commit needs no fsync with
	 * synchronous=NORMAL, and a killed process loses nothing committed.
	 * A trace left as one file (not WAL, see trace_db_close) is switched
	 * back; while another process keeps it locked the switch cannot be
	 * made, and the writer goes on in rollback-journal mode rather than
	 * not at all. */
	rc = switch_to_wal(db, &msg);
	if (rc != SQLITE_OK && rc != SQLITE_BUSY && rc != SQLITE_LOCKED) {
		ret = trace_err_from_sqlite(rc);
		seterr(err, errlen, path, "cannot switch to WAL: ",
		       msg ? msg : sqlite3_errmsg(db));
		goto out;
	}
	rc = trace_sys.sqlite3_exec(db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		ret = trace_err_from_sqlite(rc);
		seterr(err, errlen, path, "", sqlite3_errmsg(db));
		goto out;
	}
	if (ver < TRACE_SCHEMA_VERSION)
		ret = migrate(db, path, err, errlen);
out:
	sqlite3_free(msg);
	return ret;
}

void
trace_db_close(sqlite3 *db, int last)
{
	if (!db)
		return;
	if (last) {
		/* Fails at once (no busy handler) while another connection is
		 * open: exactly "am I the last one". */
		sqlite3_busy_handler(db, NULL, NULL);
		if (trace_sys.sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)",
					   NULL, NULL, NULL) == SQLITE_OK)
			trace_sys.sqlite3_exec(db, "PRAGMA journal_mode = DELETE", NULL, NULL, NULL);
	} else {
		sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
	}
	sqlite3_close_v2(db);
}

int
trace_check_appendable(const char *path, char *err, size_t errlen)
{
	sqlite3 *db = NULL;
	struct stat st;
	int64_t ver = 0;
	int created = 0;
	int rc, ret;

	if (trace_sys.lstat(path, &st) < 0 && errno == ENOENT)
		return 0;
	/* What the file is first (the clearer error), then whose it is. */
	ret = trace_file_prepare(path, 0, &created);
	if (ret < 0)
		goto fail;
	rc = trace_sys.sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOFOLLOW |
				       SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		ret = trace_err_from_sqlite(rc);
		goto fail;
	}
	ret = check_header(db, path, 1, &ver, err, errlen);
	/* Locked by a writer right now: a trace being written, not refused. */
	if (ret == -EBUSY)
		ret = 0;
	if (ret < 0)
		goto out;
	/* The writer's own checks, O_EXCL creating nothing: the file exists. */
	ret = trace_file_prepare(path, 1, &created);
	if (created) {
		/* It vanished in between: leave no empty file behind. */
		unlink(path);
		ret = 0;
	}
fail:
	if (ret < 0 && err && errlen)
		snprintf(err, errlen, "%s: %s", path, trace_strerror(ret));
out:
	sqlite3_close_v2(db);
	return ret;
}

int
trace_db_open_rw(const char *path, int busy_timeout_ms, sqlite3 **out,
		 char *err, size_t errlen)
{
	sqlite3 *db = NULL;
	int created = 0;
	int rc, ret;

	*out = NULL;
	ret = trace_file_prepare(path, 1, &created);
	if (ret < 0) {
		if (err && errlen)
			snprintf(err, errlen, "%s: %s", path, trace_strerror(ret));
		goto out;
	}
	rc = trace_sys.sqlite3_open_v2(path, &db,
				       SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW |
				       SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		ret = trace_err_from_sqlite(rc);
		if (ret == -ENOENT)
			ret = -EACCES;
		if (err && errlen)
			snprintf(err, errlen, "%s: cannot open: %s", path,
				 db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		goto out;
	}
	sqlite3_extended_result_codes(db, 0);
	sqlite3_busy_timeout(db, busy_timeout_ms);
	ret = trace_schema_setup(db, path, err, errlen);
	if (ret < 0)
		goto out;
	/* Fewer, larger checkpoints: the writer is the only one paying for them. */
	trace_sys.sqlite3_exec(db, "PRAGMA wal_autocheckpoint = 4000", NULL, NULL, NULL);
	*out = db;
	db = NULL;
out:
	if (db)
		sqlite3_close_v2(db);
	return ret;
}
