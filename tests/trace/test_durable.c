/*
 * test_durable.c — the trace survives the process: journals of processes
 * that ended without a word (_exit, SIGKILL, exec) are imported by the next
 * opener exactly once, also by two at the same time and after a recoverer
 * that was killed half way; a live process's journal is never imported;
 * damaged journals and journals of a newer version are refused without a
 * crash; the application's descriptors and locks are never the tracer's.
 */
#include "helpers.h"
#include "journal.h"
#include "sys.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

TestSuite(durable, .init = th_setup, .fini = th_teardown, .timeout = 120);

static int
wait_status(pid_t pid)
{
	int st = 0;

	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The journal files beside th_trace; the first one's path in @p first. */
static int
journals(char *first, size_t len)
{
	struct dirent *de;
	DIR *d = opendir(th_dir);
	int n = 0;

	cr_assert_not_null(d);
	while ((de = readdir(d))) {
		if (!strstr(de->d_name, JOURNAL_SUFFIX))
			continue;
		if (!n++ && first)
			snprintf(first, len, "%s/%s", th_dir, de->d_name);
	}
	closedir(d);
	return n;
}

static int64_t
calls_of(pid_t pid)
{
	char sql[128];

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM calls WHERE pid = %d", (int)pid);
	return th_sql_int(th_trace, sql);
}

/* Exactly the calls numbered 0..n-1, each once. */
static void
assert_exactly(int64_t n)
{
	cr_assert_eq(th_sql_int(th_trace, "SELECT count(*) FROM calls"), n);
	cr_assert_eq(th_sql_int(th_trace, "SELECT count(DISTINCT code) FROM calls"), n);
	if (n)
		cr_assert_eq(th_sql_int(th_trace, "SELECT max(code) FROM calls"), n - 1);
	cr_assert_str_eq(th_sql_text(th_trace, "PRAGMA integrity_check"), "ok");
}

/* A trace that another process (sqlite3) holds the write lock of until
 * th_lock_end(). */
static void
trace_locked(void)
{
	struct trace_writer *w = NULL;

	cr_assert_eq(trace_writer_open(&w, th_trace, NULL), 0);
	trace_writer_close(w);
	cr_assert_eq(th_lock_begin(th_trace, "BEGIN IMMEDIATE"), 0);
}

/*
 * A process that writes @p n numbered calls and then ends by _exit(0)
 * while another process holds the trace's write lock: nothing of it is in
 * the trace, everything is in its journal.
 */
static pid_t
dead_journal(int n)
{
	struct trace_writer_options opt = { .queue_max_events = 1 << 22,
					     .queue_max_bytes = 256 << 20 };
	pid_t pid;

	cr_assert_eq(trace_recover(th_trace), 0);
	trace_locked();
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct trace_writer *w = NULL;

		if (trace_writer_open(&w, th_trace, &opt) != 0)
			_exit(2);
		th_write_transmits(w, 0, n);
		_exit(0);
	}
	cr_assert_eq(wait_status(pid), 0);
	th_lock_end();
	/* Set-up proved: the process is gone, its calls only in its journal. */
	cr_assert_eq(calls_of(pid), 0);
	cr_assert_eq(journals(NULL, 0), 1);
	return pid;
}

Test(durable, exit_without_flush_is_recovered)
{
	pid_t pid = dead_journal(1000);

	cr_assert_eq(trace_recover(th_trace), 1000);
	assert_exactly(1000);
	cr_assert_eq(calls_of(pid), 1000);
	cr_assert_eq(journals(NULL, 0), 0, "the journal is removed once imported");
	/* Its processes row came from the journal too. */
	cr_assert_eq(th_sql_int(th_trace, "SELECT count(*) FROM processes"), 2);
	/* A second recovery finds nothing. */
	cr_assert_eq(trace_recover(th_trace), 0);
	assert_exactly(1000);
	cr_assert_str_eq(th_sql_text(th_trace, "PRAGMA journal_mode"), "delete");
}

Test(durable, reader_open_recovers)
{
	struct trace_reader *r = NULL;

	dead_journal(100);
	cr_assert_eq(trace_reader_open(&r, th_trace, NULL, 0), 0);
	trace_reader_close(r);
	assert_exactly(100);
}

Test(durable, writer_open_recovers)
{
	struct trace_writer *w = NULL;
	pid_t pid = dead_journal(100);

	cr_assert_eq(trace_writer_open(&w, th_trace, NULL), 0);
	trace_writer_close(w);
	cr_assert_eq(calls_of(pid), 100);
	assert_exactly(100);
}

#define BIG 200000

Test(durable, two_recoverers_at_once)
{
	pid_t kid[2];
	int go[2];
	char c;

	dead_journal(BIG);
	cr_assert_eq(pipe(go), 0);
	for (int k = 0; k < 2; k++) {
		kid[k] = fork();
		cr_assert_geq(kid[k], 0);
		if (kid[k] == 0) {
			close(go[1]);
			if (read(go[0], &c, 1) != 0)
				_exit(3);
			_exit(trace_recover(th_trace) >= 0 ? 0 : 1);
		}
	}
	close(go[0]);
	close(go[1]);	/* both start now */
	for (int k = 0; k < 2; k++)
		cr_assert_eq(wait_status(kid[k]), 0);
	assert_exactly(BIG);
	cr_assert_eq(journals(NULL, 0), 0);
}

/* A journal that another recoverer is importing (its claim is held) is
 * left to it, without a warning; once the claim is free it is imported. */
Test(durable, claimed_journal_is_left_to_its_importer)
{
	char path[4096];
	char *err;
	int fd;

	dead_journal(100);
	cr_assert_eq(journals(path, sizeof(path)), 1);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	cr_assert_eq(flock(fd, LOCK_EX), 0, "set-up: the claim is held");
	th_stderr_begin();
	cr_assert_eq(trace_recover(th_trace), 0, "nothing imported while claimed");
	err = th_stderr_end();
	cr_assert_str_empty(err, "no warning: %s", err);
	free(err);
	cr_assert_eq(journals(NULL, 0), 1, "the claimed journal stays");
	close(fd);
	cr_assert_eq(trace_recover(th_trace), 100);
	cr_assert_eq(journals(NULL, 0), 0);
	assert_exactly(100);
}

/* A recoverer killed right after its second commit, or inside its third
 * transaction: a second recovery completes the import, exactly once. */
static int commits_left;
static int kill_before_commit;

static int
step_then_die(sqlite3_stmt *st)
{
	int rc;

	if (strcmp(sqlite3_sql(st), "COMMIT") != 0)
		return sqlite3_step(st);
	if (kill_before_commit && commits_left == 0)
		kill(getpid(), SIGKILL);
	rc = sqlite3_step(st);
	if (--commits_left == 0 && !kill_before_commit)
		kill(getpid(), SIGKILL);
	return rc;
}

static void
killed_recoverer(int before_commit)
{
	int64_t after_kill;
	pid_t pid;

	dead_journal(BIG);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		commits_left = 2;
		kill_before_commit = before_commit;
		trace_sys.sqlite3_step = step_then_die;
		trace_recover(th_trace);
		_exit(0);
	}
	cr_assert_eq(wait_status(pid), 128 + SIGKILL);
	after_kill = th_sql_int(th_trace, "SELECT count(*) FROM calls");
	cr_log_info("%lld calls in after the recoverer was killed", (long long)after_kill);
	/* Set-up proved: it was killed half way. */
	cr_assert_gt(after_kill, 0);
	cr_assert_lt(after_kill, BIG);
	cr_assert_eq(journals(NULL, 0), 1);
	cr_assert_geq(trace_recover(th_trace), 1);
	assert_exactly(BIG);
	cr_assert_eq(journals(NULL, 0), 0);
}

Test(durable, recoverer_killed_after_commit)
{
	killed_recoverer(0);
}

Test(durable, recoverer_killed_inside_transaction)
{
	killed_recoverer(1);
}

/* The live writer of the next test cannot write until told. */
static int refuse_begin;

static int
step_refusing(sqlite3_stmt *st)
{
	if (__atomic_load_n(&refuse_begin, __ATOMIC_ACQUIRE) &&
	    !strcmp(sqlite3_sql(st), "BEGIN IMMEDIATE"))
		return SQLITE_BUSY;
	return sqlite3_step(st);
}

Test(durable, live_journal_is_never_imported)
{
	char dead_path[4096], c;
	int ready[2], go[2];
	pid_t pid;

	/* A dead journal too, so that the recovery below really runs. */
	dead_journal(100);
	cr_assert_eq(journals(dead_path, sizeof(dead_path)), 1);
	cr_assert_eq(pipe(ready), 0);
	cr_assert_eq(pipe(go), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct trace_writer *w = NULL;

		close(ready[0]);
		close(go[1]);
		refuse_begin = 1;
		trace_sys.sqlite3_step = step_refusing;
		if (trace_writer_open(&w, th_trace, NULL) != 0)
			_exit(2);
		th_write_transmits(w, 100, 100);
		if (write(ready[1], "R", 1) != 1 || read(go[0], &c, 1) != 0)
			_exit(3);
		__atomic_store_n(&refuse_begin, 0, __ATOMIC_RELEASE);
		if (trace_writer_flush(w, 30000) != 0)
			_exit(4);
		trace_writer_close(w);
		_exit(0);
	}
	close(ready[1]);
	close(go[0]);
	cr_assert_eq(read(ready[0], &c, 1), 1);
	cr_assert_eq(journals(NULL, 0), 2, "set-up: a dead and a live journal");
	th_stderr_begin();
	cr_assert_eq(trace_recover(th_trace), 100, "the dead one is imported");
	free(th_stderr_end());
	cr_assert_eq(journals(NULL, 0), 1, "the live one stays");
	cr_assert_neq(access(dead_path, F_OK), 0, "the dead one is gone");
	cr_assert_eq(calls_of(pid), 0, "the live one is its owner's");
	close(go[1]);
	cr_assert_eq(wait_status(pid), 0);
	assert_exactly(200);
	cr_assert_eq(journals(NULL, 0), 0);
}

/* fork: the child records into a journal of its own; both end without a
 * flush; everything is recovered, each call once, under the right pid. */
Test(durable, fork_child_has_its_own_journal)
{
	struct trace_writer *w = NULL;
	pid_t pid, me = getpid();
	char sql[128];

#ifdef __SANITIZE_ADDRESS__
	cr_skip_test("fork while other threads malloc is unsafe under GCC 12 ASan");
#endif
	cr_assert_eq(trace_writer_open(&w, th_trace, NULL), 0);
	th_write_transmits(w, 0, 100);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		th_write_transmits(w, 100, 100);
		_exit(0);
	}
	cr_assert_eq(wait_status(pid), 0);
	trace_writer_close(w);
	cr_assert_geq(trace_recover(th_trace), 0);
	assert_exactly(200);
	cr_assert_eq(calls_of(me), 100);
	snprintf(sql, sizeof(sql), "SELECT min(code) FROM calls WHERE pid = %d", (int)pid);
	cr_assert_eq(th_sql_int(th_trace, sql), 100);
	snprintf(sql, sizeof(sql), "SELECT ppid FROM processes WHERE pid = %d", (int)pid);
	cr_assert_eq(th_sql_int(th_trace, sql), me);
}

/* exec: the same pid runs another program; the journal is no longer
 * mapped, so it is recovered while that program still runs. */
Test(durable, exec_is_recovered_while_the_pid_lives)
{
	pid_t pid;
	int ready[2];
	char c;

	cr_assert_eq(pipe(ready), 0);
	trace_locked();
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct trace_writer *w = NULL;

		close(ready[0]);
		if (trace_writer_open(&w, th_trace, NULL) != 0)
			_exit(2);
		th_write_transmits(w, 0, 50);
		/* The new image tells the parent it runs, then waits for EOF. */
		dup2(ready[1], 1);
		execlp("sh", "sh", "-c", "echo R; exec cat", (char *)NULL);
		_exit(127);
	}
	close(ready[1]);
	cr_assert_eq(read(ready[0], &c, 1), 1);
	th_lock_end();
	cr_assert_eq(kill(pid, 0), 0, "set-up: the pid still lives");
	cr_assert_eq(trace_recover(th_trace), 50);
	assert_exactly(50);
	kill(pid, SIGTERM);
	wait_status(pid);
	close(ready[0]);
}

static void
damage(const char *path, off_t off, const void *bytes, size_t len)
{
	int fd = open(path, O_WRONLY);

	cr_assert_geq(fd, 0);
	cr_assert_eq(pwrite(fd, bytes, len, off), (ssize_t)len);
	close(fd);
}

Test(durable, damaged_record_stops_that_journal)
{
	uint32_t bad = 12345;	/* not a multiple of 8 */
	char path[4096], *err;
	off_t rec = JOURNAL_HEADER_SIZE;
	uint32_t len;
	int fd;

	dead_journal(100);
	cr_assert_eq(journals(path, sizeof(path)), 1);
	/* Walk 51 records (the process record, then 50 calls) and break the
	 * length of the next one. */
	fd = open(path, O_RDONLY);
	for (int i = 0; i < 51; i++) {
		cr_assert_eq(pread(fd, &len, 4, rec), 4);
		rec += len;
	}
	close(fd);
	damage(path, rec, &bad, sizeof(bad));
	th_stderr_begin();
	cr_assert_eq(trace_recover(th_trace), 50);
	err = th_stderr_end();
	cr_assert_eq(th_count_warnings(err), 1, "%s", err);
	cr_assert(strstr(err, "damaged record"), "%s", err);
	free(err);
	assert_exactly(50);
	cr_assert_not_null(strstr(th_sql_text(th_trace, "SELECT state FROM journals"
					      " WHERE state LIKE 'damaged%'"), "damaged"));
}

Test(durable, truncated_or_newer_journal_is_left_alone)
{
	uint32_t newer = JOURNAL_VERSION + 1;
	char path[4096], *err;
	struct trace_reader *r = NULL;

	dead_journal(10);
	cr_assert_eq(journals(path, sizeof(path)), 1);
	damage(path, offsetof(struct journal_header, version), &newer, sizeof(newer));
	th_stderr_begin();
	cr_assert_eq(trace_reader_open(&r, th_trace, NULL, 0), 0);
	trace_reader_close(r);
	err = th_stderr_end();
	cr_assert_eq(th_count_warnings(err), 1, "%s", err);
	cr_assert(strstr(err, "newer pcsctap"), "%s", err);
	free(err);
	cr_assert_eq(access(path, F_OK), 0, "left for a newer pcsctap");
	assert_exactly(0);
	/* Truncated: not a journal any more; left alone, no crash. */
	cr_assert_eq(truncate(path, 100), 0);
	th_stderr_begin();
	cr_assert_eq(trace_recover(th_trace), 0);
	err = th_stderr_end();
	cr_assert(strstr(err, "not a pcsctap journal"), "%s", err);
	free(err);
	assert_exactly(0);
}

Test(durable, journal_files_are_private)
{
	struct trace_writer *w = NULL;
	char path[4096], link[4096];
	struct stat st;
	mode_t old = umask(0);

	cr_assert_eq(trace_writer_open(&w, th_trace, NULL), 0);
	umask(old);
	cr_assert_eq(journals(path, sizeof(path)), 1);
	cr_assert_eq(lstat(path, &st), 0);
	cr_assert(S_ISREG(st.st_mode));
	cr_assert_eq(st.st_mode & 07777, 0600, "mode %o", st.st_mode & 07777);
	cr_assert_eq(st.st_uid, geteuid());
	trace_writer_close(w);
	cr_assert_eq(stat(th_trace, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0600);
	/* A link planted with a journal's name is not followed by recovery. */
	cr_assert_eq(trace_recover(th_trace), 0);
	snprintf(link, sizeof(link), "%s" JOURNAL_SUFFIX "0123456789abcdef", th_trace);
	cr_assert_eq(symlink("/etc/passwd", link), 0);
	th_stderr_begin();
	cr_assert_eq(trace_recover(th_trace), 0);
	free(th_stderr_end());
	cr_assert_eq(lstat(link, &st), 0);
	cr_assert(S_ISLNK(st.st_mode), "the link is left alone");
	assert_exactly(0);
}

/*
 * A daemon closes every descriptor and opens files of its own: the writer's
 * must not be among them (it wrote its pages into the application's files).
 */
/* In a child: close_range() would close the test runner's descriptors too. */
static int
closerange_child(void)
{
	static const char data[] = "the application's own data\n";
	struct trace_writer *w = NULL;
	char name[64], buf[256], *p;
	int fd[4];

	if (trace_writer_open(&w, th_trace, NULL) != 0)
		return 2;
	th_write_transmits(w, 0, 1000);
	if (trace_writer_flush(w, 30000) != 0)
		return 3;
	if (close_range(3, ~0U, 0) != 0)
		return 4;
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "app-%d", i);
		p = th_path(th_dir, name);
		fd[i] = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
		free(p);
		if (fd[i] < 0 || write(fd[i], data, sizeof(data) - 1) != (ssize_t)sizeof(data) - 1)
			return 5;
	}
	th_write_transmits(w, 1000, 20000);
	if (trace_writer_flush(w, 30000) != 0)
		return 6;
	trace_writer_close(w);
	for (int i = 0; i < 4; i++) {
		if (lseek(fd[i], 0, SEEK_SET) != 0 ||
		    read(fd[i], buf, sizeof(buf)) != (ssize_t)sizeof(data) - 1 ||
		    memcmp(buf, data, sizeof(data) - 1) != 0)
			return 10 + i;	/* the application's file changed */
		close(fd[i]);
	}
	return 0;
}

/*
 * A daemon closes every descriptor and opens files of its own: the
 * writer's must not be among them (it wrote its pages into the
 * application's files), and tracing goes on.
 */
Test(durable, closerange_leaves_the_application_files_alone)
{
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0)
		_exit(closerange_child());
	cr_assert_eq(wait_status(pid), 0, "see closerange_child() for the code");
	assert_exactly(21000);
}

/* The thread closes its copies of the application's descriptors: a POSIX
 * record lock of the application (owned by its descriptor table) stays. */
Test(durable, application_locks_survive_the_writer)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	struct trace_writer *w = NULL;
	char *p = th_path(th_dir, "locked");
	int fd = open(p, O_RDWR | O_CREAT, 0600);
	pid_t pid;

	cr_assert_geq(fd, 0);
	cr_assert_eq(fcntl(fd, F_SETLK, &fl), 0);
	cr_assert_eq(trace_writer_open(&w, th_trace, NULL), 0);
	th_write_transmits(w, 0, 10);
	cr_assert_eq(trace_writer_flush(w, 30000), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct flock q = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
		int f = open(p, O_RDWR);

		free(p);	/* valgrind checks the child for leaks at _exit */
		if (f < 0 || fcntl(f, F_GETLK, &q) < 0)
			_exit(2);
		_exit(q.l_type == F_WRLCK && q.l_pid == getppid() ? 0 : 1);
	}
	cr_assert_eq(wait_status(pid), 0, "the application's lock is still held");
	trace_writer_close(w);
	close(fd);
	free(p);
}

/* Following a trace (show --follow): a process that crashes meanwhile is
 * imported and seen by the follower's next look. */
Test(durable, follower_sees_a_crashed_process)
{
	struct trace_filter f = { .after_id = -1 };
	struct trace_reader *r = NULL;
	struct trace_iter *it = NULL;
	struct trace_call_row row;
	int n = 0;

	{
		struct trace_writer *w = NULL;

		cr_assert_eq(trace_writer_open(&w, th_trace, NULL), 0);
		trace_writer_close(w);
	}
	cr_assert_eq(trace_reader_open(&r, th_trace, NULL, 0), 0);
	cr_assert_eq(trace_iter_calls(r, &f, &it), 0);
	cr_assert_eq(trace_iter_call_next(it, &row), 0, "set-up: nothing yet");
	trace_iter_end(it);
	usleep(1100000);	/* the follower looks for journals once a second */
	dead_journal(30);
	cr_assert_eq(trace_iter_calls(r, &f, &it), 0);
	while (trace_iter_call_next(it, &row) == 1)
		n++;
	trace_iter_end(it);
	trace_reader_close(r);
	cr_assert_eq(n, 30);
	assert_exactly(30);
}
