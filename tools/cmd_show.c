/*
 * cmd_show.c — `pcsctap show`: the timeline of one or more traces, one line
 * per call, marker or wire exchange, merged by monotonic time.
 */
#include "apdu.h"
#include "commands.h"
#include "hexutil.h"
#include "events.h"
#include "wire.h"
#include "pcscnames.h"
#include "render.h"
#include "textout.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FOLLOW_POLL_MS 200

struct show {
	struct tap_input *in;
	FILE *out;
	bool json;
	bool wall;
	int64_t t0;
	struct render r;
};

static void
usage(FILE *f)
{
	fputs("usage: pcsctap show [OPTIONS] [TRACE...]\n"
	      "\n"
	      "Print the timeline of the traces (merged by time): one line per call,\n"
	      "session marker and driver wire exchange, with APDUs decoded.\n"
	      "\n"
	      "  --pid PID          only this process\n"
	      "  --reader NAME      only this reader (exact name)\n"
	      "  --session ID       only this session (an id from 'pcsctap sessions')\n"
	      "  --function NAME    only this function (SCardTransmit or Transmit)\n"
	      "  --since SECONDS    from this time on (relative, as printed)\n"
	      "  --until SECONDS    up to this time (relative, as printed)\n"
	      "  --grep HEX         only events whose data contain these bytes\n"
	      "  -f, --follow       keep printing what is added to the trace\n"
	      "  --wall             wall-clock times instead of relative ones\n"
	      "  --json             one JSON object per line\n"
	      "  --color WHEN       auto (default: terminal and no NO_COLOR), always, never\n"
	      "  -h, --help         this text\n"
	      "\n"
	      "TRACE defaults to $PCSCTAP_TRACE.\n", f);
}

static void
print_time(struct show *sh, const struct tap_event *ev)
{
	char buf[64];

	paint(&sh->r, C_DIM);
	if (sh->wall)
		fprintf(sh->out, "%s", fmt_wall(ev->wall_ns, buf, sizeof(buf)));
	else
		fprintf(sh->out, "%+13.6f", (double)(ev->t_ns - sh->t0) / 1e9);
	paint(&sh->r, C_OFF);
}

static void
json_common(struct show *sh, const struct tap_event *ev, const char *type)
{
	FILE *f = sh->out;

	fprintf(f, "{\"type\":\"%s\",\"file\":%d,\"id\":%" PRId64 ",\"t_ns\":%" PRId64
		",\"t_rel_ns\":%" PRId64 ",\"wall_ns\":%" PRId64 ",\"pid\":%" PRId64 ",\"process\":",
		type, ev->file, ev->id, ev->t_ns, ev->t_ns - sh->t0, ev->wall_ns, ev->pid);
	json_string(f, tap_process_name(sh->in, ev->file, ev->pid));
	fputs(",\"reader\":", f);
	json_string(f, ev->reader);
}

static void
json_rv(FILE *f, int64_t rv)
{
	fprintf(f, ",\"rv\":%" PRIu32 ",\"rv_name\":", pcsc_rv_u32(rv));
	json_string(f, pcsc_rv_name(rv));
}

static void
json_apdu(FILE *f, const struct trace_blob *cmd, const struct trace_blob *resp)
{
	struct apdu_command c;
	struct apdu_response r;
	char meaning[96];

	if (cmd->data && apdu_parse_command(cmd->data, cmd->len, &c) == 0) {
		fprintf(f, ",\"apdu\":{\"cla\":%u,\"ins\":%u,\"p1\":%u,\"p2\":%u,\"case\":%d"
			",\"extended\":%s,\"nc\":%u", c.cla, c.ins, c.p1, c.p2, (int)c.ccase,
			c.extended ? "true" : "false", c.nc);
		if (c.has_le)
			fprintf(f, ",\"ne\":%u", c.ne);
		fputs(",\"ins_name\":", f);
		json_string(f, apdu_ins_name(c.cla, c.ins));
		fputc('}', f);
	}
	if (resp->data && apdu_parse_response(resp->data, resp->len, &r) == 0) {
		fprintf(f, ",\"sw\":\"%02X%02X\",\"sw_meaning\":", r.sw1, r.sw2);
		apdu_sw_meaning(r.sw1, r.sw2, meaning, sizeof(meaning));
		json_string(f, meaning);
	}
}

static void
json_call(struct show *sh, const struct tap_event *ev)
{
	const struct trace_call *c = &ev->call->call;
	FILE *f = sh->out;

	json_common(sh, ev, "call");
	fprintf(f, ",\"tid\":%" PRId64 ",\"fn\":", c->tid);
	json_string(f, trace_fn_name(c->fn));
	fprintf(f, ",\"duration_ns\":%" PRId64, c->t_return_ns - c->t_enter_ns);
	json_rv(f, c->rv);
#define FIELD(bit, name, val) \
	if (c->present & (bit)) \
		fprintf(f, ",\"" name "\":%" PRId64, (int64_t)(val))
	FIELD(TRACE_HAS_CONTEXT, "context", c->context);
	FIELD(TRACE_HAS_CARD, "card", c->card);
	FIELD(TRACE_HAS_SHARE_MODE, "share_mode", c->share_mode);
	FIELD(TRACE_HAS_PREFERRED_PROTOCOLS, "preferred_protocols", c->preferred_protocols);
	FIELD(TRACE_HAS_ACTIVE_PROTOCOL, "active_protocol", c->active_protocol);
	FIELD(TRACE_HAS_DISPOSITION, "disposition", c->disposition);
	FIELD(TRACE_HAS_SCOPE, "scope", c->scope);
	FIELD(TRACE_HAS_TIMEOUT, "timeout", c->timeout);
	FIELD(TRACE_HAS_CODE, "code", c->code);
	FIELD(TRACE_HAS_STATE, "state", c->state);
	FIELD(TRACE_HAS_SEND_PCI, "send_pci", c->send_pci);
	FIELD(TRACE_HAS_RECV_PCI, "recv_pci", c->recv_pci);
#undef FIELD
	if (c->in.data) {
		fputs(",\"in\":", f);
		json_hex(f, c->in.data, c->in.len);
	}
	if (c->out.data) {
		fputs(",\"out\":", f);
		json_hex(f, c->out.data, c->out.len);
	}
	if (c->redacted)
		fputs(",\"redacted\":true", f);
	if (c->n_states) {
		fputs(",\"states\":[", f);
		for (size_t i = 0; i < c->n_states; i++) {
			fputs(i ? ",{\"reader\":" : "{\"reader\":", f);
			json_string(f, c->states[i].reader);
			fprintf(f, ",\"current_state\":%" PRIu32 ",\"event_state\":%" PRIu32 ",\"atr\":",
				c->states[i].current_state, c->states[i].event_state);
			json_hex(f, c->states[i].atr.data, c->states[i].atr.len);
			fputc('}', f);
		}
		fputc(']', f);
	}
	if (c->extra) {
		fputs(",\"extra\":", f);
		json_string(f, c->extra);
	}
	if (c->fn == TRACE_FN_SCardTransmit)
		json_apdu(f, &c->in, &c->out);
	fputs("}\n", f);
}

static void
json_marker(struct show *sh, const struct tap_event *ev)
{
	const struct trace_marker *m = &ev->marker->marker;
	FILE *f = sh->out;

	json_common(sh, ev, "marker");
	fprintf(f, ",\"tid\":%" PRId64 ",\"card\":%" PRIu64 ",\"event\":", m->tid, m->card);
	json_string(f, marker_event_name((uint8_t)m->event));
	fprintf(f, ",\"seq\":%" PRIu32, m->seq);
	json_rv(f, m->rv);
	fputs(",\"body\":", f);
	json_hex(f, m->body.data, m->body.len);
	fputs("}\n", f);
}

static void
json_wire(struct show *sh, const struct tap_event *ev)
{
	const struct trace_wire *w = &ev->wire->wire;
	FILE *f = sh->out;

	json_common(sh, ev, "wire");
	fputs(",\"kind\":", f);
	json_string(f, render_wire_kind(w->kind));
	fprintf(f, ",\"duration_ns\":%" PRId64 ",\"sent\":", w->t_end_ns - w->t_ns);
	json_hex(f, w->sent.data, w->sent.len);
	fputs(",\"received\":", f);
	json_hex(f, w->received.data, w->received.len);
	fputs(",\"detail\":", f);
	json_string(f, w->detail);
	if (w->kind == TRACE_WIRE_APDU)
		json_apdu(f, &w->sent, &w->received);
	fputs("}\n", f);
}

static void
print_event(struct show *sh, const struct tap_event *ev)
{
	if (sh->json) {
		if (ev->kind == TAP_CALL)
			json_call(sh, ev);
		else if (ev->kind == TAP_MARKER)
			json_marker(sh, ev);
		else
			json_wire(sh, ev);
		return;
	}
	print_time(sh, ev);
	if (ev->kind == TAP_CALL)
		render_call(&sh->r, ev);
	else if (ev->kind == TAP_MARKER)
		render_marker(&sh->r, ev);
	else
		render_wire(&sh->r, ev);
}

static int
bad_value(const char *text)
{
	fprintf(stderr, "pcsctap show: invalid option value '%s' (see pcsctap show --help)\n", text);
	return PCSCTAP_EXIT_USAGE;
}

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

int
cmd_show(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pid", required_argument, NULL, 'p' },
		{ "reader", required_argument, NULL, 'r' },
		{ "session", required_argument, NULL, 's' },
		{ "function", required_argument, NULL, 'F' },
		{ "since", required_argument, NULL, 'S' },
		{ "until", required_argument, NULL, 'U' },
		{ "grep", required_argument, NULL, 'g' },
		{ "follow", no_argument, NULL, 'f' },
		{ "wall", no_argument, NULL, 'w' },
		{ "json", no_argument, NULL, 'j' },
		{ "color", required_argument, NULL, 'c' },
		{ "colour", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct show sh = { .out = stdout };
	struct tap_select sel = { 0 };
	struct tap_stream *stream = NULL;
	int64_t since = -1, until = -1;
	int64_t *last_ids = NULL;
	size_t drops_seen[TAP_MAX_FILES] = { 0 };
	int64_t dropped;
	uint8_t grep[256];
	const char *colour = NULL;
	bool follow = false, empty;
	int status = PCSCTAP_EXIT_OK;
	int opt, rc, err_file = 0;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, "fh", opts, NULL)) != -1) {
		ssize_t n;

		switch (opt) {
		case 'p':
			if (parse_int64(optarg, &sel.pid) < 0 || sel.pid <= 0)
				return bad_value(optarg);
			break;
		case 'r':
			sel.reader = optarg;
			break;
		case 's':
			if (parse_int64(optarg, &sel.session) < 0 || sel.session <= 0)
				return bad_value(optarg);
			break;
		case 'F':
			sel.fn = trace_fn_from_name(optarg);
			if (!sel.fn)
				return bad_value(optarg);
			break;
		case 'S':
			if (parse_seconds(optarg, &since) < 0)
				return bad_value(optarg);
			break;
		case 'U':
			if (parse_seconds(optarg, &until) < 0)
				return bad_value(optarg);
			break;
		case 'g':
			n = hex_decode(optarg, grep, sizeof(grep));
			if (n <= 0)
				return bad_value(optarg);
			sel.grep = grep;
			sel.grep_len = (size_t)n;
			break;
		case 'f':
			follow = true;
			break;
		case 'w':
			sh.wall = true;
			break;
		case 'j':
			sh.json = true;
			break;
		case 'c':
			colour = optarg;
			break;
		case 'h':
			usage(stdout);
			return PCSCTAP_EXIT_OK;
		default:
			return bad_option("show", argv);
		}
	}
	rc = colour_wanted(colour, stdout);
	if (rc < 0) {
		fprintf(stderr, "pcsctap show: --color takes auto, always or never\n");
		return PCSCTAP_EXIT_USAGE;
	}
	sh.r.colour = rc && !sh.json;
	sh.r.out = stdout;
	sh.r.header = true;

	status = tap_input_open(&sh.in, "show", argv + optind, argc - optind);
	if (status != PCSCTAP_EXIT_OK)
		goto out;
	sh.r.in = sh.in;
	rc = tap_input_start(sh.in, &sh.t0, &empty, &err_file);
	if (rc < 0) {
		status = tap_input_fail(sh.in, "show", err_file, rc);
		goto out;
	}
	if (empty && !follow) {
		fprintf(stderr, "pcsctap show: %s: empty trace (no calls, markers or wire events)\n",
			tap_input_path(sh.in, 0));
		status = PCSCTAP_EXIT_EMPTY;
		goto out;
	}
	if (since >= 0)
		sel.since_ns = sh.t0 + since;
	if (until >= 0)
		sel.until_ns = sh.t0 + until;
	last_ids = calloc(3 * TAP_MAX_FILES, sizeof(*last_ids));
	if (!last_ids) {
		fprintf(stderr, "pcsctap show: out of memory\n");
		status = PCSCTAP_EXIT_RUNTIME;
		goto out;
	}

	for (;;) {
		struct tap_event ev;

		rc = tap_stream_open(&stream, sh.in, &sel, follow ? last_ids : NULL);
		if (rc == -ENOENT && sel.session && !follow) {
			fprintf(stderr, "pcsctap show: no session %" PRId64 " in the trace\n", sel.session);
			status = PCSCTAP_EXIT_INPUT;
			goto out;
		}
		/* Following, a session that has not begun yet is waited for. */
		if (rc < 0 && rc != -ENOENT) {
			status = tap_input_fail(sh.in, "show", 0, rc);
			goto out;
		}
		while (stream && (rc = tap_stream_next(stream, &ev, &err_file)) > 0) {
			if (empty) {
				/* Following a trace that was empty: time starts now. */
				sh.t0 = ev.t_ns;
				empty = false;
			}
			print_event(&sh, &ev);
		}
		if (rc < 0 && rc != -ENOENT) {
			status = tap_input_fail(sh.in, "show", err_file, rc);
			goto out;
		}
		if (stream)
			tap_stream_last_ids(stream, last_ids);
		rc = render_drops(&sh.r, sh.json ? DROPS_JSON_LINES : DROPS_TEXT, drops_seen, &dropped, &err_file);
		if (rc < 0) {
			status = tap_input_fail(sh.in, "show", err_file, rc);
			goto out;
		}
		tap_stream_close(stream);
		stream = NULL;
		if (!follow)
			break;
		if (fflush(stdout) != 0) {
			status = PCSCTAP_EXIT_OUTPUT;
			goto out;
		}
		sleep_ms(FOLLOW_POLL_MS);
	}
out:
	tap_stream_close(stream);
	tap_input_close(sh.in);
	free(last_ids);
	return finish_stdout("show", status);
}
