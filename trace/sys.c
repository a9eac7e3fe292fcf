/*
 * sys.c — the default (real) entries of the trace_sys table; see sys.h.
 */
#include "sys.h"

#include <fcntl.h>
#include <unistd.h>

static int
real_open(const char *path, int flags, mode_t mode)
{
	return open(path, flags, mode);
}

/*
 * The initializer is spelt once and used twice: initialising a variable
 * from a const object is a GCC extension that clang (the fuzzing build)
 * rejects.
 */
#define TRACE_SYS_DEFAULT { \
	.open = real_open, \
	.close = close, \
	.fstat = fstat, \
	.lstat = lstat, \
	.fchmod = fchmod, \
	.pread = pread, \
	.sqlite3_open_v2 = sqlite3_open_v2, \
	.sqlite3_exec = sqlite3_exec, \
	.sqlite3_prepare_v2 = sqlite3_prepare_v2, \
	.sqlite3_step = sqlite3_step, \
}

static const struct trace_sys trace_sys_default = TRACE_SYS_DEFAULT;

struct trace_sys trace_sys = TRACE_SYS_DEFAULT;

void
trace_sys_reset(void)
{
	trace_sys = trace_sys_default;
}
