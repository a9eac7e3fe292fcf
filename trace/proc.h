/*
 * proc.h — what the trace records about the process that writes it
 * (the `processes` table): pid, parent, executable, argv, host.
 */
#pragma once

#include <stdint.h>
#include <sys/types.h>

struct trace_procinfo {
	pid_t pid;
	pid_t ppid;
	char exe[4096];
	const char *name;	/* points into exe: the base name */
	char argv[4096];	/* arguments joined with spaces, truncated */
	char host[256];
};

/* Fill @p pi from /proc/self; never fails (unknown fields stay empty). */
void trace_procinfo_get(struct trace_procinfo *pi);
