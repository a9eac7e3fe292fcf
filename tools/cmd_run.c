/*
 * cmd_run.c — `pcsctap run [-o TRACE] [--no-redact] [--no-markers] -- COMMAND [ARG...]`
 *
 * Runs COMMAND with libpcsctap.so on all three ways in (docs/shim.md):
 *   LD_PRELOAD          += the shim            (programs linked to libpcsclite)
 *   LD_LIBRARY_PATH      = a private directory holding libpcsclite.so.1 -> the
 *                          shim, before what was there (dlopen users)
 *   LD_AUDIT            += libpcsctap-audit.so, which hands the shim to a
 *                          dlopen() of libpcsclite by absolute path (upstream
 *                          JDKs; see dlopen_audit.c)
 * and tells the shim (PCSCTAP_*) where to trace.  Existing values are kept.
 * JAVA_TOOL_OPTIONS is not touched: every JVM would print "Picked up ...".
 * The exit status is the command's, or 128+N when signal N killed it.
 */
#include "config.h"
#include "commands.h"
#include "dlopen_audit.h"
#include "textout.h"
#include "trace.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define DEFAULT_TRACE "pcsctap.trace"

struct run_options {
	const char *trace;
	bool redact;
	bool markers;
};

static void
usage(FILE *out)
{
	fprintf(out,
		"usage: pcsctap run [-o TRACE] [--no-redact] [--no-markers] -- COMMAND [ARG...]\n"
		"\n"
		"Run COMMAND with every PC/SC call traced into TRACE (default %s,\n"
		"appended to when it exists).\n"
		"\n"
		"  -o, --output TRACE  the trace file\n"
		"      --no-redact     keep the PIN data of VERIFY, CHANGE REFERENCE DATA and\n"
		"                      RESET RETRY COUNTER (redacted by default)\n"
		"      --no-markers    send no session markers to marker-capable readers\n"
		"\n"
		"Environment: PCSCTAP_SHIM overrides the path of libpcsctap.so.\n",
		DEFAULT_TRACE);
}

/* Directory of the running pcsctap into @p out; -errno on failure. */
static int
self_dir(char *out, size_t len)
{
	char *slash;
	ssize_t n;

	n = readlink("/proc/self/exe", out, len - 1);
	if (n < 0)
		return -errno;
	out[n] = '\0';
	slash = strrchr(out, '/');
	if (!slash)
		return -ENOENT;
	*slash = '\0';
	return 0;
}

/* @p dir/@p rel made canonical into @p out when it is readable. */
static bool
shim_at(char *out, const char *dir, const char *rel)
{
	char path[PATH_MAX];

	if ((size_t)snprintf(path, sizeof(path), "%s/%s/libpcsctap.so", dir, rel) >= sizeof(path))
		return false;
	return access(path, R_OK) == 0 && realpath(path, out);
}

/*
 * The shim: PCSCTAP_SHIM; in a debug build run from its build tree, the
 * tree's own shim; the install directory seen from where this pcsctap is
 * (an install moved by DESTDIR or a relocated prefix); the install
 * directory as configured.  An installed pcsctap never looks at the build
 * tree: it is not in it.
 */
static int
find_shim(char *out, size_t len)
{
	const char *env = getenv("PCSCTAP_SHIM");
	char self[PATH_MAX];

	if (len < PATH_MAX)	/* realpath() */
		return -ENAMETOOLONG;
	if (env && *env) {
		if (!realpath(env, out))
			return -errno;
		return 0;
	}
	if (self_dir(self, sizeof(self)) == 0) {
#ifdef PCSCTAP_BUILDDIR
		char build[PATH_MAX];

		if (realpath(PCSCTAP_BUILDDIR "/tools", build) && !strcmp(self, build))
			return shim_at(out, PCSCTAP_BUILDDIR, "shim") ? 0 : -ENOENT;
#endif
#ifdef PCSCTAP_BINDIR_TO_PKGLIBDIR
		if (shim_at(out, self, PCSCTAP_BINDIR_TO_PKGLIBDIR))
			return 0;
#endif
	}
	return shim_at(out, PCSCTAP_PKGLIBDIR, ".") ? 0 : -ENOENT;
}

/* NAME=old<sep>value (or value first), keeping what was there. */
static int
env_add(const char *name, const char *value, const char *sep, bool first)
{
	const char *old = getenv(name);
	char *joined;
	int rv;

	if (!old || !*old)
		return setenv(name, value, 1);
	if (asprintf(&joined, "%s%s%s", first ? value : old, sep, first ? old : value) < 0)
		return -1;
	rv = setenv(name, joined, 1);
	free(joined);
	return rv;
}

/* The trace path made absolute: children may change directory. */
static int
absolute_trace(const char *trace, char *out, size_t len)
{
	char cwd[PATH_MAX];

	if (trace[0] == '/') {
		snprintf(out, len, "%s", trace);
		return 0;
	}
	if (!getcwd(cwd, sizeof(cwd)))
		return -errno;
	if ((size_t)snprintf(out, len, "%s/%s", cwd, trace) >= len)
		return -ENAMETOOLONG;
	return 0;
}

/*
 * libpcsctap-audit.so: installed next to the shim (the package's libdir),
 * in the build tree next to this executable.  @retval 0, or -ENOENT
 */
static int
find_audit(const char *shim, char *out, size_t len)
{
	char self[PATH_MAX];
	const char *dirs[2] = { shim, self };
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	self[n > 0 ? n : 0] = '\0';
	for (size_t i = 0; i < 2; i++) {
		const char *slash = strrchr(dirs[i], '/');

		if (slash && (size_t)snprintf(out, len, "%.*s/libpcsctap-audit.so",
					      (int)(slash - dirs[i]), dirs[i]) < len &&
		    access(out, R_OK) == 0)
			return 0;
	}
	return -ENOENT;
}

/*
 * With the audit module, the shim must name the real library by a path the
 * module does not redirect (dlopen_audit.h): its resolved file.  Without a
 * resolvable one that is not such a name, the module is left out.
 * @retval 0, or -1 (no audit module)
 */
static int
set_real_library(void)
{
	const char *real = getenv("PCSCTAP_REAL_LIBRARY");
	char resolved[PATH_MAX], *slash;

	if (!real || !*real) {
		/* pcsc-lite's delegate mode picks its own library: leave it. */
		if (getenv("LIBPCSCLITE_DELEGATE"))
			return -1;
		real = PCSCTAP_REAL_LIBRARY;
	}
	if (!realpath(real, resolved))
		return -1;
	slash = strrchr(resolved, '/');
	if (audit_redirects(slash ? slash + 1 : resolved))
		return -1;
	return setenv("PCSCTAP_REAL_LIBRARY", resolved, 1);
}

static int
setup_env(const struct run_options *o, const char *shim, const char *libdir,
	  const char *audit, const char *trace)
{
	if (audit && set_real_library() < 0) {
		fprintf(stderr, "pcsctap run: the real libpcsclite has no path of its own: programs "
			"that dlopen libpcsclite by its path (upstream JDKs) are not traced\n");
		audit = NULL;
	}
	if (setenv("PCSCTAP_TRACE", trace, 1) ||
	    setenv("PCSCTAP_REDACT", o->redact ? "1" : "0", 1) ||
	    setenv("PCSCTAP_MARKERS", o->markers ? "1" : "0", 1) ||
	    /* After anything already preloaded (libasan must stay first). */
	    env_add("LD_PRELOAD", shim, ":", false) ||
	    /* Before the rest, or the system libpcsclite.so.1 would win. */
	    env_add("LD_LIBRARY_PATH", libdir, ":", true) ||
	    (audit && env_add("LD_AUDIT", audit, ":", false)))
		return -1;
	return 0;
}

/*
 * Refuse, before the command starts, a trace path that the shim would
 * refuse (it would only warn, and the command would run untraced): an
 * existing file that a writer would not append to (trace_check_appendable:
 * a text file, another program's database, a newer schema, one that is not
 * this user's own private file), or a directory.  The check neither waits
 * for a trace that another process has locked or is creating right now
 * nor imports anything.  What only fails when the trace is
 * written (a read-only or missing directory, a full disk) stays the
 * shim's to warn about: the command runs untraced, as it would without
 * us.  A symbolic link is left to the shim, which refuses it
 * (docs/security.md).  An empty file is a new trace.
 * @retval 0, or -1 after one line on stderr
 */
static int
check_trace(const char *trace)
{
	const char *why = NULL;
	char err[256];
	struct stat st;

	if (lstat(trace, &st) == 0) {
		if (S_ISLNK(st.st_mode) || (S_ISREG(st.st_mode) && st.st_size == 0))
			return 0;
		if (S_ISDIR(st.st_mode))
			why = "is a directory (name a trace file)";
		else if (!S_ISREG(st.st_mode))
			why = "is not a regular file";
		else if (trace_check_appendable(trace, err, sizeof(err)) < 0)
			why = err;
	} else if (errno != ENOENT && errno != ENOTDIR) {
		why = strerror(errno);
	}
	if (!why)
		return 0;
	fprintf(stderr, "pcsctap run: %s: %s (the command was not started)\n", trace,
		message_without_path(why, trace));
	return -1;
}

/* Wait for @p pid, passing on the signals a terminal or a supervisor sends. */
static pid_t child;

static void
forward(int sig)
{
	if (child > 0)
		kill(child, sig);
}

static int
wait_child(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return PCSCTAP_EXIT_RUNTIME;
	}
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

int
cmd_run(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "no-redact", no_argument, NULL, 'R' },
		{ "no-markers", no_argument, NULL, 'M' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct run_options o = { .trace = DEFAULT_TRACE, .redact = true, .markers = true };
	char shim[PATH_MAX], trace[PATH_MAX], libdir[PATH_MAX] = "", link[PATH_MAX + 32];
	char audit[PATH_MAX];
	bool have_audit = false;
	const char *tmp = getenv("TMPDIR");
	struct sigaction sa = { .sa_handler = forward }, old_int, old_term, old_hup, old_quit;
	struct stat st;
	int c, rv = PCSCTAP_EXIT_RUNTIME;

	/* '+': options end at the command's first word. */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+o:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'o': o.trace = optarg; break;
		case 'R': o.redact = false; break;
		case 'M': o.markers = false; break;
		case 'h': usage(stdout); return PCSCTAP_EXIT_OK;
		default: return bad_option("run", argv);
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return PCSCTAP_EXIT_USAGE;
	}
	if (find_shim(shim, sizeof(shim)) < 0) {
		fprintf(stderr, "pcsctap run: libpcsctap.so not found (set PCSCTAP_SHIM)\n");
		return PCSCTAP_EXIT_RUNTIME;
	}
	if (absolute_trace(o.trace, trace, sizeof(trace)) < 0) {
		fprintf(stderr, "pcsctap run: bad trace path %s\n", o.trace);
		return PCSCTAP_EXIT_USAGE;
	}
	if (check_trace(trace) < 0)
		return PCSCTAP_EXIT_USAGE;
	/* The private directory for library replacement. */
	snprintf(libdir, sizeof(libdir), "%s/pcsctap-run.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(libdir)) {
		fprintf(stderr, "pcsctap run: cannot create %s: %s\n", libdir, strerror(errno));
		return PCSCTAP_EXIT_RUNTIME;
	}
	snprintf(link, sizeof(link), "%s/libpcsclite.so.1", libdir);
	if (symlink(shim, link) < 0) {
		fprintf(stderr, "pcsctap run: cannot create %s: %s\n", link, strerror(errno));
		goto out;
	}
	if (find_audit(shim, audit, sizeof(audit)) < 0)
		fprintf(stderr, "pcsctap run: libpcsctap-audit.so not found next to %s: programs "
			"that dlopen libpcsclite by its path (upstream JDKs) are not traced\n", shim);
	else
		have_audit = true;
	if (setup_env(&o, shim, libdir, have_audit ? audit : NULL, trace) < 0) {
		fprintf(stderr, "pcsctap run: cannot set the environment: %s\n", strerror(errno));
		goto out;
	}
	fflush(NULL);
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	/* Like a shell: the terminal's signals reach the command, not just us. */
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	sigaction(SIGHUP, &sa, &old_hup);
	sigaction(SIGQUIT, &sa, &old_quit);
	child = fork();
	if (child < 0) {
		fprintf(stderr, "pcsctap run: fork: %s\n", strerror(errno));
		goto out;
	}
	if (child == 0) {
		sigaction(SIGINT, &old_int, NULL);
		sigaction(SIGTERM, &old_term, NULL);
		sigaction(SIGHUP, &old_hup, NULL);
		sigaction(SIGQUIT, &old_quit, NULL);
		execvp(argv[optind], argv + optind);
		fprintf(stderr, "pcsctap run: %s: %s\n", argv[optind], strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}
	rv = wait_child(child);
	trace_recover(trace);	/* what a child that crashed left in its journal */
	/* Say where the trace is only if there is one (the shim refuses a
	 * symbolic link or an unwritable path, with a warning of its own). */
	if (lstat(trace, &st) == 0 && S_ISREG(st.st_mode))
		fprintf(stderr, "pcsctap: trace in %s\n", trace);
	else
		fprintf(stderr, "pcsctap: no trace written to %s\n", trace);
out:
	unlink(link);
	rmdir(libdir);
	return rv;
}
