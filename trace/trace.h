/*
 * trace.h — the pcsctap trace store.
 *
 * The only code in pcsctap that talks to SQLite.  Producers (the shim in
 * every traced process and thread, the driver inside pcscd) append events
 * through a trace_writer to their process's journal, a mapped file beside
 * the trace that outlives the process however it ends; a background thread
 * imports them into the trace in WAL transactions, and whoever opens the
 * trace next imports what dead processes left.  Consumers (tools/) read
 * through a trace_reader.
 *
 * The schema is documented in docs/trace-schema.md.
 *
 * Conventions: functions that can fail return 0 on success and a negative
 * errno-style value or a negative TRACE_E_* code on failure; they never
 * print to stdout, never exit and never abort.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define TRACE_SCHEMA_VERSION 3

/* Errors beyond errno values (all negative, below -4096 so as not to clash). */
enum trace_error {
	TRACE_E_NOT_SQLITE = -5001,	/* the file exists but is not an SQLite database */
	TRACE_E_FOREIGN = -5002,	/* an SQLite database, but not a pcsctap trace */
	TRACE_E_NEWER_SCHEMA = -5003,	/* written by a newer pcsctap */
	TRACE_E_CORRUPT = -5004,	/* damaged database */
	TRACE_E_SQLITE = -5005,		/* any other SQLite failure */
	TRACE_E_SYMLINK = -5006,	/* the trace path is a symbolic link: refused */
	TRACE_E_NOT_PRIVATE = -5007,	/* not the caller's own, or group/other may access it: refused */
};

/*
 * Stable numbering of the traced functions: the order of scard_api.def,
 * from 1.  The numbers are stored in the trace (calls.fn) and are part of
 * the schema: never renumber (tests/trace/test_fn.c holds them).
 */
enum trace_fn {
	TRACE_FN_NONE = 0,
#define SCARD_FN(name, params, args) TRACE_FN_##name,
#include "scard_api.def"
#undef SCARD_FN
	TRACE_FN_END_,
	TRACE_FN_MAX = TRACE_FN_END_ - 1,
};

/** @retval the function's name, or NULL for an unknown number */
const char *trace_fn_name(int fn);
/** @retval the function's number, or 0 for an unknown name */
int trace_fn_from_name(const char *name);

/* A byte buffer; data == NULL means "absent" (stored as SQL NULL). */
struct trace_blob {
	const uint8_t *data;
	size_t len;
};

/* One entry of SCardGetStatusChange's reader-state array. */
struct trace_reader_state {
	const char *reader;
	uint32_t current_state;	/* as passed in */
	uint32_t event_state;	/* as returned */
	struct trace_blob atr;	/* as returned */
};

/* Which optional scalar fields of struct trace_call are set. */
enum trace_call_field {
	TRACE_HAS_CONTEXT = 1u << 0,
	TRACE_HAS_CARD = 1u << 1,
	TRACE_HAS_SHARE_MODE = 1u << 2,
	TRACE_HAS_PREFERRED_PROTOCOLS = 1u << 3,
	TRACE_HAS_ACTIVE_PROTOCOL = 1u << 4,
	TRACE_HAS_DISPOSITION = 1u << 5,	/* disposition or initialization */
	TRACE_HAS_SCOPE = 1u << 6,
	TRACE_HAS_TIMEOUT = 1u << 7,
	TRACE_HAS_CODE = 1u << 8,		/* control code or attribute id */
	TRACE_HAS_STATE = 1u << 9,		/* SCardStatus dwState */
	TRACE_HAS_SEND_PCI = 1u << 10,		/* SCardTransmit send PCI protocol */
	TRACE_HAS_RECV_PCI = 1u << 11,		/* SCardTransmit recv PCI protocol */
};

/*
 * One SCard* call as the application made it.  Pointers need only stay
 * valid during trace_write_call(): the writer copies what it keeps.
 *
 * How the functions map onto the fields:
 *   EstablishContext  scope; out context
 *   Release/IsValidContext, Cancel  context
 *   ListReaderGroups  context; out: groups multi-string
 *   ListReaders       context; in: groups multi-string; out: readers multi-string
 *   FreeMemory        context; code = pointer value
 *   Connect           context, reader, share_mode, preferred_protocols; out card, active_protocol
 *   Reconnect         card, share_mode, preferred_protocols, disposition (initialization); out active_protocol
 *   Disconnect, EndTransaction   card, disposition
 *   BeginTransaction  card
 *   Status            card; out reader (first name), state, active_protocol, out: ATR
 *   GetStatusChange   context, timeout, states
 *   Control           card, code; in: input buffer; out: output buffer
 *   Transmit          card, send_pci, recv_pci; in: command APDU; out: response APDU
 *   GetAttrib         card, code (attribute id); out: value
 *   SetAttrib         card, code (attribute id); in: value
 * Anything else worth keeping (buffer sizes asked for, NULL arguments,
 * SCARD_AUTOALLOCATE) goes into `extra` as short "key=value" words.
 */
struct trace_call {
	int fn;			/* enum trace_fn */
	int64_t tid;		/* kernel thread id */
	int64_t t_enter_ns;	/* CLOCK_MONOTONIC when the real call started */
	int64_t t_return_ns;	/* CLOCK_MONOTONIC when it returned */
	int64_t wall_ns;	/* CLOCK_REALTIME at entry, ns since the epoch */
	int64_t rv;		/* the return code the application got */
	uint32_t present;	/* enum trace_call_field bits */
	uint64_t context;
	uint64_t card;
	const char *reader;	/* NULL when the call has none */
	int64_t share_mode;
	int64_t preferred_protocols;
	int64_t active_protocol;
	int64_t disposition;
	int64_t scope;
	int64_t timeout;
	int64_t code;
	int64_t state;
	int64_t send_pci;
	int64_t recv_pci;
	struct trace_blob in;
	struct trace_blob out;
	int redacted;		/* in/out hold redacted PIN data */
	const struct trace_reader_state *states;
	size_t n_states;
	const char *extra;	/* NULL or "key=value key=value" */
	int64_t shim_ns;	/* the shim's own time in the call besides the real
				 * call, which t_enter_ns..t_return_ns time alone
				 * (feature discovery, markers, recording) */
};

/* A session marker as the shim sent it (leg 1) or the driver forwarded it. */
struct trace_marker {
	int64_t tid;
	int64_t t_ns;		/* CLOCK_MONOTONIC */
	int64_t wall_ns;
	uint64_t card;
	const char *reader;
	int event;		/* enum marker_event (proxy/wire/wire.h) */
	uint32_t seq;
	struct trace_blob body;	/* the encoded marker body */
	int64_t rv;		/* result of the SCardControl that carried it */
};

/* What the driver saw on the wire to the virtual card. */
enum trace_wire_kind {
	TRACE_WIRE_POWER_OFF = 0,
	TRACE_WIRE_POWER_ON = 1,
	TRACE_WIRE_RESET = 2,
	TRACE_WIRE_GET_ATR = 4,
	TRACE_WIRE_MARKER = 5,
	TRACE_WIRE_APDU = 0x100,
	TRACE_WIRE_CARD_CONNECTED = 0x200,
	TRACE_WIRE_CARD_GONE = 0x201,
	TRACE_WIRE_ERROR = 0x202,
};

struct trace_wire {
	int64_t t_ns;		/* CLOCK_MONOTONIC when the exchange started */
	int64_t t_end_ns;	/* CLOCK_MONOTONIC when it ended */
	int64_t wall_ns;
	const char *reader;	/* the reader (slot) name as pcscd shows it */
	int kind;		/* enum trace_wire_kind */
	struct trace_blob sent;		/* bytes sent to the card (APDU, marker body) */
	struct trace_blob received;	/* bytes from the card (response, ATR) */
	const char *detail;	/* NULL or a short human text (errors) */
};

/**
 * PIN redaction, the same for every writer of APDUs (shim and driver).
 * It fails closed: when a PIN command cannot be copied, the caller must
 * record no data at all rather than the original bytes.
 *
 * @param[in] apdu a command APDU
 * @param[in] len its length
 * @param[out] out a heap copy (free() it) whose data bytes are 0xFF,
 *             header, Lc and Le kept; NULL unless 1 is returned
 * @retval 0 @p apdu is not a VERIFY / CHANGE REFERENCE DATA / RESET
 *         RETRY COUNTER command with data (INS 20, 24, 2C): record it as is
 * @retval 1 redacted: record *@p out
 * @retval -ENOMEM a PIN command, but no memory for the copy: record no data
 */
int trace_redact_apdu(const uint8_t *apdu, size_t len, uint8_t **out);

/* ---------------------------------------------------------------------- */
/* Writer                                                                 */
/* ---------------------------------------------------------------------- */

struct trace_writer;

struct trace_writer_options {
	const char *role;		/* "shim", "driver", "bench", ... stored per process */
	size_t queue_max_events;	/* events not yet in the trace, at most; 0: default (65536) */
	size_t queue_max_bytes;		/* the journal's ring; 0: default (8 MiB) */
	int commit_interval_ms;		/* 0: default (100) */
	int busy_timeout_ms;		/* 0: default (5000) */
};

/**
 * Create or open the trace at @p path for writing and start the writer
 * thread.  The file (and its -wal/-shm, and the journal) is created 0600
 * and never through a symbolic link; an existing one must be the caller's
 * own private file (TRACE_E_NOT_PRIVATE).  A trace locked by another
 * process is waited for by the thread, not here.  A second open of the
 * same file in one process shares the first one's writer.  Journals of
 * ended processes are imported.  Failure to open leaves no thread behind.
 * A process with a writer open must not open the same file through
 * SQLite otherwise (trace_reader_open refuses with -EBUSY).
 *
 * @param[out] out the writer
 * @param[in] path trace file
 * @param[in] opt NULL for defaults
 * @retval 0 success
 * @retval <0 negative errno or TRACE_E_*; one warning has been printed
 */
int trace_writer_open(struct trace_writer **out, const char *path,
		      const struct trace_writer_options *opt);

/*
 * Record one event: a copy into the process's journal under a short
 * mutex, no system call.  Callable from any thread; never waits for disk,
 * never fails visibly: when the journal is full the event is dropped and
 * counted (a drops row reaches the trace).  After fork() the child's first
 * call makes a journal and thread of its own (waiting for the journal's
 * creation only).  @p w may be NULL (no-op).  errno is preserved.  A
 * fork() while a writer is open waits for the writer thread's current
 * transaction slice (<= ~50 ms): the thread closes its connection before
 * the fork and reopens it afterwards (see writer.c).
 */
void trace_write_call(struct trace_writer *w, const struct trace_call *call);
void trace_write_marker(struct trace_writer *w, const struct trace_marker *marker);
void trace_write_wire(struct trace_writer *w, const struct trace_wire *wire);

/**
 * Wait until everything enqueued so far is committed.
 * @retval 0 committed (events dropped earlier are committed as a drops row)
 * @retval -ETIMEDOUT not within @p timeout_ms
 * @retval -EIO some events could not be written during the wait (disk full,
 *         I/O error, no connection); they are counted as drops
 */
int trace_writer_flush(struct trace_writer *w, int timeout_ms);

/* Flush (bounded), stop the thread, close the database, free. */
void trace_writer_close(struct trace_writer *w);

/**
 * Import the journals that ended processes left beside the trace at
 * @p path (docs/trace-schema.md, "Durability"), exactly once whoever else
 * does the same at the time; then the trace is one file again if nobody
 * else has it open.  trace_writer_open() and trace_reader_open() do this
 * themselves.  Without write access one warning says how much is not
 * imported.
 * @retval >=0 the number of events imported
 * @retval <0 negative errno or TRACE_E_*; one warning has been printed
 */
int trace_recover(const char *path);

/**
 * Whether a writer would append to the existing file at @p path, checked
 * the way trace_writer_open() checks it, without creating, importing or
 * waiting for anything: a regular file that is the caller's own private
 * file (its -wal, -shm and -journal too), and an SQLite database that is
 * a pcsctap trace of a schema this pcsctap writes, or one that another
 * process is creating or holds locked right now.  For a launcher that
 * wants to refuse a path before it starts the traced program.
 * @param[out] err one human line on failure (may be NULL)
 * @retval 0 appendable (or missing: a writer would create it)
 * @retval <0 negative errno, TRACE_E_SYMLINK, TRACE_E_NOT_PRIVATE,
 *         TRACE_E_NOT_SQLITE, TRACE_E_FOREIGN, TRACE_E_NEWER_SCHEMA
 */
int trace_check_appendable(const char *path, char *err, size_t errlen);

/* Counters, for tests and benchmarks. */
struct trace_writer_stats {
	uint64_t enqueued;
	uint64_t written;
	uint64_t dropped;
	uint64_t commits;
	size_t queue_peak_events;
	size_t queue_peak_bytes;
};
void trace_writer_get_stats(struct trace_writer *w, struct trace_writer_stats *stats);

/* ---------------------------------------------------------------------- */
/* Reader                                                                 */
/* ---------------------------------------------------------------------- */

struct trace_reader;

/**
 * Open a trace read-only.
 * @param[out] err a one-line human message on failure (may be NULL)
 * @retval 0 success
 * @retval -ENOENT, -EACCES, TRACE_E_NOT_SQLITE, TRACE_E_FOREIGN,
 *         TRACE_E_NEWER_SCHEMA, TRACE_E_CORRUPT, TRACE_E_SQLITE
 */
int trace_reader_open(struct trace_reader **out, const char *path,
		      char *err, size_t errlen);
void trace_reader_close(struct trace_reader *r);
/* The schema version the file carries (PRAGMA user_version). */
int trace_reader_schema_version(struct trace_reader *r);

/* Filters; zero/NULL fields do not filter. */
struct trace_filter {
	int64_t pid;
	const char *reader;	/* exact reader name */
	int64_t session;	/* session id (see trace_session) */
	int fn;			/* enum trace_fn */
	int64_t since_ns;	/* CLOCK_MONOTONIC, inclusive */
	int64_t until_ns;	/* CLOCK_MONOTONIC, inclusive */
	int64_t after_id;	/* only rows with id > after_id (for --follow) */
};

/* A call as read back: struct trace_call plus its identity. */
struct trace_call_row {
	int64_t id;
	int64_t pid;
	struct trace_call call;	/* pointers valid until the next _next() or _end() */
};

struct trace_process {
	int64_t pid;
	int64_t ppid;
	const char *exe;
	const char *argv;	/* arguments joined with spaces */
	const char *role;
	const char *host;
	int64_t start_wall_ns;
};

struct trace_session {
	int64_t id;		/* the id of the SCardConnect call */
	int64_t pid;
	uint64_t card;
	const char *reader;
	const char *process;	/* executable base name */
	int64_t share_mode;
	int64_t preferred_protocols;
	int64_t active_protocol;
	int64_t start_ns;	/* CLOCK_MONOTONIC */
	int64_t end_ns;		/* 0 when the session never ended in the trace */
	int64_t start_wall_ns;
	int64_t disposition;	/* -1 when not ended */
	int64_t n_apdus;
	int64_t n_transactions;
	int64_t n_markers;	/* markers sent with rv 0 */
};

struct trace_transaction {
	int64_t id;		/* the id of the SCardBeginTransaction call */
	int64_t session;
	int64_t pid;
	uint64_t card;
	int64_t start_ns;
	int64_t end_ns;		/* 0 when not ended */
	int64_t disposition;	/* -1 when not ended */
};

struct trace_marker_row {
	int64_t id;
	int64_t pid;
	struct trace_marker marker;
};

struct trace_wire_row {
	int64_t id;
	int64_t pid;
	struct trace_wire wire;
};

struct trace_drop {
	int64_t pid;
	int64_t wall_ns;
	int64_t count;
};

/*
 * Streaming iterators: constant memory whatever the trace size.  Each
 * _next() returns 1 with a row, 0 at the end, <0 on error.  Rows are in
 * time order (t_enter_ns, then id).
 */
struct trace_iter;
int trace_iter_calls(struct trace_reader *r, const struct trace_filter *f, struct trace_iter **it);
int trace_iter_call_next(struct trace_iter *it, struct trace_call_row *row);
int trace_iter_sessions(struct trace_reader *r, const struct trace_filter *f, struct trace_iter **it);
int trace_iter_session_next(struct trace_iter *it, struct trace_session *row);
int trace_iter_transactions(struct trace_reader *r, const struct trace_filter *f, struct trace_iter **it);
int trace_iter_transaction_next(struct trace_iter *it, struct trace_transaction *row);
int trace_iter_markers(struct trace_reader *r, const struct trace_filter *f, struct trace_iter **it);
int trace_iter_marker_next(struct trace_iter *it, struct trace_marker_row *row);
int trace_iter_wire(struct trace_reader *r, const struct trace_filter *f, struct trace_iter **it);
int trace_iter_wire_next(struct trace_iter *it, struct trace_wire_row *row);
int trace_iter_processes(struct trace_reader *r, struct trace_iter **it);
int trace_iter_process_next(struct trace_iter *it, struct trace_process *row);
int trace_iter_drops(struct trace_reader *r, struct trace_iter **it);
int trace_iter_drop_next(struct trace_iter *it, struct trace_drop *row);
void trace_iter_end(struct trace_iter *it);

/* The last error of the reader as one human line. */
const char *trace_reader_errmsg(struct trace_reader *r);

/* One human line for a trace error code (TRACE_E_* or negative errno). */
const char *trace_strerror(int err);
