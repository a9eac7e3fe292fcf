/*
 * helpers.c — see helpers.h.
 */
#include "helpers.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

char *th_dir;
char *th_trace;

void
th_setup(void)
{
	th_dir = th_tmpdir();
	cr_assert_not_null(th_dir);
	th_trace = th_path(th_dir, "t.db");
}

void
th_teardown(void)
{
	th_rmtree(th_dir);
	free(th_dir);
	free(th_trace);
}

char *
th_tmpdir(void)
{
	char *d = strdup("/tmp/pcsctap-trace-test-XXXXXX");

	if (!d || !mkdtemp(d))
		return NULL;
	return d;
}

void
th_rmtree(const char *dir)
{
	pid_t pid;
	int st;

	if (!dir)
		return;
	pid = fork();
	if (pid == 0) {
		execlp("rm", "rm", "-rf", "--", dir, (char *)NULL);
		_exit(127);
	}
	if (pid > 0)
		waitpid(pid, &st, 0);
}

char *
th_path(const char *dir, const char *name)
{
	char *p = NULL;

	if (asprintf(&p, "%s/%s", dir, name) < 0)
		return NULL;
	return p;
}

void
th_transmit(struct trace_call *c, uint8_t *cmd, uint8_t *rsp, int64_t seq)
{
	memset(c, 0, sizeof(*c));
	c->fn = TRACE_FN_SCardTransmit;
	c->tid = gettid();
	c->t_enter_ns = trace_mono_ns();
	c->t_return_ns = c->t_enter_ns + 1000;
	c->wall_ns = (int64_t)time(NULL) * 1000000000;
	c->present = TRACE_HAS_CARD | TRACE_HAS_SEND_PCI | TRACE_HAS_RECV_PCI | TRACE_HAS_CODE;
	c->card = 0x1234;
	c->send_pci = 2;
	c->recv_pci = 2;
	c->code = seq;
	cmd[0] = 0x00;
	cmd[1] = 0xa4;
	cmd[2] = 0x04;
	cmd[3] = 0x00;
	cmd[4] = (uint8_t)seq;
	rsp[0] = 0x90;
	rsp[1] = 0x00;
	c->in.data = cmd;
	c->in.len = 5;
	c->out.data = rsp;
	c->out.len = 2;
}

void
th_write_transmits(struct trace_writer *w, int64_t first, int n)
{
	struct trace_call c;
	uint8_t cmd[5], rsp[2];

	for (int i = 0; i < n; i++) {
		th_transmit(&c, cmd, rsp, first + i);
		trace_write_call(w, &c);
	}
}

static sqlite3 *
open_db(const char *path)
{
	sqlite3 *db = NULL;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, 10000);
	return db;
}

int64_t
th_sql_int(const char *path, const char *sql)
{
	sqlite3 *db = open_db(path);
	sqlite3_stmt *st = NULL;
	int64_t v = -1;

	if (!db)
		return -1;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	else
		fprintf(stderr, "th_sql_int(%s): %s\n", sql, sqlite3_errmsg(db));
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

const char *
th_sql_text(const char *path, const char *sql)
{
	static char buf[4096];
	sqlite3 *db = open_db(path);
	sqlite3_stmt *st = NULL;
	const char *r = NULL;

	if (!db)
		return NULL;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0)) {
		snprintf(buf, sizeof(buf), "%s", (const char *)sqlite3_column_text(st, 0));
		r = buf;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return r;
}

static int saved_stderr = -1;
static char capture_path[64];

void
th_stderr_begin(void)
{
	int fd;

	snprintf(capture_path, sizeof(capture_path), "/tmp/pcsctap-stderr-XXXXXX");
	fd = mkstemp(capture_path);
	if (fd < 0)
		return;
	fflush(stderr);
	saved_stderr = dup(2);
	dup2(fd, 2);
	close(fd);
}

char *
th_stderr_end(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	fflush(stderr);
	if (saved_stderr >= 0) {
		dup2(saved_stderr, 2);
		close(saved_stderr);
		saved_stderr = -1;
	}
	f = open_memstream(&buf, &len);
	if (f) {
		FILE *in = fopen(capture_path, "r");
		char chunk[1024];
		size_t n;

		while (in && (n = fread(chunk, 1, sizeof(chunk), in)) > 0)
			fwrite(chunk, 1, n, f);
		if (in)
			fclose(in);
		fclose(f);
	}
	unlink(capture_path);
	/* Show it in the test log too. */
	if (buf && *buf)
		fprintf(stderr, "[captured stderr]\n%s", buf);
	return buf;
}

int
th_count_warnings(const char *s)
{
	int n = 0;

	for (const char *p = s; p && *p; ) {
		if (!strncmp(p, "pcsctap: ", 9))
			n++;
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return n;
}
