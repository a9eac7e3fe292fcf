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

/*
 * The trace is read by the sqlite3 program, in a process of its own: a
 * process with a writer open must not open the same trace through SQLite
 * itself (trace.h: the writer's descriptors live in a table of their own,
 * SQLite's per-file bookkeeping is process-wide).
 */
static char *
sql_run(const char *path, const char *sql, int readonly)
{
	static char buf[4096];
	size_t n = 0;
	int out[2];
	pid_t pid;
	ssize_t r;
	int st;

	if (pipe(out) < 0)
		return NULL;
	pid = fork();
	if (pid < 0)
		return NULL;
	if (pid == 0) {
		dup2(out[1], 1);
		close(out[0]);
		close(out[1]);
		execlp("sqlite3", "sqlite3", "-batch", "-noheader", "-cmd", ".timeout 10000",
		       readonly ? "-readonly" : "-bail", path, sql, (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	while (n < sizeof(buf) - 1 && (r = read(out[0], buf + n, sizeof(buf) - 1 - n)) > 0)
		n += (size_t)r;
	close(out[0]);
	waitpid(pid, &st, 0);
	buf[n] = '\0';
	if (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || (readonly && !n)) {
		fprintf(stderr, "sqlite3 %s '%s': status %d, output '%s'\n", path, sql, st, buf);
		return NULL;
	}
	/* The first line, first column is what callers want. */
	buf[strcspn(buf, "\n|")] = '\0';
	return buf;
}

int64_t
th_sql_int(const char *path, const char *sql)
{
	const char *s = sql_run(path, sql, 1);
	char *end;
	int64_t v;

	if (!s)
		return -1;
	v = strtoll(s, &end, 10);
	return *end ? -1 : v;
}

const char *
th_sql_text(const char *path, const char *sql)
{
	return sql_run(path, sql, 1);
}

int
th_sql_exec(const char *path, const char *sql)
{
	return sql_run(path, sql, 0) ? 0 : -1;
}

/* A sqlite3 process that holds a transaction until th_lock_end(). */
static pid_t locker;
static int locker_in = -1;

int
th_lock_begin(const char *path, const char *begin)
{
	static const char ready[] = "locked\n";
	char cmd[256], got[sizeof(ready)] = "";
	int in[2], out[2];
	size_t n = 0;
	ssize_t r;

	if (pipe(in) < 0 || pipe(out) < 0)
		return -1;
	locker = fork();
	if (locker < 0)
		return -1;
	if (locker == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		close(in[0]);
		close(in[1]);
		close(out[0]);
		close(out[1]);
		execlp("sqlite3", "sqlite3", "-batch", "-noheader", path, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	locker_in = in[1];
	snprintf(cmd, sizeof(cmd), ".timeout 10000\n%s;\nSELECT 'locked';\n", begin);
	if (write(locker_in, cmd, strlen(cmd)) != (ssize_t)strlen(cmd))
		return -1;
	/* Holds the lock once it answers. */
	while (n < sizeof(ready) - 1 && (r = read(out[0], got + n, sizeof(ready) - 1 - n)) > 0)
		n += (size_t)r;
	close(out[0]);
	return strcmp(got, ready) == 0 ? 0 : -1;
}

void
th_lock_end(void)
{
	static const char end[] = "COMMIT;\n.quit\n";
	int st;

	if (locker_in < 0)
		return;
	if (write(locker_in, end, sizeof(end) - 1) < 0)
		perror("th_lock_end");
	close(locker_in);
	locker_in = -1;
	waitpid(locker, &st, 0);
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
