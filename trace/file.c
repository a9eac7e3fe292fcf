/*
 * file.c — safe creation and checking of the trace file before SQLite
 * opens it.
 *
 * We create the file ourselves (O_CREAT|O_EXCL|O_NOFOLLOW, then fchmod 0600
 * so the umask cannot widen or narrow it) because SQLite would create it
 * with 0644 & ~umask.  SQLite creates -wal and -shm with the main file's
 * permission bits, so they end up 0600 as well.  An existing trace, and
 * any -wal, -shm or -journal beside it, is written only when it is the
 * caller's own private file (TRACE_E_NOT_PRIVATE otherwise).  Our
 * descriptor is closed before SQLite opens the file: closing any
 * descriptor of a file drops the process's POSIX locks on it, which would
 * break SQLite's locking.
 */
#include "trace.h"
#include "store.h"
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <stdio.h>
#include <unistd.h>

static const char sqlite_magic[16] = "SQLite format 3";

/* A writer appends only to its own private files (as OpenSSH's StrictModes). */
static int
private_file(const struct stat *st)
{
	return S_ISREG(st->st_mode) && st->st_uid == geteuid() && !(st->st_mode & 077);
}

/*
 * The side files SQLite opens without O_EXCL: if one exists it must be
 * ours and private too, and never a link.
 */
static int
check_side_files(const char *path)
{
	static const char *const suffix[] = { "-wal", "-shm", "-journal" };
	char side[4096];
	struct stat st;

	for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
		if ((size_t)snprintf(side, sizeof(side), "%s%s", path, suffix[i]) >= sizeof(side))
			return -ENAMETOOLONG;
		if (trace_sys.lstat(side, &st) < 0)
			continue;
		if (S_ISLNK(st.st_mode))
			return TRACE_E_SYMLINK;
		if (!private_file(&st))
			return TRACE_E_NOT_PRIVATE;
	}
	return 0;
}

int
trace_file_prepare(const char *path, int create, int *created)
{
	struct stat st;
	char head[16];
	ssize_t n;
	int fd = -1;
	int rc = 0;

	*created = 0;
	/* Writers refuse a symbolic link; readers may follow one. */
	if (create && trace_sys.lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
		rc = TRACE_E_SYMLINK;
		goto out;
	}
	if (create) {
		fd = trace_sys.open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
				    0600);
		if (fd >= 0) {
			*created = 1;
			if (trace_sys.fchmod(fd, 0600) < 0) {
				rc = -errno;
				goto out;
			}
			goto out;
		}
		if (errno != EEXIST) {
			rc = errno == ELOOP ? TRACE_E_SYMLINK : -errno;
			goto out;
		}
	}
	fd = trace_sys.open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | (create ? O_NOFOLLOW : 0), 0);
	if (fd < 0) {
		rc = errno == ELOOP ? TRACE_E_SYMLINK : -errno;
		goto out;
	}
	if (trace_sys.fstat(fd, &st) < 0) {
		rc = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = TRACE_E_NOT_SQLITE;
		goto out;
	}
	if (create && !private_file(&st)) {
		rc = TRACE_E_NOT_PRIVATE;
		goto out;
	}
	/* An empty file is a trace another process is just creating. */
	if (st.st_size == 0)
		goto out;
	n = trace_sys.pread(fd, head, sizeof(head), 0);
	if (n < 0) {
		rc = -errno;
		goto out;
	}
	if (n < (ssize_t)sizeof(head) || memcmp(head, sqlite_magic, sizeof(head)) != 0)
		rc = TRACE_E_NOT_SQLITE;
out:
	if (fd >= 0)
		trace_sys.close(fd);
	if (rc == 0 && create)
		rc = check_side_files(path);
	return rc;
}
