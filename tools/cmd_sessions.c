/*
 * cmd_sessions.c — `pcsctap sessions`: one row per client session
 * (SCardConnect → SCardDisconnect), from the trace's `sessions` view.
 */
#include "commands.h"
#include "events.h"
#include "pcscnames.h"
#include "render.h"
#include "textout.h"
#include "viewopts.h"

#include <inttypes.h>
#include <string.h>

static void
usage(FILE *f)
{
	fputs("usage: pcsctap sessions [OPTIONS] [TRACE...]\n"
	      "\n"
	      "One row per client session: id, process, reader, share mode, protocol,\n"
	      "start, duration, APDUs, transactions, disposition, markers delivered.\n"
	      "The id is what 'pcsctap show --session' takes.\n"
	      "\n"
	      "  --pid PID        only this process\n"
	      "  --reader NAME    only this reader\n"
	      "  --json           one JSON object per line\n"
	      "  -h, --help       this text\n"
	      "\n"
	      "TRACE defaults to $PCSCTAP_TRACE.\n", f);
}

static void
print_row(FILE *f, const struct tap_input *in, int file, const struct trace_session *s, bool json)
{
	const char *share = pcsc_share_name(s->share_mode);
	const char *disp = s->end_ns ? pcsc_disposition_name(s->disposition) : NULL;
	char proto[64], when[64], dur[32], process[17], reader[29];

	pcsc_protocol_text(s->active_protocol, proto, sizeof(proto));
	if (json) {
		fprintf(f, "{\"file\":%d,\"id\":%" PRId64 ",\"pid\":%" PRId64 ",\"process\":", file, s->id, s->pid);
		json_string(f, s->process ? s->process : tap_process_name(in, file, s->pid));
		fputs(",\"reader\":", f);
		json_string(f, s->reader);
		fprintf(f, ",\"card\":%" PRIu64 ",\"share_mode\":%" PRId64 ",\"share\":", s->card, s->share_mode);
		json_string(f, share);
		fprintf(f, ",\"preferred_protocols\":%" PRId64 ",\"active_protocol\":%" PRId64 ",\"protocol\":",
			s->preferred_protocols, s->active_protocol);
		json_string(f, proto);
		fprintf(f, ",\"start_ns\":%" PRId64 ",\"end_ns\":%" PRId64 ",\"start_wall_ns\":%" PRId64,
			s->start_ns, s->end_ns, s->start_wall_ns);
		if (s->end_ns)
			fprintf(f, ",\"duration_ns\":%" PRId64, s->end_ns - s->start_ns);
		else
			fputs(",\"duration_ns\":null", f);
		fprintf(f, ",\"apdus\":%" PRId64 ",\"transactions\":%" PRId64 ",\"disposition\":",
			s->n_apdus, s->n_transactions);
		if (s->end_ns)
			fprintf(f, "%" PRId64, s->disposition);
		else
			fputs("null", f);
		fputs(",\"disposition_name\":", f);
		json_string(f, disp);
		fprintf(f, ",\"markers\":%" PRId64 "}\n", s->n_markers);
		return;
	}
	fprintf(f, "%8" PRId64 "  %-16.16s %7" PRId64 "  %-28.28s %-9s %-9.9s %s  %10s %7" PRId64
		" %5" PRId64 "  %-8s %4" PRId64 "\n",
		s->id, text_escape(s->process ? s->process : tap_process_name(in, file, s->pid),
				   process, sizeof(process)), s->pid,
		text_escape(s->reader, reader, sizeof(reader)), share ? share : "?", proto,
		fmt_wall(s->start_wall_ns, when, sizeof(when)),
		s->end_ns ? fmt_duration(s->end_ns - s->start_ns, dur, sizeof(dur)) : "open",
		s->n_apdus, s->n_transactions, s->end_ns ? (disp ? disp : "?") : "-", s->n_markers);
}

int
cmd_sessions(int argc, char **argv)
{
	struct tap_input *in = NULL;
	struct trace_iter *it = NULL;
	struct trace_filter filter = { 0 };
	struct view_options vo;
	struct render drops = { .out = stdout };
	int64_t rows = 0, dropped;
	bool json;
	int status;
	int rc, file;

	status = view_options_parse("sessions", argc, argv, VIEW_PID | VIEW_READER | VIEW_JSON,
				    usage, &vo);
	if (status >= 0)
		return status;
	filter.pid = vo.pid;
	filter.reader = vo.reader;
	json = vo.json;
	status = tap_input_open_nonempty(&in, "sessions", vo.traces, vo.n_traces);
	if (status != PCSCTAP_EXIT_OK)
		goto out;
	if (!json)
		printf("%8s  %-16s %7s  %-28s %-9s %-9s %-26s  %10s %7s %5s  %-8s %4s\n",
		       "ID", "PROCESS", "PID", "READER", "SHARE", "PROTO", "START", "DURATION",
		       "APDUS", "TX", "DISP", "MARK");
	for (file = 0; file < tap_input_count(in); file++) {
		struct trace_session s;

		rc = trace_iter_sessions(tap_input_reader(in, file), &filter, &it);
		if (rc < 0) {
			status = tap_input_fail(in, "sessions", file, rc);
			goto out;
		}
		while ((rc = trace_iter_session_next(it, &s)) > 0) {
			/* Applied here too: the filter's meaning for sessions is ours. */
			if ((filter.pid && s.pid != filter.pid) ||
			    (filter.reader && (!s.reader || strcmp(s.reader, filter.reader))))
				continue;
			print_row(stdout, in, file, &s, json);
			rows++;
		}
		if (it)
			trace_iter_end(it);
		it = NULL;
		if (rc < 0) {
			status = tap_input_fail(in, "sessions", file, rc);
			goto out;
		}
	}
	if (!json)
		printf("%" PRId64 " session%s\n", rows, rows == 1 ? "" : "s");
	drops.in = in;
	rc = render_drops(&drops, json ? DROPS_JSON_LINES : DROPS_TEXT, NULL, &dropped, &file);
	if (rc < 0)
		status = tap_input_fail(in, "sessions", file, rc);
out:
	if (it)
		trace_iter_end(it);
	tap_input_close(in);
	return finish_stdout("sessions", status);
}
