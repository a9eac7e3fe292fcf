/*
 * rss.h — the resident memory of this process, for the memory checks of
 * the trace tests and the writer benchmark.
 */
#pragma once

/** @retval VmRSS of /proc/self/status in KiB, or -1 when it cannot be read */
long rss_kib(void);
