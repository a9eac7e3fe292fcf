/*
 * fuzz_trace.c — libFuzzer target: the trace reader (trace/reader.c) on a
 * damaged or hostile trace file.  pcsctap show/sessions/stats/export open
 * whatever file they are given, so a trace mailed in by someone else must
 * never crash them: every open either fails with an error code or yields
 * iterators that end (row or error) without touching memory they should not.
 *
 * The input is written to a file in a private temporary directory (SQLite
 * reads files, and the reader checks the file before SQLite sees it), then
 * opened and every iterator is walked, with and without filters.
 */
#include "trace.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Rows per iterator: a mutated trace can claim (or join into) huge counts. */
#define MAX_ROWS 2000

static char dir[64];
static char path[96];
static volatile size_t sink;

static void
cleanup(void)
{
	static const char *const suffixes[] = { "", "-wal", "-shm", "-journal" };
	char p[128];

	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", path, suffixes[i]);
		unlink(p);
	}
}

static void
remove_dir(void)
{
	cleanup();
	rmdir(dir);
}

static int
setup(void)
{
	const char *tmp = getenv("TMPDIR");

	if (dir[0])
		return 0;
	/* Memory-backed when possible: every input is a file write and an open. */
	if (!tmp || !*tmp || strlen(tmp) >= 24)
		tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(dir, sizeof(dir), "%s/pcsctap-fuzz-trace.XXXXXX", tmp);
	if (!mkdtemp(dir)) {
		dir[0] = '\0';
		return -1;
	}
	snprintf(path, sizeof(path), "%s/trace.db", dir);
	atexit(remove_dir);
	return 0;
}

/* Read every byte the row points to, so that ASan sees a bad pointer. */
static void
touch_text(const char *s)
{
	if (s)
		sink += strlen(s);
}

static void
touch_blob(const struct trace_blob *b)
{
	for (size_t i = 0; b->data && i < b->len; i++)
		sink += b->data[i];
}

static void
walk_calls(struct trace_reader *r, const struct trace_filter *f)
{
	struct trace_iter *it;
	struct trace_call_row row;
	int n = 0;

	if (trace_iter_calls(r, f, &it) < 0)
		return;
	while (n++ < MAX_ROWS && trace_iter_call_next(it, &row) > 0) {
		touch_text(trace_fn_name(row.call.fn));
		touch_text(row.call.reader);
		touch_text(row.call.extra);
		touch_blob(&row.call.in);
		touch_blob(&row.call.out);
		if (row.call.n_states && !row.call.states)
			abort();
		for (size_t i = 0; i < row.call.n_states; i++) {
			touch_text(row.call.states[i].reader);
			touch_blob(&row.call.states[i].atr);
		}
	}
	trace_iter_end(it);
}

static void
walk_sessions(struct trace_reader *r, const struct trace_filter *f)
{
	struct trace_iter *it;
	struct trace_session row;
	int n = 0;

	if (trace_iter_sessions(r, f, &it) < 0)
		return;
	while (n++ < MAX_ROWS && trace_iter_session_next(it, &row) > 0) {
		touch_text(row.reader);
		touch_text(row.process);
	}
	trace_iter_end(it);
}

static void
walk_transactions(struct trace_reader *r, const struct trace_filter *f)
{
	struct trace_iter *it;
	struct trace_transaction row;
	int n = 0;

	if (trace_iter_transactions(r, f, &it) < 0)
		return;
	while (n++ < MAX_ROWS && trace_iter_transaction_next(it, &row) > 0)
		sink += (size_t)row.session;
	trace_iter_end(it);
}

static void
walk_markers(struct trace_reader *r, const struct trace_filter *f)
{
	struct trace_iter *it;
	struct trace_marker_row row;
	int n = 0;

	if (trace_iter_markers(r, f, &it) < 0)
		return;
	while (n++ < MAX_ROWS && trace_iter_marker_next(it, &row) > 0) {
		touch_text(row.marker.reader);
		touch_blob(&row.marker.body);
	}
	trace_iter_end(it);
}

static void
walk_wire(struct trace_reader *r, const struct trace_filter *f)
{
	struct trace_iter *it;
	struct trace_wire_row row;
	int n = 0;

	if (trace_iter_wire(r, f, &it) < 0)
		return;
	while (n++ < MAX_ROWS && trace_iter_wire_next(it, &row) > 0) {
		touch_text(row.wire.reader);
		touch_text(row.wire.detail);
		touch_blob(&row.wire.sent);
		touch_blob(&row.wire.received);
	}
	trace_iter_end(it);
}

static void
walk_rest(struct trace_reader *r)
{
	struct trace_iter *it;
	struct trace_process p;
	struct trace_drop d;
	int n = 0;

	if (trace_iter_processes(r, &it) == 0) {
		while (n++ < MAX_ROWS && trace_iter_process_next(it, &p) > 0) {
			touch_text(p.exe);
			touch_text(p.argv);
			touch_text(p.role);
			touch_text(p.host);
		}
		trace_iter_end(it);
	}
	n = 0;
	if (trace_iter_drops(r, &it) == 0) {
		while (n++ < MAX_ROWS && trace_iter_drop_next(it, &d) > 0)
			sink += (size_t)d.count;
		trace_iter_end(it);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct trace_reader *r = NULL;
	/* Every filter term once, with values the seed traces contain. */
	const struct trace_filter filters[] = {
		{ 0 },
		{ .pid = 1, .reader = "Virtual PCD 00 00", .fn = 12,
		  .since_ns = 1, .until_ns = INT64_MAX, .after_id = 3 },
		{ .session = 4 },
	};
	char err[256];
	int fd;

	if (setup() < 0)
		return 0;
	cleanup();
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	close(fd);
	if (trace_reader_open(&r, path, err, sizeof(err)) < 0) {
		/* A failed open must say why. */
		if (r || !err[0])
			abort();
		return 0;
	}
	touch_text(trace_reader_errmsg(r));
	sink += (size_t)trace_reader_schema_version(r);
	for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++) {
		walk_calls(r, &filters[i]);
		walk_sessions(r, &filters[i]);
		walk_transactions(r, &filters[i]);
		walk_markers(r, &filters[i]);
		walk_wire(r, &filters[i]);
	}
	walk_calls(r, NULL);
	walk_rest(r);
	trace_reader_close(r);
	return 0;
}
