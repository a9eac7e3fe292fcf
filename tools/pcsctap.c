/* pcsctap.c — the `pcsctap` command: dispatches to the subcommands. */
#include "config.h"
#include "commands.h"

#include <stdio.h>
#include <string.h>

struct command {
	const char *name;
	int (*main)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{ "show", cmd_show, "the timeline of one or more traces, APDUs decoded" },
	{ "sessions", cmd_sessions, "one row per client session" },
	{ "stats", cmd_stats, "call counts and latencies, APDUs by INS and SW" },
	{ "export", cmd_export, "write a pcapng (or pcap) file for Wireshark" },
	{ "card", cmd_card, "a reference virtual card that prints every message it gets" },
	{ "replay", cmd_replay, "a recorded trace as a virtual card; --check COMMAND against it" },
	{ "run", cmd_run, "run a command with every PC/SC call traced" },
};

static void
usage(FILE *out)
{
	fprintf(out, "usage: pcsctap COMMAND [OPTIONS] [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\n'pcsctap COMMAND --help' describes a command.\n");
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return PCSCTAP_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return PCSCTAP_EXIT_OK;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("pcsctap %s\n", PCSCTAP_VERSION);
		return PCSCTAP_EXIT_OK;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].main(argc - 1, argv + 1);
	}
	fprintf(stderr, "pcsctap: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return PCSCTAP_EXIT_USAGE;
}
