/*
 * util.c — warnings on stderr and clocks, for trace/ and its producers
 * (see util.h).
 */
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WARN_PREFIX "pcsctap: "
#define WARN_MAX 512	/* the message, its newline and a NUL */

static __thread trace_warn_sink warn_sink;
static __thread void *warn_sink_arg;

void
trace_warn_set_sink(trace_warn_sink sink, void *arg)
{
	warn_sink = sink;
	warn_sink_arg = arg;
}

void
trace_warnf(const char *fmt, ...)
{
	int saved = errno;
	char buf[sizeof(WARN_PREFIX) - 1 + WARN_MAX];
	char *msg = buf + sizeof(WARN_PREFIX) - 1;
	ssize_t w;
	va_list ap;
	int n;

	memcpy(buf, WARN_PREFIX, sizeof(WARN_PREFIX) - 1);
	va_start(ap, fmt);
	n = vsnprintf(msg, WARN_MAX - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		goto out;
	if (n > WARN_MAX - 2)
		n = WARN_MAX - 2;
	msg[n++] = '\n';
	if (warn_sink) {
		warn_sink(warn_sink_arg, buf, (size_t)(msg + n - buf));
		goto out;
	}
	/* One write(2): not interleaved, and no stdio state of the host touched. */
	w = write(STDERR_FILENO, buf, (size_t)(msg + n - buf));
	(void)w;
out:
	errno = saved;
}

int64_t
trace_wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t
trace_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
