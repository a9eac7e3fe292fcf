/*
 * log.c — the driver's log lines go to pcscd's debug log (log_msg, which
 * pcscd exports to its drivers).  Loaded anywhere else (tests, fuzzers)
 * the driver stays silent: it never prints to stdout.
 */
#include "driver.h"

#include <stdarg.h>
#include <stdio.h>

extern void log_msg(const int priority, const char *fmt, ...) __attribute__((weak));

void
driver_log(int level, const char *fmt, ...)
{
	char line[256];
	va_list ap;

	if (!log_msg)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log_msg(level, "%s", line);
}
