/*
 * cmd_run.c — `pcsctap run [-o TRACE] [--no-redact] [--no-markers] -- COMMAND [ARG...]`
 *
 * Runs COMMAND with libpcsctap.so on all three ways in (docs/shim.md):
 *   LD_PRELOAD          += the shim            (programs linked to libpcsclite)
 *   LD_LIBRARY_PATH      = a private directory holding libpcsclite.so.1 -> the
 *                          shim, before what was there (dlopen users)
 *   JAVA_TOOL_OPTIONS   += -Dsun.security.smartcardio.library=the shim
 * and tells the shim (PCSCTAP_*) where to trace.  Existing values are kept.
 * The exit status is the command's, or 128+N when signal N killed it.
 */
#include "config.h"
#include "commands.h"
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

/* The shim: PCSCTAP_SHIM, the build tree next to us, or the install dir. */
static int
find_shim(char *out, size_t len)
{
	const char *env = getenv("PCSCTAP_SHIM");
	char self[PATH_MAX], *slash;
	ssize_t n;

	if (env && *env) {
		if (!realpath(env, out))
			return -errno;
		return 0;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			/* <builddir>/tools/pcsctap -> <builddir>/shim/libpcsctap.so */
			if ((size_t)snprintf(out, len, "%s/../shim/libpcsctap.so", self) < len &&
			    access(out, R_OK) == 0 && realpath(out, self)) {
				snprintf(out, len, "%s", self);
				return 0;
			}
		}
	}
	snprintf(out, len, "%s/libpcsctap.so", PCSCTAP_PKGLIBDIR);
	if (access(out, R_OK) == 0)
		return 0;
	snprintf(out, len, "%s/shim/libpcsctap.so", PCSCTAP_BUILDDIR);
	if (access(out, R_OK) == 0)
		return 0;
	return -ENOENT;
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

static int
setup_env(const struct run_options *o, const char *shim, const char *libdir, const char *trace)
{
	char java[PATH_MAX + 64];

	snprintf(java, sizeof(java), "-Dsun.security.smartcardio.library=%s", shim);
	if (setenv("PCSCTAP_TRACE", trace, 1) ||
	    setenv("PCSCTAP_REDACT", o->redact ? "1" : "0", 1) ||
	    setenv("PCSCTAP_MARKERS", o->markers ? "1" : "0", 1) ||
	    /* After anything already preloaded (libasan must stay first). */
	    env_add("LD_PRELOAD", shim, ":", false) ||
	    /* Before the rest, or the system libpcsclite.so.1 would win. */
	    env_add("LD_LIBRARY_PATH", libdir, ":", true) ||
	    env_add("JAVA_TOOL_OPTIONS", java, " ", false))
		return -1;
	return 0;
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
	const char *tmp = getenv("TMPDIR");
	struct sigaction sa = { .sa_handler = forward }, old_int, old_term, old_hup, old_quit;
	struct stat st;
	int c, rv = PCSCTAP_EXIT_RUNTIME;

	/* '+': options end at the command's first word. */
	while ((c = getopt_long(argc, argv, "+o:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'o': o.trace = optarg; break;
		case 'R': o.redact = false; break;
		case 'M': o.markers = false; break;
		case 'h': usage(stdout); return PCSCTAP_EXIT_OK;
		default: usage(stderr); return PCSCTAP_EXIT_USAGE;
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
	if (setup_env(&o, shim, libdir, trace) < 0) {
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
