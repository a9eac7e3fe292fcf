/*
 * test_schema.c — schema v1 on disk: version and application id, the
 * tables and views of docs/trace-schema.md, permissions of the trace and
 * its -wal/-shm whatever the umask, symbolic links refused, and what a
 * reader says about files that are not (current) traces.
 */
#include "helpers.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

TestSuite(schema, .init = th_setup, .fini = th_teardown, .timeout = 60);

static void
make_trace(void)
{
	struct trace_writer *w = NULL;

	cr_assert_eq(trace_writer_open(&w, th_trace, NULL), 0);
	trace_writer_close(w);
}

Test(schema, version_and_objects)
{
	static const char *const objects[] = {
		"functions", "processes", "calls", "reader_states", "markers", "wire", "drops",
		"journals", "calls_v", "sessions", "transactions", "apdus", "controls", "attributes",
	};
	char sql[256];

	make_trace();
	cr_assert_eq(th_sql_int(th_trace, "PRAGMA user_version"), TRACE_SCHEMA_VERSION);
	cr_assert_eq(th_sql_int(th_trace, "PRAGMA application_id"), 0x50435354);
	/* The last writer out leaves one self-contained file. */
	cr_assert_str_eq(th_sql_text(th_trace, "PRAGMA journal_mode"), "delete");
	for (size_t i = 0; i < sizeof(objects) / sizeof(objects[0]); i++) {
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM sqlite_master WHERE name = '%s'",
			 objects[i]);
		cr_assert_eq(th_sql_int(th_trace, sql), 1, "%s missing", objects[i]);
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", objects[i]);
		cr_assert_geq(th_sql_int(th_trace, sql), 0, "%s unreadable", objects[i]);
	}
	cr_assert_eq(th_sql_int(th_trace, "SELECT count(*) FROM functions"), TRACE_FN_MAX);
	cr_assert_str_eq(th_sql_text(th_trace, "SELECT name FROM functions WHERE id = 12"),
			 "SCardTransmit");
	cr_assert_eq(th_sql_int(th_trace, "SELECT count(*) FROM processes"), 1);
	/* Reopening an existing trace appends, and does not redo the schema. */
	make_trace();
	cr_assert_eq(th_sql_int(th_trace, "SELECT count(*) FROM processes"), 2);
	cr_assert_eq(th_sql_int(th_trace, "SELECT count(*) FROM functions"), TRACE_FN_MAX);
}

Test(schema, fn_names)
{
	cr_assert_str_eq(trace_fn_name(TRACE_FN_SCardConnect), "SCardConnect");
	cr_assert_null(trace_fn_name(0));
	cr_assert_null(trace_fn_name(TRACE_FN_MAX + 1));
	cr_assert_eq(trace_fn_from_name("Transmit"), TRACE_FN_SCardTransmit);
	cr_assert_eq(trace_fn_from_name("SCardGetAttrib"), TRACE_FN_SCardGetAttrib);
	cr_assert_eq(trace_fn_from_name("nope"), 0);
	cr_assert_str_eq(trace_strerror(TRACE_E_SYMLINK), "the trace path is a symbolic link (refused)");
	cr_assert_str_eq(trace_strerror(-ENOENT), strerror(ENOENT));
}

struct umask_case {
	mode_t mask;
};

ParameterizedTestParameters(schema, files_are_0600)
{
	static struct umask_case cases[] = { { 0 }, { 022 }, { 077 }, { 0277 } };

	return cr_make_param_array(struct umask_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct umask_case *uc, schema, files_are_0600)
{
	static const char *const suffix[] = { "", "-wal", "-shm" };
	struct trace_writer *w = NULL;
	struct trace_call c;
	uint8_t cmd[5], rsp[2];
	mode_t old = umask(uc->mask);
	struct stat st;
	char p[512];

	cr_assert_eq(trace_writer_open(&w, th_trace, NULL), 0);
	th_transmit(&c, cmd, rsp, 1);
	trace_write_call(w, &c);
	cr_assert_eq(trace_writer_flush(w, 10000), 0);
	umask(old);
	/* While the writer is open all three files exist. */
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s%s", th_trace, suffix[i]);
		cr_assert_eq(stat(p, &st), 0, "%s: %s", p, strerror(errno));
		cr_assert_eq(st.st_mode & 07777, 0600, "%s is %o with umask %o", p,
			     st.st_mode & 07777, uc->mask);
	}
	trace_writer_close(w);
}

Test(schema, symlink_refused)
{
	struct trace_writer *w = NULL;
	char *target = th_path(th_dir, "target.db");
	char *dangling = th_path(th_dir, "dangling.db");
	char *err;
	struct stat st;

	make_trace();
	cr_assert_eq(symlink(th_trace, target), 0);
	th_stderr_begin();
	cr_assert_eq(trace_writer_open(&w, target, NULL), TRACE_E_SYMLINK);
	cr_assert_null(w);
	/* A dangling link must not create its target either. */
	cr_assert_eq(symlink("/tmp/pcsctap-should-not-exist.db", dangling), 0);
	cr_assert_eq(trace_writer_open(&w, dangling, NULL), TRACE_E_SYMLINK);
	err = th_stderr_end();
	cr_assert_eq(th_count_warnings(err), 2, "%s", err);
	cr_assert(strstr(err, "symbolic link"));
	cr_assert_neq(lstat("/tmp/pcsctap-should-not-exist.db", &st), 0);
	free(err);
	free(target);
	free(dangling);
}

static int
reader_error(char *msg, size_t len)
{
	struct trace_reader *r = NULL;
	int rc = trace_reader_open(&r, th_trace, msg, len);

	cr_assert_null(r);
	return rc;
}

Test(schema, reader_refuses_newer_schema)
{
	struct trace_writer *w = NULL;
	sqlite3 *db = NULL;
	char msg[512];
	char *err;

	make_trace();
	cr_assert_eq(sqlite3_open(th_trace, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	cr_assert_eq(reader_error(msg, sizeof(msg)), TRACE_E_NEWER_SCHEMA);
	cr_assert(strstr(msg, "schema version 99 is newer"), "%s", msg);
	cr_assert(strstr(msg, th_trace), "%s", msg);
	/* A writer does not append to it either, and says so once. */
	th_stderr_begin();
	cr_assert_eq(trace_writer_open(&w, th_trace, NULL), TRACE_E_NEWER_SCHEMA);
	err = th_stderr_end();
	cr_assert_eq(th_count_warnings(err), 1, "%s", err);
	cr_assert(strstr(err, "newer"), "%s", err);
	free(err);
}

Test(schema, reader_errors)
{
	char msg[512];
	sqlite3 *db = NULL;
	int fd;

	cr_assert_eq(reader_error(msg, sizeof(msg)), -ENOENT);
	cr_assert(strstr(msg, "No such file"), "%s", msg);

	fd = open(th_trace, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "hello, this is not a database at all........", 44), 44);
	close(fd);
	cr_assert_eq(reader_error(msg, sizeof(msg)), TRACE_E_NOT_SQLITE);
	cr_assert(strstr(msg, "not an SQLite database"), "%s", msg);

	unlink(th_trace);
	cr_assert_eq(sqlite3_open(th_trace, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	cr_assert_eq(reader_error(msg, sizeof(msg)), TRACE_E_FOREIGN);
	cr_assert(strstr(msg, "not a pcsctap trace"), "%s", msg);

	/* A damaged trace: a valid header, garbage after it. */
	unlink(th_trace);
	make_trace();
	fd = open(th_trace, O_WRONLY);
	cr_assert_geq(fd, 0);
	for (off_t off = 4096; off < 4096 * 8; off += 64)
		cr_assert_eq(pwrite(fd, "garbage garbage garbage garbage garbage garbage garbage garbage!", 64, off), 64);
	close(fd);
	{
		struct trace_reader *r = NULL;
		struct trace_iter *it = NULL;
		struct trace_call_row row;
		int rc = trace_reader_open(&r, th_trace, msg, sizeof(msg));

		/* Either the open or the first read reports it; nothing crashes. */
		if (rc == 0) {
			rc = trace_iter_calls(r, NULL, &it);
			if (rc == 0)
				rc = trace_iter_call_next(it, &row);
			trace_iter_end(it);
			trace_reader_close(r);
			cr_assert(rc < 0, "damage not reported (%d)", rc);
		} else {
			cr_assert(rc < 0);
		}
	}
}

/* An older trace (here: a stamped but empty version 0) is migrated. */
Test(schema, writer_migrates_older)
{
	struct trace_writer *w = NULL;
	sqlite3 *db = NULL;
	int fd;

	fd = open(th_trace, O_WRONLY | O_CREAT | O_EXCL, 0600);
	cr_assert_geq(fd, 0);
	close(fd);
	cr_assert_eq(sqlite3_open(th_trace, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, "PRAGMA application_id = 1346589524; PRAGMA user_version = 0;"
				  "CREATE TABLE old_notes(x)", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	cr_assert_eq(trace_writer_open(&w, th_trace, NULL), 0);
	trace_writer_close(w);
	cr_assert_eq(th_sql_int(th_trace, "PRAGMA user_version"), TRACE_SCHEMA_VERSION);
	cr_assert_eq(th_sql_int(th_trace, "SELECT count(*) FROM processes"), 1);
}

/* A foreign database is never written to. */
Test(schema, writer_refuses_foreign)
{
	struct trace_writer *w = NULL;
	sqlite3 *db = NULL;
	char *err;

	cr_assert_eq(sqlite3_open(th_trace, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, "CREATE TABLE mine(x)", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	cr_assert_eq(chmod(th_trace, 0600), 0);
	th_stderr_begin();
	cr_assert_eq(trace_writer_open(&w, th_trace, NULL), TRACE_E_FOREIGN);
	err = th_stderr_end();
	cr_assert_eq(th_count_warnings(err), 1, "%s", err);
	free(err);
	cr_assert_eq(th_sql_int(th_trace, "SELECT count(*) FROM sqlite_master"), 1);
}

/*
 * A version 1 trace (no journals table, no calls.shim_ns) still reads:
 * the newer column reads as 0; a writer migrates it to the current version.
 */
Test(schema, version_1_reads_and_migrates)
{
	struct trace_writer *w = NULL;
	struct trace_reader *r = NULL;
	struct trace_iter *it = NULL;
	struct trace_call_row row;

	make_trace();
	cr_assert_eq(th_sql_exec(th_trace, "ALTER TABLE calls DROP COLUMN shim_ns;"
				 " DROP TABLE journals; PRAGMA user_version = 1;"), 0);
	th_sql_exec(th_trace, "INSERT INTO calls(pid, fn, t_enter_ns) VALUES(1, 12, 5)");
	cr_assert_eq(trace_reader_open(&r, th_trace, NULL, 0), 0);
	cr_assert_eq(trace_reader_schema_version(r), 1);
	cr_assert_eq(trace_iter_calls(r, NULL, &it), 0);
	cr_assert_eq(trace_iter_call_next(it, &row), 1);
	cr_assert_eq(row.call.fn, 12);
	cr_assert_eq(row.call.shim_ns, 0);
	trace_iter_end(it);
	trace_reader_close(r);
	cr_assert_eq(trace_writer_open(&w, th_trace, NULL), 0);
	trace_writer_close(w);
	cr_assert_eq(th_sql_int(th_trace, "PRAGMA user_version"), TRACE_SCHEMA_VERSION);
	cr_assert_eq(th_sql_int(th_trace, "SELECT count(shim_ns) FROM calls"), 0);
	cr_assert_eq(th_sql_int(th_trace, "SELECT count(*) FROM journals"), 1);
}

/* The EXPLAIN QUERY PLAN lines of @p sql on the trace, joined by '|'. */
static char *
query_plan(const char *sql)
{
	char *plan = calloc(1, 1), *more;
	sqlite3_stmt *st = NULL;
	sqlite3 *db = NULL;
	char q[512];

	snprintf(q, sizeof(q), "EXPLAIN QUERY PLAN %s", sql);
	cr_assert_eq(sqlite3_open_v2(th_trace, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
	while (sqlite3_step(st) == SQLITE_ROW) {
		cr_assert_geq(asprintf(&more, "%s%s|", plan, (const char *)sqlite3_column_text(st, 3)), 0);
		free(plan);
		plan = more;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return plan;
}

/*
 * Version 3: calls_card leaves the transmits out (a version 2 trace is
 * migrated to it), the views still count them, and every lookup of a
 * session's or transaction's end still goes through the index.
 */
Test(schema, version_2_migrates_to_card_index_without_transmits)
{
	static const char *const lookups[] = {
		"SELECT * FROM sessions", "SELECT * FROM transactions", "SELECT reader FROM apdus",
	};
	struct trace_writer *w = NULL;
	char *plan;

	make_trace();
	cr_assert_eq(th_sql_exec(th_trace,
				 "DROP INDEX calls_card;"
				 " CREATE INDEX calls_card ON calls(pid, card, fn, id) WHERE card IS NOT NULL;"
				 " INSERT INTO calls(pid, fn, card, rv, reader) VALUES(9, 4, 7, 0, 'R');"
				 " INSERT INTO calls(pid, fn, card, rv) VALUES(9, 12, 7, 0), (9, 7, 7, 0),"
				 "  (9, 12, 7, 0), (8, 12, 7, 0), (9, 8, 7, 0), (9, 12, 7, 0), (9, 6, 7, 0),"
				 "  (9, 12, 7, 0);"
				 " PRAGMA user_version = 2;"), 0);
	cr_assert_eq(trace_writer_open(&w, th_trace, NULL), 0);
	trace_writer_close(w);
	cr_assert_eq(th_sql_int(th_trace, "PRAGMA user_version"), 3);
	cr_assert_eq(th_sql_int(th_trace, "SELECT count(*) FROM sqlite_master WHERE name = 'calls_card'"
				    " AND sql LIKE '%fn <> 12%'"), 1);
	cr_assert_eq(th_sql_int(th_trace, "SELECT count(*) FROM calls INDEXED BY calls_card"
				    " WHERE card IS NOT NULL AND fn <> 12"), 4);
	/* Pid 8's transmit and the one after the disconnect are not the session's. */
	cr_assert_str_eq(th_sql_text(th_trace, "SELECT n_apdus || ' ' || n_transactions || ' ' ||"
					  " (end_id - id) FROM sessions"), "3 1 7");
	cr_assert_str_eq(th_sql_text(th_trace, "SELECT session || ' ' || (end_id - id) FROM transactions"),
			 "1 3");
	cr_assert_eq(th_sql_int(th_trace, "SELECT count(*) FROM apdus WHERE reader = 'R'"), 4);
	for (size_t i = 0; i < sizeof(lookups) / sizeof(lookups[0]); i++) {
		plan = query_plan(lookups[i]);
		cr_assert(strstr(plan, "INDEX calls_card (pid=? AND card=? AND fn=?"),
			  "%s: %s", lookups[i], plan);
		free(plan);
	}
}
