/*
 * writer.c — the asynchronous trace writer.
 *
 * Callers (any thread) copy an event into one block and append it to a
 * bounded FIFO under a short mutex; they never touch SQLite and never wait
 * for disk.  One background thread per writer and process takes the whole
 * FIFO at once and inserts it in WAL transactions, committing at least every
 * commit_interval_ms (a batch is split if it takes longer) and whenever
 * someone flushes.  Events that do not fit, or that SQLite refuses (disk
 * full, I/O error, trace gone), are counted and recorded as a `drops` row as
 * soon as a transaction succeeds again: never silently.
 *
 * Fork: a pthread_atfork handler, in order, takes the registry lock, each
 * writer's connection lock (waiting for the current transaction slice),
 * closes the connection without a checkpoint, and takes the queue lock.  So
 * the child inherits no SQLite connection at all — an inherited connection
 * would share SQLite's per-file lock bookkeeping with a process that does
 * not hold the locks, and the parent's last close could then delete a WAL
 * the child still writes — and no lock that a vanished thread holds.  The
 * child notices the new pid on its first event, drops the parent's queued
 * events (the parent writes them), and starts a thread and connection of its
 * own.  A pid change without our atfork handler (raw clone) would leave the
 * writer idle; events are then dropped, nothing hangs.
 */
#include "trace.h"
#include "proc.h"
#include "queue.h"
#include "store.h"
#include "util.h"
#include "sys.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum {
	DEFAULT_QUEUE_EVENTS = 65536,
	DEFAULT_QUEUE_BYTES = 64 << 20,
	DEFAULT_COMMIT_MS = 100,
	DEFAULT_BUSY_MS = 5000,
	/* SQLite's own busy wait is cut into slices so that fork() and close
	 * can get the connection lock between them. */
	BUSY_SLICE_MS = 50,
	/* Fairness gap between two slices of a long batch (write_batch): left
	 * after every slice while another writer was seen in the last
	 * OTHER_WRITER_MS, otherwise once every PROBE_GAP_MS so that a newcomer
	 * blocked by our back-to-back slices gets in and is seen. */
	FAIR_GAP_US = 2000,
	OTHER_WRITER_MS = 2000,
	PROBE_GAP_MS = 250,
	/* Calls inserted by one multi-row INSERT (see insert_calls). */
	CALL_ROWS = 32,
	CALL_COLS = 24,
	/* Small call events are built in blocks of SPARE_SIZE bytes that the
	 * thread hands back for reuse once written (at most SPARE_MAX of them,
	 * freed when the writer goes idle): the caller's thread then neither
	 * mallocs nor touches fresh pages, and the two threads do not contend
	 * for malloc's arena. */
	SPARE_SIZE = 320,
	SPARE_MAX = 16384,
	/* Empty polls before the thread sleeps until signalled. */
	IDLE_POLLS = 10,
	CLOSE_FLUSH_MS = 5000,
	EXIT_FLUSH_MS = 2000,
};

/* Conditions warned about at most once per writer. */
enum warn_bit {
	WARN_OPEN = 1u << 0,
	WARN_BUSY = 1u << 1,
	WARN_FULL = 1u << 2,
	WARN_IO = 1u << 3,
	WARN_SQLITE = 1u << 4,
	WARN_THREAD = 1u << 5,
	WARN_NOMEM = 1u << 6,
	WARN_OVERFLOW = 1u << 7,
	WARN_READONLY = 1u << 8,
	WARN_EXIT = 1u << 9,
};

enum stmt_id {
	ST_CALL,
	ST_CALLS,		/* CALL_ROWS calls at once; SQL built by once_init() */
	ST_STATE,
	ST_MARKER,
	ST_WIRE,
	ST_DROP,
	ST_PROCESS,
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_DATA_VERSION,
	ST_COUNT,
};

#define CALLS_INSERT "INSERT INTO calls(pid, tid, fn, t_enter_ns, t_return_ns, wall_ns, rv," \
	" context, card, reader, share_mode, preferred_protocols, active_protocol," \
	" disposition, scope, timeout, code, state, send_pci, recv_pci," \
	" data_in, data_out, redacted, extra) VALUES"
#define CALLS_ROW "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"

/* CALLS_INSERT, then CALL_ROWS times CALLS_ROW separated by commas. */
static char calls_sql[sizeof(CALLS_INSERT) + CALL_ROWS * sizeof(CALLS_ROW)];

static const char *const stmt_sql[ST_COUNT] = {
	[ST_CALL] = CALLS_INSERT CALLS_ROW,
	[ST_CALLS] = calls_sql,
	[ST_STATE] = "INSERT INTO reader_states(call_id, idx, reader, current_state,"
		" event_state, atr) VALUES(?,?,?,?,?,?)",
	[ST_MARKER] = "INSERT INTO markers(pid, tid, t_ns, wall_ns, card, reader, event,"
		" seq, body, rv) VALUES(?,?,?,?,?,?,?,?,?,?)",
	[ST_WIRE] = "INSERT INTO wire(pid, t_ns, t_end_ns, wall_ns, reader, kind, sent,"
		" received, detail) VALUES(?,?,?,?,?,?,?,?,?)",
	[ST_DROP] = "INSERT INTO drops(pid, wall_ns, count) VALUES(?,?,?)",
	[ST_PROCESS] = "INSERT INTO processes(pid, ppid, exe, name, argv, role, host,"
		" start_wall_ns) VALUES(?,?,?,?,?,?,?,?)",
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_DATA_VERSION] = "PRAGMA data_version",
};

struct trace_writer {
	struct trace_writer *next;	/* registry of live writers (fork, exit) */
	char *path;
	char *role;
	int commit_ms;
	int busy_ms;
	pid_t pid;			/* the process the thread and connection belong to */
	int64_t start_wall_ns;

	/* Queue lock: the FIFO, counters and flags below. */
	pthread_mutex_t lock;
	pthread_cond_t wake;		/* the thread waits for work */
	pthread_cond_t done;		/* flushers wait for seq_done */
	struct tq_fifo q;
	struct tq_event *spare;		/* free SPARE_SIZE blocks */
	size_t n_spare;
	uint64_t seq_in;		/* events accepted */
	uint64_t seq_done;		/* events written or given up on */
	uint64_t enqueued, written, dropped, commits;
	uint64_t drops_pending;		/* dropped, not yet in the drops table */
	int sleeping;
	int flush_req;
	int stop;
	int abandon;			/* close gave up waiting: drop what is left */
	int thread_started;
	int broken;			/* no thread: every event is dropped */
	pthread_t thread;

	/* Connection lock: the thread holds it while it uses the connection. */
	pthread_mutex_t db_lock;
	sqlite3 *db;
	sqlite3_stmt *st[ST_COUNT];
	/* Per row of ST_CALL (0) and ST_CALLS (1..CALL_ROWS): the columns
	 * (enum call_bound bits) currently bound to a non-NULL value, so that
	 * only those that change to absent need a NULL bound. */
	uint32_t call_bound[1 + CALL_ROWS];
	int process_written;
	int64_t data_version;		/* -1: not read on this connection yet */
	int64_t other_seen_ns;		/* atomic: another writer last seen (busy, its commit) */
	int64_t last_gap_ns;
	int fork_waiting;		/* atomic: fork prepare wants db_lock */

	unsigned warned;		/* atomic: enum warn_bit */
};

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct trace_writer *registry;
static pid_t cur_pid;

static void __attribute__((format(printf, 3, 4)))
warn_once(struct trace_writer *w, unsigned bit, const char *fmt, ...)
{
	unsigned old = __atomic_fetch_or(&w->warned, bit, __ATOMIC_RELAXED);
	int saved = errno;
	char buf[600];
	va_list ap;

	if (old & bit)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	trace_warnf("%s", buf);
	errno = saved;
}

static void
timespec_after_ms(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

static void
init_sync(struct trace_writer *w)
{
	pthread_condattr_t ca;

	pthread_mutex_init(&w->lock, NULL);
	pthread_mutex_init(&w->db_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->wake, &ca);
	pthread_cond_init(&w->done, &ca);
	pthread_condattr_destroy(&ca);
}

/* ---------------------------------------------------------------------- */
/* Connection (writer thread, db_lock held)                               */
/* ---------------------------------------------------------------------- */

static void
db_release(struct trace_writer *w, int checkpoint)
{
	for (int i = 0; i < ST_COUNT; i++) {
		sqlite3_finalize(w->st[i]);
		w->st[i] = NULL;
	}
	/* A statement prepared afresh has every parameter NULL. */
	memset(w->call_bound, 0, sizeof(w->call_bound));
	if (w->db) {
		sqlite3_db_config(w->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, !checkpoint, NULL);
		sqlite3_close_v2(w->db);
	}
	w->db = NULL;
}

/*
 * SQLite's default busy handler backs off up to 100 ms between tries, so a
 * process that commits back to back can starve the others for a long time.
 * Poll every millisecond instead; the lock holder leaves a gap between
 * slices of a long batch (write_batch) that such a poll catches.
 */
static int
busy_poll(void *arg, int count)
{
	struct trace_writer *w = arg;

	__atomic_store_n(&w->other_seen_ns, trace_mono_ns(), __ATOMIC_RELAXED);
	if (count >= BUSY_SLICE_MS)
		return 0;
	usleep(1000);
	return 1;
}

static void
set_busy(struct trace_writer *w)
{
	sqlite3_busy_handler(w->db, busy_poll, w);
	w->data_version = -1;
}

static int
db_prepare(struct trace_writer *w)
{
	int rc = SQLITE_OK;

	for (int i = 0; i < ST_COUNT && rc == SQLITE_OK; i++) {
		if (!w->st[i])
			rc = trace_sys.sqlite3_prepare_v2(w->db, stmt_sql[i], -1, &w->st[i], NULL);
	}
	return rc;
}

static int
db_ensure(struct trace_writer *w)
{
	char err[512];
	int ret = 0;
	int rc;

	if (w->db)
		goto out;
	ret = trace_db_open_rw(w->path, BUSY_SLICE_MS, &w->db, err, sizeof(err));
	if (ret < 0) {
		warn_once(w, WARN_OPEN, "cannot write the trace (%s%s); events are dropped",
			  err, "");
		goto out;
	}
	set_busy(w);
	rc = db_prepare(w);
	if (rc != SQLITE_OK) {
		ret = trace_err_from_sqlite(rc);
		warn_once(w, WARN_OPEN, "cannot write the trace %s: %s; events are dropped",
			  w->path, sqlite3_errmsg(w->db));
		db_release(w, 0);
	}
out:
	return ret;
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

static int
run(sqlite3_stmt *st)
{
	int rc = trace_sys.sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
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
 * steady stream of one function binds no NULLs at all.  Text and blobs are
 * bound SQLITE_STATIC: the event lives until the statement has run.
 */
static void
bind_call(struct trace_writer *w, sqlite3_stmt *st, int base, uint32_t *bound,
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

	sqlite3_bind_int64(st, base + 1, w->pid);
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
insert_call(struct trace_writer *w, const struct trace_call *c)
{
	sqlite3_stmt *st = w->st[ST_CALL];
	int64_t call_id;
	int rc;

	bind_call(w, st, 0, &w->call_bound[0], c);
	rc = run(st);
	if (rc != SQLITE_OK || !c->n_states)
		goto out;
	call_id = sqlite3_last_insert_rowid(w->db);
	st = w->st[ST_STATE];
	for (size_t i = 0; i < c->n_states && rc == SQLITE_OK; i++) {
		const struct trace_reader_state *s = &c->states[i];

		sqlite3_bind_int64(st, 1, call_id);
		sqlite3_bind_int64(st, 2, (int64_t)i);
		bind_text(st, 3, s->reader);
		sqlite3_bind_int64(st, 4, s->current_state);
		sqlite3_bind_int64(st, 5, s->event_state);
		bind_blob(st, 6, s->atr);
		rc = run(st);
	}
out:
	return rc;
}

/* A call with no reader-state rows: one row of calls and nothing else. */
static int
plain_call(const struct tq_event *ev)
{
	return ev->kind == TQ_CALL && !ev->u.call.n_states;
}

/*
 * CALL_ROWS plain calls from @p ev on in one statement: the statement's
 * set-up and tear-down (cursors, their allocations) is paid once, and its
 * cursors stay on the right edge of the table and of each index, where
 * SQLite appends without searching from the root.
 */
static int
insert_calls(struct trace_writer *w, const struct tq_event *ev)
{
	sqlite3_stmt *st = w->st[ST_CALLS];

	for (int r = 0; r < CALL_ROWS; r++, ev = ev->next)
		bind_call(w, st, r * CALL_COLS, &w->call_bound[1 + r], &ev->u.call);
	return run(st);
}

static int
insert_marker(struct trace_writer *w, const struct trace_marker *m)
{
	sqlite3_stmt *st = w->st[ST_MARKER];

	sqlite3_bind_int64(st, 1, w->pid);
	sqlite3_bind_int64(st, 2, m->tid);
	sqlite3_bind_int64(st, 3, m->t_ns);
	sqlite3_bind_int64(st, 4, m->wall_ns);
	sqlite3_bind_int64(st, 5, (int64_t)m->card);
	bind_text(st, 6, m->reader);
	sqlite3_bind_int(st, 7, m->event);
	sqlite3_bind_int64(st, 8, m->seq);
	bind_blob(st, 9, m->body);
	sqlite3_bind_int64(st, 10, m->rv);
	return run(st);
}

static int
insert_wire(struct trace_writer *w, const struct trace_wire *x)
{
	sqlite3_stmt *st = w->st[ST_WIRE];

	sqlite3_bind_int64(st, 1, w->pid);
	sqlite3_bind_int64(st, 2, x->t_ns);
	sqlite3_bind_int64(st, 3, x->t_end_ns);
	sqlite3_bind_int64(st, 4, x->wall_ns);
	bind_text(st, 5, x->reader);
	sqlite3_bind_int(st, 6, x->kind);
	bind_blob(st, 7, x->sent);
	bind_blob(st, 8, x->received);
	bind_text(st, 9, x->detail);
	return run(st);
}

static int
insert_process(struct trace_writer *w)
{
	sqlite3_stmt *st = w->st[ST_PROCESS];
	struct trace_procinfo *pi;
	int rc;

	pi = malloc(sizeof(*pi));
	if (!pi)
		return SQLITE_NOMEM;
	trace_procinfo_get(pi);
	sqlite3_bind_int64(st, 1, w->pid);
	sqlite3_bind_int64(st, 2, pi->ppid);
	bind_text(st, 3, pi->exe);
	bind_text(st, 4, pi->name);
	bind_text(st, 5, pi->argv);
	bind_text(st, 6, w->role);
	bind_text(st, 7, pi->host);
	sqlite3_bind_int64(st, 8, w->start_wall_ns);
	rc = run(st);
	sqlite3_clear_bindings(st);
	free(pi);
	return rc;
}

static int
insert_drop(struct trace_writer *w, uint64_t count)
{
	sqlite3_stmt *st = w->st[ST_DROP];

	sqlite3_bind_int64(st, 1, w->pid);
	sqlite3_bind_int64(st, 2, trace_wall_ns());
	sqlite3_bind_int64(st, 3, (int64_t)count);
	return run(st);
}

static void
warn_rc(struct trace_writer *w, int rc)
{
	switch (rc & 0xff) {
	case SQLITE_FULL:
		warn_once(w, WARN_FULL, "trace %s: disk full; events are dropped (counted in the trace)%s",
			  w->path, "");
		break;
	case SQLITE_IOERR:
		warn_once(w, WARN_IO, "trace %s: I/O error; events are dropped (counted in the trace)%s",
			  w->path, "");
		break;
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_CANTOPEN:
		warn_once(w, WARN_READONLY, "trace %s: cannot write (%s); events are dropped",
			  w->path, sqlite3_errstr(rc));
		break;
	case SQLITE_NOMEM:
		warn_once(w, WARN_NOMEM, "trace %s: out of memory%s; events are dropped",
			  w->path, "");
		break;
	default:
		warn_once(w, WARN_SQLITE, "trace %s: SQLite error (%s); events are dropped",
			  w->path, sqlite3_errstr(rc));
		break;
	}
}

static int
should_give_up(struct trace_writer *w)
{
	int r;

	pthread_mutex_lock(&w->lock);
	r = w->abandon;
	pthread_mutex_unlock(&w->lock);
	return r;
}

/* Let a waiting fork() have the connection lock between two slices. */
static void
db_yield(struct trace_writer *w)
{
	pthread_mutex_unlock(&w->db_lock);
	while (__atomic_load_n(&w->fork_waiting, __ATOMIC_ACQUIRE))
		sched_yield();
	pthread_mutex_lock(&w->db_lock);
}

/*
 * BEGIN IMMEDIATE, waiting for other processes' transactions for as long as
 * it takes (one warning after busy_ms); the caller's threads are not
 * affected, the queue fills and overflows into drops meanwhile.
 */
static int
begin(struct trace_writer *w)
{
	int64_t t0 = trace_mono_ns();
	int rc;

	for (;;) {
		rc = db_ensure(w);
		if (rc < 0)
			return SQLITE_CANTOPEN;
		rc = run(w->st[ST_BEGIN]);
		if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED)
			return rc;
		__atomic_store_n(&w->other_seen_ns, trace_mono_ns(), __ATOMIC_RELAXED);
		if (trace_mono_ns() - t0 >= (int64_t)w->busy_ms * 1000000)
			warn_once(w, WARN_BUSY,
				  "trace %s is locked by another process; still waiting%s",
				  w->path, " (events may be dropped meanwhile)");
		if (should_give_up(w))
			return rc;
		db_yield(w);
		/* SQLite may answer BUSY without waiting (deadlock avoidance):
		 * never spin. */
		usleep(10000);
	}
}

static int
insert_event(struct trace_writer *w, const struct tq_event *ev)
{
	switch (ev->kind) {
	case TQ_CALL:
		return insert_call(w, &ev->u.call);
	case TQ_MARKER:
		return insert_marker(w, &ev->u.marker);
	case TQ_WIRE:
		return insert_wire(w, &ev->u.wire);
	default:
		return SQLITE_OK;
	}
}

/*
 * Whether to leave the fairness gap now: yes while another writer is
 * known to use the trace (it made us wait, or committed since our last
 * look), and once every PROBE_GAP_MS anyway.  A lone writer thus keeps
 * almost all of its time; a newcomer waits at most about PROBE_GAP_MS for
 * its first transaction, then gets a gap after every slice.
 */
static int
want_gap(struct trace_writer *w)
{
	sqlite3_stmt *st = w->st[ST_DATA_VERSION];
	int64_t now = trace_mono_ns();
	int64_t v;

	if (trace_sys.sqlite3_step(st) == SQLITE_ROW) {
		v = sqlite3_column_int64(st, 0);
		if (w->data_version >= 0 && v != w->data_version)
			__atomic_store_n(&w->other_seen_ns, now, __ATOMIC_RELAXED);
		w->data_version = v;
	} else {
		/* Cannot tell: be fair. */
		__atomic_store_n(&w->other_seen_ns, now, __ATOMIC_RELAXED);
	}
	sqlite3_reset(st);
	return now - __atomic_load_n(&w->other_seen_ns, __ATOMIC_RELAXED) <
		       (int64_t)OTHER_WRITER_MS * 1000000 ||
	       now - w->last_gap_ns >= (int64_t)PROBE_GAP_MS * 1000000;
}

/*
 * Write @p ev (n events) plus @p drops in one or more transactions.
 * @retval the number of events that could not be written
 */
static uint64_t
write_batch(struct trace_writer *w, struct tq_event *ev, uint64_t n, uint64_t *drops)
{
	const int64_t slice_ns = (int64_t)w->commit_ms * 1000000 / 2;
	uint64_t failed = 0;
	int64_t t0;
	uint64_t k, check;
	int rc;

	pthread_mutex_lock(&w->db_lock);
	while (ev || *drops || !w->process_written) {
		rc = begin(w);
		if (rc != SQLITE_OK) {
			if (w->db)
				warn_rc(w, rc);
			goto fail;
		}
		t0 = trace_mono_ns();
		if (!w->process_written) {
			rc = insert_process(w);
			if (rc != SQLITE_OK)
				goto rollback;
		}
		for (k = 0, check = 256; ev;) {
			struct tq_event *e = ev;
			uint64_t m = 0;

			while (m < CALL_ROWS && e && plain_call(e)) {
				e = e->next;
				m++;
			}
			if (m == CALL_ROWS) {
				rc = insert_calls(w, ev);
			} else {
				rc = insert_event(w, ev);
				m = 1;
				e = ev->next;
			}
			if (rc != SQLITE_OK)
				goto rollback;
			ev = e;
			k += m;
			/* Keep each transaction short: durability within commit_ms. */
			if (k >= check) {
				check = k + 256;
				if (trace_mono_ns() - t0 >= slice_ns)
					break;
			}
		}
		if (*drops) {
			rc = insert_drop(w, *drops);
			if (rc != SQLITE_OK)
				goto rollback;
		}
		rc = run(w->st[ST_COMMIT]);
		if (rc != SQLITE_OK)
			goto rollback;
		w->process_written = 1;
		*drops = 0;
		n -= k;
		pthread_mutex_lock(&w->lock);
		w->written += k;
		w->commits++;
		w->seq_done += k;
		pthread_cond_broadcast(&w->done);
		pthread_mutex_unlock(&w->lock);
		db_yield(w);
		/* More of this batch to come: leave other processes a gap to
		 * take the write lock (fairness, see busy_poll). */
		if (ev && want_gap(w)) {
			w->last_gap_ns = trace_mono_ns();
			usleep(FAIR_GAP_US);
		}
	}
	goto out;
rollback:
	warn_rc(w, rc);
	if (w->db && !sqlite3_get_autocommit(w->db))
		run(w->st[ST_ROLLBACK]);
fail:
	failed = n;
out:
	pthread_mutex_unlock(&w->db_lock);
	return failed;
}

/* Free @p ev, keeping SPARE_SIZE blocks (up to SPARE_MAX) for reuse. */
static void
recycle(struct trace_writer *w, struct tq_event *ev)
{
	struct tq_event *keep = NULL, *last = NULL, *next;
	size_t n = 0, room;

	pthread_mutex_lock(&w->lock);
	room = SPARE_MAX - w->n_spare;
	pthread_mutex_unlock(&w->lock);
	for (; ev; ev = next) {
		next = ev->next;
		if (ev->size == SPARE_SIZE && n < room) {
			ev->next = keep;
			keep = ev;
			if (!last)
				last = ev;
			n++;
		} else {
			free(ev);
		}
	}
	if (!keep)
		return;
	pthread_mutex_lock(&w->lock);
	last->next = w->spare;
	w->spare = keep;
	w->n_spare += n;
	pthread_mutex_unlock(&w->lock);
}

/* A block for a call event: a spare one when the event fits. */
static struct tq_event *
event_call(struct trace_writer *w, const struct trace_call *call)
{
	struct tq_event *ev;

	if (tq_event_call_size(call) > SPARE_SIZE)
		return tq_event_call(call);
	pthread_mutex_lock(&w->lock);
	ev = w->spare;
	if (ev) {
		w->spare = ev->next;
		w->n_spare--;
	}
	pthread_mutex_unlock(&w->lock);
	if (!ev)
		ev = malloc(SPARE_SIZE);
	return ev ? tq_event_call_at(ev, SPARE_SIZE, call) : NULL;
}

static void *
writer_main(void *arg)
{
	struct trace_writer *w = arg;
	struct timespec ts;
	struct tq_event *batch;
	uint64_t drops, failed;
	size_t n;
	int idle = 0;
	int backoff = 0;

	/* The process row first, so that a trace names its writers even
	 * before they make a call. */
	drops = 0;
	if (write_batch(w, NULL, 0, &drops))
		backoff = 1;
	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (!w->stop && !w->flush_req && (backoff || (w->q.n == 0 && w->drops_pending == 0))) {
			int deep = idle >= IDLE_POLLS && !backoff;

			w->sleeping = deep;
			if (deep && w->spare) {
				/* Idle: give the spare blocks back. */
				tq_event_free_list(w->spare);
				w->spare = NULL;
				w->n_spare = 0;
			}
			timespec_after_ms(&ts, deep ? 1000 : backoff ? w->commit_ms : w->commit_ms / 10 + 1);
			if (pthread_cond_timedwait(&w->wake, &w->lock, &ts) == ETIMEDOUT) {
				idle++;
				backoff = 0;
			}
		}
		w->sleeping = 0;
		idle = 0;
		w->flush_req = 0;
		batch = tq_fifo_take(&w->q, &n);
		drops = w->drops_pending;
		w->drops_pending = 0;
		pthread_mutex_unlock(&w->lock);

		failed = 0;
		if (batch || drops)
			failed = write_batch(w, batch, n, &drops);
		recycle(w, batch);

		pthread_mutex_lock(&w->lock);
		if (failed || drops) {
			/* Recorded as soon as a transaction succeeds again. */
			w->dropped += failed;
			w->drops_pending += failed + drops;
			w->seq_done += failed;
			backoff = !w->stop;
			if (w->abandon)
				w->drops_pending = 0;
		}
		pthread_cond_broadcast(&w->done);
		if (w->stop && (w->q.n == 0 || w->abandon) &&
		    (w->drops_pending == 0 || w->abandon || failed))
			break;
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

static int
start_thread(struct trace_writer *w)
{
	sigset_t all, old;
	int rc;

	/* The thread must never run the application's signal handlers. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&w->thread, NULL, writer_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc == 0)
		w->thread_started = 1;
	return -rc;
}

/* ---------------------------------------------------------------------- */
/* Fork and exit                                                          */
/* ---------------------------------------------------------------------- */

static void
atfork_prepare(void)
{
	pthread_mutex_lock(&registry_lock);
	for (struct trace_writer *w = registry; w; w = w->next) {
		__atomic_add_fetch(&w->fork_waiting, 1, __ATOMIC_ACQ_REL);
		pthread_mutex_lock(&w->db_lock);
		/* Closed here, reopened by the thread when it next writes. */
		if (w->db && w->pid == cur_pid)
			db_release(w, 0);
		pthread_mutex_lock(&w->lock);
	}
}

static void
atfork_parent(void)
{
	for (struct trace_writer *w = registry; w; w = w->next) {
		pthread_mutex_unlock(&w->lock);
		pthread_mutex_unlock(&w->db_lock);
		__atomic_sub_fetch(&w->fork_waiting, 1, __ATOMIC_ACQ_REL);
	}
	pthread_mutex_unlock(&registry_lock);
}

static void
atfork_child(void)
{
	__atomic_store_n(&cur_pid, getpid(), __ATOMIC_RELEASE);
	for (struct trace_writer *w = registry; w; w = w->next) {
		pthread_mutex_unlock(&w->lock);
		pthread_mutex_unlock(&w->db_lock);
		/* A waiter that existed only in the parent may be recorded in
		 * the condition variables: start them afresh. */
		init_sync(w);
		w->fork_waiting = 0;
	}
	pthread_mutex_unlock(&registry_lock);
}

/* The child's first event: a thread and (lazily) a connection of its own. */
static void
child_restart(struct trace_writer *w)
{
	struct tq_event *old;
	size_t n;
	int rc;

	pthread_mutex_lock(&w->lock);
	if (w->pid == __atomic_load_n(&cur_pid, __ATOMIC_ACQUIRE))
		goto out;
	old = tq_fifo_take(&w->q, &n);
	tq_event_free_list(old);
	/* The parent's connection, if any, is abandoned, never closed. */
	w->db = NULL;
	memset(w->st, 0, sizeof(w->st));
	memset(w->call_bound, 0, sizeof(w->call_bound));
	w->process_written = 0;
	w->seq_in = w->seq_done = 0;
	w->enqueued = w->written = w->dropped = w->commits = 0;
	w->drops_pending = 0;
	w->q.peak_n = w->q.peak_bytes = 0;
	w->sleeping = w->flush_req = w->stop = w->abandon = 0;
	w->thread_started = 0;
	w->start_wall_ns = trace_wall_ns();
	__atomic_store_n(&w->pid, cur_pid, __ATOMIC_RELEASE);
	rc = start_thread(w);
	w->broken = rc < 0;
	if (rc < 0)
		warn_once(w, WARN_THREAD, "cannot start the trace writer thread (%s)%s",
			  strerror(-rc), "; events are dropped");
out:
	pthread_mutex_unlock(&w->lock);
}

static void
flush_all_at_exit(void)
{
	uint64_t left;

	pthread_mutex_lock(&registry_lock);
	for (struct trace_writer *w = registry; w; w = w->next) {
		if (w->pid != cur_pid || !w->thread_started ||
		    trace_writer_flush(w, EXIT_FLUSH_MS) != -ETIMEDOUT)
			continue;
		/*
		 * The process ends with events still queued (the trace stayed
		 * locked by another process, or too slow): no drops row can
		 * count them any more, so at least say so.
		 */
		pthread_mutex_lock(&w->lock);
		left = w->seq_in - w->seq_done;
		pthread_mutex_unlock(&w->lock);
		warn_once(w, WARN_EXIT, "trace %s: %llu events not written before exit"
			  " (trace locked or too slow); they are lost", w->path,
			  (unsigned long long)left);
	}
	pthread_mutex_unlock(&registry_lock);
}

static void
once_init(void)
{
	char *p = calls_sql;

	p = stpcpy(p, CALLS_INSERT);
	for (int r = 0; r < CALL_ROWS; r++)
		p = stpcpy(stpcpy(p, r ? "," : ""), CALLS_ROW);
	cur_pid = getpid();
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
	atexit(flush_all_at_exit);
}

/* ---------------------------------------------------------------------- */
/* API                                                                    */
/* ---------------------------------------------------------------------- */

int
trace_writer_open(struct trace_writer **out, const char *path,
		  const struct trace_writer_options *opt)
{
	struct trace_writer *w = NULL;
	char err[512];
	int ret = 0;

	*out = NULL;
	pthread_once(&once, once_init);
	if (!path || !*path) {
		ret = -EINVAL;
		trace_warnf("no trace file given; not tracing");
		goto out;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		ret = -ENOMEM;
		trace_warnf("out of memory; not tracing");
		goto out;
	}
	w->path = strdup(path);
	w->role = strdup(opt && opt->role ? opt->role : "");
	if (!w->path || !w->role) {
		ret = -ENOMEM;
		trace_warnf("out of memory; not tracing");
		goto out;
	}
	w->commit_ms = opt && opt->commit_interval_ms > 0 ? opt->commit_interval_ms : DEFAULT_COMMIT_MS;
	w->busy_ms = opt && opt->busy_timeout_ms > 0 ? opt->busy_timeout_ms : DEFAULT_BUSY_MS;
	tq_fifo_init(&w->q,
		     opt && opt->queue_max_events ? opt->queue_max_events : DEFAULT_QUEUE_EVENTS,
		     opt && opt->queue_max_bytes ? opt->queue_max_bytes : DEFAULT_QUEUE_BYTES);
	init_sync(w);
	w->pid = cur_pid;
	w->start_wall_ns = trace_wall_ns();

	ret = trace_db_open_rw(path, w->busy_ms, &w->db, err, sizeof(err));
	if (ret < 0) {
		trace_warnf("cannot write the trace (%s); not tracing", err);
		goto out;
	}
	set_busy(w);
	ret = trace_err_from_sqlite(db_prepare(w));
	if (ret < 0) {
		trace_warnf("cannot write the trace %s: %s; not tracing", path, sqlite3_errmsg(w->db));
		goto out;
	}
	pthread_mutex_lock(&registry_lock);
	ret = start_thread(w);
	if (ret == 0) {
		w->next = registry;
		registry = w;
	}
	pthread_mutex_unlock(&registry_lock);
	if (ret < 0) {
		trace_warnf("cannot start the trace writer thread (%s); not tracing", strerror(-ret));
		goto out;
	}
	*out = w;
	w = NULL;
out:
	if (w) {
		db_release(w, 1);
		free(w->path);
		free(w->role);
		free(w);
	}
	return ret;
}

static void
enqueue(struct trace_writer *w, struct tq_event *ev)
{
	int saved = errno;
	int wake = 0;
	int full = 0;

	if (__builtin_expect(__atomic_load_n(&w->pid, __ATOMIC_RELAXED) !=
			     __atomic_load_n(&cur_pid, __ATOMIC_RELAXED), 0))
		child_restart(w);
	pthread_mutex_lock(&w->lock);
	if (ev && !w->broken && !w->stop && tq_fifo_push(&w->q, ev)) {
		w->enqueued++;
		w->seq_in++;
		/* Signal only a sleeping thread or a filling queue: a steady
		 * stream is picked up by the thread's short polls. */
		wake = w->sleeping || w->q.n >= w->q.max_n / 2 || w->q.bytes >= w->q.max_bytes / 2;
		if (wake)
			w->sleeping = 0;
	} else {
		full = 1;
		w->dropped++;
		w->drops_pending++;
	}
	pthread_mutex_unlock(&w->lock);
	if (wake)
		pthread_cond_signal(&w->wake);
	if (full) {
		if (!ev)
			warn_once(w, WARN_NOMEM, "out of memory; trace events are dropped%s%s", "",
				  " (counted in the trace)");
		else
			warn_once(w, WARN_OVERFLOW, "trace %s: queue full; events are dropped%s",
				  w->path, " (counted in the trace)");
		free(ev);
	}
	errno = saved;
}

void
trace_write_call(struct trace_writer *w, const struct trace_call *call)
{
	if (w && call)
		enqueue(w, event_call(w, call));
}

void
trace_write_marker(struct trace_writer *w, const struct trace_marker *marker)
{
	if (w && marker)
		enqueue(w, tq_event_marker(marker));
}

void
trace_write_wire(struct trace_writer *w, const struct trace_wire *wire)
{
	if (w && wire)
		enqueue(w, tq_event_wire(wire));
}

int
trace_writer_flush(struct trace_writer *w, int timeout_ms)
{
	struct timespec ts;
	uint64_t target, dropped;
	int ret = 0;

	if (!w)
		return 0;
	if (__atomic_load_n(&w->pid, __ATOMIC_RELAXED) != __atomic_load_n(&cur_pid, __ATOMIC_RELAXED))
		child_restart(w);
	timespec_after_ms(&ts, timeout_ms < 0 ? 0 : timeout_ms);
	pthread_mutex_lock(&w->lock);
	if (!w->thread_started) {
		ret = -EIO;
		goto out;
	}
	target = w->seq_in;
	dropped = w->dropped;
	w->flush_req = 1;
	pthread_cond_signal(&w->wake);
	while (w->seq_done < target || w->drops_pending) {
		if (pthread_cond_timedwait(&w->done, &w->lock, &ts) == ETIMEDOUT) {
			ret = -ETIMEDOUT;
			goto out;
		}
		/* Drops that cannot be recorded now do not hold the flush. */
		if (w->seq_done >= target && w->dropped != dropped)
			break;
	}
	if (w->dropped != dropped)
		ret = -EIO;
out:
	pthread_mutex_unlock(&w->lock);
	return ret;
}

void
trace_writer_close(struct trace_writer *w)
{
	struct trace_writer **pp;
	int own;

	if (!w)
		return;
	own = w->pid == __atomic_load_n(&cur_pid, __ATOMIC_ACQUIRE);
	pthread_mutex_lock(&registry_lock);
	for (pp = &registry; *pp; pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	}
	pthread_mutex_unlock(&registry_lock);
	if (own && w->thread_started) {
		if (trace_writer_flush(w, CLOSE_FLUSH_MS) == -ETIMEDOUT) {
			pthread_mutex_lock(&w->lock);
			w->abandon = 1;
			pthread_mutex_unlock(&w->lock);
		}
		pthread_mutex_lock(&w->lock);
		w->stop = 1;
		pthread_cond_signal(&w->wake);
		pthread_mutex_unlock(&w->lock);
		pthread_join(w->thread, NULL);
	}
	/* A connection inherited from another process is abandoned, not closed. */
	if (own)
		db_release(w, 1);
	tq_event_free_list(w->q.head);
	tq_event_free_list(w->spare);
	pthread_mutex_destroy(&w->lock);
	pthread_mutex_destroy(&w->db_lock);
	pthread_cond_destroy(&w->wake);
	pthread_cond_destroy(&w->done);
	free(w->path);
	free(w->role);
	free(w);
}

void
trace_writer_get_stats(struct trace_writer *w, struct trace_writer_stats *s)
{
	memset(s, 0, sizeof(*s));
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	s->enqueued = w->enqueued;
	s->written = w->written;
	s->dropped = w->dropped;
	s->commits = w->commits;
	s->queue_peak_events = w->q.peak_n;
	s->queue_peak_bytes = w->q.peak_bytes;
	pthread_mutex_unlock(&w->lock);
}
