/*
 * inputs.c — see inputs.h.
 */
#include "inputs.h"
#include "commands.h"
#include "textout.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct tap_proc {
	int64_t pid;
	char *name;
	char *role;
};

struct tap_file {
	const char *path;
	struct trace_reader *r;
	struct tap_proc *procs;
	size_t n_procs;
};

struct tap_input {
	struct tap_file files[TAP_MAX_FILES];
	int n;
};

/* Map an open or read error onto the documented exit statuses. */
static int
exit_status(int rc)
{
	switch (rc) {
	case TRACE_E_NOT_SQLITE:
	case TRACE_E_FOREIGN:
	case TRACE_E_CORRUPT:
		return PCSCTAP_EXIT_NOT_TRACE;
	case TRACE_E_NEWER_SCHEMA:
		return PCSCTAP_EXIT_NEWER_SCHEMA;
	case -ENOMEM:
		return PCSCTAP_EXIT_RUNTIME;
	default:
		return PCSCTAP_EXIT_INPUT;
	}
}

/*
 * What a path that is not a regular file is, said before SQLite sees it
 * (which would call a directory "not an SQLite database", and could wait
 * for ever on a FIFO).  @retval NULL for a regular file or a missing one
 */
static const char *
not_a_file(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0 || S_ISREG(st.st_mode))
		return NULL;
	if (S_ISDIR(st.st_mode))
		return "is a directory, not a trace";
	if (S_ISFIFO(st.st_mode))
		return "is a FIFO, not a trace (a trace is a regular file)";
	return "is not a regular file, not a trace";
}

static const char *
base_name(const char *path)
{
	const char *slash = path ? strrchr(path, '/') : NULL;

	return slash ? slash + 1 : path;
}

static int
load_processes(struct tap_file *f)
{
	struct trace_iter *it = NULL;
	struct trace_process p;
	size_t cap = 0;
	int rc;

	rc = trace_iter_processes(f->r, &it);
	if (rc < 0)
		goto out;
	while ((rc = trace_iter_process_next(it, &p)) > 0) {
		struct tap_proc *slot;

		if (f->n_procs == cap) {
			size_t ncap = cap ? 2 * cap : 16;
			struct tap_proc *np = realloc(f->procs, ncap * sizeof(*np));

			if (!np) {
				rc = -ENOMEM;
				goto out;
			}
			f->procs = np;
			cap = ncap;
		}
		slot = &f->procs[f->n_procs];
		slot->pid = p.pid;
		slot->name = strdup(p.exe && *p.exe ? base_name(p.exe) : "?");
		slot->role = p.role ? strdup(p.role) : NULL;
		if (!slot->name) {
			free(slot->role);
			rc = -ENOMEM;
			goto out;
		}
		f->n_procs++;
	}
out:
	if (it)
		trace_iter_end(it);
	return rc;
}

int
tap_input_open(struct tap_input **out, const char *cmd, char **paths, int n)
{
	struct tap_input *in;
	char *env_path[1];
	char err[256];
	int status = PCSCTAP_EXIT_OK;

	*out = NULL;
	if (n == 0) {
		env_path[0] = getenv("PCSCTAP_TRACE");
		if (!env_path[0] || !*env_path[0]) {
			fprintf(stderr, "pcsctap %s: no trace given (name one, or set PCSCTAP_TRACE)\n", cmd);
			return PCSCTAP_EXIT_USAGE;
		}
		paths = env_path;
		n = 1;
	}
	if (n > TAP_MAX_FILES) {
		fprintf(stderr, "pcsctap %s: at most %d traces at once\n", cmd, TAP_MAX_FILES);
		return PCSCTAP_EXIT_USAGE;
	}
	in = calloc(1, sizeof(*in));
	if (!in) {
		fprintf(stderr, "pcsctap %s: out of memory\n", cmd);
		return PCSCTAP_EXIT_RUNTIME;
	}
	for (int i = 0; i < n; i++) {
		struct tap_file *f = &in->files[i];
		int rc;

		const char *odd = not_a_file(paths[i]);

		f->path = paths[i];
		if (odd) {
			fprintf(stderr, "pcsctap %s: %s: %s\n", cmd, paths[i], odd);
			status = PCSCTAP_EXIT_INPUT;
			goto out;
		}
		err[0] = '\0';
		rc = trace_reader_open(&f->r, paths[i], err, sizeof(err));
		if (rc < 0) {
			f->r = NULL;
			fprintf(stderr, "pcsctap %s: %s: %s\n", cmd, paths[i],
				err[0] ? message_without_path(err, paths[i]) : trace_strerror(rc));
			status = exit_status(rc);
			goto out;
		}
		in->n = i + 1;
		rc = load_processes(f);
		if (rc < 0) {
			status = tap_input_fail(in, cmd, i, rc);
			goto out;
		}
	}
out:
	if (status != PCSCTAP_EXIT_OK) {
		in->n = n;
		tap_input_close(in);
		return status;
	}
	*out = in;
	return PCSCTAP_EXIT_OK;
}

void
tap_input_close(struct tap_input *in)
{
	if (!in)
		return;
	for (int i = 0; i < in->n; i++) {
		struct tap_file *f = &in->files[i];

		for (size_t j = 0; j < f->n_procs; j++) {
			free(f->procs[j].name);
			free(f->procs[j].role);
		}
		free(f->procs);
		if (f->r)
			trace_reader_close(f->r);
	}
	free(in);
}

int
tap_input_count(const struct tap_input *in)
{
	return in->n;
}

struct trace_reader *
tap_input_reader(const struct tap_input *in, int file)
{
	return in->files[file].r;
}

const char *
tap_input_path(const struct tap_input *in, int file)
{
	return in->files[file].path;
}

static const struct tap_proc *
find_proc(const struct tap_input *in, int file, int64_t pid)
{
	const struct tap_file *f = &in->files[file];

	/* Few processes per trace: a scan from the end finds reused pids' latest. */
	for (size_t i = f->n_procs; i-- > 0;) {
		if (f->procs[i].pid == pid)
			return &f->procs[i];
	}
	return NULL;
}

const char *
tap_process_name(const struct tap_input *in, int file, int64_t pid)
{
	const struct tap_proc *p = find_proc(in, file, pid);

	return p ? p->name : "?";
}

const char *
tap_process_role(const struct tap_input *in, int file, int64_t pid)
{
	const struct tap_proc *p = find_proc(in, file, pid);

	return p ? p->role : NULL;
}

int
tap_input_fail(struct tap_input *in, const char *cmd, int file, int rc)
{
	const char *msg = NULL, *path;

	if (file >= 0 && file < in->n && in->files[file].r)
		msg = trace_reader_errmsg(in->files[file].r);
	if (!msg || !*msg)
		msg = trace_strerror(rc);
	path = file >= 0 && file < in->n ? in->files[file].path : "?";
	fprintf(stderr, "pcsctap %s: %s: %s\n", cmd, path, message_without_path(msg, path));
	return exit_status(rc);
}
