/*
 * store.h — internal pieces shared by the writer and the reader: safe
 * creation of the trace file, the schema (creation, migration, checks)
 * and SQLite error mapping.  Not part of the API in trace.h.
 */
#pragma once

#include <sqlite3.h>
#include <stddef.h>

#define TRACE_APPLICATION_ID 0x50435354	/* "PCST" */

/*
 * The rows of index calls_card (schema version 3): calls on a card, but
 * not the transmits.  SQLite uses a partial index only for a query whose
 * WHERE contains the index's own terms, so every lookup of a session's
 * or transaction's calls by (pid, card, fn) adds these, for table @p t.
 */
#define TRACE_CARD_KEYED(t) t ".card IS NOT NULL AND " t ".fn <> 12"

/*
 * Make sure @p path is a regular file we may open as a trace: create it
 * 0600 (whatever the umask) when it does not exist, refuse a symbolic link,
 * refuse a non-empty file that is not SQLite, and (writers) refuse a file
 * or side file that is not the caller's own private one.
 * @retval 0 ok, *created tells whether this call created it
 * @retval <0 negative errno, TRACE_E_SYMLINK, TRACE_E_NOT_SQLITE or
 *         TRACE_E_NOT_PRIVATE
 */
int trace_file_prepare(const char *path, int create, int *created);
/* (create == 0: check only, for readers, which may follow a symbolic link.) */

/*
 * Check (and for a writer, create or migrate) the schema of an open
 * database.  @p err receives one human line on failure.
 * @retval 0 ok, TRACE_E_FOREIGN, TRACE_E_NEWER_SCHEMA, TRACE_E_NOT_SQLITE,
 *         TRACE_E_CORRUPT, TRACE_E_SQLITE, -EBUSY
 */
int trace_schema_setup(sqlite3 *db, const char *path, char *err, size_t errlen);
int trace_schema_check(sqlite3 *db, const char *path, int *version,
		       char *err, size_t errlen);

/* Open @p path for writing: file checks, connection, pragmas, schema. */
int trace_db_open_rw(const char *path, int busy_timeout_ms, sqlite3 **out,
		     char *err, size_t errlen);

/*
 * Close a connection of trace_db_open_rw().  @p last: checkpoint and leave
 * WAL mode if no other connection is open, so that the trace is one
 * self-contained file again (-wal and -shm removed); otherwise, and
 * without @p last, close without a checkpoint.
 */
void trace_db_close(sqlite3 *db, int last);

/*
 * Whether this process has a writer open on the file at @p path.  Such a
 * process must not open the file through SQLite otherwise: the writer's
 * descriptors live in its thread's own table (writer.c) while SQLite's
 * bookkeeping of locks per file is process-wide.
 */
int trace_writer_in_process(const char *path);

/* An SQLite result code as a TRACE_E_* / negative errno value. */
int trace_err_from_sqlite(int rc);
