/*
 * viewopts.h — the options that the summary commands (sessions, stats)
 * share: --pid, --reader, --json and --help, parsed in one place.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum view_option {
	VIEW_PID = 1u << 0,
	VIEW_READER = 1u << 1,
	VIEW_JSON = 1u << 2,
};

struct view_options {
	int64_t pid;		/* 0: all */
	const char *reader;	/* NULL: all */
	bool json;
	char **traces;		/* the arguments after the options */
	int n_traces;
};

/**
 * Parse @p argv for command @p cmd, accepting the options in @p which
 * (and --help, which prints @p usage on stdout).
 * @retval -1 parsed: go on
 * @retval >=0 the exit status to return now (help, or one usage line)
 */
int view_options_parse(const char *cmd, int argc, char **argv, unsigned which,
		       void (*usage)(FILE *f), struct view_options *o);
