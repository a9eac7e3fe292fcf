/*
 * render.c — one human line for a call, a marker or a wire exchange:
 * shared by `show` (the timeline) and `export` (syslog records).
 */
#include "render.h"

#include "apdu.h"
#include "wire.h"
#include "pcscnames.h"
#include "textout.h"

#include <inttypes.h>
#include <string.h>

#define MAX_DATA_SHOWN 32	/* bytes of APDU data on a text line */


void
paint(struct render *sh, enum colour c)
{
	static const char *const codes[] = {
		[C_OFF] = "\033[0m", [C_DIM] = "\033[2m", [C_BOLD] = "\033[1m",
		[C_RED] = "\033[31m", [C_GREEN] = "\033[32m",
		[C_YELLOW] = "\033[33m", [C_CYAN] = "\033[36m",
	};

	if (sh->colour)
		fputs(codes[c], sh->out);
}

/* @p text comes from a trace: escaped (textout.h), between @p pre and @p post. */
static void
print_text(FILE *f, const char *pre, const char *text, const char *post)
{
	fputs(pre, f);
	text_put(f, text);
	fputs(post, f);
}

/* " process[pid] tTID " (no thread for @p tid < 0) */
static void
print_header(struct render *sh, const struct tap_event *ev, int64_t tid)
{
	print_text(sh->out, " ", tap_process_name(sh->in, ev->file, ev->pid), "");
	fprintf(sh->out, "[%" PRId64 "] ", ev->pid);
	if (tid >= 0)
		fprintf(sh->out, "t%" PRId64 " ", tid);
}

static void
print_multistring(FILE *f, const struct trace_blob *b)
{
	size_t i = 0;
	bool first = true;

	while (i < b->len) {
		size_t n = strnlen((const char *)b->data + i, b->len - i);

		if (n == 0)
			break;
		fputs(first ? "\"" : ",\"", f);
		text_putn(f, (const char *)b->data + i, n);
		fputc('"', f);
		first = false;
		i += n + 1;
	}
	if (first)
		fputs("(none)", f);
}

static void
print_rv(struct render *sh, int64_t rv)
{
	const char *name = pcsc_rv_name(rv);

	paint(sh, rv ? C_RED : C_GREEN);
	fprintf(sh->out, "%s", name ? name : "?");
	paint(sh, C_OFF);
	fprintf(sh->out, " (0x%08" PRIX32 ")", pcsc_rv_u32(rv));
}

void
render_call(struct render *sh, const struct tap_event *ev)
{
	const struct trace_call *c = &ev->call->call;
	const char *fn = trace_fn_name(c->fn);
	FILE *f = sh->out;
	char buf[160];
	bool out_args = false;

	if (sh->header)
		print_header(sh, ev, c->tid);
	paint(sh, C_BOLD);
	if (fn)
		fprintf(f, "%s", fn);
	else
		fprintf(f, "fn%d", c->fn);
	paint(sh, C_OFF);

	if ((c->present & TRACE_HAS_CONTEXT) && c->fn != TRACE_FN_SCardEstablishContext)
		fprintf(f, " ctx=0x%" PRIx64, c->context);
	if ((c->present & TRACE_HAS_CARD) && c->fn != TRACE_FN_SCardConnect)
		fprintf(f, " card=0x%" PRIx64, c->card);
	if (c->reader && c->fn != TRACE_FN_SCardStatus)
		print_text(f, " reader=\"", c->reader, "\"");
	else if (ev->reader && c->fn != TRACE_FN_SCardStatus)
		print_text(f, " [", ev->reader, "]");
	if (c->present & TRACE_HAS_SCOPE) {
		const char *n = pcsc_scope_name(c->scope);

		fprintf(f, " scope=%s", n ? n : "?");
	}
	if (c->present & TRACE_HAS_SHARE_MODE) {
		const char *n = pcsc_share_name(c->share_mode);

		if (n)
			fprintf(f, " share=%s", n);
		else
			fprintf(f, " share=%" PRId64, c->share_mode);
	}
	if (c->present & TRACE_HAS_PREFERRED_PROTOCOLS)
		fprintf(f, " pref=%s", pcsc_protocol_text(c->preferred_protocols, buf, sizeof(buf)));
	if (c->present & TRACE_HAS_DISPOSITION) {
		const char *n = pcsc_disposition_name(c->disposition);

		fprintf(f, " %s=%s", c->fn == TRACE_FN_SCardReconnect ? "init" : "disp",
			n ? n : "?");
	}
	if (c->present & TRACE_HAS_TIMEOUT)
		fprintf(f, " timeout=%" PRId64, c->timeout);
	if (c->present & TRACE_HAS_CODE) {
		const char *what = c->fn == TRACE_FN_SCardControl ? "code" :
				   c->fn == TRACE_FN_SCardFreeMemory ? "ptr" : "attr";

		fprintf(f, " %s=0x%" PRIx64, what, c->code);
	}
	for (size_t i = 0; i < c->n_states; i++) {
		const struct trace_reader_state *st = &c->states[i];
		char cur[96], evt[96];

		print_text(f, " {\"", st->reader ? st->reader : "", "\"");
		fprintf(f, " %s -> %s", pcsc_state_text(st->current_state, cur, sizeof(cur)),
			pcsc_state_text(st->event_state, evt, sizeof(evt)));
		if (st->atr.data && st->atr.len) {
			fputs(" atr=", f);
			hex_out(f, st->atr.data, st->atr.len, 33);
		}
		fputc('}', f);
	}

	switch (c->fn) {
	case TRACE_FN_SCardTransmit: {
		char text[512];

		if (c->present & TRACE_HAS_SEND_PCI)
			fprintf(f, " %s", pcsc_protocol_text(c->send_pci, buf, sizeof(buf)));
		if (c->in.data) {
			apdu_format_command(c->in.data, c->in.len, MAX_DATA_SHOWN, text, sizeof(text));
			paint(sh, C_CYAN);
			fprintf(f, " > %s", text);
			paint(sh, C_OFF);
		}
		if (c->out.data) {
			apdu_format_response(c->out.data, c->out.len, MAX_DATA_SHOWN, text, sizeof(text));
			paint(sh, C_CYAN);
			fprintf(f, " < %s", text);
			paint(sh, C_OFF);
		}
		break;
	}
	case TRACE_FN_SCardListReaders:
	case TRACE_FN_SCardListReaderGroups:
		if (c->in.data) {
			fputs(" groups=", f);
			print_multistring(f, &c->in);
		}
		if (c->out.data) {
			fputs(" ->", f);
			out_args = true;
			fputc(' ', f);
			print_multistring(f, &c->out);
		}
		break;
	default:
		if (c->in.data && c->in.len) {
			fputs(" in=", f);
			hex_out(f, c->in.data, c->in.len, MAX_DATA_SHOWN);
		}
		break;
	}

	/* Outputs. */
	if (c->fn == TRACE_FN_SCardEstablishContext && (c->present & TRACE_HAS_CONTEXT)) {
		fprintf(f, " -> ctx=0x%" PRIx64, c->context);
		out_args = true;
	}
	if (c->fn == TRACE_FN_SCardConnect && (c->present & TRACE_HAS_CARD)) {
		fprintf(f, " -> card=0x%" PRIx64, c->card);
		out_args = true;
	}
	if (c->fn == TRACE_FN_SCardStatus && c->reader) {
		print_text(f, out_args ? " reader=\"" : " -> reader=\"", c->reader, "\"");
		out_args = true;
	}
	if (c->present & TRACE_HAS_STATE) {
		fprintf(f, "%s state=0x%" PRIx64, out_args ? "" : " ->", c->state);
		out_args = true;
	}
	if (c->present & TRACE_HAS_ACTIVE_PROTOCOL) {
		fprintf(f, "%s proto=%s", out_args ? "" : " ->",
			pcsc_protocol_text(c->active_protocol, buf, sizeof(buf)));
		out_args = true;
	}
	if (c->out.data && c->fn != TRACE_FN_SCardTransmit &&
	    c->fn != TRACE_FN_SCardListReaders && c->fn != TRACE_FN_SCardListReaderGroups) {
		fprintf(f, "%s %s=", out_args ? "" : " ->",
			c->fn == TRACE_FN_SCardStatus ? "atr" : "out");
		hex_out(f, c->out.data, c->out.len, MAX_DATA_SHOWN);
	}
	if (c->redacted)
		fputs(" (PIN redacted)", f);
	if (c->extra && *c->extra)
		print_text(f, " [", c->extra, "]");
	fputs("  ", f);
	print_rv(sh, c->rv);
	fprintf(f, "  %s\n", fmt_duration(c->t_return_ns - c->t_enter_ns, buf, sizeof(buf)));
}

void
render_marker(struct render *sh, const struct tap_event *ev)
{
	const struct trace_marker *m = &ev->marker->marker;
	struct marker dec;
	char text[512];
	FILE *f = sh->out;

	if (sh->header)
		print_header(sh, ev, m->tid);
	paint(sh, C_YELLOW);
	fputs("marker", f);
	if (m->body.data && marker_decode(&dec, m->body.data, m->body.len) == 0) {
		marker_format(&dec, text, sizeof(text));
		print_text(f, " ", text, "");
	} else {
		const char *name = marker_event_name((uint8_t)m->event);

		fprintf(f, " %s (undecodable body)", name ? name : "?");
	}
	paint(sh, C_OFF);
	fprintf(f, " card=0x%" PRIx64, m->card);
	if (m->reader)
		print_text(f, " reader=\"", m->reader, "\"");
	fputs("  ", f);
	print_rv(sh, m->rv);
	fputc('\n', f);
}

const char *
render_wire_kind(int kind)
{
	switch (kind) {
	case TRACE_WIRE_POWER_OFF: return "power-off";
	case TRACE_WIRE_POWER_ON: return "power-on";
	case TRACE_WIRE_RESET: return "reset";
	case TRACE_WIRE_GET_ATR: return "get-atr";
	case TRACE_WIRE_MARKER: return "marker";
	case TRACE_WIRE_APDU: return "apdu";
	case TRACE_WIRE_CARD_CONNECTED: return "card-connected";
	case TRACE_WIRE_CARD_GONE: return "card-gone";
	case TRACE_WIRE_ERROR: return "error";
	default: return "?";
	}
}

void
render_wire(struct render *sh, const struct tap_event *ev)
{
	const struct trace_wire *w = &ev->wire->wire;
	FILE *f = sh->out;
	char text[512];

	if (sh->header)
		print_header(sh, ev, -1);
	paint(sh, C_CYAN);
	fprintf(f, "wire %s", render_wire_kind(w->kind));
	paint(sh, C_OFF);
	if (w->reader)
		print_text(f, " [", w->reader, "]");
	if (w->kind == TRACE_WIRE_APDU) {
		if (w->sent.data) {
			apdu_format_command(w->sent.data, w->sent.len, MAX_DATA_SHOWN, text, sizeof(text));
			fprintf(f, " > %s", text);
		}
		if (w->received.data) {
			apdu_format_response(w->received.data, w->received.len, MAX_DATA_SHOWN,
					     text, sizeof(text));
			fprintf(f, " < %s", text);
		}
	} else if (w->kind == TRACE_WIRE_MARKER && w->sent.data) {
		struct marker dec;

		if (marker_decode(&dec, w->sent.data, w->sent.len) == 0) {
			marker_format(&dec, text, sizeof(text));
			print_text(f, " ", text, "");
		}
	} else {
		if (w->sent.data && w->sent.len) {
			fputs(" > ", f);
			hex_out(f, w->sent.data, w->sent.len, MAX_DATA_SHOWN);
		}
		if (w->received.data && w->received.len) {
			fputs(w->kind == TRACE_WIRE_POWER_ON || w->kind == TRACE_WIRE_RESET ||
			      w->kind == TRACE_WIRE_GET_ATR ? " atr=" : " < ", f);
			hex_out(f, w->received.data, w->received.len, MAX_DATA_SHOWN);
		}
	}
	if (w->detail)
		print_text(f, " (", w->detail, ")");
	if (w->t_end_ns > w->t_ns)
		fprintf(f, "  %s", fmt_duration(w->t_end_ns - w->t_ns, text, sizeof(text)));
	fputc('\n', f);
}


void
render_drop(struct render *sh, int file, const struct trace_drop *d)
{
	FILE *f = sh->out;
	char when[64];

	paint(sh, C_RED);
	fprintf(f, "dropped: %" PRId64 " event%s of ", d->count, d->count == 1 ? "" : "s");
	text_put(f, tap_process_name(sh->in, file, d->pid));
	fprintf(f, "[%" PRId64 "] %s not in the trace (%s)", d->pid,
		d->count == 1 ? "is" : "are", fmt_wall(d->wall_ns, when, sizeof(when)));
	paint(sh, C_OFF);
	fputc('\n', f);
}

int
render_drops(struct render *sh, enum drops_format format, size_t *seen,
	     int64_t *total, int *err_file)
{
	FILE *f = sh->out;
	size_t written = 0;
	int rc = 0;

	*total = 0;
	for (int file = 0; file < tap_input_count(sh->in) && rc == 0; file++) {
		struct trace_iter *it = NULL;
		struct trace_drop d;
		size_t row = 0;

		*err_file = file;
		rc = trace_iter_drops(tap_input_reader(sh->in, file), &it);
		if (rc < 0)
			break;
		while ((rc = trace_iter_drop_next(it, &d)) > 0) {
			if (seen && row++ < seen[file])
				continue;
			if (seen)
				seen[file]++;
			*total += d.count;
			if (format != DROPS_TEXT) {
				if (format == DROPS_JSON_ARRAY && written)
					fputc(',', f);
				fprintf(f, "{\"type\":\"drops\",\"file\":%d,\"pid\":%" PRId64
					",\"process\":", file, d.pid);
				json_string(f, tap_process_name(sh->in, file, d.pid));
				fprintf(f, ",\"wall_ns\":%" PRId64 ",\"count\":%" PRId64 "}%s",
					d.wall_ns, d.count, format == DROPS_JSON_LINES ? "\n" : "");
				written++;
				continue;
			}
			render_drop(sh, file, &d);
		}
		trace_iter_end(it);
	}
	return rc < 0 ? rc : 0;
}
