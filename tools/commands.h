/*
 * commands.h — the subcommands of the `pcsctap` command line.
 *
 * Each returns the process exit status (see docs/exit-codes in pcsctap.1):
 * 0 success, 1 usage error, 2 input error (missing, unreadable or foreign
 * trace), 3 output error, 4 runtime failure.  `run` returns the child's status.
 */
#pragma once

enum pcsctap_exit {
	PCSCTAP_EXIT_OK = 0,
	PCSCTAP_EXIT_USAGE = 1,
	PCSCTAP_EXIT_INPUT = 2,
	PCSCTAP_EXIT_OUTPUT = 3,
	PCSCTAP_EXIT_RUNTIME = 4,
};

int cmd_card(int argc, char **argv);
int cmd_run(int argc, char **argv);
