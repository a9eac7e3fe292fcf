/*
 * outfile.c — see outfile.h.
 */
#include "outfile.h"
#include "commands.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The files SQLite keeps next to a trace: writing over one loses data too. */
static const char *const companions[] = { "", "-wal", "-shm", "-journal" };

static bool
same_file(const struct stat *a, const char *path)
{
	struct stat b;

	return stat(path, &b) == 0 && a->st_dev == b.st_dev && a->st_ino == b.st_ino;
}

static bool
is_an_input(const struct stat *out, const struct tap_input *in)
{
	for (int i = 0; i < tap_input_count(in); i++) {
		for (size_t c = 0; c < sizeof(companions) / sizeof(companions[0]); c++) {
			char *name;
			bool same;

			if (asprintf(&name, "%s%s", tap_input_path(in, i), companions[c]) < 0)
				return true;	/* cannot tell: refuse */
			same = same_file(out, name);
			free(name);
			if (same)
				return true;
		}
	}
	return false;
}

/* A fresh name next to @p path; O_EXCL never follows or reuses anything. */
static int
open_temporary(struct outfile *o)
{
	for (int attempt = 0; attempt < 100; attempt++) {
		int fd;

		free(o->tmp);
		if (asprintf(&o->tmp, "%s.tmp-%ld-%d", o->path, (long)getpid(), attempt) < 0) {
			o->tmp = NULL;
			return -ENOMEM;
		}
		fd = open(o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0 && errno == EEXIST)
			continue;
		if (fd < 0)
			break;
		/* The umask cannot widen it, nor narrow it below what we need. */
		if (fchmod(fd, 0600) < 0 || !(o->f = fdopen(fd, "wb"))) {
			int err = errno;

			close(fd);
			unlink(o->tmp);
			errno = err;
			break;
		}
		return 0;
	}
	free(o->tmp);
	o->tmp = NULL;
	return -errno;
}

int
outfile_open(struct outfile *o, const char *cmd, const char *path,
	     const struct tap_input *in)
{
	const char *why = NULL;
	struct stat st;
	int status = PCSCTAP_EXIT_OUTPUT;
	int rc;

	memset(o, 0, sizeof(*o));
	o->path = path;
	if (!strcmp(path, "-")) {
		o->f = stdout;
		return PCSCTAP_EXIT_OK;
	}
	if (lstat(path, &st) == 0) {
		if (S_ISLNK(st.st_mode)) {
			why = "is a symbolic link: refused, captures are never written through one "
			      "(name its target, or remove it)";
		} else if (S_ISDIR(st.st_mode)) {
			why = "is a directory (name a file)";
			status = PCSCTAP_EXIT_USAGE;
		} else if (is_an_input(&st, in)) {
			why = "is one of the inputs: refused (it would be destroyed)";
			status = PCSCTAP_EXIT_USAGE;
		} else if (!S_ISREG(st.st_mode)) {
			/* A FIFO or a device such as /dev/null: written in place. */
			int fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);

			if (fd >= 0 && !(o->f = fdopen(fd, "wb")))
				close(fd);
			if (o->f)
				return PCSCTAP_EXIT_OK;
			why = strerror(errno);
		}
	} else if (errno != ENOENT) {
		why = strerror(errno);
	} else if (path[strlen(path) - 1] == '/') {
		why = "names a directory (name a file)";
		status = PCSCTAP_EXIT_USAGE;
	}
	if (!why) {
		rc = open_temporary(o);
		if (rc == 0)
			return PCSCTAP_EXIT_OK;
		why = strerror(-rc);
	}
	fprintf(stderr, "pcsctap %s: %s: %s\n", cmd, path, why);
	return status;
}

int
outfile_close(struct outfile *o, int ok)
{
	int rc = 0;

	if (o->f == stdout && (fflush(stdout) != 0 || ferror(stdout)))
		rc = -EIO;
	else if (o->f && o->f != stdout && fclose(o->f) != 0)
		rc = -errno;
	o->f = NULL;
	if (o->tmp) {
		if (ok && rc == 0 && rename(o->tmp, o->path) < 0)
			rc = -errno;
		if (!ok || rc < 0)
			unlink(o->tmp);
		free(o->tmp);
		o->tmp = NULL;
	}
	return rc;
}
