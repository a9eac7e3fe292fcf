/*
 * error.c — error codes and messages: trace_strerror() and the mapping of
 * SQLite result codes onto trace errors.
 */
#include "trace.h"
#include "store.h"

#include <errno.h>
#include <string.h>

const char *
trace_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
	case TRACE_E_NOT_SQLITE:
		return "not an SQLite database";
	case TRACE_E_FOREIGN:
		return "an SQLite database, but not a pcsctap trace";
	case TRACE_E_NEWER_SCHEMA:
		return "the trace was written by a newer pcsctap (schema version too new)";
	case TRACE_E_CORRUPT:
		return "the trace database is damaged";
	case TRACE_E_SQLITE:
		return "SQLite error";
	case TRACE_E_SYMLINK:
		return "the trace path is a symbolic link (refused)";
	case TRACE_E_NOT_PRIVATE:
		return "the trace (or its -wal/-shm) is another user's or open to others (refused;"
		       " a trace is appended to only when it is the caller's own, mode 0600)";
	default:
		break;
	}
	if (err < 0 && err > -4096)
		return strerror(-err);
	return "unknown error";
}

int
trace_err_from_sqlite(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
		return 0;
	case SQLITE_NOTADB:
		return TRACE_E_NOT_SQLITE;
	case SQLITE_CORRUPT:
		return TRACE_E_CORRUPT;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_CANTOPEN:
		return -ENOENT;
	case SQLITE_IOERR:
		return -EIO;
	default:
		return TRACE_E_SQLITE;
	}
}
