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

static const struct trace_sys trace_sys_default = {
	.open = real_open,
	.close = close,
	.fstat = fstat,
	.lstat = lstat,
	.fchmod = fchmod,
	.pread = pread,
	.sqlite3_open_v2 = sqlite3_open_v2,
	.sqlite3_exec = sqlite3_exec,
	.sqlite3_prepare_v2 = sqlite3_prepare_v2,
	.sqlite3_step = sqlite3_step,
};

struct trace_sys trace_sys = trace_sys_default;

void
trace_sys_reset(void)
{
	trace_sys = trace_sys_default;
}
