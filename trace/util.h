/*
 * util.h — the small helpers every producer of trace events shares: the
 * trace store itself, the shim inside traced applications and the driver
 * inside pcscd.
 *
 * They may run inside any host process, so they never touch its stdio and
 * never change errno.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/*
 * "pcsctap: " + message + newline on stderr, in one write(2) (not through
 * stdio, which belongs to the application); errno is preserved.  Messages
 * longer than 510 bytes are cut.
 */
void trace_warnf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Where trace_warnf() sends the calling thread's warnings instead of fd 2
 * (NULL: fd 2).  The writer thread has a descriptor table of its own
 * without the application's fd 2: it hands its warnings to the
 * application's threads this way (writer.c).  @p line is the whole
 * message with its prefix and newline.
 */
typedef void (*trace_warn_sink)(void *arg, const char *line, size_t len);
void trace_warn_set_sink(trace_warn_sink sink, void *arg);

/* CLOCK_REALTIME / CLOCK_MONOTONIC in nanoseconds. */
int64_t trace_wall_ns(void);
int64_t trace_mono_ns(void);
