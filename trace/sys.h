/*
 * sys.h — the system and SQLite calls trace/ makes, as a table of function
 * pointers (after SQLite's own aSyscall[]).
 *
 * Every sqlite3_* call that can fail because of the environment (open,
 * exec, prepare, step) and every file call goes through trace_sys, so that
 * unit tests can make them fail on purpose (SQLITE_BUSY, SQLITE_FULL,
 * ENOSPC, EACCES) and check that the writer survives and the reader reports.
 * Tests change an entry and call trace_sys_reset() afterwards.  The table is
 * internal: it is not exported from the shim or the driver.
 */
#pragma once

#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/types.h>

struct trace_sys {
	int (*open)(const char *path, int flags, mode_t mode);
	int (*close)(int fd);
	int (*fstat)(int fd, struct stat *st);
	int (*lstat)(const char *path, struct stat *st);
	int (*fchmod)(int fd, mode_t mode);
	ssize_t (*pread)(int fd, void *buf, size_t len, off_t off);

	int (*sqlite3_open_v2)(const char *path, sqlite3 **db, int flags, const char *vfs);
	int (*sqlite3_exec)(sqlite3 *db, const char *sql,
			    int (*cb)(void *, int, char **, char **), void *arg, char **errmsg);
	int (*sqlite3_prepare_v2)(sqlite3 *db, const char *sql, int len,
				  sqlite3_stmt **stmt, const char **tail);
	int (*sqlite3_step)(sqlite3_stmt *stmt);
};

extern struct trace_sys trace_sys;

/* Put every entry back to the real function. */
void trace_sys_reset(void);
