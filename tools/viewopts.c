/*
 * viewopts.c — see viewopts.h.
 */
#include "viewopts.h"
#include "commands.h"
#include "textout.h"

#include <getopt.h>
#include <string.h>

int
view_options_parse(const char *cmd, int argc, char **argv, unsigned which,
		   void (*usage)(FILE *f), struct view_options *o)
{
	static const struct {
		struct option opt;
		unsigned which;
	} table[] = {
		{ { "pid", required_argument, NULL, 'p' }, VIEW_PID },
		{ { "reader", required_argument, NULL, 'r' }, VIEW_READER },
		{ { "json", no_argument, NULL, 'j' }, VIEW_JSON },
		{ { "help", no_argument, NULL, 'h' }, 0 },
	};
	struct option opts[sizeof(table) / sizeof(table[0]) + 1];
	size_t n = 0;
	int opt;

	memset(o, 0, sizeof(*o));
	memset(opts, 0, sizeof(opts));
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		if (!table[i].which || (which & table[i].which))
			opts[n++] = table[i].opt;
	}
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			if (parse_pid(cmd, optarg, &o->pid) < 0)
				return PCSCTAP_EXIT_USAGE;
			break;
		case 'r':
			o->reader = optarg;
			break;
		case 'j':
			o->json = true;
			break;
		case 'h':
			usage(stdout);
			return PCSCTAP_EXIT_OK;
		default:
			return bad_option(cmd, argv);
		}
	}
	o->traces = argv + optind;
	o->n_traces = argc - optind;
	return -1;
}
