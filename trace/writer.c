/*
 * writer.c — the trace writer: the application's side (appending to the
 * journal), the writer thread (importing it into the trace), fork and exit.
 *
 * Callers (any thread) copy an event into the process's journal (journal.h)
 * under a short mutex: memory only, no system call, no descriptor.  The
 * journal is a file mapping, so whatever was appended outlives the process
 * however it ends; one background thread per writer imports it into the
 * trace in transactions of at most commit_interval_ms / 2, each of which
 * also moves the journal's row in the journals table (ingest.h), and only
 * then advances the journal's tail.  Whoever opens the trace later imports
 * the journals of dead processes (recover.h) exactly once.
 *
 * The thread's descriptors are its own: it starts with unshare(CLONE_FILES)
 * and closes every copied descriptor, so SQLite's and the journal's files
 * exist only in its private table.  The application's close(), closefrom()
 * or dup2() cannot touch them, and its open() can never get their numbers
 * (a tracer must never write into the application's files).  Hence:
 * - nothing of ours may use the trace's SQLite connection from another
 *   thread: fork() asks the thread to close it (parking the thread) instead
 *   of closing it itself;
 * - the thread cannot write to the application's fd 2: its warnings are
 *   handed over (trace_warn_set_sink) and printed by the next application
 *   thread that enters the writer;
 * - one process has one writer per trace file: opening the same file again
 *   shares it (SQLite's per-file lock bookkeeping is process-wide and would
 *   mix two descriptor tables).
 *
 * Events that do not fit in the journal are counted in its header; the
 * count reaches the trace as a `drops` row in the same way as the events.
 * Events that SQLite refuses (disk full, I/O error, trace locked) stay in
 * the journal and are retried.
 *
 * At the last close (or exit) the thread checkpoints and switches the
 * trace out of WAL mode when no other connection is open (the switch fails
 * otherwise), so that the trace ends as one self-contained file.
 */
#include "trace.h"
#include "ingest.h"
#include "journal.h"
#include "proc.h"
#include "recover.h"
#include "store.h"
#include "util.h"
#include "sys.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum {
	DEFAULT_QUEUE_EVENTS = 65536,
	DEFAULT_JOURNAL_BYTES = 8 << 20,
	DEFAULT_COMMIT_MS = 100,
	DEFAULT_BUSY_MS = 5000,
	/* SQLite's own busy wait is cut into slices so that fork() and close
	 * get the thread's attention between them. */
	BUSY_SLICE_MS = 50,
	/* Fairness gap between two slices of a long import (import_journal):
	 * left after every slice while another writer was seen in the last
	 * OTHER_WRITER_MS, otherwise once every PROBE_GAP_MS so that a newcomer
	 * blocked by our back-to-back slices gets in and is seen. */
	FAIR_GAP_US = 2000,
	OTHER_WRITER_MS = 2000,
	PROBE_GAP_MS = 250,
	/* Empty polls before the thread sleeps until signalled. */
	IDLE_POLLS = 10,
	CLOSE_FLUSH_MS = 5000,
	EXIT_FLUSH_MS = 2000,
	/* How long the first open waits for a locked trace before it lets the
	 * thread wait for it. */
	OPEN_WAIT_MS = 200,
	/* How long a child's first event waits for its own journal. */
	CHILD_START_MS = 5000,
	WARN_SLOTS = 4,
	SLICE_EVENTS_MAX = 65536,
	/* A full disk: the first smaller transaction, and the tries without
	 * progress a close makes before it gives up. */
	SLICE_EVENTS_FULL = 256,
	FINAL_TRIES = 10,
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
	WARN_JOURNAL = 1u << 10,
};

/* The thread's state as the application sees it. */
enum thread_state {
	TS_NONE,		/* not started (or the child of a fork) */
	TS_STARTING,
	TS_RUNNING,		/* the journal exists */
	TS_FAILED,		/* could not open: no thread */
	TS_DONE,		/* the thread has finished */
};

struct trace_writer {
	struct trace_writer *next;	/* registry of live writers (fork, exit) */
	int refs;			/* opens of this file in this process */
	char *path;
	char *role;
	dev_t dev;
	ino_t ino;
	int commit_ms;
	int busy_ms;
	size_t max_events;
	uint64_t journal_bytes;
	pid_t pid;			/* the process the thread and journal belong to */
	int64_t start_wall_ns;

	/* Lock: the journal's head, the counters and flags below. */
	pthread_mutex_t lock;
	pthread_cond_t wake;		/* the thread waits for work */
	pthread_cond_t done;		/* flushers, openers and fork wait for the thread */
	struct journal j;
	uint64_t appended;		/* events appended */
	uint64_t committed;		/* events in the trace */
	uint64_t drops_written;		/* the journal's drops that are in the trace */
	uint64_t lost;			/* events with no journal at all to count them */
	uint64_t commits;
	uint64_t failures;		/* import attempts that failed */
	size_t peak_events;
	size_t peak_bytes;
	int state;			/* enum thread_state */
	int open_err;
	char open_msg[512];
	int sleeping;
	int flush_req;
	int fork_req;			/* fork() wants the connection closed */
	int parked;			/* the thread waits for the fork to end */
	int stop;
	int abandon;			/* close gave up waiting: stop trying */
	int gone;			/* the journal is released: nothing may be appended */
	int child;			/* started after fork(): journal first, then trace */
	pthread_t thread;
	char warn_text[WARN_SLOTS][520];
	size_t warn_len[WARN_SLOTS];
	int warn_n;			/* atomic: handed-over warnings waiting */

	/* The thread's own. */
	sqlite3 *db;
	struct ingest in;
	struct ingest_mark mark;	/* our journal's row */
	uint64_t slice_events;		/* events per transaction at most (0: any), after SQLITE_FULL */
	int64_t data_version;		/* -1: not read on this connection yet */
	int64_t other_seen_ns;		/* another writer last seen (busy, its commit) */
	int64_t last_gap_ns;
	unsigned warned;		/* atomic: enum warn_bit */
};

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct trace_writer *registry;
static pid_t cur_pid;

static int
is_own(struct trace_writer *w)
{
	return __atomic_load_n(&w->pid, __ATOMIC_RELAXED) ==
	       __atomic_load_n(&cur_pid, __ATOMIC_RELAXED);
}

/* ---------------------------------------------------------------------- */
/* Warnings                                                               */
/* ---------------------------------------------------------------------- */

/* The thread's warnings, kept for an application thread (see top). */
static void
warn_keep(void *arg, const char *line, size_t len)
{
	struct trace_writer *w = arg;

	pthread_mutex_lock(&w->lock);
	if (w->warn_n < WARN_SLOTS) {
		if (len > sizeof(w->warn_text[0]))
			len = sizeof(w->warn_text[0]);
		memcpy(w->warn_text[w->warn_n], line, len);
		w->warn_len[w->warn_n] = len;
		__atomic_store_n(&w->warn_n, w->warn_n + 1, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&w->lock);
}

/* On an application thread: print what the writer thread handed over. */
static void
warn_emit(struct trace_writer *w)
{
	char text[WARN_SLOTS][520];
	size_t len[WARN_SLOTS];
	int saved = errno;
	int n;

	if (__builtin_expect(!__atomic_load_n(&w->warn_n, __ATOMIC_ACQUIRE), 1))
		return;
	pthread_mutex_lock(&w->lock);
	n = w->warn_n;
	memcpy(text, w->warn_text, sizeof(text));
	memcpy(len, w->warn_len, sizeof(len));
	__atomic_store_n(&w->warn_n, 0, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&w->lock);
	for (int i = 0; i < n; i++) {
		ssize_t r = write(STDERR_FILENO, text[i], len[i]);

		(void)r;
	}
	errno = saved;
}

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
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->wake, &ca);
	pthread_cond_init(&w->done, &ca);
	pthread_condattr_destroy(&ca);
}

/* ---------------------------------------------------------------------- */
/* Connection (writer thread only)                                        */
/* ---------------------------------------------------------------------- */

/*
 * Close the connection.  @p last: checkpoint into the main file and leave
 * WAL mode if no other connection is open (then -wal and -shm go away and
 * the trace is one file that anybody allowed to read it can read).
 */
static void
db_release(struct trace_writer *w, int last)
{
	ingest_finalize(&w->in);
	trace_db_close(w->db, last);
	w->db = NULL;
}

/*
 * SQLite's default busy handler backs off up to 100 ms between tries, so a
 * process that commits back to back can starve the others for a long time.
 * Poll every millisecond instead; the lock holder leaves a gap between
 * slices of a long import that such a poll catches.
 */
static int
busy_poll(void *arg, int count)
{
	struct trace_writer *w = arg;

	w->other_seen_ns = trace_mono_ns();
	if (count >= BUSY_SLICE_MS)
		return 0;
	usleep(1000);
	return 1;
}

static int
db_ensure(struct trace_writer *w, int wait_ms)
{
	char err[512];
	int ret = 0;
	int rc;

	if (w->db)
		goto out;
	ret = trace_db_open_rw(w->path, wait_ms, &w->db, err, sizeof(err));
	if (ret == -EBUSY)
		goto out;	/* locked: the caller waits and says so */
	if (ret < 0) {
		warn_once(w, WARN_OPEN, "cannot write the trace (%s); events wait in the journal", err);
		goto out;
	}
	sqlite3_busy_handler(w->db, busy_poll, w);
	w->data_version = -1;
	rc = ingest_prepare(&w->in, w->db);
	if (rc != SQLITE_OK) {
		ret = trace_err_from_sqlite(rc);
		warn_once(w, WARN_OPEN, "cannot write the trace %s: %s; events wait in the journal",
			  w->path, sqlite3_errmsg(w->db));
		db_release(w, 0);
	}
out:
	return ret;
}

static void
warn_rc(struct trace_writer *w, int rc)
{
	switch (rc & 0xff) {
	case SQLITE_FULL:
		warn_once(w, WARN_FULL, "trace %s: disk full; events wait in the journal%s",
			  w->path, w->j.durable ? "" : " (in memory: those not written when the process"
			  " ends are lost, uncounted)");
		break;
	case SQLITE_IOERR:
		warn_once(w, WARN_IO, "trace %s: I/O error; events wait in the journal", w->path);
		break;
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_CANTOPEN:
		warn_once(w, WARN_READONLY, "trace %s: cannot write (%s); events wait in the journal",
			  w->path, sqlite3_errstr(rc));
		break;
	case SQLITE_NOMEM:
		warn_once(w, WARN_NOMEM, "trace %s: out of memory; events wait in the journal",
			  w->path);
		break;
	default:
		warn_once(w, WARN_SQLITE, "trace %s: SQLite error (%s); events wait in the journal",
			  w->path, sqlite3_errstr(rc));
		break;
	}
}

static int
flag(struct trace_writer *w, int *f)
{
	int r;

	pthread_mutex_lock(&w->lock);
	r = *f;
	pthread_mutex_unlock(&w->lock);
	return r;
}

/*
 * A safe point of the thread: no transaction open.  If a fork() is on its
 * way, close the connection (the child must inherit none: SQLite's
 * per-file bookkeeping would point at descriptors of our private table)
 * and wait until the fork is over.
 */
static void
fork_point(struct trace_writer *w)
{
	if (!__atomic_load_n(&w->fork_req, __ATOMIC_ACQUIRE))
		return;
	db_release(w, 0);
	pthread_mutex_lock(&w->lock);
	w->parked = 1;
	pthread_cond_broadcast(&w->done);
	while (w->fork_req)
		pthread_cond_wait(&w->wake, &w->lock);
	w->parked = 0;
	pthread_mutex_unlock(&w->lock);
}

/*
 * BEGIN IMMEDIATE, waiting for other processes' transactions for as long as
 * it takes (one warning after busy_ms); the application's threads are not
 * affected, the journal fills meanwhile.
 */
static int
begin(void *arg)
{
	struct trace_writer *w = arg;
	int64_t t0 = trace_mono_ns();
	int rc;

	for (;;) {
		fork_point(w);
		rc = db_ensure(w, BUSY_SLICE_MS);
		if (rc == -EBUSY)
			rc = SQLITE_BUSY;
		else if (rc < 0)
			return SQLITE_CANTOPEN;
		else
			rc = ingest_run(&w->in, IS_BEGIN);
		if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED)
			return rc;
		w->other_seen_ns = trace_mono_ns();
		if (trace_mono_ns() - t0 >= (int64_t)w->busy_ms * 1000000)
			warn_once(w, WARN_BUSY, "trace %s is locked by another process; still waiting%s",
				  w->path, " (events wait in the journal)");
		if (flag(w, &w->abandon))
			return rc;
		/* SQLite may answer BUSY without waiting (deadlock avoidance):
		 * never spin. */
		usleep(10000);
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
	sqlite3_stmt *st = w->in.st[IS_DATA_VERSION];
	int64_t now = trace_mono_ns();
	int64_t v;

	if (st && trace_sys.sqlite3_step(st) == SQLITE_ROW) {
		v = sqlite3_column_int64(st, 0);
		if (w->data_version >= 0 && v != w->data_version)
			w->other_seen_ns = now;
		w->data_version = v;
	} else {
		/* Cannot tell: be fair. */
		w->other_seen_ns = now;
	}
	if (st)
		sqlite3_reset(st);
	return now - w->other_seen_ns < (int64_t)OTHER_WRITER_MS * 1000000 ||
	       now - w->last_gap_ns >= (int64_t)PROBE_GAP_MS * 1000000;
}

static void
between_slices(void *arg)
{
	struct trace_writer *w = arg;

	fork_point(w);
	if (w->db && want_gap(w)) {
		w->last_gap_ns = trace_mono_ns();
		usleep(FAIR_GAP_US);
	}
}

/*
 * Import our journal up to its current head, slice by slice.
 * @retval 0 all in, -1 a failure (the rest stays in the journal)
 */
static int
import_journal(struct trace_writer *w)
{
	const int64_t slice_ns = (int64_t)w->commit_ms * 1000000 / 2;
	struct journal_header *h = w->j.hdr;
	struct ingest_mark m;
	uint64_t head, dropped, events;
	int corrupt;
	int rc;

	for (;;) {
		head = __atomic_load_n(&h->head, __ATOMIC_ACQUIRE);
		dropped = __atomic_load_n(&h->dropped, __ATOMIC_RELAXED);
		if (head == w->mark.imported && dropped == w->mark.dropped)
			return 0;
		rc = begin(w);
		if (rc != SQLITE_OK) {
			if (w->db)
				warn_rc(w, rc);
			goto fail;
		}
		w->in.pid = w->pid;
		m = w->mark;
		rc = ingest_range(&w->in, &w->j, head, dropped, trace_mono_ns() + slice_ns,
				  w->slice_events, &m, &events, &corrupt);
		if (rc == SQLITE_OK)
			rc = ingest_mark_set(&w->in, h->id, &m, NULL);
		if (rc == SQLITE_OK)
			rc = ingest_run(&w->in, IS_COMMIT);
		if (rc != SQLITE_OK)
			goto rollback;
		w->mark = m;
		if (w->slice_events && (w->slice_events *= 2) > SLICE_EVENTS_MAX)
			w->slice_events = 0;
		/* Only now may the appenders reuse the space. */
		__atomic_store_n(&h->tail, m.imported, __ATOMIC_RELEASE);
		pthread_mutex_lock(&w->lock);
		w->committed += events;
		w->drops_written = m.dropped;
		w->commits++;
		pthread_cond_broadcast(&w->done);
		pthread_mutex_unlock(&w->lock);
		if (corrupt) {
			/* Our own memory: cannot happen unless something overwrote it. */
			warn_once(w, WARN_SQLITE, "trace %s: damaged journal record; tracing stops", w->path);
			goto fail;
		}
		if (m.imported != head)
			between_slices(w);
	}
rollback:
	warn_rc(w, rc);
	if (w->db && !sqlite3_get_autocommit(w->db))
		ingest_run(&w->in, IS_ROLLBACK);
	/* A full disk may still take a smaller transaction: halve it, down
	 * to one event, so that what fits gets in. */
	if ((rc & 0xff) == SQLITE_FULL)
		w->slice_events = w->slice_events ? (w->slice_events + 1) / 2 : SLICE_EVENTS_FULL;
fail:
	pthread_mutex_lock(&w->lock);
	w->failures++;
	pthread_cond_broadcast(&w->done);
	pthread_mutex_unlock(&w->lock);
	return -1;
}

static void
recover_dead(struct trace_writer *w)
{
	const struct recover_ops ops = { begin, between_slices, w };
	struct recover_stats st;

	if (db_ensure(w, BUSY_SLICE_MS) < 0)
		return;
	recover_journals(&w->in, &ops, w->path, w->j.durable ? w->j.hdr->id : 0, &st);
	w->in.pid = w->pid;
}

/* Create the journal and put this process's identity first in it. */
static int
make_journal(struct trace_writer *w)
{
	struct trace_procinfo *pi = malloc(sizeof(*pi));
	struct journal_process p;
	int rc;

	rc = journal_create(&w->j, w->path, w->journal_bytes);
	if (rc < 0 && !w->j.hdr)
		goto out;
	if (rc < 0)
		warn_once(w, rc == -ENOSPC ? WARN_FULL : WARN_JOURNAL,
			  "trace %s: %s (no journal file beside it: %s); events are kept in memory"
			  " until written; those not written when the process ends are lost,"
			  " uncounted", w->path,
			  rc == -ENOSPC ? "disk full" : "not crash-proof", strerror(-rc));
	rc = 0;
	if (pi) {
		trace_procinfo_get(pi);
		p = (struct journal_process){
			.ppid = pi->ppid, .start_wall_ns = w->start_wall_ns, .exe = pi->exe,
			.name = pi->name, .argv = pi->argv, .role = w->role, .host = pi->host,
		};
		journal_append_process(&w->j, &p);
	}
	w->mark.imported = w->j.hdr->tail;
	w->mark.dropped = 0;
out:
	free(pi);
	return rc;
}

/* Report the start to the opener (trace_writer_open, child_restart). */
static void
set_state(struct trace_writer *w, int state, int err, const char *msg)
{
	pthread_mutex_lock(&w->lock);
	w->state = state;
	w->open_err = err;
	if (msg)
		snprintf(w->open_msg, sizeof(w->open_msg), "%s", msg);
	pthread_cond_broadcast(&w->done);
	pthread_mutex_unlock(&w->lock);
}

/* Everything of the first open that can fail visibly: the trace, then the journal. */
static int
thread_open(struct trace_writer *w)
{
	char err[512] = "";
	int rc;

	/* The first open says at once what is wrong with the trace; a trace
	 * locked by another process is waited for later, not here (the
	 * application is waiting for its call). */
	if (!w->child) {
		rc = trace_db_open_rw(w->path, OPEN_WAIT_MS, &w->db, err, sizeof(err));
		if (rc == 0) {
			sqlite3_busy_handler(w->db, busy_poll, w);
			w->data_version = -1;
			rc = trace_err_from_sqlite(ingest_prepare(&w->in, w->db));
			if (rc < 0)
				snprintf(err, sizeof(err), "%s: %s", w->path, sqlite3_errmsg(w->db));
		}
		if (rc < 0 && rc != -EBUSY) {
			db_release(w, 0);
			set_state(w, TS_FAILED, rc, err);
			return rc;
		}
	}
	rc = make_journal(w);
	if (rc < 0) {
		db_release(w, 0);
		set_state(w, TS_FAILED, rc, "out of memory");
		return rc;
	}
	set_state(w, TS_RUNNING, 0, NULL);
	return 0;
}

/*
 * The end: import what is left, close the connection (the last one out
 * makes the trace one file), and remove the journal if it is all in.
 * What is not in stays in the journal file for the next opener.
 */
static void
thread_finish(struct trace_writer *w)
{
	uint64_t left;
	int all_in;

	if (!flag(w, &w->abandon))
		import_journal(w);
	all_in = __atomic_load_n(&w->j.hdr->head, __ATOMIC_ACQUIRE) == w->mark.imported &&
		 w->j.hdr->dropped == w->mark.dropped;
	db_release(w, all_in);
	pthread_mutex_lock(&w->lock);
	left = w->appended - w->committed;
	if (all_in || !w->j.durable) {
		journal_release(&w->j, 1);
		w->gone = 1;
	}
	pthread_mutex_unlock(&w->lock);
	/* Without a journal file the full disk's warning has said it all (one
	 * warning for a full disk). */
	if (!all_in && left && !(!w->j.durable && (w->warned & WARN_FULL)))
		warn_once(w, WARN_EXIT, "trace %s: %llu events not written (trace locked or too slow);"
			  " %s", w->path, (unsigned long long)left,
			  w->j.durable ? "they stay in the journal and are imported when the trace is next opened"
				       : "they are lost");
}

/* A quarter of the journal's bounds used (w->lock held): import now. */
static int
filling(struct trace_writer *w)
{
	struct journal_header *h = w->j.hdr;

	return h->head - __atomic_load_n(&h->tail, __ATOMIC_RELAXED) >= w->j.capacity / 4 ||
	       w->appended - w->committed >= w->max_events / 4;
}

static void *
writer_main(void *arg)
{
	struct trace_writer *w = arg;
	const int batch_ms = w->commit_ms / 10 + 1;
	int64_t next_ns = 0;
	struct timespec ts;
	int idle = 0;
	int backoff = 0;
	int work;

	trace_warn_set_sink(warn_keep, w);
	/* A descriptor table of our own, with none of the application's
	 * descriptors in it (see the top of this file). */
	if (unshare(CLONE_FILES) == 0)
		close_range(0, ~0U, 0);
	else
		warn_once(w, WARN_THREAD, "trace %s: the writer thread cannot have descriptors of"
			  " its own (%s); the application closing or reusing descriptors may"
			  " disturb the trace", w->path, strerror(errno));
	if (thread_open(w) < 0)
		return NULL;
	recover_dead(w);
	pthread_mutex_lock(&w->lock);
	for (;;) {
		for (;;) {
			int64_t now = trace_mono_ns();
			int ms;

			work = __atomic_load_n(&w->j.hdr->head, __ATOMIC_ACQUIRE) != w->mark.imported ||
			       w->j.hdr->dropped != w->mark.dropped;
			if (w->stop || w->fork_req || (w->flush_req && !backoff))
				break;
			/* Batches: the journal keeps the events safe meanwhile, so
			 * one transaction per batch interval is enough unless the
			 * journal fills (a commit costs more than many rows). */
			if (work && !backoff && (now >= next_ns || filling(w)))
				break;
			w->sleeping = !work && idle >= IDLE_POLLS && !backoff;
			ms = w->sleeping ? 1000 : backoff ? w->commit_ms
			     : work ? (int)((next_ns - now) / 1000000) + 1 : batch_ms;
			timespec_after_ms(&ts, ms);
			if (pthread_cond_timedwait(&w->wake, &w->lock, &ts) == ETIMEDOUT) {
				idle += !work;
				backoff = 0;
			}
		}
		w->sleeping = 0;
		idle = 0;
		w->flush_req = 0;
		if (w->stop)
			break;
		pthread_mutex_unlock(&w->lock);
		fork_point(w);
		backoff = import_journal(w) < 0;
		next_ns = trace_mono_ns() + (int64_t)batch_ms * 1000000;
		pthread_mutex_lock(&w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	thread_finish(w);
	set_state(w, TS_DONE, 0, NULL);
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
	return -rc;
}

/* Wait (w->lock held) until the thread has left TS_STARTING, at most @p ms. */
static void
wait_started(struct trace_writer *w, int ms)
{
	struct timespec ts;

	timespec_after_ms(&ts, ms);
	while (w->state == TS_STARTING)
		if (pthread_cond_timedwait(&w->done, &w->lock, &ts) == ETIMEDOUT)
			break;
}

/* Ask the thread to finish and wait for it, at most @p ms before giving up on the trace. */
static void
stop_thread(struct trace_writer *w, int ms)
{
	struct timespec ts;

	pthread_mutex_lock(&w->lock);
	if (w->state != TS_RUNNING && w->state != TS_STARTING) {
		pthread_mutex_unlock(&w->lock);
		return;
	}
	w->stop = 1;
	pthread_cond_signal(&w->wake);
	timespec_after_ms(&ts, ms);
	/* Past the bound the thread is told to give up on the trace (it then
	 * ends within a busy slice); the state is checked again after every
	 * wake-up, the timed-out one included. */
	while (w->state != TS_DONE && w->state != TS_FAILED) {
		if (pthread_cond_timedwait(&w->done, &w->lock, &ts) == ETIMEDOUT) {
			w->abandon = 1;
			timespec_after_ms(&ts, BUSY_SLICE_MS);
		}
	}
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
}

/* ---------------------------------------------------------------------- */
/* Fork and exit                                                          */
/* ---------------------------------------------------------------------- */

static void
atfork_prepare(void)
{
	pthread_mutex_lock(&registry_lock);
	for (struct trace_writer *w = registry; w; w = w->next) {
		pthread_mutex_lock(&w->lock);
		if (w->pid == cur_pid && w->state == TS_RUNNING) {
			/* The thread closes its connection and parks. */
			__atomic_store_n(&w->fork_req, 1, __ATOMIC_RELEASE);
			pthread_cond_signal(&w->wake);
			while (!w->parked && w->state == TS_RUNNING)
				pthread_cond_wait(&w->done, &w->lock);
		}
		/* Held across the fork: no appender is half way in the child. */
	}
}

static void
atfork_parent(void)
{
	for (struct trace_writer *w = registry; w; w = w->next) {
		__atomic_store_n(&w->fork_req, 0, __ATOMIC_RELEASE);
		pthread_cond_broadcast(&w->wake);
		pthread_mutex_unlock(&w->lock);
	}
	pthread_mutex_unlock(&registry_lock);
}

static void
atfork_child(void)
{
	__atomic_store_n(&cur_pid, getpid(), __ATOMIC_RELEASE);
	for (struct trace_writer *w = registry; w; w = w->next) {
		pthread_mutex_unlock(&w->lock);
		/* A waiter that existed only in the parent may be recorded in
		 * the condition variables: start them afresh. */
		init_sync(w);
		w->fork_req = 0;
		w->parked = 0;
	}
	pthread_mutex_unlock(&registry_lock);
}

/* The child's first event: a journal, thread and connection of its own. */
static void
child_restart(struct trace_writer *w)
{
	int rc;

	pthread_mutex_lock(&w->lock);
	if (is_own(w))
		goto out;
	/* The parent's journal is the parent's: unmapped, never written. */
	if (w->j.hdr && w->state != TS_FAILED)
		journal_release(&w->j, 0);
	/* The parent's connection (closed before the fork) and thread are gone. */
	w->db = NULL;
	memset(&w->in, 0, sizeof(w->in));
	w->appended = w->committed = w->drops_written = w->lost = 0;
	w->commits = w->failures = 0;
	w->peak_events = w->peak_bytes = 0;
	w->sleeping = w->flush_req = w->stop = w->abandon = w->gone = 0;
	w->warned = 0;
	w->warn_n = 0;
	w->start_wall_ns = trace_wall_ns();
	w->child = 1;
	w->state = TS_STARTING;
	__atomic_store_n(&w->pid, cur_pid, __ATOMIC_RELEASE);
	rc = start_thread(w);
	if (rc < 0) {
		w->state = TS_FAILED;
		warn_once(w, WARN_THREAD, "cannot start the trace writer thread (%s);"
			  " events are lost", strerror(-rc));
		goto out;
	}
	wait_started(w, CHILD_START_MS);
out:
	pthread_mutex_unlock(&w->lock);
}

/*
 * Flush before the end (close, exit): failed attempts are retried while
 * they make progress (a full disk takes ever smaller transactions), within
 * @p ms in all.
 */
static void
final_flush(struct trace_writer *w, int ms)
{
	int64_t end = trace_mono_ns() + (int64_t)ms * 1000000;
	uint64_t before, now;
	int stuck = 0;
	int left;

	for (;;) {
		pthread_mutex_lock(&w->lock);
		before = w->committed;
		pthread_mutex_unlock(&w->lock);
		left = (int)((end - trace_mono_ns()) / 1000000);
		if (left <= 0 || trace_writer_flush(w, left) != -EIO)
			return;
		pthread_mutex_lock(&w->lock);
		now = w->committed;
		pthread_mutex_unlock(&w->lock);
		/* The halvings of a full disk's transactions take a few tries. */
		stuck = now == before ? stuck + 1 : 0;
		if (stuck > FINAL_TRIES)
			return;
	}
}

static void
flush_all_at_exit(void)
{
	pthread_mutex_lock(&registry_lock);
	for (struct trace_writer *w = registry; w; w = w->next) {
		if (!is_own(w))
			continue;
		/* The journal holds everything already: this only saves the
		 * next opener the import, and leaves one self-contained file. */
		final_flush(w, EXIT_FLUSH_MS);
		stop_thread(w, 100);
		warn_emit(w);
	}
	pthread_mutex_unlock(&registry_lock);
}

static void
once_init(void)
{
	cur_pid = getpid();
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
	atexit(flush_all_at_exit);
}

/* ---------------------------------------------------------------------- */
/* API                                                                    */
/* ---------------------------------------------------------------------- */

static void
writer_free(struct trace_writer *w)
{
	if (!w)
		return;
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->wake);
	pthread_cond_destroy(&w->done);
	free(w->path);
	free(w->role);
	free(w);
}

/* An open writer of this process on the same file, if any (registry_lock held). */
static struct trace_writer *
find_shared(const char *path, dev_t *dev, ino_t *ino)
{
	struct stat st;

	*dev = 0;
	*ino = 0;
	if (stat(path, &st) < 0)
		return NULL;
	*dev = st.st_dev;
	*ino = st.st_ino;
	for (struct trace_writer *w = registry; w; w = w->next) {
		if (w->dev == st.st_dev && w->ino == st.st_ino && is_own(w) &&
		    w->state == TS_RUNNING)
			return w;
	}
	return NULL;
}

int
trace_writer_in_process(const char *path)
{
	dev_t dev;
	ino_t ino;
	int r;

	pthread_mutex_lock(&registry_lock);
	r = find_shared(path, &dev, &ino) != NULL;
	pthread_mutex_unlock(&registry_lock);
	return r;
}

int
trace_writer_open(struct trace_writer **out, const char *path,
		  const struct trace_writer_options *opt)
{
	struct trace_writer *w = NULL;
	struct stat st;
	int ret = 0;

	*out = NULL;
	pthread_once(&once, once_init);
	if (!path || !*path) {
		trace_warnf("no trace file given; not tracing");
		return -EINVAL;
	}
	/* Held throughout: two threads opening one new file share one writer. */
	pthread_mutex_lock(&registry_lock);
	w = calloc(1, sizeof(*w));
	if (!w) {
		ret = -ENOMEM;
		trace_warnf("out of memory; not tracing");
		goto out;
	}
	*out = find_shared(path, &w->dev, &w->ino);
	if (*out) {
		(*out)->refs++;
		goto out;
	}
	w->refs = 1;
	w->path = strdup(path);
	w->role = strdup(opt && opt->role ? opt->role : "");
	if (!w->path || !w->role) {
		ret = -ENOMEM;
		trace_warnf("out of memory; not tracing");
		goto out;
	}
	w->commit_ms = opt && opt->commit_interval_ms > 0 ? opt->commit_interval_ms : DEFAULT_COMMIT_MS;
	w->busy_ms = opt && opt->busy_timeout_ms > 0 ? opt->busy_timeout_ms : DEFAULT_BUSY_MS;
	w->max_events = opt && opt->queue_max_events ? opt->queue_max_events : DEFAULT_QUEUE_EVENTS;
	w->journal_bytes = opt && opt->queue_max_bytes ? opt->queue_max_bytes : DEFAULT_JOURNAL_BYTES;
	init_sync(w);
	w->pid = cur_pid;
	w->start_wall_ns = trace_wall_ns();
	w->state = TS_STARTING;
	ret = start_thread(w);
	if (ret < 0) {
		trace_warnf("cannot start the trace writer thread (%s); not tracing", strerror(-ret));
		goto out;
	}
	pthread_mutex_lock(&w->lock);
	while (w->state == TS_STARTING)
		pthread_cond_wait(&w->done, &w->lock);
	ret = w->state == TS_RUNNING ? 0 : w->open_err;
	pthread_mutex_unlock(&w->lock);
	if (ret < 0) {
		pthread_join(w->thread, NULL);
		warn_emit(w);
		trace_warnf("cannot write the trace (%s); not tracing", w->open_msg);
		goto out;
	}
	warn_emit(w);
	/* The file exists now: later opens of it find this writer. */
	if (stat(path, &st) == 0) {
		w->dev = st.st_dev;
		w->ino = st.st_ino;
	}
	w->next = registry;
	registry = w;
	*out = w;
	w = NULL;
out:
	pthread_mutex_unlock(&registry_lock);
	if (w && *out != w)
		writer_free(w);
	return ret;
}

static int
append(struct journal *j, int kind, const void *ev)
{
	switch (kind) {
	case JR_CALL:
		return journal_append_call(j, ev);
	case JR_MARKER:
		return journal_append_marker(j, ev);
	default:
		return journal_append_wire(j, ev);
	}
}

/* Append under the lock; an event that finds no room is counted. */
static void
enqueue(struct trace_writer *w, int kind, const void *ev)
{
	struct journal_header *h;
	int saved = errno;
	int wake = 0, full = 0;
	uint64_t used, queued;

	if (__builtin_expect(!is_own(w), 0))
		child_restart(w);
	pthread_mutex_lock(&w->lock);
	h = w->j.hdr;
	if (!h || w->gone) {
		w->lost++;
		goto unlock;
	}
	if (w->appended - w->committed >= w->max_events || !append(&w->j, kind, ev)) {
		full = 1;
		__atomic_add_fetch(&h->dropped, 1, __ATOMIC_RELAXED);
		goto unlock;
	}
	w->appended++;
	queued = w->appended - w->committed;
	used = h->head - __atomic_load_n(&h->tail, __ATOMIC_RELAXED);
	if (queued > w->peak_events)
		w->peak_events = queued;
	if (used > w->peak_bytes)
		w->peak_bytes = used;
	/* Signal only a sleeping thread or a filling journal: a steady
	 * stream is picked up by the thread's short polls. */
	wake = w->sleeping || used >= w->j.capacity / 2 || queued >= w->max_events / 2;
	if (wake)
		w->sleeping = 0;
unlock:
	pthread_mutex_unlock(&w->lock);
	if (wake)
		pthread_cond_signal(&w->wake);
	if (full)
		warn_once(w, WARN_OVERFLOW, "trace %s: journal full; events are dropped"
			  " (counted in the trace)", w->path);
	warn_emit(w);
	errno = saved;
}

void
trace_write_call(struct trace_writer *w, const struct trace_call *call)
{
	if (w && call)
		enqueue(w, JR_CALL, call);
}

void
trace_write_marker(struct trace_writer *w, const struct trace_marker *marker)
{
	if (w && marker)
		enqueue(w, JR_MARKER, marker);
}

void
trace_write_wire(struct trace_writer *w, const struct trace_wire *wire)
{
	if (w && wire)
		enqueue(w, JR_WIRE, wire);
}

int
trace_writer_flush(struct trace_writer *w, int timeout_ms)
{
	struct timespec ts;
	uint64_t target, failures, dropped;
	int ret = 0;

	if (!w)
		return 0;
	if (!is_own(w))
		child_restart(w);
	timespec_after_ms(&ts, timeout_ms < 0 ? 0 : timeout_ms);
	pthread_mutex_lock(&w->lock);
	if (w->state != TS_RUNNING) {
		ret = -EIO;
		goto out;
	}
	target = w->appended;
	failures = w->failures;
	dropped = w->j.hdr->dropped;
	w->flush_req = 1;
	pthread_cond_signal(&w->wake);
	while (w->committed < target || w->drops_written < dropped) {
		if (w->state != TS_RUNNING) {
			ret = -EIO;
			goto out;
		}
		if (pthread_cond_timedwait(&w->done, &w->lock, &ts) == ETIMEDOUT) {
			ret = -ETIMEDOUT;
			goto out;
		}
		/* A failed attempt: the events wait in the journal; say so now
		 * rather than at the timeout. */
		if (w->failures != failures) {
			ret = -EIO;
			goto out;
		}
	}
	if (w->j.hdr->dropped != dropped)
		ret = -EIO;
out:
	pthread_mutex_unlock(&w->lock);
	warn_emit(w);
	return ret;
}

void
trace_writer_close(struct trace_writer *w)
{
	struct trace_writer **pp;
	int own;

	if (!w)
		return;
	own = is_own(w);
	pthread_mutex_lock(&registry_lock);
	if (--w->refs > 0) {
		pthread_mutex_unlock(&registry_lock);
		return;
	}
	for (pp = &registry; *pp; pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	}
	pthread_mutex_unlock(&registry_lock);
	if (own) {
		final_flush(w, CLOSE_FLUSH_MS);
		stop_thread(w, 100);
		warn_emit(w);
	}
	/* Not ours (the parent's, after fork): unmapped, never removed. */
	if (w->j.hdr)
		journal_release(&w->j, 0);
	writer_free(w);
}

void
trace_writer_get_stats(struct trace_writer *w, struct trace_writer_stats *s)
{
	memset(s, 0, sizeof(*s));
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	s->enqueued = w->appended;
	s->written = w->committed;
	s->dropped = (w->j.hdr ? w->j.hdr->dropped : 0) + w->lost;
	s->commits = w->commits;
	s->queue_peak_events = w->peak_events;
	s->queue_peak_bytes = w->peak_bytes;
	pthread_mutex_unlock(&w->lock);
}
