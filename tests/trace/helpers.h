/*
 * helpers.h — shared fixtures for the trace/ tests: temporary directories,
 * sample events, direct SQL checks and stderr capture.
 */
#pragma once

#include "trace.h"
#include "util.h"

#include <sqlite3.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * The fixture of every trace test suite (.init = th_setup, .fini =
 * th_teardown): a fresh directory th_dir and th_trace = th_dir "/t.db",
 * removed again with all it holds.
 */
extern char *th_dir;
extern char *th_trace;
void th_setup(void);
void th_teardown(void);

/* A fresh directory under /tmp, removed (recursively) by th_rmtree. */
char *th_tmpdir(void);
void th_rmtree(const char *dir);
/* dir + "/" + name, malloc'd */
char *th_path(const char *dir, const char *name);

/* A Transmit call numbered @p seq (in `code`) with small APDUs. */
void th_transmit(struct trace_call *c, uint8_t *cmd, uint8_t *rsp, int64_t seq);
/* Write the Transmit calls numbered @p first to @p first + @p n - 1. */
void th_write_transmits(struct trace_writer *w, int64_t first, int n);

/*
 * SQL on @p path, run by the sqlite3 program in a process of its own (a
 * process that writes a trace must not open it through SQLite itself).
 * One integer from a query, or -1.
 */
int64_t th_sql_int(const char *path, const char *sql);
/* The first column of the first row as text (static buffer), or NULL. */
const char *th_sql_text(const char *path, const char *sql);
/* Run statements that change the database: 0 or -1. */
int th_sql_exec(const char *path, const char *sql);
/* Hold a transaction (@p begin: "BEGIN IMMEDIATE", "BEGIN EXCLUSIVE") on
 * @p path from another process until th_lock_end(): 0 once it holds it. */
int th_lock_begin(const char *path, const char *begin);
void th_lock_end(void);

/* Redirect stderr into a file until th_stderr_end(), which returns what was
 * written (malloc'd). */
void th_stderr_begin(void);
char *th_stderr_end(void);
/* Lines of @p s that start with "pcsctap: ". */
int th_count_warnings(const char *s);

