/*
 * commands.h — the subcommands of the `pcsctap` command line.
 *
 * Each returns the process exit status (see EXIT STATUS in pcsctap.1):
 * 0 success, 1 usage error, 2 input error (missing or unreadable trace),
 * 3 output error, 4 runtime failure, 5 not a pcsctap trace (not SQLite,
 * another application's database, or damaged), 6 trace written by a newer
 * pcsctap, 7 empty trace.  `run` returns the child's status.
 */
#pragma once

enum pcsctap_exit {
	PCSCTAP_EXIT_OK = 0,
	PCSCTAP_EXIT_USAGE = 1,
	PCSCTAP_EXIT_INPUT = 2,
	PCSCTAP_EXIT_OUTPUT = 3,
	PCSCTAP_EXIT_RUNTIME = 4,
	PCSCTAP_EXIT_NOT_TRACE = 5,
	PCSCTAP_EXIT_NEWER_SCHEMA = 6,
	PCSCTAP_EXIT_EMPTY = 7,
};

int cmd_card(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_replay(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_sessions(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_export(int argc, char **argv);
