/*
 * test_faults.c — the writer and reader facing a hostile environment:
 * read-only and missing directories, a full disk (a real 1 MiB tmpfs when
 * root), a file that is not SQLite, a trace locked by another process for
 * 5 s, and SQLITE_BUSY / SQLITE_FULL / ENOSPC forced through trace_sys.
 * Each time: one "pcsctap: " warning at most, producers never block or
 * fail, nothing crashes, and what is lost is counted.
 */
#include "helpers.h"
#include "sys.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void
teardown(void)
{
	trace_sys_reset();
	umount2(th_dir, MNT_DETACH);
	th_teardown();
}

TestSuite(faults, .init = th_setup, .fini = teardown, .timeout = 120);

static int
in_ci(void)
{
	const char *ci = getenv("CI");

	return ci && !strcmp(ci, "true");
}

static void
expect_open_fails(const char *p, int expect, const char *words)
{
	struct trace_writer *w = NULL;
	char *err;
	int rc;

	th_stderr_begin();
	rc = trace_writer_open(&w, p, NULL);
	/* What the shim does next: keep calling with no writer. */
	th_write_transmits(w, 0, 10);
	err = th_stderr_end();
	cr_assert_eq(rc, expect, "got %d (%s)", rc, trace_strerror(rc));
	cr_assert_null(w);
	cr_assert_eq(th_count_warnings(err), 1, "%s", err);
	cr_assert(strstr(err, words), "'%s' not in %s", words, err);
	free(err);
}

Test(faults, missing_directory)
{
	char *p = th_path(th_dir, "no/such/dir/t.db");

	expect_open_fails(p, -ENOENT, "No such file or directory");
	free(p);
}

Test(faults, read_only_directory)
{
	if (geteuid() == 0) {
		/* root ignores permission bits: use a read-only mount. */
		cr_assert_eq(mount("tmpfs", th_dir, "tmpfs", MS_RDONLY, "size=64k"), 0, "%s",
			     strerror(errno));
		expect_open_fails(th_trace, -EROFS, "Read-only file system");
	} else {
		cr_assert_eq(chmod(th_dir, 0555), 0);
		expect_open_fails(th_trace, -EACCES, "Permission denied");
		chmod(th_dir, 0700);
	}
}

Test(faults, not_sqlite)
{
	int fd = open(th_trace, O_WRONLY | O_CREAT, 0600);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "#!/bin/sh\necho this is a script, not a trace\n", 46), 46);
	close(fd);
	expect_open_fails(th_trace, TRACE_E_NOT_SQLITE, "not an SQLite database");
	/* Untouched. */
	cr_assert_eq(th_sql_int(th_trace, "SELECT count(*) FROM sqlite_master"), -1);
}

Test(faults, newer_schema)
{
	struct trace_writer *w = NULL;
	sqlite3 *db = NULL;

	cr_assert_eq(trace_writer_open(&w, th_trace, NULL), 0);
	trace_writer_close(w);
	cr_assert_eq(sqlite3_open(th_trace, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, "PRAGMA user_version = 7", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	expect_open_fails(th_trace, TRACE_E_NEWER_SCHEMA, "newer than this pcsctap");
}

Test(faults, disk_full_tmpfs)
{
	struct trace_writer_options opt = { .queue_max_events = 1 << 20, .queue_max_bytes = 256 << 20 };
	struct trace_writer *w = NULL;
	struct trace_writer_stats s;
	struct trace_reader *r = NULL;
	uint8_t big[261];
	struct trace_call c;
	uint8_t cmd[5], rsp[2];
	char *err;
	int rc;

	if (geteuid() != 0 && !in_ci())
		cr_skip_test("needs root to mount a 1 MiB tmpfs");
	cr_assert_eq(mount("tmpfs", th_dir, "tmpfs", 0, "size=1m,mode=0700"), 0, "%s", strerror(errno));
	memset(big, 0x42, sizeof(big));
	th_stderr_begin();
	cr_assert_eq(trace_writer_open(&w, th_trace, &opt), 0);
	for (int i = 0; i < 20000; i++) {
		th_transmit(&c, cmd, rsp, i);
		c.in.data = big;
		c.in.len = sizeof(big);
		trace_write_call(w, &c);
	}
	rc = trace_writer_flush(w, 60000);
	/* More after the disk filled up: still accepted, still no crash. */
	th_write_transmits(w, 100000, 100);
	trace_writer_flush(w, 60000);
	trace_writer_get_stats(w, &s);
	trace_writer_close(w);
	err = th_stderr_end();
	cr_assert_eq(rc, -EIO, "flush reports the loss (%d)", rc);
	cr_assert_eq(s.enqueued, 20100);
	cr_assert_lt(s.written, s.enqueued);
	/* One warning for the full disk (no room for a journal either, so
	 * the events wait in memory): it says that what is not written by the
	 * end is lost. */
	cr_assert_eq(th_count_warnings(err), 1, "%s", err);
	cr_assert(strstr(err, "disk full"), "%s", err);
	cr_assert(strstr(err, "lost, uncounted"), "%s", err);
	free(err);
	/* The trace stays readable and consistent. */
	cr_assert_eq(trace_reader_open(&r, th_trace, NULL, 0), 0);
	trace_reader_close(r);
	cr_assert_str_eq(th_sql_text(th_trace, "PRAGMA integrity_check"), "ok");
	cr_assert_gt(th_sql_int(th_trace, "SELECT count(*) FROM calls"), 0);
}

/*
 * Another process holds the write lock for 5 s.  The writer is opened
 * while the lock is held (no wait: the file is already a WAL trace),
 * callers never wait, one warning, everything written afterwards.
 */
Test(faults, locked_by_another_process_5s)
{
	struct trace_writer_options opt = { .busy_timeout_ms = 1000 };
	struct trace_writer *w = NULL;
	int64_t t0, t_enqueue;
	int pfd[2];
	pid_t pid;
	char c;
	char *err;
	int st;

	cr_assert_eq(trace_writer_open(&w, th_trace, NULL), 0);
	trace_writer_close(w);
	w = NULL;
	cr_assert_eq(pipe(pfd), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		sqlite3 *db = NULL;

		close(pfd[0]);
		if (sqlite3_open(th_trace, &db) != SQLITE_OK ||
		    sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL) != SQLITE_OK)
			_exit(1);
		if (write(pfd[1], "L", 1) != 1)
			_exit(1);
		sleep(5);
		sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
		_exit(0);
	}
	close(pfd[1]);
	cr_assert_eq(read(pfd[0], &c, 1), 1);
	close(pfd[0]);
	th_stderr_begin();
	t0 = trace_mono_ns();
	cr_assert_eq(trace_writer_open(&w, th_trace, &opt), 0);
	th_write_transmits(w, 0, 1000);
	t_enqueue = trace_mono_ns() - t0;
	cr_assert_eq(trace_writer_flush(w, 60000), 0);
	trace_writer_close(w);
	err = th_stderr_end();
	waitpid(pid, &st, 0);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the locker failed");
	cr_log_info("open + 1000 enqueues while locked took %.1f ms", t_enqueue / 1e6);
	cr_assert_eq(th_count_warnings(err), 1, "%s", err);
	cr_assert(strstr(err, "locked by another process"), "%s", err);
	free(err);
	cr_assert_eq(th_sql_int(th_trace, "SELECT count(*) FROM calls"), 1000);
}

/*
 * A process that exits while another holds the lock for longer than the
 * exit flush (2 s): its events cannot be written at exit.  They are not
 * lost: they stay in its journal, one warning says so, exit is not held
 * up for longer than the flush bound, and the next opener imports them.
 * (Regression: they were lost, silently at first.)
 */
Test(faults, exit_while_locked_warns)
{
	struct trace_writer *w = NULL;
	int64_t t0, t_exit;
	pid_t pid;
	char *err;
	int st;

	cr_assert_eq(trace_writer_open(&w, th_trace, NULL), 0);
	trace_writer_close(w);
	w = NULL;
	cr_assert_eq(th_lock_begin(th_trace, "BEGIN EXCLUSIVE"), 0);
	th_stderr_begin();
	t0 = trace_mono_ns();
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		if (trace_writer_open(&w, th_trace, NULL) != 0)
			_exit(1);
		th_write_transmits(w, 0, 10);
		exit(0);	/* atexit: the bounded flush times out */
	}
	waitpid(pid, &st, 0);
	t_exit = trace_mono_ns() - t0;
	err = th_stderr_end();
	th_lock_end();
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child failed");
	cr_log_info("exit took %.1f s", t_exit / 1e9);
	cr_assert_eq(th_count_warnings(err), 1, "%s", err);
	cr_assert(strstr(err, "10 events not written"), "%s", err);
	cr_assert(strstr(err, "stay in the journal"), "%s", err);
	free(err);
	cr_assert_eq(th_sql_int(th_trace, "SELECT count(*) FROM calls"), 0);
	cr_assert_eq(trace_recover(th_trace), 10);
	cr_assert_eq(th_sql_int(th_trace, "SELECT count(*) FROM calls"), 10);
	cr_assert_eq(th_sql_int(th_trace, "SELECT count(*) FROM processes"), 2);
}

/* Injected faults through the function table. */

static int busy_left;
static int full_left;

static int
step_busy(sqlite3_stmt *st)
{
	if (busy_left > 0 && !strcmp(sqlite3_sql(st), "BEGIN IMMEDIATE")) {
		__atomic_sub_fetch(&busy_left, 1, __ATOMIC_RELAXED);
		return SQLITE_BUSY;
	}
	return sqlite3_step(st);
}

Test(faults, injected_busy)
{
	struct trace_writer_options opt = { .busy_timeout_ms = 50 };
	struct trace_writer *w = NULL;
	char *err;

	cr_assert_eq(trace_writer_open(&w, th_trace, &opt), 0);
	cr_assert_eq(trace_writer_flush(w, 10000), 0);
	busy_left = 20;
	trace_sys.sqlite3_step = step_busy;
	th_stderr_begin();
	th_write_transmits(w, 0, 500);
	cr_assert_eq(trace_writer_flush(w, 60000), 0);
	err = th_stderr_end();
	trace_writer_close(w);
	cr_assert_eq(busy_left, 0);
	cr_assert_eq(th_count_warnings(err), 1, "%s", err);
	cr_assert(strstr(err, "locked"), "%s", err);
	free(err);
	cr_assert_eq(th_sql_int(th_trace, "SELECT count(*) FROM calls"), 500);
}

static int
step_full(sqlite3_stmt *st)
{
	if (full_left > 0 && strstr(sqlite3_sql(st), "INTO calls(")) {
		__atomic_sub_fetch(&full_left, 1, __ATOMIC_RELAXED);
		return SQLITE_FULL;
	}
	return sqlite3_step(st);
}

Test(faults, injected_sqlite_full)
{
	struct trace_writer *w = NULL;
	struct trace_writer_stats s;
	char *err;
	int rc;

	cr_assert_eq(trace_writer_open(&w, th_trace, NULL), 0);
	cr_assert_eq(trace_writer_flush(w, 10000), 0);
	full_left = 3;
	trace_sys.sqlite3_step = step_full;
	th_stderr_begin();
	th_write_transmits(w, 0, 300);
	/* The first attempt fails: the flush says so rather than wait. */
	cr_assert_eq(trace_writer_flush(w, 60000), -EIO);
	/* The writer retries on its own until the disk takes the rows. */
	for (int tries = 0; (rc = trace_writer_flush(w, 60000)) == -EIO && tries < 10; tries++)
		;
	cr_assert_eq(rc, 0, "written again once space is back (%d)", rc);
	cr_assert_eq(full_left, 0, "set-up: every injected failure was met");
	th_write_transmits(w, 300, 100);
	cr_assert_eq(trace_writer_flush(w, 60000), 0);
	err = th_stderr_end();
	trace_writer_get_stats(w, &s);
	trace_writer_close(w);
	cr_assert_eq(th_count_warnings(err), 1, "%s", err);
	cr_assert(strstr(err, "disk full"), "%s", err);
	free(err);
	/* Refused inserts stay in the journal and are retried: nothing lost. */
	cr_assert_eq(s.dropped, 0);
	cr_assert_eq(th_sql_int(th_trace, "SELECT count(*) FROM calls"), 400);
	cr_assert_eq(th_sql_int(th_trace, "SELECT count(DISTINCT code) FROM calls"), 400);
	cr_assert_eq(th_sql_int(th_trace, "SELECT count(*) FROM drops"), 0);
}

static int
open_enospc(const char *p, int flags, mode_t mode)
{
	if (flags & O_CREAT) {
		errno = ENOSPC;
		return -1;
	}
	return open(p, flags, mode);
}

Test(faults, injected_enospc_on_create)
{
	trace_sys.open = open_enospc;
	expect_open_fails(th_trace, -ENOSPC, "No space left on device");
}

/* The reader under injected faults: a clear error, no crash. */
static int
step_ioerr(sqlite3_stmt *st)
{
	(void)st;
	return SQLITE_IOERR;
}

Test(faults, reader_io_error)
{
	struct trace_writer *w = NULL;
	struct trace_reader *r = NULL;
	struct trace_iter *it = NULL;
	struct trace_call_row row;
	char msg[256];

	cr_assert_eq(trace_writer_open(&w, th_trace, NULL), 0);
	th_write_transmits(w, 0, 10);
	trace_writer_close(w);
	cr_assert_eq(trace_reader_open(&r, th_trace, msg, sizeof(msg)), 0);
	cr_assert_eq(trace_iter_calls(r, NULL, &it), 0);
	trace_sys.sqlite3_step = step_ioerr;
	cr_assert_eq(trace_iter_call_next(it, &row), -EIO);
	cr_assert_str_neq(trace_reader_errmsg(r), "no error");
	trace_iter_end(it);
	trace_reader_close(r);
	trace_sys_reset();
	cr_assert_eq(trace_reader_open(&r, th_trace, msg, sizeof(msg)), 0);
	trace_sys.sqlite3_step = step_ioerr;
	cr_assert_eq(trace_iter_sessions(r, NULL, &it), 0);
	cr_assert_lt(trace_iter_session_next(it, &(struct trace_session){ 0 }), 0);
	trace_iter_end(it);
	trace_reader_close(r);
}
